//! `Verifier::verify` against forged, stale and misdirected tokens.

use ecg_auth::{AuthError, Claims, SigningKey};
use jsonwebtoken::jwk::AlgorithmParameters;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use crate::support::{b64url, b64url_decode, valid_claims, verifier_for};

async fn verify_claims(claims: &Claims) -> Result<ecg_auth::Principal, AuthError> {
    let key = SigningKey::generate();
    verifier_for(&key).verify(&key.sign(claims)).await
}

fn invalid(reason: &str) -> Result<ecg_auth::Principal, AuthError> {
    Err(AuthError::InvalidToken(reason.into()))
}

fn public_x(key: &SigningKey) -> String {
    match &key.jwks().keys[0].algorithm {
        AlgorithmParameters::OctetKeyPair(okp) => okp.x.clone(),
        other => panic!("not an OKP key: {other:?}"),
    }
}

#[tokio::test]
async fn valid_token_yields_its_principal() {
    let principal = verify_claims(&valid_claims()).await.unwrap();
    assert_eq!(principal.client_id, "acme");
    assert_eq!(principal.tenant, "tenant-a");
    assert_eq!(principal.scopes, ["ecg:write", "ecg:read"]);
}

#[tokio::test]
async fn alg_none_token_is_refused() {
    let key = SigningKey::generate();
    let header = format!(r#"{{"alg":"none","typ":"JWT","kid":"{}"}}"#, key.kid());
    let payload = serde_json::to_vec(&valid_claims()).unwrap();
    for signature in ["", "AAAA"] {
        let token = format!("{}.{}.{signature}", b64url(&header), b64url(&payload));
        let result = verifier_for(&key).verify(&token).await;
        assert!(
            matches!(result, Err(AuthError::InvalidToken(_))),
            "{result:?}"
        );
    }
}

#[tokio::test]
async fn eddsa_header_without_signature_is_refused() {
    let key = SigningKey::generate();
    let token = key.sign(&valid_claims());
    let unsigned = format!("{}.", &token[..token.rfind('.').unwrap()]);
    let result = verifier_for(&key).verify(&unsigned).await;
    assert!(
        matches!(result, Err(AuthError::InvalidToken(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn hs256_token_keyed_with_the_public_key_is_refused() {
    let key = SigningKey::generate();
    let x = public_x(&key);
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(key.kid().to_owned());
    // Both the raw public key bytes and its textual form, the usual
    // algorithm-confusion attempts.
    for secret in [b64url_decode(&x), x.into_bytes()] {
        let token =
            jsonwebtoken::encode(&header, &valid_claims(), &EncodingKey::from_secret(&secret))
                .unwrap();
        assert_eq!(
            verifier_for(&key).verify(&token).await,
            invalid("algorithm not allowed")
        );
    }
}

#[tokio::test]
async fn expired_token_is_refused() {
    let claims = Claims {
        exp: crate::support::now() - 60,
        ..valid_claims()
    };
    assert_eq!(verify_claims(&claims).await, invalid("token expired"));
}

#[tokio::test]
async fn token_expired_within_the_clock_skew_leeway_is_accepted() {
    let claims = Claims {
        exp: crate::support::now() - 10,
        ..valid_claims()
    };
    verify_claims(&claims).await.unwrap();
}

#[tokio::test]
async fn token_not_yet_valid_is_refused() {
    let claims = Claims {
        nbf: crate::support::now() + 120,
        ..valid_claims()
    };
    assert_eq!(verify_claims(&claims).await, invalid("token not yet valid"));
}

#[tokio::test]
async fn wrong_issuer_is_refused() {
    let claims = Claims {
        iss: "http://evil.test".into(),
        ..valid_claims()
    };
    assert_eq!(verify_claims(&claims).await, invalid("unknown issuer"));
}

#[tokio::test]
async fn wrong_audience_is_refused() {
    let claims = Claims {
        aud: "another-api".into(),
        ..valid_claims()
    };
    assert_eq!(verify_claims(&claims).await, invalid("wrong audience"));
}

#[tokio::test]
async fn token_signed_by_an_untrusted_key_is_refused_as_unknown_kid() {
    let trusted = SigningKey::generate();
    let token = SigningKey::generate().sign(&valid_claims());
    assert_eq!(
        verifier_for(&trusted).verify(&token).await,
        invalid("unknown key id")
    );
}

#[tokio::test]
async fn token_without_kid_is_refused() {
    let key = SigningKey::generate();
    let token = key.sign(&valid_claims());
    let rest = &token[token.find('.').unwrap()..];
    let header = b64url(r#"{"alg":"EdDSA","typ":"JWT"}"#);
    let result = verifier_for(&key).verify(&format!("{header}{rest}")).await;
    assert_eq!(result, invalid("token has no key id"));
}

#[tokio::test]
async fn tampered_payload_is_refused() {
    let key = SigningKey::generate();
    let token = key.sign(&valid_claims());
    let parts: Vec<&str> = token.split('.').collect();
    let forged = Claims {
        tenant: "tenant-b".into(),
        ..valid_claims()
    };
    let payload = b64url(serde_json::to_vec(&forged).unwrap());
    let tampered = format!("{}.{payload}.{}", parts[0], parts[2]);
    assert_eq!(
        verifier_for(&key).verify(&tampered).await,
        invalid("bad signature")
    );
}

#[tokio::test]
async fn token_missing_a_claim_is_refused() {
    let key = SigningKey::generate();
    let mut claims = serde_json::to_value(valid_claims()).unwrap();
    claims.as_object_mut().unwrap().remove("tenant");
    let result = verifier_for(&key).verify(&key.sign(&claims)).await;
    assert!(
        matches!(result, Err(AuthError::InvalidToken(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn garbage_and_oversized_tokens_are_malformed() {
    let key = SigningKey::generate();
    for token in ["", "abc", "a.b.c", &"x".repeat(10_000)] {
        assert_eq!(
            verifier_for(&key).verify(token).await,
            invalid("malformed token")
        );
    }
}
