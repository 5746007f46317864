//! Bearer token verification, for one or several trusted issuers.
//!
//! A token is accepted only if: its `iss` names a trusted issuer (the
//! built-in one or a configured external provider); its header names an
//! algorithm that issuer allows and, except for a configured HS256 secret, a
//! `kid` in that issuer's key set whose own algorithm is the header's; the
//! signature checks with that key; `exp` is in the future and `nbf` (if
//! present; required for built-in tokens) in the past, 30 s leeway either way
//! for clock skew; `aud` contains the issuer's configured audience; and the
//! claims the issuer's mapping needs are present (every claim of
//! [`crate::Claims`] for built-in tokens; `sub` and the tenant for external
//! ones).
//!
//! The `iss` is read before the signature is checked, but only to choose
//! whose keys and rules apply; the chosen issuer then checks it again.
//!
//! How a verifier is made, and whom it trusts, is [`crate::builder`]'s.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine;
use jsonwebtoken::Algorithm;
use serde_json::Value;

use crate::error::AuthError;
use crate::principal::Principal;
use crate::trust::TrustedIssuer;

/// Far above any token we issue (a few hundred bytes) or an external
/// provider issues (a few kilobytes with group claims); refusing early keeps
/// a junk header from costing base64 and JSON work.
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Verifies access tokens. Cheap to clone: clones share keys and caches.
#[derive(Debug, Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// By `iss`.
    issuers: HashMap<String, TrustedIssuer>,
    /// Tokens that passed every check, until they expire (at most
    /// `CACHE_TTL`): a client sends the same token with every request, and
    /// a signature check costs far more than the rest of a small request.
    cache: Mutex<HashMap<String, Verified>>,
}

#[derive(Debug)]
struct Verified {
    principal: Principal,
    until: Instant,
    /// The key sets' generation when the token was checked: once a key set
    /// is replaced (a key rotated or retired), the token is checked again.
    keys: u64,
}

/// Most tokens remembered; past it the cache starts over.
const CACHE_ENTRIES: usize = 10_000;
/// Longest a verified token is remembered (a replaced key set also ends
/// every entry at once).
const CACHE_TTL: Duration = Duration::from_secs(300);

impl Verifier {
    /// `issuers` have distinct `iss` values (the builder checks).
    pub(crate) fn from_issuers(issuers: Vec<TrustedIssuer>) -> Self {
        let issuers = issuers
            .into_iter()
            .map(|i| (i.issuer().to_owned(), i))
            .collect();
        Self {
            inner: Arc::new(Inner {
                issuers,
                cache: Mutex::default(),
            }),
        }
    }

    /// Checks `token` (the part after `Bearer `) and returns who it speaks for.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::invalid("malformed token"));
        }
        // Read before checking: a key set replaced meanwhile makes the
        // entry stale at once.
        let keys = self.keys_generation();
        if let Some(hit) = self.cached(token, keys) {
            return Ok(hit);
        }
        let principal = self.verify_uncached(token).await?;
        self.remember(token, &principal, keys);
        Ok(principal)
    }

    fn keys_generation(&self) -> u64 {
        self.inner
            .issuers
            .values()
            .map(TrustedIssuer::keys_generation)
            .fold(0, u64::wrapping_add)
    }

    fn cached(&self, token: &str, keys: u64) -> Option<Principal> {
        let cache = self
            .inner
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let hit = cache.get(token)?;
        (hit.until > Instant::now() && hit.keys == keys).then(|| hit.principal.clone())
    }

    /// Remembers a verified token until its `exp` (without the leeway: a
    /// token near its end is checked fully again), at most `CACHE_TTL`.
    fn remember(&self, token: &str, principal: &Principal, keys: u64) {
        #[derive(serde::Deserialize)]
        struct Exp {
            exp: u64,
        }
        let Ok(Exp { exp }) = jsonwebtoken::dangerous::insecure_decode_claims(token) else {
            return;
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let left = Duration::from_secs(exp.saturating_sub(now)).min(CACHE_TTL);
        if left.is_zero() {
            return;
        }
        let mut cache = self
            .inner
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(
            token.to_owned(),
            Verified {
                principal: principal.clone(),
                until: Instant::now() + left,
                keys,
            },
        );
    }

    async fn verify_uncached(&self, token: &str) -> Result<Principal, AuthError> {
        // Unverified at this point: the issuer checks that `alg` is allowed
        // and is the algorithm of the key named by `kid`.
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            if names_unknown_algorithm(token) {
                AuthError::invalid("algorithm not allowed")
            } else {
                AuthError::invalid("malformed token")
            }
        })?;
        let issuer = unverified_issuer(token)?;
        let trusted = self
            .inner
            .issuers
            .get(&issuer)
            .ok_or_else(|| AuthError::invalid("unknown issuer"))?;
        trusted.verify(token, &header).await
    }
}

