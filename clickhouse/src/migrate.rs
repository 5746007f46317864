//! The migration runner: applies, in order, every migration the database has
//! not seen, and refuses to run if an applied migration's SQL has changed
//! (migrations are forward-only: fix mistakes with a new one).
//!
//! Who runs it: `ecg-migrate`, as a user allowed DDL, before the services
//! (compose's one-shot `migrate`, `make up`). A service calls [`ensure`] at
//! start: when the schema is up to date it needs nothing but `SELECT` on
//! `schema_migrations`, so it runs as a user without DDL (the service users
//! of [`crate::service_users`]); when a migration is missing it applies it
//! only if `clickhouse.migrate` is true (the default, for tests and the
//! local `default` user) and stops with a message naming `ecg-migrate`
//! otherwise, or when its user may not change the schema.

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
    Migration {
        version: 5,
        name: "compact_samples",
        sql: include_str!("../migrations/0005_compact_samples.sql"),
    },
    Migration {
        version: 6,
        name: "progress_backfill",
        sql: include_str!("../migrations/0006_progress_backfill.sql"),
    },
    Migration {
        version: 7,
        name: "produced_at",
        sql: include_str!("../migrations/0007_produced_at.sql"),
    },
    Migration {
        version: 8,
        name: "waiting_samples",
        sql: include_str!("../migrations/0008_waiting_samples.sql"),
    },
    Migration {
        version: 9,
        name: "fingerprints",
        sql: include_str!("../migrations/0009_fingerprints.sql"),
    },
    Migration {
        version: 10,
        name: "blocks",
        sql: include_str!("../migrations/0010_blocks.sql"),
    },
    Migration {
        version: 11,
        name: "samples_as_blocks",
        sql: include_str!("../migrations/0011_samples_as_blocks.sql"),
    },
    Migration {
        version: 12,
        name: "signal_digest",
        sql: include_str!("../migrations/0012_signal_digest.sql"),
    },
    Migration {
        version: 13,
        name: "final_seq_of_streams",
        sql: include_str!("../migrations/0013_final_seq_of_streams.sql"),
    },
    Migration {
        version: 14,
        name: "beats",
        sql: include_str!("../migrations/0014_beats.sql"),
    },
    Migration {
        version: 15,
        name: "block_extremes",
        sql: include_str!("../migrations/0015_block_extremes.sql"),
    },
    Migration {
        version: 16,
        name: "idempotency_keys",
        sql: include_str!("../migrations/0016_idempotency_keys.sql"),
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
    #[error(
        "database {database} is not up to date: migration(s) {missing} of this build are not applied; run `ecg-migrate` (as a ClickHouse user allowed to change the schema) before starting the services (with clickhouse.migrate = false a service only checks)"
    )]
    Behind { database: String, missing: String },
    #[error(
        "database {database} is not up to date (migration(s) {missing} are not applied) and ClickHouse user {user} may not apply them: run `ecg-migrate` as a user allowed to change the schema first: {source}"
    )]
    NotAllowed {
        database: String,
        user: String,
        missing: String,
        #[source]
        source: Box<MigrationError>,
    },
    #[error(
        "reading {database}.schema_migrations as ClickHouse user {user} (a service's user needs SELECT on it): {source}"
    )]
    Check {
        database: String,
        user: String,
        #[source]
        source: clickhouse::error::Error,
    },
    #[error("ClickHouse: {0}")]
    ClickHouse(#[from] clickhouse::error::Error),
}

impl MigrationError {
    /// Whether ClickHouse refused for want of a privilege (`ACCESS_DENIED`,
    /// or `READONLY` for a read-only profile).
    fn is_access_denied(&self) -> bool {
        let e = match self {
            MigrationError::Statement { source, .. } | MigrationError::ClickHouse(source) => source,
            _ => return false,
        };
        matches!(exception_code(e), Some(ACCESS_DENIED | READONLY))
    }
}

/// ClickHouse's exception codes that [`pending`] and [`ensure`] tell apart.
const UNKNOWN_TABLE: u32 = 60;
const UNKNOWN_DATABASE: u32 = 81;
const READONLY: u32 = 164;
const ACCESS_DENIED: u32 = 497;

