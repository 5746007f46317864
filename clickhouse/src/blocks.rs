//! Tables `blocks` and `waiting_blocks` (migration 10): samples as one row
//! per (tenant, ECG, lead, chunk), the values in a compressed form that gives
//! every one back bit for bit.
//!
//! [`Form`] is the stored form of one lead of one chunk, chosen per chunk and
//! lead: the ADC counts of a digital ECG, decimal integers of physical
//! samples on a decimal grid (the few without such a form, like `-0.0`, kept
//! raw beside them), or the raw `f64` where neither is exact. [`Form::values`]
//! decodes with the same arithmetic as the view `samples` in ClickHouse.
//!
//! [`Block`] is the row, the same type for writing (borrowing the chunk's
//! buffers) and reading. The reads and writes every service shares are here:
//! the processor's inserts, state reloads and the read-back of waiting
//! blocks; the query API's reads of values and running totals.

use std::borrow::Cow;
use std::collections::HashMap;

use clickhouse::{Client, Row};
use ecg_schemas::{Calibration, Signal};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::decimal::{self, Decimals};

/// The placed blocks: every ECG's chunks `0..n` without a gap.
pub const PLACED: &str = "blocks";
/// Blocks that arrived after a gap, stored but not yet placed.
pub const WAITING: &str = "waiting_blocks";

/// How a block's values are stored (`blocks.codec`, an `Enum8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// `(ints[k] - adc_baseline) / adc_gain`.
    Adc = 1,
    /// `ints[k] / 10^scale`, except positions `raw_at`, whose values are in
    /// `raw` (in that order).
    Decimal = 2,
    /// `raw[k]`.
    Raw = 3,
}

impl Serialize for Codec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i8(*self as i8)
    }
}

impl<'de> Deserialize<'de> for Codec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match i8::deserialize(d)? {
            1 => Ok(Codec::Adc),
            2 => Ok(Codec::Decimal),
            3 => Ok(Codec::Raw),
            other => Err(serde::de::Error::custom(format!("unknown codec {other}"))),
        }
    }
}

/// One lead of one chunk in its stored form.
#[derive(Debug, Clone, PartialEq)]
pub struct Form<'a> {
    pub codec: Codec,
    pub ints: Cow<'a, [i32]>,
    pub scale: u8,
    pub adc_gain: f64,
    pub adc_baseline: i32,
    pub raw: Cow<'a, [f64]>,
    pub raw_at: Vec<u32>,
}

