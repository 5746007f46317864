//! The processor: a Kafka consumer-group member that counts zero crossings
//! and finds beats per ECG and lead, exactly, and writes raw samples,
//! running totals and beats to ClickHouse. See `processor/README.md` for why the counts stay exact
//! through duplicates, reordering, crashes and rebalances.
//!
//! Modules:
//! - [`config`]: [`Config`], loaded by figment.
//! - [`state`]: per-ECG running state; pure, the heart of exactness.
//! - [`beats`]: each lead's beat detector, fed in seq order, checkpointed.
//! - [`pipeline`]: messages to batches, and which offsets may be committed.
//! - [`sink`]: ClickHouse reads (state after a restart) and writes (batches).
//! - [`consumer`]: the Kafka loop: consume, batch, write, commit.
//! - [`dlq`]: the dead-letter topic for refused messages.
//! - [`health`]: `GET /healthz` and `GET /metrics`.
//! - [`metrics`]: what `/metrics` reports.

pub mod beats;
pub mod config;
pub mod consumer;
pub mod dlq;
pub mod health;
pub mod metrics;
pub mod pipeline;
pub mod sink;
pub mod state;

pub use config::Config;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Runs the processor until `shutdown` is cancelled, then drains.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = health::bind(config.http.addr)
        .await
        .with_context(|| format!("binding the health endpoint on {}", config.http.addr))?;
    run_with_listener(config, listener, shutdown).await
}

/// [`run`] with an already bound health listener (tests bind port 0).
pub async fn run_with_listener(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // Installed before anything is counted: counts made without a recorder
    // are lost.
    ecg_runtime::metrics::handle();
    // Up to date, or migrated when `clickhouse.migrate` allows it: the
    // processor's own ClickHouse user may not change the schema.
    ecg_clickhouse::migrate::ensure(&config.clickhouse)
        .await
        .context("checking the ClickHouse schema")?;
    let health = tokio::spawn(health::serve(listener, shutdown.clone()));
    let result = consumer::Processor::new(&config)?
        .run(shutdown.clone())
        .await;
    shutdown.cancel();
    health.await??;
    result
}
