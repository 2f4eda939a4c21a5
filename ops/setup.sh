#!/usr/bin/env bash
# Command one: sets everything up and runs a real job.
# Installs and starts the stack, fetches the models, builds, starts
# voxq-api and voxq-worker in the background, creates a demo account and
# key, speaks a sentence with espeak-ng, submits it and prints the
# transcript. Safe to run again: it restarts api and worker.
set -euo pipefail
# shellcheck source=ops/env.sh
source "$(dirname "$0")/env.sh"
cd "$VOXQ_ROOT"

ops/stack.sh
ops/fetch-models.sh
echo "building (the first build compiles CTranslate2, oneDNN and whisper.cpp: about half an hour on 2 cores)" >&2
cargo build --release --workspace --bins

run_dir="$VOXQ_ROOT/.voxq"
mkdir -p "$run_dir"
for name in voxq-api voxq-worker; do
  if [ -f "$run_dir/$name.pid" ]; then
    kill "$(cat "$run_dir/$name.pid")" 2>/dev/null || true
    rm -f "$run_dir/$name.pid"
  fi
done
sleep 1
"$VOXQ_BIN/voxq" migrate >/dev/null
nohup "$VOXQ_BIN/voxq-api" >"$run_dir/voxq-api.log" 2>&1 &
echo $! >"$run_dir/voxq-api.pid"
nohup "$VOXQ_BIN/voxq-worker" >"$run_dir/voxq-worker.log" 2>&1 &
echo $! >"$run_dir/voxq-worker.pid"

for _ in $(seq 1 60); do
  curl -fsS http://127.0.0.1:8080/health/ready >/dev/null 2>&1 && break
  sleep 1
done
curl -fsS http://127.0.0.1:8080/health/ready >/dev/null || {
  echo "voxq-api is not ready; see $run_dir/voxq-api.log" >&2; exit 1; }
for _ in $(seq 1 60); do
  curl -fsS http://127.0.0.1:9091/health/live >/dev/null 2>&1 && break
  sleep 1
done
echo "voxq-api on http://127.0.0.1:8080, voxq-worker metrics on :9091; logs in .voxq/" >&2
"$VOXQ_BIN/voxq" demo
