//! [`VerifierBuilder`]: a verifier trusting the built-in issuer, external
//! providers, or both.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::JwkSet;

use crate::external::ExternalIssuerConfig;
use crate::keyset::KeySet;
use crate::remote::RemoteJwks;
use crate::trust::{Keys, TrustedIssuer};
use crate::verifier::{DEFAULT_MIN_REFRESH, Verifier, VerifierSettings};

/// Why a verifier could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum VerifierError {
    /// Nothing to trust: every token would be refused.
    #[error("the verifier trusts no issuer")]
    NoIssuer,
    /// Two trusted issuers share an `iss`, so a token could not be routed.
    #[error("issuer {0} is configured twice")]
    DuplicateIssuer(String),
    /// An external issuer's entry is inconsistent.
    #[error("external issuer {issuer}: {reason}")]
    Invalid {
        /// The entry's `issuer`.
        issuer: String,
        /// What is wrong, naming the field.
        reason: String,
    },
    /// The HS256 secret file could not be read.
    #[error("external issuer {issuer}: cannot read hs256_secret_file {path}")]
    SecretFile {
        /// The entry's `issuer`.
        issuer: String,
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: io::Error,
    },
}

#[derive(Debug)]
enum Source {
    BuiltInRemote(VerifierSettings),
    BuiltInStatic {
        issuer: String,
        audience: String,
        jwks: JwkSet,
    },
    External(ExternalIssuerConfig),
}

/// Collects trusted issuers; [`VerifierBuilder::build`] checks them all.
///
/// ```no_run
/// # use ecg_auth::{ExternalIssuerConfig, Verifier, VerifierSettings};
/// # fn f(external: Vec<ExternalIssuerConfig>) -> Result<Verifier, ecg_auth::VerifierError> {
/// let verifier = Verifier::builder()
///     .built_in(VerifierSettings {
///         issuer: "http://127.0.0.1:8081".into(),
///         audience: "ecg-stream".into(),
///         jwks_url: "http://127.0.0.1:8081/.well-known/jwks.json".into(),
///     })
///     .external_issuers(external)
///     .build()?;
/// # Ok(verifier) }
/// ```
#[derive(Debug)]
pub struct VerifierBuilder {
    sources: Vec<Source>,
    min_refresh: Duration,
}

impl VerifierBuilder {
    pub(crate) fn new() -> Self {
        Self {
            sources: Vec::new(),
            min_refresh: DEFAULT_MIN_REFRESH,
        }
    }

    /// Trusts the built-in issuer, fetching its keys from `jwks_url`.
    pub fn built_in(mut self, settings: VerifierSettings) -> Self {
        self.sources.push(Source::BuiltInRemote(settings));
        self
    }

    /// Trusts the built-in issuer with the fixed Ed25519 keys of `jwks`.
    pub fn built_in_jwks(
        mut self,
        issuer: impl Into<String>,
        audience: impl Into<String>,
        jwks: JwkSet,
    ) -> Self {
        self.sources.push(Source::BuiltInStatic {
            issuer: issuer.into(),
            audience: audience.into(),
            jwks,
        });
        self
    }

    /// Trusts one external provider.
    pub fn external(mut self, config: ExternalIssuerConfig) -> Self {
        self.sources.push(Source::External(config));
        self
    }

    /// Trusts each of `configs` (a service's `auth.external` list).
    pub fn external_issuers(
        mut self,
        configs: impl IntoIterator<Item = ExternalIssuerConfig>,
    ) -> Self {
        self.sources
            .extend(configs.into_iter().map(Source::External));
        self
    }

    /// Minimum time between two fetches of any one remote JWK Set
    /// (default 10 s).
    pub fn min_refresh(mut self, interval: Duration) -> Self {
        self.min_refresh = interval;
        self
    }

    /// Checks every issuer (reading HS256 secret files) and builds the
    /// verifier. Nothing is fetched yet: key sets are fetched on first use.
    pub fn build(self) -> Result<Verifier, VerifierError> {
        if self.sources.is_empty() {
            return Err(VerifierError::NoIssuer);
        }
        let mut issuers = Vec::with_capacity(self.sources.len());
        for source in self.sources {
            let issuer = match source {
                Source::BuiltInRemote(settings) => built_in_remote(settings, self.min_refresh),
                Source::BuiltInStatic {
                    issuer,
                    audience,
                    jwks,
                } => built_in_static(issuer, &audience, &jwks),
                Source::External(config) => config.trusted(self.min_refresh)?,
            };
            if issuers
                .iter()
                .any(|i: &TrustedIssuer| i.issuer() == issuer.issuer())
            {
                return Err(VerifierError::DuplicateIssuer(issuer.issuer().to_owned()));
            }
            issuers.push(issuer);
        }
        Ok(Verifier::from_issuers(issuers))
    }
}

pub(crate) fn built_in_remote(settings: VerifierSettings, min_refresh: Duration) -> TrustedIssuer {
    let keys = Keys::Remote(RemoteJwks::new(
        settings.jwks_url,
        vec![Algorithm::EdDSA],
        min_refresh,
    ));
    TrustedIssuer::built_in(settings.issuer, &settings.audience, keys)
}

pub(crate) fn built_in_static(issuer: String, audience: &str, jwks: &JwkSet) -> TrustedIssuer {
    let keys = Keys::Static(KeySet::from_jwks(jwks, &[Algorithm::EdDSA]));
    TrustedIssuer::built_in(issuer, audience, keys)
}
