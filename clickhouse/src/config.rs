//! Connection settings for ClickHouse, shared by every service's config.

use serde::{Deserialize, Serialize};

/// Where ClickHouse is and which database holds ecg-stream's tables.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickHouseConfig {
    /// HTTP endpoint, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    /// Database holding the tables; created by the migrations if missing.
    pub database: String,
    /// User name.
    pub user: String,
    /// Password (never logged).
    pub password: String,
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        ClickHouseConfig {
            url: "http://127.0.0.1:8123".into(),
            database: "ecg".into(),
            user: "default".into(),
            password: String::new(),
        }
    }
}

impl std::fmt::Debug for ClickHouseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseConfig")
            .field("url", &self.url)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl ClickHouseConfig {
    /// A client bound to [`ClickHouseConfig::database`].
    pub fn client(&self) -> clickhouse::Client {
        self.server_client().with_database(&self.database)
    }

    /// A client bound to no database (for `CREATE DATABASE`).
    pub fn server_client(&self) -> clickhouse::Client {
        clickhouse::Client::default()
            .with_url(&self.url)
            .with_user(&self.user)
            .with_password(&self.password)
    }
}

#[cfg(test)]
impl ClickHouseConfig {
    /// A database named after the test, on the ClickHouse of `make test`
    /// (`ECG_TEST_CLICKHOUSE_URL`); not created yet.
    pub(crate) fn for_test(name: &str) -> Self {
        ClickHouseConfig {
            url: std::env::var("ECG_TEST_CLICKHOUSE_URL")
                .unwrap_or_else(|_| "http://127.0.0.1:8123".into()),
            database: format!(
                "test_{name}_{}",
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
            ..ClickHouseConfig::default()
        }
    }
}
