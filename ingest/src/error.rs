//! [`ApiError`]: every way a gateway request can fail, and its HTTP answer.
//! Client errors say precisely what was wrong; server errors are logged once
//! with their cause and answered opaquely.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ecg_schemas::Invalid;
use ecg_schemas::api::ErrorBody;

use crate::body_rate::TooSlow;
use crate::quota::RateLimited;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Invalid(#[from] Invalid),
    /// A query or path parameter is wrong (unknown, repeated, malformed, or
    /// contradicting the body): 400 naming it (`?seq`, `id`).
    #[error("{message}")]
    BadParam { field: String, message: String },
    #[error(
        "the body is larger than the limit of {limit} bytes (upload.max_json_bytes) for one request; send large recordings with PUT /v1/ecgs/{{id}}/signal as text/csv or application/vnd.apache.arrow.stream, which is streamed"
    )]
    TooLarge { limit: usize },
    #[error("the upload holds more than the limit of {limit} samples (all leads together)")]
    TooManySamples { limit: u64 },
    /// The message says which types the endpoint takes.
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("no ECG {0}")]
    NotFound(uuid::Uuid),
    /// No route has this path.
    #[error("no endpoint {path}; see /openapi.json for the gateway's endpoints")]
    NoRoute { path: String },
    /// The path exists, the method does not.
    #[error("{path} does not take {method}; see /openapi.json for the methods it takes")]
    MethodNotAllowed { method: String, path: String },
    #[error("{0}")]
    Conflict(String),
    /// Over one of the client's budgets: 429 with `Retry-After`.
    #[error("{0}")]
    RateLimited(RateLimited),
    #[error("the broker did not confirm the chunk: {0}")]
    Unavailable(String),
    /// ClickHouse (the ECG registry) did not answer, or answered that it
    /// cannot now (overloaded, read-only, a replica missing): 503, as the
    /// broker's. The cause is logged, not sent.
    #[error("the ECG registry is unavailable: {0}")]
    RegistryUnavailable(String),
    /// The bodies in flight fill `upload.max_buffered_bytes` (`limit`).
    #[error(
        "the gateway holds its limit of {limit} bytes of request bodies (upload.max_buffered_bytes) and none was freed in time; retry"
    )]
    Busy { limit: u64 },
    /// The caller's client or tenant holds its share of the body budget
    /// (`limit`): 429, its own limit, not the gateway's.
    #[error(
        "the {share} holds its share of {limit} bytes of request bodies in flight ({}) and none was freed in time; send fewer bodies at once, or retry",
        share.setting()
    )]
    OverShare { share: Share, limit: u64 },
    /// Another body larger than a client's share (`share`) is being read.
    #[error(
        "bodies larger than a client's share of {share} bytes (upload.max_buffered_bytes_per_client) are read one at a time and another is being read; retry, or send large recordings with PUT /v1/ecgs/{{id}}/signal, which is streamed"
    )]
    BusyLarge { share: u64 },
    /// The body arrived too slowly: 408 naming the limit.
    #[error("{0}")]
    SlowBody(TooSlow),
    /// An `Idempotency-Key` already used, within its lifetime, for another
    /// body (which opened `ecg_id`).
    #[error(
        "Idempotency-Key {key:?} was used for another request body, which opened ECG {ecg_id}; a retry must send the identical body, and another ECG needs another key"
    )]
    KeyReused { key: String, ecg_id: uuid::Uuid },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Whose share of the body budget is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Share {
    Client,
    Tenant,
}

impl Share {
    /// The setting that sizes it.
    pub fn setting(self) -> &'static str {
        match self {
            Share::Client => "upload.max_buffered_bytes_per_client",
            Share::Tenant => "upload.max_buffered_bytes_per_tenant",
        }
    }
}

impl std::fmt::Display for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Share::Client => "client",
            Share::Tenant => "tenant",
        })
    }
}

// By hand, not `#[from]`: the message is theirs, not a cause to chain.
impl From<RateLimited> for ApiError {
    fn from(e: RateLimited) -> Self {
        ApiError::RateLimited(e)
    }
}

impl From<TooSlow> for ApiError {
    fn from(e: TooSlow) -> Self {
        ApiError::SlowBody(e)
    }
}

impl ApiError {
    /// 400 naming the parameter `field`.
    pub fn param(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::BadParam {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error, field, limit) = match &self {
            ApiError::Invalid(e) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                Some(e.field.clone()),
                e.limit,
            ),
            ApiError::BadParam { field, .. } => (
                StatusCode::BAD_REQUEST,
                "invalid_param",
                Some(field.clone()),
                None,
            ),
            ApiError::TooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                None,
                Some(*limit as u64),
            ),
            ApiError::TooManySamples { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_many_samples",
                None,
                Some(*limit),
            ),
            ApiError::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                None,
                None,
            ),
            ApiError::NotFound(_) | ApiError::NoRoute { .. } => {
                (StatusCode::NOT_FOUND, "not_found", None, None)
            }
            ApiError::MethodNotAllowed { .. } => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                None,
                None,
            ),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict", None, None),
            ApiError::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited", None, None),
            ApiError::Unavailable(_) | ApiError::RegistryUnavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable", None, None)
            }
            ApiError::Busy { limit } => {
                (StatusCode::SERVICE_UNAVAILABLE, "busy", None, Some(*limit))
            }
            ApiError::BusyLarge { share } => {
                (StatusCode::SERVICE_UNAVAILABLE, "busy", None, Some(*share))
            }
            ApiError::OverShare { limit, .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "over_share",
                None,
                Some(*limit),
            ),
            ApiError::SlowBody(slow) => (
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                None,
                Some(slow.limit()),
            ),
            ApiError::KeyReused { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                Some("Idempotency-Key".to_string()),
                None,
            ),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", None, None),
        };
        let message = match &self {
            ApiError::Invalid(e) => e.message.clone(),
            ApiError::UnsupportedMediaType(message) => message.clone(),
            ApiError::Unavailable(cause) => {
                tracing::warn!(cause = %cause, "answering 503");
                "the message broker is unavailable; retry later".into()
            }
            ApiError::RegistryUnavailable(cause) => {
                tracing::warn!(cause = %cause, "answering 503");
                "the ECG registry (ClickHouse) is unavailable; retry later".into()
            }
            ApiError::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                "internal error".into()
            }
            other => other.to_string(),
        };
        let body = ErrorBody {
            error: error.into(),
            message,
            field: field.filter(|f| !f.is_empty()),
            limit,
        };
        let mut response = (status, Json(body)).into_response();
        let retry_after = match &self {
            ApiError::Unavailable(_) | ApiError::RegistryUnavailable(_) => Some(5),
            // Bodies are freed within milliseconds to seconds.
            ApiError::Busy { .. } | ApiError::BusyLarge { .. } | ApiError::OverShare { .. } => {
                Some(1)
            }
            // Whole seconds, rounded up: never earlier than the budget allows.
            ApiError::RateLimited(RateLimited { retry_after, .. }) => {
                Some(retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0))
            }
            _ => None,
        };
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
