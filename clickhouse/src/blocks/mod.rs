//! Tables `blocks` and `waiting_blocks` (migrations 10 and 11): samples as
//! one row per (tenant, ECG, lead, chunk), the values in a compressed form
//! that gives every one back bit for bit ([`Form`], in `form`).
//!
//! [`Block`] is the row, the same type for writing (borrowing the chunk's
//! buffers) and reading. The processor's inserts, state reloads and the
//! read-back of waiting blocks are here; the query API's reads of values,
//! counts and running totals are in `reads`. Both tables are plain
//! `MergeTree`s written once per (ECG, lead, seq) (a retried insert is
//! deduplicated), so plain aggregates over them are exact without `FINAL`;
//! a chunk can be in both for a moment while it is placed, and `blocks`
//! wins.

use std::borrow::Cow;
use std::collections::HashMap;

use clickhouse::{Client, Row};
use ecg_schemas::Units;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

mod form;
mod reads;

use crate::insert::insert_all;
use form::form_of;

pub use form::{Codec, Form};
pub use reads::{
    LeadForm, LeadTotals, Stored, Waiting, WindowStats, Written, device_blocks,
    device_signs_before, lead_forms, lead_signs_before, lead_totals, overlapping,
    overlapping_by_seq, overlapping_leads, waiting, window_stats, written,
};
/// A saved analytic state, as `analytic_states` holds it.
pub use serde_bytes::ByteBuf;

/// The placed blocks: every ECG's chunks `0..n` without a gap.
pub const PLACED: &str = "blocks";
/// Blocks that arrived after a gap, stored but not yet placed.
pub const WAITING: &str = "waiting_blocks";

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
    #[serde(with = "crate::units")]
    pub units: Units,
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
    /// R peaks decided while placing this block (sample indices, ascending);
    /// empty in `waiting_blocks` (migration 14).
    pub beats: Vec<u64>,
    /// Per beat: samples since the lead's previous beat, 0 for its first.
    pub beat_rr: Vec<u32>,
    /// 1 + the sample index of the lead's last beat through this block; 0
    /// if none yet.
    pub last_beat: u64,
    /// The lead's order-dependent analytics saved after this block
    /// (`ecg_signal::AnyAnalytic::save`); empty in `waiting_blocks`.
    pub analytic_states: Vec<ByteBuf>,
    /// The block's smallest and largest value, and the samples at either
    /// (migration 15; `None` in rows written before it).
    pub lo: Option<f64>,
    pub hi: Option<f64>,
    pub at_extremes: Option<u32>,
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
        form_of!(self)
    }

    /// The row, owning its strings and arrays.
    pub fn into_owned(self) -> Block<'static> {
        Block {
            tenant: Cow::Owned(self.tenant.into_owned()),
            lead: Cow::Owned(self.lead.into_owned()),
            device_id: Cow::Owned(self.device_id.into_owned()),
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
    pub sample_rate_hz: f64,
    pub last_seq: u32,
    pub samples_total: u64,
    pub crossings_total: u64,
    pub last_sign_total: i8,
    pub last_beat: u64,
    pub final_seen: bool,
    pub final_seq: u32,
}

/// The last placed block of one lead that holds saved analytic states (a
/// checkpoint, migration 14).
#[derive(Debug, Clone, PartialEq, Row, Deserialize)]
pub struct Checkpoint {
    pub tenant: String,
    #[serde(with = "clickhouse::serde::uuid")]
    pub ecg_id: Uuid,
    pub lead_index: u8,
    /// The checkpoint's seq.
    pub at_seq: u32,
    /// Its `analytic_states`.
    pub states: Vec<ByteBuf>,
}

/// Per lead of the ECGs `ids`: its last checkpoint, if it has one.
pub async fn checkpoints(
    client: &Client,
    ids: &[Uuid],
) -> clickhouse::error::Result<Vec<Checkpoint>> {
    let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    client
        .query(
            "SELECT tenant, ecg_id, lead_index, max(seq) AS at_seq,
                    argMax(analytic_states, seq) AS states
             FROM blocks
             WHERE ecg_id IN ? AND notEmpty(analytic_states)
             GROUP BY tenant, ecg_id, lead_index",
        )
        .bind(&ids)
        .fetch_all()
        .await
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
    insert_all::<Block<'_>>(client, table, rows).await
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
                    any(sample_rate_hz) AS sample_rate_hz,
                    max(seq) AS last_seq,
                    argMax(samples_total, seq) AS samples_total,
                    argMax(crossings_total, seq) AS crossings_total,
                    argMax(last_sign_total, seq) AS last_sign_total,
                    argMax(last_beat, seq) AS last_beat,
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

/// The highest seq of one ECG in `blocks` or `waiting_blocks`: the last
/// chunk that arrived, as far as the processor has stored it.
pub async fn highest_seq(
    client: &Client,
    tenant: &str,
    id: Uuid,
) -> clickhouse::error::Result<Option<u32>> {
    client
        .query(
            "SELECT maxOrNull(seq) FROM (
                 SELECT seq FROM blocks WHERE tenant = {t:String} AND ecg_id = {id:UUID}
                 UNION ALL
                 SELECT seq FROM waiting_blocks WHERE tenant = {t:String} AND ecg_id = {id:UUID})",
        )
        .param("t", tenant)
        .param("id", id.to_string())
        .fetch_one()
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

/// The blocks of one ECG in `table` ([`PLACED`] or [`WAITING`]) with seqs
/// `from..=to`, by seq then lead: parked chunks to place, or placed ones to
/// replay through an analytic after a restart.
pub async fn read(
    client: &Client,
    table: &str,
    tenant: &str,
    id: Uuid,
    from: u32,
    to: u32,
) -> clickhouse::error::Result<Vec<Block<'static>>> {
    let table = if table == PLACED { PLACED } else { WAITING };
    let mut cursor = client
        .query(&format!(
            "SELECT ?fields FROM {table}
             WHERE tenant = ? AND ecg_id = ? AND seq >= ? AND seq <= ?
             ORDER BY seq, lead_index"
        ))
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
