#!/usr/bin/env bash
# Transcription benchmark, same audio, same tiny.en weights, 2 threads,
# beam 5, language fixed, short (about 11 s) and long (over 3 min) audio:
#   - voxq ct2-whisper   vs faster-whisper (CTranslate2 model, int8);
#   - voxq whisper-cpp   vs whisper.cpp's own CLI (the converted ggml file,
#     f16), the CLI built from the whisper.cpp sources whisper-rs-sys ships.
# Prints each one's median over RUNS timed runs (after a warm-up) and the
# ratios; model loading is left out on every side. When the worker built
# with CTranslate2 from source is there too (ops/bench/source-worker.sh),
# it is measured in the same run: the prebuilt wheel library against the
# from-source build.
#   ops/bench/transcribe.sh [RUNS] [SHORT_AUDIO]
# VOXQ_BENCH_WHISPER_CPP=0 leaves out the whisper.cpp pair (when only the
# CTranslate2 rows matter, e.g. prebuilt against from source).
# Without a file the short audio is ../shared/data/audio/jfk.wav when it is
# there, else 11 s of espeak-ng speech; the long audio is always generated.
set -euo pipefail
# shellcheck source=ops/env.sh
source "$(dirname "$0")/../env.sh"
cd "$VOXQ_ROOT"
runs="${1:-3}"
short="${2:-}"
threads=2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

ops/fetch-models.sh >/dev/null
ops/fetch-ctranslate2.sh
cargo build --release -p voxq-worker --bins
source_worker=$(ops/bench/source-worker.sh)
venv="$HOME/.cache/voxq/venv"
"$venv/bin/python" -c "import faster_whisper" 2>/dev/null || "$venv/bin/pip" install -q faster-whisper
with_cpp="${VOXQ_BENCH_WHISPER_CPP:-1}"
if [ "$with_cpp" = 1 ]; then cli=$(ops/bench/build-whisper-cli.sh); fi

if [ -z "$short" ]; then
  if [ -f ../shared/data/audio/jfk.wav ]; then
    short=../shared/data/audio/jfk.wav
  else
    short="$work/short.wav"
    espeak-ng -v en-us -s 140 -w "$short" \
      "Thank you very much for your help yesterday. I would like to order a cup of coffee. The children are playing in the park after school."
  fi
fi
# Over 3 minutes of distinct sentences.
long="$work/long.wav"
python3 - >"$work/long.txt" <<'PY'
import itertools
subjects = ["The train", "My neighbour", "The new library", "Our team", "The old bridge",
            "A small cafe", "The museum", "Her brother", "The city council", "This recipe"]
verbs = ["opens", "closes", "changes", "improves", "surprises", "needs", "welcomes"]
objects = ["every morning at eight", "after the long winter", "before the holidays",
           "without any warning", "for the first time", "despite the heavy rain"]
lines = [f"{s} {v} {o}." for s, v, o in itertools.product(subjects, verbs, objects)]
print(" ".join(lines[::5][:80]))
PY
espeak-ng -v en-us -s 150 -w "$work/long-22k.wav" -f "$work/long.txt"
ffmpeg -loglevel error -y -i "$work/long-22k.wav" -ar 16000 -ac 1 "$long"

voxq() { # engine model_path audio [worker binary]
  VOXQ_ENGINE="$1" "${4:-$VOXQ_BIN/voxq-worker}" --model-dir "$2" --threads "$threads" --beam-size 5 \
    --compute-type int8 --log warn transcribe "$3" --language en --runs "$runs"
}
whisper_cli() { # audio -> {"seconds": [...], "text": ...}
  local times=() text=""
  for i in $(seq 0 "$runs"); do
    "$cli" -m models/ggml-tiny.en.bin -f "$1" -t "$threads" -bs 5 -bo 5 -l en -nt \
      >"$work/cli.txt" 2>"$work/cli.err"
    # Its own timings: total minus model loading, as for the others.
    local seconds
    seconds=$(awk '/load time/ {load=$(NF-1)} /total time/ {total=$(NF-1)}
      END {printf "%.4f", (total - load) / 1000}' "$work/cli.err")
    [ "$i" -gt 0 ] && times+=("$seconds")
    text=$(tr '\n' ' ' <"$work/cli.txt")
  done
  python3 -c 'import json,sys; print(json.dumps({"seconds": [float(x) for x in sys.argv[2:]], "text": sys.argv[1]}))' \
    "$text" "${times[@]}"
}

report() { # label audio
  local ct2 src='null' fw cpp='null' cli_out='null'
  ct2=$(voxq ct2-whisper "$VOXQ_MODEL_DIR" "$2")
  [ -z "$source_worker" ] || src=$(voxq ct2-whisper "$VOXQ_MODEL_DIR" "$2" "$source_worker")
  fw=$("$venv/bin/python" ops/bench/faster_whisper_bench.py "$VOXQ_MODEL_DIR" "$2" "$threads" "$runs")
  if [ "$with_cpp" = 1 ]; then
    cpp=$(voxq whisper-cpp models/ggml-tiny.en.bin "$2")
    cli_out=$(whisper_cli "$2")
  fi
  python3 - "$1" "$2" "$ct2" "$fw" "$cpp" "$cli_out" "$src" <<'PY'
import json, statistics, sys, wave
label, audio = sys.argv[1], sys.argv[2]
with wave.open(audio) as w:
    duration = w.getnframes() / w.getframerate()
ct2, fw, cpp, cli, src = (json.loads(a) for a in sys.argv[3:8])
med = lambda r: statistics.median(r["seconds"])
text = lambda r: r["result"]["text"] if "result" in r else r["text"]
# The real-time factor: processing time over audio time (0.1: ten times
# faster than real time), what sizing a worker pool needs.
print(f"== {label}: {audio} ({duration:.1f} s of audio)")
rows = [("voxq ct2-whisper", ct2), ("faster-whisper", fw)]
if cpp:
    rows += [("voxq whisper-cpp", cpp), ("whisper.cpp CLI", cli)]
if src:
    rows.insert(1, ("  ct2 from source", src))
for name, r in rows:
    print(f"{name:18}: {med(r):7.3f} s  RTF {med(r) / duration:.3f}  {text(r).strip()[:60]}")
print(f"ratio voxq ct2-whisper / faster-whisper : {med(ct2) / med(fw):.2f}")
if src:
    same = text(ct2) == text(src)
    print(f"ratio prebuilt CTranslate2 / from source: {med(ct2) / med(src):.2f}"
          f"  (below 1: the wheel's library faster; same text: {same})")
if cpp:
    print(f"ratio voxq whisper-cpp / whisper.cpp CLI: {med(cpp) / med(cli):.2f}  (below 1: voxq faster)")
PY
}

echo "runs: $runs  threads: $threads  beam: 5  tiny.en (int8 CTranslate2, f16 ggml)"
report short "$short"
report long "$long"
