#!/usr/bin/env bash
# cargo deny with deny.toml: licences, duplicate versions and sources of
# every crate, then RustSec advisories. Installs cargo-deny (pinned) once.
#
# The advisory database is a clone of github.com/rustsec/advisory-db that
# cargo-deny keeps under ~/.cache/voxq/advisory-dbs and refreshes when it
# can. Without network it checks against the clone it has, and says how
# old it is; with no clone at all (a fresh machine that cannot reach
# GitHub) the advisories check is skipped with a notice, unless
# VOXQ_ADVISORY_DB_SOURCE names a copy to clone from (a path or URL).
set -euo pipefail
# shellcheck source=ops/env.sh
source "$(dirname "$0")/env.sh"
cd "$VOXQ_ROOT"
version=0.20.2
if ! cargo deny --version 2>/dev/null | grep -qx "cargo-deny $version"; then
  # cargo-deny's own release profile asks for fat LTO in one code unit:
  # over 3 min of a fresh CI run on two cores, for a tool whose checks
  # take seconds. Unoptimised it builds in 50 s and checks this workspace
  # in 2 s (134 s and 1 s with full optimisation but no LTO).
  CARGO_PROFILE_RELEASE_OPT_LEVEL=0 CARGO_PROFILE_RELEASE_LTO=false \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo install --locked --quiet cargo-deny --version "$version"
fi

cargo deny --color never check --hide-inclusion-graph licenses bans sources

# cargo-deny names its clone after a hash of deny.toml's db-urls.
db="${XDG_CACHE_HOME:-$HOME/.cache}/voxq/advisory-dbs/advisory-db-3157b0e258782691"
if [ ! -d "$db/.git" ] && [ -n "${VOXQ_ADVISORY_DB_SOURCE:-}" ]; then
  mkdir -p "$(dirname "$db")"
  git clone --quiet "$VOXQ_ADVISORY_DB_SOURCE" "$db"
fi
status=0
cargo deny --color never check --hide-inclusion-graph advisories || status=$?
if [ ! -d "$db/.git" ]; then
  echo "deny: advisories NOT checked: the RustSec database could not be fetched" \
       "(set VOXQ_ADVISORY_DB_SOURCE to a copy of github.com/rustsec/advisory-db)" >&2
  exit 0
fi
echo "deny: advisories checked against the RustSec database of $(git -C "$db" log -1 --format=%cs)"
exit "$status"
