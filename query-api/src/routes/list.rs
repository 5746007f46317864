//! `GET /v1/ecgs`: the caller's ECGs, newest first, a page at a time.

use axum::Json;
use axum::extract::{RawQuery, State};
use ecg_auth::{Authorized, EcgRead};
use ecg_clickhouse::status::{self, ListFilter, ListRow};
use ecg_schemas::Status;
use ecg_schemas::api::{EcgPage, EcgSummary, ErrorBody};
use time::OffsetDateTime;

use crate::AppState;
use crate::cursor::Cursor;
use crate::error::ApiError;
use crate::params::{self, Params};

const DEFAULT_LIMIT: u64 = 50;
const MAX_LIMIT: u64 = 500;
const STATUSES: &[(&str, u64)] = &[
    ("receiving", 0),
    ("processing", 1),
    ("complete", 2),
    ("failed", 3),
];

/// `GET /v1/ecgs`.
#[utoipa::path(
    get,
    path = "/v1/ecgs",
    tag = "ecgs",
    summary = "The caller's ECGs, newest first",
    description = "Ordered by `started_at` descending, then id. Pass `next_cursor` back as `cursor` for the next page; it is null on the last one.",
    params(
        ("limit" = Option<u64>, Query, description = "Items per page, 1 to 500 (default 50)", minimum = 1, maximum = 500),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page", min_length = 32, max_length = 32, pattern = "^[A-Za-z0-9_-]{32}$"),
        ("device_id" = Option<String>, Query, description = "Only this device's ECGs"),
        ("status" = Option<ecg_schemas::Status>, Query, description = "receiving, processing, complete or failed"),
        ("from" = Option<time::OffsetDateTime>, Query, description = "RFC 3339: started at or after"),
        ("to" = Option<time::OffsetDateTime>, Query, description = "RFC 3339: started before"),
    ),
    responses(
        (status = 200, description = "A page of ECGs", body = EcgPage),
        (status = 400, description = "A malformed parameter (`field` names it)", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "The token lacks scope ecg:read", body = ErrorBody),
    ),
    security(("bearer" = ["ecg:read"]))
)]
#[tracing::instrument(skip_all, fields(tenant = %auth.0.tenant))]
pub async fn list_ecgs(
    State(state): State<AppState>,
    auth: Authorized<EcgRead>,
    RawQuery(query): RawQuery,
) -> Result<Json<EcgPage>, ApiError> {
    let q = Params::parse(
        query.as_deref(),
        &["limit", "cursor", "device_id", "status", "from", "to"],
    )?;
    let (from, to) = (q.time("from")?, q.time("to")?);
    params::check_range(from, to)?;
    let filter = ListFilter {
        device_id: q.one("device_id")?.map(str::to_owned),
        status: q.choice("status", STATUSES)?.map(|(s, _)| s),
        from_us: from.map(params::micros),
        to_us: to.map(params::micros),
        after: q
            .one("cursor")?
            .map(Cursor::decode)
            .transpose()?
            .map(|c| (c.started_at_us, c.id)),
        limit: q.int("limit", 1..=MAX_LIMIT)?.unwrap_or(DEFAULT_LIMIT),
    };
    let mut rows = status::list(&state.clickhouse, &auth.0.tenant, &filter).await?;
    let next_cursor = if rows.len() as u64 > filter.limit {
        rows.truncate(filter.limit as usize);
        rows.last().map(|r| {
            Cursor {
                started_at_us: r.started_at_us,
                id: r.ecg_id,
            }
            .encode()
        })
    } else {
        None
    };
    let items = rows.into_iter().map(summary).collect::<Result<_, _>>()?;
    Ok(Json(EcgPage { items, next_cursor }))
}

fn summary(r: ListRow) -> Result<EcgSummary, ApiError> {
    let status = match r.status.as_str() {
        "receiving" => Status::Receiving,
        "processing" => Status::Processing,
        "complete" => Status::Complete,
        "failed" => Status::Failed,
        other => return Err(anyhow::anyhow!("list query gave status {other:?}").into()),
    };
    Ok(EcgSummary {
        id: r.ecg_id,
        device_id: r.device_id,
        status,
        sample_rate_hz: r.sample_rate_hz,
        leads: r.leads,
        units: r.units,
        started_at: r.started_at,
        last_activity_at: (r.last_activity_at > OffsetDateTime::UNIX_EPOCH)
            .then_some(r.last_activity_at),
        chunks_processed: r.chunks,
        samples_processed: r.samples,
        failed_chunks_count: r.failed,
    })
}
