//! The query API's reads of `blocks` and `waiting_blocks`: an ECG's counts
//! and running totals, and cursors over the placed blocks that overlap a
//! range of samples or of time, for the scans that decode and count them.
//!
//! Totals are the processor's running totals through each lead's last
//! placed block; nothing is folded in SQL. The cursors yield [`Stored`] rows
//! in `(lead, seq)` order per ECG; the caller folds them, one at a time.

use clickhouse::query::RowCursor;
use clickhouse::{Client, Row};
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::form::{Codec, Form, form_of};

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

/// One lead's running totals through its last placed block.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct LeadTotals {
    pub lead: String,
    pub samples: u64,
    pub zero_crossings: u64,
}

/// What the scans read of one row of `blocks`: where it is and its values.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct Stored {
    #[serde(with = "clickhouse::serde::uuid")]
    pub ecg_id: Uuid,
    pub lead: String,
    pub seq: u32,
    pub sample_rate_hz: f64,
    #[serde(with = "clickhouse::serde::time::datetime64::micros")]
    pub started_at: OffsetDateTime,
    pub first_sample: u64,
    pub codec: Codec,
    pub ints: Vec<i32>,
    pub scale: u8,
    pub adc_gain: f64,
    pub adc_baseline: i32,
    pub raw: Vec<f64>,
    pub raw_at: Vec<u32>,
}

impl Stored {
    /// The block's stored form, borrowing its arrays.
    pub fn form(&self) -> Form<'_> {
        form_of!(self)
    }
}

