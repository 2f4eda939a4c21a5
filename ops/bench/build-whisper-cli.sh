#!/usr/bin/env bash
# Builds whisper.cpp's own command-line tool (whisper-cli) from the same
# library sources that voxq's whisper-cpp engine links (the whisper.cpp
# tree inside the whisper-rs-sys crate, same ggml and build type), and
# prints its path. The crate leaves out the examples, so the CLI's source
# comes from the pywhispercpp source package on PyPI (whisper.cpp 1.8.5);
# its quantisation helper names two ggml types newer than the library and
# unused by the CLI, which are dropped. Cached under ~/.cache/voxq.
set -euo pipefail
# shellcheck source=ops/env.sh
source "$(dirname "$0")/../env.sh"
cd "$VOXQ_ROOT"
out="$HOME/.cache/voxq/whisper-cli"
bin="$out/src/build/bin/whisper-cli"
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi

version=$(cargo metadata --format-version 1 --locked 2>/dev/null | python3 -c '
import json, sys
pkgs = json.load(sys.stdin)["packages"]
print(next(p["manifest_path"] for p in pkgs if p["name"] == "whisper-rs-sys"))')
crate_dir=$(dirname "$version")
rm -rf "$out" && mkdir -p "$out"
cp -r "$crate_dir/whisper.cpp" "$out/src"
sdist_url=$(curl -fsS https://pypi.org/simple/pywhispercpp/ |
  grep -o 'https://files.pythonhosted.org[^"#]*pywhispercpp-1.5.1.tar.gz' | head -n1)
curl -fsSL "$sdist_url" | tar xz -C "$out" pywhispercpp-1.5.1/whisper.cpp/examples
cp -r "$out/pywhispercpp-1.5.1/whisper.cpp/examples" "$out/src/examples"
sed -i -e '/GGML_FTYPE_MOSTLY_NVFP4:/d' -e '/GGML_FTYPE_MOSTLY_Q1_0:/d' \
  -e '/GGML_TYPE_NVFP4:/d' -e '/GGML_TYPE_Q1_0:/d' "$out/src/examples/common-ggml.cpp"
cmake -S "$out/src" -B "$out/src/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
  -DWHISPER_BUILD_EXAMPLES=ON -DWHISPER_BUILD_TESTS=OFF -DWHISPER_SDL2=OFF >&2
cmake --build "$out/src/build" -j "$(nproc)" --target whisper-cli >&2
echo "$bin"
