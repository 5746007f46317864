//! Table `failed_chunks` (migrations 2, 7 and 9): the messages the processor
//! refused (and resends that conflict with a stored chunk), and why. Written
//! by the processor, read by the query API.
//!
//! The table is a `ReplacingMergeTree` keyed by the Kafka message: a message
//! replayed after a restart is one failure. Every read here counts each
//! message once (`LIMIT 1 BY` its topic, partition and offset, keeping the
//! newest row, the one a merge keeps), merged or not. The cross-table reads
//! (an ECG's activity, the list's status) are in `crate::status`.

use clickhouse::{Client, Row};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::insert::insert_all;

/// Table name.
pub const TABLE: &str = "failed_chunks";

/// A row to write: one refused message, borrowing from the processor's
/// batch.
#[derive(Debug, Row, Serialize)]
pub struct Failed<'a> {
    /// `''` when the message could not be read that far and its ECG is
    /// unknown.
    pub tenant: &'a str,
    /// From the message key; nil if unreadable.
    #[serde(with = "clickhouse::serde::uuid")]
    pub ecg_id: Uuid,
    pub seq: Option<u32>,
    /// `refused` (not stored) or `conflict` (a resend with other samples;
    /// the stored chunk is kept).
    pub kind: &'a str,
    pub reason: &'a str,
    pub kafka_topic: &'a str,
    pub kafka_partition: i32,
    pub kafka_offset: i64,
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub failed_at: OffsetDateTime,
    /// The epoch when the message had no timestamp.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub produced_at: OffsetDateTime,
}

/// Writes `rows` in one insert.
pub async fn insert(client: &Client, rows: &[Failed<'_>]) -> clickhouse::error::Result<()> {
    insert_all::<Failed<'_>>(client, TABLE, rows).await
}

/// A refused chunk of one ECG, as its status lists it.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct Listed {
    pub seq: Option<u32>,
    /// `refused` or `conflict` (see [`Failed::kind`]).
    pub kind: String,
    pub reason: String,
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub failed_at: OffsetDateTime,
    /// All refused chunks of the ECG, not only the rows returned.
    pub total: u64,
    /// Of `total`, those not stored (conflicts excluded): what makes the
    /// ECG `failed`.
    pub refused: u64,
}

/// The ECG's first `limit` refused chunks by seq (unknown seqs last) then
/// time, each carrying the total counts.
pub async fn listed(
    client: &Client,
    tenant: &str,
    id: Uuid,
    limit: u32,
) -> clickhouse::error::Result<Vec<Listed>> {
    client
        .query(
            // The window counts before LIMIT.
            "SELECT seq, kind, reason, failed_at, count() OVER () AS total,
                    countIf(kind != 'conflict') OVER () AS refused
             FROM (
                 SELECT seq, kind, reason, failed_at, kafka_topic, kafka_partition, kafka_offset
                 FROM failed_chunks
                 WHERE tenant = {t:String} AND ecg_id = {id:UUID}
                 ORDER BY failed_at DESC
                 LIMIT 1 BY kafka_topic, kafka_partition, kafka_offset
             )
             ORDER BY seq ASC NULLS LAST, failed_at, kafka_topic, kafka_partition, kafka_offset
             LIMIT {limit:UInt32}",
        )
        .param("t", tenant)
        .param("id", id.to_string())
        .param("limit", limit)
        .fetch_all()
        .await
}

/// How many chunks of the ECG were refused, as the status counts them: a
/// conflicting resend (`kind = 'conflict'`) leaves the stored chunk valid and
/// is not a failure.
pub async fn refused(client: &Client, tenant: &str, id: Uuid) -> clickhouse::error::Result<u64> {
    client
        .query(
            "SELECT count() FROM (
                 SELECT kind FROM failed_chunks
                 WHERE tenant = {t:String} AND ecg_id = {id:UUID}
                 LIMIT 1 BY kafka_topic, kafka_partition, kafka_offset
             ) WHERE kind != 'conflict'",
        )
        .param("t", tenant)
        .param("id", id.to_string())
        .fetch_one()
        .await
}
