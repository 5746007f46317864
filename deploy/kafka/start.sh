#!/usr/bin/env bash
# Starts one Kafka node of the compose deployment (broker and KRaft
# controller in one process): the entrypoint docker-compose.yml gives the
# apache/kafka image. Writes the node's server.properties from the
# environment and the secrets under /run/secrets (made by deploy/secrets.sh),
# formats the log dir on first start, then runs the server.
#
# Listeners, all TLS with the certificate deploy/secrets.sh signs with its
# own CA (names kafka, kafka-2, kafka-3, localhost):
#   CLIENT      :9092  SASL_SSL, SCRAM-SHA-512: the services, each its own user
#   INTERNAL    :9094  SSL with client certificates: the brokers among
#                      themselves, kafka-init and the health check
#   CONTROLLER  :9093  SSL with client certificates: the KRaft quorum
# Authorization: StandardAuthorizer, nothing allowed but the ACLs kafka-init
# grants each service; the one super user is the broker certificate's
# subject (User:CN=kafka-broker), which only INTERNAL and CONTROLLER take.
#
# Environment:
#   ECG_KAFKA_NODE_ID            this node's id (1, 2, 3)
#   ECG_KAFKA_HOST               its name on the compose network (kafka, kafka-2, ...)
#   ECG_KAFKA_QUORUM_VOTERS      id@host:9093 of every controller, comma-separated
#   ECG_KAFKA_CLUSTER_ID         the same on every node; formats the log dir
#   ECG_KAFKA_REPLICATION_FACTOR replicas of the internal topics (offsets,
#                                transactions) and the default of new topics
#   ECG_KAFKA_MIN_INSYNC_REPLICAS  the brokers' default min.insync.replicas
# For the deployment tests (e2e/tests/deploy_config.rs): ECG_KAFKA_SECRETS
# (default /run/secrets), ECG_KAFKA_CONFIG_DIR (where the properties go,
# default /tmp), ECG_KAFKA_DRY_RUN=1 (write them, start nothing).
set -euo pipefail

secrets=${ECG_KAFKA_SECRETS:-/run/secrets}
conf=${ECG_KAFKA_CONFIG_DIR:-/tmp}/server.properties
client=${ECG_KAFKA_CONFIG_DIR:-/tmp}/client.properties
for v in ECG_KAFKA_NODE_ID ECG_KAFKA_HOST ECG_KAFKA_QUORUM_VOTERS ECG_KAFKA_CLUSTER_ID; do
  [[ -n ${!v:-} ]] || { echo "kafka-start: $v is not set" >&2; exit 2; }
done
rf=${ECG_KAFKA_REPLICATION_FACTOR:-1}
min_isr=${ECG_KAFKA_MIN_INSYNC_REPLICAS:-1}
keystore_password=$(<"$secrets/kafka_keystore_password")

# The TLS settings of every listener, and of this node as a client of the
# others (its certificate is its identity on INTERNAL and CONTROLLER).
tls="ssl.keystore.type=PKCS12
ssl.keystore.location=$secrets/kafka_keystore
ssl.keystore.password=$keystore_password
ssl.key.password=$keystore_password
ssl.truststore.type=PEM
ssl.truststore.location=$secrets/kafka_ca
ssl.endpoint.identification.algorithm=https"

umask 077
cat >"$conf" <<PROPERTIES
# Written by deploy/kafka/start.sh at every start; edits are lost.
node.id=$ECG_KAFKA_NODE_ID
process.roles=broker,controller
controller.quorum.voters=$ECG_KAFKA_QUORUM_VOTERS
listeners=CLIENT://:9092,INTERNAL://:9094,CONTROLLER://:9093
advertised.listeners=CLIENT://$ECG_KAFKA_HOST:9092,INTERNAL://$ECG_KAFKA_HOST:9094
listener.security.protocol.map=CLIENT:SASL_SSL,INTERNAL:SSL,CONTROLLER:SSL
inter.broker.listener.name=INTERNAL
controller.listener.names=CONTROLLER
$tls
listener.name.client.ssl.client.auth=none
listener.name.internal.ssl.client.auth=required
listener.name.controller.ssl.client.auth=required
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.client.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.client.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:CN=kafka-broker
allow.everyone.if.no.acl.found=false
log.dirs=/var/lib/kafka/data
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$min_isr
default.replication.factor=$rf
min.insync.replicas=$min_isr
group.initial.rebalance.delay.ms=0
# Topics are created by kafka-init with their partition counts; a misspelt
# topic name must fail, not create a topic.
auto.create.topics.enable=false
PROPERTIES

# For this node's own tools (the health check): the INTERNAL listener.
cat >"$client" <<PROPERTIES
security.protocol=SSL
$tls
PROPERTIES

[[ ${ECG_KAFKA_DRY_RUN:-} == 1 ]] && exit 0
/opt/kafka/bin/kafka-storage.sh format --ignore-formatted \
  --cluster-id "$ECG_KAFKA_CLUSTER_ID" --config "$conf"
exec /opt/kafka/bin/kafka-server-start.sh "$conf"
