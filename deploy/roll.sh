#!/usr/bin/env bash
# Rolling update of compose services: rebuilds their image, then recreates
# them one at a time, each only after the previous one is healthy again, so
# nginx always has a gateway to send to and the consumer group always has a
# member (a processor drains and commits before it stops). The migrations
# of the new images are applied first (the migrate service).
#
#   deploy/roll.sh ingest-1 ingest-2
#
# COMPOSE names the compose command (default: `docker compose`, else
# `docker-compose`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ -n ${COMPOSE:-} ]]; then
  read -r -a compose <<<"$COMPOSE"
elif docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
else
  compose=(docker-compose)
fi

(($#)) || { echo "usage: $0 SERVICE..." >&2; exit 2; }
"${compose[@]}" build migrate "$@"
# The services' ClickHouse users may not change the schema: the new
# release's migrations run first, as `default`, while the old replicas keep
# serving (migrations only add), as the one-shot migrate does at `up`.
echo "roll.sh: applying the migrations"
"${compose[@]}" run --rm --no-deps migrate
for service in "$@"; do
  echo "roll.sh: recreating $service"
  "${compose[@]}" up -d --no-deps --force-recreate "$service"
  id=$("${compose[@]}" ps -q "$service")
  deadline=$((SECONDS + 120))
  until [[ $(docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$id") =~ ^(healthy|running)$ ]]; do
    if ((SECONDS > deadline)); then
      echo "roll.sh: $service is not healthy after 120 s; stopping the roll" >&2
      "${compose[@]}" logs --tail=50 "$service" >&2
      exit 1
    fi
    sleep 2
  done
  echo "roll.sh: $service is healthy"
done
