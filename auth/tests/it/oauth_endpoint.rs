//! `POST /oauth/token` and `GET /.well-known/jwks.json` through `oauth::routes`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use ecg_auth::{SigningKey, TokenIssuer, TokenResponse, oauth};
use tower::ServiceExt;

use crate::support::{SECRET, body_json, form_encode, header, issuer, issuer_with};

const FORM: &str = "application/x-www-form-urlencoded";

fn app(issuer: Arc<TokenIssuer>) -> Router {
    oauth::routes().with_state(issuer)
}

async fn post_token(
    issuer: &Arc<TokenIssuer>,
    content_type: Option<&str>,
    authorization: Option<&str>,
    body: impl Into<Body>,
) -> Response {
    let mut request = Request::post(oauth::TOKEN_PATH);
    if let Some(value) = content_type {
        request = request.header(header::CONTENT_TYPE, value);
    }
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    app(issuer.clone())
        .oneshot(request.body(body.into()).unwrap())
        .await
        .unwrap()
}

async fn post_form(issuer: &Arc<TokenIssuer>, body: &str) -> Response {
    post_token(issuer, Some(FORM), None, body.to_owned()).await
}

fn form_credentials(id: &str, secret: &str) -> String {
    format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        form_encode(id),
        form_encode(secret)
    )
}

