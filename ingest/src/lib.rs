//! The ingest gateway: authenticates clients, validates ECG submissions, and
//! produces them to Kafka as chunks keyed by ECG id. It never analyses; every
//! 202 it returns means the data is acknowledged by the broker.
//!
//! Modules:
//! - [`config`]: [`Config`], loaded by figment.
//! - [`routes`]: the HTTP handlers.
//! - [`extract`]: [`extract::CallerEcg`], the caller's ECG of a
//!   `/v1/ecgs/{id}/...` request, or why not (401/403, 400, 429, 404, 503).
//! - [`params`]: query and path parameters, read strictly.
//! - [`body_format`]: [`body_format::BodyFormat`], the body formats, by
//!   `Content-Type`.
//! - [`budget`]: how many bytes of request bodies are held at once, and
//!   each client's and tenant's share of them.
//! - [`body_rate`]: how fast a request body must arrive.
//! - [`idempotency`]: `Idempotency-Key` on ECG creates.
//! - [`upload`]: whole recordings streamed in one request, spooled and cut
//!   into chunks.
//! - [`registry`]: the `ecgs` table: which ECGs exist, whose, which leads;
//!   and the idempotency keys; ClickHouse outages as 503.
//! - [`producer`]: Kafka production with delivery confirmation.
//! - [`quota`]: per-client rate limits and sample quotas; uploads paced to
//!   them.
//! - [`metrics`]: Prometheus metrics.
//! - [`openapi`]: the OpenAPI document and Swagger UI.
//! - [`error`]: [`error::ApiError`], the one error type of the handlers.
//! - [`connection`]: `Connection: close` on refusals of requests with a
//!   body, whose unread rest makes the connection unusable.

pub mod body_format;
pub mod body_rate;
pub mod budget;
pub mod config;
pub mod connection;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod metrics;
pub mod openapi;
pub mod params;
pub mod producer;
pub mod quota;
pub mod registry;
pub mod routes;
pub mod upload;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post, put};
use ecg_auth::{Verifier, VerifierSettings};
use ecg_runtime::tls::ServeOptions;
use ecg_schemas::Limits;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;

pub use config::Config;

use crate::budget::BodyBudget;
use crate::producer::ChunkProducer;
use crate::quota::RateLimits;
use crate::registry::Registry;
use crate::upload::UploadSettings;

/// Shared by every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    pub verifier: Verifier,
    pub registry: Registry,
    pub producer: ChunkProducer,
    pub limits: Arc<Limits>,
    pub rate_limits: RateLimits,
    pub bodies: BodyBudget,
    pub upload: UploadSettings,
}

impl FromRef<AppState> for Verifier {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

impl AppState {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let verifier = Verifier::builder()
            .built_in(VerifierSettings {
                issuer: config.auth.issuer.clone(),
                audience: config.auth.audience.clone(),
                jwks_url: config.auth.jwks_url.clone(),
            })
            .external_issuers(config.auth.external.clone())
            .build()
            .context("configuring token verification")?;
        Ok(AppState {
            verifier,
            registry: Registry::new(config.clickhouse.client())
                .timeout(Duration::from_millis(config.registry.timeout_ms.max(1))),
            producer: ChunkProducer::new(&config.kafka)?,
            limits: Arc::new(config.limits.clone()),
            rate_limits: RateLimits::new(&config.rate_limit),
            bodies: BodyBudget::new(
                config.upload.max_buffered_bytes,
                Duration::from_millis(config.upload.buffer_wait_ms),
                config.upload.max_json_bytes,
            )
            .shares(
                config.upload.max_buffered_bytes_per_tenant,
                config.upload.max_buffered_bytes_per_client,
            )
            .rate(config.upload.body_rate()),
            upload: UploadSettings {
                chunk_samples: config.upload.chunk_samples.max(1),
                max_samples: config.upload.max_signal_samples,
                max_in_flight: config.upload.max_in_flight.max(1),
                spool_dir: config.upload.spool_dir.clone(),
                body_rate: config.upload.body_rate(),
            },
        })
    }
}

