#!/usr/bin/env bash
# API memory under concurrent maximum-size uploads: starts voxq-api on a
# scratch database and namespace (no worker: the jobs stay queued), makes
# one WAV of VOXQ_MAX_UPLOAD_BYTES (100 MiB unless set), posts it N times at
# once (16 unless given as the first argument) and prints the API's peak
# resident memory (VmHWM) before and after, beside what holding the uploads
# whole would have cost.
set -euo pipefail
# shellcheck source=ops/env.sh
source "$(dirname "$0")/../env.sh"
cd "$VOXQ_ROOT"
uploads="${1:-16}"

ops/stack.sh >/dev/null
cargo build --release -p voxq-api -p voxq

ns="upl$(date +%s)"
db="voxq_$ns"
port="${VOXQ_BENCH_PORT:-18081}"
max_bytes="${VOXQ_MAX_UPLOAD_BYTES:-$((100 * 1024 * 1024))}"
export VOXQ_DATABASE_URL="postgres://postgres:postgres@127.0.0.1:5432/$db"
export VOXQ_NAMESPACE="$ns" VOXQ_API_BIND="127.0.0.1:$port" VOXQ_API_METRICS_BIND=127.0.0.1:0 VOXQ_LOG=warn
export VOXQ_MAX_UPLOAD_BYTES="$max_bytes" VOXQ_STANDBY_MODELS="whisper-tiny.en=transcribe"
export VOXQ_API_URL="http://127.0.0.1:$port"
# A vhost of its own: its queues go with it in one call at the end.
rabbitmqctl add_vhost "$ns" >/dev/null
rabbitmqctl set_permissions -p "$ns" guest '.*' '.*' '.*' >/dev/null
export VOXQ_AMQP_URL="amqp://guest:guest@127.0.0.1:5672/$ns"
scratch="$(mktemp -d)"

"$VOXQ_BIN/voxq-api" &
api=$!
cleanup() {
  kill "$api" 2>/dev/null || true
  wait "$api" 2>/dev/null || true
  rm -rf "$scratch"
  psql -h 127.0.0.1 -U postgres -qc "drop database if exists $db with (force)" >/dev/null 2>&1 || true
  rabbitmqctl delete_vhost "$ns" >/dev/null 2>&1 || true
}
trap cleanup EXIT
for _ in $(seq 100); do
  curl -fsS "$VOXQ_API_URL/health/ready" >/dev/null 2>&1 && break
  sleep 0.2
done

# A 16 kHz mono 16-bit WAV of exactly the upload limit (near-silence).
python3 - "$scratch/max.wav" "$max_bytes" <<'PY'
import struct, sys
path, total = sys.argv[1], int(sys.argv[2])
data = total - 44
with open(path, "wb") as f:
    f.write(b"RIFF" + struct.pack("<I", total - 8) + b"WAVE")
    f.write(b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16))
    f.write(b"data" + struct.pack("<I", data))
    chunk = (struct.pack("<h", 3) * 16000)
    left = data
    while left > 0:
        piece = chunk[: min(len(chunk), left)]
        f.write(piece)
        left -= len(piece)
PY

account=$("$VOXQ_BIN/voxq" admin create-account --name uploads --tier enterprise)
key=$("$VOXQ_BIN/voxq" admin create-key --account "$account")
hwm() { awk '/VmHWM/ {print $2}' "/proc/$api/status"; }
before=$(hwm)
start=$(date +%s%N)
clients=()
for i in $(seq "$uploads"); do
  curl -sS -o "$scratch/answer.$i" -w '%{http_code}\n' -H "Authorization: Bearer $key" \
    -F "file=@$scratch/max.wav" "$VOXQ_API_URL/v1/jobs" > "$scratch/status.$i" &
  clients+=($!)
done
wait "${clients[@]}"
seconds=$(( ($(date +%s%N) - start) / 1000000000 ))
after=$(hwm)
accepted=$(cat "$scratch"/status.* | grep -c '^202$' || true)
echo "uploads: $uploads x $max_bytes bytes, $accepted answered 202 in ${seconds} s"
if [ "$accepted" != "$uploads" ]; then
  head -c 300 "$scratch"/answer.* >&2
fi
echo "voxq-api peak RSS: ${before} KiB before, ${after} KiB after"
echo "held whole, the uploads alone would be $((uploads * max_bytes / 1024)) KiB"
