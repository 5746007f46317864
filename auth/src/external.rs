//! External OAuth2/OIDC providers whose access tokens the services accept,
//! as configured (`[[auth.external]]` in a service's TOML).
//!
//! Checked when the verifier is built, so a bad entry stops the service at
//! startup instead of refusing every token later: non-empty `issuer`,
//! `audience`, claim names and fixed tenant; the tenants the provider may
//! name listed explicitly (`tenants`) unless it has a fixed `tenant`; only
//! signature algorithms the verifier supports; HS256 only together with a
//! secret file holding at least 32 bytes (RFC 7518 §3.2: a key as long as
//! the hash); at least one source of keys; `jwks_url` over https unless
//! `allow_insecure_http` says otherwise.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey};
use serde::{Deserialize, Serialize};

use crate::error::VerifierError;
use crate::remote::{JwksFetch, RemoteJwks};
use crate::trust::{ClaimMapping, Keys, TenantSource, TrustedIssuer, is_plain_token};

/// Shortest HS256 secret accepted, in bytes.
const MIN_HS256_SECRET: usize = 32;
/// Default of `jwks_max_bytes`: real key sets are a few kilobytes.
pub const DEFAULT_JWKS_MAX_BYTES: usize = 1 << 20;
/// Default of `jwks_refresh_s`.
pub const DEFAULT_JWKS_REFRESH_S: u64 = 300;

/// Asymmetric algorithms an external issuer may list in `algorithms`.
const SUPPORTED: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// One external OAuth2/OIDC provider whose access tokens are accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalIssuerConfig {
    /// The exact `iss` of the provider's tokens, e.g.
    /// `https://sso.example.com/realms/ecg` (Keycloak) or
    /// `https://example.eu.auth0.com/` (Auth0, trailing slash included).
    pub issuer: String,
    /// The `aud` tokens must contain: the API identifier registered with
    /// the provider for ecg-stream.
    pub audience: String,
    /// The provider's JWK Set (`jwks_uri` of its OpenID configuration), an
    /// `https://` URL. Fetched on first use, every `jwks_refresh_s`, and
    /// when a token names an unknown `kid` (at most every 10 s). May be left
    /// out only if `hs256_secret_file` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// Development only: accept an `http://` `jwks_url`, whose keys anyone
    /// on the network path could replace. Default false.
    #[serde(default)]
    pub allow_insecure_http: bool,
    /// A PEM file of CA certificates trusted for `jwks_url` besides the
    /// system's, for a provider behind a private CA. Default: unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_ca_file: Option<PathBuf>,
    /// Largest JWKS response accepted, bytes; a bigger one is refused and
    /// the last good set kept. Default 1 MiB.
    #[serde(default = "default_jwks_max_bytes")]
    pub jwks_max_bytes: usize,
    /// Seconds between scheduled fetches of the JWKS, so keys the provider
    /// removed stop verifying within this time. Default 300.
    #[serde(default = "default_jwks_refresh_s")]
    pub jwks_refresh_s: u64,
    /// Signature algorithms accepted with keys from `jwks_url`; each key is
    /// still used only with its own algorithm. Default RS256, ES256, EdDSA;
    /// also supported: RS384, RS512, PS256, PS384, PS512, ES384. HS256 may
    /// be listed only together with `hs256_secret_file`.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<Algorithm>,
    /// A file holding the provider's HS256 shared secret (at least 32 bytes;
    /// one trailing newline is ignored). HS256 tokens are accepted if and
    /// only if this is set. Default: unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hs256_secret_file: Option<PathBuf>,
    /// The claim naming the caller's tenant, a string. Default `tenant`.
    /// Ignored when `tenant` is set.
    #[serde(default = "default_tenant_claim")]
    pub tenant_claim: String,
    /// The claim holding the granted scopes: a space-separated string
    /// (`scope`, RFC 8693) or an array of strings (Azure's `scp`, `roles`).
    /// A token without it has no scopes. Default `scope`.
    #[serde(default = "default_scope_claim")]
    pub scope_claim: String,
    /// The tenant of every token from this provider, for a provider that
    /// serves a single tenant and carries no tenant claim. Default: unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The tenants this provider's tokens may name in `tenant_claim`; a
    /// token naming any other is refused. Required unless `tenant` is set
    /// (then it must be empty): tenants are one namespace across issuers,
    /// and a provider must not be able to speak for any tenant it likes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<String>,
}

