# Sourced by the end-to-end benchmarks: a scratch voxq of their own (its
# own database, namespace and port) on the running stack, torn down on
# exit. After `scratch_stack NAME PORT`: $work is a scratch directory, and
# `scratch_account` sets $account and $key (an enterprise account whose
# jobs all run: none is answered from the result cache).
# shellcheck shell=bash

scratch_stack() { # name, default port
  ops/stack.sh >/dev/null
  ops/fetch-models.sh >/dev/null
  cargo build --release --workspace --bins

  ns="$1$(date +%s)"
  db="voxq_$ns"
  local port="${VOXQ_BENCH_PORT:-$2}"
  work=$(mktemp -d)
  export VOXQ_DATABASE_URL="postgres://postgres:postgres@127.0.0.1:5432/$db"
  export VOXQ_NAMESPACE="$ns" VOXQ_API_BIND="127.0.0.1:$port" VOXQ_API_METRICS_BIND=127.0.0.1:0 VOXQ_LOG=warn
  export VOXQ_API_URL="http://127.0.0.1:$port" VOXQ_WORKER_METRICS_BIND="127.0.0.1:0"
  export VOXQ_IP_RATE_PER_MINUTE=100000 VOXQ_IP_BURST=10000
  pids=()
  trap scratch_cleanup EXIT
  "$VOXQ_BIN/voxq" migrate >/dev/null
}

scratch_cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql "${VOXQ_DATABASE_URL%/*}/postgres" -qc "drop database if exists $db with (force)" >/dev/null 2>&1 || true
  # The run's queues (lanes, retry delays, dead letters) go with it.
  local queue
  for queue in $(rabbitmqctl -q list_queues name 2>/dev/null | grep "^$ns\." || true); do
    rabbitmqctl -q delete_queue "$queue" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}

scratch_account() {
  account=$("$VOXQ_BIN/voxq" admin create-account --name bench --tier enterprise 2>/dev/null | tail -n1)
  key=$("$VOXQ_BIN/voxq" admin create-key --account "$account" 2>/dev/null | tail -n1)
  psql "$VOXQ_DATABASE_URL" -qc "update accounts set result_cache = 'off' where id = '$account'"
}

# Starts the API in the background, logging to $work/api.log.
scratch_api() {
  "$VOXQ_BIN/voxq-api" >"$work/api.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    curl -fsS "$VOXQ_API_URL/health/ready" >/dev/null 2>&1 && return
    sleep 0.2
  done
  echo "the API did not become ready: see $work/api.log" >&2
  return 1
}

# Waits until /v1/models shows a worker serving a model matching $1.
scratch_wait_model() {
  for _ in $(seq 300); do
    curl -fsS -H "authorization: Bearer $key" "$VOXQ_API_URL/v1/models" 2>/dev/null \
      | grep -q "$1" && return
    sleep 0.2
  done
  echo "no worker came up serving $1" >&2
  return 1
}
