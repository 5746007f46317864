//! Prometheus metrics, served at `/metrics`.
//!
//! | metric | type | labels |
//! |--------|------|--------|
//! | `ecg_ingest_requests_total` | counter | `route`, `status` |
//! | `ecg_ingest_request_duration_seconds` | histogram | `route` |
//! | `ecg_ingest_bytes_accepted_total` | counter | `format` (json, csv, arrow) |
//! | `ecg_ingest_samples_accepted_total` | counter | `format` |
//! | `ecg_ingest_chunks_produced_total` | counter | |
//! | `ecg_ingest_produce_duration_seconds` | histogram | (enqueue to broker acknowledgement) |
//! | `ecg_ingest_produce_failures_total` | counter | |
//! | `ecg_ingest_producer_queue_depth` | gauge | (messages awaiting acknowledgement) |
//! | `ecg_ingest_rate_limited_total` | counter | `limit` (requests, samples) |
//!
//! The recorder is process-wide and shared with any other service in the
//! process (`ecg_runtime::metrics`).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::AppState;

/// The process's Prometheus recorder (shared with any other service in the
/// process; see `ecg_runtime::metrics`).
pub fn handle() -> PrometheusHandle {
    ecg_runtime::metrics::handle()
}

/// Counts and times every request by its route template (never the raw
/// path, whose ids would explode the label set).
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("ecg_ingest_requests_total", "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("ecg_ingest_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`: the Prometheus text format.
pub async fn render(State(state): State<AppState>) -> Response {
    metrics::gauge!("ecg_ingest_producer_queue_depth").set(f64::from(state.producer.queue_depth()));
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle().render(),
    )
        .into_response()
}

/// Records an accepted body.
pub fn accepted(format: &'static str, bytes: u64, samples: u64) {
    metrics::counter!("ecg_ingest_bytes_accepted_total", "format" => format).increment(bytes);
    metrics::counter!("ecg_ingest_samples_accepted_total", "format" => format).increment(samples);
}
