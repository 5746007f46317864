//! A device's crossings over time, across its ECGs: the same exact counting
//! as `store::windows` (per ECG and lead, over non-zero samples in order),
//! bucketed by sample time.

use clickhouse::Row;
use serde::Deserialize;
use time::OffsetDateTime;

use super::Store;
use super::windows::SIGN;

/// Samples and ECGs of one time bucket.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct BucketVolume {
    #[serde(with = "clickhouse::serde::time::datetime64::micros")]
    pub start: OffsetDateTime,
    pub ecgs: u64,
    pub samples: u64,
}

/// Crossings of one lead in one time bucket.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct BucketCrossings {
    #[serde(with = "clickhouse::serde::time::datetime64::micros")]
    pub start: OffsetDateTime,
    pub lead: String,
    pub crossings: u64,
}

/// The samples before `{to}` of the device's ECGs that have samples in
/// `{from}..{to}` (µs), bound with `{t}` and `{device}`. ECGs wholly outside
/// the range are never read (their extent comes from `lead_chunks`); those
/// inside are read from their first sample, for the sign before `from`.
const DEVICE_SAMPLES: &str = "samples
     WHERE tenant = {t:String}
       AND ecg_id IN (
           SELECT ecg_id FROM lead_chunks
           WHERE tenant = {t:String} AND device_id = {device:String}
           GROUP BY ecg_id
           HAVING min(started_at) < fromUnixTimestamp64Micro({to:Int64}, 'UTC')
              AND max(addMicroseconds(started_at,
                      toInt64(round((first_sample + samples) * 1e6 / sample_rate_hz))))
                  > fromUnixTimestamp64Micro({from:Int64}, 'UTC'))
       AND ts < fromUnixTimestamp64Micro({to:Int64}, 'UTC')";

impl Store {
    /// Whether the tenant has any ECG of this device.
    pub async fn device_exists(
        &self,
        tenant: &str,
        device: &str,
    ) -> clickhouse::error::Result<bool> {
        let n: u64 = self
            .client
            .query("SELECT count() FROM ecgs WHERE tenant = {t:String} AND device_id = {device:String}")
            .param("t", tenant)
            .param("device", device)
            .fetch_one()
            .await?;
        Ok(n > 0)
    }

    /// Samples and ECGs per bucket of `bucket_s` seconds in `from..to` (µs).
    pub async fn device_volume(
        &self,
        tenant: &str,
        device: &str,
        bucket_s: u64,
        (from, to): (i64, i64),
    ) -> clickhouse::error::Result<Vec<BucketVolume>> {
        let sql = [
            "SELECT toDateTime64(toStartOfInterval(ts, toIntervalSecond({b:UInt64})), 6, 'UTC') AS start,
                    uniqExact(ecg_id) AS ecgs, count() AS samples
             FROM ",
            DEVICE_SAMPLES,
            " AND ts >= fromUnixTimestamp64Micro({from:Int64}, 'UTC')
             GROUP BY start ORDER BY start",
        ]
        .concat();
        self.client
            .query(&sql)
            .param("t", tenant)
            .param("device", device)
            .param("b", bucket_s)
            .param("from", from)
            .param("to", to)
            .fetch_all()
            .await
    }

    /// Crossings per bucket and lead in `from..to` (µs); the sign before
    /// `from` is taken into account, so a crossing is never lost at the edge.
    pub async fn device_crossings(
        &self,
        tenant: &str,
        device: &str,
        bucket_s: u64,
        (from, to): (i64, i64),
    ) -> clickhouse::error::Result<Vec<BucketCrossings>> {
        let sql = [
            "SELECT toDateTime64(toStartOfInterval(ts, toIntervalSecond({b:UInt64})), 6, 'UTC') AS start, lead,
                    toUInt64(countIf(prev != 0 AND prev != s)) AS crossings
             FROM (
                 SELECT lead, ts, s,
                        lagInFrame(s) OVER (PARTITION BY ecg_id, lead ORDER BY sample_index
                                            ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS prev
                 FROM (SELECT ecg_id, lead, sample_index, ts, ",
            SIGN,
            " AS s FROM ",
            DEVICE_SAMPLES,
            ")
                 WHERE s != 0
             )
             WHERE ts >= fromUnixTimestamp64Micro({from:Int64}, 'UTC')
             GROUP BY start, lead
             HAVING crossings > 0
             ORDER BY start, lead",
        ]
        .concat();
        self.client
            .query(&sql)
            .param("t", tenant)
            .param("device", device)
            .param("b", bucket_s)
            .param("from", from)
            .param("to", to)
            .fetch_all()
            .await
    }
}
