//! Verification keys indexed by `kid`, each bound to one algorithm.
//!
//! The algorithm a key verifies is decided here, from the key alone: its
//! `alg` member if present, else its type and curve (RSA → RS256, P-256 →
//! ES256, P-384 → ES384, Ed25519 → EdDSA). A key is kept only if that
//! algorithm is one the issuer allows. A token header can then only agree
//! with the key or be refused, so `alg: none`, HS256 keyed with an RSA public
//! key, or an RS256 header on an EC key have nothing to work with.
//!
//! Also refused: keys without `kid`; `use` other than `sig`; `key_ops`
//! without `verify`; symmetric (`oct`) keys, which a public JWK Set must
//! never carry; RSA moduli under 2048 bits (factorable for the price of some
//! cloud time) or over 4096 bits (what the RSA implementation accepts); and
//! EC or Ed25519 points that do not decode, caught here rather than at every
//! token.

use std::collections::HashMap;

use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyOperations};
use jsonwebtoken::jwk::{PublicKeyUse, RSAKeyParameters};
use jsonwebtoken::{Algorithm, DecodingKey};

/// Most keys a JWK Set may hold: providers publish two or three (current,
/// next, previous); thousands would only cost parsing time.
const MAX_KEYS: usize = 100;
/// Smallest RSA modulus accepted, in bits.
pub(crate) const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus the `rsa` crate verifies with (`RsaPublicKey::MAX_SIZE`).
const MAX_RSA_BITS: usize = 4096;

/// A public key and the one algorithm it verifies.
#[derive(Clone)]
pub(crate) struct VerifyingKey {
    pub(crate) algorithm: Algorithm,
    pub(crate) key: DecodingKey,
}

/// Usable verification keys, by `kid`.
#[derive(Clone, Default)]
pub(crate) struct KeySet {
    keys: HashMap<String, VerifyingKey>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.keys.iter().map(|(kid, k)| (kid, k.algorithm)))
            .finish()
    }
}

impl KeySet {
    /// Keeps the keys of `set` usable with one of `allowed`, skipping (and
    /// logging) the rest. Of two keys with the same `kid`, the first wins.
    pub(crate) fn from_jwks(set: &JwkSet, allowed: &[Algorithm]) -> Self {
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let kid = jwk.common.key_id.as_deref().unwrap_or("<none>");
            match usable(jwk, allowed) {
                Ok((kid, key)) if keys.contains_key(&kid) => {
                    tracing::warn!(kid, algorithm = ?key.algorithm, "ignoring JWK: duplicate kid");
                }
                Ok((kid, key)) => {
                    keys.insert(kid, key);
                }
                Err(why) => tracing::debug!(kid, why, "ignoring JWK"),
            }
        }
        Self { keys }
    }

    /// Like [`KeySet::from_jwks`], from JSON; a key that does not even parse
    /// as a JWK (an unknown `kty` or `alg`, say) is skipped rather than
    /// failing the whole set.
    pub(crate) fn from_json(body: &[u8], allowed: &[Algorithm]) -> Result<Self, String> {
        #[derive(serde::Deserialize)]
        struct RawSet {
            keys: Vec<serde_json::Value>,
        }
        let raw: RawSet =
            serde_json::from_slice(body).map_err(|e| format!("not a JWK Set: {e}"))?;
        if raw.keys.len() > MAX_KEYS {
            return Err(format!(
                "the JWK Set has {} keys, more than the {MAX_KEYS} accepted",
                raw.keys.len()
            ));
        }
        let keys = raw
            .keys
            .into_iter()
            .filter_map(|k| serde_json::from_value(k).ok())
            .collect();
        Ok(Self::from_jwks(&JwkSet { keys }, allowed))
    }

    pub(crate) fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.get(kid)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key ids, sorted.
    pub(crate) fn kids(&self) -> Vec<String> {
        let mut kids: Vec<String> = self.keys.keys().cloned().collect();
        kids.sort_unstable();
        kids
    }
}

