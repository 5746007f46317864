//! `Verifier::remote` against a JWKS served by a local axum server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ecg_auth::{AuthError, SigningKey, Verifier, VerifierSettings};
use jsonwebtoken::jwk::JwkSet;

use crate::support::{AUDIENCE, ISSUER, header, valid_claims};

#[derive(Default)]
struct Served {
    /// `None`: answer 500, as an issuer in trouble would.
    jwks: Option<JwkSet>,
    hits: usize,
}

/// A JWKS endpoint whose keys and health a test changes as it goes.
#[derive(Clone)]
struct JwksServer {
    state: Arc<Mutex<Served>>,
    url: String,
}

impl JwksServer {
    async fn start(key: &SigningKey) -> Self {
        let state = Arc::new(Mutex::new(Served {
            jwks: Some(key.jwks()),
            hits: 0,
        }));
        let app = Router::new()
            .route("/jwks.json", get(serve))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        // Bound before spawning: requests queue in the backlog until it runs.
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { state, url }
    }

    fn hits(&self) -> usize {
        self.state.lock().unwrap().hits
    }

    fn serve_keys(&self, keys: &[&SigningKey]) {
        let keys = keys.iter().flat_map(|k| k.jwks().keys).collect();
        self.state.lock().unwrap().jwks = Some(JwkSet { keys });
    }

    fn fail(&self) {
        self.state.lock().unwrap().jwks = None;
    }

    fn verifier(&self, min_refresh: Option<Duration>) -> Verifier {
        let settings = VerifierSettings {
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            jwks_url: self.url.clone(),
        };
        match min_refresh {
            Some(interval) => Verifier::remote_with_refresh_interval(settings, interval),
            None => Verifier::remote(settings),
        }
    }
}

async fn serve(State(state): State<Arc<Mutex<Served>>>) -> Response {
    let mut served = state.lock().unwrap();
    served.hits += 1;
    match &served.jwks {
        Some(jwks) => Json(jwks.clone()).into_response(),
        None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[tokio::test]
async fn keys_are_fetched_lazily_once_and_then_served_from_cache() {
    let key = SigningKey::generate();
    let server = JwksServer::start(&key).await;
    let verifier = server.verifier(None);
    assert_eq!(
        server.hits(),
        0,
        "nothing is fetched before a token needs it"
    );

    let token = key.sign(&valid_claims());
    let principal = verifier.verify(&token).await.unwrap();
    assert_eq!(principal.client_id, "acme");
    verifier.clone().verify(&token).await.unwrap();
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn concurrent_first_requests_share_one_fetch() {
    let key = SigningKey::generate();
    let server = JwksServer::start(&key).await;
    let verifier = server.verifier(None);
    let token = key.sign(&valid_claims());
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (verifier, token) = (verifier.clone(), token.clone());
            tokio::spawn(async move { verifier.verify(&token).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn rotated_key_is_picked_up_when_a_token_names_it() {
    let (old, new) = (SigningKey::generate(), SigningKey::generate());
    let server = JwksServer::start(&old).await;
    let verifier = server.verifier(Some(Duration::ZERO));
    verifier.verify(&old.sign(&valid_claims())).await.unwrap();

    server.serve_keys(&[&new]);
    verifier.verify(&new.sign(&valid_claims())).await.unwrap();
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn unknown_kids_do_not_trigger_more_than_one_fetch_per_interval() {
    let key = SigningKey::generate();
    let server = JwksServer::start(&key).await;
    let verifier = server.verifier(None);
    verifier.verify(&key.sign(&valid_claims())).await.unwrap();

    for _ in 0..20 {
        let forged = SigningKey::generate().sign(&valid_claims());
        let result = verifier.verify(&forged).await;
        assert_eq!(
            result,
            Err(AuthError::InvalidToken("unknown key id".into()))
        );
    }
    assert_eq!(server.hits(), 1, "kid spraying must not reach the issuer");
}

#[tokio::test]
async fn failed_refresh_keeps_the_last_good_keys() {
    let (old, new) = (SigningKey::generate(), SigningKey::generate());
    let server = JwksServer::start(&old).await;
    let verifier = server.verifier(Some(Duration::ZERO));
    let old_token = old.sign(&valid_claims());
    verifier.verify(&old_token).await.unwrap();

    server.fail();
    let result = verifier.verify(&new.sign(&valid_claims())).await;
    assert_eq!(result, Err(AuthError::Unavailable));
    assert_eq!(server.hits(), 2, "the unknown kid did trigger a refresh");
    verifier.verify(&old_token).await.unwrap();
}

#[tokio::test]
async fn unreachable_jwks_makes_protected_routes_answer_503() {
    let key = SigningKey::generate();
    // A port that was just free: nothing listens there any more.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    drop(listener);
    let verifier = Verifier::remote(VerifierSettings {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        jwks_url: url,
    });

    let bearer = format!("Bearer {}", key.sign(&valid_claims()));
    let response =
        crate::extractor::call(crate::extractor::router(verifier), "/upload", Some(&bearer)).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header(&response, "retry-after"), Some("5"));
    assert_eq!(
        crate::support::body_json(response).await["error"],
        "unavailable"
    );
}
