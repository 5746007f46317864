#!/usr/bin/env bash
# Creates the files docker-compose.yml mounts as secrets, in
# ${ECG_SECRETS_DIR:-deploy/secrets} (git-ignored). Only missing files are
# created: re-running never rotates a key (a new signing key would
# invalidate every token in circulation).
#
#   jwt-signing-key.pem     query-api's Ed25519 token signing key (PKCS#8 PEM)
#   clients.toml            OAuth2 clients, secrets as argon2id hashes only
#   client-<id>.secret      that client's secret, for you to hand over (then
#                           delete it; only the hash is needed to run)
#   tls.crt, tls.key        a self-signed certificate for nginx, for trying
#                           it out; put your CA-issued pair here instead
#   grafana-admin-password  Grafana's admin password
#   analysts.toml           the analysts' read-only ClickHouse logins (none at
#                           first; deploy/analysts.sh TENANT adds one, with its
#                           password in analyst-<tenant>), and from it
#                           deploy/clickhouse/users.d/analysts.xml, which
#                           docker-compose.yml mounts into ClickHouse
#   clickhouse-admin        the password of ClickHouse's `default` user, the
#                           admin that runs ecg-migrate (DDL)
#   clickhouse-ingest, clickhouse-processor, clickhouse-query-api
#                           each service's own ClickHouse password (users
#                           ingest, processor, query_api, granted only what
#                           the service does)
#   clickhouse-services.toml, clickhouse-services.xml
#                           their list, and the users.d file `ecg-migrate
#                           services` makes of it (password hashes only),
#                           which docker-compose.yml mounts into ClickHouse;
#                           rewritten when a password file is newer
#   kafka-ca.crt, kafka-ca.key
#                           the CA of Kafka's certificates (the key is never
#                           mounted: keep it, or move it offline)
#   kafka-broker.p12, kafka-keystore-password
#                           every broker's certificate (kafka, kafka-2,
#                           kafka-3) and key, signed by that CA, as a PKCS#12
#                           keystore, and its password
#   kafka-ingest, kafka-processor, kafka-query-api
#                           each service's SCRAM-SHA-512 password, set on the
#                           brokers by kafka-init
#   ingest.toml, processor.toml, query-api.toml
#                           each service's Kafka client settings (SASL_SSL,
#                           its user and password, the CA), mounted as its
#                           ECG_CONFIG file; rewritten when its password file
#                           is newer
#
# To rotate a password: delete (or overwrite) its file and run this again,
# then recreate what reads it (`docker compose up -d`; kafka-init sets
# Kafka passwords again on every run). To renew the broker certificate:
# delete kafka-broker.p12 and run this again.
#
# Environment: ECG_DOMAIN (certificate name, default localhost),
# ECG_CLIENT_ID / ECG_CLIENT_TENANT (the first client, default admin /
# default), ECG_HASH_SECRET (the command that hashes a secret read on stdin;
# default: the ecg-hash-secret binary via cargo, else via the query-api
# image, built first if needed), ECG_MIGRATE (the ecg-migrate command, found
# the same way in the migrate image).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

dir=${ECG_SECRETS_DIR:-deploy/secrets}
domain=${ECG_DOMAIN:-localhost}
client_id=${ECG_CLIENT_ID:-admin}
tenant=${ECG_CLIENT_TENANT:-default}
# The services run as uid 10001 (Dockerfile). Compose outside swarm mounts
# secrets as plain bind mounts with the host's owner and mode, so the files
# the services read must be readable by that uid.
service_uid=${ECG_SERVICE_UID:-10001}
# The apache/kafka image runs as appuser, uid 1000.
kafka_uid=${ECG_KAFKA_UID:-1000}

mkdir -p "$dir"
chmod 700 "$dir"
umask 077

# for_uid UID FILE: lets the container user UID read FILE: owned by it when
# we may chown (root), else readable by all (the 0700 directory still keeps
# other host users out).
for_uid() {
  if chown "$1:$1" "$2" 2>/dev/null; then
    chmod 600 "$2"
  else
    chmod 644 "$2"
  fi
}

hash_secret() {
  if [[ -n ${ECG_HASH_SECRET:-} ]]; then
    $ECG_HASH_SECRET
  elif command -v cargo >/dev/null && [[ -f Cargo.toml ]]; then
    cargo run -q -p ecg-auth --bin ecg-hash-secret
  else
    # No Rust toolchain here: the query-api image carries the tool.
    docker image inspect ecg-stream/query-api:local >/dev/null 2>&1 ||
      docker build -q --target query-api -t ecg-stream/query-api:local . >&2
    docker run --rm -i ecg-stream/query-api:local ecg-hash-secret
  fi
}

