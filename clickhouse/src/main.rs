//! `ecg-migrate`: applies ecg-stream's ClickHouse migrations and exits.
//! Configured like the services: `ECG_CLICKHOUSE__URL`, `ECG_CLICKHOUSE__DATABASE`, ...
//!
//! `ecg-migrate analysts FILE.toml` prints instead the users.d document of
//! the analysts' read-only logins that FILE lists (clickhouse/README.md,
//! "Analyst logins"); it connects to nothing.

use std::path::Path;

use anyhow::Context;
use ecg_clickhouse::{ClickHouseConfig, access, migrate};
use serde::{Deserialize, Serialize};

const USAGE: &str =
    "usage: ecg-migrate                     apply the migrations (ECG_CLICKHOUSE__* configures)
       ecg-migrate analysts FILE.toml   print the analysts' users.d XML";

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    /// Where to apply the migrations.
    clickhouse: ClickHouseConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => migrate_database().await,
        [command, file] if command == "analysts" => {
            let (database, analysts) = access::read_analysts(Path::new(file))?;
            print!("{}", access::users_xml(&database, &analysts)?);
            Ok(())
        }
        [help] if help == "-h" || help == "--help" => {
            println!("{USAGE}");
            Ok(())
        }
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2)
        }
    }
}

async fn migrate_database() -> anyhow::Result<()> {
    ecg_runtime::init_tracing();
    let config: Config =
        ecg_runtime::load_config("migrate.toml").context("loading configuration")?;
    let applied = migrate(&config.clickhouse)
        .await
        .with_context(|| format!("migrating {:?}", config.clickhouse))?;
    tracing::info!(applied, database = %config.clickhouse.database, "schema is up to date");
    Ok(())
}
