//! `GET /v1/ecgs/{id}/beats`: one lead's beats (R peaks), a page at a time,
//! as the processor's detector found them (view `beats`).

use axum::Json;
use axum::extract::{RawQuery, State};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ecg_clickhouse::beats;
use ecg_schemas::api::{Beat, BeatsPage, ErrorBody};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::CallerEcg;
use crate::params::{self, Params};

const DEFAULT_LIMIT: u64 = 1_000;
const MAX_LIMIT: u64 = 10_000;

/// `GET /v1/ecgs/{id}/beats`.
#[utoipa::path(
    get,
    path = "/v1/ecgs/{id}/beats",
    tag = "ecgs",
    summary = "One lead's beats (R peaks), a page at a time",
    description = "The beats the processor's streaming QRS detector found in `lead` (default: the ECG's first lead), by sample index, with the RR interval before each. A beat is decided at most 0.5 s of signal after its peak (the first 2 s of a lead after the detector's learning period), so the last half second of a stream still in progress has none yet. ECGs sampled outside 100 to 4,000 Hz have none.",
    params(
        ("id" = uuid::Uuid, Path, description = "The ECG id"),
        ("lead" = Option<String>, Query, description = "The lead (default: the first declared)"),
        ("from" = Option<time::OffsetDateTime>, Query, description = "RFC 3339, inclusive"),
        ("to" = Option<time::OffsetDateTime>, Query, description = "RFC 3339, exclusive"),
        ("limit" = Option<u64>, Query, description = "Beats per page, 1 to 10000 (default 1000)", minimum = 1, maximum = 10000),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of beats", body = BeatsPage),
        (status = 400, description = "A malformed or unknown parameter, or a lead the ECG does not have (`field` names it)", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "The token lacks scope ecg:read", body = ErrorBody),
        (status = 404, description = "No such ECG for the caller's tenant", body = ErrorBody),
    ),
    security(("bearer" = ["ecg:read"]))
)]
#[tracing::instrument(skip_all, fields(tenant = %caller.tenant, ecg_id = %ecg.ecg_id))]
pub async fn ecg_beats(
    State(state): State<AppState>,
    CallerEcg { caller, ecg }: CallerEcg,
    RawQuery(query): RawQuery,
) -> Result<Json<BeatsPage>, ApiError> {
    let (tenant, id) = (&caller.tenant, ecg.ecg_id);
    let q = Params::parse(query.as_deref(), &["lead", "from", "to", "limit", "cursor"])?;
    let (from, to) = (q.time("from")?, q.time("to")?);
    params::check_range(from, to)?;
    let limit = q.int("limit", 1..=MAX_LIMIT)?.unwrap_or(DEFAULT_LIMIT);
    let after = q.one("cursor")?.map(decode_cursor).transpose()?;
    let lead = match q.one("lead")? {
        Some(l) if ecg.leads.iter().any(|d| d == l) => l.to_string(),
        Some(l) => {
            return Err(ApiError::param(
                "lead",
                format!("ECG {id} has no lead {l:?}; its leads are {:?}", ecg.leads),
            ));
        }
        None => ecg.leads.first().cloned().unwrap_or_default(),
    };
    let rate = ecg.sample_rate_hz;
    let at = |t| params::index_at(t, ecg.started_at, rate);
    let mut rows = beats::page(
        &state.clickhouse,
        &beats::PageOf {
            tenant,
            id,
            lead: &lead,
            from: from.map_or(0, at),
            to: to.map_or(u64::MAX, at),
            after,
            limit: limit + 1,
        },
    )
    .await?;
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = more
        .then(|| {
            rows.last()
                .map(|b| URL_SAFE_NO_PAD.encode(b.sample_index.to_be_bytes()))
        })
        .flatten();
    Ok(Json(BeatsPage {
        id,
        lead,
        sample_rate_hz: rate,
        items: rows
            .into_iter()
            .map(|b| Beat {
                sample_index: b.sample_index,
                t: b.ts,
                t_s: b.sample_index as f64 / rate,
                rr_ms: b.rr_ms,
            })
            .collect(),
        next_cursor,
    }))
}

/// The sample index a page ended at, from its cursor.
fn decode_cursor(s: &str) -> Result<u64, ApiError> {
    let bad = || ApiError::param("cursor", "cursor is not one this endpoint returned");
    let bytes: [u8; 8] = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| bad())?
        .try_into()
        .map_err(|_| bad())?;
    Ok(u64::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_is_the_last_sample_index_and_nothing_else_decodes() {
        let c = URL_SAFE_NO_PAD.encode(1_234_567u64.to_be_bytes());
        assert_eq!(decode_cursor(&c).unwrap(), 1_234_567);
        for bad in ["", "x!", &c[1..], &format!("{c}AA")] {
            assert!(decode_cursor(bad).is_err(), "{bad:?}");
        }
    }
}
