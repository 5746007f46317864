#!/usr/bin/env bash
# Writes deploy/clickhouse/users.d/analysts.xml, the analysts' read-only
# ClickHouse logins that docker-compose.yml mounts into ClickHouse's users.d
# (clickhouse/README.md, "Analyst logins"). ClickHouse reloads the file by
# itself within seconds: no restart.
#
#   deploy/analysts.sh                  regenerate from the list
#   deploy/analysts.sh TENANT [USER]    add a login for TENANT first (user
#                                       analyst_<tenant> unless USER is given)
#
# The list is ${ECG_SECRETS_DIR:-deploy/secrets}/analysts.toml (database and
# one [[analysts]] per login: tenant, user, password_file); each password is
# in analyst-<tenant> beside it, created here if missing (hand it over, keep
# it: only its SHA-256 goes into the XML). To rotate a password: delete or
# replace its file and run this again. To remove a login: delete its
# [[analysts]] entry and run this again.
#
# Needs ecg-migrate: through cargo where there is a Rust toolchain, else the
# migrate image (built first if missing). A list without logins needs
# neither.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

dir=${ECG_SECRETS_DIR:-deploy/secrets}
list=$dir/analysts.toml
out=deploy/clickhouse/users.d/analysts.xml

if (($# > 2)) || { (($#)) && [[ -z $1 ]]; }; then
  echo "usage: deploy/analysts.sh [TENANT [USER]]" >&2
  exit 2
fi

mkdir -p "$dir"
chmod 700 "$dir"
umask 077
if [[ ! -f $list ]]; then
  cat >"$list" <<'TOML'
# Analyst logins of ClickHouse: read-only, one tenant each. Add one with
# deploy/analysts.sh TENANT (or by hand: tenant, user, password_file relative
# to this file), then run deploy/analysts.sh to rewrite
# deploy/clickhouse/users.d/analysts.xml.
database = "ecg"
TOML
fi

if (($#)); then
  tenant=$1
  # The tenant in file and user names: anything but [A-Za-z0-9_-] becomes _.
  safe=${tenant//[^A-Za-z0-9_-]/_}
  user=${2:-analyst_$safe}
  secret=analyst-$safe
  if [[ ! -s $dir/$secret ]]; then
    openssl rand -hex 16 | tr -d '\n' >"$dir/$secret"
    echo "analysts.sh: created the password of $user in $dir/$secret"
  fi
  if ! grep -qxF "user = \"$user\"" "$list"; then
    # A TOML basic string: backslash and quote escaped (control characters
    # are refused by ecg-migrate's TOML parser rather than guessed at here).
    quoted=${tenant//\\/\\\\}
    quoted=${quoted//\"/\\\"}
    printf '\n[[analysts]]\ntenant = "%s"\nuser = "%s"\npassword_file = "%s"\n' \
      "$quoted" "$user" "$secret" >>"$list"
    echo "analysts.sh: added $user (tenant $tenant) to $list"
  fi
fi

# `ecg-migrate analysts` on the list, through cargo or the migrate image.
users_xml() {
  if command -v cargo >/dev/null && [[ -f Cargo.toml ]]; then
    cargo run -q -p ecg-clickhouse --bin ecg-migrate -- analysts "$list"
  else
    docker image inspect ecg-stream/migrate:local >/dev/null 2>&1 ||
      docker build -q --target migrate -t ecg-stream/migrate:local . >&2
    # The list's directory as /secrets, read as the caller (the files are 0600).
    docker run --rm --user "$(id -u):$(id -g)" -v "$(cd "$dir" && pwd):/secrets:ro" \
      ecg-stream/migrate:local ecg-migrate analysts /secrets/analysts.toml
  fi
}

tmp=$(mktemp "$out.XXXXXX")
trap 'rm -f "$tmp"' EXIT
if grep -q '^\[\[analysts\]\]' "$list"; then
  users_xml >"$tmp"
else
  printf '%s\n' '<!-- No analyst logins (deploy/analysts.sh TENANT adds one). -->' '<clickhouse/>' >"$tmp"
fi
# Password hashes only; ClickHouse (uid 101 in its container) must read it.
chmod 644 "$tmp"
mv "$tmp" "$out"
trap - EXIT
echo "analysts.sh: wrote $out ($(grep -c '<password_sha256_hex>' "$out" || true) logins); ClickHouse reloads it within seconds"
