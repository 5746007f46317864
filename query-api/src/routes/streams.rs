//! `GET /v1/streams/active`: the caller's ECGs receiving data right now.

use axum::Json;
use axum::extract::{RawQuery, State};
use ecg_auth::{Authorized, EcgRead};
use ecg_clickhouse::live;
use ecg_schemas::api::{ActiveStream, ActiveStreams, ErrorBody};
use time::{Duration, OffsetDateTime};

use crate::AppState;
use crate::error::ApiError;
use crate::params::Params;

const MAX_WITHIN_S: u64 = 86_400;

/// `GET /v1/streams/active`.
#[utoipa::path(
    get,
    path = "/v1/streams/active",
    tag = "live",
    summary = "ECGs that received data in the last seconds",
    description = "ECGs the processor wrote to within `within_s` seconds (default `streams.active_within_s`), newest first, with their sample rate over that window, the lag of their newest chunk (gateway acceptance to processor write) and the chunks waiting for a gap. At most 1,000.",
    params(
        ("within_s" = Option<u64>, Query, description = "Seconds, 1 to 86400", minimum = 1, maximum = 86400),
    ),
    responses(
        (status = 200, description = "The active streams", body = ActiveStreams),
        (status = 400, description = "A malformed parameter (`field` names it)", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "The token lacks scope ecg:read", body = ErrorBody),
    ),
    security(("bearer" = ["ecg:read"]))
)]
#[tracing::instrument(skip_all, fields(tenant = %auth.0.tenant))]
pub async fn active_streams(
    State(state): State<AppState>,
    auth: Authorized<EcgRead>,
    RawQuery(query): RawQuery,
) -> Result<Json<ActiveStreams>, ApiError> {
    let q = Params::parse(query.as_deref(), &["within_s"])?;
    let within_s = q
        .int("within_s", 1..=MAX_WITHIN_S)?
        .unwrap_or(state.active_within_s);
    let at = OffsetDateTime::now_utc();
    let since = at - Duration::seconds(within_s as i64);
    let rows = live::active(&state.clickhouse, &auth.0.tenant, millis(since)).await?;
    let streams = rows
        .into_iter()
        .map(|r| ActiveStream {
            id: r.ecg_id,
            device_id: r.device_id,
            last_activity_at: r.last_at,
            samples_per_s: r.recent_samples as f64 / within_s as f64,
            // Chunks written before migration 7 have no produced time.
            lag_s: (r.newest_produced > OffsetDateTime::UNIX_EPOCH).then(|| {
                (r.newest_processed - r.newest_produced)
                    .as_seconds_f64()
                    .max(0.0)
            }),
            waiting_chunks: r.waiting,
        })
        .collect();
    Ok(Json(ActiveStreams {
        within_s,
        at,
        streams,
    }))
}

/// Milliseconds since the epoch, as the live queries bind times.
pub(crate) fn millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}
