#!/usr/bin/env bash
# Storage benchmark: bytes per stored sample of table `blocks` (Storage v2) on
# real ECGs sent through the whole write path (gateway, Kafka, processor,
# ClickHouse), each sent whole (one PUT) and as 1-second chunks; see
# e2e/examples/storage.rs. Prints a Markdown report per data set:
#   - the 12-lead ECG of data/ecg (60,000 samples), in mV;
#   - MIT-BIH Arrhythmia record 100 (data/mitdb/100, two leads,
#     1.3 M samples at 360 Hz; ECG_MITDB=<record> picks another WFDB record),
#     as the file's ADC counts and in mV.
# and, for comparison, the same rows in the per-sample layout of migrations
# 0001-0004.
#
#   ECG_TEST_CLICKHOUSE_URL=http://127.0.0.1:8123 ECG_TEST_KAFKA_BROKERS=127.0.0.1:9092 \
#     bench/storage.sh
#
# Needs the broker and ClickHouse (`make up` or `make test` start them). Each
# data set gets its own database, dropped afterwards.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo run -q -p ecg-e2e --example storage
