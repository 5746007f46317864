//! Every known way to get a forged, stale or misdirected token past the
//! verifier of an external provider; each must be refused with 401 (or 403
//! for a missing scope) and a `WWW-Authenticate` challenge naming the check.

use std::time::Duration;

use axum::http::StatusCode;
use ecg_auth::{Algorithm, ExternalIssuerConfig, SigningKey};
use jsonwebtoken::Header;
use jsonwebtoken::jwk::Jwk;
use serde_json::{Value, json};

use super::keys::{TestKey, fixture, hs256, pem_der};
use super::{
    JwksServer, TempFile, assert_refused, idp_claims, upload, verifier, verifier_with_refresh, with,
};
use crate::support::{ISSUER, b64url, now};

/// The provider publishes RSA "a", the EC key and the Ed25519 key.
async fn provider() -> (JwksServer, [TestKey; 3]) {
    let keys = [TestKey::rsa_a(), TestKey::ec(), TestKey::ed()];
    let server = JwksServer::start(keys.iter().map(TestKey::jwk).collect()).await;
    (server, keys)
}

#[tokio::test]
async fn alg_none_is_refused() {
    let (server, [rsa, ..]) = provider().await;
    let verifier = verifier(server.config());
    let payload = b64url(serde_json::to_vec(&idp_claims()).unwrap());
    let real_signature = rsa
        .sign(&idp_claims())
        .rsplit('.')
        .next()
        .unwrap()
        .to_owned();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = b64url(format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"rsa-a"}}"#));
        for signature in ["", real_signature.as_str()] {
            let token = format!("{header}.{payload}.{signature}");
            assert_refused(&verifier, &token, "algorithm not allowed").await;
        }
    }
}

/// The classic algorithm confusion: HMAC keyed with the bytes of the RSA
/// public key, which an attacker can download.
fn public_key_forms(rsa: &TestKey) -> Vec<Vec<u8>> {
    let spki = fixture("rsa_2048_a.pub.pem");
    let pkcs1 = fixture("rsa_2048_a.pkcs1.pub.pem");
    vec![
        pem_der(&spki),
        pem_der(&pkcs1),
        spki.clone().into_bytes(),
        pkcs1.into_bytes(),
        spki.trim_end().as_bytes().to_vec(),
        rsa.jwk().to_string().into_bytes(),
        rsa.jwk()["n"].as_str().unwrap().as_bytes().to_vec(),
    ]
}

#[tokio::test]
async fn hs256_keyed_with_the_rsa_public_key_is_refused() {
    let (server, [rsa, ..]) = provider().await;
    let verifier = verifier(server.config());
    for secret in public_key_forms(&rsa) {
        for kid in [Some(rsa.kid.as_str()), None] {
            let token = hs256(&secret, kid, &idp_claims());
            assert_refused(&verifier, &token, "algorithm not allowed").await;
        }
    }
}

#[tokio::test]
async fn hs256_keyed_with_the_rsa_public_key_fails_even_where_hs256_is_configured() {
    let file = TempFile::new("hs256-confusion", &[9u8; 48]);
    let (server, [rsa, ..]) = provider().await;
    let verifier = verifier(ExternalIssuerConfig {
        hs256_secret_file: Some(file.0.clone()),
        ..server.config()
    });
    for secret in public_key_forms(&rsa) {
        let token = hs256(&secret, Some(&rsa.kid), &idp_claims());
        assert_refused(&verifier, &token, "bad signature").await;
    }
}

#[tokio::test]
async fn hs256_is_refused_when_not_configured() {
    let (server, _) = provider().await;
    let verifier = verifier(server.config());
    let token = hs256(&[7u8; 32], None, &idp_claims());
    assert_refused(&verifier, &token, "algorithm not allowed").await;
}

#[tokio::test]
async fn symmetric_key_published_in_the_jwks_is_never_used() {
    let secret = [5u8; 32];
    let oct =
        json!({"kty": "oct", "kid": "sym", "alg": "HS256", "use": "sig", "k": b64url(secret)});
    let server = JwksServer::start(vec![oct, TestKey::rsa_a().jwk()]).await;
    let token = hs256(&secret, Some("sym"), &idp_claims());
    assert_refused(&verifier(server.config()), &token, "algorithm not allowed").await;

    let file = TempFile::new("hs256-oct", &[6u8; 32]);
    let verifier = verifier(ExternalIssuerConfig {
        hs256_secret_file: Some(file.0.clone()),
        ..server.config()
    });
    assert_refused(&verifier, &token, "bad signature").await;
}

#[tokio::test]
async fn expired_token_is_refused() {
    let (server, keys) = provider().await;
    let verifier = verifier(server.config());
    let claims = with(idp_claims(), "exp", json!(now() - 120));
    for key in &keys {
        assert_refused(&verifier, &key.sign(&claims), "token expired").await;
    }
}

