#!/usr/bin/env bash
# Fuzzes audio probing and decoding (fuzz/fuzz_targets/audio.rs) with
# cargo-fuzz on nightly: ops/fuzz.sh [SECONDS] (default 300). Seeds are
# generated here (a spoken sentence in every container, at several rates and
# channel counts); crashes, leaks and timeouts land in fuzz/artifacts/audio/.
# Keep what it finds as regression tests in shared/src/audio.rs.
set -euo pipefail
# shellcheck source=ops/env.sh
source "$(dirname "$0")/env.sh"
cd "$VOXQ_ROOT"
seconds="${1:-300}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
corpus="$VOXQ_ROOT/.voxq/fuzz-corpus/audio"
mkdir -p "$corpus"
if [ -z "$(ls -A "$corpus")" ]; then
  work=$(mktemp -d)
  espeak-ng -v en-us -w "$work/s.wav" "Thank you very much for your help yesterday."
  for rate in 8000 16000 44100; do
    for ch in 1 2; do
      ffmpeg -loglevel error -y -i "$work/s.wav" -ar $rate -ac $ch -t 1 -c:a pcm_s16le "$corpus/s-$rate-$ch.wav"
      ffmpeg -loglevel error -y -i "$work/s.wav" -ar $rate -ac $ch -t 1 -c:a flac "$corpus/s-$rate-$ch.flac"
      ffmpeg -loglevel error -y -i "$work/s.wav" -ar $rate -ac $ch -t 1 -c:a libvorbis "$corpus/s-$rate-$ch.ogg"
      ffmpeg -loglevel error -y -i "$work/s.wav" -ar $rate -ac $ch -t 1 -c:a libmp3lame "$corpus/s-$rate-$ch.mp3"
    done
  done
  rm -rf "$work"
fi
cd fuzz
# 2 GiB of RSS at most per input: a header that sizes buffers from its
# claims shows up as an out-of-memory finding.
cargo +nightly fuzz run audio "$corpus" -- \
  -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=20 -print_final_stats=1
