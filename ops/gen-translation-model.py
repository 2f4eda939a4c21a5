#!/usr/bin/env python3
"""Generates a small CTranslate2 translation model for voxq's tests.

No translation weights can be downloaded here, so this writes a real
CTranslate2 Transformer (the format NLLB and OPUS-MT conversions have) with
seeded random weights, and a real Hugging Face tokenizer.json (a BPE
trained on generated sentences) whose vocabulary holds NLLB-style language
tokens (eng_Latn, deu_Latn, spa_Latn, fra_Latn). Its output is not a
translation, but it is deterministic, and it exercises everything around
the model: tokenization, language tokens, sentence batching, limits.

Usage: gen-translation-model.py OUTPUT_DIR
Needs: ctranslate2, tokenizers, numpy (ops/fetch-models.sh installs them
into a virtual environment).
"""
import os
import random
import sys

import ctranslate2
import numpy as np
from ctranslate2.specs import common_spec, transformer_spec
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

LANGUAGES = ["eng_Latn", "deu_Latn", "spa_Latn", "fra_Latn"]
SPECIAL = ["<s>", "<pad>", "</s>", "<unk>"] + LANGUAGES
D_MODEL, FFN, HEADS, LAYERS = 64, 128, 4, 2

WORDS = (
    "the a one this that cat dog house tree river city friend morning evening "
    "is was goes sees likes reads writes makes and or but with without under over "
    "big small green old new happy quiet fast slow today tomorrow always never"
).split()


def corpus(n):
    rng = random.Random(7)
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(3, 12))]
        yield " ".join(words).capitalize() + rng.choice([".", "!", "?"])


def train_tokenizer():
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIAL, show_progress=False)
    tokenizer.train_from_iterator(corpus(2000), trainer)
    return tokenizer


def fill(spec, vocab_size, rng):
    """Sets every weight of the spec, with shapes from the layer's role."""

    def mat(rows, cols):
        return (rng.standard_normal((rows, cols)) / np.sqrt(cols)).astype(np.float32)

    def linear(lin, rows, cols):
        lin.weight = mat(rows, cols)
        lin.bias = np.zeros(rows, dtype=np.float32)

    def norm(ln):
        ln.gamma = np.ones(D_MODEL, dtype=np.float32)
        ln.beta = np.zeros(D_MODEL, dtype=np.float32)

    def ffn(f):
        norm(f.layer_norm)
        linear(f.linear_0, FFN, D_MODEL)
        linear(f.linear_1, D_MODEL, FFN)

    enc, dec = spec.encoder, spec.decoder
    for emb in enc.embeddings:
        emb.weight = mat(vocab_size, D_MODEL)
    norm(enc.layer_norm)
    for layer in enc.layer:
        att = layer.self_attention
        norm(att.layer_norm)
        linear(att.linear[0], 3 * D_MODEL, D_MODEL)
        linear(att.linear[1], D_MODEL, D_MODEL)
        ffn(layer.ffn)
    dec.embeddings.weight = mat(vocab_size, D_MODEL)
    norm(dec.layer_norm)
    linear(dec.projection, vocab_size, D_MODEL)
    for layer in dec.layer:
        att = layer.self_attention
        norm(att.layer_norm)
        linear(att.linear[0], 3 * D_MODEL, D_MODEL)
        linear(att.linear[1], D_MODEL, D_MODEL)
        cross = layer.attention
        norm(cross.layer_norm)
        linear(cross.linear[0], D_MODEL, D_MODEL)
        linear(cross.linear[1], 2 * D_MODEL, D_MODEL)
        linear(cross.linear[2], D_MODEL, D_MODEL)
        ffn(layer.ffn)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    tokenizer = train_tokenizer()
    vocab = [t for t, _ in sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])]
    spec = transformer_spec.TransformerSpec.from_config(
        LAYERS, HEADS, pre_norm=True, activation=common_spec.Activation.RELU
    )
    fill(spec, len(vocab), np.random.default_rng(11))
    spec.register_source_vocabulary(vocab)
    spec.register_target_vocabulary(vocab)
    spec.config.decoder_start_token = "</s>"
    spec.config.unk_token = "<unk>"
    spec.config.bos_token = "<s>"
    spec.config.eos_token = "</s>"
    spec.validate()
    spec.optimize(quantization="int8")
    tmp = out + ".part"
    os.makedirs(tmp, exist_ok=True)
    spec.save(tmp)
    tokenizer.save(os.path.join(tmp, "tokenizer.json"))
    # Check it loads and runs, in the format voxq sends it.
    translator = ctranslate2.Translator(tmp, device="cpu")
    tokens = tokenizer.encode("The cat sees a dog.", add_special_tokens=False).tokens
    result = translator.translate_batch(
        [["eng_Latn"] + tokens + ["</s>"]], target_prefix=[["deu_Latn"]], max_decoding_length=8
    )
    assert result[0].hypotheses[0][0] == "deu_Latn", result
    if os.path.exists(out):
        import shutil

        shutil.rmtree(out)
    os.rename(tmp, out)
    print(f"translation model written to {out} (ctranslate2 {ctranslate2.__version__})")


if __name__ == "__main__":
    main()