#[tokio::test]
async fn token_not_yet_valid_is_refused() {
    let (server, keys) = provider().await;
    let verifier = verifier(server.config());
    let claims = with(idp_claims(), "nbf", json!(now() + 120));
    for key in &keys {
        assert_refused(&verifier, &key.sign(&claims), "token not yet valid").await;
    }
}

#[tokio::test]
async fn wrong_or_missing_issuer_is_refused() {
    let (server, [rsa, ..]) = provider().await;
    let verifier = verifier(server.config());
    let evil = with(
        idp_claims(),
        "iss",
        json!("https://evil.example.test/realms/ecg"),
    );
    assert_refused(&verifier, &rsa.sign(&evil), "unknown issuer").await;
    // A prefix of the configured issuer is another issuer.
    let prefix = with(
        idp_claims(),
        "iss",
        json!("https://sso.example.test/realms"),
    );
    assert_refused(&verifier, &rsa.sign(&prefix), "unknown issuer").await;
    let missing = with(idp_claims(), "iss", Value::Null);
    assert_refused(&verifier, &rsa.sign(&missing), "missing claim iss").await;
    let array = with(idp_claims(), "iss", json!([super::IDP]));
    assert_refused(&verifier, &rsa.sign(&array), "malformed claim iss").await;
    assert_eq!(server.hits(), 0, "no key was fetched for unrouted tokens");
}

#[tokio::test]
async fn token_claiming_the_built_in_issuer_cannot_use_the_providers_keys() {
    let (server, [rsa, _, ed]) = provider().await;
    let verifier = verifier(server.config());
    let claims = with(idp_claims(), "iss", json!(ISSUER));
    // The built-in issuer allows EdDSA only, and only its own keys.
    assert_refused(&verifier, &rsa.sign(&claims), "algorithm not allowed").await;
    assert_refused(&verifier, &ed.sign(&claims), "unknown key id").await;
}

#[tokio::test]
async fn wrong_audience_is_refused() {
    let (server, [rsa, ..]) = provider().await;
    let verifier = verifier(server.config());
    for aud in [
        json!("another-api"),
        json!(["another-api", "account"]),
        json!([]),
    ] {
        let claims = with(idp_claims(), "aud", aud);
        assert_refused(&verifier, &rsa.sign(&claims), "wrong audience").await;
    }
    let claims = with(idp_claims(), "aud", Value::Null);
    assert_refused(&verifier, &rsa.sign(&claims), "missing claim aud").await;
}