/// The code of a ClickHouse exception (`Code: 497. DB::Exception: ...`).
fn exception_code(e: &clickhouse::error::Error) -> Option<u32> {
    let clickhouse::error::Error::BadResponse(reason) = e else {
        return None;
    };
    let rest = reason.trim_start().strip_prefix("Code:")?.trim_start();
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

#[derive(Debug, Row, Deserialize)]
struct Applied {
    version: u32,
    checksum: String,
}

/// The migrations of this build the database has not applied, in order
/// (all of them when the database or `schema_migrations` does not exist).
/// Needs only `SELECT` on `schema_migrations`. An applied migration whose
/// SQL changed is an error, as in [`migrate`].
pub async fn pending(config: &ClickHouseConfig) -> Result<Vec<&'static Migration>, MigrationError> {
    let applied = match config
        .client()
        .query("SELECT version, any(checksum) AS checksum FROM schema_migrations GROUP BY version")
        .fetch_all::<Applied>()
        .await
    {
        Ok(rows) => rows,
        Err(e) if matches!(exception_code(&e), Some(UNKNOWN_TABLE | UNKNOWN_DATABASE)) => {
            Vec::new()
        }
        Err(source) => {
            return Err(MigrationError::Check {
                database: config.database.clone(),
                user: config.user.clone(),
                source,
            });
        }
    };
    missing(MIGRATIONS, &applied)
}

/// Fails with [`MigrationError::Behind`] unless every migration of this
/// build is applied. Changes nothing (`ecg-migrate check`).
pub async fn check(config: &ClickHouseConfig) -> Result<(), MigrationError> {
    let missing = pending(config).await?;
    if missing.is_empty() {
        return Ok(());
    }
    Err(MigrationError::Behind {
        database: config.database.clone(),
        missing: list(&missing),
    })
}

/// What a service runs at start: nothing when the schema is up to date
/// (then its user needs no DDL); else, with `clickhouse.migrate` (the
/// default), the missing migrations, or an error naming `ecg-migrate`
/// without it or when the user may not change the schema. Returns how many
/// migrations were applied.
pub async fn ensure(config: &ClickHouseConfig) -> Result<usize, MigrationError> {
    let missing = pending(config).await?;
    if missing.is_empty() {
        tracing::info!(
            database = %config.database,
            user = %config.user,
            migrations = MIGRATIONS.len(),
            "schema is up to date"
        );
        return Ok(0);
    }
    if !config.migrate {
        return Err(MigrationError::Behind {
            database: config.database.clone(),
            missing: list(&missing),
        });
    }
    migrate(config).await.map_err(|e| {
        if e.is_access_denied() {
            MigrationError::NotAllowed {
                database: config.database.clone(),
                user: config.user.clone(),
                missing: list(&missing),
                source: Box::new(e),
            }
        } else {
            e
        }
    })
}

