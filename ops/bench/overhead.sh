#!/usr/bin/env bash
# Queue overhead: for a tiny translation job, time from submit to the
# client knowing the result, minus the worker's own processing time; p50
# and p99 over JOBS jobs each by polling, long-polling and webhook, in one
# run against one API and one worker (generated translation model).
#   ops/bench/overhead.sh [JOBS]
set -euo pipefail
# shellcheck source=ops/env.sh
source "$(dirname "$0")/../env.sh"
cd "$VOXQ_ROOT"
jobs="${1:-100}"

# shellcheck source=ops/bench/scratch.sh
source ops/bench/scratch.sh
scratch_stack overhead 18082
# The benchmark's receiver listens on this machine.
export VOXQ_WEBHOOK_ALLOW=127.0.0.1 VOXQ_WEBHOOK_ALLOW_HTTP=true
cat >"$work/models.toml" <<TOML
[[models]]
name = "translate-test"
engine = "ct2-translate"
path = "$VOXQ_ROOT/models/translate-test"
threads = 1
TOML
scratch_account
scratch_api
VOXQ_MODELS_FILE="$work/models.toml" "$VOXQ_BIN/voxq-worker" >"$work/worker.log" 2>&1 &
pids+=($!)
scratch_wait_model '"workers":[1-9]'
VOXQ_BENCH_KEY="$key" "$VOXQ_BIN/voxq-bench-overhead" --jobs "$jobs"