impl<'a> Form<'a> {
    /// Lead `lead` of `signal`: digital leads as their counts (borrowed),
    /// physical ones through [`Form::physical`].
    pub fn of(signal: &'a Signal, lead: usize) -> Form<'a> {
        match signal {
            Signal::Digital { adc, calibration } => Form::adc(&adc[lead], calibration[lead]),
            Signal::Physical(values) => Form::physical(&values[lead]),
        }
    }

    /// A digital lead: the counts as sent, and the calibration.
    pub fn adc(counts: &'a [i32], calibration: Calibration) -> Form<'a> {
        Form {
            codec: Codec::Adc,
            ints: Cow::Borrowed(counts),
            scale: 0,
            adc_gain: calibration.gain,
            adc_baseline: calibration.baseline,
            raw: Cow::Borrowed(&[]),
            raw_at: Vec::new(),
        }
    }

    /// A physical lead: decimal integers where every sample but a few (at
    /// most a quarter, plus 16) has a decimal form that fits `i32`, those
    /// few raw beside them; otherwise every sample raw (borrowed).
    pub fn physical(values: &'a [f64]) -> Form<'a> {
        let raw_form = || Form {
            codec: Codec::Raw,
            ints: Cow::Borrowed(&[]),
            scale: 0,
            adc_gain: 0.0,
            adc_baseline: 0,
            raw: Cow::Borrowed(values),
            raw_at: Vec::new(),
        };
        let d = Decimals::encode(values);
        if d.ints.is_empty() {
            return raw_form();
        }
        let allowed = values.len() / 4 + 16;
        let mut ints = Vec::with_capacity(values.len());
        let (mut raw, mut raw_at) = (Vec::new(), Vec::new());
        for (k, &v) in values.iter().enumerate() {
            let int = d.value(k, v).and_then(|_| i32::try_from(d.ints[k]).ok());
            match int {
                Some(i) => ints.push(i),
                None => {
                    if raw.len() == allowed {
                        return raw_form();
                    }
                    ints.push(0);
                    raw.push(v);
                    // Validation caps a chunk far below 2^32 samples.
                    raw_at.push(k as u32);
                }
            }
        }
        Form {
            codec: Codec::Decimal,
            ints: Cow::Owned(ints),
            scale: d.scale,
            adc_gain: 0.0,
            adc_baseline: 0,
            raw: Cow::Owned(raw),
            raw_at,
        }
    }

    /// Samples in the block.
    pub fn len(&self) -> usize {
        match self.codec {
            Codec::Raw => self.raw.len(),
            Codec::Adc | Codec::Decimal => self.ints.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every value, bit for bit as sent, computed as the view `samples`
    /// computes it.
    pub fn values(&self) -> Vec<f64> {
        match self.codec {
            Codec::Raw => self.raw.to_vec(),
            Codec::Adc => {
                let c = self.calibration();
                self.ints.iter().map(|&a| c.physical(a)).collect()
            }
            Codec::Decimal => {
                let mut out: Vec<f64> = self
                    .ints
                    .iter()
                    .map(|&i| decimal::decode(self.scale, i64::from(i)))
                    .collect();
                for (&at, &v) in self.raw_at.iter().zip(self.raw.iter()) {
                    if let Some(slot) = out.get_mut(at as usize) {
                        *slot = v;
                    }
                }
                out
            }
        }
    }

    /// The calibration of an `adc` block.
    pub fn calibration(&self) -> Calibration {
        Calibration {
            gain: self.adc_gain,
            baseline: self.adc_baseline,
        }
    }
}

/// A row of `blocks` or `waiting_blocks`: one lead of one chunk.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct Block<'a> {
    pub tenant: Cow<'a, str>,
    #[serde(with = "clickhouse::serde::uuid")]
    pub ecg_id: Uuid,
    pub lead: Cow<'a, str>,
    pub seq: u32,
    pub lead_index: u8,
    pub device_id: Cow<'a, str>,
    pub units: Cow<'a, str>,
    pub fingerprint: u64,
    pub is_final: bool,
    pub sample_rate_hz: f64,
    #[serde(with = "clickhouse::serde::time::datetime64::micros")]
    pub started_at: OffsetDateTime,
    /// 0 in `waiting_blocks` (unknown).
    pub first_sample: u64,
    pub samples: u32,
    pub codec: Codec,
    pub ints: Cow<'a, [i32]>,
    pub scale: u8,
    pub adc_gain: f64,
    pub adc_baseline: i32,
    pub raw: Cow<'a, [f64]>,
    pub raw_at: Vec<u32>,
    pub first_sign: i8,
    pub last_sign: i8,
    pub crossings: u32,
    /// Running totals through this block; 0 in `waiting_blocks`.
    pub samples_total: u64,
    pub crossings_total: u64,
    pub last_sign_total: i8,
    pub kafka_partition: i32,
    pub kafka_offset: i64,
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub processed_at: OffsetDateTime,
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub produced_at: OffsetDateTime,
}

impl<'a> Block<'a> {
    /// The block's stored form.
    pub fn form(&self) -> Form<'_> {
        Form {
            codec: self.codec,
            ints: Cow::Borrowed(&self.ints),
            scale: self.scale,
            adc_gain: self.adc_gain,
            adc_baseline: self.adc_baseline,
            raw: Cow::Borrowed(&self.raw),
            raw_at: self.raw_at.clone(),
        }
    }

    /// The row, owning its strings and arrays.
    pub fn into_owned(self) -> Block<'static> {
        Block {
            tenant: Cow::Owned(self.tenant.into_owned()),
            lead: Cow::Owned(self.lead.into_owned()),
            device_id: Cow::Owned(self.device_id.into_owned()),
            units: Cow::Owned(self.units.into_owned()),
            ints: Cow::Owned(self.ints.into_owned()),
            raw: Cow::Owned(self.raw.into_owned()),
            ..self
        }
    }

    /// Sets the stored form.
    pub fn with_form(mut self, form: Form<'a>) -> Self {
        self.samples = u32::try_from(form.len()).unwrap_or(u32::MAX);
        self.codec = form.codec;
        self.ints = form.ints;
        self.scale = form.scale;
        self.adc_gain = form.adc_gain;
        self.adc_baseline = form.adc_baseline;
        self.raw = form.raw;
        self.raw_at = form.raw_at;
        self
    }
}

/// What `blocks` holds of one lead of an ECG: its last placed block.
#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct LastBlock {
    pub tenant: String,
    #[serde(with = "clickhouse::serde::uuid")]
    pub ecg_id: Uuid,
    pub lead: String,
    pub lead_index: u8,
    pub last_seq: u32,
    pub samples_total: u64,
    pub crossings_total: u64,
    pub last_sign_total: i8,
    pub final_seen: bool,
    pub final_seq: u32,
}

/// A chunk in `waiting_blocks` (its lead 0 row).
#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct WaitingChunk {
    pub tenant: String,
    #[serde(with = "clickhouse::serde::uuid")]
    pub ecg_id: Uuid,
    pub seq: u32,
    pub is_final: bool,
    pub samples: u32,
    /// The chunk's lead names, in lead order.
    pub leads: Vec<String>,
}

