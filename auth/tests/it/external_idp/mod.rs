//! Tokens from an external OAuth2/OIDC provider: keys from a JWKS served by
//! a local axum server, tokens checked through a real router so every
//! refusal is seen as the client sees it (status and `WWW-Authenticate`).

mod accepted;
mod attacks;
mod config;
mod keys;
mod tenants;
mod transport;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::routing::get;
use ecg_auth::{ExternalIssuerConfig, SigningKey, Verifier};
use serde_json::{Value, json};

use crate::extractor::{call, router};
use crate::support::{AUDIENCE, ISSUER, now};

/// `iss` of the external provider.
pub const IDP: &str = "https://sso.example.test/realms/ecg";

#[derive(Default)]
struct Served {
    jwks: Value,
    hits: usize,
}

/// A JWKS endpoint whose keys a test changes as it goes.
pub struct JwksServer {
    state: Arc<Mutex<Served>>,
    pub url: String,
}

impl JwksServer {
    /// Serves `{"keys": keys}`; raw JSON so tests can publish odd keys.
    pub async fn start(keys: Vec<Value>) -> Self {
        let state = Arc::new(Mutex::new(Served {
            jwks: json!({ "keys": keys }),
            hits: 0,
        }));
        let app = Router::new()
            .route("/certs", get(serve))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/certs", listener.local_addr().unwrap());
        // Bound before spawning: requests queue in the backlog until it runs.
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { state, url }
    }

    pub fn hits(&self) -> usize {
        self.state.lock().unwrap().hits
    }

    pub fn serve(&self, keys: Vec<Value>) {
        self.serve_json(json!({ "keys": keys }));
    }

    /// Serves `body` as it is (a set with extra members, or no set at all).
    pub fn serve_json(&self, body: Value) {
        self.state.lock().unwrap().jwks = body;
    }

    /// The provider's config with every optional field at its default,
    /// except the tenants it may name (those of `idp_claims`) and plain
    /// http, which the test server speaks.
    pub fn config(&self) -> ExternalIssuerConfig {
        ExternalIssuerConfig {
            tenants: vec!["tenant-x".into()],
            allow_insecure_http: true,
            ..ExternalIssuerConfig::new(IDP, AUDIENCE, self.url.clone())
        }
    }
}

async fn serve(State(state): State<Arc<Mutex<Served>>>) -> Json<Value> {
    let mut served = state.lock().unwrap();
    served.hits += 1;
    Json(served.jwks.clone())
}

/// A verifier trusting the built-in issuer (its own random key) and
/// `external`, as a service configured with one provider would be.
pub fn verifier(external: ExternalIssuerConfig) -> Verifier {
    verifier_with_refresh(external, Duration::from_secs(10))
}

pub fn verifier_with_refresh(external: ExternalIssuerConfig, min_refresh: Duration) -> Verifier {
    Verifier::builder()
        .built_in_jwks(ISSUER, AUDIENCE, SigningKey::generate().jwks())
        .external(external)
        .min_refresh(min_refresh)
        .build()
        .unwrap()
}

/// Claims as a provider such as Auth0 issues them: `aud` an array, no `nbf`.
pub fn idp_claims() -> Value {
    let now = now();
    json!({
        "iss": IDP,
        "aud": [AUDIENCE, "https://sso.example.test/userinfo"],
        "sub": "gateway-7",
        "azp": "gateway-7",
        "tenant": "tenant-x",
        "scope": "ecg:write ecg:read",
        "iat": now,
        "exp": now + 300,
    })
}

/// `claims` with `name` set to `value` (`Value::Null` removes it).
pub fn with(mut claims: Value, name: &str, value: Value) -> Value {
    let map = claims.as_object_mut().unwrap();
    if value.is_null() {
        map.remove(name);
    } else {
        map.insert(name.into(), value);
    }
    claims
}

/// Calls the write-scoped route (`/upload`) with `token`; on 200 the body is
/// `"<client id> <tenant>"`.
pub async fn upload(verifier: &Verifier, token: &str) -> (StatusCode, String, Option<String>) {
    request(verifier, "/upload", token).await
}

/// Calls the read-scoped route (`/read`); on 200 the body is the scopes,
/// comma-separated.
pub async fn read(verifier: &Verifier, token: &str) -> (StatusCode, String, Option<String>) {
    request(verifier, "/read", token).await
}

async fn request(
    verifier: &Verifier,
    path: &str,
    token: &str,
) -> (StatusCode, String, Option<String>) {
    let bearer = format!("Bearer {token}");
    let response = call(router(verifier.clone()), path, Some(&bearer)).await;
    let status = response.status();
    let challenge = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap(), challenge)
}

/// Asserts `token` is refused with 401 `invalid_token` and `description`.
pub async fn assert_refused(verifier: &Verifier, token: &str, description: &str) {
    let (status, body, challenge) = upload(verifier, token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{description}: {body}");
    assert_eq!(
        challenge.as_deref(),
        Some(
            format!(
                r#"Bearer realm="ecg-stream", error="invalid_token", error_description="{description}""#
            )
            .as_str()
        ),
    );
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body,
        json!({"error": "invalid_token", "message": description})
    );
}

/// A file under the system temp dir named after the test and this process,
/// removed when dropped.
pub struct TempFile(pub PathBuf);

impl TempFile {
    pub fn new(test: &str, contents: &[u8]) -> Self {
        let path = std::env::temp_dir().join(format!("ecg-auth-{}-{test}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
