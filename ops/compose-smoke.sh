#!/usr/bin/env bash
# The compose stack's smoke test (CI runs it): builds the images, brings up
# compose/compose.yaml under a project of its own, and checks on the real
# containers that
#   1. a spoken sentence (espeak-ng on this machine) is transcribed through
#      the published port (HAProxy → API replicas → RabbitMQ → worker),
#      and `docker compose run --rm demo` (the README's way) prints one;
#   2. with --scale worker=3, a burst of jobs is spread over all three
#      workers (each worker's log names the jobs it finished);
#   3. Prometheus scrapes both API replicas and the three workers;
#   4. a worker killed (docker kill) in the middle of a long job does not
#      lose it: the job succeeds on another worker and is billed once
#      (GET /v1/usage, today's counters and Postgres's daily rows, equal
#      to the sum of the jobs' durations);
# then removes everything it created (`down -v`, also on failure or
# interruption). Docker is installed if missing (ops/docker/install.sh);
# where no image registry answers, local base images are built first
# (ops/docker/local-base.sh). Every step has a timeout, and so has the
# whole run (VOXQ_SMOKE_TIMEOUT, 3600 s). From nothing on two cores, with
# the host's binaries: about 6 min (Docker 0.5, local bases 3, the
# binaries' production build 1 to 2 after ops/test.sh's, images 1.2, the
# stack and its checks 1.2); compiling in Docker instead, 15 min (images
# 10.5); with the images built, 2 min. Only its own project
# (voxq-smoke-<pid>) is touched; ports
# are published on 127.0.0.1 only, on free ports.
#   ops/compose-smoke.sh [--prepare]
# --prepare only installs Docker and builds the base images, then exits:
# ops/test.sh runs it while cargo compiles, then the smoke test itself.
# Environment: VOXQ_SMOKE_LOCAL_IMAGES=1|0 forces or forbids the local base
# images (default: when Docker Hub does not answer); VOXQ_SMOKE_KEEP=1
# leaves the stack up for a look (remove it with the printed command);
# VOXQ_SMOKE_BINARIES=host|compiled: the images carry this checkout's
# release binaries, built here by cargo (seconds after ops/test.sh's build;
# the Dockerfile's VOXQ_BINARIES=dist), or compile them in the image's own
# build stage as a user's `docker compose build` does (about 10 min more
# from nothing). Default: host on a Debian bookworm host (the images' base,
# so the same C library), compiled elsewhere.
set -euo pipefail

case "${1:-}" in
  "") prepare=0 ;;
  --prepare) prepare=1 ;;
  *) echo "usage: $0 [--prepare]" >&2; exit 2 ;;
esac

if [ -z "${VOXQ_SMOKE_INNER:-}" ]; then
  export VOXQ_SMOKE_INNER=1
  exec timeout --foreground --kill-after=60 "${VOXQ_SMOKE_TIMEOUT:-3600}" "$0" "$@"
fi

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
project="voxq-smoke-$$"
work=$(mktemp -d "${TMPDIR:-/tmp}/voxq-smoke.XXXXXX")
env_file="$work/.env"
compose_files=(-f compose/compose.yaml)
started=$SECONDS
phase_start=$SECONDS

say() { echo "compose-smoke: $*" >&2; }
fail() { say "FAILED: $*"; exit 1; }
phase() { # name: closes the previous phase's timing
  local now=$SECONDS
  [ -z "${phase_name:-}" ] || say "  ${phase_name}: $((now - phase_start)) s"
  phase_name="$1"; phase_start=$now
  say "== $1"
}
dc() { docker compose -p "$project" "${compose_files[@]}" --env-file "$env_file" "$@"; }

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -f "$env_file" ]; then
    if [ "$rc" != 0 ]; then
      say "logs of the failed run (last 40 lines per service):"
      timeout 60 docker compose -p "$project" "${compose_files[@]}" --env-file "$env_file" \
        logs --no-color --tail 40 >&2 2>/dev/null || true
    fi
    if [ "${VOXQ_SMOKE_KEEP:-0}" = 1 ]; then
      say "kept: docker compose -p $project ${compose_files[*]} --env-file $env_file down -v"
      exit "$rc"
    fi
    timeout 180 docker compose -p "$project" "${compose_files[@]}" --env-file "$env_file" \
      down -v --remove-orphans --timeout 10 >/dev/null 2>&1 || say "down -v failed; remove project $project by hand"
  fi
  rm -rf "$work"
  if [ "$rc" = 0 ]; then say "passed in $((SECONDS - started)) s"; else say "failed after $((SECONDS - started)) s"; fi
  exit "$rc"
}
trap cleanup EXIT
# A command that fails outside fail() names itself.
trap 'say "FAILED at line $LINENO: $BASH_COMMAND"' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------ setup
phase "docker"
if ! docker compose version >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
  ops/docker/install.sh
