//! Samples for plotting: each bucket of consecutive samples reduced to its
//! min and max, so a peak inside a bucket is still drawn.

use clickhouse::Row;
use serde::Deserialize;
use uuid::Uuid;

use super::Store;

/// One bucket of one lead.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct Bucket {
    pub lead: String,
    /// The bucket's first sample present.
    pub first: u64,
    pub min: f64,
    pub max: f64,
}

impl Store {
    /// Samples `from..to` of `leads`, in buckets of `bucket` consecutive
    /// samples counted from `from`, ordered by lead then time.
    pub async fn sample_buckets(
        &self,
        tenant: &str,
        id: Uuid,
        leads: &[String],
        from: u64,
        to: u64,
        bucket: u64,
    ) -> clickhouse::error::Result<Vec<Bucket>> {
        self.client
            .query(
                "SELECT lead, min(sample_index) AS first, min(value) AS min, max(value) AS max
                 FROM samples
                 WHERE tenant = {t:String} AND ecg_id = {id:UUID}
                   AND lead IN {leads:Array(String)}
                   AND sample_index >= {from:UInt64} AND sample_index < {to:UInt64}
                 GROUP BY lead, intDiv(sample_index - {from:UInt64}, {bucket:UInt64}) AS k
                 ORDER BY lead, k",
            )
            .param("t", tenant)
            .param("id", id.to_string())
            .param("leads", leads)
            .param("from", from)
            .param("to", to)
            .param("bucket", bucket)
            .fetch_all()
            .await
    }
}
