//! The query API's configuration, loaded by `ecg_runtime::load_config`:
//! defaults < TOML file (`ECG_CONFIG`, default `query-api.toml`) < `ECG_*`
//! environment variables (e.g. `ECG_AUTH__KEY_FILE`).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use ecg_auth::{ClientConfig, default_clients};
use ecg_clickhouse::ClickHouseConfig;
use figment::Figment;
use figment::providers::{Format as _, Toml};
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
    /// `GET /v1/ecgs/{id}/fhir` and `/wfdb`.
    pub export: ExportConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExportConfig {
    /// Samples per lead in one FHIR Observation at most; a longer range is
    /// split into pages linked by `Link: <...>; rel="next"`. The default,
    /// 2^20, holds 48 minutes at 360 Hz and 35 at 500 Hz in one page of
    /// about 5 MB per lead.
    pub fhir_page_samples: u64,
}

impl Default for ExportConfig {
    fn default() -> Self {
        ExportConfig {
            fhir_page_samples: 1 << 20,
        }
    }
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
    /// librdkafka properties, as the processor's `kafka.properties`
    /// (SASL/TLS); secrets are never logged.
    pub properties: ecg_runtime::kafka::KafkaProperties,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            window_s: 60,
            brokers: "127.0.0.1:9092".into(),
            topic: "ecg.chunks".into(),
            group_id: "ecg-processor".into(),
            timeout_ms: 1_000,
            properties: ecg_runtime::kafka::KafkaProperties::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Listen address.
    pub addr: SocketAddr,
    /// Serve HTTPS with these PEM files instead of plain HTTP (`[http.tls]`,
    /// as the gateway's).
    pub tls: Option<ecg_runtime::tls::TlsConfig>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 8081)),
            tls: None,
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
    /// Keys that signed before `key_file` (PKCS#8 PEM, must exist): still
    /// published in the JWKS and trusted, never used to sign. For key
    /// rotation (see the README's "Rotating the signing key").
    pub previous_key_files: Vec<PathBuf>,
    /// Rate limits and the hashing cap of `/oauth/token` (see the README's
    /// "Token endpoint limits").
    pub token_limits: ecg_auth::TokenLimits,
    /// OAuth2 clients: id, argon2 hash of the secret, tenant, scopes.
    /// Defaults to the two local demo clients (see README).
    pub clients: Vec<ClientConfig>,
    /// A TOML file of `[[clients]]` entries (fields as in `clients`); when
    /// set, its clients replace `clients`. For secrets mounted as files
    /// (compose `secrets:`), so no hash sits in the environment.
    pub clients_file: Option<PathBuf>,
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
            previous_key_files: Vec::new(),
            token_limits: ecg_auth::TokenLimits::default(),
            clients: default_clients(),
            clients_file: None,
            external: Vec::new(),
        }
    }
}

/// The shape of `auth.clients_file`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientsFile {
    clients: Vec<ClientConfig>,
}

impl AuthConfig {
    /// The clients the issuer accepts: those of `clients_file` if it is
    /// set, else `clients`. A missing, unreadable or malformed file stops
    /// the service rather than falling back to the demo clients.
    pub fn effective_clients(&self) -> anyhow::Result<Vec<ClientConfig>> {
        let Some(path) = &self.clients_file else {
            return Ok(self.clients.clone());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading auth.clients_file {}", path.display()))?;
        let file: ClientsFile = Figment::from(Toml::string(&text))
            .extract()
            .with_context(|| format!("parsing auth.clients_file {}", path.display()))?;
        anyhow::ensure!(
            !file.clients.is_empty(),
            "auth.clients_file {} lists no [[clients]]",
            path.display()
        );
        Ok(file.clients)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_file_replaces_the_demo_clients() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clients.toml");
        std::fs::write(
            &path,
            r#"
            [[clients]]
            id = "hospital-1"
            secret_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
            tenant = "h1"
            scopes = ["ecg:write"]
            "#,
        )
        .unwrap();
        let auth = AuthConfig {
            clients_file: Some(path),
            ..AuthConfig::default()
        };
        let clients = auth.effective_clients().unwrap();
        assert_eq!(clients.len(), 1);
        assert_eq!(clients[0].id, "hospital-1");
        assert_eq!(clients[0].tenant, "h1");
        assert_eq!(clients[0].scopes, ["ecg:write"]);
    }

    #[test]
    fn a_missing_empty_or_misspelt_clients_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let with_file = |text: Option<&str>| {
            let path = dir.path().join("clients.toml");
            match text {
                Some(t) => std::fs::write(&path, t).unwrap(),
                None => drop(std::fs::remove_file(&path)),
            }
            AuthConfig {
                clients_file: Some(path),
                ..AuthConfig::default()
            }
            .effective_clients()
            .map_err(|e| format!("{e:#}"))
        };
        let missing = with_file(None).unwrap_err();
        assert!(missing.contains("reading auth.clients_file"), "{missing}");
        let empty = with_file(Some("clients = []")).unwrap_err();
        assert!(empty.contains("lists no [[clients]]"), "{empty}");
        let misspelt = with_file(Some(
            "[[clients]]\nid = \"a\"\nsecret = \"plain\"\ntenant = \"t\"\nscopes = []",
        ))
        .unwrap_err();
        assert!(misspelt.contains("parsing auth.clients_file"), "{misspelt}");
    }

    #[test]
    fn token_limits_and_previous_keys_load_from_toml_over_the_defaults() {
        use figment::providers::Serialized;
        let load = |toml: &str| {
            Figment::from(Serialized::defaults(Config::default()))
                .merge(Toml::string(toml))
                .extract::<Config>()
                .map_err(|e| e.to_string())
        };
        let config = load(
            r#"
            [auth]
            previous_key_files = ["/run/secrets/jwt-signing-key.old.pem"]
            [auth.token_limits]
            per_address_per_minute = 120
            trusted_proxies = ["172.16.0.0/12", "10.0.0.7"]
            "#,
        )
        .unwrap();
        let limits = &config.auth.token_limits;
        assert_eq!(limits.per_address_per_minute, 120);
        assert_eq!(
            limits.per_client_per_minute,
            ecg_auth::TokenLimits::default().per_client_per_minute
        );
        let proxies: Vec<String> = limits
            .trusted_proxies
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(proxies, ["172.16.0.0/12", "10.0.0.7/32"]);
        assert_eq!(
            config.auth.previous_key_files,
            [PathBuf::from("/run/secrets/jwt-signing-key.old.pem")]
        );
        // Defaults: no proxy trusted, no previous key.
        let config = load("").unwrap();
        assert!(config.auth.token_limits.trusted_proxies.is_empty());
        assert!(config.auth.previous_key_files.is_empty());
        // A misspelt knob or a bad block stops the service.
        let error = load("[auth.token_limits]\nper_ip_per_minute = 5").unwrap_err();
        assert!(error.contains("per_ip_per_minute"), "{error}");
        let error = load("[auth.token_limits]\ntrusted_proxies = [\"10.0.0.0/40\"]").unwrap_err();
        assert!(error.contains("prefix length"), "{error}");
    }

    #[test]
    fn without_clients_file_the_configured_clients_apply() {
        let auth = AuthConfig::default();
        assert_eq!(auth.effective_clients().unwrap(), default_clients());
    }
}
