#!/usr/bin/env bash
# One-shot (compose `kafka-init`, the apache/kafka image): creates the
# topics, the services' SCRAM users and their ACLs, then exits 0. Every step
# is idempotent: run again, it changes only a password that changed.
# Connects to the INTERNAL listener with the broker certificate (the super
# user; deploy/kafka/start.sh).
#
# Each service gets only what it does (README "Deploying", Kafka):
#   ingest     Write (and Describe) on ecg.chunks
#   processor  Read on ecg.chunks and group ecg-processor, Write on ecg.chunks.dlq
#   query-api  Describe on ecg.chunks and group ecg-processor (the lag:
#              watermarks and committed offsets, never a join or a commit)
#
# Environment:
#   ECG_KAFKA_BOOTSTRAP            the INTERNAL listeners (kafka:9094)
#   ECG_KAFKA_REPLICATION_FACTOR   replicas of each topic (1, or 3 with three brokers)
#   ECG_KAFKA_MIN_INSYNC_REPLICAS  acknowledged writes need this many (1, or 2)
#   ECG_KAFKA_RETENTION_MS, ECG_KAFKA_DLQ_RETENTION_MS  the topics' retention
# The partition count, replication, min.insync.replicas and retention apply
# when a topic is created; an existing topic keeps its own.
# For the deployment tests (e2e/tests/deploy_config.rs): ECG_KAFKA_SECRETS
# (default /run/secrets), ECG_KAFKA_BIN (Kafka's tools, default
# /opt/kafka/bin), ECG_KAFKA_CONFIG_DIR (default /tmp).
set -euo pipefail

secrets=${ECG_KAFKA_SECRETS:-/run/secrets}
bin=${ECG_KAFKA_BIN:-/opt/kafka/bin}
bootstrap=${ECG_KAFKA_BOOTSTRAP:-kafka:9094}
rf=${ECG_KAFKA_REPLICATION_FACTOR:-1}
min_isr=${ECG_KAFKA_MIN_INSYNC_REPLICAS:-1}
admin=${ECG_KAFKA_CONFIG_DIR:-/tmp}/admin.properties
keystore_password=$(<"$secrets/kafka_keystore_password")

umask 077
cat >"$admin" <<PROPERTIES
security.protocol=SSL
ssl.keystore.type=PKCS12
ssl.keystore.location=$secrets/kafka_keystore
ssl.keystore.password=$keystore_password
ssl.key.password=$keystore_password
ssl.truststore.type=PEM
ssl.truststore.location=$secrets/kafka_ca
PROPERTIES
connect=(--bootstrap-server "$bootstrap" --command-config "$admin")

topic() {
  "$bin/kafka-topics.sh" "${connect[@]}" --create --if-not-exists \
    --topic "$1" --partitions "$2" --replication-factor "$rf" \
    --config min.insync.replicas="$min_isr" --config retention.ms="$3"
}
topic ecg.chunks 12 "${ECG_KAFKA_RETENTION_MS:-604800000}"
topic ecg.chunks.dlq 1 "${ECG_KAFKA_DLQ_RETENTION_MS:-2592000000}"

# user NAME PASSWORD_FILE: the SCRAM credential of NAME (set again each
# run: replacing the file and re-running rotates it).
user() {
  local password
  password=$(<"$2")
  [[ $password =~ ^[A-Za-z0-9_-]+$ ]] ||
    { echo "kafka-init: the password in $2 must be letters, digits, '_' or '-'" >&2; exit 1; }
  "$bin/kafka-configs.sh" "${connect[@]}" --alter --entity-type users --entity-name "$1" \
    --add-config "SCRAM-SHA-512=[iterations=8192,password=$password]"
}
user ingest "$secrets/kafka_ingest_password"
user processor "$secrets/kafka_processor_password"
user query-api "$secrets/kafka_query_api_password"

acl() { "$bin/kafka-acls.sh" "${connect[@]}" --add --force "$@" >/dev/null; }
acl --allow-principal User:ingest --operation Write --operation Describe --topic ecg.chunks
acl --allow-principal User:processor --operation Read --operation Describe --topic ecg.chunks
acl --allow-principal User:processor --operation Write --operation Describe --topic ecg.chunks.dlq
acl --allow-principal User:processor --operation Read --operation Describe --group ecg-processor
acl --allow-principal User:query-api --operation Describe --topic ecg.chunks
acl --allow-principal User:query-api --operation Describe --group ecg-processor

"$bin/kafka-topics.sh" "${connect[@]}" --describe --topic ecg.chunks
"$bin/kafka-acls.sh" "${connect[@]}" --list
