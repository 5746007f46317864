//! [`CallerEcg`]: the extractor of every handler that writes to an ECG
//! already opened (`/v1/ecgs/{id}/...`): whose request it is, which ECG,
//! and what the request says besides its body ([`Head`]).

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use ecg_auth::{Authorized, EcgWrite, Principal};
use ecg_clickhouse::EcgRow;

use crate::AppState;
use crate::error::ApiError;
use crate::params::EcgId;

/// What an endpoint reads of a request before its ECG: its query
/// parameters and its body's format (400, 415).
pub trait Head: Sized + Send {
    fn read(parts: &Parts) -> Result<Self, ApiError>;
}

/// The caller's ECG `{id}`, and the request's [`Head`]. As a handler
/// argument it answers, in this order: 401/403 for the token (scope
/// `ecg:write`), 400 naming `id` for an id that is not a UUID, 429 over the
/// client's request rate, the head's 400 or 415, then 404 for an ECG the
/// caller's tenant does not have (another tenant's alike) or 503 when the
/// registry is out of reach. The registry is asked last, so a request
/// refused for its own sake never costs a lookup.
#[derive(Debug)]
pub struct CallerEcg<H> {
    pub caller: Principal,
    pub ecg: Arc<EcgRow>,
    pub head: H,
}

impl<H: Head> FromRequestParts<AppState> for CallerEcg<H> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let caller = Authorized::<EcgWrite>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?
            .into_principal();
        let found = async {
            let EcgId(id) = EcgId::from_request_parts(parts, state).await?;
            state.rate_limits.request(&caller.client_id)?;
            let head = H::read(parts)?;
            let ecg = state
                .registry
                .get(&caller.tenant, id)
                .await?
                .ok_or(ApiError::NotFound(id))?;
            Ok::<_, ApiError>((ecg, head))
        };
        let (ecg, head) = found.await.map_err(IntoResponse::into_response)?;
        Ok(CallerEcg { caller, ecg, head })
    }
}
