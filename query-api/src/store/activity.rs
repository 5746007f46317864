//! When an ECG last moved, and which refused seqs it has: what the status
//! adds to the processor's own progress to count the chunks received. A
//! chunk stored while it waits for a gap is movement too.

use clickhouse::Row;
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::Store;

#[derive(Debug, Clone, Row, Deserialize)]
pub struct Activity {
    /// The newest `processed_at` (placed or waiting) or `failed_at`; the
    /// epoch when none.
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub last_at: OffsetDateTime,
    /// Distinct seqs of refused chunks (those whose seq could be read).
    pub failed_seqs: Vec<u32>,
}

impl Store {
    pub async fn activity(&self, tenant: &str, id: Uuid) -> clickhouse::error::Result<Activity> {
        self.client
            .query(
                // Scalar subqueries are Nullable; max() of no rows is the epoch.
                "SELECT greatest(
                     assumeNotNull((SELECT max(processed_at) FROM blocks
                                    WHERE tenant = {t:String} AND ecg_id = {id:UUID})),
                     assumeNotNull((SELECT max(processed_at) FROM waiting_blocks
                                    WHERE tenant = {t:String} AND ecg_id = {id:UUID})),
                     assumeNotNull((SELECT max(failed_at) FROM failed_chunks
                                    WHERE tenant = {t:String} AND ecg_id = {id:UUID}))) AS last_at,
                 (SELECT groupUniqArray(assumeNotNull(seq)) FROM failed_chunks
                  WHERE tenant = {t:String} AND ecg_id = {id:UUID} AND seq IS NOT NULL) AS failed_seqs",
            )
            .param("t", tenant)
            .param("id", id.to_string())
            .fetch_one()
            .await
    }
}
