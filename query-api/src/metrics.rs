//! Prometheus metrics, served at `/metrics`.
//!
//! | metric | type | labels |
//! |--------|------|--------|
//! | `ecg_query_requests_total` | counter | `route`, `status` |
//! | `ecg_query_request_duration_seconds` | histogram | `route` |
//!
//! The recorder is process-wide and shared with any other service in the
//! process (`ecg_runtime::metrics`).

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

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
    metrics::counter!("ecg_query_requests_total", "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("ecg_query_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`: the Prometheus text format.
pub async fn render() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        ecg_runtime::metrics::render(),
    )
        .into_response()
}
