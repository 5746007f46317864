//! Bearer token verification.
//!
//! A token is accepted only if: its header says EdDSA and names a `kid` in
//! the trusted set; the Ed25519 signature checks with that key; `exp` is in
//! the future and `nbf` in the past (30 s leeway either way for clock skew);
//! `iss` and `aud` equal the configured values; and every claim of
//! [`Claims`] is present.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, Validation};

use crate::claims::Claims;
use crate::error::AuthError;
use crate::keyset::KeySet;
use crate::principal::Principal;
use crate::remote::RemoteJwks;

/// Allowed clock difference between issuer and verifier.
const LEEWAY_SECS: u64 = 30;
/// Default minimum time between two JWKS fetches of a remote verifier.
pub const DEFAULT_MIN_REFRESH: Duration = Duration::from_secs(10);
/// Far above any token we issue (a few hundred bytes); refusing early keeps
/// a junk header from costing base64 and JSON work.
const MAX_TOKEN_LEN: usize = 8 * 1024;

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

/// Verifies access tokens. Cheap to clone: clones share keys and cache.
#[derive(Debug, Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    validation: Validation,
    keys: Keys,
}

#[derive(Debug)]
enum Keys {
    Static(KeySet),
    Remote(RemoteJwks),
}

impl Verifier {
    /// A verifier trusting exactly the Ed25519 keys of `jwks`; other keys in
    /// the set are ignored.
    pub fn with_jwks(issuer: impl Into<String>, audience: impl Into<String>, jwks: JwkSet) -> Self {
        Self::new(
            issuer.into(),
            audience.into(),
            Keys::Static(KeySet::from_jwks(&jwks)),
        )
    }

    /// A verifier that fetches the issuer's JWKS on first use and again when
    /// a token names an unknown `kid`, at most once per 10 s.
    pub fn remote(settings: VerifierSettings) -> Self {
        Self::remote_with_refresh_interval(settings, DEFAULT_MIN_REFRESH)
    }

    /// [`Verifier::remote`] with another minimum time between fetches.
    pub fn remote_with_refresh_interval(settings: VerifierSettings, min_refresh: Duration) -> Self {
        let keys = Keys::Remote(RemoteJwks::new(settings.jwks_url, min_refresh));
        Self::new(settings.issuer, settings.audience, keys)
    }

    fn new(issuer: String, audience: String, keys: Keys) -> Self {
        // Pinned to EdDSA whatever the token header says.
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        Self {
            inner: Arc::new(Inner { validation, keys }),
        }
    }

    /// Checks `token` (the part after `Bearer `) and returns who it speaks for.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::invalid("malformed token"));
        }
        // Unverified at this point: used only to pick the key, and the
        // algorithm is checked against the one the keys are for.
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::invalid("malformed token"))?;
        if header.alg != Algorithm::EdDSA {
            return Err(AuthError::invalid("algorithm not allowed"));
        }
        let kid = header
            .kid
            .ok_or_else(|| AuthError::invalid("token has no key id"))?;
        let key = match &self.inner.keys {
            Keys::Static(set) => set.get(&kid).cloned(),
            Keys::Remote(remote) => remote.key(&kid).await?,
        };
        let key = key.ok_or_else(|| AuthError::invalid("unknown key id"))?;
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &self.inner.validation)
            .map_err(|e| AuthError::invalid(reason(e.kind())))?
            .claims;
        Ok(Principal {
            scopes: claims
                .scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            client_id: claims.sub,
            tenant: claims.tenant,
        })
    }
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
