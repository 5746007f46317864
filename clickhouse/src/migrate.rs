//! The migration runner: applies, in order, every migration the database has
//! not seen, and refuses to run if an applied migration's SQL has changed
//! (migrations are forward-only: fix mistakes with a new one).

use clickhouse::Row;
use serde::Deserialize;

use crate::ClickHouseConfig;

/// One numbered migration.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, in order. Adding one: a new file and a line here.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "ecgs",
        sql: include_str!("../migrations/0001_ecgs.sql"),
    },
    Migration {
        version: 2,
        name: "signal",
        sql: include_str!("../migrations/0002_signal.sql"),
    },
    Migration {
        version: 3,
        name: "digital_samples",
        sql: include_str!("../migrations/0003_digital_samples.sql"),
    },
    Migration {
        version: 4,
        name: "ecg_progress",
        sql: include_str!("../migrations/0004_ecg_progress.sql"),
    },
];

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("ClickHouse refused migration {version} ({name}): {source}")]
    Statement {
        version: u32,
        name: &'static str,
        #[source]
        source: clickhouse::error::Error,
    },
    #[error(
        "migration {version} ({name}) changed after it was applied (checksum {applied} in the database, {current} in this build); add a new migration instead"
    )]
    Changed {
        version: u32,
        name: &'static str,
        applied: String,
        current: String,
    },
    #[error("ClickHouse: {0}")]
    ClickHouse(#[from] clickhouse::error::Error),
}

#[derive(Debug, Row, Deserialize)]
struct Applied {
    version: u32,
    checksum: String,
}

/// Creates the database if needed and applies the missing migrations.
/// Returns how many were applied. Safe to run concurrently: every statement
/// is idempotent and the bookkeeping rows collapse by version.
pub async fn migrate(config: &ClickHouseConfig) -> Result<usize, MigrationError> {
    config
        .server_client()
        .query("CREATE DATABASE IF NOT EXISTS ?")
        .bind(clickhouse::sql::Identifier(&config.database))
        .execute()
        .await?;
    let client = config.client();
    client
        .query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version UInt32, name String, checksum String,
                applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
            ) ENGINE = ReplacingMergeTree ORDER BY version",
        )
        .execute()
        .await?;
    let applied: Vec<Applied> = client
        .query("SELECT version, any(checksum) AS checksum FROM schema_migrations GROUP BY version")
        .fetch_all()
        .await?;
    let mut count = 0;
    for m in MIGRATIONS {
        let current = checksum(m.sql);
        if let Some(a) = applied.iter().find(|a| a.version == m.version) {
            if a.checksum != current {
                return Err(MigrationError::Changed {
                    version: m.version,
                    name: m.name,
                    applied: a.checksum.clone(),
                    current,
                });
            }
            continue;
        }
        for statement in statements(m.sql) {
            client.query(&statement).execute().await.map_err(|source| {
                MigrationError::Statement {
                    version: m.version,
                    name: m.name,
                    source,
                }
            })?;
        }
        client
            .query("INSERT INTO schema_migrations (version, name, checksum) VALUES (?, ?, ?)")
            .bind(m.version)
            .bind(m.name)
            .bind(&current)
            .execute()
            .await?;
        tracing::info!(version = m.version, name = m.name, "applied migration");
        count += 1;
    }
    Ok(count)
}

/// Splits a migration into statements: `;` at the end of a line ends one.
/// Comment lines are dropped. (Our SQL keeps `;` out of strings.)
fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("--") || trimmed.is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if trimmed.ends_with(';') {
            let stmt = current.trim().trim_end_matches(';').to_string();
            out.push(stmt);
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

/// FNV-1a 64 of the SQL: enough to notice an edited migration.
fn checksum(sql: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in sql.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_on_line_ending_semicolons() {
        let s = statements("-- c\nCREATE TABLE a (x String COMMENT 'a;b');\n\nSELECT 1;\nSELECT 2");
        assert_eq!(
            s,
            vec![
                "CREATE TABLE a (x String COMMENT 'a;b')",
                "SELECT 1",
                "SELECT 2"
            ]
        );
    }

    #[test]
    fn migrations_are_numbered_in_order() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1, "{}", m.name);
            assert!(!statements(m.sql).is_empty());
        }
    }

    #[test]
    fn checksum_notices_an_edit() {
        assert_ne!(checksum("SELECT 1"), checksum("SELECT 2"));
        assert_eq!(checksum("SELECT 1"), checksum("SELECT 1"));
    }
}
