"""CTranslate2's own Python path on the same model and sentences as
`voxq-worker translate`: tokenizers encoding, one translate_batch call,
decoding. Prints JSON like the worker's subcommand.

usage: ct2_translate_bench.py MODEL_DIR SENTENCES_FILE THREADS RUNS BEAM MAX_LEN
"""
import json
import sys
import time

import ctranslate2
import tokenizers

model_dir, path, threads, runs, beam, max_len = sys.argv[1:7]
translator = ctranslate2.Translator(
    model_dir, device="cpu", compute_type="int8", intra_threads=int(threads)
)
tokenizer = tokenizers.Tokenizer.from_file(f"{model_dir}/tokenizer.json")
sentences = [line.strip() for line in open(path, encoding="utf-8") if line.strip()]


def run():
    sources = [
        ["eng_Latn"] + tokenizer.encode(s, add_special_tokens=False).tokens + ["</s>"]
        for s in sentences
    ]
    results = translator.translate_batch(
        sources,
        target_prefix=[["deu_Latn"]] * len(sources),
        beam_size=int(beam),
        max_batch_size=32,
        max_decoding_length=int(max_len),
    )
    out = []
    for result in results:
        tokens = result.hypotheses[0][1:]
        ids = [tokenizer.token_to_id(t) for t in tokens]
        out.append(tokenizer.decode([i for i in ids if i is not None]))
    return out


text = run()
times = []
for _ in range(int(runs)):
    start = time.perf_counter()
    text = run()
    times.append(time.perf_counter() - start)
print(json.dumps({"sentences": len(sentences), "text": text, "seconds": times}))
