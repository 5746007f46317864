//! The query API's configuration, loaded by `ecg_runtime::load_config`:
//! defaults < TOML file (`ECG_CONFIG`, default `query-api.toml`) < `ECG_*`
//! environment variables (e.g. `ECG_AUTH__KEY_FILE`).

use std::net::SocketAddr;
use std::path::PathBuf;

use ecg_auth::{ClientConfig, default_clients};
use ecg_clickhouse::ClickHouseConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the API listens.
    pub http: HttpConfig,
    /// Where ECGs, samples and insights are read.
    pub clickhouse: ClickHouseConfig,
    /// Token issuance and checking.
    pub auth: AuthConfig,
    /// `GET /v1/streams/active`.
    pub streams: StreamsConfig,
    /// `GET /v1/pipeline`: the rates' window and where to ask the broker
    /// for the processor's consumer lag.
    pub pipeline: PipelineConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamsConfig {
    /// An ECG is active when the processor wrote to it within this many
    /// seconds (the default of `within_s`).
    pub active_within_s: u64,
}

impl Default for StreamsConfig {
    fn default() -> Self {
        StreamsConfig {
            active_within_s: 30,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Rates are averaged over this many seconds.
    pub window_s: u64,
    /// Kafka bootstrap servers, as the processor's `kafka.brokers`.
    pub brokers: String,
    /// The chunk topic, as the processor's `kafka.topic`.
    pub topic: String,
    /// The processor's consumer group, as its `kafka.group_id`: its committed
    /// offsets are read (never written) to measure the lag.
    pub group_id: String,
    /// How long to wait for the broker before answering `available: false`.
    pub timeout_ms: u64,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            window_s: 60,
            brokers: "127.0.0.1:9092".into(),
            topic: "ecg.chunks".into(),
            group_id: "ecg-processor".into(),
            timeout_ms: 1_000,
        }
    }
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
            addr: SocketAddr::from(([127, 0, 0, 1], 8081)),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `iss` of issued tokens: this service's external base URL.
    pub issuer: String,
    /// `aud` of issued tokens.
    pub audience: String,
    /// Lifetime of issued tokens, seconds.
    pub token_ttl_s: u64,
    /// The Ed25519 signing key (PKCS#8 PEM); generated here on first start.
    pub key_file: PathBuf,
    /// OAuth2 clients: id, argon2 hash of the secret, tenant, scopes.
    /// Defaults to the two local demo clients (see README).
    pub clients: Vec<ClientConfig>,
    /// External OAuth2/OIDC providers whose tokens are also accepted
    /// (`[[auth.external]]`; see the README's "Identity providers").
    pub external: Vec<ecg_auth::ExternalIssuerConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            issuer: "http://127.0.0.1:8081".into(),
            audience: "ecg-stream".into(),
            token_ttl_s: 3_600,
            key_file: PathBuf::from(".local/data/query-api/jwt-signing-key.pem"),
            clients: default_clients(),
            external: Vec::new(),
        }
    }
}
