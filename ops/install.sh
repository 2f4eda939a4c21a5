#!/usr/bin/env bash
# Installs the built binaries under a prefix (default /usr/local):
# bin/voxq, bin/voxq-api, bin/voxq-worker, and, for a worker linked to the
# prebuilt CTranslate2, that library and its OpenMP runtime in lib/voxq,
# where the worker's runtime path ($ORIGIN/../lib/voxq) finds them: no
# LD_LIBRARY_PATH, and the build tree may go. Builds nothing: run
# ops/setup.sh or cargo build --release first.
#   ops/install.sh [PREFIX]
set -euo pipefail
# shellcheck source=ops/env.sh
source "$(dirname "$0")/env.sh"
prefix="${1:-/usr/local}"

for name in voxq voxq-api voxq-worker; do
  [ -x "$VOXQ_BIN/$name" ] || { echo "install: $VOXQ_BIN/$name is not built" >&2; exit 1; }
done
install -d "$prefix/bin"
install -m 0755 "$VOXQ_BIN/voxq" "$VOXQ_BIN/voxq-api" "$VOXQ_BIN/voxq-worker" "$prefix/bin/"
if readelf -d "$VOXQ_BIN/voxq-worker" | grep -q 'NEEDED.*libctranslate2'; then
  install -d "$prefix/lib/voxq"
  # The hashed sonames the binaries and the library record; not the
  # link-time name or the placeholder archives.
  install -m 0644 "$VOXQ_CTRANSLATE2_DIR"/libctranslate2-*.so.* \
    "$VOXQ_CTRANSLATE2_DIR"/libgomp-*.so.* "$prefix/lib/voxq/"
fi
echo "installed voxq, voxq-api and voxq-worker in $prefix/bin" >&2
