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

ops/stack.sh >/dev/null
ops/fetch-models.sh >/dev/null
cargo build --release --workspace --bins

ns="overhead$(date +%s)"
db="voxq_$ns"
port="${VOXQ_BENCH_PORT:-18082}"
work=$(mktemp -d)
export VOXQ_DATABASE_URL="postgres://postgres:postgres@127.0.0.1:5432/$db"
export VOXQ_NAMESPACE="$ns" VOXQ_API_BIND="127.0.0.1:$port" VOXQ_LOG=warn
export VOXQ_API_URL="http://127.0.0.1:$port" VOXQ_WORKER_METRICS_BIND="127.0.0.1:0"
export VOXQ_IP_RATE_PER_MINUTE=100000 VOXQ_IP_BURST=10000
# The benchmark's receiver listens on this machine.
export VOXQ_WEBHOOK_ALLOW=127.0.0.1 VOXQ_WEBHOOK_ALLOW_HTTP=true
cat >"$work/models.toml" <<TOML
[[models]]
name = "translate-test"
engine = "ct2-translate"
path = "$VOXQ_ROOT/models/translate-test"
threads = 1
TOML

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql "${VOXQ_DATABASE_URL%/*}/postgres" -qc "drop database if exists $db with (force)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

"$VOXQ_BIN/voxq" migrate >/dev/null
account=$("$VOXQ_BIN/voxq" admin create-account --name bench --tier enterprise 2>/dev/null | tail -n1)
key=$("$VOXQ_BIN/voxq" admin create-key --account "$account" 2>/dev/null | tail -n1)
# Every job must run: none answered from the result cache.
psql "$VOXQ_DATABASE_URL" -qc "update accounts set result_cache = 'off' where id = '$account'"
"$VOXQ_BIN/voxq-api" >"$work/api.log" 2>&1 &
pids+=($!)
VOXQ_MODELS_FILE="$work/models.toml" "$VOXQ_BIN/voxq-worker" >"$work/worker.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do
  curl -fsS -H "authorization: Bearer $key" "$VOXQ_API_URL/v1/models" 2>/dev/null \
    | grep -q '"workers":[1-9]' && break
  sleep 0.2
done
VOXQ_BENCH_KEY="$key" "$VOXQ_BIN/voxq-bench-overhead" --jobs "$jobs"
