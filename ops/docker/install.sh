#!/usr/bin/env bash
# Makes sure Docker is usable on this Debian machine: the engine (Debian's
# docker.io), the compose v2 and buildx CLI plugins, and a daemon that
# answers. Installs only what is missing and says what it does; safe to run
# again.
#
# Debian bookworm ships only compose v1, so the v2 plugin (`docker compose`)
# and buildx come from Debian trixie's `docker-compose` and `docker-buildx`
# packages (static Go binaries that run on bookworm): fetched with
# `apt-get download` through a private apt configuration under
# ~/.cache/voxq/apt, so the system's sources stay as they are, and unpacked
# into the CLI plugin directory.
#
# With no daemon answering (a machine without systemd, a container), it
# starts dockerd in the background with the overlay2 storage driver and its
# log in ~/.cache/voxq/docker/dockerd.log.
#   ops/docker/install.sh
set -euo pipefail

sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
say() { echo "docker-install: $*" >&2; }

cache="${XDG_CACHE_HOME:-$HOME/.cache}/voxq"
plugins=/usr/local/lib/docker/cli-plugins
# The trixie packages whose binaries we take; bump together if wanted.
trixie_suite="${VOXQ_TRIXIE_SUITE:-trixie}"
debian_mirror="${VOXQ_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

# 1. The engine. A docker client may already be there (e.g. a static one in
#    /usr/local/bin) without dockerd; docker.io brings dockerd, containerd
#    and runc (and its own client in /usr/bin, which an earlier one on PATH
#    shadows: newer clients talk to the older daemon's API version).
if ! command -v dockerd >/dev/null 2>&1; then
  say "installing Debian's docker.io (the engine: dockerd, containerd, runc)"
  sudo_ apt-get update -qq
  sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    docker.io iptables ca-certificates >/dev/null
else
  say "engine present: $(dockerd --version)"
fi
command -v docker >/dev/null 2>&1 || { say "no docker client after installing docker.io"; exit 1; }

# 2. compose v2 and buildx, from trixie, into the CLI plugin directory.
have_plugin() { docker "$1" version >/dev/null 2>&1; }
need=()
have_plugin compose || need+=(docker-compose)
have_plugin buildx || need+=(docker-buildx)
if [ ${#need[@]} -gt 0 ]; then
  say "fetching ${need[*]} from Debian $trixie_suite (private apt configuration in $cache/apt)"
  apt_dir="$cache/apt"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$apt_dir/debs"
  cat >"$apt_dir/sources.list" <<EOF
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $debian_mirror $trixie_suite main
EOF
  : >"$apt_dir/status"
  apt_private=(
    -o "Dir::Etc::SourceList=$apt_dir/sources.list"
    -o "Dir::Etc::SourceParts=/nonexistent"
    -o "Dir::State::Lists=$apt_dir/lists"
    -o "Dir::State::Status=$apt_dir/status"
    -o "Dir::Cache=$apt_dir"
    -o "Dir::Cache::Archives=$apt_dir/archives"
    -o "Debug::NoLocking=true"
    -o "APT::Architecture=$(dpkg --print-architecture)"
  )
  # apt's download sandbox user cannot write into a private home directory.
  [ "$(id -u)" = 0 ] && apt_private+=(-o "APT::Sandbox::User=root")
  apt-get "${apt_private[@]}" update -qq
  (cd "$apt_dir/debs" && rm -f ./*.deb && apt-get "${apt_private[@]}" download "${need[@]}" >/dev/null)
  sudo_ install -d "$plugins"
  for pkg in "${need[@]}"; do
    deb=$(ls "$apt_dir/debs/${pkg}"_*.deb)
    tmp=$(mktemp -d)
    dpkg-deb -x "$deb" "$tmp"
    bin=$(find "$tmp" -path '*cli-plugins/*' -type f -name "$pkg" | head -n1)
    [ -n "$bin" ] || { say "$deb holds no cli-plugins/$pkg"; rm -rf "$tmp"; exit 1; }
    sudo_ install -m 0755 "$bin" "$plugins/$pkg"
    rm -rf "$tmp"
    say "installed $(basename "$deb") as $plugins/$pkg"
  done
fi
say "$(docker compose version) / $(docker buildx version 2>/dev/null | head -n1)"

# 3. A daemon that answers.
if docker info >/dev/null 2>&1; then
  say "daemon answers: $(docker info --format '{{.ServerVersion}} ({{.Driver}})')"
  exit 0
fi
log_dir="$cache/docker"
mkdir -p "$log_dir"
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  say "starting docker.service"
  sudo_ systemctl start docker
else
  say "starting dockerd in the background (overlay2; log in $log_dir/dockerd.log)"
  # setsid: the daemon outlives this script and its terminal.
  sudo_ setsid nohup dockerd --storage-driver=overlay2 >>"$log_dir/dockerd.log" 2>&1 </dev/null &
fi
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && break
  sleep 1
done
if ! docker info >/dev/null 2>&1; then
  if sudo_ docker info >/dev/null 2>&1; then
    say "the daemon answers root only: add $(id -un) to the docker group (sudo usermod -aG docker $(id -un)) and log in again"
  else
    say "dockerd did not answer within 60 s; see $log_dir/dockerd.log"
  fi
  exit 1
fi
say "daemon answers: $(docker info --format '{{.ServerVersion}} ({{.Driver}})')"
