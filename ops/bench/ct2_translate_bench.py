"""CTranslate2's own Python path on the same model and sentences as
`voxq-worker translate`: tokenizer encoding, one translate_batch call,
decoding. Prints JSON like the worker's subcommand. The model is either
kind ops/gen-translation-model.py makes: NLLB-like (tokenizer.json,
eng_Latn/deu_Latn tokens) or OPUS-MT-like (source.spm/target.spm, >>deu<<).

usage: ct2_translate_bench.py MODEL_DIR SENTENCES_FILE THREADS RUNS BEAM MAX_LEN
"""
import json
import os
import sys
import time

import ctranslate2

model_dir, path, threads, runs, beam, max_len = sys.argv[1:7]
translator = ctranslate2.Translator(
    model_dir, device="cpu", compute_type="int8", intra_threads=int(threads)
)
sentences = [line.strip() for line in open(path, encoding="utf-8") if line.strip()]

if os.path.exists(f"{model_dir}/source.spm"):
    import sentencepiece

    source = sentencepiece.SentencePieceProcessor(model_file=f"{model_dir}/source.spm")
    target = sentencepiece.SentencePieceProcessor(model_file=f"{model_dir}/target.spm")

    def encode(s):
        return [">>deu<<"] + source.encode(s, out_type=str) + ["</s>"]

    prefix = None

    def decode(tokens):
        return target.decode_pieces([t for t in tokens if target.piece_to_id(t) != target.unk_id()])

else:
    import tokenizers

    tokenizer = tokenizers.Tokenizer.from_file(f"{model_dir}/tokenizer.json")

    def encode(s):
        return ["eng_Latn"] + tokenizer.encode(s, add_special_tokens=False).tokens + ["</s>"]

    prefix = ["deu_Latn"]

    def decode(tokens):
        ids = [tokenizer.token_to_id(t) for t in tokens[1:]]
        return tokenizer.decode([i for i in ids if i is not None])


def run():
    sources = [encode(s) for s in sentences]
    results = translator.translate_batch(
        sources,
        target_prefix=[prefix] * len(sources) if prefix else None,
        beam_size=int(beam),
        max_batch_size=32,
        max_decoding_length=int(max_len),
    )
    return [decode(result.hypotheses[0]) for result in results]


text = run()
times = []
for _ in range(int(runs)):
    start = time.perf_counter()
    text = run()
    times.append(time.perf_counter() - start)
print(json.dumps({"sentences": len(sentences), "text": text, "seconds": times}))
