//! The gateway's configuration, loaded by `ecg_runtime::load_config`:
//! defaults < TOML file (`ECG_CONFIG`, default `ingest.toml`) < `ECG_*`
//! environment variables (e.g. `ECG_KAFKA__BROKERS`).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use ecg_clickhouse::ClickHouseConfig;
use ecg_schemas::Limits;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the gateway listens.
    pub http: HttpConfig,
    /// Where chunks are produced.
    pub kafka: KafkaConfig,
    /// The ECG registry (table `ecgs`).
    pub clickhouse: ClickHouseConfig,
    /// Which tokens are accepted.
    pub auth: AuthConfig,
    /// What one request may carry.
    pub limits: Limits,
    /// Request body and chunking limits.
    pub upload: UploadConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Listen address.
    pub addr: SocketAddr,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma-separated.
    pub brokers: String,
    /// Topic of chunks.
    pub topic: String,
    /// How long a request waits for the broker to confirm a chunk before it
    /// answers 503 (librdkafka `message.timeout.ms`).
    pub delivery_timeout_ms: u64,
    /// Extra librdkafka producer properties (e.g. security settings).
    pub properties: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:9092".into(),
            topic: "ecg.chunks".into(),
            delivery_timeout_ms: 10_000,
            properties: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Expected `iss` of tokens.
    pub issuer: String,
    /// Expected `aud` of tokens.
    pub audience: String,
    /// Where the issuer publishes its public keys.
    pub jwks_url: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            issuer: "http://127.0.0.1:8081".into(),
            audience: "ecg-stream".into(),
            jwks_url: "http://127.0.0.1:8081/.well-known/jwks.json".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UploadConfig {
    /// Largest JSON body accepted, in bytes; larger recordings are streamed
    /// with `PUT /v1/ecgs/{id}/signal`.
    pub max_json_bytes: usize,
    /// Samples per lead in each chunk when the gateway cuts a whole signal.
    pub chunk_samples: usize,
    /// Most samples (all leads together) one streamed upload may carry.
    pub max_signal_samples: u64,
    /// Chunks of one upload produced and not yet acknowledged, at most.
    pub max_in_flight: usize,
    /// Directory of upload spool files (validated chunks waiting to be
    /// produced; about 8 bytes per sample); unset: the system's temp dir.
    pub spool_dir: Option<std::path::PathBuf>,
}

impl Default for UploadConfig {
    fn default() -> Self {
        UploadConfig {
            max_json_bytes: 32 << 20,
            chunk_samples: 2_000,
            // 24 hours of 12 leads at 1 kHz.
            max_signal_samples: 1_036_800_000,
            max_in_flight: 64,
            spool_dir: None,
        }
    }
}
