//! Table `ecg_progress` (migrations 4, 6 and 8): where each ECG stands in the
//! processor, written after every batch that touched it, read by the query
//! API's status and insights.
//!
//! [`Progress`] is the row, the one type for both: the processor builds it
//! (its pipeline's view of an ECG after a batch) and the query API reads it
//! back. The table is a `ReplacingMergeTree(updated_at)`: [`newest`] reads
//! the newest row, merged or not. The cross-ECG reads of the table (the
//! list's status, the live streams) are in `crate::status` and `crate::live`.

use clickhouse::{Client, Row};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::insert::insert_all;

/// Table name.
pub const TABLE: &str = "ecg_progress";

/// A row of `ecg_progress`: where one ECG stands after a batch.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct Progress {
    pub tenant: String,
    #[serde(with = "clickhouse::serde::uuid")]
    pub ecg_id: Uuid,
    /// Chunks `0..next_seq` are placed (in `blocks`).
    pub next_seq: u32,
    /// Seqs received but waiting for an earlier one, ascending.
    pub waiting: Vec<u32>,
    /// Samples, all leads together, of the waiting chunks (0 in rows older
    /// than migration 8).
    pub waiting_samples: u64,
    /// Once a chunk marked final was seen.
    pub final_seq: Option<u32>,
    /// When the processor wrote the row: the newest row wins.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub updated_at: OffsetDateTime,
}

/// Writes `rows` in one insert. Written after the chunks they describe, a
/// status read never claims more than is stored.
pub async fn insert(client: &Client, rows: &[Progress]) -> clickhouse::error::Result<()> {
    insert_all::<Progress>(client, TABLE, rows).await
}

/// The processor's newest row for the ECG, if it has written one.
pub async fn newest(
    client: &Client,
    tenant: &str,
    id: Uuid,
) -> clickhouse::error::Result<Option<Progress>> {
    client
        .query(
            "SELECT ?fields FROM ecg_progress
             WHERE tenant = {t:String} AND ecg_id = {id:UUID}
             ORDER BY updated_at DESC
             LIMIT 1",
        )
        .param("t", tenant)
        .param("id", id.to_string())
        .fetch_optional()
        .await
}

/// The final seq the processor last recorded for an ECG.
#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct KnownFinal {
    pub tenant: String,
    #[serde(with = "clickhouse::serde::uuid")]
    pub ecg_id: Uuid,
    pub final_seq: Option<u32>,
}

/// Per ECG of `ids` with a progress row: the final seq of its newest row.
/// For a stream ended by an end mark (`POST /v1/ecgs/{id}/end`) this row is
/// the only record of the final seq: no stored chunk is marked final.
pub async fn finals(client: &Client, ids: &[Uuid]) -> clickhouse::error::Result<Vec<KnownFinal>> {
    let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    client
        .query(
            "SELECT tenant, ecg_id, argMax(final_seq, updated_at) AS final_seq
             FROM ecg_progress
             WHERE ecg_id IN ?
             GROUP BY tenant, ecg_id",
        )
        .bind(&ids)
        .fetch_all()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs the ClickHouse of `make test`.
    #[tokio::test]
    async fn the_newest_row_is_read_back_as_written() {
        let client = crate::migrate::test_database("progress_rows")
            .await
            .client();
        let at = |ms: i64| OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000);
        let row = |next_seq, updated_at| Progress {
            tenant: "demo".into(),
            ecg_id: Uuid::from_u128(1),
            next_seq,
            waiting: vec![next_seq + 2, next_seq + 5],
            waiting_samples: 24,
            final_seq: Some(next_seq + 5),
            updated_at,
        };
        let (old, new) = (row(3, at(1_000).unwrap()), row(4, at(2_000).unwrap()));
        insert(&client, std::slice::from_ref(&new)).await.unwrap();
        insert(&client, &[old]).await.unwrap();
        insert(&client, &[]).await.unwrap();
        let id = new.ecg_id;
        assert_eq!(newest(&client, "demo", id).await.unwrap(), Some(new));
        assert_eq!(newest(&client, "other", id).await.unwrap(), None);
        let finals = finals(&client, &[id, Uuid::from_u128(2)]).await.unwrap();
        assert_eq!(
            finals,
            vec![KnownFinal {
                tenant: "demo".into(),
                ecg_id: id,
                final_seq: Some(9),
            }]
        );
    }
}
