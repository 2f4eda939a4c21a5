#!/usr/bin/env python3
"""Converts the Silero VAD model from its ONNX form into the ggml file
whisper.cpp's voice activity detection loads
(whisper_vad_init_from_file_with_params, used through whisper-rs's
WhisperVadContext).

Why this exists: whisper.cpp's own converter
(models/convert-silero-vad-to-ggml.py) loads the TorchScript model with
torch, and the prebuilt ggml files live on a model hub. Neither is at hand
offline; the PyPI `silero-vad` wheel (MIT) is, and it carries the same
weights as ONNX (silero_vad/data/silero_vad.onnx). This reads them with
`onnx` and numpy alone, no torch.

The ONNX model holds two networks, for 8 kHz and 16 kHz audio, chosen at
run time by an If on its `sr` input; whisper.cpp runs 16 kHz audio only,
so the 16 kHz branch is the one taken. Files holding the 16 kHz network
alone (silero_vad_16k_op15.onnx, silero_vad_half.onnx) work as well.

Usage: convert-silero-vad.py SILERO_VAD.onnx OUTPUT.bin [VERSION]
  VERSION (x.y.z, the silero-vad release) is written into the header,
  which whisper.cpp only logs; 0.0.0 when not given.
Needs: onnx, numpy.
"""
import re
import struct
import sys

import numpy as np
import onnx
from google.protobuf.message import DecodeError  # onnx's own dependency
from onnx import numpy_helper

GGML_FILE_MAGIC = 0x67676D6C  # "ggml"
GGML_F32, GGML_F16 = 0, 1
MODEL_TYPE = "silero-16k"
SAMPLE_RATE = 16000
N_WINDOW = 512  # samples per chunk, one probability each
N_CONTEXT = 64  # samples Silero carries over between chunks
N_FFT = 256  # the Fourier basis: real and imaginary rows for N_FFT/2+1 bins
STFT_HOP = 128
LSTM_HIDDEN = 128
# (in channels, out channels, kernel) of the four encoder convolutions.
ENCODER = [(129, 128, 3), (128, 64, 3), (64, 64, 3), (64, 128, 3)]


