#!/usr/bin/env bash
# Fetches the CTranslate2 library that the PyPI `ctranslate2` wheel ships
# (manylinux x86_64, oneDNN and its OpenMP runtime inside) into
# .voxq/ctranslate2, where the worker's default build links it (ct2rs's
# `system` feature; `.cargo/config.toml` points the linker there). This
# replaces about 50 CPU-minutes of compiling CTranslate2 and oneDNN.
#
# ct2rs compiles its C++ bridge against the CTranslate2 headers it vendors,
# so the library must be built from the same release: the wheel pinned
# below is checked against the version in the ct2rs crate that Cargo.lock
# names, and a mismatch is refused. Idempotent; the wheel is cached in
# ~/.cache/voxq/wheels.
#
# Other platforms, and CUDA builds: VOXQ_CTRANSLATE2=source (ops/env.sh)
# compiles CTranslate2 from the vendored sources instead.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

# The wheel and its digest: bump both together with ct2rs.
wheel_version=4.8.4
wheel_file="ctranslate2-4.8.4-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl"
wheel_sha256=1037b3f51d18f1546120686670d71fcdaf85a0500fffccc56d8439ded5d284e5

dest="${VOXQ_CTRANSLATE2_DIR:-$root/.voxq/ctranslate2}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/voxq/wheels"

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *) echo "fetch-ctranslate2: the wheel's library is for Linux x86_64 only;" \
       "build CTranslate2 from source with VOXQ_CTRANSLATE2=source" >&2
     exit 1 ;;
esac

# The CTranslate2 release ct2rs vendors: its headers are what our bridge
# is compiled against.
ct2rs_version=$(awk '/^name = "ct2rs"$/ {getline; gsub(/[^0-9.]/, ""); print; exit}' Cargo.lock)
[ -n "$ct2rs_version" ] || { echo "fetch-ctranslate2: no ct2rs in Cargo.lock" >&2; exit 1; }
crate_dir() { compgen -G "${CARGO_HOME:-$HOME/.cargo}/registry/src/*/ct2rs-$ct2rs_version" | head -n1 || true; }
crate=$(crate_dir)
if [ -z "$crate" ]; then
  cargo fetch --locked --quiet
  crate=$(crate_dir)
fi
version_py="$crate/CTranslate2/python/ctranslate2/version.py"
[ -f "$version_py" ] || { echo "fetch-ctranslate2: ct2rs $ct2rs_version's sources are not in the cargo registry" >&2; exit 1; }
vendored=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$version_py")
if [ "$vendored" != "$wheel_version" ]; then
  cat >&2 <<EOF
fetch-ctranslate2: ct2rs $ct2rs_version vendors CTranslate2 $vendored, but this
script pins the wheel of CTranslate2 $wheel_version. Headers and library must
agree: set wheel_version, wheel_file and wheel_sha256 in ops/fetch-ctranslate2.sh
to the ctranslate2==$vendored wheel, or build from source (VOXQ_CTRANSLATE2=source).
EOF
  exit 1
fi

if [ -f "$dest/VERSION" ] && [ "$(cat "$dest/VERSION")" = "$wheel_version" ] \
   && [ -e "$dest/libctranslate2.so" ]; then
  exit 0
fi

mkdir -p "$cache"
if [ ! -f "$cache/$wheel_file" ]; then
  echo "fetching the ctranslate2 $wheel_version wheel (40 MB)" >&2
  python3 -m pip download --quiet --no-deps --disable-pip-version-check \
    --only-binary=:all: --platform manylinux_2_28_x86_64 --python-version 3.11 \
    --implementation cp --abi cp311 -d "$cache" "ctranslate2==$wheel_version" >&2
fi
if ! echo "$wheel_sha256  $cache/$wheel_file" | sha256sum --check --quiet - >/dev/null 2>&1; then
  rm -f "$cache/$wheel_file"
  echo "fetch-ctranslate2: $wheel_file does not have the pinned sha256; removed it, run again" >&2
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$cache/$wheel_file" "$tmp" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    for name in wheel.namelist():
        if name.startswith("ctranslate2.libs/") and not name.endswith("/"):
            wheel.extract(name, sys.argv[2])
PY
rm -rf "$dest.part" && mkdir -p "$dest.part"
cp "$tmp"/ctranslate2.libs/* "$dest.part"/
library=$(cd "$dest.part" && ls libctranslate2-*.so."$wheel_version")
# The wheel's soname is hashed (libctranslate2-<hash>.so.4.8.4) and the
# binaries record it; this link only lets the linker find it by `-lctranslate2`.
ln -s "$library" "$dest.part/libctranslate2.so"
# ct2rs's `system` build asks for cpu_features and CUDA's static libraries on
# every Linux build; the wheel has all it uses inside, so empty archives
# satisfy those requests and add nothing.
for name in cpu_features cublas_static cublasLt_static culibos; do
  printf '!<arch>\n' >"$dest.part/lib$name.a"
done
echo "$wheel_version" >"$dest.part/VERSION"
rm -rf "$dest" && mv "$dest.part" "$dest"
echo "CTranslate2 $wheel_version (the PyPI wheel's library) in $dest" >&2
