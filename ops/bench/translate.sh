#!/usr/bin/env bash
# Translation benchmark: voxq's batched ct2-translate path (sentence
# splitting, tokenizing, one CTranslate2 call, detokenising, paragraph
# layout) against CTranslate2's Python translate_batch on the same
# generated models (ops/gen-translation-model.py: tokenizer.json and
# SentencePiece), the same sentences, beam 4, at most 32 output tokens, at
# 1 and 2 threads. Prints sentences per second, the ratios, and how many
# outputs are identical. When the worker built with CTranslate2 from source
# is there too (ops/bench/source-worker.sh), it is measured in the same run.
#   ops/bench/translate.sh [SENTENCES] [RUNS]
set -euo pipefail
# shellcheck source=ops/env.sh
source "$(dirname "$0")/../env.sh"
cd "$VOXQ_ROOT"
count="${1:-400}"
runs="${2:-5}"
beam=4 max_len=32

ops/fetch-models.sh >/dev/null
ops/fetch-ctranslate2.sh
cargo build --release -p voxq-worker --bins
source_worker=$(ops/bench/source-worker.sh)
venv="$HOME/.cache/voxq/venv"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Distinct sentences, one per line (each line is a paragraph for voxq).
python3 - "$count" >"$work/sentences.txt" <<'PY'
import itertools, sys
subjects = ["The train", "My neighbour", "The new library", "Our team", "The old bridge",
            "A small cafe", "The museum", "Her brother", "The city council", "This recipe"]
verbs = ["opens", "closes", "changes", "improves", "surprises", "needs", "welcomes", "starts"]
objects = ["every morning at eight", "after the long winter", "before the holidays",
           "without any warning", "for the first time", "despite the rain"]
lines = [f"{s} {v} {o}." for s, v, o in itertools.product(subjects, verbs, objects)]
print("\n".join(lines[: int(sys.argv[1])]))
PY
# Both at 1 and at 2 threads per call: on a model this small CTranslate2's
# intra-op threading costs more than it gives, and more so on ruy.
for model in translate-test translate-test-spm; do
for threads in 1 2; do
  cat >"$work/models.toml" <<TOML
[[models]]
name = "$model"
engine = "ct2-translate"
path = "$VOXQ_ROOT/models/$model"
threads = $threads
beam_size = $beam
max_decoding_length = $max_len
TOML
  ours=$(VOXQ_MODELS_FILE="$work/models.toml" "$VOXQ_BIN/voxq-worker" --log warn \
    translate "$work/sentences.txt" --to de --from en --runs "$runs")
  src=null
  [ -z "$source_worker" ] || src=$(VOXQ_MODELS_FILE="$work/models.toml" "$source_worker" --log warn \
    translate "$work/sentences.txt" --to de --from en --runs "$runs")
  theirs=$("$venv/bin/python" ops/bench/ct2_translate_bench.py "$VOXQ_ROOT/models/$model" \
    "$work/sentences.txt" "$threads" "$runs" "$beam" "$max_len")
  python3 - "$ours" "$theirs" "$count" "$threads" "$model" "$src" <<'PY'
import json, statistics, sys
ours, theirs, n, threads, model = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
src = json.loads(sys.argv[6])
o, t = statistics.median(ours["seconds"]), statistics.median(theirs["seconds"])
assert theirs["sentences"] == n
same = sum(a.strip() == b.strip() for a, b in zip(ours["text"].split("\n"), theirs["text"]))
print(f"{n} sentences, {model}, {threads} thread(s), beam 4, max 32 tokens, int8")
print(f"  voxq ct2-translate          : {o:.3f} s  {n / o:8.1f} sentences/s")
print(f"  ctranslate2 translate_batch : {t:.3f} s  {n / t:8.1f} sentences/s")
print(f"  ratio voxq / python throughput: {t / o:.2f}  (above 1 means voxq is faster)")
print(f"  identical outputs: {same} of {n}")
if src:
    s = statistics.median(src["seconds"])
    same_src = sum(a.strip() == b.strip() for a, b in zip(ours["text"].split("\n"), src["text"].split("\n")))
    print(f"  voxq, CTranslate2 from source: {s:.3f} s  {n / s:8.1f} sentences/s")
    print(f"  ratio prebuilt / from-source throughput: {s / o:.2f}  (above 1: the wheel's library faster)")
    print(f"  identical to the from-source build: {same_src} of {n}")
PY
done
done