/// Whether the header's `alg` is a string naming no algorithm we know
/// (`none`, `HS1`, ...), which `decode_header` reports as a parse error.
fn names_unknown_algorithm(token: &str) -> bool {
    let Some(header) = token.split('.').next() else {
        return false;
    };
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header) else {
        return false;
    };
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(header)) => matches!(
            header.get("alg"),
            Some(Value::String(alg)) if Algorithm::from_str(alg).is_err()
        ),
        _ => false,
    }
}

/// The `iss` of a not yet verified token. Safe to act on only as a choice
/// of which issuer's keys and rules to verify with.
fn unverified_issuer(token: &str) -> Result<String, AuthError> {
    #[derive(serde::Deserialize)]
    struct Peek {
        iss: Option<Value>,
    }
    let peek: Peek = jsonwebtoken::dangerous::insecure_decode_claims(token)
        .map_err(|_| AuthError::invalid("malformed token"))?;
    match peek.iss {
        Some(Value::String(iss)) => Ok(iss),
        Some(_) => Err(AuthError::invalid("malformed claim iss")),
        None => Err(AuthError::invalid("missing claim iss")),
    }
}

#[cfg(test)]
mod cache_tests {
    use super::*;
    use crate::claims::Claims;
    use crate::key::SigningKey;

    fn token(key: &SigningKey, lifetime: u64) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        key.sign(&Claims {
            iss: "http://issuer.test".into(),
            aud: "ecg-stream".into(),
            sub: "demo".into(),
            tenant: "demo".into(),
            scope: "ecg:write".into(),
            iat: now,
            nbf: now,
            exp: now + lifetime,
            jti: "t".into(),
        })
    }

    fn remembered_for(verifier: &Verifier, token: &str) -> Option<Duration> {
        let cache = verifier.inner.cache.lock().unwrap();
        cache
            .get(token)
            .map(|v| v.until.saturating_duration_since(Instant::now()))
    }

    #[tokio::test]
    async fn a_verified_token_is_remembered_until_its_expiry_at_most() {
        let key = SigningKey::generate();
        let verifier = Verifier::with_jwks("http://issuer.test", "ecg-stream", key.jwks());
        let short = token(&key, 100);
        let principal = verifier.verify(&short).await.unwrap();
        let left = remembered_for(&verifier, &short).expect("cached");
        assert!(
            left <= Duration::from_secs(100) && left > Duration::from_secs(95),
            "{left:?}"
        );
        // A hit answers the same principal.
        assert_eq!(verifier.verify(&short).await.unwrap(), principal);

        let long = token(&key, 86_400);
        verifier.verify(&long).await.unwrap();
        let left = remembered_for(&verifier, &long).expect("cached");
        assert!(left <= CACHE_TTL, "{left:?}");

        // A refused token is never remembered.
        let mut tampered = short.clone();
        tampered.pop();
        assert!(verifier.verify(&tampered).await.is_err());
        assert!(remembered_for(&verifier, &tampered).is_none());
    }
}
