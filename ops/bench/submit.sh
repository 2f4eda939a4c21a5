#!/usr/bin/env bash
# Submit throughput benchmark: starts voxq-api on a scratch database and
# namespace, then runs voxq-bench-submit (64 connections, 10 s per phase by
# default; pass --concurrency/--seconds to change them).
set -euo pipefail
# shellcheck source=ops/env.sh
source "$(dirname "$0")/../env.sh"
cd "$VOXQ_ROOT"

ops/stack.sh >/dev/null
cargo build --release -p voxq-api -p voxq-bench

ns="bench$(date +%s)"
db="voxq_$ns"
port="${VOXQ_BENCH_PORT:-18080}"
export VOXQ_DATABASE_URL="postgres://postgres:postgres@127.0.0.1:5432/$db"
export VOXQ_NAMESPACE="$ns" VOXQ_API_BIND="127.0.0.1:$port" VOXQ_API_METRICS_BIND=127.0.0.1:0 VOXQ_LOG=warn VOXQ_STANDBY_MODELS="translate-test=translate"
# One client address sends everything: lift the per-address limit.
export VOXQ_IP_RATE_PER_MINUTE=100000000 VOXQ_IP_BURST=10000000 VOXQ_DB_POOL_SIZE=${VOXQ_DB_POOL_SIZE:-24}

"$VOXQ_BIN/voxq-api" &
api=$!
cleanup() {
  kill "$api" 2>/dev/null || true
  wait "$api" 2>/dev/null || true
  psql -h 127.0.0.1 -U postgres -qc "drop database if exists $db with (force)" >/dev/null 2>&1 || true
  for q in "$ns.jobs.transcribe" "$ns.jobs.translate" "$ns.jobs.dead"; do
    rabbitmqctl delete_queue "$q" >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && break
  sleep 0.2
done
"$VOXQ_BIN/voxq-bench-submit" --api-url "http://127.0.0.1:$port" "$@"
