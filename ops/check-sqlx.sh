#!/usr/bin/env bash
# Compile-time checked SQL. sqlx's query macros (`sqlx::query!`,
# `query_as!`, `query_scalar!`) check each query against its query data in
# .sqlx/ (one file per query: the statement, and its parameter and column
# types and nullability as Postgres described them), committed so that every
# build works without a database (.cargo/config.toml sets SQLX_OFFLINE).
# This script regenerates that data from a scratch database with the
# migrations applied:
#   ops/check-sqlx.sh           fails unless .sqlx is exactly the regenerated
#                               data: no query without its file, no stale
#                               file, no file that no query uses
#   ops/check-sqlx.sh --write   makes .sqlx so (only changed files are
#                               rewritten); then commit .sqlx
# Run --write after changing a query or adding a migration.
#
# How: the packages whose sources use the query macros are checked with
# SQLX_OFFLINE off and DATABASE_URL naming the scratch database, so that each
# macro describes its query on Postgres, and with SQLX_OFFLINE_DIR naming an
# empty directory, where sqlx-macros-core then writes each query's data (as
# `cargo sqlx prepare` has it do; no sqlx-cli needed). Such a package's
# build script declares SQLX_OFFLINE_DIR (see shared/build.rs): a new
# directory each run recompiles it, so every macro runs again. The check
# builds in its own target directory ($VOXQ_SQLX_TARGET_DIR, by default
# $CARGO_TARGET_DIR/sqlx-check), so that it leaves the release build's
# artifacts as they were.
#
# Needs Postgres (ops/stack.sh) and psql; the scratch database is dropped
# on exit. The committed data is from the Postgres that ops/stack.sh
# installs (15, Debian bookworm's): sqlx infers nullability from EXPLAIN,
# which another major version may word differently. About 2 min fresh on 2
# cores (the packages' dependencies, in check mode), 15 s after; ops/test.sh
# runs it beside its downloads.
set -euo pipefail
shopt -s nullglob
# shellcheck source=ops/env.sh
source "$(dirname "$0")/env.sh"
# shellcheck source=ops/progress.sh
source "$VOXQ_ROOT/ops/progress.sh"
cd "$VOXQ_ROOT"

write=0
case "${1:-}" in
  "") ;;
  --write) write=1 ;;
  *) echo "usage: $0 [--write]" >&2; exit 2 ;;
esac

