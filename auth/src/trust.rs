//! One trusted issuer: its keys, the algorithms it may use, the claims its
//! tokens must carry, and how those claims become a [`Principal`].
//!
//! The verifier picks a `TrustedIssuer` by the token's (still unverified)
//! `iss`; from then on everything is this issuer's: the key is looked up in
//! its set only, the algorithm must be one it allows *and* the one the key is
//! for, and `iss`/`aud`/`exp`/`nbf` are checked against its settings. So a
//! token can never be verified with another issuer's key or rules.
//!
//! Tenants are one namespace across issuers, so each issuer may act only
//! for its own: an external provider for the tenants its entry lists (or its
//! fixed one), the built-in issuer for its clients' tenants when the
//! verifier knows them. A token naming another tenant is refused (401).

use std::collections::BTreeSet;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde_json::{Map, Value};

use crate::claims::Claims;
use crate::error::AuthError;
use crate::keyset::KeySet;
use crate::principal::Principal;
use crate::remote::RemoteJwks;

/// Allowed clock difference between issuer and verifier.
pub(crate) const LEEWAY_SECS: u64 = 30;

/// Where an issuer's public keys come from.
#[derive(Debug)]
pub(crate) enum Keys {
    Static(KeySet),
    Remote(RemoteJwks),
    /// An issuer that signs with a shared HS256 secret only.
    None,
}

/// How verified claims become a [`Principal`].
#[derive(Debug)]
pub(crate) enum ClaimMapping {
    /// Our own tokens: every claim of [`Claims`] is required, and the
    /// tenant must be one of these when they are known.
    BuiltIn { tenants: Option<BTreeSet<String>> },
    /// Another provider's tokens: `sub` is the client, the tenant and the
    /// scopes come from configurable places.
    External {
        tenant: TenantSource,
        /// Holds a space-separated string or an array of strings.
        scope_claim: String,
    },
}

#[derive(Debug)]
pub(crate) enum TenantSource {
    /// The named claim, which every token must carry, naming one of
    /// `allowed`.
    Claim {
        name: String,
        allowed: BTreeSet<String>,
    },
    /// The same tenant for every token of this issuer.
    Fixed(String),
}

#[derive(Debug)]
pub(crate) struct TrustedIssuer {
    issuer: String,
    /// One entry per allowed algorithm, each validation pinned to that
    /// algorithm alone. HS256 is here only if `hs256` is set.
    validations: Vec<(Algorithm, Validation)>,
    keys: Keys,
    hs256: Option<DecodingKey>,
    mapping: ClaimMapping,
}

impl TrustedIssuer {
    /// The built-in issuer: EdDSA only, and every claim of [`Claims`],
    /// `nbf` included, is required.
    pub(crate) fn built_in(issuer: String, audience: &str, keys: Keys) -> Self {
        let validations = vec![(
            Algorithm::EdDSA,
            validation(Algorithm::EdDSA, &issuer, audience, true),
        )];
        Self {
            issuer,
            validations,
            keys,
            hs256: None,
            mapping: ClaimMapping::BuiltIn { tenants: None },
        }
    }

    /// This built-in issuer, accepting only tokens naming one of `tenants`.
    pub(crate) fn with_built_in_tenants(mut self, tenants: BTreeSet<String>) -> Self {
        if let ClaimMapping::BuiltIn { tenants: allowed } = &mut self.mapping {
            *allowed = Some(tenants);
        }
        self
    }

    pub(crate) fn is_built_in(&self) -> bool {
        matches!(self.mapping, ClaimMapping::BuiltIn { .. })
    }

    /// An external provider. `algorithms` must not contain HS256; it is
    /// added if and only if `hs256` is given.
    pub(crate) fn external(
        issuer: String,
        audience: &str,
        algorithms: &[Algorithm],
        keys: Keys,
        hs256: Option<DecodingKey>,
        mapping: ClaimMapping,
    ) -> Self {
        let hmac = hs256.as_ref().map(|_| Algorithm::HS256);
        let validations = algorithms
            .iter()
            .copied()
            .filter(|alg| *alg != Algorithm::HS256)
            .chain(hmac)
            .map(|alg| (alg, validation(alg, &issuer, audience, false)))
            .collect();
        Self {
            issuer,
            validations,
            keys,
            hs256,
            mapping,
        }
    }

    pub(crate) fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Changes whenever this issuer's keys change (remote sets only).
    pub(crate) fn keys_generation(&self) -> u64 {
        match &self.keys {
            Keys::Remote(remote) => remote.generation(),
            Keys::Static(_) | Keys::None => 0,
        }
    }

