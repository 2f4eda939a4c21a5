#!/usr/bin/env bash
# Writes compose/.env (or FILE) from compose/.env.example with every
# `change-me` replaced by its own fresh random value (32 random bytes, hex).
# An existing file is kept as it is: its secrets already guard data.
#   compose/init-env.sh [FILE]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/.env}"
if [ -e "$out" ]; then
  echo "init-env: $out exists; kept" >&2
  exit 0
fi
umask 077
tmp="$out.part.$$"
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in
    VOXQ_*=change-me)
      printf '%s=%s\n' "${line%%=*}" "$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')" ;;
    *) printf '%s\n' "$line" ;;
  esac
done <"$here/.env.example" >"$tmp"
mv "$tmp" "$out"
echo "init-env: wrote $out with fresh secrets" >&2