fi
for tool in espeak-ng curl jq; do
  command -v "$tool" >/dev/null 2>&1 || {
    say "installing $tool"
    if [ "$(id -u)" = 0 ]; then s=(); else s=(sudo); fi
    "${s[@]}" apt-get update -qq && "${s[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null
  }
done

compose/init-env.sh "$env_file" 2>/dev/null
{
  echo "# compose-smoke overrides"
  echo "VOXQ_HTTP_PORT="          # free ports, on 127.0.0.1
  echo "VOXQ_PROMETHEUS_PORT="
  echo "VOXQ_API_REPLICAS=2"
  echo "VOXQ_WORKER_REPLICAS=1"
  # Three workers share this machine's cores.
  echo "VOXQ_THREADS=1"
  echo "VOXQ_WORKER_CPUS=1"
  echo "VOXQ_WORKER_MEMORY=1g"
  echo "VOXQ_SHUTDOWN_GRACE=10"
  echo "VOXQ_WORKER_STOP_GRACE=20s"
  echo "VOXQ_REVISION=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
} >>"$env_file"

binaries="${VOXQ_SMOKE_BINARIES:-}"
if [ -z "$binaries" ]; then
  # shellcheck disable=SC1091
  codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
  if [ "$codename" = bookworm ]; then binaries=host; else binaries=compiled; fi
fi
case "$binaries" in host|compiled) ;; *) fail "VOXQ_SMOKE_BINARIES is host or compiled, not '$binaries'" ;; esac

phase "base images"
local_images="${VOXQ_SMOKE_LOCAL_IMAGES:-}"
if [ -z "$local_images" ]; then
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 https://registry-1.docker.io/v2/ || true)
  case "$code" in 200|401) local_images=0 ;; *) local_images=1 ;; esac
fi
if [ "$local_images" = 1 ]; then
  say "no image registry answers: local base images (ops/docker/local-base.sh)"
  if [ "$binaries" = host ]; then bases=(debian stores); else bases=(debian rust stores); fi
  ops/docker/local-base.sh "${bases[@]}"
  cat "${XDG_CACHE_HOME:-$HOME/.cache}/voxq/docker/local-images.env" >>"$env_file"
fi
if [ "$prepare" = 1 ]; then
  # Nothing of a project was started: nothing for the cleanup to take down.
  rm -f "$env_file"
  phase "prepared: Docker and the base images"
  exit 0
fi

# The Prometheus configuration is mounted from ops/prometheus; without it
# (a checkout that lacks it) a minimal one stands in.
if [ ! -f ops/prometheus/prometheus.yml ] || [ ! -d ops/prometheus/rules ]; then
  say "ops/prometheus/prometheus.yml or rules/ missing: a minimal configuration stands in"
  mkdir -p "$work/prometheus/rules"
  cat >"$work/prometheus/prometheus.yml" <<'EOF'
global: {scrape_interval: 15s}
scrape_configs:
  - job_name: voxq-api
    dns_sd_configs: [{names: [api], type: A, port: 9090}]
  - job_name: voxq-worker
    dns_sd_configs: [{names: [worker], type: A, port: 9091}]
EOF
  cat >"$work/compose.override.yaml" <<EOF
