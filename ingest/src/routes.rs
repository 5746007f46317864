//! The gateway's endpoints. Every handler validates fully before it produces
//! anything, so a rejected request changes nothing.

use axum::Json;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use ecg_auth::{Authorized, EcgWrite, Principal};
use ecg_clickhouse::EcgRow;
use ecg_formats::fhir;
use ecg_input::{json, tabular};
use ecg_schemas::api::ErrorBody;
use ecg_schemas::api::{Accepted, ArrowStream, ChunkRequest, CreateEcg, EndStream};
use ecg_schemas::samples::{Columns, lead_columns};
use ecg_schemas::{Chunk, EcgHeader, Invalid, Signal};
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use std::sync::Arc;

use crate::AppState;
use crate::body_format::BodyFormat;
use crate::budget::Owner;
use crate::error::ApiError;
use crate::extract::{CallerEcg, Head};
use crate::idempotency::{self, IdempotencyKey, Plan};
use crate::params::Params;
use crate::quota::Pacer;
use crate::upload;

/// `POST /v1/ecgs`: opens an ECG; with `signal`, the whole ECG at once.
#[utoipa::path(
    post,
    path = "/v1/ecgs",
    tag = "ecgs",
    summary = "Open an ECG, optionally with its whole signal",
    description = "Declares the device, sample rate, leads, units and (for ADC counts) each lead's gain and baseline. With `signal`, the whole recording is cut into chunks and the ECG is final. JSON bodies are limited (`upload.max_json_bytes`); larger recordings go through `PUT /v1/ecgs/{id}/signal`. With an `Idempotency-Key` header, a retry with the same key and the same body (from the same client) gets the same ECG and the same 202, marked `Idempotent-Replayed: true`, and produces nothing again, through any gateway and after restarts; the same key with another body is a 422. Keys are remembered for 24 hours.",
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters (0x21 to 0x7e), e.g. a UUID, chosen by the client for this create and sent again with each retry of it; scoped to the client and its tenant, remembered for 24 hours")),
    request_body(description = "The ECG: the JSON request, or an HL7 FHIR R4 `Observation` with one `component` of `SampledData` per lead (as `GET /v1/ecgs/{id}/fhir` answers: leads from their MDC code or `code.text`, the device from `device.identifier` or `subject.identifier`, the start from `effectivePeriod.start` or `effectiveDateTime`, every sample origin + factor x data computed exactly; integer data with an exact factor stay ADC counts). A FHIR body is held to the same limits; its errors point into the Observation (`/component/2/valueSampledData/data/7`).", content(
        (CreateEcg = "application/json"),
        (Object = "application/fhir+json"),
    )),
    responses(
        (status = 202, description = "Accepted: every chunk is acknowledged by Kafka", body = Accepted, headers(("Location" = String, description = "The status URL"), ("Idempotent-Replayed" = bool, description = "`true` on the answer to a retry of a create with the same `Idempotency-Key` and body, which opened nothing and produced nothing"))),
        (status = 400, description = "A query parameter: this endpoint reads none (`field` names it, e.g. `?x`); or an `Idempotency-Key` that is not 1 to 255 visible ASCII characters, or is sent twice (`field`: `Idempotency-Key`)", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody, headers(("WWW-Authenticate" = String))),
        (status = 403, description = "The token lacks scope ecg:write", body = ErrorBody),
        (status = 413, description = "Body over `upload.max_json_bytes` (`limit`)", body = ErrorBody),
        (status = 408, description = "The body arrived too slowly (`body_timeout`; `limit` is the pause in ms or the rate in bytes/s it broke); nothing was accepted", body = ErrorBody),
        (status = 415, description = "Neither application/json nor application/fhir+json", body = ErrorBody),
        (status = 422, description = "Invalid field (`field` is a JSON pointer, `limit` the limit exceeded); or `idempotency_key_reused` (`field`: `Idempotency-Key`): the key opened another ECG, named in the message, with another body within 24 hours", body = ErrorBody),
        (status = 429, description = "Over the client's rate limit, or the client's or its tenant's share of the request bodies in flight (`over_share`, `limit`)", body = ErrorBody, headers(("Retry-After" = u64))),
        (status = 503, description = "Kafka did not acknowledge in time, or ClickHouse (the ECG registry) is out of reach or did not answer within `registry.timeout_ms` (`unavailable`: retry; with the same `Idempotency-Key` the retry opens the same ECG), or the bodies in flight filled `upload.max_buffered_bytes` (`busy`, `limit`); nothing was accepted", body = ErrorBody, headers(("Retry-After" = u64))),
    ),
    security(("bearer" = ["ecg:write"]))
)]
#[tracing::instrument(skip_all, fields(tenant = %auth.0.tenant))]
pub async fn create_ecg(
    State(state): State<AppState>,
    auth: Authorized<EcgWrite>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    state.rate_limits.request(&auth.0.client_id)?;
    Params::parse(query.as_deref(), &[])?;
    let format = BodyFormat::of(&headers, &[BodyFormat::Json, BodyFormat::Fhir])?;
    let key = IdempotencyKey::of(&headers)?;
    let (bytes, _held) = state.bodies.read(body, owner(&auth.0)).await?;
    let (req, signal) = match format {
        BodyFormat::Fhir => {
            let FhirEcg { request, columns } = fhir_ecg(&bytes)?;
            // A whole recording, cut into chunks below: held to the limit
            // of whole-signal uploads, not to one chunk's.
            let per_lead = match &columns {
                Columns::Values(c) => c.values().map(|v| v.len()).max(),
                Columns::Counts(c) => c.values().map(|v| v.len()).max(),
            };
            let total = per_lead.unwrap_or(0) as u64 * request.leads.len() as u64;
            if total > state.upload.max_samples {
                return Err(ApiError::TooManySamples {
                    limit: state.upload.max_samples,
                });
            }
            let whole = ecg_schemas::Limits {
                max_chunk_samples: usize::MAX,
                max_chunk_values: usize::MAX,
                ..(*state.limits).clone()
            };
            let signal = checked_ecg(&whole, &request, Some(columns))
                .map_err(|e| locate_in_fhir(&request.leads, e))?;
            (request, signal)
        }
        _ => {
            let mut req: CreateEcg = json::decode(&bytes)?;
            let columns = req.signal.take().map(|s| Columns::Values(lead_columns(s)));
            let signal = checked_ecg(&state.limits, &req, columns)?;
            (req, signal)
        }
    };
    let calibration = req
        .adc
        .as_ref()
        .map(|adc| {
            req.leads
                .iter()
                .filter_map(|l| adc.get(l).copied())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let samples = signal.as_ref().map_or(0, signal_samples);
    let started_at = truncate_to_micros(req.started_at.unwrap_or_else(OffsetDateTime::now_utc));
    let (id, started_at, chunk_samples) = match &key {
        None => (Uuid::new_v4(), started_at, state.upload.chunk_samples),
        // See `idempotency` for the recipe and its guarantees.
        Some(key) => {
            let digest = idempotency::digest(format.label(), &bytes);
            let chunk_samples = state.upload.chunk_samples;
            match idempotency::plan(
                &state.registry,
                &auth.0,
                key,
                &digest,
                started_at,
                chunk_samples,
            )
            .await?
            {
                Plan::Replay { id, chunk_samples } => {
                    let chunks = signal
                        .as_ref()
                        .map_or(0, |s| s.len().div_ceil(chunk_samples));
                    tracing::info!(ecg_id = %id, "identical retry of a create, answered again");
                    let mut answer = accepted(id, chunks as u32);
                    answer
                        .headers_mut()
                        .insert(idempotency::REPLAYED, HeaderValue::from_static("true"));
                    return Ok(answer);
                }
                Plan::Create {
                    id,
                    started_at,
                    chunk_samples,
                } => (id, started_at, chunk_samples),
            }
        }
    };
    state.rate_limits.samples(&auth.0.client_id, samples)?;
    if key.is_none() && signal.is_some() {
        // ClickHouse must answer before chunks are produced, or an outage
        // leaves chunks of an ECG that is never registered (a keyed create
        // has just read and written its key).
        state.registry.ping().await?;
    }
    let header = EcgHeader {
        ecg_id: id,
        tenant: auth.0.tenant.clone(),
        device_id: req.device_id,
        sample_rate_hz: req.sample_rate_hz,
        units: req.units,
        started_at,
        leads: req.leads,
    };
    let chunks: Vec<Chunk> = match signal {
        None => Vec::new(),
        Some(signal) => {
            let parts = signal.split(chunk_samples);
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
        units: header.units,
        adc_gain: calibration.iter().map(|c| c.gain).collect(),
        adc_baseline: calibration.iter().map(|c| c.baseline).collect(),
        started_at: header.started_at,
        final_seq: chunks.last().map(|c| c.seq),
        signal_digest: String::new(),
    };
    state.registry.insert(record).await?;
    crate::metrics::accepted(format.label(), bytes.len() as u64, samples);
    tracing::info!(ecg_id = %id, chunks = chunks.len(), "ECG accepted");
    Ok(accepted(id, chunks.len() as u32))
}

/// `POST /v1/ecgs/{id}/chunks`: the next chunk of a streamed ECG.
#[utoipa::path(
    post,
    path = "/v1/ecgs/{id}/chunks",
    tag = "ecgs",
    summary = "Send one chunk of a streamed ECG",
    description = "A JSON body carries `seq`, `final` and `samples`. A CSV body (header = lead names, optionally after a time column named `t`, `time`, `seconds`, `t_s`, `time_s` (seconds) or `t_ms`, `time_ms` (milliseconds) whose values step by one sample period a line; any other column that is not a lead is a 422 naming it) or an Arrow IPC stream (one numeric column per lead) carries only samples, with `?seq=N&final=true|false`; a JSON body may repeat them in the query only as they are in the body. Chunks may arrive in any order and be resent; each (ECG, seq) counts once.",
    params(
        ("id" = Uuid, Path, description = "The ECG id returned by POST /v1/ecgs"),
        ("seq" = Option<u32>, Query, description = "The chunk's seq (CSV and Arrow bodies only), 0 to `limits.max_seq`"),
        ("final" = Option<bool>, Query, description = "True on the last chunk (CSV and Arrow bodies only)"),
    ),
    request_body(
        description = "The chunk",
        content(
            (ChunkRequest = "application/json"),
            (String = "text/csv"),
            (ArrowStream = "application/vnd.apache.arrow.stream"),
        )
    ),
    responses(
        (status = 202, description = "Accepted: the chunk is acknowledged by Kafka", body = Accepted),
        (status = 400, description = "A malformed id (`field`: `id`), or a query parameter that is unknown, repeated, malformed, missing (`seq` with a CSV or Arrow body) or contradicts a JSON body's `seq` or `final` (`field`: `?seq`, `?final`)", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody, headers(("WWW-Authenticate" = String))),
        (status = 403, description = "The token lacks scope ecg:write", body = ErrorBody),
        (status = 404, description = "No such ECG for this tenant", body = ErrorBody),
        (status = 409, description = "The ECG is final and the chunk lies beyond its last seq", body = ErrorBody),
        (status = 413, description = "Body over `upload.max_json_bytes` (`limit`), JSON, CSV and Arrow alike", body = ErrorBody),
        (status = 415, description = "Unsupported content type", body = ErrorBody),
        (status = 422, description = "Invalid field or sample (`field` is a JSON pointer)", body = ErrorBody),
        (status = 408, description = "The body arrived too slowly (`body_timeout`; `limit` is the pause in ms or the rate in bytes/s it broke); the chunk was not accepted", body = ErrorBody),
        (status = 429, description = "Over the client's rate limit or sample quota, or the client's or its tenant's share of the request bodies in flight (`over_share`, `limit`)", body = ErrorBody, headers(("Retry-After" = u64))),
        (status = 503, description = "Kafka did not acknowledge in time, or ClickHouse (the ECG registry, asked about an ECG this gateway has not seen yet) is out of reach or did not answer within `registry.timeout_ms` (`unavailable`), or the bodies in flight filled `upload.max_buffered_bytes` (`busy`, `limit`); the chunk was not accepted", body = ErrorBody, headers(("Retry-After" = u64))),
    ),
    security(("bearer" = ["ecg:write"]))
)]
#[tracing::instrument(skip_all, fields(tenant = %caller.tenant, ecg_id = %ecg.ecg_id))]
pub async fn post_chunk(
    State(state): State<AppState>,
    CallerEcg {
        caller,
        ecg,
        head: ChunkHead { params, format },
    }: CallerEcg<ChunkHead>,
    body: Body,
) -> Result<Response, ApiError> {
    let id = ecg.ecg_id;
    // Held until the answer: the samples made from the body live that long.
    let (bytes, _held) = state.bodies.read(body, owner(&caller)).await?;
    let body_len = bytes.len() as u64;
    let (seq, is_final, columns) = match format {
        BodyFormat::Json => {
            let req = json::decode_chunk(&bytes)?;
            params.agree_with(req.seq, req.r#final)?;
            (
                req.seq,
                req.r#final,
                Columns::Values(lead_columns(req.samples)),
            )
        }
        BodyFormat::Csv | BodyFormat::Arrow | BodyFormat::Fhir => {
            let seq = params.seq.ok_or_else(|| {
                ApiError::param("?seq", "CSV and Arrow bodies need the chunk's seq as a query parameter: ?seq=N[&final=true]")
            })?;
            let columns = match format {
                BodyFormat::Csv => {
                    Columns::Values(tabular::csv(&bytes, &ecg.leads, ecg.sample_rate_hz)?)
                }
                // The samples stay in the body's memory (see `tabular`).
                _ => tabular::arrow_columns(bytes)?,
            };
            (seq, params.r#final.unwrap_or(false), columns)
        }
    };
    let seq_field = match format {
        BodyFormat::Json => "/seq",
        _ => "?seq",
    };
    state.limits.check_seq(seq_field, seq)?;
    let samples = state.limits.take_columns(
        "/samples",
        &ecg.leads,
        ecg.calibration().as_deref(),
        columns,
    )?;
    match ecg.final_seq {
        Some(last) if seq > last => {
            return Err(ApiError::Conflict(format!(
                "ECG {id} ended with chunk {last}; chunk {seq} comes after it and cannot be added"
            )));
        }
        Some(last) if is_final && seq != last => {
            return Err(ApiError::Conflict(format!(
                "ECG {id} ended with chunk {last}; chunk {seq} cannot be marked final"
            )));
        }
        Some(_) => {}
        None if is_final => can_end_at(&state, &ecg, seq).await?,
        None => {}
    }
    let count = signal_samples(&samples);
    state.rate_limits.samples(&caller.client_id, count)?;
    let chunk = Chunk {
        header: header_of(&ecg),
        seq,
        is_final,
        samples,
    };
    state.producer.send(std::slice::from_ref(&chunk)).await?;
    if is_final {
        record_end(&state, &ecg, seq).await;
    }
    crate::metrics::accepted(format.label(), body_len, count);
    Ok(accepted(id, 1))
}

/// `POST /v1/ecgs/{id}/end`: ends a stream whose last chunk went out
/// without `final`.
#[utoipa::path(
    post,
    path = "/v1/ecgs/{id}/end",
    tag = "ecgs",
    summary = "End a streamed ECG after its last chunk",
    description = "Says which chunk is the ECG's last, for a device that learns it has stopped only after sending it (otherwise mark the last chunk `final`). The last chunk may be sent before or after the end. Ending again at the same seq is answered 202 again; chunks after the final seq are then refused with 409.",
    params(("id" = Uuid, Path, description = "The ECG id")),
    request_body(description = "The last chunk's seq", content = EndStream, content_type = "application/json"),
    responses(
        (status = 202, description = "Accepted: the end is acknowledged by Kafka (`chunks`: 0)", body = Accepted, headers(("Location" = String, description = "The status URL"))),
        (status = 400, description = "A malformed id (`field`: `id`) or a query parameter (this endpoint reads none)", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody, headers(("WWW-Authenticate" = String))),
        (status = 403, description = "The token lacks scope ecg:write", body = ErrorBody),
        (status = 404, description = "No such ECG for this tenant", body = ErrorBody),
        (status = 409, description = "The ECG already ended at another seq, or a later chunk than `final_seq` already arrived", body = ErrorBody),
        (status = 413, description = "Body over `upload.max_json_bytes` (`limit`)", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "Invalid body (`field`: `/final_seq`, `limit` when over `limits.max_seq`)", body = ErrorBody),
        (status = 408, description = "The body arrived too slowly (`body_timeout`; `limit` is the pause in ms or the rate in bytes/s it broke); the end was not accepted", body = ErrorBody),
        (status = 429, description = "Over the client's rate limit, or the client's or its tenant's share of the request bodies in flight (`over_share`, `limit`)", body = ErrorBody, headers(("Retry-After" = u64))),
        (status = 503, description = "Kafka did not acknowledge in time, or ClickHouse (the ECG registry) is out of reach or did not answer within `registry.timeout_ms` (`unavailable`), or the bodies in flight filled `upload.max_buffered_bytes` (`busy`, `limit`); the end was not accepted", body = ErrorBody, headers(("Retry-After" = u64))),
    ),
    security(("bearer" = ["ecg:write"]))
)]
#[tracing::instrument(skip_all, fields(tenant = %caller.tenant, ecg_id = %ecg.ecg_id))]
pub async fn end_stream(
    State(state): State<AppState>,
    CallerEcg { caller, ecg, .. }: CallerEcg<EndHead>,
    body: Body,
) -> Result<Response, ApiError> {
    let id = ecg.ecg_id;
    let (bytes, _held) = state.bodies.read(body, owner(&caller)).await?;
    let EndStream { final_seq } = json::decode(&bytes)?;
    state.limits.check_seq("/final_seq", final_seq)?;
    match ecg.final_seq {
        // Said again (a retry whose answer was lost): answered as before.
        Some(last) if last == final_seq => return Ok(accepted(id, 0)),
        Some(last) => {
            return Err(ApiError::Conflict(format!(
                "ECG {id} already ended with chunk {last}; it cannot end with chunk {final_seq}"
            )));
        }
        None => can_end_at(&state, &ecg, final_seq).await?,
    }
    let mark = Chunk::end_mark(header_of(&ecg), final_seq);
    state.producer.send(std::slice::from_ref(&mark)).await?;
    record_end(&state, &ecg, final_seq).await;
    tracing::info!(final_seq, "stream ended");
    Ok(accepted(id, 0))
}

/// 409 unless chunk `seq` can be the last of an ECG whose final seq is not
/// known yet: no later chunk is stored. A later chunk still on its way
/// through Kafka is not seen here; the processor then refuses the final
/// mark once (see `processor/README.md`).
async fn can_end_at(state: &AppState, ecg: &EcgRow, seq: u32) -> Result<(), ApiError> {
    let stored = state
        .registry
        .highest_stored_seq(&ecg.tenant, ecg.ecg_id)
        .await?;
    match stored {
        Some(later) if later > seq => Err(ApiError::Conflict(format!(
            "chunk {seq} cannot be the last chunk of ECG {}: chunk {later} already arrived",
            ecg.ecg_id
        ))),
        _ => Ok(()),
    }
}

/// Records the ECG's final seq in the registry once Kafka has the chunk or
/// end mark that says it, so later chunks get 409 here. The processor knows
/// the end from Kafka either way: a failure to record it is logged, and the
/// request is still accepted.
async fn record_end(state: &AppState, ecg: &EcgRow, seq: u32) {
    let row = EcgRow {
        final_seq: Some(seq),
        ..ecg.clone()
    };
    if let Err(e) = state.registry.insert(row).await {
        tracing::warn!(error = %e, final_seq = seq, "could not record the final seq in the registry");
    }
}

/// `PUT /v1/ecgs/{id}/signal`: the whole signal of an opened ECG, streamed
/// as CSV or an Arrow IPC stream of any length (see [`crate::upload`]).
#[utoipa::path(
    put,
    path = "/v1/ecgs/{id}/signal",
    tag = "ecgs",
    summary = "Upload a whole recording of any size, streamed",
    description = "The body (CSV: header = lead names, optionally after a time column as for chunks, whose values step by one sample period a line; any other column is a 422 naming it; or an Arrow IPC stream: one numeric column per lead, any batch sizes) is cut into chunks as it is read and validated whole before anything is produced: a bad sample anywhere gives 422 and changes nothing. The 202 comes once every chunk is acknowledged by Kafka; the ECG is then final. Memory use does not grow with the body.",
    params(("id" = Uuid, Path, description = "The ECG id returned by POST /v1/ecgs")),
    request_body(
        description = "The whole signal",
        content((String = "text/csv"), (ArrowStream = "application/vnd.apache.arrow.stream"))
    ),
    responses(
        (status = 202, description = "Accepted: every chunk is acknowledged by Kafka", body = Accepted),
        (status = 400, description = "A malformed id (`field`: `id`), or a query parameter: this endpoint reads none", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody, headers(("WWW-Authenticate" = String))),
        (status = 403, description = "The token lacks scope ecg:write", body = ErrorBody),
        (status = 404, description = "No such ECG for this tenant", body = ErrorBody),
        (status = 409, description = "The ECG already has its whole signal, from another body (an identical retry of the PUT that gave it gets that PUT's 202 again, producing nothing)", body = ErrorBody),
        (status = 413, description = "More samples than `upload.max_signal_samples` (`limit`)", body = ErrorBody),
        (status = 415, description = "Not CSV or Arrow IPC", body = ErrorBody),
        (status = 422, description = "Invalid sample or structure (`field` names lead and sample index)", body = ErrorBody),
        (status = 408, description = "The body paused or slowed beyond its limits, counting only the time the gateway waited for it, not the pacing to the sample quota (`body_timeout`; `limit` is the pause in ms or the rate in bytes/s it broke); nothing was produced", body = ErrorBody),
        (status = 429, description = "Over the client's request rate", body = ErrorBody, headers(("Retry-After" = u64))),
        (status = 503, description = "Kafka did not acknowledge in time, or ClickHouse (the ECG registry) is out of reach or did not answer within `registry.timeout_ms` (`unavailable`); retry the same PUT (it is idempotent: once one has succeeded, the same body gets its 202 again)", body = ErrorBody, headers(("Retry-After" = u64))),
    ),
    security(("bearer" = ["ecg:write"]))
)]
#[tracing::instrument(skip_all, fields(tenant = %caller.tenant, ecg_id = %ecg.ecg_id))]
pub async fn put_signal(
    State(state): State<AppState>,
    CallerEcg {
        caller,
        ecg,
        head: SignalHead(format),
    }: CallerEcg<SignalHead>,
    body: Body,
) -> Result<Response, ApiError> {
    let id = ecg.ecg_id;
    if let Some(last) = ecg.final_seq {
        if ecg.signal_digest.is_empty() {
            return Err(ApiError::Conflict(format!(
                "ECG {id} already has its whole signal (chunks 0 to {last}), given when it was opened or streamed; open a new ECG for another recording"
            )));
        }
        // The upload that made the ECG final, retried because its answer
        // was lost: answered as it was, producing nothing again.
        if upload::digest(body, format, state.upload.body_rate).await? == ecg.signal_digest {
            tracing::info!(chunks = last + 1, "identical retry of the whole signal");
            return Ok(accepted(id, last + 1));
        }
        return Err(ApiError::Conflict(format!(
            "ECG {id} already has its whole signal (chunks 0 to {last}) from another body; an identical retry of that PUT gets its answer again; open a new ECG for another recording"
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
        Pacer::new(state.rate_limits.clone(), caller.client_id.clone()),
    )
    .await?;
    crate::metrics::accepted(
        format.label(),
        uploaded.bytes,
        uploaded.samples_per_lead * ecg.leads.len() as u64,
    );
    let last = uploaded.chunks - 1;
    state
        .registry
        .insert(EcgRow {
            final_seq: Some(last),
            signal_digest: uploaded.digest,
            ..(*ecg).clone()
        })
        .await?;
    tracing::info!(
        chunks = uploaded.chunks,
        samples_per_lead = uploaded.samples_per_lead,
        seconds = started.elapsed().as_secs_f64(),
        "whole signal accepted"
    );
    Ok(accepted(id, uploaded.chunks))
}

/// A new ECG's header and signal, checked against the limits: what
/// `POST /v1/ecgs` takes, whatever the body's format.
fn checked_ecg(
    limits: &ecg_schemas::Limits,
    req: &CreateEcg,
    columns: Option<Columns>,
) -> Result<Option<Signal>, Invalid> {
    limits.check_header(&req.device_id, req.sample_rate_hz, &req.leads)?;
    if let Some(started_at) = req.started_at {
        limits.check_started_at(started_at)?;
    }
    let calibration = match &req.adc {
        Some(adc) => Some(limits.check_adc(&req.leads, adc)?),
        None => None,
    };
    columns
        .map(|c| limits.take_columns("/signal", &req.leads, calibration.as_deref(), c))
        .transpose()
}

/// A FHIR Observation read as the equivalent JSON request.
struct FhirEcg {
    request: CreateEcg,
    columns: Columns,
}

fn fhir_ecg(bytes: &[u8]) -> Result<FhirEcg, ApiError> {
    let obs = fhir::import(bytes).map_err(|e| Invalid::new(e.pointer, e.message))?;
    Ok(FhirEcg {
        request: CreateEcg {
            device_id: obs.device_id,
            sample_rate_hz: obs.sample_rate_hz,
            leads: obs.leads,
            units: obs.units,
            started_at: obs.started_at,
            adc: obs.adc,
            signal: None,
        },
        columns: obs.columns,
    })
}

/// `e`, a complaint about the request a FHIR Observation was read as,
/// with its JSON pointer into that request (`/leads/2`, `/signal/II/7`)
/// turned into one into the Observation.
fn locate_in_fhir(leads: &[String], mut e: Invalid) -> Invalid {
    let component = |lead: &str| {
        leads
            .iter()
            .position(|l| l == lead)
            .map(|k| format!("/component/{k}"))
    };
    let mut parts = e.field.trim_start_matches('/').splitn(3, '/');
    let field = match (parts.next(), parts.next(), parts.next()) {
        (Some("device_id"), ..) => Some("/device/identifier/value".to_owned()),
        (Some("sample_rate_hz"), ..) => Some("/component/0/valueSampledData/period".to_owned()),
        (Some("started_at"), ..) => Some("/effectivePeriod/start".to_owned()),
        (Some("leads"), Some(k), _) => Some(format!("/component/{k}/code")),
        (Some("leads"), None, _) => Some("/component".to_owned()),
        (Some("adc"), Some(lead), _) => {
            component(lead).map(|c| format!("{c}/valueSampledData/factor"))
        }
        (Some("signal"), Some(lead), at) => component(lead).map(|c| match at {
            Some(i) => format!("{c}/valueSampledData/data/{i}"),
            None => format!("{c}/valueSampledData/data"),
        }),
        _ => None,
    };
    if let Some(field) = field {
        e.message = format!("{} (as {})", e.message, e.field);
        e.field = field;
    }
    e
}

/// Whose body: the caller's client and tenant each have a share of the
/// body budget.
fn owner(caller: &Principal) -> Owner<'_> {
    Owner {
        tenant: &caller.tenant,
        client: &caller.client_id,
    }
}

/// The header every chunk of a registered ECG carries.
fn header_of(ecg: &EcgRow) -> EcgHeader {
    EcgHeader {
        ecg_id: ecg.ecg_id,
        tenant: ecg.tenant.clone(),
        device_id: ecg.device_id.clone(),
        sample_rate_hz: ecg.sample_rate_hz,
        units: ecg.units,
        started_at: ecg.started_at,
        leads: ecg.leads.clone(),
    }
}

/// `GET /healthz`: the process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "The process is up", body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// The answer of `/readyz`: each dependency, `ok` or what is wrong.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    pub kafka: String,
    pub clickhouse: String,
}

/// `GET /readyz`: the broker and ClickHouse answer; a load balancer sends
/// traffic only while this is 200.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready: the broker and ClickHouse answer", body = Readiness),
        (status = 503, description = "Not ready: see which dependency", body = Readiness),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let timeout = std::time::Duration::from_secs(2);
    let (kafka, clickhouse) = tokio::join!(
        state.producer.ping(timeout),
        tokio::time::timeout(timeout, state.registry.ping())
    );
    let clickhouse = match clickhouse {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {timeout:?}")),
    };
    let ready = kafka.is_ok() && clickhouse.is_ok();
    let show = |r: Result<(), String>| r.err().unwrap_or_else(|| "ok".into());
    let body = Readiness {
        kafka: show(kafka),
        clickhouse: show(clickhouse),
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// Samples in a signal, all leads together.
fn signal_samples(signal: &Signal) -> u64 {
    match signal {
        Signal::Physical(leads) => leads.iter().map(|l| l.len() as u64).sum(),
        Signal::Digital { adc, .. } => adc.iter().map(|l| l.len() as u64).sum(),
    }
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

/// Query parameters of a chunk: needed with CSV and Arrow bodies; a JSON
/// body carries them inside, and may repeat them in the query only as they
/// are in the body.
#[derive(Debug)]
struct ChunkParams {
    seq: Option<u32>,
    r#final: Option<bool>,
}

impl ChunkParams {
    fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let params = Params::parse(raw, &["seq", "final"])?;
        Ok(ChunkParams {
            seq: params.u32("seq")?,
            r#final: params.boolean("final")?,
        })
    }

    /// A JSON body's `seq` and `final` against the query's: a query that
    /// says otherwise is a 400, not silently ignored.
    fn agree_with(&self, seq: u32, is_final: bool) -> Result<(), ApiError> {
        if let Some(q) = self.seq.filter(|&q| q != seq) {
            return Err(ApiError::param(
                "?seq",
                format!("?seq={q} contradicts the body's seq {seq}; send one or make them agree"),
            ));
        }
        if let Some(q) = self.r#final.filter(|&q| q != is_final) {
            return Err(ApiError::param(
                "?final",
                format!(
                    "?final={q} contradicts the body's final {is_final}; send one or make them agree"
                ),
            ));
        }
        Ok(())
    }
}

/// What a chunk's request says besides its body: `?seq`, `?final`, and
/// the body's format (JSON, CSV or Arrow).
#[derive(Debug)]
pub struct ChunkHead {
    params: ChunkParams,
    format: BodyFormat,
}

impl Head for ChunkHead {
    fn read(parts: &Parts) -> Result<Self, ApiError> {
        Ok(ChunkHead {
            params: ChunkParams::parse(parts.uri.query())?,
            format: BodyFormat::of(
                &parts.headers,
                &[BodyFormat::Json, BodyFormat::Csv, BodyFormat::Arrow],
            )?,
        })
    }
}

/// A whole signal's request: no query, a body in one of
/// [`upload::FORMATS`].
#[derive(Debug)]
pub struct SignalHead(BodyFormat);

impl Head for SignalHead {
    fn read(parts: &Parts) -> Result<Self, ApiError> {
        Params::parse(parts.uri.query(), &[])?;
        BodyFormat::of(&parts.headers, &upload::FORMATS).map(SignalHead)
    }
}

/// An end's request: no query, a JSON body.
#[derive(Debug)]
pub struct EndHead;

impl Head for EndHead {
    fn read(parts: &Parts) -> Result<Self, ApiError> {
        Params::parse(parts.uri.query(), &[])?;
        BodyFormat::of(&parts.headers, &[BodyFormat::Json]).map(|_| EndHead)
    }
}

/// Any path no route has: 404 with a JSON body.
pub async fn no_route(uri: Uri) -> ApiError {
    ApiError::NoRoute {
        path: uri.path().to_string(),
    }
}

/// A route's path with a method it does not take: 405 with a JSON body.
pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_string(),
    }
}

/// ClickHouse stores `started_at` with microsecond precision; cutting it here
/// keeps every chunk's header equal to the registry row.
fn truncate_to_micros(t: OffsetDateTime) -> OffsetDateTime {
    let nanos = t.nanosecond();
    t.replace_nanosecond(nanos - nanos % 1_000).unwrap_or(t)
}
