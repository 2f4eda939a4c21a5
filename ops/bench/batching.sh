#!/usr/bin/env bash
# Throughput benchmark: 16 concurrent transcription jobs end to end (API,
# RabbitMQ, worker, Postgres), once with the worker's dynamic batching off
# (batch size 1) and once on (VOXQ_BATCH_SIZE, default 8). Same model
# (tiny.en, int8, beam 5, VOXQ_THREADS threads per call: the worker's
# default unless set, half the cores, so that on 2 cores a batch is split
# over two one-thread calls side by side), same 16 clips (4 sentences x 4
# espeak-ng speeds). Prints jobs per minute for each and the ratio.
#   [VOXQ_THREADS=2] ops/bench/batching.sh [JOBS] [BATCH_SIZE]
set -euo pipefail
# shellcheck source=ops/env.sh
source "$(dirname "$0")/../env.sh"
cd "$VOXQ_ROOT"
jobs="${1:-16}"
batch="${2:-8}"

# shellcheck source=ops/bench/scratch.sh
source ops/bench/scratch.sh
scratch_stack batchbench 18081
# One account submits everything: keep every job on one lane, so both runs
# use the same single model replica and only batching differs.
export VOXQ_FAIR_SHARE=1000 VOXQ_LANES=interactive
export VOXQ_THREADS="${VOXQ_THREADS:-0}" VOXQ_BEAM_SIZE=5 VOXQ_COMPUTE_TYPE=int8

sentences=(
  "I would like to order a cup of coffee and a slice of cake."
  "Thank you very much for your help yesterday at the station."
  "The children are playing in the park after school today."
  "Can you tell me where the nearest hospital is, please?"
)
i=0
for speed in 120 140 160 180; do
  for sentence in "${sentences[@]}"; do
    espeak-ng -v en-us -s "$speed" -w "$work/clip$i.wav" "$sentence"
    i=$((i + 1))
  done
done

# Both runs send the same clips: the second must not be answered from the
# result cache (scratch_account turns it off).
scratch_account
scratch_api

run() { # batch_size -> prints seconds for all jobs
  VOXQ_BATCH_SIZE="$1" "$VOXQ_BIN/voxq-worker" >"$work/worker$1.log" 2>&1 &
  local worker=$!
  # Ready when the model list shows the worker's heartbeat.
  scratch_wait_model whisper
  # Warm-up job: first-call allocations are not what we measure.
  "$VOXQ_BIN/voxq" submit --api-key "$key" --language en --wait "$work/clip0.wav" >/dev/null
  local start end
  start=$(date +%s.%N)
  local submits=()
  for n in $(seq 0 $((jobs - 1))); do
    "$VOXQ_BIN/voxq" submit --api-key "$key" --language en --wait \
      "$work/clip$((n % 16)).wav" >"$work/out$1-$n.json" &
    submits+=($!)
  done
  for pid in "${submits[@]}"; do wait "$pid"; done
  end=$(date +%s.%N)
  local done_ok
  done_ok=$(grep -l '"status": *"succeeded"' "$work"/out"$1"-*.json | wc -l)
  [ "$done_ok" -eq "$jobs" ] || { echo "only $done_ok of $jobs jobs succeeded" >&2; exit 1; }
  kill "$worker"; wait "$worker" 2>/dev/null || true
  python3 -c "print($end - $start)"
}

plain=$(run 1)
batched=$(run "$batch")
python3 - "$jobs" "$batch" "$plain" "$batched" "$VOXQ_THREADS" <<'PY'
import sys
jobs, batch, plain, batched = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
threads = "the default number of" if sys.argv[5] == "0" else sys.argv[5]
print(f"{jobs} concurrent jobs, tiny.en int8, {threads} threads per call, beam 5, one worker")
print(f"batch size 1      : {plain:6.2f} s  {jobs / plain * 60:6.1f} jobs/min")
print(f"batch size {batch:<2}     : {batched:6.2f} s  {jobs / batched * 60:6.1f} jobs/min")
print(f"ratio batched / unbatched throughput: {plain / batched:.2f}")
PY
