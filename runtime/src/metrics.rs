//! The process's Prometheus recorder, shared by every service in it.
//!
//! The `metrics` facade has one global recorder per process. Each service
//! renders this same handle at its `/metrics`, so services started together
//! (the end-to-end tests run all three in one process) each see their own
//! metrics whichever started first; metric names carry the service's prefix
//! (`ecg_ingest_`, `ecg_processor_`).

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latencies, for every metric named `*_duration_seconds`: 0.5 ms to 60 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0,
];

/// Sizes (messages, samples), for every metric named `*_size`: 1 to 10 M.
const SIZE_BUCKETS: &[f64] = &[1.0, 10.0, 100.0, 1e3, 1e4, 3e4, 1e5, 3e5, 1e6, 3e6, 1e7];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The recorder's handle, installing the recorder on first use.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("duration_seconds".into()), LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Suffix("_size".into()), SIZE_BUCKETS)
                })
                .expect("the bucket lists are not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Fails only if something outside ecg-stream installed one (a
            // test harness); this handle then renders nothing.
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            handle
        })
        .clone()
}

/// The Prometheus text format of everything recorded in this process.
pub fn render() -> String {
    handle().render()
}

/// The answer of a service's `GET /metrics`.
pub fn response() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        render(),
    )
        .into_response()
}

/// A service's HTTP request metrics: a counter by `route` and `status`, and
/// a latency histogram by `route`.
#[derive(Debug, Clone, Copy)]
pub struct RequestMetrics {
    pub total: &'static str,
    pub duration: &'static str,
}

/// Counts and times a request by its route template (never the raw path,
/// whose ids would explode the label set). Services wrap it in their own
/// middleware with their metric names.
pub async fn track(names: RequestMetrics, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(names.total, "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!(names.duration, "route" => route).record(started.elapsed().as_secs_f64());
    response
}
