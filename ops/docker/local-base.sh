#!/usr/bin/env bash
# Builds local stand-ins for the upstream images compose/ uses, for machines
# where no image registry answers. Each is made from Debian's own packages
# and honours the part of its upstream image's interface that
# compose/compose.yaml relies on (see each ops/docker/local/*/Dockerfile):
#
#   voxq-local/debian:bookworm     debootstrap --variant=minbase + docker import
#                                  (stands in for debian:bookworm-slim)
#   voxq-local/rust:<version>      that + build tools + the host's rustup
#                                  toolchain (rust-toolchain.toml's version)
#                                  (for rust:<version>-bookworm)
#   voxq-local/postgres:bookworm   PostgreSQL 15  (for postgres:16-bookworm)
#   voxq-local/redis:bookworm      Redis 7.0      (for redis:7.2-bookworm)
#   voxq-local/rabbitmq:bookworm   RabbitMQ 3.10, management + prometheus
#                                  plugins        (for rabbitmq:3.13-management)
#   voxq-local/prometheus:bookworm Prometheus 2.42 (for prom/prometheus:v2.55.1)
#   voxq-local/haproxy:bookworm    HAProxy 2.6    (for haproxy:3.0-bookworm)
#
# Images that exist are kept (VOXQ_LOCAL_REBUILD=1 rebuilds them); the
# debootstrap tarball is cached in ~/.cache/voxq/docker. When this machine's
# outgoing TLS is intercepted (a CA the Mozilla bundle lacks signs
# crates.io), the Debian base carries the host's CA bundle and its extra CAs
# so that builds FROM it can reach crates.io and PyPI; only these local
# bases do, never the project's Dockerfiles. Prints the VOXQ_*_IMAGE
# settings that select these images in compose (and writes them to
# ~/.cache/voxq/docker/local-images.env).
#   ops/docker/local-base.sh [debian|rust|stores|probe]...   (default: all;
#   probe: can a build FROM the local Rust base reach Debian, crates.io, PyPI)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/voxq/docker"
mirror="${VOXQ_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
rebuild="${VOXQ_LOCAL_REBUILD:-0}"
mkdir -p "$cache"

sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
say() { echo "local-base: $*" >&2; }
exists() { [ "$rebuild" != 1 ] && docker image inspect "$1" >/dev/null 2>&1; }
build() { # image, context directory, extra docker build arguments...
  local image="$1" dir="$2"; shift 2
  local start=$SECONDS
  nice -n 19 docker build --quiet --tag "$image" "$@" "$dir" >/dev/null
  say "built $image in $((SECONDS - start)) s ($(docker image inspect --format '{{.Size}}' "$image" | awk '{printf "%d MB", $1/1e6}'))"
}

rust_version=$(sed -n 's/^channel = "\(.*\)"$/\1/p' "$root/rust-toolchain.toml")
[ -n "$rust_version" ] || { say "no channel in rust-toolchain.toml"; exit 1; }
debian_image=voxq-local/debian:bookworm
rust_image="voxq-local/rust:$rust_version"

