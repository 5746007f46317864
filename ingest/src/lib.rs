//! The ingest gateway: authenticates clients, validates ECG submissions, and
//! produces them to Kafka as chunks keyed by ECG id. It never analyses; every
//! 202 it returns means the data is acknowledged by the broker.
//!
//! Modules:
//! - [`config`]: [`Config`], loaded by figment.
//! - [`routes`]: the HTTP handlers.
//! - [`registry`]: the `ecgs` table: which ECGs exist, whose, which leads.
//! - [`producer`]: Kafka production with delivery confirmation.
//! - [`error`]: [`error::ApiError`], the one error type of the handlers.

pub mod config;
pub mod error;
pub mod producer;
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
use ecg_schemas::Limits;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;

pub use config::Config;

use crate::producer::ChunkProducer;
use crate::registry::Registry;
use crate::upload::UploadSettings;

/// Shared by every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    pub verifier: Verifier,
    pub registry: Registry,
    pub producer: ChunkProducer,
    pub limits: Arc<Limits>,
    pub max_json_bytes: usize,
    pub chunk_samples: usize,
    pub upload: UploadSettings,
}

impl FromRef<AppState> for Verifier {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

impl AppState {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        Ok(AppState {
            verifier: Verifier::remote(VerifierSettings {
                issuer: config.auth.issuer.clone(),
                audience: config.auth.audience.clone(),
                jwks_url: config.auth.jwks_url.clone(),
            }),
            registry: Registry::new(config.clickhouse.client()),
            producer: ChunkProducer::new(&config.kafka)?,
            limits: Arc::new(config.limits.clone()),
            max_json_bytes: config.upload.max_json_bytes,
            chunk_samples: config.upload.chunk_samples.max(1),
            upload: UploadSettings {
                chunk_samples: config.upload.chunk_samples.max(1),
                max_samples: config.upload.max_signal_samples,
                max_in_flight: config.upload.max_in_flight.max(1),
                spool_dir: config.upload.spool_dir.clone(),
            },
        })
    }
}

/// The gateway's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(routes::healthz))
        .route("/v1/ecgs", post(routes::create_ecg))
        .route("/v1/ecgs/{id}/chunks", post(routes::post_chunk))
        .route("/v1/ecgs/{id}/signal", put(routes::put_signal))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Runs the gateway until `shutdown`, then finishes in-flight requests and
/// flushes the producer.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.http.addr)
        .await
        .with_context(|| format!("binding {}", config.http.addr))?;
    run_with_listener(config, listener, shutdown).await
}

/// [`run`] on an already bound listener (tests bind port 0).
pub async fn run_with_listener(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    ecg_clickhouse::migrate(&config.clickhouse)
        .await
        .context("applying ClickHouse migrations")?;
    let state = AppState::new(&config)?;
    let producer = state.producer.clone();
    tracing::info!(addr = %listener.local_addr()?, "ingest listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    producer.flush(Duration::from_secs(10));
    Ok(())
}