# `ecg-migrate ARGS...`, run where the secrets are readable.
ecg_migrate() {
  if [[ -n ${ECG_MIGRATE:-} ]]; then
    $ECG_MIGRATE "$@"
  elif command -v cargo >/dev/null && [[ -f Cargo.toml ]]; then
    cargo run -q -p ecg-clickhouse --bin ecg-migrate -- "$@"
  else
    docker image inspect ecg-stream/migrate:local >/dev/null 2>&1 ||
      docker build -q --target migrate -t ecg-stream/migrate:local . >&2
    # The secrets directory as /secrets, read as the caller (files are 0600).
    docker run --rm --user "$(id -u):$(id -g)" -v "$(cd "$dir" && pwd):/secrets:ro" \
      ecg-stream/migrate:local ecg-migrate "${@/#$dir//secrets}"
  fi
}

# password FILE UID: a random password (hex: no character any config syntax
# would change) in FILE unless it has one, readable by UID.
password() {
  [[ -s $dir/$1 ]] && return 0
  openssl rand -hex 24 | tr -d '\n' >"$dir/$1"
  for_uid "$2" "$dir/$1"
  created+=("$1")
}

# stale TARGET SOURCE...: TARGET is missing or older than a SOURCE.
stale() {
  local target=$1 source
  shift
  [[ -f $target ]] || return 0
  for source in "$@"; do
    [[ $source -nt $target ]] && return 0
  done
  return 1
}

created=()

if [[ ! -f $dir/jwt-signing-key.pem ]]; then
  openssl genpkey -algorithm ed25519 -out "$dir/jwt-signing-key.pem"
  for_uid "$service_uid" "$dir/jwt-signing-key.pem"
  created+=(jwt-signing-key.pem)
fi

if [[ ! -f $dir/clients.toml ]]; then
  # Hex: no character that form or Basic encoding would change (RFC 6749
  # form-decodes the Basic credentials: a '+' would arrive as a space).
  secret=$(openssl rand -hex 32)
  hash=$(printf '%s\n' "$secret" | hash_secret)
  # shellcheck disable=SC2016 # a literal PHC prefix, not an expansion
  [[ $hash == '$argon2id$'* ]] || { echo "secrets.sh: hashing the client secret failed" >&2; exit 1; }
  cat > "$dir/clients.toml" <<TOML
# OAuth2 clients of query-api's token endpoint (auth.clients_file). Add one
# [[clients]] per device fleet or application; hash each secret with
# ecg-hash-secret. Restart query-api to apply.
[[clients]]
id = "$client_id"
secret_hash = "$hash"
tenant = "$tenant"
scopes = ["ecg:write", "ecg:read"]
TOML
  for_uid "$service_uid" "$dir/clients.toml"
  printf '%s\n' "$secret" > "$dir/client-$client_id.secret"
  created+=(clients.toml "client-$client_id.secret")
fi