fn usable(jwk: &Jwk, allowed: &[Algorithm]) -> Result<(String, VerifyingKey), String> {
    let kid = jwk.common.key_id.clone().ok_or("no kid")?;
    if !matches!(
        jwk.common.public_key_use,
        None | Some(PublicKeyUse::Signature)
    ) {
        return Err("use is not sig".into());
    }
    if let Some(ops) = &jwk.common.key_operations
        && !ops.contains(&KeyOperations::Verify)
    {
        return Err("key_ops lacks verify".into());
    }
    let declared = match jwk.common.key_algorithm {
        None => None,
        Some(alg) => Some(
            Algorithm::try_from(alg)
                .map_err(|_| format!("alg {alg} is not a signature algorithm"))?,
        ),
    };
    let algorithm = match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            check_rsa(rsa)?;
            match declared.unwrap_or(Algorithm::RS256) {
                alg @ (Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512) => alg,
                other => return Err(format!("alg {other:?} does not fit an RSA key")),
            }
        }
        AlgorithmParameters::EllipticCurve(ec) => {
            let by_curve = match ec.curve {
                EllipticCurve::P256 => Algorithm::ES256,
                EllipticCurve::P384 => Algorithm::ES384,
                _ => return Err("unsupported EC curve".into()),
            };
            agree(declared, by_curve)?
        }
        AlgorithmParameters::OctetKeyPair(okp) => {
            if okp.curve != EllipticCurve::Ed25519 {
                return Err("OKP key is not Ed25519".into());
            }
            // jsonwebtoken slices the first 32 bytes and would panic on fewer.
            if b64url_decode(&okp.x).map(|x| x.len()) != Some(32) {
                return Err("x is not 32 bytes".into());
            }
            agree(declared, Algorithm::EdDSA)?
        }
        AlgorithmParameters::OctetKey(_) => {
            return Err("symmetric keys are never taken from a JWK Set".into());
        }
        _ => return Err("unsupported key type".into()),
    };
    if !allowed.contains(&algorithm) {
        return Err(format!("{algorithm:?} is not allowed for this issuer"));
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("bad key: {e}"))?;
    // Building a verifier decodes the EC or Ed25519 point; the empty
    // signature then simply fails to verify (`Ok(false)`). An `Err` means
    // the point itself is invalid.
    jsonwebtoken::crypto::verify("", b"", &key, algorithm)
        .map_err(|_| "not a valid public key for its curve".to_owned())?;
    Ok((kid, VerifyingKey { algorithm, key }))
}

/// The key's own algorithm, or an error if its `alg` says otherwise.
fn agree(declared: Option<Algorithm>, by_key: Algorithm) -> Result<Algorithm, String> {
    match declared {
        Some(alg) if alg != by_key => Err(format!("alg {alg:?} does not fit a {by_key:?} key")),
        _ => Ok(by_key),
    }
}

/// The checks `rsa::RsaPublicKey::new` makes at every verification, plus
/// the minimum size, done once here so a bad key is reported when fetched.
fn check_rsa(rsa: &RSAKeyParameters) -> Result<(), String> {
    let n = b64url_decode(&rsa.n).ok_or("n is not base64url")?;
    let e = b64url_decode(&rsa.e).ok_or("e is not base64url")?;
    let n = strip_leading_zeros(&n);
    let e = strip_leading_zeros(&e);
    let bits = significant_bits(n);
    if bits < MIN_RSA_BITS {
        return Err(format!("RSA key of {bits} bits is under {MIN_RSA_BITS}"));
    }
    if bits > MAX_RSA_BITS {
        return Err(format!("RSA key of {bits} bits is over {MAX_RSA_BITS}"));
    }
    if n.last().is_none_or(|b| b % 2 == 0) {
        return Err("RSA modulus is even".into());
    }
    // 3 ≤ e < 2^33, odd: the bounds of the `rsa` crate.
    let e_value = (e.len() <= 8).then(|| e.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)));
    match e_value {
        Some(e) if (3..1 << 33).contains(&e) && e % 2 == 1 => Ok(()),
        _ => Err("RSA exponent out of range".into()),
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

fn significant_bits(be: &[u8]) -> usize {
    match be.first() {
        None => 0,
        Some(top) => (be.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
    }
}

fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
}
