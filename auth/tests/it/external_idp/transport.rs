//! How a provider's JWKS is fetched: https only (plain http only with the
//! development flag), size-capped, refreshed on a schedule so removed keys
//! stop verifying.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Redirect;
use axum::routing::get;
use axum_server::tls_rustls::RustlsConfig;
use ecg_auth::{AuthError, ExternalIssuerConfig, SigningKey, Verifier, VerifierError};
use serde_json::{Value, json};

use super::keys::TestKey;
use super::{IDP, JwksServer, TempFile, idp_claims, upload, verifier, verifier_with_refresh};
use crate::support::AUDIENCE;

/// Serves `app` over TLS with a certificate for 127.0.0.1 made here;
/// returns the base URL and the certificate, to trust it as a CA.
async fn https_server(app: Router) -> (String, String) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert = certified.cert.pem();
    let tls = RustlsConfig::from_pem(
        cert.clone().into_bytes(),
        certified.signing_key.serialize_pem().into_bytes(),
    )
    .await
    .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let server = axum_server::from_tcp_rustls(listener, tls).unwrap();
    tokio::spawn(async move { server.serve(app.into_make_service()).await.unwrap() });
    (format!("https://{addr}"), cert)
}

fn https_config(url: String, ca: Option<&TempFile>) -> ExternalIssuerConfig {
    ExternalIssuerConfig {
        tenants: vec!["tenant-x".into()],
        jwks_ca_file: ca.map(|f| f.0.clone()),
        ..ExternalIssuerConfig::new(IDP, AUDIENCE, url)
    }
}

#[tokio::test]
async fn plain_http_jwks_urls_are_refused_unless_allowed_for_development() {
    let server = JwksServer::start(vec![TestKey::ed().jwk()]).await;
    let result = Verifier::builder()
        .external(ExternalIssuerConfig {
            allow_insecure_http: false,
            ..server.config()
        })
        .build();
    match result {
        Err(VerifierError::Invalid { reason, .. }) => assert!(
            reason.starts_with(&format!("jwks_url {} is not https", server.url))
                && reason.contains("allow_insecure_http = true"),
            "{reason}"
        ),
        other => panic!("expected Invalid, got {other:?}"),
    }
    // With the flag (what `server.config()` sets), the same URL works.
    let verifier = verifier(server.config());
    let token = TestKey::ed().sign(&idp_claims());
    assert_eq!(upload(&verifier, &token).await.0, StatusCode::OK);
}

#[tokio::test]
async fn https_jwks_is_trusted_through_the_configured_ca_only() {
    let key = TestKey::ed();
    let jwks = json!({ "keys": [key.jwk()] });
    let app = Router::new().route("/certs", get(move || async move { axum::Json(jwks) }));
    let (base, cert) = https_server(app).await;
    let url = format!("{base}/certs");
    let token = key.sign(&idp_claims());

    // The system roots do not know the test's certificate.
    let untrusting = verifier(https_config(url.clone(), None));
    assert_eq!(untrusting.verify(&token).await, Err(AuthError::Unavailable));

    let ca = TempFile::new("jwks-ca.pem", cert.as_bytes());
    let trusting = verifier(https_config(url, Some(&ca)));
    assert_eq!(
        upload(&trusting, &token).await,
        (StatusCode::OK, "gateway-7 tenant-x".into(), None)
    );

    let junk = TempFile::new("jwks-ca-junk.pem", b"not a certificate");
    let result = Verifier::builder()
        .external(https_config(
            "https://127.0.0.1:1/certs".into(),
            Some(&junk),
        ))
        .build();
    assert!(
        matches!(&result, Err(VerifierError::Invalid { reason, .. }) if reason.contains("jwks_ca_file")),
        "{result:?}"
    );
}

#[tokio::test]
async fn an_https_jwks_redirecting_to_plain_http_is_not_followed() {
    let key = TestKey::ed();
    let plain = JwksServer::start(vec![key.jwk()]).await;
    let target = plain.url.clone();
    let app = Router::new().route(
        "/certs",
        get(move || async move { Redirect::temporary(&target) }),
    );
    let (base, cert) = https_server(app).await;
    let ca = TempFile::new("jwks-ca-redirect.pem", cert.as_bytes());
    let verifier = verifier(https_config(format!("{base}/certs"), Some(&ca)));
    let (status, _, _) = upload(&verifier, &key.sign(&idp_claims())).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(plain.hits(), 0, "the http URL was never fetched");
}

