//! `ecg-migrate`: applies ecg-stream's ClickHouse migrations and exits.
//! Configured like the services: `ECG_CLICKHOUSE__URL`, `ECG_CLICKHOUSE__DATABASE`, ...

use anyhow::Context;
use ecg_clickhouse::{ClickHouseConfig, migrate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    /// Where to apply the migrations.
    clickhouse: ClickHouseConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    ecg_runtime::init_tracing();
    let config: Config =
        ecg_runtime::load_config("migrate.toml").context("loading configuration")?;
    let applied = migrate(&config.clickhouse)
        .await
        .with_context(|| format!("migrating {:?}", config.clickhouse))?;
    tracing::info!(applied, database = %config.clickhouse.database, "schema is up to date");
    Ok(())
}
