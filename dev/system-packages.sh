#!/usr/bin/env bash
# The system packages ecg-stream needs, installed with apt-get when missing
# (through sudo unless root). The one list: `make up`, `make run` and
# `make lint` call it with `build`, `make test` with `test`; .ci/run gets it
# only through those make targets.
#
#   dev/system-packages.sh build   what building the workspace and running the
#                                  local stack need
#   dev/system-packages.sh test    that, plus what the tests drive (nginx,
#                                  docker-compose, Chromium and chromedriver)
#   dev/system-packages.sh --check [build|test]   only say what is missing (exit 1 if any)
#
# When everything is present it only reads the package database (0.5 s) and
# installs nothing. Without dpkg (not Debian/Ubuntu) it checks commands and
# names what to install by hand.
#
# Why each is needed:
# - gcc, g++, make, perl: rdkafka-sys builds librdkafka with ./configure &&
#   make; aws-lc-sys (rustls), libz-sys and mimalloc compile C with the cc crate.
# - pkg-config + zlib1g-dev: libz-sys links the system zlib when pkg-config
#   finds it (rdkafka's default `libz` feature); libssl-dev: librdkafka
#   links OpenSSL (rdkafka's `ssl` feature: SASL/SCRAM over TLS to Kafka).
# - curl, setsid (util-linux), timeout (coreutils): dev/stack.sh's process
#   control and readiness checks. python3-venv: the stack's venv, only where
#   python3 cannot make one (Debian's own python3).
# - test only: docker-compose and nginx for the deployment tests
#   (`docker-compose config` needs no engine; e2e/tests/deploy_config.rs,
#   multi_instance.rs); openssl, with which deploy/secrets.sh makes the keys
#   and certificates the deployment tests check; chromium + chromium-driver
#   for the dashboard's browser tests (e2e/tests/dashboard/), which drive a
#   real headless Chromium.
set -euo pipefail

check_only=0
if [[ ${1:-} == --check ]]; then
  check_only=1
  shift
fi
scope=${1:-test}
case "$scope" in
  build | test) ;;
  *) echo "usage: $0 [--check] [build|test]" >&2; exit 2 ;;
esac

# command:package pairs, and packages known only to dpkg.
commands=(gcc:gcc g++:g++ make:make perl:perl pkg-config:pkg-config curl:curl
  setsid:util-linux timeout:coreutils)
packages=(zlib1g-dev libssl-dev)
if [[ $scope == test ]]; then
  commands+=(nginx:nginx docker-compose:docker-compose chromium:chromium chromedriver:chromium-driver
    openssl:openssl)
  packages+=(nginx docker-compose chromium chromium-driver openssl)
fi

missing=()
for pair in "${commands[@]}"; do
  command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
if command -v dpkg-query >/dev/null; then
  for pkg in "${packages[@]}"; do
    [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) == 'install ok installed' ]] || missing+=("$pkg")
  done
fi
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  missing+=(python3-venv)
fi
# One name once, in a stable order.
if ((${#missing[@]})); then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
fi

if ((${#missing[@]} == 0)); then
  echo "==> system packages ($scope): all present"
  exit 0
fi
echo "==> system packages ($scope): missing ${missing[*]}"
((check_only)) && exit 1
if ! command -v apt-get >/dev/null; then
  echo "error: no apt-get here: install ${missing[*]} (or your system's equivalents) by hand" >&2
  exit 1
fi
sudo=()
if ((EUID != 0)); then
  command -v sudo >/dev/null || {
    echo "error: not root and no sudo: run as root: apt-get install ${missing[*]}" >&2
    exit 1
  }
  sudo=(sudo)
fi
echo "==> apt-get install ${missing[*]}"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
