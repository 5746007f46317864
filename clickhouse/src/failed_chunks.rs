//! Table `failed_chunks` (migrations 2, 7 and 9): the messages the processor
//! refused (and resends that conflict with a stored chunk), and why. Written
//! by the processor, read by the query API.
//!
//! The table is a `ReplacingMergeTree` keyed by the Kafka message: a message
//! replayed after a restart is one failure. Every read here counts each
//! failure once ([`FAILURE_KEY`], keeping the newest row, the one a merge
//! keeps): a message once, merged or not, and a chunk the
//! client sent again and that was refused again for the same reason once
//! too. The cross-table reads (an ECG's activity, the list's status) are in
//! `crate::status`.
//!
//! Kinds: `refused` (the chunk is not stored: its seq is missing, and the
//! ECG is `failed` until it completes), `conflict` (a resent seq with other
//! samples; the stored chunk is kept) and `ignored` (not stored, nothing
//! lost: a chunk after the final one, a wrong final or end mark). Only
//! `refused` makes an ECG `failed` ([`MAKES_FAILED`]).

use clickhouse::{Client, Row};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::insert::insert_all;

/// Table name.
pub const TABLE: &str = "failed_chunks";

/// What makes a failure one failure, for `LIMIT 1 BY` within one ECG: the
/// message when its seq is unknown, else the seq, kind and reason.
pub const FAILURE_KEY: &str = "if(isNull(seq),
        concat(kafka_topic, '/', toString(kafka_partition), '/', toString(kafka_offset)),
        toString(seq)), kind, reason";

/// The condition on `kind` of the failures that make an ECG `failed`.
pub const MAKES_FAILED: &str = "kind = 'refused'";

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
    /// `refused`, `conflict` or `ignored` (see the module's docs).
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
    /// `refused`, `conflict` or `ignored` (see [`Failed::kind`]).
    pub kind: String,
    pub reason: String,
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub failed_at: OffsetDateTime,
    /// All refused chunks of the ECG, not only the rows returned.
    pub total: u64,
    /// Of `total`, the `refused` ones: what makes the ECG `failed`.
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
            &format!(
                "SELECT seq, kind, reason, failed_at, count() OVER () AS total,
                        countIf({MAKES_FAILED}) OVER () AS refused
                 FROM (
                     SELECT seq, kind, reason, failed_at, kafka_topic, kafka_partition, kafka_offset
                     FROM failed_chunks
                     WHERE tenant = {{t:String}} AND ecg_id = {{id:UUID}}
                     ORDER BY failed_at DESC LIMIT 1 BY {FAILURE_KEY}
                 )
                 ORDER BY seq ASC NULLS LAST, failed_at, kafka_topic, kafka_partition, kafka_offset
                 LIMIT {{limit:UInt32}}"
            ),
        )
        .param("t", tenant)
        .param("id", id.to_string())
        .param("limit", limit)
        .fetch_all()
        .await
}

/// How many chunks of the ECG were refused, as the status counts them: a
/// conflicting resend or an ignored message leaves the ECG's chunks valid
/// and is not a failure.
pub async fn refused(client: &Client, tenant: &str, id: Uuid) -> clickhouse::error::Result<u64> {
    client
        .query(&format!(
            "SELECT count() FROM (
                     SELECT kind FROM failed_chunks
                     WHERE tenant = {{t:String}} AND ecg_id = {{id:UUID}}
                     ORDER BY failed_at DESC LIMIT 1 BY {FAILURE_KEY}
                 ) WHERE {MAKES_FAILED}"
        ))
        .param("t", tenant)
        .param("id", id.to_string())
        .fetch_one()
        .await
}
