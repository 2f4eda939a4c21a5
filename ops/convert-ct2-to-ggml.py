#!/usr/bin/env python3
"""Converts a CTranslate2 Whisper model (faster-whisper's format) into a
ggml file for whisper.cpp (voxq's `whisper-cpp` engine).

Same network, different container: CTranslate2 fuses the self-attention
query/key/value projections (and the cross-attention key/value ones) into
one matrix, names tensors differently and keeps the vocabulary in
vocabulary.txt; whisper.cpp wants them split, under the reference names,
with the log-mel filter bank and the byte-level vocabulary in the file.

Usage: convert-ct2-to-ggml.py CT2_MODEL_DIR OUTPUT.bin
Needs: numpy.
"""
import os
import re
import struct
import sys

import numpy as np

DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
N_FFT, SAMPLE_RATE = 400, 16000


def read_ct2(path):
    """The variables of a CTranslate2 model.bin (binary version 6), by name."""
    with open(path, "rb") as f:

        def u(fmt):
            size = struct.calcsize(fmt)
            return struct.unpack(fmt, f.read(size))[0]

        def string():
            return f.read(u("H"))[:-1].decode()

        version = u("I")
        if version != 6:
            sys.exit(f"unsupported CTranslate2 binary version {version}")
        spec, _revision = string(), u("I")
        if spec != "WhisperSpec":
            sys.exit(f"{path} holds a {spec}, not a Whisper model")
        variables = {}
        for _ in range(u("I")):
            name = string()
            shape = [u("I") for _ in range(u("B"))]
            dtype = DTYPES[u("B")]
            data = np.frombuffer(f.read(u("I")), dtype=dtype).reshape(shape)
            variables[name] = data
        for _ in range(u("I")):
            alias, target = string(), string()
            variables[alias] = variables[target]
    if any(v.dtype == np.int8 for v in variables.values() if v.ndim > 1):
        sys.exit("int8-quantized CTranslate2 weights cannot be converted; use a float16 model")
    return variables


def mel_filters(n_mels):
    """Slaney-style mel filter bank (librosa.filters.mel defaults), as the
    reference Whisper computes its features."""

    def hz_to_mel(f):
        f = np.asarray(f, dtype=np.float64)
        mel = f / (200.0 / 3)
        log_region = f >= 1000.0
        return np.where(log_region, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), mel)

    def mel_to_hz(m):
        m = np.asarray(m, dtype=np.float64)
        f = m * (200.0 / 3)
        log_region = m >= 15.0
        return np.where(log_region, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), f)

    fft_freqs = np.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    mel_points = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(SAMPLE_RATE / 2), n_mels + 2))
    weights = np.zeros((n_mels, len(fft_freqs)))
    fdiff = np.diff(mel_points)
    ramps = mel_points[:, None] - fft_freqs[None, :]
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_points[2 : n_mels + 2] - mel_points[:n_mels]))[:, None]
    return weights.astype(np.float32)


