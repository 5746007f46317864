//! The gateway's configuration, loaded by `ecg_runtime::load_config`:
//! defaults < TOML file (`ECG_CONFIG`, default `ingest.toml`) < `ECG_*`
//! environment variables (e.g. `ECG_KAFKA__BROKERS`).

use std::net::SocketAddr;
use std::time::Duration;

use ecg_auth::ExternalIssuerConfig;
use ecg_clickhouse::ClickHouseConfig;
use ecg_runtime::kafka::KafkaProperties;
use ecg_schemas::Limits;

use crate::body_rate::BodyRate;
use crate::quota::RateLimitConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the gateway listens.
    pub http: HttpConfig,
    /// Where chunks are produced.
    pub kafka: KafkaConfig,
    /// The ECG registry (table `ecgs`) and idempotency keys.
    pub clickhouse: ClickHouseConfig,
    /// How the gateway waits for the registry.
    pub registry: RegistryConfig,
    /// Which tokens are accepted.
    pub auth: AuthConfig,
    /// What one request may carry.
    pub limits: Limits,
    /// Request body and chunking limits.
    pub upload: UploadConfig,
    /// Per-client request and sample budgets.
    pub rate_limit: RateLimitConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Listen address.
    pub addr: SocketAddr,
    /// Serve HTTPS with these PEM files instead of plain HTTP.
    pub tls: Option<TlsConfig>,
    /// On shutdown, how long in-flight requests may take to finish.
    pub shutdown_grace_s: u64,
    /// Largest read buffer of one connection, in bytes (at least 8 KiB);
    /// bodies larger than it are read in pieces.
    pub max_read_buffer_bytes: usize,
    /// Connections the kernel queues for accepting (the `listen` backlog;
    /// Linux caps it at `net.core.somaxconn`). A fleet reconnecting at once
    /// overflows a short queue, and each dropped connect waits 1 s, then
    /// 3 s, for its retry.
    pub listen_backlog: u32,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tls: None,
            shutdown_grace_s: 30,
            max_read_buffer_bytes: 16 << 10,
            listen_backlog: 4096,
        }
    }
}

/// `[http.tls]`: the server certificate (chain) and its private key, as
/// every HTTP service of ecg-stream takes them.
pub use ecg_runtime::tls::TlsConfig;

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
    /// Extra librdkafka producer properties (e.g. SASL/TLS settings);
    /// secrets are never logged.
    pub properties: KafkaProperties,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:9092".into(),
            topic: "ecg.chunks".into(),
            delivery_timeout_ms: 10_000,
            properties: KafkaProperties::default(),
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
    /// External OAuth2/OIDC providers whose tokens are also accepted
    /// (`[[auth.external]]`; see the README's "Identity providers").
    pub external: Vec<ExternalIssuerConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            issuer: "http://127.0.0.1:8081".into(),
            audience: "ecg-stream".into(),
            jwks_url: "http://127.0.0.1:8081/.well-known/jwks.json".into(),
            external: Vec::new(),
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
    /// Bytes of request bodies (JSON, CSV, Arrow) held at once over all
    /// requests, from reading until the answer (see [`crate::budget`]).
    pub max_buffered_bytes: usize,
    /// Of `max_buffered_bytes`, what the bodies of one tenant hold at once
    /// at most (0: all of it); past it, its requests get 429.
    pub max_buffered_bytes_per_tenant: usize,
    /// Of `max_buffered_bytes_per_tenant`, what the bodies of one client
    /// hold at once at most (0: all of it); past it, its requests get 429.
    /// A larger body holds this much, and is read one at a time.
    pub max_buffered_bytes_per_client: usize,
    /// How long a request waits for room in `max_buffered_bytes` (or its
    /// share of it) before it gets 503 (429) with `Retry-After`.
    pub buffer_wait_ms: u64,
    /// Longest pause in a request body (waiting for the client's next
    /// bytes) before it gets 408 (0: none). See [`crate::body_rate`].
    pub body_idle_timeout_ms: u64,
    /// Least average rate of a request body once `body_rate_grace_ms` has
    /// passed, in bytes per second (0: none); slower gets 408.
    pub body_min_bytes_per_second: u64,
    /// How long a body may take before `body_min_bytes_per_second` applies.
    pub body_rate_grace_ms: u64,
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
            max_buffered_bytes: 16 << 20,
            // Half for a tenant, a quarter for a client: while one tenant
            // holds its share, the others keep at least half.
            max_buffered_bytes_per_tenant: 8 << 20,
            max_buffered_bytes_per_client: 4 << 20,
            buffer_wait_ms: 2_000,
            // Honest clients send a body in milliseconds; a device on a
            // poor cellular link (2G: 5 to 20 KB/s) stays far above 1 KiB/s.
            body_idle_timeout_ms: 10_000,
            body_min_bytes_per_second: 1_024,
            body_rate_grace_ms: 5_000,
            spool_dir: None,
        }
    }
}

impl UploadConfig {
    /// How fast bodies must arrive.
    pub fn body_rate(&self) -> BodyRate {
        BodyRate {
            idle: Duration::from_millis(self.body_idle_timeout_ms),
            min_bytes_per_second: self.body_min_bytes_per_second,
            grace: Duration::from_millis(self.body_rate_grace_ms),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// Longest a ClickHouse call of the gateway (an ECG lookup or write, an
    /// idempotency key) may take; past it the request gets 503 with
    /// `Retry-After`, as when ClickHouse is out of reach.
    pub timeout_ms: u64,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            timeout_ms: crate::registry::DEFAULT_TIMEOUT.as_millis() as u64,
        }
    }
}