#[tokio::test]
async fn missing_scope_is_403_with_scope_challenge() {
    let (server, [_, ec, _]) = provider().await;
    let verifier = verifier(server.config());
    let challenge = r#"Bearer realm="ecg-stream", error="insufficient_scope", scope="ecg:write""#;
    for scope in [
        json!("ecg:read"),
        json!(["ecg:read"]),
        Value::Null,
        json!(""),
    ] {
        let claims = with(idp_claims(), "scope", scope.clone());
        let (status, _, www) = upload(&verifier, &ec.sign(&claims)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{scope}");
        assert_eq!(www.as_deref(), Some(challenge), "{scope}");
    }
    // A scope claim of the wrong shape is a bad token, not "no scopes".
    for scope in [
        json!(42),
        json!(["ecg:write", 1]),
        json!({"ecg:write": true}),
    ] {
        let claims = with(idp_claims(), "scope", scope);
        assert_refused(&verifier, &ec.sign(&claims), "malformed claim scope").await;
    }
}

#[tokio::test]
async fn missing_or_malformed_tenant_and_subject_are_refused() {
    let (server, [rsa, ..]) = provider().await;
    let verifier = verifier(server.config());
    let claims = with(idp_claims(), "tenant", Value::Null);
    assert_refused(&verifier, &rsa.sign(&claims), "missing claim tenant").await;
    for tenant in [json!(""), json!("tenant x"), json!(7), json!(["tenant-x"])] {
        let claims = with(idp_claims(), "tenant", tenant);
        assert_refused(&verifier, &rsa.sign(&claims), "malformed claim tenant").await;
    }
    let claims = with(idp_claims(), "sub", Value::Null);
    assert_refused(&verifier, &rsa.sign(&claims), "missing claim sub").await;
}

#[tokio::test]
async fn unknown_kid_is_refused_after_at_most_one_refetch() {
    let (server, [rsa, ..]) = provider().await;
    let verifier = verifier(server.config());
    assert_eq!(
        upload(&verifier, &rsa.sign(&idp_claims())).await.0,
        StatusCode::OK
    );
    for i in 0..20 {
        let token = rsa.sign_as(Algorithm::RS256, &format!("made-up-{i}"), &idp_claims());
        assert_refused(&verifier, &token, "unknown key id").await;
    }
    assert_eq!(server.hits(), 1, "kid spraying must not reach the provider");
}

#[tokio::test]
async fn rotated_key_is_picked_up_by_one_refetch_on_its_unknown_kid() {
    let (old, new) = (TestKey::rsa_a(), TestKey::rsa_b());
    let server = JwksServer::start(vec![old.jwk()]).await;
    let verifier = verifier_with_refresh(server.config(), Duration::ZERO);
    assert_eq!(
        upload(&verifier, &old.sign(&idp_claims())).await.0,
        StatusCode::OK
    );
    assert_eq!(
        upload(&verifier, &new.sign(&idp_claims())).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        server.hits(),
        2,
        "the unknown kid triggered exactly one refetch"
    );

    server.serve(vec![new.jwk()]);
    assert_eq!(
        upload(&verifier, &new.sign(&idp_claims())).await.0,
        StatusCode::OK
    );
    assert_eq!(server.hits(), 3);
    // The retired key is gone with the set it belonged to.
    assert_refused(&verifier, &old.sign(&idp_claims()), "unknown key id").await;
}

#[tokio::test]
async fn tampered_payload_is_refused() {
    let (server, keys) = provider().await;
    let verifier = verifier(server.config());
    for key in &keys {
        let token = key.sign(&idp_claims());
        let parts: Vec<&str> = token.split('.').collect();
        let forged = with(idp_claims(), "tenant", json!("tenant-victim"));
        let payload = b64url(serde_json::to_vec(&forged).unwrap());
        let tampered = format!("{}.{payload}.{}", parts[0], parts[2]);
        assert_refused(&verifier, &tampered, "bad signature").await;
    }
}

#[tokio::test]
async fn header_alg_other_than_the_keys_is_refused() {
    let (server, [rsa, ec, ed]) = provider().await;
    let verifier = verifier(server.config());
    // Validly signed by the RSA key, but naming the EC or Ed25519 key.
    for kid in [&ec.kid, &ed.kid] {
        let token = rsa.sign_as(Algorithm::RS256, kid, &idp_claims());
        assert_refused(&verifier, &token, "algorithm not allowed").await;
    }
    let token = ec.sign_as(Algorithm::ES256, &rsa.kid, &idp_claims());
    assert_refused(&verifier, &token, "algorithm not allowed").await;
    // Same key, other RSA padding: the JWK says RS256, so PS256 is refused
    // even when the provider allows PS256 for other keys.
    let verifier = super::verifier(ExternalIssuerConfig {
        algorithms: vec![Algorithm::RS256, Algorithm::PS256],
        ..server.config()
    });
    let token = rsa.sign_as(Algorithm::PS256, &rsa.kid, &idp_claims());
    assert_refused(&verifier, &token, "algorithm not allowed").await;
}

#[tokio::test]
async fn algorithm_outside_the_configured_list_is_refused() {
    let (server, [rsa, ec, ed]) = provider().await;
    let verifier = verifier(ExternalIssuerConfig {
        algorithms: vec![Algorithm::RS256],
        ..server.config()
    });
    for key in [&ec, &ed] {
        assert_refused(&verifier, &key.sign(&idp_claims()), "algorithm not allowed").await;
    }
    assert_eq!(
        upload(&verifier, &rsa.sign(&idp_claims())).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn token_signed_by_an_unrelated_key_with_a_known_kid_is_refused() {
    let (server, [rsa, ..]) = provider().await;
    let verifier = verifier(server.config());
    let token = TestKey::rsa_b().sign_as(Algorithm::RS256, &rsa.kid, &idp_claims());
    assert_refused(&verifier, &token, "bad signature").await;
    // Also for Ed25519: a fresh key claiming the provider's kid.
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("ed-1".into());
    let other = SigningKey::generate().sign(&idp_claims());
    let forged = format!(
        "{}.{}",
        b64url(serde_json::to_vec(&header).unwrap()),
        other.split_once('.').unwrap().1
    );
    assert_refused(&verifier, &forged, "bad signature").await;
}

#[tokio::test]
async fn rsa_1024_key_in_the_jwks_is_ignored() {
    let weak = TestKey::rsa("rsa_1024.pem", "weak", Algorithm::RS256);
    let strong = TestKey::rsa_a();
    let server = JwksServer::start(vec![weak.jwk(), strong.jwk()]).await;
    let verifier = verifier(server.config());
    assert_refused(&verifier, &weak.sign(&idp_claims()), "unknown key id").await;
    assert_eq!(
        upload(&verifier, &strong.sign(&idp_claims())).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn keys_supplied_in_the_token_header_are_ignored() {
    let (server, _) = provider().await;
    let attacker = TestKey::rsa_b();
    let attacker_jwks = JwksServer::start(vec![attacker.jwk()]).await;
    let verifier = verifier(server.config());
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(attacker.kid.clone());
    header.jku = Some(attacker_jwks.url.clone());
    header.jwk = Some(serde_json::from_value::<Jwk>(attacker.jwk()).unwrap());
    let token = jsonwebtoken::encode(&header, &idp_claims(), &attacker.encoding).unwrap();
    assert_refused(&verifier, &token, "unknown key id").await;
    assert_eq!(attacker_jwks.hits(), 0);
}
