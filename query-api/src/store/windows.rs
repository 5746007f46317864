//! Exact zero crossings per window of samples, computed in ClickHouse over
//! `samples` with the semantics of the `signal` crate: a crossing is a sign
//! change between consecutive non-zero samples (0.0 and -0.0 carry nothing,
//! leading zeros have no sign), counted at the sample where the new sign is
//! seen. Chunk boundaries do not exist here: the rows are one lead's whole
//! signal in `sample_index` order, so a crossing that spans chunks counts
//! once, in the window of its second sample.

use clickhouse::Row;
use serde::Deserialize;
use uuid::Uuid;

use super::Store;

/// The sign of a sample as the processor counts it, from the stored form:
/// a digital ECG's from the exact count (adc - baseline), never the float;
/// a decimal's from its integer; a raw float's own (sign(-0.0) is 0).
pub(crate) const SIGN: &str = "multiIf(adc IS NOT NULL, sign(toInt64(assumeNotNull(adc)) - adc_baseline), \
     value_codec = 'decimal', sign(value_int), sign(value_raw))";

/// Crossings of one lead in one window.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct WindowCount {
    pub lead: String,
    pub window: u64,
    pub crossings: u64,
}

impl Store {
    /// Crossings per lead and window of `window_samples` samples, for the
    /// windows of samples `from..to` (`window = floor(index / window_samples)`),
    /// windows without crossings omitted.
    pub async fn crossing_windows(
        &self,
        tenant: &str,
        id: Uuid,
        window_samples: f64,
        from: u64,
        to: u64,
    ) -> clickhouse::error::Result<Vec<WindowCount>> {
        // The previous non-zero sample of the first one in range may lie
        // before `from`, so the lag runs over every sample below `to` and the
        // range is applied after it.
        let sql = format!(
            "SELECT lead, toUInt64(floor(sample_index / {{w:Float64}})) AS window,
                    toUInt64(countIf(prev != 0 AND prev != s)) AS crossings
             FROM (
                 SELECT lead, sample_index, s,
                        lagInFrame(s) OVER (PARTITION BY lead ORDER BY sample_index
                                            ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS prev
                 FROM (SELECT lead, sample_index, {SIGN} AS s
                       FROM samples
                       WHERE tenant = {{t:String}} AND ecg_id = {{id:UUID}}
                         AND sample_index < {{to:UInt64}})
                 WHERE s != 0
             )
             WHERE sample_index >= {{from:UInt64}}
             GROUP BY lead, window
             HAVING crossings > 0
             ORDER BY lead, window"
        );
        self.client
            .query(&sql)
            .param("t", tenant)
            .param("id", id.to_string())
            .param("w", window_samples)
            .param("from", from)
            .param("to", to)
            .fetch_all()
            .await
    }
}
