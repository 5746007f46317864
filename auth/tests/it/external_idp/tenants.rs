//! Tenants are one namespace across issuers: each issuer may act only for
//! the tenants configured for it.

use axum::http::StatusCode;
use ecg_auth::{AuthError, Claims, ExternalIssuerConfig, SigningKey, Verifier};
use serde_json::json;

use super::keys::TestKey;
use super::{JwksServer, assert_refused, idp_claims, upload, verifier, with};
use crate::support::{AUDIENCE, ISSUER, issuer_with, valid_claims};

#[tokio::test]
async fn a_provider_may_name_only_the_tenants_configured_for_it() {
    let key = TestKey::ed();
    let server = JwksServer::start(vec![key.jwk()]).await;
    let verifier = verifier(ExternalIssuerConfig {
        tenants: vec!["tenant-x".into(), "tenant-y".into()],
        ..server.config()
    });
    for tenant in ["tenant-x", "tenant-y"] {
        let claims = with(idp_claims(), "tenant", json!(tenant));
        assert_eq!(
            upload(&verifier, &key.sign(&claims)).await,
            (StatusCode::OK, format!("gateway-7 {tenant}"), None)
        );
    }
    // "tenant-a" is a built-in client's tenant; the provider may not
    // speak for it, nor for any other tenant it was not given.
    for tenant in ["tenant-a", "tenant-z"] {
        let claims = with(idp_claims(), "tenant", json!(tenant));
        assert_refused(
            &verifier,
            &key.sign(&claims),
            &format!("tenant {tenant} is not allowed for this issuer"),
        )
        .await;
    }
}

#[test]
fn a_provider_must_list_its_tenants_or_fix_one() {
    let base = ExternalIssuerConfig::new(
        "https://sso.example.test/realms/ecg",
        AUDIENCE,
        "https://sso.example.test/certs",
    );
    let build = |config: ExternalIssuerConfig| {
        Verifier::builder()
            .external(config)
            .build()
            .map(drop)
            .map_err(|e| e.to_string())
    };
    let error = build(base.clone()).unwrap_err();
    assert!(
        error.contains("tenants must list the tenants this provider may name in tenant"),
        "{error}"
    );
    let error = build(ExternalIssuerConfig {
        tenant: Some("hospital-1".into()),
        tenants: vec!["hospital-2".into()],
        ..base.clone()
    })
    .unwrap_err();
    assert!(error.contains("not both"), "{error}");
    let error = build(ExternalIssuerConfig {
        tenants: vec!["two words".into()],
        ..base.clone()
    })
    .unwrap_err();
    assert!(error.contains("without spaces"), "{error}");
    build(ExternalIssuerConfig {
        tenant: Some("hospital-1".into()),
        ..base.clone()
    })
    .unwrap();
    build(ExternalIssuerConfig {
        tenants: vec!["hospital-1".into()],
        ..base
    })
    .unwrap();
}

#[tokio::test]
async fn built_in_tokens_may_name_only_the_clients_tenants() {
    let key = SigningKey::generate();
    // Signed with the issuer's own key, for a tenant no client has (a
    // client removed from the config, say).
    let foreign = key.sign(&Claims {
        tenant: "tenant-gone".into(),
        ..valid_claims()
    });
    let refused = Err(AuthError::InvalidToken(
        "tenant tenant-gone is not allowed for this issuer".into(),
    ));

    // query-api: the issuer's own verifier knows its clients' tenants.
    let issuer = issuer_with(key.clone());
    assert_eq!(
        issuer.tenants().into_iter().collect::<Vec<_>>(),
        ["tenant-a", "tenant-b"]
    );
    assert_eq!(issuer.verifier().verify(&foreign).await, refused);
    issuer
        .verifier()
        .verify(&key.sign(&valid_claims()))
        .await
        .unwrap();

    // The same through the builder, as query-api builds its verifier.
    let verifier = Verifier::builder()
        .built_in_jwks(ISSUER, AUDIENCE, issuer.jwks())
        .built_in_tenants(issuer.tenants())
        .build()
        .unwrap();
    assert_eq!(verifier.verify(&foreign).await, refused);

    // ingest does not know the clients: any tenant our key signed.
    let verifier = Verifier::builder()
        .built_in_jwks(ISSUER, AUDIENCE, issuer.jwks())
        .build()
        .unwrap();
    assert_eq!(
        verifier.verify(&foreign).await.unwrap().tenant,
        "tenant-gone"
    );
}