services:
  prometheus:
    volumes:
      - $work/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro
      - $work/prometheus/rules:/etc/prometheus/rules:ro
EOF
  compose_files+=(-f "$work/compose.override.yaml")
fi

case "$binaries" in
  host)
    phase "release binaries (this checkout, as the images run them)"
    # The production feature set (no test-only fault injection): after
    # ops/test.sh's build, only voxq-worker's own crate compiles again.
    (
      # shellcheck source=ops/env.sh
      source ops/env.sh
      ops/fetch-ctranslate2.sh >/dev/null
      timeout 3600 nice -n 19 cargo build --release --locked --quiet "${VOXQ_CARGO_FEATURES[@]}" \
        -p voxq -p voxq-api -p voxq-worker
      rm -rf compose/.dist
      mkdir -p compose/.dist/lib/voxq
      ops/install.sh compose/.dist 2>/dev/null
    ) || fail "building the release binaries"
    echo "VOXQ_BINARIES=dist" >>"$env_file"
    ;;
  compiled) echo "VOXQ_BINARIES=compiled" >>"$env_file" ;;
esac

phase "build images (api, worker, models, demo)"
# Under a fixed project name: compose labels the images it builds with
# the project, and a new name per run would leave the last run's images
# behind, dangling.
timeout 3600 nice -n 19 docker compose -p voxq-smoke "${compose_files[@]}" --env-file "$env_file" \
  build --progress=plain api worker models demo >"$work/build.log" 2>&1 \
  || { tail -n 60 "$work/build.log" >&2; fail "image build"; }
for image in voxq-api voxq-worker voxq-models voxq-demo; do
  say "  $image: $(docker image inspect --format '{{.Size}}' "$image:latest" | awk '{printf "%d MB", $1/1e6}')"
done

phase "up --wait"
timeout 900 docker compose -p "$project" "${compose_files[@]}" --env-file "$env_file" \
  up -d --wait --wait-timeout 840 >"$work/up.log" 2>&1 \
  || { cat "$work/up.log" >&2; dc ps -a >&2 || true; fail "the stack did not come up healthy"; }
dc ps --format 'table {{.Service}}\t{{.Status}}' >&2
base="http://$(dc port lb 8080)"
say "API through HAProxy at $base"

# ------------------------------------------------------------------ helpers
account=$(timeout 60 docker compose -p "$project" "${compose_files[@]}" --env-file "$env_file" \
  exec -T api voxq admin create-account --name smoke --tier enterprise | tr -d '\r\n')
[ -n "$account" ] || fail "voxq admin create-account printed nothing"
key=$(timeout 60 docker compose -p "$project" "${compose_files[@]}" --env-file "$env_file" \
  exec -T api voxq admin create-key --account "$account" --name smoke | tr -d '\r\n')
case "$key" in voxq_*) ;; *) fail "voxq admin create-key printed '$key'" ;; esac
say "account $account, key ${key:0:17}…"

api() { curl -sS --max-time 90 -H "Authorization: Bearer $key" "$@"; }
speak() { # file text...
  local out="$1"; shift
  timeout 60 espeak-ng -v en-us -s 140 -w "$out" "$*"
}
submit() { # wav → job id
  local answer
  answer=$(api -F "file=@$1" -F language=en "$base/v1/jobs") || return 1
  jq -er .id <<<"$answer" || { say "submit answered: $answer"; return 1; }
}
wait_job() { # id, seconds → the finished job's JSON
  local id="$1" until=$((SECONDS + $2)) job status
  while [ "$SECONDS" -lt "$until" ]; do
    job=$(api "$base/v1/jobs/$id?wait=30") || { sleep 1; continue; }
    status=$(jq -r .status <<<"$job")
    case "$status" in
      succeeded) echo "$job"; return 0 ;;
      failed|cancelled) say "job $id $status: $(jq -c .error <<<"$job")"; return 1 ;;
    esac
  done
  say "job $id not finished after $2 s"; return 1
}
words() { tr '[:upper:]' '[:lower:]' | tr -cs '[:lower:]' ' '; }

