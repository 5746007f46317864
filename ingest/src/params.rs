//! Query-string and path parameters, read strictly as the query API reads
//! its own ([`ecg_runtime::params`]): an unknown, repeated or malformed
//! parameter, or one that contradicts the body, is a 400 naming it (`?seq`,
//! beside a body's JSON pointers; `id` for the path), never silently
//! ignored.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use ecg_runtime::params::ParamError;
pub use ecg_runtime::params::Params;
use uuid::Uuid;

use crate::error::ApiError;

impl From<ParamError> for ApiError {
    fn from(e: ParamError) -> Self {
        // The gateway's parameters have no range (a seq's is checked with
        // the body's fields), so there is no limit to name.
        ApiError::BadParam {
            field: format!("?{}", e.name),
            message: e.message,
        }
    }
}

/// The ECG id of a `/v1/ecgs/{id}/...` path; a malformed one is a 400
/// naming `id` (axum's own rejection is plain text).
#[derive(Debug, Clone, Copy)]
pub struct EcgId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for EcgId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::param("id", format!("unreadable ECG id: {}", e.body_text())))?;
        Uuid::parse_str(&raw).map(EcgId).map_err(|_| {
            ApiError::param(
                "id",
                format!("id must be an ECG id (a UUID, as POST /v1/ecgs returns), not {raw:?}"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_parameter_is_named_with_its_question_mark() {
        let e = ApiError::from(Params::parse(Some("sequence=2"), &["seq"]).unwrap_err());
        let ApiError::BadParam { field, .. } = e else {
            panic!("not a parameter error: {e}");
        };
        assert_eq!(field, "?sequence");
    }
}
