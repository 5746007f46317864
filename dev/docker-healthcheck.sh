#!/usr/bin/env bash
# Container health check for the Rust services (the runtime image has no
# curl): GET /healthz on the service's own port over bash's /dev/tcp, healthy
# only on an HTTP 200 status line. The port is the argument, or else the one
# in ECG_HTTP__ADDR (host:port), which the service itself listens on.
set -euo pipefail
port=${1:-${ECG_HTTP__ADDR##*:}}
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
IFS= read -r -t 5 status <&3
[[ $status == "HTTP/1."[01]" 200 "* ]]