    /// Verifies `token`, whose `header` has already been decoded and whose
    /// `iss` named this issuer.
    pub(crate) async fn verify(
        &self,
        token: &str,
        header: &Header,
    ) -> Result<Principal, AuthError> {
        let Some((_, validation)) = self.validations.iter().find(|(alg, _)| *alg == header.alg)
        else {
            return Err(AuthError::invalid("algorithm not allowed"));
        };
        let key = match (header.alg, &self.hs256) {
            (Algorithm::HS256, Some(secret)) => secret.clone(),
            _ => {
                let kid = header
                    .kid
                    .as_deref()
                    .ok_or_else(|| AuthError::invalid("token has no key id"))?;
                let key = match &self.keys {
                    Keys::Static(set) => set.get(kid).cloned(),
                    Keys::Remote(remote) => remote.key(kid).await?,
                    Keys::None => None,
                };
                let key = key.ok_or_else(|| AuthError::invalid("unknown key id"))?;
                // The key decides the algorithm; a header naming another one
                // (RS256 on an EC key, HS256 on anything) is refused here.
                if key.algorithm != header.alg {
                    return Err(AuthError::invalid("algorithm not allowed"));
                }
                key.key
            }
        };
        match &self.mapping {
            ClaimMapping::BuiltIn { tenants } => {
                let claims = decode::<Claims>(token, &key, validation)?;
                if let Some(tenants) = tenants
                    && !tenants.contains(&claims.tenant)
                {
                    // Signed by us for a tenant no client has any more.
                    return Err(tenant_not_allowed(&claims.tenant));
                }
                Ok(Principal {
                    issuer: claims.iss,
                    client_id: claims.sub,
                    tenant: claims.tenant,
                    scopes: split_scopes(&claims.scope),
                })
            }
            ClaimMapping::External {
                tenant,
                scope_claim,
            } => {
                let claims = decode::<Map<String, Value>>(token, &key, validation)?;
                external_principal(&self.issuer, &claims, tenant, scope_claim)
            }
        }
    }
}

fn validation(alg: Algorithm, issuer: &str, audience: &str, require_nbf: bool) -> Validation {
    let mut validation = Validation::new(alg);
    validation.leeway = LEEWAY_SECS;
    validation.validate_exp = true;
    // Checked when present; external providers often leave it out.
    validation.validate_nbf = true;
    validation.validate_aud = true;
    if require_nbf {
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    } else {
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    }
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation
}

fn decode<T: serde::de::DeserializeOwned>(
    token: &str,
    key: &DecodingKey,
    validation: &Validation,
) -> Result<T, AuthError> {
    jsonwebtoken::decode::<T>(token, key, validation)
        .map(|data| data.claims)
        .map_err(|e| AuthError::invalid(reason(e.kind())))
}

fn external_principal(
    issuer: &str,
    claims: &Map<String, Value>,
    tenant: &TenantSource,
    scope_claim: &str,
) -> Result<Principal, AuthError> {
    // `decode` required `sub`; a non-string one is malformed.
    let Some(Value::String(sub)) = claims.get("sub") else {
        return Err(AuthError::invalid("malformed claim sub"));
    };
    let tenant = match tenant {
        TenantSource::Fixed(tenant) => tenant.clone(),
        TenantSource::Claim { name, allowed } => match claims.get(name) {
            Some(Value::String(t)) if is_plain_token(t) => {
                if !allowed.contains(t) {
                    return Err(tenant_not_allowed(t));
                }
                t.clone()
            }
            Some(_) => return Err(AuthError::invalid(format!("malformed claim {name}"))),
            None => return Err(AuthError::invalid(format!("missing claim {name}"))),
        },
    };
    // No scope claim at all grants nothing, which the extractor turns into
    // a 403 naming the scope needed.
    let scopes = match claims.get(scope_claim) {
        None => Vec::new(),
        Some(Value::String(s)) => split_scopes(s),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) if is_plain_token(s) => Ok(s.clone()),
                _ => Err(AuthError::invalid(format!("malformed claim {scope_claim}"))),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(AuthError::invalid(format!("malformed claim {scope_claim}")));
        }
    };
    Ok(Principal {
        issuer: issuer.to_owned(),
        client_id: sub.clone(),
        tenant,
        scopes,
    })
}

fn tenant_not_allowed(tenant: &str) -> AuthError {
    AuthError::invalid(format!("tenant {tenant} is not allowed for this issuer"))
}

/// Space-separated scope tokens (RFC 6749 §3.3).
fn split_scopes(scope: &str) -> Vec<String> {
    scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Non-empty, no whitespace or control characters: what our own tenants and
/// scopes look like, so downstream code never meets an odd one.
pub(crate) fn is_plain_token(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A short, token-free description of which check failed.
fn reason(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::InvalidSignature => "bad signature".into(),
        ErrorKind::ExpiredSignature => "token expired".into(),
        ErrorKind::ImmatureSignature => "token not yet valid".into(),
        ErrorKind::InvalidIssuer => "wrong issuer".into(),
        ErrorKind::InvalidAudience => "wrong audience".into(),
        ErrorKind::InvalidAlgorithm => "algorithm not allowed".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("missing claim {claim}"),
        ErrorKind::InvalidClaimFormat(claim) => format!("malformed claim {claim}"),
        // Includes claims that do not deserialize into `Claims`.
        _ => "malformed token".into(),
    }
}
