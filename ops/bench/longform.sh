#!/usr/bin/env bash
# Long-form benchmark: a generated recording of over four minutes with
# pauses and a 40 s stretch without speech, through voxq's worker (VAD and
# batched chunks; sequential; whisper.cpp with VAD and sequential) and
# faster-whisper (sequential, vad_filter=True, BatchedInferencePipeline
# with 8), same tiny.en, int8, 2 threads, beam 5. Prints time, RTFx, WER
# and the words emitted inside the silent stretch, and voxq's speed-up
# over the fastest faster-whisper mode.
#   ops/bench/longform.sh [RUNS]
set -euo pipefail
# shellcheck source=ops/env.sh
source "$(dirname "$0")/../env.sh"
cd "$VOXQ_ROOT"
runs="${1:-3}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

ops/fetch-models.sh >/dev/null
ops/fetch-ctranslate2.sh
cargo build --release -p voxq-worker --bins
venv="$HOME/.cache/voxq/venv"
"$venv/bin/python" -c "import faster_whisper" 2>/dev/null || "$venv/bin/pip" install -q faster-whisper
"$venv/bin/python" ops/bench/longform_bench.py "$VOXQ_BIN/voxq-worker" "$VOXQ_MODEL_DIR" \
  models/ggml-tiny.en.bin "$runs" "$work"
