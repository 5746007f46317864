//! The query API: issues OAuth2 tokens and serves each tenant the status and
//! zero-crossing insights of its ECGs.
//!
//! Modules:
//! - [`config`]: [`Config`], loaded by figment.
//! - [`routes`]: the HTTP handlers, one file per resource.
//! - [`extract`]: [`extract::CallerEcg`], the caller's ECG of a
//!   `/v1/ecgs/{id}...` request, or why not (401/403, 400, 404).
//! - [`store`]: the reads that fold stored blocks (crossings per window,
//!   plot buckets, device buckets); their SQL, like every query on the
//!   tables, is `ecg_clickhouse`'s.
//! - [`series`]: what the block scans share, pure: signs of stored samples,
//!   the running sign across blocks, runs of equal window or bucket.
//! - [`params`]: strict query-string parsing (400 naming the parameter).
//! - [`cursor`]: the opaque cursor of the ECG list.
//! - [`lag`]: the processor's consumer lag, asked of the broker.
//! - [`gaps`]: which seqs an ECG still needs (pure arithmetic).
//! - [`openapi`]: the OpenAPI document and Swagger UI (`token_doc`: how it
//!   describes the token endpoints, which `ecg-auth` serves).
//! - [`export`]: an ECG as a FHIR Observation or a WFDB record, streamed.
//! - [`error`]: the API error type, [`error::ApiError`].
//! - [`dashboard`]: the monitoring web page at `/dashboard`, its assets
//!   embedded in the binary.
//! - [`metrics`]: request counts and latencies at `/metrics`.
//!
//! Token issuance and checking come from the `ecg-auth` crate.

pub mod config;
pub mod cursor;
pub mod dashboard;
pub mod error;
pub mod export;
pub mod extract;
pub mod gaps;
pub mod heart;
pub mod lag;
pub mod metrics;
pub mod openapi;
pub mod params;
pub mod routes;
pub mod series;
pub mod store;
pub mod token_doc;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::FromRef;
use axum::routing::get;
use ecg_auth::{IssuerSettings, SigningKey, TokenIssuer, Verifier};
use ecg_runtime::tls::ServeOptions;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;

pub use config::Config;

use crate::lag::LagProbe;

/// Shared by every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    pub issuer: Arc<TokenIssuer>,
    pub verifier: Verifier,
    /// ClickHouse, read through `ecg_clickhouse`'s functions.
    pub clickhouse: clickhouse::Client,
    pub lag: Arc<LagProbe>,
    /// `streams.active_within_s`.
    pub active_within_s: u64,
    /// `pipeline.window_s`.
    pub pipeline_window_s: u64,
    /// `export.fhir_page_samples`.
    pub fhir_page_samples: u64,
}

impl FromRef<AppState> for Verifier {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

impl FromRef<AppState> for Arc<TokenIssuer> {
    fn from_ref(state: &AppState) -> Self {
        state.issuer.clone()
    }
}

impl AppState {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let key = SigningKey::load_or_generate(&config.auth.key_file).with_context(|| {
            format!("loading the signing key {}", config.auth.key_file.display())
        })?;
        let previous_keys = config
            .auth
            .previous_key_files
            .iter()
            .map(|path| {
                SigningKey::load(path)
                    .with_context(|| format!("loading the previous key {}", path.display()))
            })
            .collect::<anyhow::Result<_>>()?;
        let issuer = TokenIssuer::new(
            key,
            IssuerSettings {
                issuer: config.auth.issuer.clone(),
                audience: config.auth.audience.clone(),
                token_ttl: Duration::from_secs(config.auth.token_ttl_s),
                clients: config.auth.effective_clients()?,
                previous_keys,
                limits: config.auth.token_limits.clone(),
            },
        )
        .context("configuring the token issuer")?;
        let verifier = Verifier::builder()
            .built_in_jwks(
                config.auth.issuer.clone(),
                config.auth.audience.clone(),
                issuer.jwks(),
            )
            .built_in_tenants(issuer.tenants())
            .external_issuers(config.auth.external.clone())
            .build()
            .context("configuring token verification")?;
        Ok(AppState {
            verifier,
            issuer: Arc::new(issuer),
            clickhouse: config.clickhouse.client(),
            lag: Arc::new(LagProbe::new(&config.pipeline).context("configuring the lag probe")?),
            active_within_s: config.streams.active_within_s,
            pipeline_window_s: config.pipeline.window_s,
            fhir_page_samples: config.export.fhir_page_samples.max(1),
        })
    }
}

/// The API's routes.
pub fn router(state: AppState) -> Router {
    // Installs the recorder before the first request is counted.
    ecg_runtime::metrics::handle();
    Router::new()
        .route("/healthz", get(routes::healthz))
        .route("/metrics", get(metrics::render))
        .route("/v1/ecgs", get(routes::list::list_ecgs))
        .route("/v1/ecgs/{id}", get(routes::status::ecg_status))
        .route(
            "/v1/ecgs/{id}/insights",
            get(routes::insights::ecg_insights),
        )
        .route("/v1/ecgs/{id}/samples", get(routes::samples::ecg_samples))
        .route("/v1/ecgs/{id}/beats", get(routes::beats::ecg_beats))
        .route("/v1/ecgs/{id}/fhir", get(export::fhir::ecg_fhir))
        .route("/v1/ecgs/{id}/wfdb", get(export::wfdb::ecg_wfdb))
        .route(
            "/v1/devices/{device_id}/insights",
            get(routes::devices::device_insights),
        )
        .route("/v1/streams/active", get(routes::streams::active_streams))
        .route("/v1/pipeline", get(routes::pipeline::pipeline))
        .merge(ecg_auth::oauth::routes())
        .merge(openapi::routes())
        .merge(dashboard::routes())
        .fallback(routes::no_route)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Runs the API until `shutdown`.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.http.addr)
        .await
        .with_context(|| format!("binding {}", config.http.addr))?;
    run_with_listener(config, listener, shutdown).await
}

/// [`run`] on an already bound listener (tests bind port 0).
///
/// The schema must be up to date, or migrated here when
/// `clickhouse.migrate` allows it ([`ecg_clickhouse::migrate::ensure`]): a
/// read-only ClickHouse user needs `ecg-migrate` to have run first.
pub async fn run_with_listener(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    ecg_clickhouse::migrate::ensure(&config.clickhouse)
        .await
        .context("checking the ClickHouse schema")?;
    let state = AppState::new(&config)?;
    let options = ServeOptions {
        tls: config.http.tls.clone(),
        ..ServeOptions::default()
    };
    serve_with(listener, state, &options, shutdown).await
}

/// Serves [`router`] over plain HTTP on `listener` until `shutdown`, with
/// each connection's peer address recorded: the token endpoint's
/// per-address limit needs it.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    serve_with(listener, state, &ServeOptions::default(), shutdown).await
}

/// [`serve`], over HTTPS when `options.tls` is set; in-flight requests
/// finish after `shutdown`.
pub async fn serve_with(
    listener: TcpListener,
    state: AppState,
    options: &ServeOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    ecg_runtime::tls::serve("query-api", listener, router(state), options, shutdown).await?;
    Ok(())
}
