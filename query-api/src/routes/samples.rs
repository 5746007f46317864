//! `GET /v1/ecgs/{id}/samples`: an ECG's samples for plotting, reduced on the
//! server to at most `max_points` buckets per lead, each its min and max so
//! peaks survive; JSON, or one Arrow IPC stream when the client asks for it.

use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{DataType, Field, Schema};
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use ecg_clickhouse::blocks;
use ecg_schemas::api::{ArrowStream, ErrorBody, LeadSeries, SamplesPage};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::CallerEcg;
use crate::params::{self, Params};
use crate::store;

/// The media type of an Arrow IPC stream.
pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";
const DEFAULT_POINTS: u64 = 2_000;
const MAX_POINTS: u64 = 20_000;

/// `GET /v1/ecgs/{id}/samples`.
#[utoipa::path(
    get,
    path = "/v1/ecgs/{id}/samples",
    tag = "ecgs",
    summary = "Samples for plotting, downsampled on the server",
    description = "Samples of `from`..`to` (default: the whole ECG so far) of each asked lead. When the range holds more than `max_points` samples per lead, consecutive samples are grouped into equal buckets of `bucket_samples` (at most `max_points` buckets per lead) and each bucket gives its min and max; otherwise `bucket_samples` is 1 and min = max = the sample. Values are physical, in the ECG's `units`. With `Accept: application/vnd.apache.arrow.stream` the answer is one Arrow IPC stream with one record batch of columns `lead` (Utf8), `t_s`, `min`, `max` (Float64).",
    params(
        ("id" = uuid::Uuid, Path, description = "The ECG id"),
        ("lead" = Option<Vec<String>>, Query, description = "A lead to return; repeat for several (default: every lead)", explode = true),
        ("from" = Option<time::OffsetDateTime>, Query, description = "RFC 3339, inclusive"),
        ("to" = Option<time::OffsetDateTime>, Query, description = "RFC 3339, exclusive"),
        ("max_points" = Option<u64>, Query, description = "Buckets per lead at most, 2 to 20000 (default 2000)", minimum = 2, maximum = 20000),
    ),
    responses(
        (status = 200, description = "The samples", content(
            (SamplesPage = "application/json"),
            (ArrowStream = "application/vnd.apache.arrow.stream"),
        )),
        (status = 400, description = "A malformed parameter or unknown lead (`field` names it)", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "The token lacks scope ecg:read", body = ErrorBody),
        (status = 404, description = "No such ECG for the caller's tenant", body = ErrorBody),
    ),
    security(("bearer" = ["ecg:read"]))
)]
#[tracing::instrument(skip_all, fields(tenant = %caller.tenant, ecg_id = %ecg.ecg_id))]
pub async fn ecg_samples(
    State(state): State<AppState>,
    CallerEcg { caller, ecg }: CallerEcg,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (tenant, id) = (&caller.tenant, ecg.ecg_id);
    let q = Params::parse(query.as_deref(), &["lead", "from", "to", "max_points"])?;
    let (from, to) = (q.time("from")?, q.time("to")?);
    params::check_range(from, to)?;
    let max_points = q
        .int("max_points", 2..=MAX_POINTS)?
        .unwrap_or(DEFAULT_POINTS);
    let mut leads: Vec<String> = Vec::new();
    for l in q.all("lead") {
        if !ecg.leads.iter().any(|d| d == l) {
            return Err(ApiError::param(
                "lead",
                format!("the ECG has no lead {l:?}; its leads are {:?}", ecg.leads),
            ));
        }
        if !leads.iter().any(|x| x == l) {
            leads.push(l.to_owned());
        }
    }
    if leads.is_empty() {
        leads.clone_from(&ecg.leads);
    }
    let (rate, t0) = (ecg.sample_rate_hz, ecg.started_at);
    let end = blocks::lead_totals(&state.clickhouse, tenant, id)
        .await?
        .iter()
        .map(|t| t.samples)
        .max()
        .unwrap_or(0);
    let first = from.map_or(0, |t| params::index_at(t, t0, rate)).min(end);
    let last = to
        .map_or(end, |t| params::index_at(t, t0, rate))
        .min(end)
        .max(first);
    let bucket = (last - first).div_ceil(max_points).max(1);
    let buckets = if last > first {
        store::sample_buckets(&state.clickhouse, tenant, id, &leads, first, last, bucket).await?
    } else {
        Vec::new()
    };
    let mut series: Vec<LeadSeries> = leads
        .iter()
        .map(|l| LeadSeries {
            lead: l.clone(),
            t_s: Vec::new(),
            min: Vec::new(),
            max: Vec::new(),
        })
        .collect();
    for b in buckets {
        if let Some(s) = series.iter_mut().find(|s| s.lead == b.lead) {
            s.t_s.push(b.first as f64 / rate);
            s.min.push(b.min);
            s.max.push(b.max);
        }
    }
    let wants_arrow = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains(ARROW_STREAM));
    if wants_arrow {
        return arrow(&series);
    }
    Ok(Json(SamplesPage {
        id,
        units: ecg.units,
        sample_rate_hz: rate,
        started_at: t0,
        from: from.unwrap_or_else(|| params::time_of(first, t0, rate)),
        to: to.unwrap_or_else(|| params::time_of(last, t0, rate)),
        bucket_samples: bucket,
        leads: series,
    })
    .into_response())
}

/// The series as one Arrow IPC stream of one record batch, a row per bucket.
fn arrow(series: &[LeadSeries]) -> Result<Response, ApiError> {
    let lead: Vec<&str> = series
        .iter()
        .flat_map(|s| std::iter::repeat_n(s.lead.as_str(), s.t_s.len()))
        .collect();
    let column = |f: fn(&LeadSeries) -> &Vec<f64>| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(
            series.iter().flat_map(|s| f(s).iter().copied()),
        ))
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("lead", DataType::Utf8, false),
        Field::new("t_s", DataType::Float64, false),
        Field::new("min", DataType::Float64, false),
        Field::new("max", DataType::Float64, false),
    ]));
    let encode = || -> Result<Vec<u8>, arrow_schema::ArrowError> {
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(lead)),
                column(|s| &s.t_s),
                column(|s| &s.min),
                column(|s| &s.max),
            ],
        )?;
        let mut out = Vec::new();
        let mut writer = StreamWriter::try_new(&mut out, &schema)?;
        writer.write(&batch)?;
        writer.finish()?;
        drop(writer);
        Ok(out)
    };
    let bytes = encode().map_err(|e| anyhow::Error::new(e).context("encoding Arrow IPC"))?;
    Ok(([(header::CONTENT_TYPE, ARROW_STREAM)], bytes).into_response())
}
