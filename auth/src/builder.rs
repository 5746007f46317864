//! How a [`Verifier`] is built: for the built-in issuer alone, with its
//! keys given ([`Verifier::with_jwks`]) or fetched ([`Verifier::remote`]),
//! or by a [`VerifierBuilder`] trusting the built-in issuer, external
//! providers, or both. Checking tokens is [`crate::verifier`]'s.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::JwkSet;

use crate::error::VerifierError;
use crate::external::{DEFAULT_JWKS_MAX_BYTES, DEFAULT_JWKS_REFRESH_S, ExternalIssuerConfig};
use crate::keyset::KeySet;
use crate::remote::{JwksFetch, RemoteJwks};
use crate::trust::{Keys, TrustedIssuer};
use crate::verifier::Verifier;

/// Default minimum time between two JWKS fetches of a remote verifier.
pub const DEFAULT_MIN_REFRESH: Duration = Duration::from_secs(10);

/// Where a remote verifier gets its keys and what it expects in tokens.
#[derive(Debug, Clone)]
pub struct VerifierSettings {
    /// Required `iss`.
    pub issuer: String,
    /// Required `aud`.
    pub audience: String,
    /// URL of the issuer's JWK Set (`…/.well-known/jwks.json`).
    pub jwks_url: String,
}

impl Verifier {
    /// A verifier trusting exactly the Ed25519 keys of `jwks` for the
    /// built-in issuer; other keys in the set are ignored.
    pub fn with_jwks(issuer: impl Into<String>, audience: impl Into<String>, jwks: JwkSet) -> Self {
        Self::from_issuers(vec![built_in_static(
            issuer.into(),
            &audience.into(),
            &jwks,
        )])
    }

    /// A verifier for the built-in issuer that fetches its JWKS on first
    /// use, then every 5 minutes, and again when a token names an unknown
    /// `kid`, at most once per 10 s.
    pub fn remote(settings: VerifierSettings) -> Self {
        Self::remote_with_refresh_interval(settings, DEFAULT_MIN_REFRESH)
    }

    /// [`Verifier::remote`] with another minimum time between fetches.
    pub fn remote_with_refresh_interval(settings: VerifierSettings, min_refresh: Duration) -> Self {
        Self::from_issuers(vec![built_in_remote(
            settings,
            JwksTiming {
                min_refresh,
                refresh: Duration::from_secs(DEFAULT_JWKS_REFRESH_S),
                max_bytes: DEFAULT_JWKS_MAX_BYTES,
            },
        )])
    }

    /// A verifier for several issuers: the built-in one and/or external
    /// OAuth2/OIDC providers.
    pub fn builder() -> VerifierBuilder {
        VerifierBuilder::new()
    }
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
    refresh: Duration,
    max_jwks_bytes: usize,
    built_in_tenants: Option<BTreeSet<String>>,
}

impl VerifierBuilder {
    fn new() -> Self {
        Self {
            sources: Vec::new(),
            min_refresh: DEFAULT_MIN_REFRESH,
            refresh: Duration::from_secs(DEFAULT_JWKS_REFRESH_S),
            max_jwks_bytes: DEFAULT_JWKS_MAX_BYTES,
            built_in_tenants: None,
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

    /// Minimum time between two fetches of any one remote JWK Set prompted
    /// by unknown `kid`s (default 10 s).
    pub fn min_refresh(mut self, interval: Duration) -> Self {
        self.min_refresh = interval;
        self
    }

    /// Time between scheduled fetches of the built-in issuer's remote JWK
    /// Set (default 5 min): a key it stopped publishing stops verifying
    /// within this time. External issuers have their own `jwks_refresh_s`.
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh = interval;
        self
    }

    /// Largest response accepted from the built-in issuer's remote JWK Set
    /// (default 1 MiB). External issuers have their own `jwks_max_bytes`.
    pub fn max_jwks_bytes(mut self, bytes: usize) -> Self {
        self.max_jwks_bytes = bytes;
        self
    }

    /// The only tenants the built-in issuer's tokens may name: its clients'
    /// (see [`crate::TokenIssuer::tenants`]). Without it, any tenant in a
    /// token the built-in issuer signed is accepted, which is what a service
    /// that does not know the clients (ingest) does.
    pub fn built_in_tenants(mut self, tenants: impl IntoIterator<Item = String>) -> Self {
        self.built_in_tenants = Some(tenants.into_iter().collect());
        self
    }

    /// Checks every issuer (reading HS256 secret files) and builds the
    /// verifier. Nothing is fetched yet: key sets are fetched on first use.
    pub fn build(self) -> Result<Verifier, VerifierError> {
        if self.sources.is_empty() {
            return Err(VerifierError::NoIssuer);
        }
        let mut issuers = Vec::with_capacity(self.sources.len());
        // Tenant → issuers allowed to name it, where known.
        let mut shared: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for source in self.sources {
            let (issuer, tenants) = match source {
                Source::BuiltInRemote(settings) => (
                    built_in_remote(
                        settings,
                        JwksTiming {
                            min_refresh: self.min_refresh,
                            refresh: self.refresh,
                            max_bytes: self.max_jwks_bytes,
                        },
                    ),
                    self.built_in_tenants.clone(),
                ),
                Source::BuiltInStatic {
                    issuer,
                    audience,
                    jwks,
                } => (
                    built_in_static(issuer, &audience, &jwks),
                    self.built_in_tenants.clone(),
                ),
                Source::External(config) => (
                    config.trusted(self.min_refresh)?,
                    Some(config.allowed_tenants()),
                ),
            };
            let issuer = match (&tenants, issuer.is_built_in()) {
                (Some(tenants), true) => issuer.with_built_in_tenants(tenants.clone()),
                _ => issuer,
            };
            for tenant in tenants.into_iter().flatten() {
                shared
                    .entry(tenant)
                    .or_default()
                    .push(issuer.issuer().to_owned());
            }
            if issuers
                .iter()
                .any(|i: &TrustedIssuer| i.issuer() == issuer.issuer())
            {
                return Err(VerifierError::DuplicateIssuer(issuer.issuer().to_owned()));
            }
            issuers.push(issuer);
        }
        for (tenant, by) in shared.iter().filter(|(_, by)| by.len() > 1) {
            // Allowed (a tenant may move to its own provider, or use both),
            // but worth seeing at every start.
            tracing::warn!(tenant, issuers = ?by, "tenant may be named by several issuers");
        }
        Ok(Verifier::from_issuers(issuers))
    }
}

/// How a remote JWK Set of the built-in issuer is fetched.
#[derive(Debug, Clone, Copy)]
struct JwksTiming {
    min_refresh: Duration,
    refresh: Duration,
    max_bytes: usize,
}

fn built_in_remote(settings: VerifierSettings, timing: JwksTiming) -> TrustedIssuer {
    // The built-in issuer's keys come from query-api, usually over the
    // service network; plain http stays allowed for it (README).
    let keys = Keys::Remote(RemoteJwks::new(JwksFetch {
        url: settings.jwks_url,
        allowed: vec![Algorithm::EdDSA],
        min_refresh: timing.min_refresh,
        refresh: timing.refresh,
        max_bytes: timing.max_bytes,
        https_only: false,
        roots: Vec::new(),
    }));
    TrustedIssuer::built_in(settings.issuer, &settings.audience, keys)
}

fn built_in_static(issuer: String, audience: &str, jwks: &JwkSet) -> TrustedIssuer {
    let keys = Keys::Static(KeySet::from_jwks(jwks, &[Algorithm::EdDSA]));
    TrustedIssuer::built_in(issuer, audience, keys)
}
