#!/usr/bin/env bash
# Benchmark: the worker's ct2-whisper engine against faster-whisper on the
# same file, model directory, threads (2), beam (5), int8, language fixed.
# Prints each engine's median time over RUNS runs and their ratio.
#   ops/bench/transcribe.sh [AUDIO_FILE] [RUNS]
# Without a file it uses ../shared/data/audio/jfk.wav when present, or
# generates 11 s of espeak-ng speech.
set -euo pipefail
# shellcheck source=ops/env.sh
source "$(dirname "$0")/../env.sh"
cd "$VOXQ_ROOT"
runs="${2:-5}"
threads=2
audio="${1:-}"
if [ -z "$audio" ]; then
  if [ -f ../shared/data/audio/jfk.wav ]; then
    audio=../shared/data/audio/jfk.wav
  else
    audio=$(mktemp --suffix .wav)
    espeak-ng -v en-us -s 140 -w "$audio" \
      "Thank you very much for your help yesterday. I would like to order a cup of coffee. The children are playing in the park after school."
  fi
fi
ops/fetch-models.sh
cargo build --release -p voxq-worker --bins
venv=ops/bench/.venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q faster-whisper
fi

ours=$("$VOXQ_BIN/voxq-worker" --model-dir "$VOXQ_MODEL_DIR" --threads "$threads" --beam-size 5 \
  --compute-type int8 --log warn transcribe "$audio" --language en --runs "$runs")
theirs=$("$venv/bin/python" ops/bench/faster_whisper_bench.py "$VOXQ_MODEL_DIR" "$audio" "$threads" "$runs")

python3 - "$ours" "$theirs" "$audio" "$runs" <<'PY'
import json, statistics, sys
ours, theirs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
o, t = statistics.median(ours["seconds"]), statistics.median(theirs["seconds"])
print(f"audio: {sys.argv[3]}  runs: {sys.argv[4]}  threads: 2  beam: 5  int8  tiny.en")
print(f"voxq ct2-whisper : {o:.3f} s  {ours['result']['text']}")
print(f"faster-whisper   : {t:.3f} s  {theirs['text']}")
print(f"ratio voxq / faster-whisper: {o / t:.2f}  (below 1 means voxq is faster)")
PY