fn basic(id: &str, secret: &str) -> String {
    let pair = format!("{}:{}", form_encode(id), form_encode(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// Asserts an RFC 6749 §5.2 error response and returns its description.
async fn assert_oauth_error(response: Response, status: StatusCode, error: &str) -> String {
    assert_eq!(response.status(), status);
    assert_eq!(header(&response, "content-type"), Some("application/json"));
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
    let challenge = header(&response, "www-authenticate").map(str::to_owned);
    if status == StatusCode::UNAUTHORIZED {
        assert_eq!(challenge.as_deref(), Some(r#"Basic realm="ecg-stream""#));
    } else {
        assert_eq!(challenge, None);
    }
    let body = body_json(response).await;
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
    body["error_description"].as_str().unwrap().to_owned()
}

async fn token_response(response: Response) -> TokenResponse {
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
    serde_json::from_value(body_json(response).await).unwrap()
}

#[tokio::test]
async fn token_via_form_fields_is_issued_and_verifies() {
    let issuer = Arc::new(issuer());
    let token = token_response(post_form(&issuer, &form_credentials("acme", SECRET)).await).await;
    assert_eq!(token.token_type, "Bearer");
    assert_eq!(token.expires_in, crate::support::TTL.as_secs());
    assert_eq!(token.scope, "ecg:write ecg:read");
    let principal = issuer.verifier().verify(&token.access_token).await.unwrap();
    assert_eq!(
        (principal.client_id.as_str(), principal.tenant.as_str()),
        ("acme", "tenant-a")
    );
}

#[tokio::test]
async fn token_via_basic_auth_with_form_encoded_credentials_is_issued() {
    let issuer = Arc::new(issuer());
    let body = "grant_type=client_credentials&scope=ecg%3Aread";
    let response = post_token(
        &issuer,
        Some(FORM),
        Some(&basic("reader", SECRET)),
        body.to_owned(),
    )
    .await;
    let token = token_response(response).await;
    assert_eq!(token.scope, "ecg:read");
    let principal = issuer.verifier().verify(&token.access_token).await.unwrap();
    assert_eq!(principal.client_id, "reader");
    assert_eq!(principal.scopes, ["ecg:read"]);
}

#[tokio::test]
async fn content_type_parameters_are_accepted() {
    let issuer = Arc::new(issuer());
    let content_type = "Application/X-WWW-Form-Urlencoded; charset=UTF-8";
    let response = post_token(
        &issuer,
        Some(content_type),
        None,
        form_credentials("acme", SECRET),
    )
    .await;
    token_response(response).await;
}

#[tokio::test]
async fn wrong_secret_is_401_invalid_client_with_basic_challenge() {
    let issuer = Arc::new(issuer());
    let response = post_form(&issuer, &form_credentials("acme", "wrong")).await;
    assert_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let response = post_token(
        &issuer,
        Some(FORM),
        Some(&basic("acme", "wrong")),
        "grant_type=client_credentials",
    )
    .await;
    assert_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
}

#[tokio::test]
async fn unknown_client_is_401_indistinguishable_from_wrong_secret() {
    let issuer = Arc::new(issuer());
    let unknown = post_form(&issuer, &form_credentials("nobody", SECRET)).await;
    let unknown = assert_oauth_error(unknown, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let wrong = post_form(&issuer, &form_credentials("acme", "wrong")).await;
    let wrong = assert_oauth_error(wrong, StatusCode::UNAUTHORIZED, "invalid_client").await;
    assert_eq!(unknown, wrong);
}

#[tokio::test]
async fn missing_credentials_and_non_basic_schemes_are_invalid_client() {
    let issuer = Arc::new(issuer());
    let response = post_form(&issuer, "grant_type=client_credentials").await;
    assert_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
    for authorization in ["Bearer abc", "Basic !!!", "Basic YWNtZQ=="] {
        let response = post_token(
            &issuer,
            Some(FORM),
            Some(authorization),
            "grant_type=client_credentials",
        )
        .await;
        assert_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
    }
}

#[tokio::test]
async fn other_grant_types_are_unsupported_grant_type() {
    let issuer = Arc::new(issuer());
    let body = format!(
        "grant_type=password&username=acme&password={}",
        form_encode(SECRET)
    );
    let response = post_form(&issuer, &body).await;
    assert_oauth_error(response, StatusCode::BAD_REQUEST, "unsupported_grant_type").await;
}

#[tokio::test]
async fn missing_grant_type_is_invalid_request() {
    let issuer = Arc::new(issuer());
    let body = format!("client_id=acme&client_secret={}", form_encode(SECRET));
    let description = assert_oauth_error(
        post_form(&issuer, &body).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    assert!(description.contains("grant_type"), "{description}");
}

#[tokio::test]
async fn credentials_in_both_header_and_body_are_invalid_request() {
    let issuer = Arc::new(issuer());
    let response = post_token(
        &issuer,
        Some(FORM),
        Some(&basic("acme", SECRET)),
        form_credentials("acme", SECRET),
    )
    .await;
    assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test]
async fn id_without_secret_is_invalid_request() {
    let issuer = Arc::new(issuer());
    let response = post_form(&issuer, "grant_type=client_credentials&client_id=acme").await;
    assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test]
async fn wrong_content_type_is_invalid_request_in_json() {
    let issuer = Arc::new(issuer());
    let json = r#"{"grant_type":"client_credentials","client_id":"acme"}"#;
    for content_type in [Some("application/json"), None] {
        let response = post_token(&issuer, content_type, None, json.to_owned()).await;
        assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
}

#[tokio::test]
async fn malformed_or_repeated_form_parameters_are_invalid_request() {
    let issuer = Arc::new(issuer());
    let creds = form_credentials("acme", SECRET);
    for body in [
        format!("{creds}&scope=%zz"),
        format!("{creds}&scope=%FF"),
        format!("{creds}&client_id=acme"),
        format!("{creds}&grant_type=client_credentials"),
    ] {
        let response = post_form(&issuer, &body).await;
        assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
}

#[tokio::test]
async fn oversized_body_is_invalid_request_in_json() {
    let issuer = Arc::new(issuer());
    let body = format!(
        "{}&pad={}",
        form_credentials("acme", SECRET),
        "x".repeat(64 * 1024)
    );
    let response = post_form(&issuer, &body).await;
    assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test]
async fn unknown_parameters_and_empty_values_are_ignored() {
    let issuer = Arc::new(issuer());
    let body = format!("{}&scope=&foo=bar", form_credentials("acme", SECRET));
    let token = token_response(post_form(&issuer, &body).await).await;
    assert_eq!(token.scope, "ecg:write ecg:read");
}

#[tokio::test]
async fn scope_beyond_the_clients_is_400_invalid_scope() {
    let issuer = Arc::new(issuer());
    let body = format!(
        "{}&scope=ecg%3Aread+ecg%3Awrite",
        form_credentials("reader", SECRET)
    );
    let response = post_form(&issuer, &body).await;
    assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_scope").await;
}

#[tokio::test]
async fn jwks_endpoint_serves_the_public_key_only() {
    let key = SigningKey::generate();
    let kid = key.kid().to_owned();
    let issuer = Arc::new(issuer_with(key));
    let request = Request::get(oauth::JWKS_PATH).body(Body::empty()).unwrap();
    let response = app(issuer).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = body_json(response).await;
    let keys = body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let jwk = keys[0].as_object().unwrap();
    let mut fields: Vec<&str> = jwk.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["alg", "crv", "kid", "kty", "use", "x"]);
    assert_eq!(jwk["kty"], "OKP");
    assert_eq!(jwk["crv"], "Ed25519");
    assert_eq!(jwk["alg"], "EdDSA");
    assert_eq!(jwk["use"], "sig");
    assert_eq!(jwk["kid"], kid.as_str());
}
