#!/usr/bin/env bash
# Prints the path of the voxq-worker built with CTranslate2 compiled from
# source (VOXQ_CTRANSLATE2=source, its own target directory), for the
# benchmarks to measure beside the default prebuilt library; prints
# nothing when that build is not there. VOXQ_BENCH_SOURCE=1 builds or
# updates it first: about an hour the first time on 2 cores.
set -euo pipefail
# shellcheck source=ops/env.sh
source "$(dirname "$0")/../env.sh"
cd "$VOXQ_ROOT"
worker="$VOXQ_SOURCE_TARGET_DIR/release/voxq-worker"
if [ "${VOXQ_BENCH_SOURCE:-0}" = 1 ]; then
  CARGO_TARGET_DIR="$VOXQ_SOURCE_TARGET_DIR" cargo build --release -p voxq-worker --bins \
    --no-default-features --features source-ctranslate2 >&2
fi
if [ -x "$worker" ]; then
  echo "$worker"
else
  echo "no from-source worker in $VOXQ_SOURCE_TARGET_DIR; VOXQ_BENCH_SOURCE=1 builds it" >&2
fi
