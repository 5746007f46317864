#!/usr/bin/env bash
# Whole-recording upload benchmark: a 24-hour 12-lead 500 Hz Holter
# recording (43.2 M samples per lead, 518 M in all, ~4 GB of CSV) streamed
# in one `PUT /v1/ecgs/{id}/signal`, generated on the fly (never on disk).
# Prints the wall time, the throughput and the gateway's peak RSS.
#
#   bench/holter_upload.sh [HOURS]          (default 24)
#
# Starts the stack in release mode with a freshly started gateway (so its
# peak RSS is this upload's) and the processor stopped (this measures the
# gateway; the end-to-end Holter figure is `make bench`'s). The broker keeps
# the produced chunks (~4 GB in its memory store) until `make down`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

HOURS=${1:-24}
export ECG_PROFILE=release
cargo build --release -p ecg-ingest --example holter_csv >/dev/null 2>&1
dev/stack.sh down ingest processor >/dev/null
dev/stack.sh up >/dev/null
dev/stack.sh down processor >/dev/null
PID=$(cat .local/run/ingest.pid)

TOKEN=$(curl -sf -d grant_type=client_credentials -d client_id=demo -d client_secret=demo-secret \
  http://127.0.0.1:8081/oauth/token | .local/venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
ID=$(curl -sf -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
  -d '{"device_id":"holter-bench","sample_rate_hz":500,"leads":["I","II","III","aVR","aVL","aVF","V1","V2","V3","V4","V5","V6"]}' \
  http://127.0.0.1:8080/v1/ecgs | .local/venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["id"])')

rss_log=$(mktemp)
( while kill -0 "$PID" 2>/dev/null; do grep VmRSS /proc/"$PID"/status | awk '{print $2}'; sleep 0.5; done ) >"$rss_log" &
SAMPLER=$!
start=$(date +%s.%N)
answer=$(target/release/examples/holter_csv "$HOURS" | curl -sS -X PUT -T - \
  -H "Authorization: Bearer $TOKEN" -H 'content-type: text/csv' \
  -w '\n%{http_code} %{size_upload}' "http://127.0.0.1:8080/v1/ecgs/$ID/signal")
end=$(date +%s.%N)
kill "$SAMPLER" 2>/dev/null || true
status=$(tail -1 <<<"$answer")
echo "answer: $(head -1 <<<"$answer")"
read -r code bytes <<<"$status"
samples=$(awk -v h="$HOURS" 'BEGIN { printf "%d", h * 3600 * 500 * 12 }')
awk -v s="$start" -v e="$end" -v b="$bytes" -v n="$samples" -v c="$code" \
  'BEGIN { t = e - s; printf "HTTP %s: %.1f s, %.2f GB of CSV, %.1f M samples, %.1f M samples/s, %.0f MB/s\n", c, t, b / 1e9, n / 1e6, n / t / 1e6, b / t / 1e6 }'
echo "gateway RSS: peak $(awk '/VmHWM/ {printf "%.1f MB", $2/1024}' /proc/"$PID"/status), sampled max $(sort -n "$rss_log" | tail -1 | awk '{printf "%.1f MB", $1/1024}') over $(wc -l <"$rss_log") samples"
rm -f "$rss_log"
