//! External OAuth2/OIDC providers whose access tokens the services accept,
//! as configured (`[[auth.external]]` in a service's TOML).
//!
//! Checked when the verifier is built, so a bad entry stops the service at
//! startup instead of refusing every token later: non-empty `issuer`,
//! `audience`, claim names and fixed tenant; only signature algorithms the
//! verifier supports; HS256 only together with a secret file holding at
//! least 32 bytes (RFC 7518 §3.2: a key as long as the hash); at least one
//! source of keys.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey};
use serde::{Deserialize, Serialize};

use crate::builder::VerifierError;
use crate::remote::RemoteJwks;
use crate::trust::{ClaimMapping, Keys, TenantSource, TrustedIssuer, is_plain_token};

/// Shortest HS256 secret accepted, in bytes.
const MIN_HS256_SECRET: usize = 32;

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
    /// The provider's JWK Set (`jwks_uri` of its OpenID configuration).
    /// Fetched on first use and again when a token names an unknown `kid`.
    /// May be left out only if `hs256_secret_file` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
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

impl ExternalIssuerConfig {
    /// A provider with keys at `jwks_url` and every other field at its
    /// default.
    pub fn new(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        jwks_url: impl Into<String>,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            jwks_url: Some(jwks_url.into()),
            algorithms: default_algorithms(),
            hs256_secret_file: None,
            tenant_claim: default_tenant_claim(),
            scope_claim: default_scope_claim(),
            tenant: None,
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
            Some(url) if url.starts_with("https://") || url.starts_with("http://") => Keys::Remote(
                RemoteJwks::new(url.clone(), self.algorithms.clone(), min_refresh),
            ),
            Some(url) => return Err(invalid(format!("jwks_url {url} is not an http(s) URL"))),
            None if hs256.is_some() => Keys::None,
            None => return Err(invalid("needs jwks_url or hs256_secret_file".into())),
        };
        let tenant = match &self.tenant {
            Some(fixed) => TenantSource::Fixed(fixed.clone()),
            None => TenantSource::Claim(self.tenant_claim.clone()),
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
