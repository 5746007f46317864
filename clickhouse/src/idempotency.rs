//! Table `idempotency_keys` (migration 16): the `Idempotency-Key`s of ECG
//! creates, written and read by the gateway only.
//!
//! A key's first row (its claim) is the one that counts: [`first`] reads the
//! earliest of the last [`KEPT_HOURS`], merged or not (the table is a plain
//! `MergeTree`, so no merge drops it for a later one). Later rows of the
//! same key exist only after a race, and lose.

use clickhouse::{Client, Row};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::insert::insert_all;

/// Table name.
pub const TABLE: &str = "idempotency_keys";

/// How long a key is remembered: the table's TTL (migration 16).
pub const KEPT_HOURS: u32 = 24;

/// A key's claim: the ECG a create with this key opens, and what a retry
/// needs to produce the same chunks.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct KeyClaim {
    pub tenant: String,
    pub client_id: String,
    pub idempotency_key: String,
    #[serde(with = "clickhouse::serde::uuid")]
    pub ecg_id: Uuid,
    /// The body's format and bytes, hashed: another body is refused.
    pub request_digest: String,
    #[serde(with = "clickhouse::serde::time::datetime64::micros")]
    pub started_at: OffsetDateTime,
    /// Samples per lead per chunk.
    pub chunk_samples: u32,
}

/// Writes a claim (which loses to any earlier one of its key).
pub async fn insert(client: &Client, claim: &KeyClaim) -> clickhouse::error::Result<()> {
    insert_all::<KeyClaim>(client, TABLE, std::slice::from_ref(claim)).await
}

/// The first claim of `key` by `tenant`'s client `client_id` in the last
/// [`KEPT_HOURS`], if any.
pub async fn first(
    client: &Client,
    tenant: &str,
    client_id: &str,
    key: &str,
) -> clickhouse::error::Result<Option<KeyClaim>> {
    client
        .query(
            "SELECT ?fields FROM idempotency_keys
             WHERE tenant = ? AND client_id = ? AND idempotency_key = ?
               AND created_at > now64(6) - toIntervalHour(?)
             ORDER BY created_at, ecg_id LIMIT 1",
        )
        .bind(tenant)
        .bind(client_id)
        .bind(key)
        .bind(KEPT_HOURS)
        .fetch_optional()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(key: &str, id: u128, digest: &str) -> KeyClaim {
        KeyClaim {
            tenant: "demo".into(),
            client_id: "gw-1".into(),
            idempotency_key: key.into(),
            ecg_id: Uuid::from_u128(id),
            request_digest: digest.into(),
            started_at: OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_000)
                .unwrap(),
            chunk_samples: 2_000,
        }
    }

    /// Needs the ClickHouse of `make test`.
    #[tokio::test]
    async fn the_first_claim_of_a_key_wins_and_keys_are_per_client() {
        let client = crate::migrate::test_database("idempotency").await.client();
        assert_eq!(first(&client, "demo", "gw-1", "k").await.unwrap(), None);
        let claimed = claim("k", 1, "aa");
        insert(&client, &claimed).await.unwrap();
        insert(&client, &claim("k", 2, "bb")).await.unwrap();
        assert_eq!(
            first(&client, "demo", "gw-1", "k").await.unwrap(),
            Some(claimed)
        );
        assert_eq!(first(&client, "demo", "gw-2", "k").await.unwrap(), None);
        assert_eq!(first(&client, "other", "gw-1", "k").await.unwrap(), None);
        // Merged, the first claim still wins.
        client
            .query("OPTIMIZE TABLE idempotency_keys FINAL")
            .execute()
            .await
            .unwrap();
        let found = first(&client, "demo", "gw-1", "k").await.unwrap().unwrap();
        assert_eq!(found.ecg_id, Uuid::from_u128(1));
        // Past its lifetime a key is forgotten, even before the TTL's merge.
        client
            .query(
                "INSERT INTO idempotency_keys (tenant, client_id, idempotency_key, ecg_id, request_digest, started_at, chunk_samples, created_at)
                 VALUES ('demo', 'gw-1', 'old', ?, 'cc', 0, 2000, now64(6) - toIntervalHour(25))",
            )
            .bind(Uuid::from_u128(3).to_string())
            .execute()
            .await
            .unwrap();
        assert_eq!(first(&client, "demo", "gw-1", "old").await.unwrap(), None);
    }
}
