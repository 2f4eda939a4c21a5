#!/usr/bin/env bash
# Installs schemathesis, pinned, in its own virtual environment under
# ~/.cache/voxq/schemathesis, for the API fuzzing test
# (tests/e2e/api_fuzz.rs). Idempotent: an installed pinned version is kept.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version=4.32.5
venv="${XDG_CACHE_HOME:-$HOME/.cache}/voxq/schemathesis"
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -qx "schemathesis, version $version"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi
# CPython 3.11 before 3.11.8 can raise SystemError from ast.parse deep in
# a recursion (gh-106905); hypothesis parses source only to describe a
# lambda, and schemathesis reports the error as a failed run. The patch
# makes that description "<unknown>", as hypothesis does when it cannot
# find the source.
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
cp "$root/ops/schemathesis/voxq_lambda_description.py" "$site/"
echo "import voxq_lambda_description" > "$site/voxq_lambda_description.pth"