/// `3 (ecg_progress), 4 (compact_samples)`.
fn list(migrations: &[&Migration]) -> String {
    migrations
        .iter()
        .map(|m| format!("{} ({})", m.version, m.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The migrations of `migrations` not in `applied`; an error if an applied
/// one's SQL changed.
fn missing<'m>(
    migrations: &'m [Migration],
    applied: &[Applied],
) -> Result<Vec<&'m Migration>, MigrationError> {
    let mut out = Vec::new();
    for m in migrations {
        let current = checksum(m.sql);
        match applied.iter().find(|a| a.version == m.version) {
            Some(a) if a.checksum != current => {
                return Err(MigrationError::Changed {
                    version: m.version,
                    name: m.name,
                    applied: a.checksum.clone(),
                    current,
                });
            }
            Some(_) => {}
            None => out.push(m),
        }
    }
    Ok(out)
}

/// Creates the database if needed and applies the missing migrations.
/// Returns how many were applied. Safe to run concurrently: every statement
/// is idempotent and the bookkeeping rows collapse by version (migration 11,
/// which copies the old samples, stops a run while another run's copy is in
/// flight: run `ecg-migrate` before the services).
pub async fn migrate(config: &ClickHouseConfig) -> Result<usize, MigrationError> {
    apply(config, MIGRATIONS).await
}

/// [`migrate`] with the first migrations only (tests: a database as an
/// older release left it).
async fn apply(
    config: &ClickHouseConfig,
    migrations: &[Migration],
) -> Result<usize, MigrationError> {
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
    for m in missing(migrations, &applied)? {
        let current = checksum(m.sql);
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
mod blocks_upgrade;
#[cfg(test)]
mod old_schema;

/// A fresh database named after the test, migrated, on the ClickHouse of
/// `make test` (`ECG_TEST_CLICKHOUSE_URL`).
#[cfg(test)]
pub(crate) async fn test_database(name: &str) -> ClickHouseConfig {
    let config = ClickHouseConfig::for_test(name);
    migrate(&config)
        .await
        .expect("migrating; is `make test` running the stack?");
    config
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

    /// A database as migrations 1-4 left it, with rows from the processor of
    /// that time, upgraded while that processor keeps writing: no row is
    /// lost or changed by a bit, and running migration 5 again changes
    /// nothing. Needs the ClickHouse of `make test`.
    #[tokio::test]
    async fn compact_samples_migration_keeps_every_existing_value_bit_for_bit() {
        let config = ClickHouseConfig::for_test("upgrade");
        assert_eq!(apply(&config, &MIGRATIONS[..4]).await.unwrap(), 4);
        let client = config.client();
        // What the processor of migration 4 inserts: physical (decimals,
        // -0.0, 0.1 + 0.2, a subnormal) and digital rows.
        let old_insert = "INSERT INTO chunk_ingest
            (tenant, ecg_id, lead, seq, sample_rate_hz, started_at, first_sample, values, adc_values)
            VALUES
            ('t', '00000000-0000-0000-0000-000000000001', 'I', ?, 500, '2026-11-23 08:00:00', ?,
             [0.05368, -0.0, 0.30000000000000004, 0.0, -1.5, 5e-324], []),
            ('t', '00000000-0000-0000-0000-000000000002', 'II', ?, 360, '2026-11-23 08:00:00', ?,
             [-0.245, 0.0, 0.005, 3.65], [975, 1024, 1025, 1754])";
        let insert = |seq: u32| {
            let client = client.clone();
            async move {
                let first = u64::from(seq) * 6;
                client
                    .query(old_insert)
                    .bind(seq)
                    .bind(first)
                    .bind(seq)
                    .bind(first)
                    .execute()
                    .await
                    .unwrap()
            }
        };
        insert(0).await;
        client
            .query(
                "CREATE TABLE legacy_rows ENGINE = Memory AS
                 SELECT ecg_id, lead, sample_index, reinterpretAsUInt64(value) AS bits, adc FROM samples",
            )
            .execute()
            .await
            .unwrap();

        // Through migration 10: migration 11 replaces the old write path
        // (see `blocks_upgrade`).
        assert_eq!(apply(&config, &MIGRATIONS[..10]).await.unwrap(), 6);
        // Migration 6: the ECGs written before ecg_progress existed get
        // their row (chunk 0 of each is written), once even if run again.
        for statement in statements(MIGRATIONS[5].sql) {
            client.query(&statement).execute().await.unwrap();
        }
        let progress: Vec<(String, u32)> = client
            .query("SELECT toString(ecg_id), next_seq FROM ecg_progress ORDER BY ecg_id")
            .fetch_all()
            .await
            .unwrap();
        assert_eq!(
            progress,
            [
                ("00000000-0000-0000-0000-000000000001".to_string(), 1),
                ("00000000-0000-0000-0000-000000000002".to_string(), 1)
            ]
        );
        // The old processor writes on after the upgrade, and migration 5 runs
        // a second time (a crash before it was recorded, or two services).
        insert(1).await;
        for statement in statements(MIGRATIONS[4].sql) {
            client.query(&statement).execute().await.unwrap();
        }
        // Migration 7 runs again too; the old processor's chunks, which carry
        // no Kafka timestamp, read the epoch (unknown).
        for statement in statements(MIGRATIONS[6].sql) {
            client.query(&statement).execute().await.unwrap();
        }
        let unknown: u64 = client
            .query("SELECT countIf(toUnixTimestamp64Milli(produced_at) = 0) FROM lead_chunks")
            .fetch_one()
            .await
            .unwrap();
        assert_eq!(unknown, 4);
        let (rows, changed, adc_changed): (u64, u64, u64) = client
            .query(
                "SELECT count(), countIf(b.bits != reinterpretAsUInt64(s.value)),
                        countIf(ifNull(b.adc, -1) != ifNull(s.adc, -1))
                 FROM legacy_rows AS b JOIN samples AS s USING (ecg_id, lead, sample_index)",
            )
            .fetch_one()
            .await
            .unwrap();
        assert_eq!((rows, changed, adc_changed), (10, 0, 0));
        // Rows of the old processor written after the upgrade: the same values.
        let (rows, changed): (u64, u64) = client
            .query(
                "SELECT count(), countIf(b.bits != reinterpretAsUInt64(s.value))
                 FROM legacy_rows AS b JOIN samples AS s
                 ON s.ecg_id = b.ecg_id AND s.lead = b.lead
                    AND s.sample_index = b.sample_index + 6 AND s.seq = 1",
            )
            .fetch_one()
            .await
            .unwrap();
        assert_eq!((rows, changed), (10, 0));
        let total: u64 = client
            .query("SELECT count() FROM samples")
            .fetch_one()
            .await
            .unwrap();
        assert_eq!(total, 20);
        config
            .server_client()
            .query("DROP DATABASE ?")
            .bind(clickhouse::sql::Identifier(&config.database))
            .execute()
            .await
            .unwrap();
    }

    /// A service that may not migrate (`clickhouse.migrate = false`) only
    /// checks: a database behind this build stops it with the missing
    /// migrations named and is left as it was; one up to date is fine.
    /// Needs the ClickHouse of `make test`.
    #[tokio::test]
    async fn ensure_only_checks_when_the_service_may_not_migrate() {
        let mut config = ClickHouseConfig::for_test("ensure");
        config.migrate = false;
        let err = ensure(&config).await.unwrap_err().to_string();
        assert!(
            err.contains("1 (ecgs), 2 (signal)") && err.contains("run `ecg-migrate`"),
            "{err}"
        );
        let databases: Vec<String> = config
            .server_client()
            .query("SELECT name FROM system.databases WHERE name = ?")
            .bind(&config.database)
            .fetch_all()
            .await
            .unwrap();
        assert!(databases.is_empty(), "a check created the database");

        let last = MIGRATIONS.len() - 1;
        assert_eq!(apply(&config, &MIGRATIONS[..last]).await.unwrap(), last);
        let behind = check(&config).await.unwrap_err().to_string();
        let newest = MIGRATIONS[last];
        assert!(
            behind.contains(&format!(
                "migration(s) {} ({}) of this build",
                newest.version, newest.name
            )),
            "{behind}"
        );
        assert_eq!(pending(&config).await.unwrap().len(), 1);

        config.migrate = true;
        assert_eq!(ensure(&config).await.unwrap(), 1);
        config.migrate = false;
        assert_eq!(ensure(&config).await.unwrap(), 0);
        check(&config).await.unwrap();
        config
            .server_client()
            .query("DROP DATABASE ?")
            .bind(clickhouse::sql::Identifier(&config.database))
            .execute()
            .await
            .unwrap();
    }

    #[test]
    fn exception_codes_are_read_from_clickhouse_errors() {
        let e = clickhouse::error::Error::BadResponse(
            "Code: 497. DB::Exception: ingest: Not enough privileges.".into(),
        );
        assert_eq!(exception_code(&e), Some(497));
        assert!(MigrationError::ClickHouse(e).is_access_denied());
        let e = clickhouse::error::Error::BadResponse("502 Bad Gateway".into());
        assert_eq!(exception_code(&e), None);
    }

    #[test]
    fn checksum_notices_an_edit() {
        assert_ne!(checksum("SELECT 1"), checksum("SELECT 2"));
        assert_eq!(checksum("SELECT 1"), checksum("SELECT 1"));
    }
}
