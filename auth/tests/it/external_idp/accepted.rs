//! Tokens an external provider legitimately issues, and how they map to a
//! principal.

use axum::http::StatusCode;
use ecg_auth::{Algorithm, ExternalIssuerConfig, SigningKey, Verifier};
use serde_json::json;

use super::keys::{TestKey, hs256};
use super::{IDP, JwksServer, TempFile, idp_claims, read, upload, verifier, with};
use crate::support::{AUDIENCE, ISSUER, valid_claims};

#[tokio::test]
async fn rs256_es256_and_eddsa_tokens_are_accepted_with_tenant_and_scopes() {
    let keys = [TestKey::rsa_a(), TestKey::ec(), TestKey::ed()];
    let server = JwksServer::start(keys.iter().map(TestKey::jwk).collect()).await;
    let verifier = verifier(server.config());
    for key in &keys {
        let token = key.sign(&idp_claims());
        assert_eq!(
            upload(&verifier, &token).await,
            (StatusCode::OK, "gateway-7 tenant-x".into(), None),
            "{:?}",
            key.alg
        );
        assert_eq!(read(&verifier, &token).await.1, "ecg:write,ecg:read");
        let principal = verifier.verify(&token).await.unwrap();
        assert_eq!(principal.issuer, IDP);
    }
    assert_eq!(server.hits(), 1, "one fetch serves every key of the set");
}

#[tokio::test]
async fn keys_without_alg_get_the_algorithm_of_their_type() {
    let (rsa, ec) = (TestKey::rsa_a(), TestKey::ec());
    let server = JwksServer::start(vec![rsa.jwk_without_alg(), ec.jwk_without_alg()]).await;
    let verifier = verifier(server.config());
    for key in [&rsa, &ec] {
        let status = upload(&verifier, &key.sign(&idp_claims())).await.0;
        assert_eq!(status, StatusCode::OK, "{:?}", key.alg);
    }
}

#[tokio::test]
async fn array_scopes_and_custom_claim_names_are_mapped() {
    let key = TestKey::rsa_a();
    let server = JwksServer::start(vec![key.jwk()]).await;
    let verifier = verifier(ExternalIssuerConfig {
        tenant_claim: "https://ecg-stream.example/tenant".into(),
        scope_claim: "scp".into(),
        tenants: vec!["tenant-y".into()],
        ..server.config()
    });
    let claims = with(idp_claims(), "scope", json!(null));
    let claims = with(claims, "tenant", json!(null));
    let claims = with(claims, "scp", json!(["ecg:read", "ecg:write"]));
    let claims = with(
        claims,
        "https://ecg-stream.example/tenant",
        json!("tenant-y"),
    );
    let token = key.sign(&claims);
    assert_eq!(
        upload(&verifier, &token).await,
        (StatusCode::OK, "gateway-7 tenant-y".into(), None)
    );
    assert_eq!(read(&verifier, &token).await.1, "ecg:read,ecg:write");
}

#[tokio::test]
async fn fixed_tenant_serves_a_provider_without_tenant_claim() {
    let key = TestKey::ec();
    let server = JwksServer::start(vec![key.jwk()]).await;
    let verifier = verifier(ExternalIssuerConfig {
        tenant: Some("hospital-1".into()),
        tenants: Vec::new(),
        ..server.config()
    });
    let claims = with(idp_claims(), "tenant", json!(null));
    assert_eq!(
        upload(&verifier, &key.sign(&claims)).await,
        (StatusCode::OK, "gateway-7 hospital-1".into(), None)
    );
    // A tenant claim cannot move the token to another tenant.
    let claims = with(idp_claims(), "tenant", json!("tenant-x"));
    assert_eq!(
        upload(&verifier, &key.sign(&claims)).await.1,
        "gateway-7 hospital-1"
    );
}

#[tokio::test]
async fn hs256_is_accepted_only_with_the_configured_secret() {
    let secret = b"0123456789abcdef0123456789abcdef-idp";
    // With the trailing newline `echo` would write: not part of the secret.
    let file = TempFile::new("hs256-accepted", &[secret.as_slice(), b"\n"].concat());
    let rsa = TestKey::rsa_a();
    let server = JwksServer::start(vec![rsa.jwk()]).await;
    let verifier = verifier(ExternalIssuerConfig {
        hs256_secret_file: Some(file.0.clone()),
        ..server.config()
    });
    let token = hs256(secret, None, &idp_claims());
    assert_eq!(
        upload(&verifier, &token).await,
        (StatusCode::OK, "gateway-7 tenant-x".into(), None)
    );
    // A kid, even a JWKS one, does not change which key HS256 uses.
    let token = hs256(secret, Some(&rsa.kid), &idp_claims());
    assert_eq!(upload(&verifier, &token).await.0, StatusCode::OK);
    // The provider's asymmetric keys still work alongside.
    assert_eq!(
        upload(&verifier, &rsa.sign(&idp_claims())).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn hs256_only_provider_needs_no_jwks_url() {
    let secret = [7u8; 32];
    let file = TempFile::new("hs256-only", &secret);
    let verifier = verifier(ExternalIssuerConfig {
        jwks_url: None,
        hs256_secret_file: Some(file.0.clone()),
        tenants: vec!["tenant-x".into()],
        ..ExternalIssuerConfig::new(IDP, AUDIENCE, "unused")
    });
    let token = hs256(&secret, None, &idp_claims());
    assert_eq!(upload(&verifier, &token).await.0, StatusCode::OK);
}

#[tokio::test]
async fn ps256_is_accepted_when_the_key_says_so_and_it_is_allowed() {
    let key = TestKey::rsa("rsa_2048_b.pem", "rsa-pss", Algorithm::PS256);
    let server = JwksServer::start(vec![key.jwk()]).await;
    let verifier = verifier(ExternalIssuerConfig {
        algorithms: vec![Algorithm::PS256],
        ..server.config()
    });
    assert_eq!(
        upload(&verifier, &key.sign(&idp_claims())).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn nbf_within_the_clock_skew_leeway_is_accepted() {
    let key = TestKey::ed();
    let server = JwksServer::start(vec![key.jwk()]).await;
    let verifier = verifier(server.config());
    let claims = with(idp_claims(), "nbf", json!(crate::support::now() + 10));
    assert_eq!(
        upload(&verifier, &key.sign(&claims)).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn built_in_tokens_still_work_next_to_an_external_provider() {
    let built_in = SigningKey::generate();
    let server = JwksServer::start(vec![TestKey::rsa_a().jwk()]).await;
    let verifier = Verifier::builder()
        .built_in_jwks(ISSUER, AUDIENCE, built_in.jwks())
        .external(server.config())
        .build()
        .unwrap();
    let principal = verifier
        .verify(&built_in.sign(&valid_claims()))
        .await
        .unwrap();
    assert_eq!(
        (principal.issuer.as_str(), principal.tenant.as_str()),
        (ISSUER, "tenant-a")
    );
    assert_eq!(server.hits(), 0, "built-in tokens never reach the provider");
}