# ------------------------------------------------------------------ 1
phase "1. a spoken sentence through the published port"
sentence="Thank you very much for your help yesterday. The children are playing in the park after school."
speak "$work/one.wav" "$sentence"
id=$(submit "$work/one.wav") || fail "submit"
job=$(wait_job "$id" 300) || fail "the first job"
transcript=$(jq -r .result.text <<<"$job")
say "spoken:     $sentence"
say "transcript: $transcript"
heard=$(words <<<"$transcript")
for word in thank help yesterday children playing park school; do
  case " $heard " in *" $word "*) ;; *) fail "'$word' is not in the transcript" ;; esac
done
jobs_done=("$id")
# The README's way: `docker compose run --rm demo` (its own demo account).
demo=$(timeout 300 docker compose -p "$project" "${compose_files[@]}" --env-file "$env_file" \
  run --rm demo 2>&1) || { echo "$demo" >&2; fail "docker compose run --rm demo"; }
grep -q '^transcript: .*[a-z]' <<<"$demo" || { echo "$demo" >&2; fail "the demo printed no transcript"; }
say "demo: $(grep '^transcript:' <<<"$demo")"

# ------------------------------------------------------------------ 2
phase "2. --scale worker=3: jobs spread over the workers"
timeout 600 docker compose -p "$project" "${compose_files[@]}" --env-file "$env_file" \
  up -d --wait --wait-timeout 540 --scale worker=3 --no-recreate >"$work/scale.log" 2>&1 \
  || { cat "$work/scale.log" >&2; fail "scaling to three workers"; }
mapfile -t workers < <(dc ps -q worker)
[ "${#workers[@]}" = 3 ] || fail "expected 3 worker containers, found ${#workers[@]}"
# Each new worker must be consuming before the burst, or the first
# ones take it all: wait until the interactive queue has 3 consumers.
for _ in $(seq 1 60); do
  consumers=$(dc exec -T rabbitmq rabbitmqctl -q list_queues name consumers 2>/dev/null \
    | awk '$1 ~ /\.interactive$/ {print $2; exit}' || true)
  [ "${consumers:-0}" -ge 3 ] && break
  sleep 2
done
say "consumers on the interactive queue: ${consumers:-?}"
burst=()
texts=("I would like to order a cup of coffee." "Can you tell me where the nearest hospital is?"
       "The weather was warm and sunny all week." "My brother works at a small bakery downtown."
       "Please remember to lock the door when you leave." "The train to the city leaves every twenty minutes."
       "She bought fresh apples and bread at the market." "The dog ran across the field to catch the ball."
       "They are building a new library near the river.")
for i in "${!texts[@]}"; do
  speak "$work/burst-$i.wav" "${texts[$i]}"
done
for i in "${!texts[@]}"; do
  burst+=("$(submit "$work/burst-$i.wav")") || fail "submit burst job $i"
done
for id in "${burst[@]}"; do
  wait_job "$id" 300 >/dev/null || fail "burst job $id"
  jobs_done+=("$id")
