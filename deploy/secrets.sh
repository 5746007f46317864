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
#
# Environment: ECG_DOMAIN (certificate name, default localhost),
# ECG_CLIENT_ID / ECG_CLIENT_TENANT (the first client, default admin /
# default), ECG_HASH_SECRET (the command that hashes a secret read on stdin;
# default: the ecg-hash-secret binary via cargo, else via the query-api
# image, built first if needed).
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
