//! Shared fixtures: an issuer with two clients, claim builders, HTTP helpers.

use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Body;
use axum::http::Response;
use base64::Engine;
use ecg_auth::{
    Claims, ClientConfig, IssuerSettings, SigningKey, TokenIssuer, TokenLimits, Verifier,
    hash_secret,
};

pub const ISSUER: &str = "http://issuer.test";
pub const AUDIENCE: &str = "ecg-stream";
pub const TTL: Duration = Duration::from_secs(300);
/// Secret of both test clients; odd characters exercise form/Basic encoding.
pub const SECRET: &str = "s3cret:with/odd chars&=+é";

/// `acme` (tenant-a, write+read) and `reader` (tenant-b, read only).
pub fn clients() -> Vec<ClientConfig> {
    // One argon2 hash for the whole test binary: hashing is the slow part.
    static HASH: OnceLock<String> = OnceLock::new();
    let hash = HASH.get_or_init(|| hash_secret(SECRET));
    let client = |id: &str, tenant: &str, scopes: &[&str]| ClientConfig {
        id: id.into(),
        secret_hash: hash.clone(),
        tenant: tenant.into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
    };
    vec![
        client("acme", "tenant-a", &["ecg:write", "ecg:read"]),
        client("reader", "tenant-b", &["ecg:read"]),
    ]
}

pub fn settings() -> IssuerSettings {
    IssuerSettings {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        token_ttl: TTL,
        clients: clients(),
        previous_keys: Vec::new(),
        limits: TokenLimits::default(),
    }
}

pub fn issuer_with(key: SigningKey) -> TokenIssuer {
    TokenIssuer::new(key, settings()).unwrap()
}

pub fn issuer() -> TokenIssuer {
    issuer_with(SigningKey::generate())
}

/// A verifier trusting only `key`.
pub fn verifier_for(key: &SigningKey) -> Verifier {
    Verifier::with_jwks(ISSUER, AUDIENCE, key.jwks())
}

pub fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// Claims that pass every check; tests break one field at a time.
pub fn valid_claims() -> Claims {
    let now = now();
    Claims {
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        sub: "acme".into(),
        tenant: "tenant-a".into(),
        scope: "ecg:write ecg:read".into(),
        iat: now,
        nbf: now,
        exp: now + 300,
        jti: "test-jti".into(),
    }
}

pub fn b64url(bytes: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64url_decode(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap()
}

/// Form-encodes a value (everything but unreserved characters escaped).
pub fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub async fn body_json(response: Response<Body>) -> serde_json::Value {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
}

pub fn header<'a>(response: &'a Response<Body>, name: &str) -> Option<&'a str> {
    response.headers().get(name).map(|v| v.to_str().unwrap())
}
