#!/usr/bin/env bash
# Makes sure everything voxq needs on this machine is installed and running:
# Postgres, Redis and RabbitMQ on localhost, the build tools for the C++
# inference libraries and the worker's jemalloc (cmake, make, g++,
# libclang), and espeak-ng + ffmpeg for sample speech.
# Debian/Ubuntu; idempotent; installs only what is missing.
set -euo pipefail
# shellcheck source=ops/env.sh
source "$(dirname "$0")/env.sh"

sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

missing=()
for pair in cmake:cmake make:make espeak-ng:espeak-ng ffmpeg:ffmpeg c++:g++ pkg-config:pkg-config \
            psql:postgresql redis-server:redis-server rabbitmq-server:rabbitmq-server \
            python3:python3 curl:curl; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
# whisper-rs generates its bindings with bindgen, which loads libclang.
# (libclang-cpp, which other packages bring, is not it.)
compgen -G "/usr/lib/llvm-*/lib/libclang-[0-9]*.so*" >/dev/null || \
  compgen -G "/usr/lib/llvm-*/lib/libclang.so*" >/dev/null || missing+=(libclang-dev)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  sudo_ apt-get update -qq
  sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

wait_for() { # port name
  for _ in $(seq 1 60); do up "$1" && return 0; sleep 1; done
  echo "$2 did not come up on port $1" >&2; return 1
}

if ! up 5432; then
  echo "starting postgres" >&2
  sudo_ pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start
  wait_for 5432 postgres
fi
# The default URL carries the password 'postgres'; set it where password
# authentication is in force (a trust setup ignores it).
if ! psql "$VOXQ_DATABASE_URL" -c 'select 1' >/dev/null 2>&1 && \
   ! psql "${VOXQ_DATABASE_URL%/*}/postgres" -c 'select 1' >/dev/null 2>&1; then
  sudo_ su postgres -c "psql -qc \"alter user postgres password 'postgres'\"" >/dev/null
fi
if ! up 6379; then
  echo "starting redis" >&2
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  sudo_ redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/voxq.log
  wait_for 6379 redis
fi
if ! up 5672; then
  echo "starting rabbitmq" >&2
  sudo_ rabbitmq-server -detached
  wait_for 5672 rabbitmq
  sleep 3
fi
echo "stack ready: postgres :5432, redis :6379, rabbitmq :5672" >&2
