//! ClickHouse adapter: loads ECG states, writes batches, reads parked
//! chunks back. Every row and statement is `ecg_clickhouse`'s (one module
//! per table); this maps the pipeline's chunks, failures and progress onto
//! them.
//!
//! A batch's placed chunks are written with one insert into `blocks`, its
//! parked ones with one insert into `waiting_blocks` (`ecg_clickhouse::
//! blocks`): no materialized-view fan-out, so an insert is in ClickHouse
//! entirely or not at all. A retry after an error sends byte-identical rows
//! (the batch is kept in memory and `processed_at` is fixed), and insert
//! deduplication drops an insert that did land, so no row is ever written
//! twice.
//!
//! ClickHouse can also refuse an insert for what it holds (a constraint, a
//! value out of range, too many partitions for one insert): [`refusal`]
//! tells those errors from transient ones, and the consumer then writes the
//! rows in parts to find the chunk at fault.

use std::borrow::Cow;
use std::collections::HashMap;

use clickhouse::Client;
use ecg_clickhouse::blocks::{self, Block, Codec, Form};
use ecg_clickhouse::failed_chunks::{self, Failed};
use ecg_clickhouse::{ecgs, progress};
use ecg_schemas::{Calibration, Chunk, EcgHeader, Signal};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::beats::LeadBeats;
use crate::pipeline::{EcgKey, Failure, Progress};
use crate::state::{EcgState, Position, Ready, StoredLead};

/// Writes to and reads from ecg-stream's tables.
#[derive(Clone)]
pub struct Sink {
    client: Client,
    topic: String,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink").field("topic", &self.topic).finish()
    }
}

impl Sink {
    pub fn new(client: Client, topic: impl Into<String>) -> Self {
        // Deduplication is what makes a retried batch harmless: set it
        // explicitly instead of trusting server defaults. Async inserts are
        // off because the processor batches itself and needs the insert to
        // be durable when it returns.
        let client = client
            .with_setting("async_insert", "0")
            .with_setting("insert_deduplicate", "1");
        Sink {
            client,
            topic: topic.into(),
        }
    }

    /// The states of `keys` as ClickHouse holds them (ECGs without rows get a
    /// fresh state), with the partition each was last read from: the last
    /// placed block of every lead, and the parked chunks.
    pub async fn load_states(
        &self,
        keys: &[EcgKey],
        partition_of: impl Fn(&EcgKey) -> i32,
    ) -> clickhouse::error::Result<Vec<(EcgKey, i32, EcgState)>> {
        let ids: Vec<Uuid> = keys.iter().map(|(_, id)| *id).collect();
        let mut stored: HashMap<EcgKey, Vec<StoredLead>> = HashMap::new();
        // Per ECG, per lead index: (rate, last seq, last beat) of its last block.
        let mut lasts: HashMap<EcgKey, HashMap<u8, (f64, u32, u64)>> = HashMap::new();
        for r in blocks::last_blocks(&self.client, &ids).await? {
            lasts
                .entry((r.tenant.clone(), r.ecg_id))
                .or_default()
                .insert(r.lead_index, (r.sample_rate_hz, r.last_seq, r.last_beat));
            stored
                .entry((r.tenant, r.ecg_id))
                .or_default()
                .push(StoredLead {
                    lead: r.lead,
                    lead_index: r.lead_index,
                    last_seq: r.last_seq,
                    samples_total: r.samples_total,
                    crossings_total: r.crossings_total,
                    last_sign_total: r.last_sign_total,
                    final_seq: r.final_seen.then_some(r.final_seq),
                });
        }
        // Per ECG: its parked chunks (seq, samples, final), and their leads.
        type Parked = (Vec<(u32, u64, bool)>, Vec<String>);
        let mut parked: HashMap<EcgKey, Parked> = HashMap::new();
        for w in blocks::waiting_chunks(&self.client, &ids).await? {
            let entry = parked.entry((w.tenant, w.ecg_id)).or_default();
            entry.0.push((
                w.seq,
                u64::from(w.samples) * w.leads.len() as u64,
                w.is_final,
            ));
            entry.1 = w.leads;
        }
        // The final seqs set by end marks, which no stored chunk carries.
        let mut ended: HashMap<EcgKey, u32> = progress::finals(&self.client, &ids)
            .await?
            .into_iter()
            .filter_map(|f| Some(((f.tenant, f.ecg_id), f.final_seq?)))
            .collect();
        let mut beats = self.load_beats(lasts).await?;
        Ok(keys
            .iter()
            .map(|k| {
                let (chunks, leads) = parked.remove(k).unwrap_or_default();
                let mut state = EcgState::restored(
                    stored.remove(k).unwrap_or_default(),
                    &chunks,
                    (!leads.is_empty()).then_some(leads),
                    ended.remove(k),
                );
                if let Some(b) = beats.remove(k) {
                    state = state.with_beats(b);
                }
                (k.clone(), partition_of(k), state)
            })
            .collect())
    }

