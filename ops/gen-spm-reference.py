#!/usr/bin/env python3
"""Small SentencePiece models and what the SentencePiece library makes of
a set of awkward texts with them, for the worker's own SentencePiece
reader to be checked against (worker/src/engine/sentencepiece.rs).

Models, trained here on generated text: unigram (the OPUS-MT kind), BPE,
BPE with byte fallback, and unigram without the whitespace clean-up and
dummy prefix. Texts: plain sentences, runs of spaces, tabs and newlines,
characters the model never saw, compatibility forms NFKC folds (ligatures,
full-width letters), emoji, user-defined pieces.

Usage: gen-spm-reference.py OUTPUT_DIR
Needs: sentencepiece (ops/fetch-models.sh runs it in its environment).
"""
import io
import json
import os
import random
import shutil
import sys

import sentencepiece as spm

WORDS = (
    "the cat sees a dog new friend reads writes and makes today house river "
    "mountain quickly slowly running jumped over lazy fox brown green city "
    "der hund ist glücklich über die grüne stadt immer schnell straße"
).split()

TEXTS = [
    "The cat sees a dog.",
    "the lazy fox jumped over the river quickly",
    "  Spaces   and\ttabs\nand newlines  ",
    "Unseen: zebra, yak & quokka #42!",
    "Über die grüne Straße, immer schnell.",
    "ﬁnally ｆｕｌｌ-width and ligatures",
    "emoji 🙂 and 中文 characters",
    "<sep> is user-defined, </s> is not text",
    "",
    "a",
]

MODELS = {
    "unigram": dict(model_type="unigram", vocab_size=90),
    "bpe": dict(model_type="bpe", vocab_size=90),
    "bpe-bytes": dict(model_type="bpe", vocab_size=340, byte_fallback=True),
    "unigram-raw": dict(
        model_type="unigram",
        vocab_size=90,
        add_dummy_prefix=False,
        remove_extra_whitespaces=False,
        normalization_rule_name="identity",
    ),
}


def corpus(seed):
    rng = random.Random(seed)
    for _ in range(1500):
        yield " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 10)))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    tmp = out + ".part"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    reference = {}
    for seed, (name, options) in enumerate(MODELS.items()):
        proto = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=corpus(seed),
            model_writer=proto,
            hard_vocab_limit=False,
            user_defined_symbols=["<sep>"],
            num_threads=1,
            minloglevel=2,
            **options,
        )
        with open(os.path.join(tmp, f"{name}.model"), "wb") as f:
            f.write(proto.getvalue())
        sp = spm.SentencePieceProcessor(model_proto=proto.getvalue())
        cases = []
        for text in TEXTS:
            pieces = sp.encode(text, out_type=str)
            ids = sp.encode(text)
            # Characters the model does not know come back as themselves
            # (with the unknown piece's id), and are no text when joined.
            known = [p for p, i in zip(pieces, ids) if i != sp.unk_id()]
            cases.append({"text": text, "pieces": pieces, "decoded": sp.decode_pieces(known)})
        reference[name] = cases
    with open(os.path.join(tmp, "reference.json"), "w", encoding="utf-8") as f:
        json.dump(reference, f, ensure_ascii=False, indent=1)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.rename(tmp, out)
    print(f"SentencePiece references written to {out} (sentencepiece {spm.__version__})")


if __name__ == "__main__":
    main()