# Is TLS intercepted? Compare the Mozilla roots alone against the host's
# bundle on a host the builds must reach.
intercepted() {
  local moz
  moz=$(mktemp)
  cat /usr/share/ca-certificates/mozilla/*.crt >"$moz" 2>/dev/null || true
  local ok=0
  env -u SSL_CERT_DIR -u SSL_CERT_FILE -u CURL_CA_BUNDLE \
    curl -fsS --max-time 15 --cacert "$moz" --capath /nonexistent -o /dev/null \
    https://index.crates.io/config.json 2>/dev/null && ok=1
  rm -f "$moz"
  [ "$ok" = 0 ] && curl -fsS --max-time 15 -o /dev/null https://index.crates.io/config.json 2>/dev/null
}

debian() {
  if exists "$debian_image"; then say "$debian_image exists"; return; fi
  local tarball="$cache/debian-bookworm-minbase.tar"
  if [ ! -s "$tarball" ]; then
    command -v debootstrap >/dev/null 2>&1 || {
      say "installing debootstrap"
      sudo_ apt-get update -qq
      sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
    }
    say "debootstrap --variant=minbase bookworm from $mirror (under a minute)"
    local start=$SECONDS rootfs
    rootfs=$(mktemp -d "$cache/rootfs.XXXXXX")
    sudo_ nice -n 19 debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 \
      || { say "debootstrap failed; see $cache/debootstrap.log"; sudo_ rm -rf "$rootfs"; exit 1; }
    # As the official debian images: bookworm, its updates and security
    # sources; apt keeps no package cache, no translations, gzipped lists.
    sudo_ rm -f "$rootfs/etc/apt/sources.list" "$rootfs/etc/hostname"
    sudo_ tee "$rootfs/etc/apt/sources.list.d/debian.sources" >/dev/null <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    sudo_ tee "$rootfs/etc/apt/apt.conf.d/docker-clean" >/dev/null <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    # As the -slim variant: no documentation, manual pages or locales.
    sudo_ tee "$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" >/dev/null <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
    sudo_ find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    sudo_ find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
    sudo_ find "$rootfs/usr/share/man" "$rootfs/usr/share/info" "$rootfs/usr/share/locale" \
      -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
    echo 'Acquire::Languages "none";' | sudo_ tee "$rootfs/etc/apt/apt.conf.d/docker-no-languages" >/dev/null
    echo 'Acquire::GzipIndexes "true";' | sudo_ tee "$rootfs/etc/apt/apt.conf.d/docker-gzip-indexes" >/dev/null
    sudo_ sh -c "rm -rf '$rootfs'/var/cache/apt/*.bin '$rootfs'/var/cache/apt/archives/*.deb \
      '$rootfs'/var/lib/apt/lists/* '$rootfs'/var/log/*.log '$rootfs'/var/log/apt/* '$rootfs'/tmp/*"
    sudo_ tar --numeric-owner -C "$rootfs" -cf "$tarball.part" .
    sudo_ rm -rf "$rootfs"
    mv "$tarball.part" "$tarball"
    say "cached $tarball ($(du -m "$tarball" | cut -f1) MB) in $((SECONDS - start)) s"
  fi
  docker import --change 'CMD ["bash"]' "$tarball" "$debian_image-minbase" >/dev/null
  if intercepted; then
    say "outgoing TLS is intercepted here: $debian_image carries the host's CA bundle"
    local ctx
    ctx=$(mktemp -d)
    mkdir -p "$ctx/extra"
    cp /etc/ssl/certs/ca-certificates.crt "$ctx/ca-certificates.crt"
    cp /usr/local/share/ca-certificates/*.crt "$ctx/extra/" 2>/dev/null || true
    # The extras also go where update-ca-certificates looks, so installing
    # the ca-certificates package later keeps them in the bundle.
    printf '%s\n' "FROM $debian_image-minbase" \
      'COPY extra/ /usr/local/share/ca-certificates/' \
      'COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt' >"$ctx/Dockerfile"
    build "$debian_image" "$ctx"
    rm -rf "$ctx"
  else
    docker tag "$debian_image-minbase" "$debian_image"
    say "imported $debian_image"
  fi
}

rust() {
  if exists "$rust_image"; then say "$rust_image exists"; return; fi
  local toolchain="${RUSTUP_HOME:-$HOME/.rustup}/toolchains/$rust_version-x86_64-unknown-linux-gnu"
  toolchain=$(readlink -f "$toolchain")
  local rustup_bin
  rustup_bin=$(command -v rustup || true)
  if [ ! -d "$toolchain" ] || [ -z "$rustup_bin" ]; then
    say "the host has no rustup toolchain $rust_version ($toolchain): rustup toolchain install $rust_version"
    exit 1
  fi
  say "building $rust_image from the host's toolchain (about 30 s)"
  local ctx="$cache/rust-context"
  rm -rf "$ctx" && mkdir -p "$ctx"
  cp "$here/local/rust/Dockerfile" "$ctx/"
  cp -L "$rustup_bin" "$ctx/rustup"
  # Hard links where the cache shares the file system; the docs stay out.
  cp -al "$toolchain" "$ctx/toolchain" 2>/dev/null || cp -a "$toolchain" "$ctx/toolchain"
  rm -rf "$ctx/toolchain/share/doc"
  build "$rust_image" "$ctx" --build-arg "BASE=$debian_image" --build-arg "RUST_VERSION=$rust_version"
  rm -rf "$ctx"
}

stores() {
  local name
  for name in postgres redis rabbitmq prometheus haproxy; do
    if exists "voxq-local/$name:bookworm"; then say "voxq-local/$name:bookworm exists"; continue; fi
    build "voxq-local/$name:bookworm" "$here/local/$name" --build-arg "BASE=$debian_image"
  done
}

# Can a build FROM the local base reach what the project's Dockerfile
# fetches (Debian packages, crates.io, PyPI)?
probe() {
  local out
  if out=$(printf '%s\n' "FROM $rust_image" \
      'RUN curl -fsS --max-time 20 -o /dev/null http://deb.debian.org/debian/dists/bookworm/Release \
        && curl -fsS --max-time 20 -o /dev/null https://index.crates.io/config.json \
        && curl -fsS --max-time 20 -o /dev/null https://pypi.org/simple/ctranslate2/ \
        && echo reachable' |
      docker build --no-cache --progress=plain - 2>&1); then
    say "from a docker build: deb.debian.org, crates.io and PyPI answer"
  else
    say "from a docker build, deb.debian.org, crates.io or PyPI does not answer:"
    echo "$out" | tail -n 15 >&2
    return 1
  fi
}

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(debian rust stores probe)
for step in "${steps[@]}"; do
  case "$step" in
    debian) debian ;;
    rust) rust ;;
    stores) stores ;;
    probe) probe ;;
    *) say "unknown step '$step' (debian, rust, stores, probe)"; exit 1 ;;
  esac
done

cat >"$cache/local-images.env" <<EOF
VOXQ_RUST_IMAGE=$rust_image
VOXQ_RUNTIME_IMAGE=$debian_image
VOXQ_POSTGRES_IMAGE=voxq-local/postgres:bookworm
VOXQ_REDIS_IMAGE=voxq-local/redis:bookworm
VOXQ_RABBITMQ_IMAGE=voxq-local/rabbitmq:bookworm
VOXQ_PROMETHEUS_IMAGE=voxq-local/prometheus:bookworm
VOXQ_HAPROXY_IMAGE=voxq-local/haproxy:bookworm
EOF
say "compose selects them with (also in $cache/local-images.env):"
sed 's/^/  export /' "$cache/local-images.env" >&2
