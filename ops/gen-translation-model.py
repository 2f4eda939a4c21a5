#!/usr/bin/env python3
"""Generates small CTranslate2 translation models for voxq's tests.

No translation weights can be downloaded here, so this writes a real
CTranslate2 Transformer (the format NLLB and OPUS-MT conversions have) with
seeded random weights and real tokenizer files, in one of two layouts:

- default: NLLB-like. A Hugging Face tokenizer.json (a BPE trained on
  generated sentences) whose vocabulary holds NLLB-style language tokens
  (eng_Latn, deu_Latn, spa_Latn, fra_Latn).
- --sentencepiece: OPUS-MT-like (Marian). Two SentencePiece models,
  source.spm trained on English-like text and target.spm on German-like
  text with umlauts, a shared vocabulary that also holds multi-target
  tokens (>>deu<<, >>spa<<, >>fra<<), and reference.json: what the
  SentencePiece library itself makes of some texts, for voxq's tokenizer
  to be checked against.

Its output is not a translation, but it is deterministic, and it exercises
everything around the model: tokenization, language tokens, sentence
batching, limits.

Usage: gen-translation-model.py [--sentencepiece] OUTPUT_DIR
Needs: ctranslate2, tokenizers, sentencepiece, numpy (ops/fetch-models.sh
installs them into a virtual environment).
"""
import io
import json
import os
import random
import shutil
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

# The target side of the SentencePiece model: other words, other letters,
# so that text decoded with the wrong model shows.
TARGET_WORDS = (
    "der die das eine katze hund haus baum fluss stadt freund morgen abend "
    "ist war geht sieht mag liest schreibt macht und oder aber mit ohne unter "
    "über groß klein grün alt neu glücklich still schnell langsam heute immer nie"
).split()
OPUS_LANGUAGES = [">>deu<<", ">>spa<<", ">>fra<<"]


def corpus(n, words=WORDS, seed=7):
    rng = random.Random(seed)
    for _ in range(n):
        line = [rng.choice(words) for _ in range(rng.randint(3, 12))]
        yield " ".join(line).capitalize() + rng.choice([".", "!", "?"])


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


def train_sentencepiece(words, seed, vocab_size):
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=corpus(2000, words, seed),
        model_writer=model,
        model_type="unigram",
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        num_threads=1,
        minloglevel=2,
    )
    return spm.SentencePieceProcessor(model_proto=model.getvalue()), model.getvalue()


def build(vocab, out):
    """A model over `vocab` in a temporary directory next to `out`."""
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
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    spec.save(tmp)
    return tmp


def finish(tmp, out):
    if os.path.exists(out):
        shutil.rmtree(out)
    os.rename(tmp, out)
    print(f"translation model written to {out} (ctranslate2 {ctranslate2.__version__})")


def nllb_like(out):
    tokenizer = train_tokenizer()
    vocab = [t for t, _ in sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])]
    tmp = build(vocab, out)
    tokenizer.save(os.path.join(tmp, "tokenizer.json"))
    # Check it loads and runs, in the format voxq sends it.
    translator = ctranslate2.Translator(tmp, device="cpu")
    tokens = tokenizer.encode("The cat sees a dog.", add_special_tokens=False).tokens
    result = translator.translate_batch(
        [["eng_Latn"] + tokens + ["</s>"]], target_prefix=[["deu_Latn"]], max_decoding_length=8
    )
    assert result[0].hypotheses[0][0] == "deu_Latn", result
    finish(tmp, out)


def opus_like(out):
    source, source_proto = train_sentencepiece(WORDS, 7, 120)
    target, target_proto = train_sentencepiece(TARGET_WORDS, 8, 110)
    special = {"<unk>", "<s>", "</s>"}

    def pieces(sp):
        return [sp.id_to_piece(i) for i in range(sp.get_piece_size())]

    # Marian's layout: one vocabulary for both sides, specials first.
    vocab = ["</s>", "<unk>", "<s>"] + OPUS_LANGUAGES
    for piece in pieces(source) + pieces(target):
        if piece not in special and piece not in vocab:
            vocab.append(piece)
    vocab.append("<pad>")
    tmp = build(vocab, out)
    with open(os.path.join(tmp, "source.spm"), "wb") as f:
        f.write(source_proto)
    with open(os.path.join(tmp, "target.spm"), "wb") as f:
        f.write(target_proto)

    texts = [
        "The cat sees a dog.",
        "A new friend reads, writes and makes today!",
        "  Spaces   and an unknown word: zebra.",
    ]
    encode = [{"text": t, "pieces": source.encode(t, out_type=str)} for t in texts]
    # Texts the wrong model would cut otherwise, or the check proves little.
    assert any(e["pieces"] != target.encode(e["text"], out_type=str) for e in encode)
    decode = []
    for text in ["Der hund ist glücklich.", "Über die grüne stadt immer schnell!"]:
        target_pieces = target.encode(text, out_type=str)
        # Pieces the model can produce: its vocabulary has no others.
        assert all(target.piece_to_id(p) != target.unk_id() for p in target_pieces), text
        # The model may produce tokens the target model does not know (a
        # language token, a source-only piece): they are not text.
        produced = target_pieces[:2] + [">>deu<<", "</s>"] + target_pieces[2:]
        decode.append({"pieces": produced, "text": target.decode_pieces(target_pieces)})
    with open(os.path.join(tmp, "reference.json"), "w", encoding="utf-8") as f:
        json.dump({"encode": encode, "decode": decode}, f, ensure_ascii=False, indent=1)

    translator = ctranslate2.Translator(tmp, device="cpu")
    result = translator.translate_batch(
        [[">>deu<<"] + encode[0]["pieces"] + ["</s>"]], max_decoding_length=8
    )
    assert result[0].hypotheses[0], result
    finish(tmp, out)


def main():
    args = sys.argv[1:]
    sentencepiece = "--sentencepiece" in args
    args = [a for a in args if a != "--sentencepiece"]
    if len(args) != 1:
        sys.exit(__doc__)
    (opus_like if sentencepiece else nllb_like)(args[0])


if __name__ == "__main__":
    main()
