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
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<clickhouse::error::Error> for ApiError {
    fn from(e: clickhouse::error::Error) -> Self {
        ApiError::Internal(anyhow::Error::new(e).context("querying ClickHouse"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error, message) = match &self {
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", self.to_string()),
            ApiError::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error".into(),
                )
            }
        };
        let body = ErrorBody {
            error: error.into(),
            message,
            field: None,
            limit: None,
        };
        (status, Json(body)).into_response()
    }
}
