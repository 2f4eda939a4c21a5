# Sourced by the ops scripts: one place for paths and defaults.
# shellcheck shell=bash
VOXQ_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export VOXQ_ROOT
# Build outside the checkout so fresh clones on one machine share the
# C++ builds (CTranslate2, oneDNN, whisper.cpp: about half an hour on 2
# cores); override to taste.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/voxq/target}"
export VOXQ_BIN="$CARGO_TARGET_DIR/release"
export VOXQ_DATABASE_URL="${VOXQ_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/voxq}"
export VOXQ_MODEL_DIR="${VOXQ_MODEL_DIR:-$VOXQ_ROOT/models/whisper-tiny.en}"
export CMAKE_PARALLEL="${CMAKE_PARALLEL:-$(nproc)}"
