//! What every ecg-stream binary does the same way, so each `main.rs` stays a
//! few lines: [`load_config`], [`init_tracing`], [`shutdown_on_signal`], and
//! the process's one Prometheus recorder ([`metrics`]), strict query
//! strings ([`params`]), Kafka clients' setup ([`kafka`]), and serving a
//! router over HTTP or HTTPS ([`tls`]).

pub mod kafka;
pub mod metrics;
pub mod params;
pub mod tls;

/// The allocator of every binary that links this crate (all services, their
/// tests and benches). glibc's malloc spent about a quarter of the gateway's
/// CPU under load (requests allocate and free ~50 KB bodies and their
/// decoded copies from many threads, and glibc trims and re-faults its
/// heap); mimalloc's thread-local free lists avoid both. Figures in
/// BENCHMARKS.md, "Ingest gateway".
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

/// Loads a service's configuration: its built-in defaults < the TOML file
/// named by `ECG_CONFIG` (or `default_file`, if it exists) < environment
/// variables with the `ECG_` prefix, `__` separating nested keys
/// (`ECG_KAFKA__BROKERS` sets `kafka.brokers`).
pub fn load_config<T: Serialize + DeserializeOwned + Default>(
    default_file: &str,
) -> Result<T, Box<figment::Error>> {
    let file = std::env::var("ECG_CONFIG").unwrap_or_else(|_| default_file.into());
    Figment::from(Serialized::defaults(T::default()))
        .merge(Toml::file(file))
        .merge(Env::prefixed("ECG_").split("__").ignore(&["config"]))
        .extract()
        .map_err(Box::new)
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
}

/// A token cancelled on the first SIGINT or SIGTERM: the one shutdown signal
/// every component watches.
pub fn shutdown_on_signal() -> CancellationToken {
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    tokio::spawn(async move {
        let mut term = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(term) => term,
            Err(e) => {
                tracing::error!(error = %e, "cannot watch SIGTERM; only Ctrl-C will stop this process");
                let _ = tokio::signal::ctrl_c().await;
                token.cancel();
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutdown requested");
        token.cancel();
    });
    shutdown
}