    /// Each lead's beat detector as it was after its last placed block
    /// (`lasts`: per ECG and lead index, its rate, last seq and last beat):
    /// restored from the lead's last checkpoint, then the blocks placed
    /// after it replayed (see [`crate::beats`]).
    async fn load_beats(
        &self,
        lasts: HashMap<EcgKey, HashMap<u8, (f64, u32, u64)>>,
    ) -> clickhouse::error::Result<HashMap<EcgKey, Vec<LeadBeats>>> {
        let ids: Vec<Uuid> = lasts.keys().map(|(_, id)| *id).collect();
        // Per (ECG, lead index): the checkpoint's seq and saved states.
        type Saved = (u32, Vec<Vec<u8>>);
        let mut checkpoints: HashMap<(EcgKey, u8), Saved> = HashMap::new();
        if !ids.is_empty() {
            for c in blocks::checkpoints(&self.client, &ids).await? {
                let states = c.states.into_iter().map(|b| b.into_vec()).collect();
                checkpoints.insert(((c.tenant, c.ecg_id), c.lead_index), (c.at_seq, states));
            }
        }
        let mut out = HashMap::new();
        for (key, leads) in lasts {
            let n = leads.keys().max().map_or(0, |&m| usize::from(m) + 1);
            let mut restored = Vec::with_capacity(n);
            // The first block to replay, for the leads with a checkpoint.
            let mut replay_from: Option<u32> = None;
            let mut replay_to = 0;
            for i in 0..n as u8 {
                let Some(&(rate, last_seq, last_beat)) = leads.get(&i) else {
                    // A lead without blocks (cannot happen: a chunk places
                    // every lead): the detectors start afresh.
                    restored.clear();
                    break;
                };
                let checkpoint = checkpoints.get(&(key.clone(), i));
                if let Some((seq, _)) = checkpoint.filter(|(seq, _)| *seq < last_seq) {
                    replay_from = Some(replay_from.map_or(seq + 1, |f: u32| f.min(seq + 1)));
                    replay_to = replay_to.max(last_seq);
                }
                let states = checkpoint.map(|(_, s)| s.as_slice());
                restored.push(LeadBeats::restored(states, last_beat, rate));
            }
            if let Some(from) = replay_from {
                let rows =
                    blocks::read(&self.client, blocks::PLACED, &key.0, key.1, from, replay_to)
                        .await?;
                for seq_rows in rows.chunk_by(|a, b| a.seq == b.seq) {
                    let Some((chunk, _)) = chunk_of(seq_rows) else {
                        continue;
                    };
                    for (i, beats) in restored.iter_mut().enumerate() {
                        let after = checkpoints
                            .get(&(key.clone(), i as u8))
                            .is_some_and(|(seq, _)| chunk.seq > *seq);
                        if after && i < chunk.samples.leads() {
                            beats.replay(&chunk.samples, i);
                        }
                    }
                }
            }
            if restored.len() == n {
                out.insert(key, restored);
            }
        }
        Ok(out)
    }

    /// The owners of `ids` in the ECG registry: for failures that could not
    /// be read as far as their tenant (an undecodable message keyed by an ECG
    /// id), so the owner sees them in the ECG's status.
    pub async fn owners(&self, ids: &[Uuid]) -> clickhouse::error::Result<HashMap<Uuid, String>> {
        ecgs::owners(&self.client, ids).await
    }

    /// The stored fingerprints of chunks, placed or parked.
    pub async fn fingerprints(
        &self,
        chunks: &[(EcgKey, u32)],
    ) -> clickhouse::error::Result<HashMap<(EcgKey, u32), u64>> {
        blocks::fingerprints(&self.client, chunks).await
    }

    /// Writes chunks to `table` (`blocks` for placed ones, `waiting_blocks`
    /// for parked ones) in one insert. Retrying with the same chunks and
    /// `now` sends identical rows, which deduplication drops if they landed.
    pub async fn write_chunks(
        &self,
        table: &str,
        chunks: &[&Ready],
        now: OffsetDateTime,
    ) -> clickhouse::error::Result<()> {
        // Rows in the table's order (tenant, ECG, lead, seq): ClickHouse's
        // sort before writing the part is then nearly free.
        let mut order: Vec<(&Ready, usize)> = chunks
            .iter()
            .flat_map(|r| (0..r.leads.len()).map(move |i| (*r, i)))
            .collect();
        order.sort_by(|(a, i), (b, j)| {
            let (ha, hb) = (&a.chunk.header, &b.chunk.header);
            (&ha.tenant, ha.ecg_id, &ha.leads[*i], a.chunk.seq).cmp(&(
                &hb.tenant,
                hb.ecg_id,
                &hb.leads[*j],
                b.chunk.seq,
            ))
        });
        let rows: Vec<Block<'_>> = order
            .into_iter()
            .map(|(r, i)| block_row(r, i, now))
            .collect();
        blocks::insert(&self.client, table, &rows).await
    }

