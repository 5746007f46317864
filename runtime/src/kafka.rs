//! Kafka client setup, the same in every service: the broker list, then the
//! operator's librdkafka properties (`[kafka.properties]`, e.g. SASL/SCRAM
//! over TLS), which [`KafkaProperties`] keeps out of logs.

use std::collections::BTreeMap;
use std::fmt;

use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

/// librdkafka properties passed to a client as they are
/// (`security.protocol`, `sasl.mechanism`, `sasl.username`,
/// `sasl.password`, `ssl.ca.location`, ...). `Debug` shows every key but
/// the values of secrets (see [`is_secret`]), so a logged configuration
/// never holds a password.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KafkaProperties(pub BTreeMap<String, String>);

impl KafkaProperties {
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(String, String)> for KafkaProperties {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        KafkaProperties(pairs.into_iter().collect())
    }
}

impl<const N: usize> From<[(&str, &str); N]> for KafkaProperties {
    fn from(pairs: [(&str, &str); N]) -> Self {
        KafkaProperties(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }
}

impl fmt::Debug for KafkaProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (k, v) in &self.0 {
            if is_secret(k) {
                map.entry(k, &"<redacted>");
            } else {
                map.entry(k, v);
            }
        }
        map.finish()
    }
}

/// Whether a librdkafka property holds a secret: passwords, private keys
/// and their PEM text, JAAS configs, OAuth client secrets and tokens.
pub fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "token",
        "jaas",
        "key.pem",
        "private",
        "credential",
    ]
    .iter()
    .any(|word| key.contains(word))
}

/// What a client is for: producers leave out consumer-only properties
/// (which make librdkafka refuse to create them), so one
/// `[kafka.properties]` serves a service's consumer and producers alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Producer,
    Consumer,
}

/// Properties only a consumer takes.
fn consumer_only(key: &str) -> bool {
    [
        "group.",
        "session.",
        "auto.",
        "enable.auto",
        "isolation.",
        "fetch.",
        "max.partition.fetch",
    ]
    .iter()
    .any(|p| key.starts_with(p))
}

/// A client configuration: `bootstrap.servers`, then `defaults` (the
/// service's own settings), then the operator's `properties`, which win.
pub fn client_config(
    brokers: &str,
    role: Role,
    defaults: &[(&str, &str)],
    properties: &KafkaProperties,
) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    for (k, v) in defaults {
        config.set(*k, *v);
    }
    for (k, v) in properties.iter() {
        if role == Role::Consumer || !consumer_only(k) {
            config.set(k, v);
        }
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_secrets_and_shows_the_rest() {
        let p = KafkaProperties::from([
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "ingest"),
            ("sasl.password", "hunter2"),
            ("ssl.key.password", "k-pass"),
            ("ssl.key.pem", "-----BEGIN PRIVATE KEY-----"),
            ("sasl.oauthbearer.client.secret", "s3cr3t"),
            ("sasl.jaas.config", "x required password=\"p\";"),
        ]);
        let text = format!("{p:?}");
        for secret in [
            "hunter2",
            "k-pass",
            "BEGIN PRIVATE",
            "s3cr3t",
            "password=\\\"p",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        for shown in ["SASL_SSL", "SCRAM-SHA-512", "ingest", "sasl.password"] {
            assert!(text.contains(shown), "{shown} missing from {text}");
        }
    }

    /// librdkafka is built with OpenSSL: a client for SASL/SCRAM over TLS
    /// (what docker-compose.yml configures) can be made. Without it,
    /// librdkafka refuses `SASL_SSL` ("OpenSSL not available at build
    /// time").
    #[test]
    fn clients_can_speak_sasl_scram_over_tls() {
        use rdkafka::producer::BaseProducer;
        let p = KafkaProperties::from([
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanisms", "SCRAM-SHA-512"),
            ("sasl.username", "ingest"),
            ("sasl.password", "x"),
        ]);
        let producer =
            client_config("127.0.0.1:1", Role::Producer, &[], &p).create::<BaseProducer>();
        assert!(producer.is_ok(), "{:?}", producer.err());
    }

    #[test]
    fn producers_leave_out_consumer_properties_and_the_operator_wins() {
        let p = KafkaProperties::from([
            ("group.instance.id", "a"),
            ("auto.offset.reset", "latest"),
            ("security.protocol", "SASL_SSL"),
            ("acks", "1"),
        ]);
        let c = client_config("b:9092", Role::Producer, &[("acks", "all")], &p);
        assert_eq!(c.get("bootstrap.servers"), Some("b:9092"));
        assert_eq!(c.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(c.get("acks"), Some("1"));
        assert_eq!(c.get("group.instance.id"), None);
        assert_eq!(c.get("auto.offset.reset"), None);
        let c = client_config("b:9092", Role::Consumer, &[], &p);
        assert_eq!(c.get("auto.offset.reset"), Some("latest"));
    }
}
