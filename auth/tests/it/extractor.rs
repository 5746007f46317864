//! `Authorized<S>` in a real router, called in-process.

use axum::Router;
use axum::body::Body;
use axum::extract::FromRef;
use axum::http::{Request, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use ecg_auth::{AuthError, Authorized, Claims, EcgRead, EcgWrite, SigningKey, Verifier};
use tower::ServiceExt;

use crate::support::{SECRET, body_json, issuer, valid_claims, verifier_for};

/// A composite state, as the services have: the extractor finds the
/// verifier through `FromRef`.
#[derive(Clone, FromRef)]
struct AppState {
    verifier: Verifier,
    name: &'static str,
}

async fn upload(auth: Authorized<EcgWrite>) -> String {
    format!("{} {}", auth.client_id, auth.principal().tenant)
}

async fn read(auth: Authorized<EcgRead>) -> String {
    auth.into_principal().scopes.join(",")
}

pub fn router(verifier: Verifier) -> Router {
    Router::new()
        .route("/upload", post(upload))
        .route("/read", get(read))
        .with_state(AppState {
            verifier,
            name: "test",
        })
}

pub async fn call(
    router: Router,
    path: &str,
    authorization: Option<&str>,
) -> axum::response::Response {
    let method = if path == "/upload" { "POST" } else { "GET" };
    let mut request = Request::builder().method(method).uri(path);
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    router
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

async fn text(response: axum::response::Response) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn valid_token_with_scope_reaches_the_handler_as_its_principal() {
    let issuer = issuer();
    let token = issuer.issue("acme", SECRET, None).unwrap().access_token;
    let bearer = format!("Bearer {token}");
    let response = call(router(issuer.verifier()), "/upload", Some(&bearer)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(text(response).await, "acme tenant-a");

    // The scheme is case-insensitive (RFC 7235).
    let lower = format!("bearer {token}");
    let response = call(router(issuer.verifier()), "/read", Some(&lower)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(text(response).await, "ecg:write,ecg:read");
}

#[tokio::test]
async fn missing_authorization_is_401_with_bearer_challenge() {
    let response = call(
        router(verifier_for(&SigningKey::generate())),
        "/upload",
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()[header::WWW_AUTHENTICATE],
        r#"Bearer realm="ecg-stream""#
    );
    assert_eq!(
        body_json(response).await,
        serde_json::json!({"error": "unauthorized", "message": "missing bearer token"})
    );
}

#[tokio::test]
async fn malformed_authorization_is_treated_as_missing() {
    for value in [
        "Basic YWNtZTpzZWNyZXQ=",
        "Bearer",
        "Bearer ",
        "Bearer a b",
        "token",
    ] {
        let response = call(
            router(verifier_for(&SigningKey::generate())),
            "/upload",
            Some(value),
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{value}");
        assert_eq!(
            body_json(response).await["error"],
            "unauthorized",
            "{value}"
        );
    }
}

#[tokio::test]
async fn invalid_token_is_401_naming_the_failed_check_without_echoing_the_token() {
    let key = SigningKey::generate();
    let expired = Claims {
        exp: crate::support::now() - 120,
        ..valid_claims()
    };
    let token = key.sign(&expired);
    let bearer = format!("Bearer {token}");
    let response = call(router(verifier_for(&key)), "/upload", Some(&bearer)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()[header::WWW_AUTHENTICATE],
        r#"Bearer realm="ecg-stream", error="invalid_token", error_description="token expired""#
    );
    let body = body_json(response).await;
    assert_eq!(
        body,
        serde_json::json!({"error": "invalid_token", "message": "token expired"})
    );
    assert!(!body.to_string().contains(&token));
}

#[tokio::test]
async fn token_without_the_required_scope_is_403_with_scope_challenge() {
    let issuer = issuer();
    let token = issuer.issue("reader", SECRET, None).unwrap().access_token;
    let bearer = format!("Bearer {token}");
    let response = call(router(issuer.verifier()), "/upload", Some(&bearer)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response.headers()[header::WWW_AUTHENTICATE],
        r#"Bearer realm="ecg-stream", error="insufficient_scope", scope="ecg:write""#
    );
    assert_eq!(
        body_json(response).await,
        serde_json::json!({
            "error": "insufficient_scope",
            "message": "this endpoint requires scope ecg:write"
        })
    );
    // The same token is fine where only ecg:read is needed.
    let response = call(router(issuer.verifier()), "/read", Some(&bearer)).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn unavailable_keys_are_503_with_retry_after() {
    let response = AuthError::Unavailable.into_response();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()[header::RETRY_AFTER], "5");
    assert!(response.headers().get(header::WWW_AUTHENTICATE).is_none());
    assert_eq!(body_json(response).await["error"], "unavailable");
}

#[tokio::test]
async fn challenge_header_stays_a_valid_quoted_string() {
    let response =
        AuthError::InvalidToken("bad \"quote\" \\ and\nnewline é".into()).into_response();
    let challenge = response.headers()[header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap();
    assert_eq!(
        challenge,
        r#"Bearer realm="ecg-stream", error="invalid_token", error_description="bad ?quote? ? and?newline ?""#
    );
}