/// Writes rows to `table` ([`PLACED`] or [`WAITING`]) in one insert.
/// Retrying with the same rows is harmless: insert deduplication drops a
/// block that landed (`non_replicated_deduplication_window`).
pub async fn insert(
    client: &Client,
    table: &str,
    rows: &[Block<'_>],
) -> clickhouse::error::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut insert = client.insert::<Block<'_>>(table).await?;
    for row in rows {
        insert.write(row).await?;
    }
    insert.end().await
}

/// The last placed block of every lead of the ECGs `ids`, with the final
/// seq where a final block is placed.
pub async fn last_blocks(
    client: &Client,
    ids: &[Uuid],
) -> clickhouse::error::Result<Vec<LastBlock>> {
    let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    client
        .query(
            "SELECT tenant, ecg_id, lead,
                    any(lead_index) AS lead_index,
                    max(seq) AS last_seq,
                    argMax(samples_total, seq) AS samples_total,
                    argMax(crossings_total, seq) AS crossings_total,
                    argMax(last_sign_total, seq) AS last_sign_total,
                    max(is_final) AS final_seen,
                    maxIf(seq, is_final) AS final_seq
             FROM blocks
             WHERE ecg_id IN ?
             GROUP BY tenant, ecg_id, lead",
        )
        .bind(&ids)
        .fetch_all()
        .await
}

/// The chunks in `waiting_blocks` of the ECGs `ids`, by ECG and seq. A
/// chunk below its ECG's placed prefix is one already placed whose delete
/// did not run (a crash in between): it is deleted by the next
/// [`delete_waiting`].
pub async fn waiting_chunks(
    client: &Client,
    ids: &[Uuid],
) -> clickhouse::error::Result<Vec<WaitingChunk>> {
    let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    client
        .query(
            "SELECT tenant, ecg_id, seq, any(is_final) AS is_final, any(samples) AS samples,
                    arrayMap(x -> x.2, arraySort(groupArray((lead_index, toString(lead))))) AS leads
             FROM waiting_blocks
             WHERE ecg_id IN ?
             GROUP BY tenant, ecg_id, seq
             ORDER BY tenant, ecg_id, seq",
        )
        .bind(&ids)
        .fetch_all()
        .await
}

/// The waiting blocks of one ECG with seqs `from..=to`, by seq then lead.
pub async fn read_waiting(
    client: &Client,
    tenant: &str,
    id: Uuid,
    from: u32,
    to: u32,
) -> clickhouse::error::Result<Vec<Block<'static>>> {
    let mut cursor = client
        .query(
            "SELECT ?fields FROM waiting_blocks
             WHERE tenant = ? AND ecg_id = ? AND seq >= ? AND seq <= ?
             ORDER BY seq, lead_index",
        )
        .bind(tenant)
        .bind(id.to_string())
        .bind(from)
        .bind(to)
        .fetch::<Block<'_>>()?;
    let mut out = Vec::new();
    while let Some(block) = cursor.next().await? {
        out.push(block.into_owned());
    }
    Ok(out)
}

