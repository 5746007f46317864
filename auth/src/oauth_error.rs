//! OAuth2 token endpoint errors (RFC 6749 §5.2) and their HTTP form.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An RFC 6749 §5.2 error response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {description}")]
pub struct OAuthError {
    /// `invalid_request`, `invalid_client`, `invalid_grant`,
    /// `unauthorized_client`, `unsupported_grant_type`, `invalid_scope`,
    /// `slow_down` (429, a rate limit), `temporarily_unavailable` (503, too
    /// busy to check credentials now), or `server_error` when the token
    /// service itself failed.
    pub error: &'static str,
    /// Human-readable detail for the client developer; never contains secrets.
    pub description: String,
    /// Seconds to wait before retrying, sent as `Retry-After` (429 and 503).
    pub retry_after: Option<u64>,
}

impl OAuthError {
    /// Missing, repeated or malformed parameter, or an unreadable request.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self {
            error: "invalid_request",
            description: description.into(),
            retry_after: None,
        }
    }

    /// Client authentication failed.
    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self {
            error: "invalid_client",
            description: description.into(),
            retry_after: None,
        }
    }

    /// A grant type other than `client_credentials`.
    pub fn unsupported_grant_type(description: impl Into<String>) -> Self {
        Self {
            error: "unsupported_grant_type",
            description: description.into(),
            retry_after: None,
        }
    }

    /// A requested scope the client may not have.
    pub fn invalid_scope(description: impl Into<String>) -> Self {
        Self {
            error: "invalid_scope",
            description: description.into(),
            retry_after: None,
        }
    }

    /// The service failed; the cause is logged, not sent.
    pub fn server_error() -> Self {
        Self {
            error: "server_error",
            description: "internal error".into(),
            retry_after: None,
        }
    }

    /// A rate limit was hit. RFC 6749 has no code for it; `slow_down` is
    /// the one RFC 8628 §3.5 uses for a client polling too fast.
    pub fn slow_down(description: impl Into<String>, retry_after_s: u64) -> Self {
        Self {
            error: "slow_down",
            description: description.into(),
            retry_after: Some(retry_after_s),
        }
    }

    /// Too busy to check credentials now (RFC 6749 §4.1.2.1's code).
    pub fn temporarily_unavailable(description: impl Into<String>, retry_after_s: u64) -> Self {
        Self {
            error: "temporarily_unavailable",
            description: description.into(),
            retry_after: Some(retry_after_s),
        }
    }

    fn status(&self) -> StatusCode {
        match self.error {
            "invalid_client" => StatusCode::UNAUTHORIZED,
            "slow_down" => StatusCode::TOO_MANY_REQUESTS,
            "temporarily_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
            "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    error_description: &'a str,
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = Body {
            error: self.error,
            error_description: &self.description,
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        // RFC 6749 §5.1/§5.2: token responses must not be cached.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if status == StatusCode::UNAUTHORIZED {
            // §5.2: a 401 must name the authentication scheme the client can use.
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Basic realm="ecg-stream""#),
            );
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