    /// The parked chunks of one ECG with seqs `from..=to`, in seq order, as
    /// they were sent (every value bit for bit), with where each was read
    /// from. A chunk whose rows cannot be made into one ends the list.
    pub async fn read_parked(
        &self,
        key: &EcgKey,
        from: u32,
        to: u32,
    ) -> clickhouse::error::Result<Vec<(Chunk, Position)>> {
        let rows = blocks::read(&self.client, blocks::WAITING, &key.0, key.1, from, to).await?;
        let mut out = Vec::new();
        for seq_rows in rows.chunk_by(|a, b| a.seq == b.seq) {
            match chunk_of(seq_rows) {
                Some(c) => out.push(c),
                None => break,
            }
        }
        Ok(out)
    }

    /// Deletes one parked chunk that cannot be placed.
    pub async fn delete_parked_seq(&self, key: &EcgKey, seq: u32) -> clickhouse::error::Result<()> {
        blocks::delete_waiting(&self.client, &key.0, key.1, seq..seq.saturating_add(1)).await
    }

    /// Deletes an ECG's parked rows below `placed`: they are in `blocks`.
    pub async fn delete_parked(&self, key: &EcgKey, placed: u32) -> clickhouse::error::Result<()> {
        blocks::delete_waiting(&self.client, &key.0, key.1, 0..placed).await
    }

    /// Records refused messages (and conflicts) in `failed_chunks`.
    pub async fn write_failures(
        &self,
        failures: &[Failure],
        now: OffsetDateTime,
    ) -> clickhouse::error::Result<()> {
        let rows: Vec<Failed<'_>> = failures
            .iter()
            .map(|f| Failed {
                tenant: &f.tenant,
                ecg_id: f.ecg_id,
                seq: f.seq,
                kind: f.kind.as_str(),
                reason: &f.reason,
                kafka_topic: &self.topic,
                kafka_partition: f.pos.partition,
                kafka_offset: f.pos.offset,
                failed_at: now,
                produced_at: produced_at(f.pos.produced_at_ms),
            })
            .collect();
        failed_chunks::insert(&self.client, &rows).await
    }

    /// Records where each ECG stands (rows stamped by the pipeline with the
    /// batch's time). Written after its chunks: a status read never claims
    /// more than is written.
    pub async fn write_progress(&self, rows: &[Progress]) -> clickhouse::error::Result<()> {
        progress::insert(&self.client, rows).await
    }
}

/// ClickHouse's error codes for an insert refused for what it holds, not for
/// the server's state: retrying the same rows fails the same way.
/// (`TOO_MANY_PARTS`, 252, is one only for "too many partitions for single
/// INSERT block"; otherwise it is the server behind on merges: transient.)
const DATA_ERRORS: &[u32] = &[
    6,   // CANNOT_PARSE_TEXT
    38,  // CANNOT_PARSE_DATE
    41,  // CANNOT_PARSE_DATETIME
    69,  // ARGUMENT_OUT_OF_BOUND
    70,  // CANNOT_CONVERT_TYPE
    72,  // CANNOT_PARSE_NUMBER
    117, // INCORRECT_DATA
    128, // TOO_LARGE_ARRAY_SIZE
    131, // TOO_LARGE_STRING_SIZE
    153, // ILLEGAL_DIVISION
    190, // SIZES_OF_ARRAYS_DONT_MATCH
    321, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
    395, // FUNCTION_THROW_IF_VALUE_IS_NON_ZERO
    407, // DECIMAL_OVERFLOW
    469, // VIOLATED_CONSTRAINT
];

/// ClickHouse's message when `error` refuses an insert for the rows it
/// holds (see [`DATA_ERRORS`]); `None` for any other error, which is worth
/// retrying (network, timeouts, memory, a server restarting).
pub fn refusal(error: &clickhouse::error::Error) -> Option<String> {
    let clickhouse::error::Error::BadResponse(message) = error else {
        return None;
    };
    let code: u32 = message
        .split_once("Code: ")?
        .1
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    let refused = DATA_ERRORS.contains(&code)
        || (code == 252 && message.contains("partitions for single INSERT block"));
    refused.then(|| message.trim().to_string())
}

