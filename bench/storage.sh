#!/usr/bin/env bash
# Storage benchmark: bytes per stored sample of table `samples` on real ECGs,
# sent through the whole write path (gateway, Kafka, processor, ClickHouse);
# see e2e/examples/storage.rs. Prints a Markdown report per data set:
#   - the 12-lead ECG of data/ecg (60,000 samples), once;
#   - the same concatenated ECG_BENCH_COPIES times (default 20) per lead:
#     REPEATED data, so ZSTD may find the repeats (reported for the fixed
#     overhead, not as the headline);
#   - MIT-BIH Arrhythmia record 208 (108,000 samples, 360 Hz), which scipy
#     <= 1.14 ships as scipy/misc/ecg.dat, sent in mV and as ADC counts.
#     Skipped with --no-mitdb or when PyPI cannot be reached.
#
#   ECG_TEST_CLICKHOUSE_URL=http://127.0.0.1:8123 ECG_TEST_KAFKA_BROKERS=127.0.0.1:9092 \
#     bench/storage.sh [--no-mitdb]
#
# Needs the broker and ClickHouse (`make up` or `make test` start them). Each
# data set gets its own database, dropped afterwards.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

args=()
if [[ "${1:-}" != "--no-mitdb" ]]; then
  cache=${XDG_CACHE_HOME:-$HOME/.cache}/ecg-stream
  mkdir -p "$cache"
  json=$cache/mitdb208.json
  if [[ ! -s "$json" ]]; then
    if python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
        --platform manylinux2014_x86_64 'scipy==1.14.0' -d "$cache" >&2; then
      # ecg.dat is an .npz: a zip holding ecg.npy, uint16 little-endian ADC counts.
      python3 - "$cache"/scipy-1.14.0-*.whl "$json" <<'EOF'
import hashlib, io, json, struct, sys, zipfile
dat = zipfile.ZipFile(sys.argv[1]).read("scipy/misc/ecg.dat")
assert hashlib.sha256(dat).hexdigest() == "f20ad3365fb9b7f845d0e5c48b6fe67081377ee466c3a220b7f69f35c8958baf"
npy = zipfile.ZipFile(io.BytesIO(dat)).read("ecg.npy")
header_len = struct.unpack("<H", npy[8:10])[0]
header = npy[10:10 + header_len].decode()
assert "'<u2'" in header and "'fortran_order': False" in header, header
body = npy[10 + header_len:]
adc = list(struct.unpack(f"<{len(body) // 2}H", body))
assert len(adc) == 108000
json.dump({"record": "MIT-BIH Arrhythmia 208, lead MLII, from scipy 1.14.0 scipy/misc/ecg.dat",
           "fs_hz": 360, "adc": adc}, open(sys.argv[2], "w"))
EOF
    else
      echo "PyPI unreachable: MIT-BIH 208 skipped" >&2
    fi
  fi
  [[ -s "$json" ]] && args=("$json")
fi

cargo run -q -p ecg-e2e --example storage -- "${args[@]}"
