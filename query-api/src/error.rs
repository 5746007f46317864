//! [`ApiError`]: how query requests fail. A missing ECG and another tenant's
//! ECG give the same 404, so ids cannot be probed across tenants.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ecg_schemas::api::ErrorBody;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no ECG {0}")]
    NotFound(uuid::Uuid),
    #[error("no device {0:?}")]
    NoDevice(String),
    /// No endpoint has this path.
    #[error("no endpoint at {path}; see /openapi.json for the API")]
    NoRoute { path: String },
    /// The path exists, the method does not.
    #[error("{path} does not take {method}; see /openapi.json for the methods it takes")]
    MethodNotAllowed { method: String, path: String },
    /// A query or path parameter is wrong: 400 naming it.
    #[error("{message}")]
    BadParam {
        field: String,
        message: String,
        limit: Option<u64>,
    },
    /// The ECG exists but has no exact form in the asked format: 409.
    #[error("{0}")]
    NoExactForm(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// 400 naming `field`.
    pub fn param(field: &str, message: impl Into<String>) -> Self {
        ApiError::BadParam {
            field: field.into(),
            message: message.into(),
            limit: None,
        }
    }

    /// 400 naming `field` and the limit it exceeds.
    pub fn over(field: &str, message: impl Into<String>, limit: u64) -> Self {
        ApiError::BadParam {
            field: field.into(),
            message: message.into(),
            limit: Some(limit),
        }
    }
}

impl From<clickhouse::error::Error> for ApiError {
    fn from(e: clickhouse::error::Error) -> Self {
        ApiError::Internal(anyhow::Error::new(e).context("querying ClickHouse"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error, message) = match &self {
            ApiError::NotFound(_) | ApiError::NoDevice(_) | ApiError::NoRoute { .. } => {
                (StatusCode::NOT_FOUND, "not_found", self.to_string())
            }
            ApiError::MethodNotAllowed { .. } => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                self.to_string(),
            ),
            ApiError::BadParam { .. } => {
                (StatusCode::BAD_REQUEST, "invalid_param", self.to_string())
            }
            ApiError::NoExactForm(_) => (StatusCode::CONFLICT, "no_exact_form", self.to_string()),
            ApiError::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error".into(),
                )
            }
        };
        let (field, limit) = match self {
            ApiError::BadParam { field, limit, .. } => (Some(field), limit),
            _ => (None, None),
        };
        let body = ErrorBody {
            error: error.into(),
            message,
            field,
            limit,
        };
        (status, Json(body)).into_response()
    }
}
