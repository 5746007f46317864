//! Reads from ClickHouse, always filtered by tenant and ECG and always with
//! bound parameters. No query uses `FINAL`: the processor writes each chunk
//! once, in seq order, so plain aggregates over `lead_chunks` are exact; the
//! two ReplacingMergeTree tables are read so that unmerged duplicates cannot
//! show (newest `ecg_progress` row, `LIMIT 1 BY` on `failed_chunks`).

mod activity;
mod devices;
mod list;
mod live;
mod samples;
mod windows;

pub use activity::Activity;
pub use devices::{BucketCrossings, BucketVolume};
pub use list::{ListFilter, ListRow};
pub use live::{ActiveRow, PipelineRow, StatusRow};
pub use samples::Bucket;
pub use windows::WindowCount;

use clickhouse::{Client, Row};
use ecg_clickhouse::EcgRow;
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;

/// What `lead_chunks` says about an ECG.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct Written {
    /// Distinct seqs written; chunks are written in seq order without gaps,
    /// so this is also the next seq to write.
    pub chunks: u64,
    pub samples: u64,
    pub final_seen: bool,
    pub final_seq: u32,
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
    pub reason: String,
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub failed_at: OffsetDateTime,
    /// All refused chunks of the ECG, not only the rows returned.
    pub total: u64,
}

/// One lead's running totals through its last written chunk.
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
                 FROM lead_chunks
                 WHERE tenant = {t:String} AND ecg_id = {id:UUID}",
            )
            .param("t", tenant)
            .param("id", id.to_string())
            .fetch_one()
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
                "SELECT seq, reason, failed_at, count() OVER () AS total
                 FROM (
                     SELECT seq, reason, failed_at, kafka_topic, kafka_partition, kafka_offset
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
                 FROM lead_chunks
                 WHERE tenant = ? AND ecg_id = ?
                 GROUP BY lead",
            )
            .bind(tenant)
            .bind(id.to_string())
            .fetch_all()
            .await
    }
}
