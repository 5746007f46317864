//! The gateway's endpoints. Every handler validates fully before it produces
//! anything, so a rejected request changes nothing.

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ecg_auth::{Authorized, EcgWrite};
use ecg_schemas::api::{Accepted, ChunkRequest, CreateEcg};
use ecg_schemas::{Chunk, EcgHeader, Invalid, input, json};
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;

use std::sync::Arc;

use crate::AppState;
use crate::error::ApiError;
use crate::upload::{self, SignalFormat};
use ecg_clickhouse::EcgRow;

/// `POST /v1/ecgs`: opens an ECG; with `signal`, the whole ECG at once.
#[tracing::instrument(skip_all, fields(tenant = %auth.0.tenant))]
pub async fn create_ecg(
    State(state): State<AppState>,
    auth: Authorized<EcgWrite>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    BodyFormat::of(&headers, &[BodyFormat::Json])?;
    let bytes = read_body(&state, body).await?;
    let req: CreateEcg = json::decode(&bytes)?;
    state
        .limits
        .check_header(&req.device_id, req.sample_rate_hz, &req.leads)?;
    let calibration = match &req.adc {
        Some(adc) => Some(state.limits.check_adc(&req.leads, adc)?),
        None => None,
    };
    let signal = match &req.signal {
        Some(signal) => Some(state.limits.check_signal(
            "/signal",
            &req.leads,
            calibration.as_deref(),
            signal,
        )?),
        None => None,
    };
    let id = Uuid::new_v4();
    let header = EcgHeader {
        ecg_id: id,
        tenant: auth.0.tenant.clone(),
        device_id: req.device_id,
        sample_rate_hz: req.sample_rate_hz,
        units: req.units,
        started_at: truncate_to_micros(req.started_at.unwrap_or_else(OffsetDateTime::now_utc)),
        leads: req.leads,
    };
    let chunks: Vec<Chunk> = match signal {
        None => Vec::new(),
        Some(signal) => {
            let parts = signal.split(state.chunk_samples);
            let last = parts.len().saturating_sub(1);
            parts
                .into_iter()
                .enumerate()
                .map(|(i, samples)| Chunk {
                    header: header.clone(),
                    seq: i as u32,
                    is_final: i == last,
                    samples,
                })
                .collect()
        }
    };
    // Chunks first, registry row second: the id is only handed out once both
    // are durable, and a failure leaves nothing a client can see.
    state.producer.send(&chunks).await?;
    let record = EcgRow {
        tenant: header.tenant.clone(),
        ecg_id: id,
        device_id: header.device_id.clone(),
        sample_rate_hz: header.sample_rate_hz,
        leads: header.leads.clone(),
        units: header.units.as_str().into(),
        adc_gain: calibration.iter().flatten().map(|c| c.gain).collect(),
        adc_baseline: calibration.iter().flatten().map(|c| c.baseline).collect(),
        started_at: header.started_at,
        final_seq: chunks.last().map(|c| c.seq),
    };
    state
        .registry
        .insert(record)
        .await
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("registering the ECG")))?;
    tracing::info!(ecg_id = %id, chunks = chunks.len(), "ECG accepted");
    Ok(accepted(id, chunks.len() as u32))
}

/// `POST /v1/ecgs/{id}/chunks`: the next chunk of a streamed ECG.
#[tracing::instrument(skip_all, fields(tenant = %auth.0.tenant, ecg_id = %id))]
pub async fn post_chunk(
    State(state): State<AppState>,
    auth: Authorized<EcgWrite>,
    Path(id): Path<Uuid>,
    query: Result<Query<ChunkParams>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let ecg = lookup(&state, &auth.0.tenant, id).await?;
    let format = BodyFormat::of(
        &headers,
        &[BodyFormat::Json, BodyFormat::Csv, BodyFormat::Arrow],
    )?;
    let bytes = read_body(&state, body).await?;
    let req = match format {
        BodyFormat::Json => json::decode_chunk(&bytes)?,
        BodyFormat::Csv | BodyFormat::Arrow => {
            let Query(params) = query.map_err(|e| Invalid::new("", e.body_text()))?;
            let seq = params.seq.ok_or_else(|| {
                Invalid::new("/seq", "CSV and Arrow bodies need the chunk's seq as a query parameter: ?seq=N[&final=true]")
            })?;
            let samples = match format {
                BodyFormat::Csv => input::csv(&bytes, &ecg.leads)?,
                _ => input::arrow(&bytes)?,
            };
            ChunkRequest {
                seq,
                samples,
                r#final: params.r#final,
            }
        }
    };
    let samples = state.limits.check_signal(
        "/samples",
        &ecg.leads,
        ecg.calibration().as_deref(),
        &req.samples,
    )?;
    if let Some(last) = ecg.final_seq {
        if req.seq > last || (req.r#final && req.seq != last) {
            return Err(ApiError::Conflict(format!(
                "ECG {id} is final with last chunk {last}; chunk {} cannot be added",
                req.seq
            )));
        }
    }
    let chunk = Chunk {
        header: header_of(&ecg),
        seq: req.seq,
        is_final: req.r#final,
        samples,
    };
    state.producer.send(std::slice::from_ref(&chunk)).await?;
    Ok(accepted(id, 1))
}

