//! Prometheus metrics, served at `/metrics`.
//!
//! | metric | type | labels |
//! |--------|------|--------|
//! | `ecg_query_requests_total` | counter | `route`, `status` |
//! | `ecg_query_request_duration_seconds` | histogram | `route` |
//!
//! The recorder is process-wide and shared with any other service in the
//! process (`ecg_runtime::metrics`).

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use ecg_runtime::metrics::RequestMetrics;

const REQUESTS: RequestMetrics = RequestMetrics {
    total: "ecg_query_requests_total",
    duration: "ecg_query_request_duration_seconds",
};

/// Counts and times every request by its route template.
pub async fn track(request: Request, next: Next) -> Response {
    ecg_runtime::metrics::track(REQUESTS, request, next).await
}

/// `GET /metrics`: the Prometheus text format.
pub async fn render() -> Response {
    ecg_runtime::metrics::response()
}