/// Deletes the waiting blocks of an ECG with seqs in `seqs`: those below
/// its placed prefix (they are in `blocks` now), or one chunk that cannot
/// be placed. Lightweight delete: the rows vanish from reads at once.
pub async fn delete_waiting(
    client: &Client,
    tenant: &str,
    id: Uuid,
    seqs: std::ops::Range<u32>,
) -> clickhouse::error::Result<()> {
    client
        .query(
            "DELETE FROM waiting_blocks WHERE tenant = ? AND ecg_id = ? AND seq >= ? AND seq < ?",
        )
        .bind(tenant)
        .bind(id.to_string())
        .bind(seqs.start)
        .bind(seqs.end)
        .execute()
        .await
}

/// The stored fingerprints of chunks, placed or waiting (lead 0's row;
/// every lead's is the same). Chunks not found are absent from the map.
pub async fn fingerprints(
    client: &Client,
    chunks: &[((String, Uuid), u32)],
) -> clickhouse::error::Result<HashMap<((String, Uuid), u32), u64>> {
    let ids: Vec<String> = chunks.iter().map(|((_, id), _)| id.to_string()).collect();
    let seqs: Vec<u32> = chunks.iter().map(|(_, seq)| *seq).collect();
    let rows: Vec<(String, String, u32, u64)> = client
        .query(
            "SELECT tenant, toString(ecg_id), seq, fingerprint FROM blocks
             WHERE ecg_id IN ? AND seq IN ? AND lead_index = 0
             UNION ALL
             SELECT tenant, toString(ecg_id), seq, fingerprint FROM waiting_blocks
             WHERE ecg_id IN ? AND seq IN ? AND lead_index = 0",
        )
        .bind(&ids)
        .bind(&seqs)
        .bind(&ids)
        .bind(&seqs)
        .fetch_all()
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(tenant, id, seq, fp)| Some((((tenant, id.parse().ok()?), seq), fp)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(values: &[f64]) -> Form<'_> {
        let form = Form::physical(values);
        let back = form.values();
        assert_eq!(back.len(), values.len());
        for (k, (a, b)) in values.iter().zip(&back).enumerate() {
            assert_eq!(
                a.to_bits(),
                b.to_bits(),
                "sample {k}: {a:?} came back as {b:?}"
            );
        }
        form
    }

    #[test]
    fn decimals_with_a_negative_zero_keep_it_raw_beside_them() {
        let form = round_trip(&[0.05368, -0.0, 1.5, 0.0, -2.25]);
        assert_eq!(form.codec, Codec::Decimal);
        assert_eq!(form.scale, 5);
        assert_eq!(form.raw_at, vec![1]);
        assert_eq!(form.raw.len(), 1);
    }

    #[test]
    fn computed_floats_and_huge_decimals_are_raw() {
        let thirds: Vec<f64> = (1..100).map(|k| f64::from(k) / 3.0).collect();
        assert_eq!(round_trip(&thirds).codec, Codec::Raw);
        // Integers beyond i32 have a decimal form but no `ints` slot.
        let big: Vec<f64> = (0..100).map(|k| 3e9 + f64::from(k)).collect();
        assert_eq!(round_trip(&big).codec, Codec::Raw);
        assert_eq!(round_trip(&[]).len(), 0);
    }

    #[test]
    fn adc_counts_come_back_through_the_calibration() {
        let counts = [1024, 1000, -5, i32::MAX, i32::MIN];
        let c = Calibration {
            gain: 200.0,
            baseline: 1024,
        };
        let form = Form::adc(&counts, c);
        let want: Vec<u64> = counts.iter().map(|&a| c.physical(a).to_bits()).collect();
        let got: Vec<u64> = form.values().iter().map(|v| v.to_bits()).collect();
        assert_eq!(got, want);
    }

    proptest! {
        #[test]
        fn any_values_come_back_bit_for_bit(
            values in prop::collection::vec(
                prop_oneof![
                    4 => (-100_000i64..100_000).prop_map(|i| i as f64 / 1e3),
                    1 => any::<u64>().prop_map(f64::from_bits),
                    1 => prop::sample::select(vec![0.0, -0.0, f64::NAN, f64::INFINITY, 0.1 + 0.2, 5e-324]),
                ],
                0..300,
            )
        ) {
            round_trip(&values);
        }
    }
}