#[tokio::test]
async fn an_oversized_jwks_is_refused_and_the_last_good_set_kept() {
    let (ed, ec) = (TestKey::ed(), TestKey::ec());
    let server = JwksServer::start(vec![ed.jwk()]).await;
    let config = ExternalIssuerConfig {
        jwks_max_bytes: 4096,
        ..server.config()
    };
    let verifier = verifier_with_refresh(config, Duration::ZERO);
    let ed_token = ed.sign(&idp_claims());
    verifier.verify(&ed_token).await.unwrap();

    // The provider adds a key, but the response has grown past the limit.
    server.serve_json(json!({
        "keys": [ed.jwk(), ec.jwk()],
        "padding": "x".repeat(5000),
    }));
    let ec_token = ec.sign(&idp_claims());
    assert_eq!(
        verifier.verify(&ec_token).await,
        Err(AuthError::Unavailable)
    );
    assert_eq!(server.hits(), 2);
    verifier.verify(&ed_token).await.unwrap();

    // Under the limit again: the new key is taken.
    server.serve(vec![ed.jwk(), ec.jwk()]);
    verifier.verify(&ec_token).await.unwrap();
}

/// A JWKS sent in pieces without `Content-Length`.
fn chunked(body: Vec<u8>) -> Body {
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
        body.chunks(1000).map(|c| Ok(c.to_vec())).collect();
    Body::from_stream(futures::stream::iter(pieces))
}

#[tokio::test]
async fn a_jwks_without_content_length_is_cut_off_at_the_limit() {
    let key = TestKey::ed();
    let small = serde_json::to_vec(&json!({ "keys": [key.jwk()] })).unwrap();
    let big = serde_json::to_vec(&json!({
        "keys": [key.jwk()],
        "padding": "x".repeat(20_000),
    }))
    .unwrap();
    let app = Router::new()
        .route("/small", get(move || async move { chunked(small) }))
        .route("/big", get(move || async move { chunked(big) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let token = key.sign(&idp_claims());
    let config = |path: &str| ExternalIssuerConfig {
        jwks_max_bytes: 4096,
        allow_insecure_http: true,
        tenants: vec!["tenant-x".into()],
        ..ExternalIssuerConfig::new(IDP, AUDIENCE, format!("{base}{path}"))
    };
    verifier(config("/small")).verify(&token).await.unwrap();
    assert_eq!(
        verifier(config("/big")).verify(&token).await,
        Err(AuthError::Unavailable)
    );
}

#[tokio::test]
async fn a_jwks_of_more_than_100_keys_is_refused() {
    let keys: Vec<SigningKey> = (0..101).map(|_| SigningKey::generate()).collect();
    let jwks: Vec<Value> = keys
        .iter()
        .map(|k| serde_json::to_value(k.public_jwk()).unwrap())
        .collect();
    let server = JwksServer::start(jwks).await;
    let verifier = verifier(server.config());
    let token = keys[0].sign(&idp_claims());
    assert_eq!(verifier.verify(&token).await, Err(AuthError::Unavailable));
}

#[tokio::test]
async fn a_key_the_provider_removes_stops_verifying_after_the_scheduled_refresh() {
    let (ed, ec) = (TestKey::ed(), TestKey::ec());
    let server = JwksServer::start(vec![ed.jwk(), ec.jwk()]).await;
    // Refreshes prompted by unknown kids stay at the default 10 s: only the
    // schedule can bring the change.
    let verifier = verifier(ExternalIssuerConfig {
        jwks_refresh_s: 1,
        ..server.config()
    });
    let token = ed.sign(&idp_claims());
    // Verified, and so remembered by the verifier's token cache.
    verifier.verify(&token).await.unwrap();
    verifier.verify(&token).await.unwrap();
    assert_eq!(server.hits(), 1);

    server.serve(vec![ec.jwk()]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match verifier.verify(&token).await {
            Err(AuthError::InvalidToken(reason)) => {
                assert_eq!(reason, "unknown key id");
                break;
            }
            Ok(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => panic!("the removed key still verifies after 5 s: {other:?}"),
        }
    }
    assert!(server.hits() >= 2);
    verifier.verify(&ec.sign(&idp_claims())).await.unwrap();

    // The schedule ends with the verifier.
    drop(verifier);
    let hits = server.hits();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(server.hits(), hits, "a dropped verifier still fetches");
}
