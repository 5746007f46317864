//! HTTP endpoints of the token service: `POST /oauth/token` (client
//! credentials grant, RFC 6749 §4.4) and `GET /.well-known/jwks.json`.
//!
//! Every failure of the token endpoint is an RFC 6749 §5.2 JSON error, and
//! every response carries `Cache-Control: no-store`. A well-formed request
//! passes the limits of `throttle` (429 `slow_down` / 503
//! `temporarily_unavailable`, with `Retry-After`) before its credentials are
//! checked. The source address comes from axum's `ConnectInfo`: serve the
//! router with `into_make_service_with_connect_info::<SocketAddr>()`, or all
//! requests share one address budget.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;

use crate::form;
use crate::issuer::TokenIssuer;
use crate::oauth_error::OAuthError;
use crate::source::PeerAddr;

/// Path of the token endpoint.
pub const TOKEN_PATH: &str = "/oauth/token";
/// Path of the public key set.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
/// Token requests are a few hundred bytes; anything near this is not one.
const MAX_TOKEN_REQUEST_BYTES: usize = 16 * 1024;

/// Both endpoints, with a body limit on the token endpoint whose overflow is
/// answered as `invalid_request` JSON like every other bad request.
pub fn routes<S>() -> Router<S>
where
    Arc<TokenIssuer>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route(
            TOKEN_PATH,
            post(token_limited).layer(DefaultBodyLimit::max(MAX_TOKEN_REQUEST_BYTES)),
        )
        .route(JWKS_PATH, get(jwks))
}

/// `POST /oauth/token`: `application/x-www-form-urlencoded` with
/// `grant_type=client_credentials`, optional `scope`, and the client's
/// credentials either as `client_id`/`client_secret` form fields or as HTTP
/// Basic (RFC 6749 §2.3.1: id and secret form-encoded), not both.
/// Answers 200 with a [`crate::TokenResponse`], or an [`OAuthError`].
#[tracing::instrument(name = "oauth_token", skip_all)]
pub async fn token(
    State(issuer): State<Arc<TokenIssuer>>,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = match TokenRequest::parse(&headers, &body) {
        Ok(request) => request,
        Err(error) => {
            tracing::info!(error = error.error, description = %error.description, "bad token request");
            return error.into_response();
        }
    };
    let throttle = issuer.throttle();
    let address = throttle.client_address(peer, &headers);
    let admitted = match throttle.admit(address, &request.client_id).await {
        Ok(admitted) => admitted,
        Err(refused) => return refused.into_response(),
    };
    let pair = admitted.pair;
    let permit = admitted.permit;
    // argon2 takes tens of milliseconds of CPU: keep it off the executor.
    let issued = tokio::task::spawn_blocking({
        let issuer = issuer.clone();
        move || {
            // Held until the hash is done, even if the client has gone and
            // this handler was dropped: the slot counts CPU, not requests.
            let _permit = permit;
            issuer.issue(
                &request.client_id,
                &request.client_secret,
                request.scope.as_deref(),
            )
        }
    })
    .await;
    if matches!(issued, Ok(Ok(_))) {
        throttle.succeeded(pair);
    }
    match issued {
        Ok(Ok(token)) => (
            [
                (header::CACHE_CONTROL, "no-store"),
                (header::PRAGMA, "no-cache"),
            ],
            Json(token),
        )
            .into_response(),
        Ok(Err(error)) => error.into_response(),
        Err(join_error) => {
            tracing::error!(error = %join_error, "token issuance task failed");
            OAuthError::server_error().into_response()
        }
    }
}

/// `GET /.well-known/jwks.json`: the public signing key(s).
pub async fn jwks(State(issuer): State<Arc<TokenIssuer>>) -> Json<JwkSet> {
    Json(issuer.jwks())
}

/// [`token`], with an unreadable or oversized body answered in OAuth form.
async fn token_limited(
    state: State<Arc<TokenIssuer>>,
    peer: PeerAddr,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match body {
        Ok(body) => token(state, peer, headers, body).await,
        Err(rejection) => OAuthError::invalid_request(format!(
            "unreadable request body: {}",
            rejection.body_text()
        ))
        .into_response(),
    }
}

struct TokenRequest {
    client_id: String,
    client_secret: String,
    scope: Option<String>,
}

#[derive(Default)]
struct Params {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scope: Option<String>,
}

impl TokenRequest {
    fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, OAuthError> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let media_type = content_type
            .and_then(|c| c.split(';').next())
            .map(str::trim);
        if !media_type.is_some_and(|m| m.eq_ignore_ascii_case("application/x-www-form-urlencoded"))
        {
            return Err(OAuthError::invalid_request(
                "content type must be application/x-www-form-urlencoded",
            ));
        }
        let params = Params::parse(body)?;
        match params.grant_type.as_deref() {
            None => return Err(OAuthError::invalid_request("grant_type is required")),
            Some("client_credentials") => {}
            Some(_) => {
                return Err(OAuthError::unsupported_grant_type(
                    "only grant_type=client_credentials is supported",
                ));
            }
        }
        let (client_id, client_secret) = match (
            basic_credentials(headers)?,
            params.client_id,
            params.client_secret,
        ) {
            (Some(basic), None, None) => basic,
            (None, Some(id), Some(secret)) => (id, secret),
            (Some(_), _, _) => {
                return Err(OAuthError::invalid_request(
                    "send client credentials in the Authorization header or in the body, not both",
                ));
            }
            (None, None, None) => {
                return Err(OAuthError::invalid_client("client authentication required"));
            }
            (None, _, _) => {
                return Err(OAuthError::invalid_request(
                    "client_id and client_secret must be sent together",
                ));
            }
        };
        Ok(Self {
            client_id,
            client_secret,
            scope: params.scope,
        })
    }
}

impl Params {
    fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        let pairs = form::parse(body)
            .map_err(|e| OAuthError::invalid_request(format!("malformed form body: {e}")))?;
        let mut params = Self::default();
        for (name, value) in pairs {
            let slot = match name.as_str() {
                "grant_type" => &mut params.grant_type,
                "client_id" => &mut params.client_id,
                "client_secret" => &mut params.client_secret,
                "scope" => &mut params.scope,
                // §3.2: unrecognised parameters are ignored.
                _ => continue,
            };
            // §3.1: a parameter without a value is treated as omitted.
            if value.is_empty() {
                continue;
            }
            // §3.1: parameters must not be included more than once.
            if slot.replace(value).is_some() {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {name} is repeated"
                )));
            }
        }
        Ok(params)
    }
}

/// Client id and secret from `Authorization: Basic`, if that header is sent.
/// Any other or malformed `Authorization` is a failed client authentication.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(OAuthError::invalid_request(
            "more than one Authorization header",
        ));
    }
    let malformed = || OAuthError::invalid_client("malformed Basic credentials");
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, encoded) = value.split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client(
            "client authentication must use HTTP Basic",
        ));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| malformed())?;
    // The id cannot contain a raw ':' (it would be form-encoded as %3A).
    let colon = decoded
        .iter()
        .position(|&b| b == b':')
        .ok_or_else(malformed)?;
    let id = form::decode(&decoded[..colon]).map_err(|_| malformed())?;
    let secret = form::decode(&decoded[colon + 1..]).map_err(|_| malformed())?;
    if id.is_empty() {
        return Err(malformed());
    }
    Ok(Some((id, secret)))
}
