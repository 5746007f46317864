//! Reads from ClickHouse, always filtered by tenant and ECG and always with
//! bound parameters. No query uses `FINAL`: the processor writes each block
//! once (one row per ECG, lead and seq; `blocks` holds each ECG's chunks
//! `0..n` without a gap), so plain aggregates over `blocks` are exact; the
//! two ReplacingMergeTree tables are read so that unmerged duplicates cannot
//! show (newest `ecg_progress` row, `LIMIT 1 BY` on `failed_chunks`).
//!
//! Values are read from the blocks themselves and decoded here (`blocks`),
//! never from the per-sample `samples` view; crossings are counted by the
//! `signal` kernel (`crate::series`), not in SQL. Totals are the processor's
//! running totals through each lead's last placed block.

mod activity;
mod blocks;
mod devices;
mod list;
mod live;
mod samples;
mod windows;

pub use activity::Activity;
pub use devices::{BucketCrossings, BucketVolume, DeviceBuckets};
pub use list::{ListFilter, ListRow};
pub use live::{ActiveRow, PipelineRow, StatusRow};
pub use samples::Bucket;
pub use windows::WindowCount;

use clickhouse::{Client, Row};
use ecg_clickhouse::EcgRow;
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;

/// What `blocks` says about an ECG: its placed chunks.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct Written {
    /// Distinct seqs placed; they are `0..chunks` without a gap, so this is
    /// also the next seq to place.
    pub chunks: u64,
    /// All leads together.
    pub samples: u64,
    pub final_seen: bool,
    pub final_seq: u32,
}

/// A chunk stored in `waiting_blocks`, not placed yet.
#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct Waiting {
    pub seq: u32,
    /// All leads together.
    pub samples: u64,
}

/// The newest row of `ecg_progress`: where the processor stands.
#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct Progress {
    pub next_seq: u32,
    /// Ascending.
    pub waiting: Vec<u32>,
    /// Samples, all leads together, of the waiting chunks.
    pub waiting_samples: u64,
    pub final_seq: Option<u32>,
}

/// A refused chunk, each Kafka message once.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct FailedChunkRow {
    pub seq: Option<u32>,
    /// `refused` or `conflict` (see `failed_chunks.kind`).
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

/// One lead's running totals through its last placed block.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct LeadTotals {
    pub lead: String,
    pub samples: u64,
    pub zero_crossings: u64,
}

#[derive(Clone)]
pub struct Store {
    pub(crate) client: Client,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    pub fn new(client: Client) -> Self {
        Store { client }
    }

    pub async fn ecg(&self, tenant: &str, id: Uuid) -> clickhouse::error::Result<Option<EcgRow>> {
        self.client
            // A whole-signal upload adds a row with `final_seq`; until the
            // table merges both exist, and the final one is the truth.
            .query(
                "SELECT ?fields FROM ecgs WHERE tenant = ? AND ecg_id = ? \
                 ORDER BY isNull(final_seq), created_at DESC LIMIT 1",
            )
            .bind(tenant)
            .bind(id.to_string())
            .fetch_optional()
            .await
    }

    pub async fn written(&self, tenant: &str, id: Uuid) -> clickhouse::error::Result<Written> {
        self.client
            .query(
                "SELECT uniqExact(seq) AS chunks,
                        sum(samples) AS samples,
                        max(is_final) AS final_seen,
                        maxIf(seq, is_final) AS final_seq
                 FROM blocks
                 WHERE tenant = {t:String} AND ecg_id = {id:UUID}",
            )
            .param("t", tenant)
            .param("id", id.to_string())
            .fetch_one()
            .await
    }

    /// The chunks in `waiting_blocks`, by seq. A seq can briefly be in
    /// `blocks` too (placed, its waiting rows not deleted yet): callers keep
    /// only seqs beyond the placed prefix.
    pub async fn waiting(&self, tenant: &str, id: Uuid) -> clickhouse::error::Result<Vec<Waiting>> {
        self.client
            .query(
                "SELECT seq, sum(samples) AS samples
                 FROM waiting_blocks
                 WHERE tenant = {t:String} AND ecg_id = {id:UUID}
                 GROUP BY seq
                 ORDER BY seq",
            )
            .param("t", tenant)
            .param("id", id.to_string())
            .fetch_all()
            .await
    }

    /// The processor's newest `ecg_progress` row, if it has written one.
    pub async fn progress(
        &self,
        tenant: &str,
        id: Uuid,
    ) -> clickhouse::error::Result<Option<Progress>> {
        self.client
            .query(
                "SELECT next_seq, waiting, waiting_samples, final_seq
                 FROM ecg_progress
                 WHERE tenant = {t:String} AND ecg_id = {id:UUID}
                 ORDER BY updated_at DESC
                 LIMIT 1",
            )
            .param("t", tenant)
            .param("id", id.to_string())
            .fetch_optional()
            .await
    }

    /// The first `limit` refused chunks by seq (unknown seqs last) then time,
    /// each carrying the total count.
    pub async fn failed_chunks(
        &self,
        tenant: &str,
        id: Uuid,
        limit: u32,
    ) -> clickhouse::error::Result<Vec<FailedChunkRow>> {
        self.client
            .query(
                // A replayed message is one failure: keep its newest row, the
                // one a merge would keep. The window counts before LIMIT.
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

    /// How many chunks of the ECG were refused, each Kafka message once.
    pub async fn failed_count(&self, tenant: &str, id: Uuid) -> clickhouse::error::Result<u64> {
        self.client
            .query(
                "SELECT count() FROM (
                     SELECT 1 FROM failed_chunks
                     WHERE tenant = {t:String} AND ecg_id = {id:UUID}
                     LIMIT 1 BY kafka_topic, kafka_partition, kafka_offset
                 )",
            )
            .param("t", tenant)
            .param("id", id.to_string())
            .fetch_one()
            .await
    }

    /// Each lead's running totals through its last placed block (the
    /// processor folded them; nothing is folded here).
    pub async fn lead_totals(
        &self,
        tenant: &str,
        id: Uuid,
    ) -> clickhouse::error::Result<Vec<LeadTotals>> {
        self.client
            .query(
                "SELECT lead,
                        argMax(samples_total, seq) AS samples,
                        argMax(crossings_total, seq) AS zero_crossings
                 FROM blocks
                 WHERE tenant = ? AND ecg_id = ?
                 GROUP BY lead",
            )
            .bind(tenant)
            .bind(id.to_string())
            .fetch_all()
            .await
    }
}
