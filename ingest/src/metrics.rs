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
//! | `ecg_ingest_producer_resets_total` | counter | (producers replaced after a fatal Kafka error) |
//! | `ecg_ingest_buffered_body_bytes` | gauge | (request bodies held; see `budget`) |
//! | `ecg_ingest_rate_limited_total` | counter | `limit` (requests, samples) |
//! | `ecg_ingest_slow_bodies_total` | counter | `limit` (idle, rate): bodies cut with 408 (see `body_rate`) |
//!
//! The recorder is process-wide and shared with any other service in the
//! process (`ecg_runtime::metrics`).

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use ecg_runtime::metrics::RequestMetrics;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::AppState;

/// The process's Prometheus recorder (shared with any other service in the
/// process; see `ecg_runtime::metrics`).
pub fn handle() -> PrometheusHandle {
    ecg_runtime::metrics::handle()
}

// The names in the table above, for wherever a metric is recorded.
pub const REQUESTS_TOTAL: &str = "ecg_ingest_requests_total";
pub const REQUEST_DURATION: &str = "ecg_ingest_request_duration_seconds";
pub const BYTES_ACCEPTED: &str = "ecg_ingest_bytes_accepted_total";
pub const SAMPLES_ACCEPTED: &str = "ecg_ingest_samples_accepted_total";
pub const CHUNKS_PRODUCED: &str = "ecg_ingest_chunks_produced_total";
pub const PRODUCE_DURATION: &str = "ecg_ingest_produce_duration_seconds";
pub const PRODUCE_FAILURES: &str = "ecg_ingest_produce_failures_total";
pub const PRODUCER_RESETS: &str = "ecg_ingest_producer_resets_total";
pub const PRODUCER_QUEUE_DEPTH: &str = "ecg_ingest_producer_queue_depth";
pub const BUFFERED_BODY_BYTES: &str = "ecg_ingest_buffered_body_bytes";
pub const RATE_LIMITED: &str = "ecg_ingest_rate_limited_total";
pub const SLOW_BODIES: &str = "ecg_ingest_slow_bodies_total";

const REQUESTS: RequestMetrics = RequestMetrics {
    total: REQUESTS_TOTAL,
    duration: REQUEST_DURATION,
};

/// Counts and times every request by its route template.
pub async fn track(request: Request, next: Next) -> Response {
    ecg_runtime::metrics::track(REQUESTS, request, next).await
}

/// `GET /metrics`: the Prometheus text format.
pub async fn render(State(state): State<AppState>) -> Response {
    metrics::gauge!(PRODUCER_QUEUE_DEPTH).set(f64::from(state.producer.queue_depth()));
    ecg_runtime::metrics::response()
}

/// Records an accepted body.
pub fn accepted(format: &'static str, bytes: u64, samples: u64) {
    metrics::counter!(BYTES_ACCEPTED, "format" => format).increment(bytes);
    metrics::counter!(SAMPLES_ACCEPTED, "format" => format).increment(samples);
}
