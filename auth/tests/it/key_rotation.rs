//! Rotating the built-in issuer's signing key: the new key signs, the
//! previous one is published and trusted until it is removed.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::FromRef;
use ecg_auth::{
    AuthError, IssuerError, IssuerSettings, KeyError, SigningKey, TokenIssuer, Verifier,
    VerifierSettings, oauth,
};

use crate::support::{AUDIENCE, ISSUER, SECRET, settings, valid_claims};

fn issuer(key: &SigningKey, previous: &[&SigningKey]) -> TokenIssuer {
    TokenIssuer::new(
        key.clone(),
        IssuerSettings {
            previous_keys: previous.iter().map(|k| (*k).clone()).collect(),
            ..settings()
        },
    )
    .unwrap()
}

fn kids(issuer: &TokenIssuer) -> Vec<String> {
    issuer
        .jwks()
        .keys
        .iter()
        .map(|k| k.common.key_id.clone().unwrap())
        .collect()
}

/// The kid in a token's header.
fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

#[tokio::test]
async fn during_rotation_the_new_key_signs_and_both_verify() {
    let (old, new) = (SigningKey::generate(), SigningKey::generate());
    let before = issuer(&old, &[]);
    let old_token = before.issue("acme", SECRET, None).unwrap().access_token;
    assert_eq!(kid_of(&old_token), old.kid());

    let rotating = issuer(&new, &[&old]);
    assert_eq!(kids(&rotating), [new.kid(), old.kid()]);
    let new_token = rotating.issue("acme", SECRET, None).unwrap().access_token;
    assert_eq!(kid_of(&new_token), new.kid(), "the new key signs");
    let verifier = rotating.verifier();
    verifier.verify(&old_token).await.unwrap();
    verifier.verify(&new_token).await.unwrap();

    // Rotation done: the old key is gone, and so are its tokens.
    let after = issuer(&new, &[]);
    assert_eq!(kids(&after), [new.kid()]);
    let verifier = after.verifier();
    assert_eq!(
        verifier.verify(&old_token).await,
        Err(AuthError::InvalidToken("unknown key id".into()))
    );
    verifier.verify(&new_token).await.unwrap();
}

/// The issuer a test JWKS server currently publishes.
#[derive(Clone)]
struct Current(Arc<RwLock<Arc<TokenIssuer>>>);

impl FromRef<Current> for Arc<TokenIssuer> {
    fn from_ref(current: &Current) -> Self {
        current.0.read().unwrap().clone()
    }
}

#[tokio::test]
async fn a_service_fetching_the_jwks_drops_the_old_key_at_its_next_refresh() {
    let (old, new) = (SigningKey::generate(), SigningKey::generate());
    let current = Current(Arc::new(RwLock::new(Arc::new(issuer(&new, &[&old])))));
    let app = oauth::routes().with_state(current.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jwks_url = format!(
        "http://{}{}",
        listener.local_addr().unwrap(),
        oauth::JWKS_PATH
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    // As ingest verifies: the built-in issuer's JWKS over HTTP.
    let verifier = Verifier::builder()
        .built_in(VerifierSettings {
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            jwks_url,
        })
        .refresh_interval(Duration::from_millis(200))
        .build()
        .unwrap();
    let old_token = old.sign(&valid_claims());
    let new_token = new.sign(&valid_claims());
    verifier.verify(&old_token).await.unwrap();
    verifier.verify(&new_token).await.unwrap();

    // query-api restarts without the previous key.
    *current.0.write().unwrap() = Arc::new(issuer(&new, &[]));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match verifier.verify(&old_token).await {
            Err(AuthError::InvalidToken(reason)) => {
                assert_eq!(reason, "unknown key id");
                break;
            }
            Ok(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => panic!("the old key still verifies after 5 s: {other:?}"),
        }
    }
    verifier.verify(&new_token).await.unwrap();
}

#[test]
fn a_previous_key_must_exist_and_differ_from_the_others() {
    let missing = std::env::temp_dir().join(format!("ecg-auth-{}-no-such-key", std::process::id()));
    assert!(matches!(
        SigningKey::load(&missing),
        Err(KeyError::Read { .. })
    ));
    assert!(!missing.exists(), "load never generates a key");

    let key = SigningKey::generate();
    for previous in [vec![key.clone()], {
        let other = SigningKey::generate();
        vec![other.clone(), other]
    }] {
        let settings = IssuerSettings {
            previous_keys: previous,
            ..settings()
        };
        let error = TokenIssuer::new(key.clone(), settings).unwrap_err();
        assert!(matches!(error, IssuerError::DuplicateKey(_)), "{error}");
    }
}
