//! Reads from ClickHouse, always filtered by tenant and always with bound
//! parameters. No query uses `FINAL`: the processor writes each chunk once,
//! in seq order, so plain aggregates are exact.

use clickhouse::{Client, Row};
use ecg_clickhouse::EcgRow;
use serde::Deserialize;
use uuid::Uuid;

/// How far processing of an ECG has come.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct Progress {
    pub chunks: u64,
    pub samples: u64,
    pub final_seen: bool,
    pub final_seq: u32,
    pub failed: u64,
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
    client: Client,
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

    pub async fn progress(&self, tenant: &str, id: Uuid) -> clickhouse::error::Result<Progress> {
        self.client
            .query(
                "SELECT uniqExact(seq) AS chunks,
                        sum(samples) AS samples,
                        max(is_final) AS final_seen,
                        maxIf(seq, is_final) AS final_seq,
                        -- A scalar subquery is Nullable; the count never is NULL.
                        ifNull((SELECT count() FROM (
                            SELECT 1 FROM failed_chunks WHERE tenant = {t:String} AND ecg_id = {id:UUID}
                            LIMIT 1 BY kafka_topic, kafka_partition, kafka_offset)), 0) AS failed
                 FROM lead_chunks
                 WHERE tenant = {t:String} AND ecg_id = {id:UUID}",
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
