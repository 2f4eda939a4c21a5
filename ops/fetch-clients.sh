#!/usr/bin/env bash
# Installs the published clients the compatibility tests drive, pinned:
# OpenAI's Python SDK and libretranslatepy in a virtual environment, and
# OpenAI's Node SDK, under ~/.cache/voxq/clients (tests/e2e/openai.rs,
# tests/e2e/libretranslate.rs); and Debian's headless Chromium, which
# renders the docs page (tests/e2e/docs.rs). Idempotent: pinned versions
# in place are kept.
set -euo pipefail
openai_python=3.63.0
libretranslatepy=2.1.4
# The 7.x line needs Node.js 22; Debian's is 20.
openai_node=6.30.1
dir="${XDG_CACHE_HOME:-$HOME/.cache}/voxq/clients"
venv="$dir/python"
if ! "$venv/bin/python" - "$openai_python" "$libretranslatepy" 2>/dev/null <<'PY'
import sys, importlib.metadata as m
assert m.version("openai") == sys.argv[1]
assert m.version("libretranslatepy") == sys.argv[2]
PY
then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "openai==$openai_python" "libretranslatepy==$libretranslatepy"
fi
node="$dir/node"
if [ "$(node -p "require('$node/node_modules/openai/package.json').version" 2>/dev/null)" != "$openai_node" ]; then
  if ! command -v npm >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  fi
  mkdir -p "$node"
  (cd "$node" && npm install --silent --no-audit --no-fund --no-save "openai@$openai_node")
fi
if ! command -v chromium >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
echo "clients: openai $openai_python and libretranslatepy $libretranslatepy (Python), openai $openai_node (Node.js) in $dir; $(chromium --version 2>/dev/null)"
