//! How the OpenAPI document describes the token service's endpoints. They
//! are served by the `ecg-auth` crate (`ecg_auth::oauth::routes`), which
//! knows nothing of OpenAPI; the functions here carry only their
//! `#[utoipa::path]` descriptions and are never routed.

use serde::Serialize;
use utoipa::ToSchema;

/// The grant this API issues tokens for.
#[derive(Debug, Serialize, ToSchema)]
pub enum GrantType {
    #[serde(rename = "client_credentials")]
    ClientCredentials,
}

/// `POST /oauth/token` form (RFC 6749 §4.4). The client's id and secret go
/// either here or in HTTP Basic, not both.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenForm {
    pub grant_type: GrantType,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// Space-separated scopes, a subset of the client's (default: all).
    pub scope: Option<String>,
}

/// A token issued (RFC 6749 §5.1).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenAnswer {
    /// The signed JWT.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
    /// Granted scopes, space-separated.
    pub scope: String,
}

/// A refused token request (RFC 6749 §5.2).
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthErrorBody {
    /// `invalid_request`, `invalid_client`, `unsupported_grant_type`,
    /// `invalid_scope`, `slow_down` (429), `temporarily_unavailable` (503), ...
    pub error: String,
    pub error_description: String,
}

/// The public keys that verify this API's tokens (RFC 7517).
#[derive(Debug, Serialize, ToSchema)]
pub struct JwkSet {
    #[schema(value_type = Vec<Object>)]
    pub keys: Vec<serde_json::Value>,
}

/// `POST /oauth/token`.
#[utoipa::path(
    post,
    path = "/oauth/token",
    tag = "auth",
    summary = "A token for a client (OAuth2 client credentials)",
    description = "Send the client's id and secret as form fields or as HTTP Basic. The token's tenant and scopes are the client's (see the README's local clients).",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The token", body = TokenAnswer, headers(("Cache-Control" = String))),
        (status = 400, description = "A malformed request, an unsupported grant or scope", body = OAuthErrorBody),
        (status = 401, description = "Unknown client or wrong secret", body = OAuthErrorBody, headers(("WWW-Authenticate" = String))),
        (status = 429, description = "`slow_down`: too many token requests from this address or for this client id (`auth.token_limits`)", body = OAuthErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "`temporarily_unavailable`: every credential check slot is busy", body = OAuthErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
#[allow(dead_code)] // Described, not routed: ecg-auth serves it.
fn token() {}

/// `GET /.well-known/jwks.json`.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "auth",
    summary = "The public keys that verify issued tokens",
    responses((status = 200, description = "A JWK set", body = JwkSet))
)]
#[allow(dead_code)] // Described, not routed: ecg-auth serves it.
fn jwks() {}
