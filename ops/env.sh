# Sourced by the ops scripts: one place for paths and defaults.
# shellcheck shell=bash
VOXQ_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export VOXQ_ROOT
export VOXQ_DATABASE_URL="${VOXQ_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/voxq}"
export VOXQ_MODEL_DIR="${VOXQ_MODEL_DIR:-$VOXQ_ROOT/models/whisper-tiny.en}"
export VOXQ_VAD_MODEL="${VOXQ_VAD_MODEL:-$VOXQ_ROOT/models/silero-vad.bin}"
export CMAKE_PARALLEL="${CMAKE_PARALLEL:-$(nproc)}"
# CTranslate2: `prebuilt` links the PyPI wheel's library
# (ops/fetch-ctranslate2.sh, seconds); `source` compiles it and oneDNN
# (about 50 CPU-minutes), for CUDA builds and platforms without a wheel.
export VOXQ_CTRANSLATE2="${VOXQ_CTRANSLATE2:-prebuilt}"
export VOXQ_CTRANSLATE2_DIR="${VOXQ_CTRANSLATE2_DIR:-$VOXQ_ROOT/.voxq/ctranslate2}"
# Builds go outside the checkout so fresh clones on one machine share the
# C++ builds, one directory per CTranslate2 so that neither build's
# binaries overwrite the other's; override to taste.
export VOXQ_PREBUILT_TARGET_DIR="${VOXQ_PREBUILT_TARGET_DIR:-$HOME/.cache/voxq/target}"
export VOXQ_SOURCE_TARGET_DIR="${VOXQ_SOURCE_TARGET_DIR:-$HOME/.cache/voxq/target-src}"
case "$VOXQ_CTRANSLATE2" in
  prebuilt)
    VOXQ_CARGO_FEATURES=()
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$VOXQ_PREBUILT_TARGET_DIR}" ;;
  source)
    VOXQ_CARGO_FEATURES=(--no-default-features --features voxq-worker/source-ctranslate2)
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$VOXQ_SOURCE_TARGET_DIR}" ;;
  *) echo "VOXQ_CTRANSLATE2 is prebuilt or source, not '$VOXQ_CTRANSLATE2'" >&2; return 1 ;;
esac
# Added by ops/test.sh only: the worker's fault injection for the
# end-to-end tests (worker/src/chaos.rs), which production builds and
# ops/setup.sh leave out.
VOXQ_TEST_FEATURES=(--features voxq-worker/chaos)
export VOXQ_BIN="$CARGO_TARGET_DIR/release"
# The SQL macros check queries against the committed .sqlx, never a live
# database (.cargo/config.toml sets the same); ops/check-sqlx.sh turns it
# off for its own build.
export SQLX_OFFLINE="${SQLX_OFFLINE:-true}"
# Where ct2rs and the linker find the prebuilt library. .cargo/config.toml
# names the same directory for a plain `cargo build`, but neither over a
# LIBRARY_PATH already set nor for another VOXQ_CTRANSLATE2_DIR.
# Prepended once: ct2rs rebuilds when the variable changes, and scripts
# source this file again in scripts they call.
case ":${LIBRARY_PATH:-}:" in
  *":$VOXQ_CTRANSLATE2_DIR:"*) ;;
  *) export LIBRARY_PATH="$VOXQ_CTRANSLATE2_DIR${LIBRARY_PATH:+:$LIBRARY_PATH}" ;;
esac
