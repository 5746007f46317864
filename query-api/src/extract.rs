//! [`CallerEcg`]: the extractor of every handler that reads one ECG
//! (`/v1/ecgs/{id}...`): whose request it is, and the ECG's row.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use ecg_auth::{Authorized, EcgRead, Principal};
use ecg_clickhouse::{EcgRow, ecgs};

use crate::AppState;
use crate::error::ApiError;
use crate::params;

/// The caller's ECG `{id}`. As a handler argument it answers, in this
/// order: 401/403 for the token (scope `ecg:read`), 400 naming `id` for an
/// id that is not a UUID, then 404 for an ECG the caller's tenant does not
/// have, another tenant's alike, so that ids cannot be probed across
/// tenants. The handler reads its query after.
#[derive(Debug)]
pub struct CallerEcg {
    pub caller: Principal,
    pub ecg: EcgRow,
}

impl FromRequestParts<AppState> for CallerEcg {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let caller = Authorized::<EcgRead>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?
            .into_principal();
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let found = async {
            let id = params::ecg_id(&raw)?;
            ecgs::latest(&state.clickhouse, &caller.tenant, id)
                .await?
                .ok_or(ApiError::NotFound(id))
        };
        let ecg = found.await.map_err(IntoResponse::into_response)?;
        Ok(CallerEcg { caller, ecg })
    }
}