/// `PUT /v1/ecgs/{id}/signal`: the whole signal of an opened ECG, streamed
/// as CSV or an Arrow IPC stream of any length (see [`crate::upload`]).
#[tracing::instrument(skip_all, fields(tenant = %auth.0.tenant, ecg_id = %id))]
pub async fn put_signal(
    State(state): State<AppState>,
    auth: Authorized<EcgWrite>,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let ecg = lookup(&state, &auth.0.tenant, id).await?;
    let format = match BodyFormat::of(&headers, &[BodyFormat::Csv, BodyFormat::Arrow])? {
        BodyFormat::Csv => SignalFormat::Csv,
        _ => SignalFormat::Arrow,
    };
    if let Some(last) = ecg.final_seq {
        return Err(ApiError::Conflict(format!(
            "ECG {id} already has its whole signal (chunks 0 to {last}); open a new ECG for another recording"
        )));
    }
    let started = std::time::Instant::now();
    let uploaded = upload::upload(
        body,
        format,
        header_of(&ecg),
        ecg.calibration().map(Arc::from),
        &state.upload,
        &state.producer,
    )
    .await?;
    let last = uploaded.chunks - 1;
    state
        .registry
        .insert(EcgRow {
            final_seq: Some(last),
            ..(*ecg).clone()
        })
        .await
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("marking the ECG final")))?;
    tracing::info!(
        chunks = uploaded.chunks,
        samples_per_lead = uploaded.samples_per_lead,
        seconds = started.elapsed().as_secs_f64(),
        "whole signal accepted"
    );
    Ok(accepted(id, uploaded.chunks))
}

/// The caller's ECG `id`, or 404 (also for another tenant's).
async fn lookup(state: &AppState, tenant: &str, id: Uuid) -> Result<Arc<EcgRow>, ApiError> {
    state
        .registry
        .get(tenant, id)
        .await
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("looking up the ECG")))?
        .ok_or(ApiError::NotFound(id))
}

/// The header every chunk of a registered ECG carries.
fn header_of(ecg: &EcgRow) -> EcgHeader {
    EcgHeader {
        ecg_id: ecg.ecg_id,
        tenant: ecg.tenant.clone(),
        device_id: ecg.device_id.clone(),
        sample_rate_hz: ecg.sample_rate_hz,
        units: crate::registry::units(ecg),
        started_at: ecg.started_at,
        leads: ecg.leads.clone(),
    }
}

/// `GET /healthz`: the process is up.
pub async fn healthz() -> &'static str {
    "ok"
}

fn accepted(id: Uuid, chunks: u32) -> Response {
    let status_url = format!("/v1/ecgs/{id}");
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, status_url.clone())],
        Json(Accepted {
            id,
            status_url,
            chunks,
        }),
    )
        .into_response()
}

/// Query parameters of a chunk sent as CSV or Arrow (JSON bodies carry
/// them inside).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkParams {
    seq: Option<u32>,
    #[serde(default)]
    r#final: bool,
}

/// The body formats the gateway reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyFormat {
    Json,
    Csv,
    Arrow,
}

impl BodyFormat {
    fn content_type(self) -> &'static str {
        match self {
            BodyFormat::Json => "application/json",
            BodyFormat::Csv => input::CSV,
            BodyFormat::Arrow => input::ARROW_STREAM,
        }
    }

    /// The body's format from its `Content-Type`, if the endpoint takes it.
    fn of(headers: &HeaderMap, accepted: &[BodyFormat]) -> Result<Self, ApiError> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if let Some(format) = accepted
            .iter()
            .find(|f| f.content_type() == essence.as_str())
        {
            return Ok(*format);
        }
        let types: Vec<&str> = accepted.iter().map(|f| f.content_type()).collect();
        let mut message = format!(
            "content type {content_type:?} is not accepted here; send {}",
            types.join(" or ")
        );
        if essence == "application/json" {
            message
                .push_str("; a whole signal in JSON goes in the `signal` field of POST /v1/ecgs");
        }
        Err(ApiError::UnsupportedMediaType(message))
    }
}

/// Reads a body, refusing one over the configured limit before buffering
/// more than the limit.
async fn read_body(state: &AppState, body: Body) -> Result<bytes::Bytes, ApiError> {
    let limit = state.max_json_bytes;
    to_bytes(body, limit).await.map_err(|e| {
        if std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
        {
            ApiError::TooLarge { limit }
        } else {
            ApiError::Invalid(Invalid::new("", format!("could not read the body: {e}")))
        }
    })
}

/// ClickHouse stores `started_at` with microsecond precision; cutting it here
/// keeps every chunk's header equal to the registry row.
fn truncate_to_micros(t: OffsetDateTime) -> OffsetDateTime {
    let nanos = t.nanosecond();
    t.replace_nanosecond(nanos - nanos % 1_000).unwrap_or(t)
}