target="${VOXQ_SQLX_TARGET_DIR:-$CARGO_TARGET_DIR/sqlx-check}"
committed="$VOXQ_ROOT/.sqlx"
scratch="voxq_sqlx_check_$$"
admin_url="${VOXQ_DATABASE_URL%/*}/postgres"
scratch_url="${VOXQ_DATABASE_URL%/*}/$scratch"
work="$(mktemp -d)"
cleanup() {
  psql -qX "$admin_url" -c "drop database if exists $scratch with (force)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
# Stopped by ops/test.sh, which runs this in the background: the scratch
# database is still dropped.
trap "exit 143" TERM INT

phase "sqlx: packages with query macros" "1 s"
# Each workspace package whose targets' sources use a query macro, with the
# directories of those targets (the root package's are src/ and tests/, not
# the whole checkout).
mapfile -t packages < <(cargo metadata --format-version 1 --no-deps |
  python3 -c '
import json, os, re, sys
macro = re.compile(r"\bquery(_as|_scalar)?(_unchecked)?!|\bquery_file(_as|_scalar)?(_unchecked)?!")
meta = json.load(sys.stdin)
members = set(meta["workspace_members"])
for pkg in meta["packages"]:
    if pkg["id"] not in members:
        continue
    dirs = {os.path.dirname(t["src_path"]) for t in pkg["targets"]}
    uses = False
    for d in dirs:
        for base, _, files in os.walk(d):
            for f in files:
                if f.endswith(".rs") and macro.search(open(os.path.join(base, f), encoding="utf-8").read()):
                    uses = True
    if uses:
        print(pkg["name"] + "\t" + os.path.dirname(pkg["manifest_path"]))
')
if [ ${#packages[@]} -eq 0 ]; then
  echo "no package uses sqlx's query macros" >&2
  exit 1
fi
args=()
for entry in "${packages[@]}"; do
  name="${entry%%$'\t'*}"
  dir="${entry#*$'\t'}"
  echo "    $name" >&2
  # Without it, a package already checked would not run its macros again.
  if ! grep -qs 'SQLX_OFFLINE_DIR' "$dir/build.rs"; then
    echo "$name uses sqlx's query macros but its build.rs does not declare SQLX_OFFLINE_DIR:" >&2
    echo "give it the build script lines of shared/build.rs" >&2
    exit 1
  fi
  args+=(-p "$name")
  [ "$name" != voxq-worker ] || args+=("${VOXQ_CARGO_FEATURES[@]}")
done

phase "sqlx: scratch database with the migrations" "2 s"
psql -qX -v ON_ERROR_STOP=1 "$admin_url" -c "create database $scratch" >/dev/null
for migration in migrations/*.sql; do
  # As sqlx runs them: in a transaction unless the file opts out.
  first=""
  IFS= read -r first <"$migration" || true
  single=(-1)
  [[ "$first" != *"-- no-transaction"* ]] || single=()
  psql -qX -v ON_ERROR_STOP=1 "${single[@]}" "$scratch_url" -f "$migration" >/dev/null
done

phase "sqlx: query data from Postgres (cargo check in $target)" "2 min fresh on 2 cores, 15 s after"
mkdir "$work/sqlx"
SQLX_OFFLINE=false DATABASE_URL="$scratch_url" SQLX_OFFLINE_DIR="$work/sqlx" \
  CARGO_TARGET_DIR="$target" cargo check --release --all-targets "${args[@]}"

if [ "$write" = 1 ]; then
  phase "sqlx: writing .sqlx" "1 s"
  mkdir -p "$committed"
  changed=0
  for file in "$work"/sqlx/*.json; do
    if ! cmp -s "$file" "$committed/${file##*/}"; then
      cp "$file" "$committed/"
      echo "    wrote ${file##*/}" >&2
      changed=1
    fi
  done
  for file in "$committed"/*.json; do
    if [ ! -e "$work/sqlx/${file##*/}" ]; then
      rm "$file"
      echo "    removed ${file##*/} (no query uses it)" >&2
      changed=1
    fi
  done
  [ "$changed" = 1 ] || echo "    .sqlx was up to date" >&2
  phases_total
  exit 0
fi

phase "sqlx: comparing with the committed .sqlx" "1 s"
# The statement a data file is for, shortened, to name it in messages.
query_of() {
  python3 -c 'import json, sys; print(" ".join(json.load(open(sys.argv[1]))["query"].split())[:100])' "$1"
}
bad=0
for file in "$work"/sqlx/*.json; do
  name="${file##*/}"
  if [ ! -e "$committed/$name" ]; then
    echo "    missing: $name, for: $(query_of "$file")" >&2
    bad=1
  elif ! cmp -s "$file" "$committed/$name"; then
    echo "    stale: $name, for: $(query_of "$file")" >&2
    diff -u "$committed/$name" "$file" | sed 's/^/      /' >&2 || true
    bad=1
  fi
done
for file in "$committed"/*.json; do
  if [ ! -e "$work/sqlx/${file##*/}" ]; then
    echo "    unused: ${file##*/}, for: $(query_of "$file")" >&2
    bad=1
  fi
done
if [ "$bad" = 1 ]; then
  echo ".sqlx does not match the queries and the migrations; regenerate it with" >&2
  echo "  ops/check-sqlx.sh --write" >&2
  echo "(Postgres running: ops/stack.sh) and commit .sqlx" >&2
  exit 1
fi
echo "    .sqlx matches all $(find "$work/sqlx" -name '*.json' | wc -l) queries" >&2
phases_total
