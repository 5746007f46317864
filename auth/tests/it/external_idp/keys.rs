//! The provider's signing keys, from `tests/fixtures/` (see its README).

use base64::Engine;
use ecg_auth::Algorithm;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::Value;

/// The text of a fixture file.
pub fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The DER bytes inside a PEM file.
pub fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

/// A private key, its `kid`, and the algorithm its public JWK declares.
pub struct TestKey {
    pub kid: String,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    jwk: Jwk,
}

impl TestKey {
    /// RSA 2048 key "a" (RS256).
    pub fn rsa_a() -> Self {
        Self::rsa("rsa_2048_a.pem", "rsa-a", Algorithm::RS256)
    }

    /// RSA 2048 key "b" (RS256), unrelated to "a".
    pub fn rsa_b() -> Self {
        Self::rsa("rsa_2048_b.pem", "rsa-b", Algorithm::RS256)
    }

    pub fn rsa(file: &str, kid: &str, alg: Algorithm) -> Self {
        let encoding = EncodingKey::from_rsa_pem(fixture(file).as_bytes()).unwrap();
        Self::new(encoding, kid, alg)
    }

    /// EC P-256 (ES256).
    pub fn ec() -> Self {
        let encoding = EncodingKey::from_ec_pem(fixture("ec_p256.pem").as_bytes()).unwrap();
        Self::new(encoding, "ec-1", Algorithm::ES256)
    }

    /// Ed25519 (EdDSA).
    pub fn ed() -> Self {
        let encoding = EncodingKey::from_ed_pem(fixture("ed25519.pem").as_bytes()).unwrap();
        Self::new(encoding, "ed-1", Algorithm::EdDSA)
    }

    fn new(encoding: EncodingKey, kid: &str, alg: Algorithm) -> Self {
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).unwrap();
        jwk.common.key_id = Some(kid.into());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Self {
            kid: kid.into(),
            alg,
            encoding,
            jwk,
        }
    }

    /// The public JWK, with `kid`, `use` and `alg`.
    pub fn jwk(&self) -> Value {
        serde_json::to_value(&self.jwk).unwrap()
    }

    /// The public JWK without `alg`, as Azure and others publish RSA keys:
    /// the verifier must infer the algorithm from `kty`/`crv`.
    pub fn jwk_without_alg(&self) -> Value {
        let mut jwk = self.jwk();
        jwk.as_object_mut().unwrap().remove("alg");
        jwk
    }

    /// Signs `claims` with this key's algorithm and `kid`.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(self.alg, &self.kid, claims)
    }

    /// Signs with this key but any header `alg` of its family and `kid`.
    pub fn sign_as(&self, alg: Algorithm, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(alg);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

/// An HS256 token keyed with `secret`, naming `kid` if given.
pub fn hs256(secret: &[u8], kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}