fn default_algorithms() -> Vec<Algorithm> {
    vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA]
}

fn default_tenant_claim() -> String {
    "tenant".into()
}

fn default_scope_claim() -> String {
    "scope".into()
}

fn default_jwks_max_bytes() -> usize {
    DEFAULT_JWKS_MAX_BYTES
}

fn default_jwks_refresh_s() -> u64 {
    DEFAULT_JWKS_REFRESH_S
}

impl ExternalIssuerConfig {
    /// A provider with keys at `jwks_url` and every other field at its
    /// default. `tenants` (or `tenant`) must still be set.
    pub fn new(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        jwks_url: impl Into<String>,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            jwks_url: Some(jwks_url.into()),
            allow_insecure_http: false,
            jwks_ca_file: None,
            jwks_max_bytes: DEFAULT_JWKS_MAX_BYTES,
            jwks_refresh_s: DEFAULT_JWKS_REFRESH_S,
            algorithms: default_algorithms(),
            hs256_secret_file: None,
            tenant_claim: default_tenant_claim(),
            scope_claim: default_scope_claim(),
            tenant: None,
            tenants: Vec::new(),
        }
    }

    /// The tenants this provider's tokens may act for.
    pub fn allowed_tenants(&self) -> BTreeSet<String> {
        match &self.tenant {
            Some(fixed) => BTreeSet::from([fixed.clone()]),
            None => self.tenants.iter().cloned().collect(),
        }
    }

    /// Checks the entry, reads the HS256 secret, and sets up the key cache.
    pub(crate) fn trusted(&self, min_refresh: Duration) -> Result<TrustedIssuer, VerifierError> {
        let invalid = |reason: String| VerifierError::Invalid {
            issuer: self.issuer.clone(),
            reason,
        };
        for (field, value) in [
            ("issuer", &self.issuer),
            ("audience", &self.audience),
            ("tenant_claim", &self.tenant_claim),
            ("scope_claim", &self.scope_claim),
        ] {
            if value.trim().is_empty() {
                return Err(invalid(format!("{field} must not be empty")));
            }
        }
        if let Some(tenant) = &self.tenant
            && !is_plain_token(tenant)
        {
            return Err(invalid(
                "tenant must be non-empty and without spaces".into(),
            ));
        }
        match (&self.tenant, self.tenants.is_empty()) {
            (Some(_), false) => {
                return Err(invalid(
                    "set tenant (one fixed tenant) or tenants (those tenant_claim may name), not both"
                        .into(),
                ));
            }
            (None, true) => {
                return Err(invalid(format!(
                    "tenants must list the tenants this provider may name in {}, or tenant must fix one",
                    self.tenant_claim
                )));
            }
            _ => {}
        }
        if let Some(bad) = self.tenants.iter().find(|t| !is_plain_token(t)) {
            return Err(invalid(format!(
                "tenants: {bad:?} must be non-empty and without spaces"
            )));
        }
        if self.jwks_max_bytes == 0 {
            return Err(invalid("jwks_max_bytes must be positive".into()));
        }
        if self.jwks_refresh_s == 0 {
            return Err(invalid("jwks_refresh_s must be at least 1".into()));
        }
        if self.algorithms.is_empty() {
            return Err(invalid("algorithms must not be empty".into()));
        }
        for alg in &self.algorithms {
            match alg {
                Algorithm::HS256 if self.hs256_secret_file.is_none() => {
                    return Err(invalid("HS256 requires hs256_secret_file".into()));
                }
                Algorithm::HS256 => {}
                alg if SUPPORTED.contains(alg) => {}
                alg => return Err(invalid(format!("algorithm {alg:?} is not supported"))),
            }
        }
        let hs256 = match &self.hs256_secret_file {
            Some(path) => Some(self.read_secret(path)?),
            None => None,
        };
        let keys = match &self.jwks_url {
            Some(url) if url.starts_with("https://") => {
                Keys::Remote(self.remote(url, min_refresh)?)
            }
            Some(url) if url.starts_with("http://") && self.allow_insecure_http => {
                tracing::warn!(issuer = %self.issuer, url, "fetching an external issuer's keys over plain http (allow_insecure_http): development only");
                Keys::Remote(self.remote(url, min_refresh)?)
            }
            Some(url) if url.starts_with("http://") => {
                return Err(invalid(format!(
                    "jwks_url {url} is not https; keys fetched over plain http can be replaced by anyone on the way (allow_insecure_http = true permits it, for development only)"
                )));
            }
            Some(url) => return Err(invalid(format!("jwks_url {url} is not an https URL"))),
            None if hs256.is_some() => Keys::None,
            None => return Err(invalid("needs jwks_url or hs256_secret_file".into())),
        };
        let tenant = match &self.tenant {
            Some(fixed) => TenantSource::Fixed(fixed.clone()),
            None => TenantSource::Claim {
                name: self.tenant_claim.clone(),
                allowed: self.tenants.iter().cloned().collect(),
            },
        };
        Ok(TrustedIssuer::external(
            self.issuer.clone(),
            &self.audience,
            &self.algorithms,
            keys,
            hs256,
            ClaimMapping::External {
                tenant,
                scope_claim: self.scope_claim.clone(),
            },
        ))
    }

    fn remote(&self, url: &str, min_refresh: Duration) -> Result<RemoteJwks, VerifierError> {
        let roots = match &self.jwks_ca_file {
            None => Vec::new(),
            Some(path) => self.read_roots(path)?,
        };
        Ok(RemoteJwks::new(JwksFetch {
            url: url.to_owned(),
            allowed: self.algorithms.clone(),
            min_refresh,
            refresh: Duration::from_secs(self.jwks_refresh_s),
            max_bytes: self.jwks_max_bytes,
            https_only: !self.allow_insecure_http,
            roots,
        }))
    }

    fn read_roots(&self, path: &Path) -> Result<Vec<reqwest::Certificate>, VerifierError> {
        let pem = std::fs::read(path).map_err(|source| VerifierError::CaFile {
            issuer: self.issuer.clone(),
            path: path.into(),
            source,
        })?;
        match reqwest::Certificate::from_pem_bundle(&pem) {
            Ok(certs) if !certs.is_empty() => Ok(certs),
            Ok(_) => Err(VerifierError::Invalid {
                issuer: self.issuer.clone(),
                reason: format!("jwks_ca_file {} holds no certificate", path.display()),
            }),
            Err(e) => Err(VerifierError::Invalid {
                issuer: self.issuer.clone(),
                reason: format!(
                    "jwks_ca_file {} is not PEM certificates: {e}",
                    path.display()
                ),
            }),
        }
    }

    fn read_secret(&self, path: &Path) -> Result<DecodingKey, VerifierError> {
        let mut secret = std::fs::read(path).map_err(|source| VerifierError::SecretFile {
            issuer: self.issuer.clone(),
            path: path.into(),
            source,
        })?;
        // Files written by `echo` or editors end in a newline that is not
        // part of the secret.
        if secret.ends_with(b"\n") {
            secret.pop();
            if secret.ends_with(b"\r") {
                secret.pop();
            }
        }
        if secret.len() < MIN_HS256_SECRET {
            return Err(VerifierError::Invalid {
                issuer: self.issuer.clone(),
                reason: format!(
                    "the HS256 secret in {} is {} bytes; at least {MIN_HS256_SECRET} are required",
                    path.display(),
                    secret.len()
                ),
            });
        }
        Ok(DecodingKey::from_secret(&secret))
    }
}