def tensor_specs():
    """(ggml name, ONNX name suffix, ONNX shape, ggml type) for every tensor
    whisper.cpp creates, its names and types exactly: the loader refuses a
    file whose tensor sizes differ from what it allocated by type."""
    specs = [("stft.forward_basis_buffer", (2 * (N_FFT // 2 + 1), 1, N_FFT), GGML_F16)]
    for i, (c_in, c_out, kernel) in enumerate(ENCODER):
        specs.append((f"encoder.{i}.reparam_conv.weight", (c_out, c_in, kernel), GGML_F16))
        specs.append((f"encoder.{i}.reparam_conv.bias", (c_out,), GGML_F32))
    gates = 4 * LSTM_HIDDEN  # input, forget, cell, output: PyTorch's order, and whisper.cpp's
    specs += [
        ("decoder.rnn.weight_ih", (gates, ENCODER[-1][1]), GGML_F32),
        ("decoder.rnn.weight_hh", (gates, LSTM_HIDDEN), GGML_F32),
        ("decoder.rnn.bias_ih", (gates,), GGML_F32),
        ("decoder.rnn.bias_hh", (gates,), GGML_F32),
        ("decoder.decoder.2.weight", (1, LSTM_HIDDEN, 1), GGML_F16),
        ("decoder.decoder.2.bias", (1,), GGML_F32),
    ]
    return [("_model." + name, name, shape, ggml_type) for name, shape, ggml_type in specs]


def ggml_shape(name, onnx_shape):
    """The tensor's ne (fastest-varying dimension first) as whisper.cpp
    declares it. A C-ordered numpy array is already laid out that way once
    the dimensions are reversed; only the final 1x1 convolution differs,
    being declared [128, 1] rather than [1, 128, 1]."""
    if name == "_model.decoder.decoder.2.weight":
        return [LSTM_HIDDEN, 1]
    return list(reversed(onnx_shape))


def constant_value(graph, name):
    """The value of `name` when a Constant node or an initializer of
    `graph` produces it, else None."""
    for init in graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    for node in graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            for attr in node.attribute:
                if attr.name == "value":
                    return numpy_helper.to_array(attr.t)
    return None


def sample_rate_branch(graph):
    """The subgraph of the top-level If that runs for 16 kHz input, or None
    when the model has no such switch."""
    producers = {out: node for node in graph.node for out in node.output}
    for node in graph.node:
        if node.op_type != "If":
            continue
        test = producers.get(node.input[0])
        if test is None or test.op_type != "Equal" or "sr" not in test.input:
            continue
        other = [name for name in test.input if name != "sr"][0]
        rate = constant_value(graph, other)
        if rate is None or rate.size != 1 or int(rate) not in (SAMPLE_RATE, 8000):
            continue
        wanted = "then_branch" if int(rate) == SAMPLE_RATE else "else_branch"
        return next(attr.g for attr in node.attribute if attr.name == wanted)
    return None


def named_tensors(graph):
    """Initializers and Constant node values of one graph level, by name.
    Nested subgraphs hold only small shape constants, so they are skipped."""
    tensors = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    tensors[node.output[0]] = numpy_helper.to_array(attr.t)
    return tensors


def load_16k_weights(path):
    """The 16 kHz network's weights, keyed by ggml name, shape-checked."""
    try:
        model = onnx.load(path)
    except (OSError, DecodeError) as err:
        sys.exit(f"{path}: cannot read the ONNX model: {err}")
    branch = sample_rate_branch(model.graph)
    tensors = named_tensors(model.graph)
    if branch is not None:
        tensors.update(named_tensors(branch))
    # Files that keep both networks side by side mark the 8 kHz one by name.
    tensors = {name: value for name, value in tensors.items() if "8k" not in name}

    weights = {}
    for ggml_name, suffix, shape, _ in tensor_specs():
        # Exporters prefix the PyTorch name ("model.", "If_0_then_branch__...__").
        pattern = re.compile(r"(^|[._/])" + re.escape(suffix) + "$")
        found = [name for name in tensors if pattern.search(name)]
        if not found:
            sys.exit(f"{path}: no tensor named like '{suffix}' (is this a Silero VAD v5/v6 model?)")
        if len(found) > 1:
            sys.exit(f"{path}: several tensors named like '{suffix}': {', '.join(found)}")
        value = tensors[found[0]]
        if tuple(value.shape) != shape:
            sys.exit(
                f"{path}: tensor '{found[0]}' has shape {tuple(value.shape)}, "
                f"whisper.cpp expects {shape} (a 16 kHz Silero VAD v5/v6 network)"
            )
        if not np.issubdtype(value.dtype, np.floating):
            sys.exit(f"{path}: tensor '{found[0]}' holds {value.dtype}, not floating point")
        weights[ggml_name] = value
    return weights


def parse_version(text):
    parts = text.split(".")
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        sys.exit(f"version must be x.y.z, got '{text}'")
    return [int(part) for part in parts]


def write_header(out, version):
    """Magic, model type and version, then the hyperparameters, in the order
    whisper_vad_init_with_params reads them (all int32, little-endian)."""
    def i32(*values):
        out.write(struct.pack(f"<{len(values)}i", *values))

    i32(GGML_FILE_MAGIC)
    i32(len(MODEL_TYPE))
    out.write(MODEL_TYPE.encode())
    i32(*version)
    i32(N_WINDOW, N_CONTEXT)
    i32(len(ENCODER))
    for c_in, c_out, kernel in ENCODER:
        i32(c_in, c_out, kernel)
    # whisper.cpp also uses lstm_input_size as the STFT hop (the stride of
    # the convolution with the Fourier basis); both are 128.
    i32(STFT_HOP, LSTM_HIDDEN)
    i32(LSTM_HIDDEN, 1)  # final convolution: in, out


def write_tensor(out, name, data, ggml_type):
    """n_dims, name length, type, ne[0..n_dims), name, then the data."""
    shape = ggml_shape(name, data.shape)
    encoded = name.encode()
    out.write(struct.pack(f"<3i{len(shape)}i", len(shape), len(encoded), ggml_type, *shape))
    out.write(encoded)
    dtype = np.float16 if ggml_type == GGML_F16 else np.float32
    out.write(np.ascontiguousarray(data, dtype=np.dtype(dtype).newbyteorder("<")).tobytes())


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: convert-silero-vad.py SILERO_VAD.onnx OUTPUT.bin [VERSION]")
    source, target = sys.argv[1], sys.argv[2]
    version = parse_version(sys.argv[3] if len(sys.argv) == 4 else "0.0.0")
    weights = load_16k_weights(source)
    with open(target, "wb") as out:
        write_header(out, version)
        for name, _, _, ggml_type in tensor_specs():
            write_tensor(out, name, weights[name], ggml_type)
    print(f"wrote {target}: {len(weights)} tensors", file=sys.stderr)


if __name__ == "__main__":
    main()