done
spread_ok=1
for c in "${workers[@]}"; do
  name=$(docker inspect --format '{{.Name}}' "$c"); name=${name#/}
  n=0
  logs=$(docker logs "$c" 2>&1 | grep '"job succeeded"' || true)
  for id in "${burst[@]}"; do
    grep -q "$id" <<<"$logs" && n=$((n + 1))
  done
  say "  $name finished $n of the ${#burst[@]} jobs"
  [ "$n" -ge 1 ] || spread_ok=0
done
[ "$spread_ok" = 1 ] || fail "a worker finished none of the burst"

# ------------------------------------------------------------------ 3
phase "3. Prometheus scrapes every API replica and worker"
prom="http://$(dc port prometheus 9090)"
targets=""
for _ in $(seq 1 45); do
  targets=$(curl -sS --max-time 10 "$prom/api/v1/targets?state=active" \
    | jq -r '[.data.activeTargets[] | select(.labels.job == "voxq-api" or .labels.job == "voxq-worker")
              | select(.health == "up") | .labels.job] | group_by(.) | map("\(.[0])=\(length)") | join(" ")' \
    2>/dev/null || true)
  [ "$targets" = "voxq-api=2 voxq-worker=3" ] && break
  sleep 2
done
say "targets up: ${targets:-none}"
[ "$targets" = "voxq-api=2 voxq-worker=3" ] \
  || fail "Prometheus does not scrape 2 API replicas and 3 workers (jobs voxq-api, voxq-worker)"

# ------------------------------------------------------------------ 4
phase "4. docker kill a worker in the middle of a long job"
long_text="The weather was warm and sunny all week. My brother works at a small bakery downtown. \
Please remember to lock the door when you leave. We watched a long movie about the ocean last night. \
The train to the city leaves every twenty minutes. She bought fresh apples and bread at the market. \
Our teacher asked us to read three chapters. The dog ran across the field to catch the ball. \
I need to call my doctor tomorrow morning. They are building a new library near the river. \
He plays the guitar in a band on weekends. The meeting has been moved to Thursday afternoon. \
Turn left at the next corner and walk two blocks. My grandmother grows tomatoes in her garden. \
The museum is closed on Mondays. We should take an umbrella because it might rain. \
The restaurant serves the best soup in town. Students must finish their projects before Friday."
speak "$work/long.wav" "$long_text"
id=$(submit "$work/long.wav") || fail "submit the long job"
victim=""
until_running=$((SECONDS + 120))
while [ -z "$victim" ] && [ "$SECONDS" -lt "$until_running" ]; do
  for c in "${workers[@]}"; do
    held=$(docker exec "$c" http-get 9091 /metrics 2>/dev/null \
      | awk '/^voxq_worker_jobs_in_progress/ {s += $2} END {print s + 0}' || true)
    if [ "${held:-0}" -gt 0 ]; then victim="$c"; break; fi
  done
  [ -n "$victim" ] || sleep 0.5
done
[ -n "$victim" ] || fail "no worker took the long job within 120 s"
status=$(api "$base/v1/jobs/$id" | jq -r .status || true)
victim_name=$(docker inspect --format '{{.Name}}' "$victim"); victim_name=${victim_name#/}
docker kill "$victim" >/dev/null
say "killed $victim_name while job $id was $status"
job=$(wait_job "$id" 420) || fail "the long job after its worker was killed"
jobs_done+=("$id")
finisher=""
for c in "${workers[@]}"; do
  [ "$c" = "$victim" ] && continue
  if docker logs "$c" 2>&1 | grep '"job succeeded"' | grep -q "$id"; then
    finisher=$(docker inspect --format '{{.Name}}' "$c"); finisher=${finisher#/}
  fi
done
say "the long job succeeded on ${finisher:-another worker} ($(jq -r .result.duration <<<"$job") s of audio): $(jq -r .result.text <<<"$job" | cut -c1-100)…"

# Billed once: today's audio seconds are exactly the sum of the jobs'.
expected=0
for id in "${jobs_done[@]}"; do
  d=$(api "$base/v1/jobs/$id" | jq -r .result.duration)
  expected=$(awk -v a="$expected" -v b="$d" 'BEGIN {printf "%.3f", a + b}')
done
today=$(date -u +%F)
usage=$(api "$base/v1/usage?from=$today&to=$today")
used=$(jq -r .resources.audio_seconds.used <<<"$usage")
daily=$(jq -r '[.daily[]? | .audio_seconds // empty] | add // empty' <<<"$usage")
requests=$(jq -r .resources.requests.used <<<"$usage")
say "audio seconds: ${#jobs_done[@]} jobs last $expected s; /v1/usage today: used $used (Postgres daily row: ${daily:-?}), requests $requests"
same() { awk -v a="$1" -v b="$2" 'BEGIN {d = a - b; if (d < 0) d = -d; exit !(d < 0.05)}'; }
same "$used" "$expected" || fail "today's audio_seconds used ($used) is not the jobs' total ($expected)"
[ -z "$daily" ] || same "$daily" "$expected" || fail "Postgres's daily audio_seconds ($daily) is not the jobs' total ($expected)"

phase "done"
