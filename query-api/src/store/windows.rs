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

/// Where a lead's scan may start: the end of its last written chunk that
/// lies wholly before the range, and the running sign through it.
#[derive(Debug, Clone, Row, Deserialize)]
struct Seed {
    lead: String,
    start: u64,
    sign: i8,
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
        // anywhere before `from`. Rather than scanning the whole prefix, each
        // lead starts at the end of its last chunk before `from`, seeded with
        // that chunk's `last_sign_total` (the processor's exact running sign)
        // as one extra row just before it; the range is applied after the lag.
        let seeds: Vec<Seed> = self
            .client
            .query(
                "SELECT lead, first_sample + samples AS start, last_sign_total AS sign
                 FROM lead_chunks
                 WHERE tenant = {t:String} AND ecg_id = {id:UUID}
                   AND first_sample + samples <= {from:UInt64}
                 ORDER BY seq DESC
                 LIMIT 1 BY lead",
            )
            .param("t", tenant)
            .param("id", id.to_string())
            .param("from", from)
            .fetch_all()
            .await?;
        let floor = seeds.iter().map(|s| s.start).min().unwrap_or(0);
        let leads: Vec<&str> = seeds.iter().map(|s| s.lead.as_str()).collect();
        let starts: Vec<u64> = seeds.iter().map(|s| s.start).collect();
        let signs: Vec<i8> = seeds.iter().map(|s| s.sign).collect();
        // A lead without a seed starts at 0: indexOf gives 0 and
        // `starts[0]` is ClickHouse's default, 0.
        let sql = format!(
            "SELECT lead, toUInt64(floor(sample_index / {{w:Float64}})) AS window,
                    toUInt64(countIf(prev != 0 AND prev != s)) AS crossings
             FROM (
                 SELECT lead, sample_index, s,
                        lagInFrame(s) OVER (PARTITION BY lead ORDER BY sample_index
                                            ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS prev
                 FROM (
                     SELECT lead, sample_index, toInt8({SIGN}) AS s
                     FROM samples
                     WHERE tenant = {{t:String}} AND ecg_id = {{id:UUID}}
                       AND sample_index >= {{floor:UInt64}} AND sample_index < {{to:UInt64}}
                       AND sample_index >= {{starts:Array(UInt64)}}[indexOf({{leads:Array(String)}}, lead)]
                     UNION ALL
                     -- Same column types as above, or UNION ALL makes Variants.
                     SELECT toLowCardinality(seed.1) AS lead, toUInt64(seed.2 - 1) AS sample_index,
                            toInt8(seed.3) AS s
                     FROM (SELECT arrayJoin(arrayZip({{leads:Array(String)}}, {{starts:Array(UInt64)}},
                                                     {{signs:Array(Int8)}})) AS seed)
                 )
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
            .param("floor", floor)
            .param("leads", &leads)
            .param("starts", &starts)
            .param("signs", &signs)
            .fetch_all()
            .await
    }
}
