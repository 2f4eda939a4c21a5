#!/usr/bin/env bash
# Command two: the whole test suite, on a fresh clone too. Starts what the
# tests need (stack, models, binaries); every test makes its own database,
# Redis prefix and queue names, so they run in parallel.
set -euo pipefail
# shellcheck source=ops/env.sh
source "$(dirname "$0")/env.sh"
# shellcheck source=ops/progress.sh
source "$(dirname "$0")/progress.sh"
cd "$VOXQ_ROOT"

phase "services" "about 30 s fresh, seconds after"
ops/stack.sh
if [ "$VOXQ_CTRANSLATE2" = prebuilt ]; then
  # Before any build: the worker's build script needs the library.
  phase "CTranslate2: the PyPI wheel's library" "10 s fresh"
  ops/fetch-ctranslate2.sh
fi
# The SQL macros build from the committed query data (.sqlx); this
# regenerates it from Postgres with the migrations applied and fails
# unless the committed data is exactly that. A check-mode build (about
# 2 min fresh on 2 cores, 30 s after), so it runs while the downloads
# below wait on the network.
background "SQL query data (.sqlx) against the migrated schema" ops/check-sqlx.sh
phase "models" "under 1 min fresh, seconds after"
ops/fetch-models.sh
# Offline checks of the deployment files: no cluster, Prometheus or
# Grafana; each also proves that it refuses broken copies.
phase "Prometheus rules and Grafana dashboards (promtool)" "15 s fresh, 7 s after"
ops/check-observability.sh
phase "Kubernetes manifests (kustomize, Kubernetes and KEDA schemas)" "45 s fresh, 5 s after"
ops/check-k8s.sh
phase "schemathesis, for the API fuzzing test" "under 1 min fresh, seconds after"
ops/fetch-schemathesis.sh
phase "OpenAI's SDKs, libretranslatepy and Chromium, for the compatibility and docs tests" "20 s fresh, seconds after"
ops/fetch-clients.sh
background_wait "SQL query data (.sqlx) against the migrated schema"
compose=0
[ "${VOXQ_SKIP_COMPOSE:-0}" = 1 ] || [ $# -ne 0 ] || compose=1
if [ "$compose" = 1 ]; then
  # Docker and the local base images (debootstrap: disk and network more
  # than CPU) while cargo compiles. It installs packages: never stopped
  # half-way, even when the build or a test fails.
  background --let-finish "compose smoke test: Docker and the base images" \
    ops/compose-smoke.sh --prepare
fi
# The end-to-end tests start the real binaries from this build. Binaries
# and tests are built in one cargo call, with one set of features (the
# worker's `chaos` among them), so no crate is compiled twice and `cargo
# test` below only runs them.
phase "build: binaries and tests" "about 9 min fresh on 2 cores"
cargo build --release --workspace --bins --tests "${VOXQ_CARGO_FEATURES[@]}" "${VOXQ_TEST_FEATURES[@]}"
phase "tests" "about 8 min"
VOXQ_TEST_MODEL_DIR="$VOXQ_ROOT/models/whisper-tiny.en" \
  cargo test --release --workspace --no-fail-fast "${VOXQ_CARGO_FEATURES[@]}" "${VOXQ_TEST_FEATURES[@]}" "$@"
# The images and the compose stack, on real containers. On a Debian
# bookworm host the images carry the binaries built here (the production
# features: only voxq-worker's crate compiles again);
# VOXQ_SMOKE_BINARIES=compiled builds them inside Docker as a user's
# `docker compose build` does (about 10 min more). Docker and the base
# images were made while cargo built. Skip it while iterating
# with VOXQ_SKIP_COMPOSE=1; a test filter (arguments for cargo test) skips
# it too.
if [ "$compose" = 1 ]; then
  background_wait "compose smoke test: Docker and the base images"
  phase "compose stack: images, scaling, a worker killed mid-job" "about 2.5 min after the build"
  ops/compose-smoke.sh
fi
phases_total