/// The gateway's routes.
pub fn router(state: AppState) -> Router {
    metrics::handle();
    Router::new()
        .route("/v1/ecgs", post(routes::create_ecg))
        .route("/v1/ecgs/{id}/chunks", post(routes::post_chunk))
        .route("/v1/ecgs/{id}/signal", put(routes::put_signal))
        .route("/v1/ecgs/{id}/end", post(routes::end_stream))
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route("/metrics", get(metrics::render))
        .merge(openapi::routes(openapi::document(
            &state.limits,
            &openapi::BodyLimits {
                max_body_bytes: state.bodies.max_body(),
                max_signal_samples: state.upload.max_samples,
                max_buffered_bytes: state.bodies.total(),
                max_buffered_bytes_per_tenant: state.bodies.per_tenant(),
                max_buffered_bytes_per_client: state.bodies.per_client(),
                body_rate: state.bodies.body_rate(),
            },
        )))
        // Last, so that they cover every route above: errors are JSON
        // everywhere, unknown paths and methods included.
        .fallback(routes::no_route)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(axum::middleware::from_fn(connection::close_after_refusal))
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Runs the gateway until `shutdown`, then finishes in-flight requests and
/// flushes the producer.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let addr = config.http.addr;
    let listener =
        listen(addr, config.http.listen_backlog).with_context(|| format!("binding {addr}"))?;
    run_with_listener(config, listener, shutdown).await
}

/// A listening socket with `backlog` (`TcpListener::bind` gives 128 here).
fn listen(addr: std::net::SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As `TcpListener::bind`: a restarted gateway rebinds at once.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// [`run`] on an already bound listener (tests bind port 0).
///
/// Shutdown: stop accepting, let in-flight requests finish (at most
/// `http.shutdown_grace_s`), then flush the producer.
pub async fn run_with_listener(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // Up to date, or migrated when `clickhouse.migrate` allows it: the
    // gateway's own ClickHouse user may not change the schema.
    ecg_clickhouse::migrate::ensure(&config.clickhouse)
        .await
        .context("checking the ClickHouse schema")?;
    let state = AppState::new(&config)?;
    let producer = state.producer.clone();
    let options = ServeOptions {
        tls: config.http.tls.clone(),
        // In-flight requests get this long after the signal, then are cut.
        shutdown_grace: Some(Duration::from_secs(config.http.shutdown_grace_s)),
        // hyper grows each connection's read buffer to fit the bodies it
        // reads (up to 400 KiB) and keeps it while the connection lives, so
        // with 1,000 devices keeping connections open the buffers alone took
        // over 100 MB; capped, a larger body arrives in pieces.
        max_read_buffer_bytes: Some(config.http.max_read_buffer_bytes),
    };
    ecg_runtime::tls::serve("ingest", listener, router(state), &options, shutdown).await?;
    tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(10))).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 600 devices connecting at once, before the gateway accepts any: the
    /// kernel must queue them all (`TcpListener::bind`'s 128 drops the
    /// rest, and each dropped connect waits a second for its retry).
    #[tokio::test]
    async fn a_burst_of_connects_is_queued_not_dropped() {
        let backlog = config::HttpConfig::default().listen_backlog;
        let listener = listen(([127, 0, 0, 1], 0).into(), backlog).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut connects = tokio::task::JoinSet::new();
        for _ in 0..600 {
            connects.spawn(tokio::time::timeout(
                Duration::from_millis(500),
                tokio::net::TcpStream::connect(addr),
            ));
        }
        let mut queued = Vec::new();
        while let Some(connect) = connects.join_next().await {
            if let Ok(Ok(stream)) = connect.unwrap() {
                queued.push(stream);
            }
        }
        assert_eq!(
            queued.len(),
            600,
            "connects not queued (net.core.somaxconn: {:?})",
            std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        );
    }
}