if [[ ! -f $dir/tls.crt || ! -f $dir/tls.key ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
    -subj "/CN=$domain" -addext "subjectAltName=DNS:$domain" \
    -keyout "$dir/tls.key" -out "$dir/tls.crt" 2>/dev/null
  chmod 644 "$dir/tls.crt"
  created+=(tls.crt tls.key)
fi

if [[ ! -f $dir/grafana-admin-password ]]; then
  openssl rand -hex 16 | tr -d '\n' > "$dir/grafana-admin-password"
  # The official Grafana image runs as uid 472.
  for_uid 472 "$dir/grafana-admin-password"
  created+=(grafana-admin-password)
fi

# ClickHouse: the admin's password, each service's, and the users.d file of
# their logins (clickhouse/README.md, "Service users").
password clickhouse-admin "$service_uid"
for service in ingest processor query-api; do
  password "clickhouse-$service" "$service_uid"
done
if stale "$dir/clickhouse-services.toml" || stale "$dir/clickhouse-services.xml" \
  "$dir"/clickhouse-{admin,ingest,processor,query-api}; then
  cat >"$dir/clickhouse-services.toml" <<'TOML'
# The services' ClickHouse logins and the admin's password (made by
# deploy/secrets.sh); `ecg-migrate services` turns them into
# clickhouse-services.xml. Paths are relative to this file.
database = "ecg"
admin_password_file = "clickhouse-admin"

[[services]]
service = "ingest"
password_file = "clickhouse-ingest"

[[services]]
service = "processor"
password_file = "clickhouse-processor"

[[services]]
service = "query-api"
password_file = "clickhouse-query-api"
TOML
  xml=$(ecg_migrate services "$dir/clickhouse-services.toml") ||
    { echo "secrets.sh: ecg-migrate services failed" >&2; exit 1; }
  printf '%s\n' "$xml" >"$dir/clickhouse-services.xml"
  # Password hashes only; ClickHouse (uid 101 in its container) must read it.
  chmod 644 "$dir/clickhouse-services.xml"
  created+=(clickhouse-services.xml)
fi

# Kafka: a CA, the brokers' certificate signed by it, as a keystore.
if [[ ! -f $dir/kafka-ca.crt || ! -f $dir/kafka-ca.key ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=ecg-stream Kafka CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$dir/kafka-ca.key" -out "$dir/kafka-ca.crt" 2>/dev/null
  chmod 644 "$dir/kafka-ca.crt"
  # A new CA: the brokers' certificate is signed again below.
  rm -f "$dir/kafka-broker.p12"
  created+=(kafka-ca.crt kafka-ca.key)
fi
password kafka-keystore-password "$kafka_uid"
if [[ ! -f $dir/kafka-broker.p12 ]]; then
  work=$(mktemp -d)
  # The subject is the brokers' identity on the INTERNAL and CONTROLLER
  # listeners (deploy/kafka/start.sh: super.users=User:CN=kafka-broker).
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=kafka-broker" \
    -keyout "$work/broker.key" -out "$work/broker.csr" 2>/dev/null
  printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth,clientAuth" \
    "subjectAltName=DNS:kafka,DNS:kafka-2,DNS:kafka-3,DNS:localhost" >"$work/ext"
  openssl x509 -req -in "$work/broker.csr" -CA "$dir/kafka-ca.crt" -CAkey "$dir/kafka-ca.key" \
    -CAcreateserial -CAserial "$work/ca.srl" -days 825 -extfile "$work/ext" \
    -out "$work/broker.crt" 2>/dev/null
  openssl pkcs12 -export -in "$work/broker.crt" -inkey "$work/broker.key" \
    -certfile "$dir/kafka-ca.crt" -name kafka-broker \
    -passout "file:$dir/kafka-keystore-password" -out "$dir/kafka-broker.p12"
  rm -rf "$work"
  for_uid "$kafka_uid" "$dir/kafka-broker.p12"
  created+=(kafka-broker.p12)
fi

# Each service's SCRAM password (kafka-init sets them on the brokers), and
# its Kafka client settings: the file the service reads as ECG_CONFIG.
for service in ingest processor query-api; do
  password "kafka-$service" "$kafka_uid"
  config=$dir/$service.toml
  stale "$config" "$dir/kafka-$service" || continue
  section=kafka.properties
  [[ $service == query-api ]] && section=pipeline.properties
  cat >"$config" <<TOML
# $service's Kafka client settings (ECG_CONFIG in docker-compose.yml), made
# by deploy/secrets.sh from kafka-$service: SASL/SCRAM over TLS as user
# $service. A secret; its other settings are in docker-compose.yml.
[$section]
"security.protocol" = "SASL_SSL"
"sasl.mechanisms" = "SCRAM-SHA-512"
"sasl.username" = "$service"
"sasl.password" = "$(<"$dir/kafka-$service")"
"ssl.ca.location" = "/run/secrets/kafka_ca"
TOML
  for_uid "$service_uid" "$config"
  created+=("$service.toml")
done

# Compose mounts this file: it must exist even without analysts (a missing
# bind-mount source would be created as a directory).
if [[ ! -f deploy/clickhouse/users.d/analysts.xml ]]; then
  ECG_SECRETS_DIR=$dir deploy/analysts.sh
fi

if ((${#created[@]})); then
  echo "secrets.sh: created in $dir: ${created[*]}"
  [[ -f $dir/client-$client_id.secret ]] &&
    echo "secrets.sh: client '$client_id' (tenant '$tenant'): secret in $dir/client-$client_id.secret"
else
  echo "secrets.sh: $dir is complete; nothing created"
fi
