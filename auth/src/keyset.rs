//! Verification keys indexed by `kid`.
//!
//! Only Ed25519 keys (`kty` OKP, `crv` Ed25519) with a `kid` are kept, and
//! only for EdDSA: the algorithm comes from the key, never from a token
//! header, so `none` and HS256-with-the-public-key tricks cannot apply.

use std::collections::HashMap;

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};

/// Usable verification keys, by `kid`.
#[derive(Clone, Default)]
pub(crate) struct KeySet {
    keys: HashMap<String, DecodingKey>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.keys.keys()).finish()
    }
}

impl KeySet {
    /// Keeps the usable keys of `set`, skipping (and logging) the rest.
    pub(crate) fn from_jwks(set: &JwkSet) -> Self {
        let keys = set
            .keys
            .iter()
            .filter_map(|jwk| match usable(jwk) {
                Ok(entry) => Some(entry),
                Err(why) => {
                    let kid = jwk.common.key_id.as_deref().unwrap_or("<none>");
                    tracing::debug!(kid, why, "ignoring JWK");
                    None
                }
            })
            .collect();
        Self { keys }
    }

    /// Like [`KeySet::from_jwks`], from JSON; a key that does not even parse
    /// as a JWK is skipped rather than failing the whole set.
    pub(crate) fn from_json(body: &[u8]) -> Result<Self, String> {
        #[derive(serde::Deserialize)]
        struct RawSet {
            keys: Vec<serde_json::Value>,
        }
        let raw: RawSet =
            serde_json::from_slice(body).map_err(|e| format!("not a JWK Set: {e}"))?;
        let keys = raw
            .keys
            .into_iter()
            .filter_map(|k| serde_json::from_value(k).ok())
            .collect();
        Ok(Self::from_jwks(&JwkSet { keys }))
    }

    pub(crate) fn get(&self, kid: &str) -> Option<&DecodingKey> {
        self.keys.get(kid)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn usable(jwk: &Jwk) -> Result<(String, DecodingKey), &'static str> {
    let kid = jwk.common.key_id.clone().ok_or("no kid")?;
    let AlgorithmParameters::OctetKeyPair(okp) = &jwk.algorithm else {
        return Err("not an OKP key");
    };
    if okp.curve != EllipticCurve::Ed25519 {
        return Err("not Ed25519");
    }
    if !matches!(jwk.common.key_algorithm, None | Some(KeyAlgorithm::EdDSA)) {
        return Err("alg is not EdDSA");
    }
    if !matches!(
        jwk.common.public_key_use,
        None | Some(PublicKeyUse::Signature)
    ) {
        return Err("use is not sig");
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|_| "bad x")?;
    // jsonwebtoken reads the first 32 bytes and would panic on fewer.
    if !matches!(key.try_get_as_bytes(), Ok(bytes) if bytes.len() == 32) {
        return Err("x is not 32 bytes");
    }
    Ok((kid, key))
}