/// A Kafka timestamp as a row's `produced_at`; the epoch when the message had
/// none (or an impossible one), which readers take as unknown.
fn produced_at(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Lead `i` of a chunk as a row of `blocks` (placed: with its position and
/// running totals) or `waiting_blocks` (parked: both 0).
fn block_row(r: &Ready, i: usize, now: OffsetDateTime) -> Block<'_> {
    let h = &r.chunk.header;
    let (own, total) = r.leads[i];
    let placed = r.beats.get(i);
    let extremes = extremes(&r.chunk.samples, i);
    Block {
        tenant: Cow::Borrowed(&h.tenant),
        ecg_id: h.ecg_id,
        lead: Cow::Borrowed(&h.leads[i]),
        seq: r.chunk.seq,
        // Validation caps leads at 32, so this fits.
        lead_index: i as u8,
        device_id: Cow::Borrowed(&h.device_id),
        units: h.units,
        fingerprint: r.fingerprint,
        is_final: r.chunk.is_final,
        sample_rate_hz: h.sample_rate_hz,
        started_at: h.started_at,
        first_sample: r.first_sample,
        samples: 0,
        codec: Codec::Raw,
        ints: Cow::Borrowed(&[]),
        scale: 0,
        adc_gain: 0.0,
        adc_baseline: 0,
        raw: Cow::Borrowed(&[]),
        raw_at: Vec::new(),
        first_sign: own.first.as_i8(),
        last_sign: own.last.as_i8(),
        crossings: u32::try_from(own.crossings).unwrap_or(u32::MAX),
        samples_total: total.samples,
        crossings_total: total.crossings,
        last_sign_total: total.last.as_i8(),
        beats: placed.map(|b| b.beats.clone()).unwrap_or_default(),
        beat_rr: placed.map(|b| b.rr.clone()).unwrap_or_default(),
        last_beat: placed.map_or(0, |b| b.last_beat),
        analytic_states: placed
            .and_then(|b| b.checkpoint.clone())
            .map(|c| vec![blocks::ByteBuf::from(c)])
            .unwrap_or_default(),
        lo: extremes.map(|e| e.0),
        hi: extremes.map(|e| e.1),
        at_extremes: extremes.map(|e| e.2),
        kafka_partition: r.pos.partition,
        kafka_offset: r.pos.offset,
        processed_at: now,
        produced_at: produced_at(r.pos.produced_at_ms),
    }
    .with_form(Form::of(&r.chunk.samples, i))
}

/// Lead `i`'s smallest and largest value (physical, in the ECG's units)
/// and how many samples equal either; `None` for an empty lead.
fn extremes(signal: &Signal, i: usize) -> Option<(f64, f64, u32)> {
    fn of<T: Copy + PartialOrd>(v: &[T]) -> Option<(T, T, u32)> {
        let first = *v.first()?;
        let (lo, hi) = v.iter().fold((first, first), |(lo, hi), &x| {
            (if x < lo { x } else { lo }, if x > hi { x } else { hi })
        });
        let at = v.iter().filter(|&&x| x == lo || x == hi).count();
        Some((lo, hi, u32::try_from(at).unwrap_or(u32::MAX)))
    }
    match signal {
        Signal::Physical(leads) => of(&leads[i]),
        Signal::Digital { adc, calibration } => {
            let c = calibration[i];
            let (lo, hi, at) = of(&adc[i])?;
            // The gain is positive: the order of counts is that of values.
            Some((c.physical(lo), c.physical(hi), at))
        }
    }
}

/// A chunk from its stored rows (one per lead, in lead order): the header,
/// and the samples as they were sent (ADC counts with their calibrations
/// when every lead is `adc`).
fn chunk_of(rows: &[Block<'static>]) -> Option<(Chunk, Position)> {
    let first = rows.first()?;
    if rows
        .iter()
        .enumerate()
        .any(|(i, r)| usize::from(r.lead_index) != i)
    {
        return None;
    }
    let header = EcgHeader {
        ecg_id: first.ecg_id,
        tenant: first.tenant.to_string(),
        device_id: first.device_id.to_string(),
        sample_rate_hz: first.sample_rate_hz,
        units: first.units,
        started_at: first.started_at,
        leads: rows.iter().map(|r| r.lead.to_string()).collect(),
    };
    let samples = if rows.iter().all(|r| r.codec == Codec::Adc) {
        Signal::Digital {
            adc: rows.iter().map(|r| r.ints.to_vec().into()).collect(),
            calibration: rows
                .iter()
                .map(|r| Calibration {
                    gain: r.adc_gain,
                    baseline: r.adc_baseline,
                })
                .collect(),
        }
    } else {
        Signal::Physical(rows.iter().map(|r| r.form().values().into()).collect())
    };
    let pos = Position {
        partition: first.kafka_partition,
        offset: first.kafka_offset,
        produced_at_ms: i64::try_from(first.produced_at.unix_timestamp_nanos() / 1_000_000)
            .unwrap_or(0),
    };
    Some((
        Chunk {
            header,
            seq: first.seq,
            is_final: first.is_final,
            samples,
        },
        pos,
    ))
}
