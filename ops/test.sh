#!/usr/bin/env bash
# Command two: the whole test suite, on a fresh clone too. Starts what the
# tests need (stack, models, binaries); every test makes its own database,
# Redis prefix and queue names, so they run in parallel.
set -euo pipefail
# shellcheck source=ops/env.sh
source "$(dirname "$0")/env.sh"
cd "$VOXQ_ROOT"

ops/stack.sh
ops/fetch-models.sh
# The end-to-end tests start the real binaries from this build.
cargo build --release --workspace --bins
VOXQ_TEST_MODEL_DIR="$VOXQ_ROOT/models/whisper-tiny.en" \
  cargo test --release --workspace --no-fail-fast "$@"
