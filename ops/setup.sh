#!/usr/bin/env bash
# Command one: sets everything up and runs a real job.
# Installs and starts the stack, fetches the models, builds, starts
# voxq-api and voxq-worker in the background, creates a demo account and
# key, speaks a sentence with espeak-ng, submits it and prints the
# transcript. Safe to run again: it restarts api and worker.
set -euo pipefail
# shellcheck source=ops/env.sh
source "$(dirname "$0")/env.sh"
# shellcheck source=ops/progress.sh
source "$(dirname "$0")/progress.sh"
cd "$VOXQ_ROOT"

phase "1/5 services: Postgres, Redis, RabbitMQ and build tools (apt-get where missing)" "about 30 s fresh, seconds after"
ops/stack.sh
phase "2/5 models: Whisper tiny.en and base, Silero VAD, test translation models" "under 1 min fresh, seconds after"
ops/fetch-models.sh
if [ "$VOXQ_CTRANSLATE2" = prebuilt ]; then
  phase "3/5 CTranslate2: the PyPI wheel's library" "10 s fresh"
  ops/fetch-ctranslate2.sh
  phase "4/5 build: whisper.cpp and the Rust workspace" "about 9 min fresh on 2 cores, seconds after"
else
  phase "3/5 CTranslate2: built from source in the next step (VOXQ_CTRANSLATE2=source)" "0 s"
  phase "4/5 build: CTranslate2, oneDNN, whisper.cpp and the Rust workspace" "about 60 min fresh on 2 cores"
fi
cargo build --release --workspace --bins "${VOXQ_CARGO_FEATURES[@]}"
phase "5/5 start voxq-api and voxq-worker, transcribe a spoken sentence" "20 s"

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
phases_total