def byte_decoder():
    """GPT-2's byte-level alphabet, inverted: token characters → bytes."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, out = sys.argv[1], sys.argv[2]
    v = read_ct2(os.path.join(src, "model.bin"))
    with open(os.path.join(src, "vocabulary.txt"), encoding="utf-8") as f:
        vocab = [line.rstrip("\n") for line in f]
    n_mels = v["encoder/conv1/weight"].shape[1]
    d_audio = v["encoder/conv1/weight"].shape[0]
    d_text = v["decoder/embeddings/weight"].shape[1]
    def layers(side):
        return len({k.split("/")[1] for k in v if re.match(side + r"/layer_\d+/", k)})

    n_audio_layer, n_text_layer = layers("encoder"), layers("decoder")
    n_vocab = v["decoder/embeddings/weight"].shape[0]
    # whisper.cpp adds the special tokens itself, after the text tokens.
    n_text_tokens = vocab.index("<|endoftext|>")
    hparams = [
        n_vocab,
        v["encoder/position_encodings/encodings"].shape[0],
        d_audio,
        int(v["encoder/num_heads"]),
        n_audio_layer,
        v["decoder/position_encodings/encodings"].shape[0],
        d_text,
        int(v["decoder/num_heads"]),
        n_text_layer,
        n_mels,
        1,  # ftype: float16 matrices
    ]

    tensors = []

    def put(name, data):
        tensors.append((name, np.asarray(data)))

    def linear(dst, src_prefix, bias=True, rows=None):
        weight = v[src_prefix + "/weight"]
        b = v[src_prefix + "/bias"]
        if rows is not None:
            weight, b = weight[rows], b[rows]
        put(dst + ".weight", weight)
        if bias:
            put(dst + ".bias", b)

    def norm(dst, src_prefix):
        put(dst + ".weight", v[src_prefix + "/gamma"])
        put(dst + ".bias", v[src_prefix + "/beta"])

    def split_qkv(dst, src, d):
        # Fused [q; k; v] rows; the reference key projection has no bias.
        linear(dst + ".query", src, rows=slice(0, d))
        linear(dst + ".key", src, bias=False, rows=slice(d, 2 * d))
        linear(dst + ".value", src, rows=slice(2 * d, 3 * d))

    put("encoder.positional_embedding", v["encoder/position_encodings/encodings"])
    put("encoder.conv1.weight", v["encoder/conv1/weight"])
    put("encoder.conv1.bias", v["encoder/conv1/bias"].reshape(-1, 1))
    put("encoder.conv2.weight", v["encoder/conv2/weight"])
    put("encoder.conv2.bias", v["encoder/conv2/bias"].reshape(-1, 1))
    for i in range(n_audio_layer):
        s, d = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        norm(d + ".attn_ln", s + "/self_attention/layer_norm")
        split_qkv(d + ".attn", s + "/self_attention/linear_0", d_audio)
        linear(d + ".attn.out", s + "/self_attention/linear_1")
        norm(d + ".mlp_ln", s + "/ffn/layer_norm")
        linear(d + ".mlp.0", s + "/ffn/linear_0")
        linear(d + ".mlp.2", s + "/ffn/linear_1")
    norm("encoder.ln_post", "encoder/layer_norm")

    put("decoder.positional_embedding", v["decoder/position_encodings/encodings"])
    put("decoder.token_embedding.weight", v["decoder/embeddings/weight"])
    for i in range(n_text_layer):
        s, d = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        norm(d + ".attn_ln", s + "/self_attention/layer_norm")
        split_qkv(d + ".attn", s + "/self_attention/linear_0", d_text)
        linear(d + ".attn.out", s + "/self_attention/linear_1")
        norm(d + ".cross_attn_ln", s + "/attention/layer_norm")
        linear(d + ".cross_attn.query", s + "/attention/linear_0")
        # Fused [k; v] rows of the cross-attention.
        linear(d + ".cross_attn.key", s + "/attention/linear_1", bias=False, rows=slice(0, d_text))
        linear(d + ".cross_attn.value", s + "/attention/linear_1", rows=slice(d_text, 2 * d_text))
        linear(d + ".cross_attn.out", s + "/attention/linear_2")
        norm(d + ".mlp_ln", s + "/ffn/layer_norm")
        linear(d + ".mlp.0", s + "/ffn/linear_0")
        linear(d + ".mlp.2", s + "/ffn/linear_1")
    norm("decoder.ln", "decoder/layer_norm")

    decoder = byte_decoder()
    tmp = out + ".part"
    with open(tmp, "wb") as f:
        f.write(struct.pack("i", 0x67676D6C))
        f.write(struct.pack("11i", *hparams))
        filters = mel_filters(n_mels)
        f.write(struct.pack("ii", *filters.shape))
        f.write(filters.tobytes())
        f.write(struct.pack("i", n_text_tokens))
        for token in vocab[:n_text_tokens]:
            data = bytes(decoder[c] for c in token)
            f.write(struct.pack("i", len(data)))
            f.write(data)
        for name, data in tensors:
            # Vectors, biases and position tables stay float32, as in the
            # reference converter; matrices are float16.
            f32 = data.ndim < 2 or name.endswith(("conv1.bias", "conv2.bias", "positional_embedding"))
            data = data.astype(np.float32 if f32 else np.float16)
            encoded = name.encode()
            f.write(struct.pack("iii", data.ndim, len(encoded), 0 if f32 else 1))
            for dim in reversed(data.shape):
                f.write(struct.pack("i", dim))
            f.write(encoded)
            f.write(np.ascontiguousarray(data).tobytes())
    os.replace(tmp, out)
    print(f"{out}: {len(tensors)} tensors, {n_text_tokens} text tokens, n_vocab {n_vocab}")


if __name__ == "__main__":
    main()
