#!/usr/bin/env bash
# Gateway load benchmark: accepted samples/s and latency percentiles for
# JSON, CSV and Arrow chunks at 100 and 1,000 connections. Two parts:
#
# - closed: wrk (Debian's package), each connection sending its next
#   request when the last is answered; one second of a 12-lead 500 Hz ECG
#   (6,000 samples) per request; the gateway pinned to one core.
# - open: the project's own open-loop tool (e2e/examples/ingest_load.rs):
#   offered rates over 100 and 1,000 connections, latency from when each
#   request was due, and the gateway's CPU per sample from /proc; 1 s and
#   120,000-sample chunks, floats and ADC counts; the gateway unpinned.
#
# A 202 means the broker acknowledged the chunk.
#
#   bench/ingest_load.sh [SECONDS]      (default 15 s per case)
#   ECG_BENCH_PARTS="closed open"       (default: both)
#
# Starts the stack in release mode (dev/stack.sh up), stops the processor
# so only the gateway and the broker work, lifts the rate limits, runs the
# cases and prints a table. The gateway (all its threads, librdkafka's
# included) is pinned to CPU 1 (ECG_BENCH_CPU)
# and wrk to CPU 0, so "per core" means the gateway's one core; the broker
# and ClickHouse share the machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION=${1:-15}
CPU=${ECG_BENCH_CPU:-1}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 2; }

export ECG_PROFILE=release
# Rate limits lifted: this measures capacity, not the default budgets.
cat >"$WORK/ingest.toml" <<'TOML'
[rate_limit]
requests_per_second = 4000000000
request_burst = 4000000000
samples_per_second = 4000000000
sample_burst = 4000000000
TOML
export ECG_INGEST_CONFIG="$WORK/ingest.toml"
# A fresh stack: the in-memory dev broker keeps every earlier run's chunks.
dev/stack.sh down >/dev/null
dev/stack.sh up >/dev/null
dev/stack.sh down processor >/dev/null
INGEST_PID=$(cat .local/run/ingest.pid)
taskset -a -pc "$CPU" "$INGEST_PID" >/dev/null

PARTS=${ECG_BENCH_PARTS:-closed open}
cargo build -q --release -p ecg-e2e --example ingest_load
SAMPLES=$(.local/venv/bin/python bench/chunk_bodies.py "$WORK")
TOKEN=$(curl -sf -d grant_type=client_credentials -d client_id=demo -d client_secret=demo-secret \
  http://127.0.0.1:8081/oauth/token | .local/venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
LEADS=$(cat "$WORK/leads.json")
ID=$(curl -sf -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
  -d "{\"device_id\":\"bench\",\"sample_rate_hz\":500,\"leads\":$LEADS}" \
  http://127.0.0.1:8080/v1/ecgs | .local/venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["id"])')
export TOKEN

if [[ " $PARTS " == *" closed "* ]]; then
  echo "== closed loop (wrk), gateway pinned to CPU $CPU =="
  printf '%-6s %6s %12s %14s %9s %9s %9s %8s\n' format conns "requests/s" "M samples/s" "p50 ms" "p99 ms" "max ms" errors
  for format in json csv arrow; do
    case $format in
      json) CT=application/json; URL="http://127.0.0.1:8080/v1/ecgs/$ID/chunks" ;;
      csv) CT=text/csv; URL="http://127.0.0.1:8080/v1/ecgs/$ID/chunks?seq=1" ;;
      arrow) CT=application/vnd.apache.arrow.stream; URL="http://127.0.0.1:8080/v1/ecgs/$ID/chunks?seq=1" ;;
    esac
    for conns in 100 1000; do
      line=$(CONTENT_TYPE=$CT BODY="$WORK/chunk.$format" taskset -c 0 \
        wrk -t2 -c"$conns" -d"${DURATION}s" --timeout 10s -s bench/post_chunk.lua "$URL" | grep '^RESULT')
      eval "${line#RESULT }"
      ok=$((requests - non2xx))
      awk -v f="$format" -v c="$conns" -v ok="$ok" -v d="$duration_us" -v s="$SAMPLES" \
          -v p50="$p50_us" -v p99="$p99_us" -v mx="$max_us" -v e="$((non2xx + socket_errors))" \
        'BEGIN { printf "%-6s %6d %12.0f %14.2f %9.2f %9.2f %9.1f %8d\n", f, c, ok / (d / 1e6), ok * s / (d / 1e6) / 1e6, p50 / 1e3, p99 / 1e3, mx / 1e3, e }'
    done
  done
  echo "(gateway peak RSS: $(grep VmHWM /proc/"$INGEST_PID"/status | awk '{print $2/1024 " MB"}'))"
fi

if [[ " $PARTS " == *" open "* ]]; then
  taskset -a -pc 0-"$(($(nproc) - 1))" "$INGEST_PID" >/dev/null
  echo "== open loop (target/release/examples/ingest_load), gateway unpinned =="
  # body: offered requests/s, up to where this 2-core machine saturates.
  for connections in 100 1000; do
    for case in "chunk.json 500,1000,1500" "chunk.csv 250,500,750" \
      "chunk.arrow 500,1000,2000" "chunk_adc.arrow 500,1000,2000" \
      "chunk_big.arrow 100,200,300" "chunk_adc_big.arrow 100,200,300,400,500"; do
      set -- $case
      target/release/examples/ingest_load --body "$WORK/$1" --pid "$INGEST_PID" \
        --connections "$connections" --rates "$2" --duration "$DURATION"
    done
  done
  echo "(gateway peak RSS: $(grep VmHWM /proc/"$INGEST_PID"/status | awk '{print $2/1024 " MB"}'))"
fi
