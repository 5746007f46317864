//! `ecg-migrate`: applies ecg-stream's ClickHouse migrations and exits.
//! Configured like the services: `ECG_CLICKHOUSE__URL`,
//! `ECG_CLICKHOUSE__DATABASE`, `ECG_CLICKHOUSE__USER`,
//! `ECG_CLICKHOUSE__PASSWORD_FILE`, ... Run it as a user allowed to change
//! the schema, before the services (which then need no DDL).
//!
//! `ecg-migrate check` only checks that every migration is applied (exit
//! status 1 naming the missing ones otherwise).
//!
//! `ecg-migrate analysts FILE.toml` and `ecg-migrate services FILE.toml`
//! print instead the users.d document of the analysts' read-only logins,
//! or of the services' own logins, that FILE lists (clickhouse/README.md,
//! "Analyst logins", "Service users"); they connect to nothing.

use std::path::Path;

use anyhow::Context;
use ecg_clickhouse::{ClickHouseConfig, access, migrate, service_users};
use serde::{Deserialize, Serialize};

const USAGE: &str =
    "usage: ecg-migrate                     apply the migrations (ECG_CLICKHOUSE__* configures)
       ecg-migrate check               fail unless every migration is applied
       ecg-migrate analysts FILE.toml   print the analysts' users.d XML
       ecg-migrate services FILE.toml   print the services' users.d XML";

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
        [command] if command == "check" => check_database().await,
        [command, file] if command == "analysts" => {
            let (database, analysts) = access::read_analysts(Path::new(file))?;
            print!("{}", access::users_xml(&database, &analysts)?);
            Ok(())
        }
        [command, file] if command == "services" => {
            let list = service_users::read_services(Path::new(file))?;
            print!(
                "{}",
                service_users::users_xml(
                    &list.database,
                    &list.users,
                    list.admin_password.as_deref()
                )?
            );
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

fn load() -> anyhow::Result<Config> {
    ecg_runtime::init_tracing();
    ecg_runtime::load_config("migrate.toml").context("loading configuration")
}

async fn migrate_database() -> anyhow::Result<()> {
    let config = load()?;
    let applied = migrate(&config.clickhouse)
        .await
        .with_context(|| format!("migrating {:?}", config.clickhouse))?;
    tracing::info!(applied, database = %config.clickhouse.database, "schema is up to date");
    Ok(())
}

async fn check_database() -> anyhow::Result<()> {
    let config = load()?;
    migrate::check(&config.clickhouse)
        .await
        .with_context(|| format!("checking {:?}", config.clickhouse))?;
    tracing::info!(database = %config.clickhouse.database, "schema is up to date");
    Ok(())
}
