//! `ecg-migrate`: applies ecg-stream's ClickHouse migrations and exits.
//! Configured like the services: `ECG_CLICKHOUSE__URL`, `ECG_CLICKHOUSE__DATABASE`, ...

use anyhow::Context;
use ecg_clickhouse::{ClickHouseConfig, migrate};
use figment::Figment;
use figment::providers::{Env, Serialized};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Config {
    clickhouse: ClickHouseConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config: Config = Figment::from(Serialized::default(
        "clickhouse",
        ClickHouseConfig::default(),
    ))
    .merge(Env::prefixed("ECG_").split("__"))
    .extract()
    .context("reading ECG_CLICKHOUSE__* settings")?;
    let applied = migrate(&config.clickhouse)
        .await
        .with_context(|| format!("migrating {:?}", config.clickhouse))?;
    tracing::info!(applied, database = %config.clickhouse.database, "schema is up to date");
    Ok(())
}