/// The ECG's placed chunks.
pub async fn written(
    client: &Client,
    tenant: &str,
    id: Uuid,
) -> clickhouse::error::Result<Written> {
    client
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

/// The ECG's chunks in `waiting_blocks`, by seq. A seq can briefly be in
/// `blocks` too (placed, its waiting rows not deleted yet): callers keep
/// only seqs beyond the placed prefix.
pub async fn waiting(
    client: &Client,
    tenant: &str,
    id: Uuid,
) -> clickhouse::error::Result<Vec<Waiting>> {
    client
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

/// Each lead's running totals through its last placed block.
pub async fn lead_totals(
    client: &Client,
    tenant: &str,
    id: Uuid,
) -> clickhouse::error::Result<Vec<LeadTotals>> {
    client
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

/// One ECG's placed blocks with samples in `{from}..{to}`.
const OVERLAPPING: &str = "tenant = {t:String} AND ecg_id = {id:UUID}
     AND first_sample < {to:UInt64} AND first_sample + samples > {from:UInt64}";

/// Each lead's running sign through its last placed block that ends at or
/// before sample `from` (lead, sign); leads without one are absent.
pub async fn lead_signs_before(
    client: &Client,
    tenant: &str,
    id: Uuid,
    from: u64,
) -> clickhouse::error::Result<Vec<(String, i8)>> {
    client
        .query(
            "SELECT lead, argMax(last_sign_total, seq) AS sign
             FROM blocks
             WHERE tenant = {t:String} AND ecg_id = {id:UUID}
               AND first_sample + samples <= {from:UInt64}
             GROUP BY lead",
        )
        .param("t", tenant)
        .param("id", id.to_string())
        .param("from", from)
        .fetch_all()
        .await
}

/// The ECG's placed blocks with samples in `from..to`, by lead and seq.
pub fn overlapping(
    client: &Client,
    tenant: &str,
    id: Uuid,
    range: (u64, u64),
) -> clickhouse::error::Result<RowCursor<Stored>> {
    overlapping_in_order(client, tenant, id, range, "lead, seq")
}

/// [`overlapping`] ordered by `order` (columns of `blocks`, from this
/// module only: it is written into the SQL).
fn overlapping_in_order(
    client: &Client,
    tenant: &str,
    id: Uuid,
    (from, to): (u64, u64),
    order: &str,
) -> clickhouse::error::Result<RowCursor<Stored>> {
    client
        .query(&format!(
            "SELECT ?fields FROM blocks WHERE {OVERLAPPING} ORDER BY {order}"
        ))
        .param("t", tenant)
        .param("id", id.to_string())
        .param("from", from)
        .param("to", to)
        .fetch()
}

/// Of those, the blocks of `leads` only.
pub fn overlapping_leads(
    client: &Client,
    tenant: &str,
    id: Uuid,
    leads: &[String],
    (from, to): (u64, u64),
) -> clickhouse::error::Result<RowCursor<Stored>> {
    client
        .query(&format!(
            "SELECT ?fields FROM blocks
             WHERE {OVERLAPPING} AND lead IN {{leads:Array(String)}}
             ORDER BY lead, seq"
        ))
        .param("t", tenant)
        .param("id", id.to_string())
        .param("leads", leads)
        .param("from", from)
        .param("to", to)
        .fetch()
}

/// A device's placed blocks, bound with `{t}` and `{device}`. The `ecgs`
/// subquery lets the primary key (tenant, ecg_id, ...) skip other ECGs.
const DEVICE_BLOCKS: &str = "tenant = {t:String} AND device_id = {device:String}
     AND ecg_id IN (SELECT ecg_id FROM ecgs WHERE tenant = {t:String} AND device_id = {device:String})";

/// Of those, the blocks with samples at times `{from}..{to}` (µs), by
/// their bounds.
const IN_TIME_RANGE: &str = "first_ts < fromUnixTimestamp64Micro({to:Int64}, 'UTC')
     AND last_ts >= fromUnixTimestamp64Micro({from:Int64}, 'UTC')";

/// For each ECG of the device with blocks at times `from..to` (µs), each
/// lead's running sign through its last block that ends before `from`
/// (ECG, lead, sign).
pub async fn device_signs_before(
    client: &Client,
    tenant: &str,
    device: &str,
    (from, to): (i64, i64),
) -> clickhouse::error::Result<Vec<(Uuid, String, i8)>> {
    #[derive(Row, Deserialize)]
    struct Seed {
        #[serde(with = "clickhouse::serde::uuid")]
        ecg_id: Uuid,
        lead: String,
        sign: i8,
    }
    let seeds: Vec<Seed> = client
        .query(&format!(
            "SELECT ecg_id, lead, argMax(last_sign_total, seq) AS sign
             FROM blocks
             WHERE {DEVICE_BLOCKS} AND last_ts < fromUnixTimestamp64Micro({{from:Int64}}, 'UTC')
               AND ecg_id IN (SELECT ecg_id FROM blocks WHERE {DEVICE_BLOCKS} AND {IN_TIME_RANGE})
             GROUP BY ecg_id, lead"
        ))
        .param("t", tenant)
        .param("device", device)
        .param("from", from)
        .param("to", to)
        .fetch_all()
        .await?;
    Ok(seeds
        .into_iter()
        .map(|s| (s.ecg_id, s.lead, s.sign))
        .collect())
}

/// The device's placed blocks with samples at times `from..to` (µs), by
/// ECG, lead and seq.
pub fn device_blocks(
    client: &Client,
    tenant: &str,
    device: &str,
    (from, to): (i64, i64),
) -> clickhouse::error::Result<RowCursor<Stored>> {
    client
        .query(&format!(
            "SELECT ?fields FROM blocks WHERE {DEVICE_BLOCKS} AND {IN_TIME_RANGE}
             ORDER BY ecg_id, lead, seq"
        ))
        .param("t", tenant)
        .param("device", device)
        .param("from", from)
        .param("to", to)
        .fetch()
}

/// What one window of one lead holds, for its signal-quality verdict
/// (`ecg_signal::quality`): a block counts in the window of its first
/// sample, so a window's edges are those of its blocks. Blocks written
/// before migration 15 have no figures and are left out.
#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct WindowStats {
    pub lead: String,
    pub window: u64,
    pub n: u64,
    pub low: f64,
    pub high: f64,
    /// Samples equal to their block's minimum or maximum.
    pub clipped: u64,
}

/// Per lead and window of `window_samples` samples
/// (`window = floor(first_sample / window_samples)`), the placed blocks
/// starting in samples `from..to`: samples, range and samples at their
/// block's extremes, ordered by lead then window. Three numbers per block,
/// no sample decoded.
pub async fn window_stats(
    client: &Client,
    tenant: &str,
    id: Uuid,
    window_samples: f64,
    (from, to): (u64, u64),
) -> clickhouse::error::Result<Vec<WindowStats>> {
    client
        .query(
            "SELECT toString(lead) AS lead,
                    toUInt64(floor(first_sample / {w:Float64})) AS window,
                    sum(samples) AS n,
                    min(assumeNotNull(lo)) AS low,
                    max(assumeNotNull(hi)) AS high,
                    sum(assumeNotNull(at_extremes)) AS clipped
             FROM blocks
             WHERE tenant = {t:String} AND ecg_id = {id:UUID}
               AND first_sample >= {from:UInt64} AND first_sample < {to:UInt64}
               AND samples > 0 AND isNotNull(at_extremes)
             GROUP BY lead, window
             ORDER BY lead, window",
        )
        .param("t", tenant)
        .param("id", id.to_string())
        .param("w", window_samples)
        .param("from", from)
        .param("to", to)
        .fetch_all()
        .await
}

/// The ECG's placed blocks with samples in `from..to`, by seq and lead: a
/// chunk's leads one after another, for writers of frames (one sample of
/// every lead at a time), such as a WFDB signal file.
pub fn overlapping_by_seq(
    client: &Client,
    tenant: &str,
    id: Uuid,
    range: (u64, u64),
) -> clickhouse::error::Result<RowCursor<Stored>> {
    overlapping_in_order(client, tenant, id, range, "seq, lead")
}

/// One way a lead's blocks in a range are stored: the blocks that share a
/// codec, a calibration and a scale. An exporter reads these first to
/// choose one representation for the whole lead (ADC counts, scaled
/// integers, or decimal text) before it writes a sample.
#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct LeadForm {
    pub lead: String,
    pub codec: Codec,
    pub adc_gain: f64,
    pub adc_baseline: i32,
    pub scale: u8,
    /// The least and greatest of the blocks' `ints` (0 when they have none).
    pub ints_low: i32,
    pub ints_high: i32,
    /// Whether any raw value (a `raw` block, or a decimal block's
    /// exception) is other than ±0.
    pub raw_nonzero: bool,
    /// The first chunk stored this way, to name in messages.
    pub first_seq: u32,
}

/// Every [`LeadForm`] of the ECG's placed blocks with samples in
/// `from..to`, by lead then first seq. One small row per form; no sample
/// is read back.
pub async fn lead_forms(
    client: &Client,
    tenant: &str,
    id: Uuid,
    (from, to): (u64, u64),
) -> clickhouse::error::Result<Vec<LeadForm>> {
    client
        .query(&format!(
            "SELECT toString(lead) AS lead, codec, adc_gain, adc_baseline, scale,
                    minIf(arrayMin(ints), notEmpty(ints)) AS ints_low,
                    maxIf(arrayMax(ints), notEmpty(ints)) AS ints_high,
                    max(arrayExists(x -> x != 0, raw)) AS raw_nonzero,
                    min(seq) AS first_seq
             FROM blocks WHERE {OVERLAPPING}
             GROUP BY lead, codec, adc_gain, adc_baseline, scale
             ORDER BY lead, first_seq"
        ))
        .param("t", tenant)
        .param("id", id.to_string())
        .param("from", from)
        .param("to", to)
        .fetch_all()
        .await
}
