//! `GET /v1/devices/{device_id}/insights`: a device's crossings over time
//! across its ECGs, by sample time.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use ecg_auth::{Authorized, EcgRead};
use ecg_clickhouse::ecgs;
use ecg_schemas::api::{DeviceBucket, DeviceInsights, ErrorBody};
use time::{Duration, OffsetDateTime};

use crate::AppState;
use crate::error::ApiError;
use crate::params::{self, Params};
use crate::store;

const BUCKETS: &[(&str, u64)] = &[("1m", 60), ("1h", 3_600), ("1d", 86_400)];
/// Without `from`, the range is this many buckets before `to`.
const DEFAULT_BUCKETS: i64 = 1_000;
/// At most this many buckets per request.
const MAX_BUCKETS: u64 = 10_000;

/// `GET /v1/devices/{device_id}/insights`.
#[utoipa::path(
    get,
    path = "/v1/devices/{device_id}/insights",
    tag = "live",
    summary = "A device's zero crossings over time, across its ECGs",
    description = "Per time bucket (by sample time, buckets aligned to UTC): the device's ECGs with samples in it, their samples and exact crossings, all leads together and per lead. Buckets without samples are left out. Default range: the 1,000 buckets before `to` (default now); at most 10,000 buckets.",
    params(
        ("device_id" = String, Path, description = "The device, as the ECGs name it", min_length = 1),
        ("from" = Option<time::OffsetDateTime>, Query, description = "RFC 3339, inclusive"),
        ("to" = Option<time::OffsetDateTime>, Query, description = "RFC 3339, exclusive (default now)"),
        ("bucket" = Option<crate::params::BucketName>, Query, description = "1m, 1h (default) or 1d"),
    ),
    responses(
        (status = 200, description = "The device's buckets", body = DeviceInsights),
        (status = 400, description = "A malformed parameter (`field` names it)", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "The token lacks scope ecg:read", body = ErrorBody),
        (status = 404, description = "The caller's tenant has no ECG of this device", body = ErrorBody),
    ),
    security(("bearer" = ["ecg:read"]))
)]
#[tracing::instrument(skip_all, fields(tenant = %auth.0.tenant))]
pub async fn device_insights(
    State(state): State<AppState>,
    auth: Authorized<EcgRead>,
    Path(device_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<DeviceInsights>, ApiError> {
    let q = Params::parse(query.as_deref(), &["from", "to", "bucket"])?;
    let (name, secs) = q.choice("bucket", BUCKETS)?.unwrap_or(("1h", 3_600));
    let to = q.time("to")?.unwrap_or_else(OffsetDateTime::now_utc);
    let from = match q.time("from")? {
        Some(f) => f,
        None => to
            .checked_sub(Duration::seconds(secs as i64 * DEFAULT_BUCKETS))
            .unwrap_or(to),
    };
    params::check_range(Some(from), Some(to))?;
    let span = (to - from).whole_seconds().max(0) as u64;
    if span / secs > MAX_BUCKETS {
        return Err(ApiError::over(
            "from",
            format!(
                "at most {MAX_BUCKETS} buckets per request: narrow from..to or use a longer bucket"
            ),
            MAX_BUCKETS,
        ));
    }
    let tenant = &auth.0.tenant;
    if !ecgs::device_exists(&state.clickhouse, tenant, &device_id).await? {
        return Err(ApiError::NoDevice(device_id));
    }
    let range = (params::micros(from), params::micros(to));
    let found = store::device_buckets(&state.clickhouse, tenant, &device_id, secs, range).await?;
    let mut buckets: BTreeMap<OffsetDateTime, DeviceBucket> = found
        .volume
        .into_iter()
        .map(|v| {
            let b = DeviceBucket {
                start: v.start,
                ecgs: v.ecgs,
                samples: v.samples,
                zero_crossings: 0,
                leads: BTreeMap::new(),
            };
            (v.start, b)
        })
        .collect();
    for c in found.crossings {
        if let Some(b) = buckets.get_mut(&c.start) {
            b.zero_crossings += c.crossings;
            *b.leads.entry(c.lead).or_default() += c.crossings;
        }
    }
    Ok(Json(DeviceInsights {
        device_id,
        bucket: name.into(),
        buckets: buckets.into_values().collect(),
    }))
}
