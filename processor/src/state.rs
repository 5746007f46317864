//! Per-ECG running state: the pure heart of the processor (no I/O, no clock).
//!
//! A chunk is stored when it arrives, whatever its seq; nothing waits in
//! memory. Chunks `0..next_seq` are *placed* (table `blocks`): written in
//! seq order without a gap, each with its first sample's index and exact
//! running totals from sample 0 through its end. A chunk that arrives after
//! a gap is *parked* (table `waiting_blocks`): stored, its samples queryable,
//! but its position unknown until the gap fills. Then the parked chunks are
//! read back in seq order and placed ([`EcgState::place_parked`]). A chunk
//! whose seq is placed or parked already is a resend (a duplicate, or a
//! conflict if its samples differ). The state holds per lead the running
//! total and per parked chunk its size: memory is bounded by the ECGs in
//! flight, never by a gap. It is a function of what is stored, so it is
//! rebuilt from ClickHouse after a restart ([`EcgState::restored`]).
//!
//! No arithmetic here can overflow: validation caps every seq at
//! `u32::MAX - 1` (`Limits::seq_limit`), and every other sum is checked or
//! saturating, so no message, however formed, makes [`EcgState::offer`]
//! panic (property-tested in `tests/poison.rs`).

use std::collections::BTreeMap;
use std::ops::Bound;

use ecg_schemas::{Chunk, Signal};
use ecg_signal::{LeadSummary, Sign};

use crate::beats::{LeadBeats, PlacedBeats};

/// Where a message was read from, and when the gateway produced it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    pub partition: i32,
    pub offset: i64,
    /// The message's Kafka timestamp (ms since the epoch), set by the
    /// gateway's producer when it produced the chunk; 0 when absent.
    pub produced_at_ms: i64,
}

/// A validated chunk with what the state needs of it, computed once when it
/// is consumed (see [`Prepared::of`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    pub chunk: Chunk,
    /// Per lead, in `chunk.header.leads` order: the chunk's own summary.
    pub summaries: Vec<LeadSummary>,
    /// The chunk's content fingerprint (see [`fingerprint`]).
    pub fingerprint: u64,
}

impl Prepared {
    /// Summarises every lead and fingerprints the samples.
    pub fn of(chunk: Chunk) -> Self {
        let summaries = (0..chunk.samples.leads())
            .map(|i| summarise(&chunk.samples, i))
            .collect();
        let fingerprint = fingerprint(&chunk.samples);
        Prepared {
            chunk,
            summaries,
            fingerprint,
        }
    }
}

/// A fingerprint of a chunk's samples (not of its `final` flag): the
/// 64-bit XXH3 of each lead's length and values (`f64` bits, or ADC counts
/// with the calibration), little-endian. Stored with every chunk, so a
/// resent seq can be told apart from a harmless duplicate. Never 0, which
/// stored rows from before fingerprints read as "unknown".
pub fn fingerprint(signal: &Signal) -> u64 {
    use xxhash_rust::xxh3::Xxh3;
    let mut h = Xxh3::new();
    match signal {
        Signal::Physical(leads) => {
            h.update(b"f64");
            for lead in leads {
                h.update(&(lead.len() as u64).to_le_bytes());
                update_le(&mut h, lead, |v| v.to_bits().to_le_bytes());
            }
        }
        Signal::Digital { adc, calibration } => {
            h.update(b"adc");
            for (lead, c) in adc.iter().zip(calibration) {
                h.update(&(lead.len() as u64).to_le_bytes());
                h.update(&c.gain.to_bits().to_le_bytes());
                h.update(&c.baseline.to_le_bytes());
                update_le(&mut h, lead, |v| v.to_le_bytes());
            }
        }
    }
    h.digest().max(1)
}

/// Hashes `values` as little-endian bytes: the buffer as it is on
/// little-endian machines (every supported target), value by value elsewhere.
fn update_le<T, const N: usize>(
    h: &mut xxhash_rust::xxh3::Xxh3,
    values: &arrow_buffer::ScalarBuffer<T>,
    le: impl Fn(T) -> [u8; N],
) where
    T: arrow_buffer::ArrowNativeType,
{
    if cfg!(target_endian = "little") {
        h.update(values.inner().as_slice());
    } else {
        for &v in values.iter() {
            h.update(&le(v));
        }
    }
}

/// A chunk ready to be written, with everything its rows need.
#[derive(Debug, Clone, PartialEq)]
pub struct Ready {
    pub chunk: Chunk,
    pub pos: Position,
    /// The chunk's content fingerprint, stored with it.
    pub fingerprint: u64,
    /// Index of the chunk's first sample in each lead.
    pub first_sample: u64,
    /// Per lead, in `chunk.header.leads` order: the chunk's own summary and
    /// the running total through the end of the chunk.
    pub leads: Vec<(LeadSummary, LeadSummary)>,
    /// Per lead, for a placed chunk: the beats its placing decided (empty
    /// for a parked chunk: beats are found in seq order).
    pub beats: Vec<PlacedBeats>,
}

/// What became of an offered chunk.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// The chunk is the next one: it is placed (written to `blocks`).
    Placed(Ready),
    /// The chunk is early: it is parked (written to `waiting_blocks`, with
    /// `first_sample` 0 and empty totals) until the seqs before it arrive.
    Parked(Ready),
    /// This seq was already stored (placed or parked): a harmless duplicate
    /// if the stored chunk has this fingerprint, a conflict otherwise (the
    /// caller checks against storage).
    Resent { fingerprint: u64 },
    /// An end mark (an empty chunk marked final, see
    /// [`Chunk::is_end_mark`]) set the final seq, or said it again.
    Ended,
    /// The chunk contradicts the ECG and is not stored, so its seq is
    /// missing (its leads, or a final mark the ECG cannot have).
    Rejected(String),
    /// The message contradicts what is known but nothing is lost by
    /// dropping it: a chunk after the final one, a final mark on a chunk
    /// already stored, an end mark other than the known final seq or below a
    /// seq that arrived. Not stored; the ECG is unchanged.
    Ignored(String),
}

/// The running state of one ECG in this process.
#[derive(Debug, Clone, PartialEq)]
pub struct EcgState {
    leads: Vec<String>,
    totals: Vec<LeadSummary>,
    next_seq: u32,
    final_seq: Option<u32>,
    /// Parked seqs, with their samples (all leads together).
    parked: BTreeMap<u32, u64>,
    /// Per lead: the beat detector, fed as chunks are placed.
    beats: Vec<LeadBeats>,
}

/// What ClickHouse knows of one lead of an ECG (see `sink::load_states`).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredLead {
    pub lead: String,
    pub lead_index: u8,
    pub last_seq: u32,
    pub samples_total: u64,
    pub crossings_total: u64,
    pub last_sign_total: i8,
    pub final_seq: Option<u32>,
}

impl EcgState {
    /// An ECG seen for the first time: nothing written yet.
    pub fn new() -> Self {
        EcgState {
            leads: Vec::new(),
            totals: Vec::new(),
            next_seq: 0,
            final_seq: None,
            parked: BTreeMap::new(),
            beats: Vec::new(),
        }
    }

    /// The state after the chunks ClickHouse already holds: the last placed
    /// block of every lead, and the parked chunks (seq, samples of all
    /// leads, final or not), and the final seq an end mark set (`ended`,
    /// from the processor's progress). Parked seqs below the placed prefix
    /// (placed, their delete not run yet) are ignored.
    ///
    /// Only `samples`, `crossings` and `last` of a running total matter for
    /// what follows (a running total is always the left side of
    /// [`LeadSummary::then`]); `first` is restored as `last` for that reason.
    pub fn restored(
        mut stored: Vec<StoredLead>,
        parked: &[(u32, u64, bool)],
        parked_leads: Option<Vec<String>>,
        ended: Option<u32>,
    ) -> Self {
        stored.sort_by_key(|s| s.lead_index);
        let last = Sign::from_i8;
        let next_seq = stored
            .iter()
            .map(|s| s.last_seq)
            .min()
            .map_or(0, |s| s.saturating_add(1));
        let parked_final = parked
            .iter()
            .find(|(seq, _, is_final)| *is_final && *seq >= next_seq)
            .map(|(seq, _, _)| *seq);
        let leads: Vec<String> = stored.iter().map(|s| s.lead.clone()).collect();
        EcgState {
            // Parked chunks were checked against the ECG's leads when they
            // came: with nothing placed yet, they say what the leads are.
            leads: if leads.is_empty() {
                parked_leads.unwrap_or_default()
            } else {
                leads
            },
            totals: stored
                .iter()
                .map(|s| LeadSummary {
                    samples: s.samples_total,
                    first: last(s.last_sign_total),
                    last: last(s.last_sign_total),
                    crossings: s.crossings_total,
                })
                .collect(),
            next_seq,
            final_seq: stored
                .iter()
                .find_map(|s| s.final_seq)
                .or(parked_final)
                .or(ended),
            parked: parked
                .iter()
                .filter(|(seq, _, _)| *seq >= next_seq)
                .map(|&(seq, samples, _)| (seq, samples))
                .collect(),
            beats: Vec::new(),
        }
    }

    /// The state with each lead's beat detector as restored from storage
    /// (`sink::load_states`), in lead order. Without it, the detectors
    /// start afresh at the next placed chunk.
    pub fn with_beats(mut self, beats: Vec<LeadBeats>) -> Self {
        self.beats = beats;
        self
    }

    /// The first seq not yet placed.
    pub fn next_seq(&self) -> u32 {
        self.next_seq
    }

    /// The seq of the last chunk, once a chunk marked final was seen.
    pub fn final_seq(&self) -> Option<u32> {
        self.final_seq
    }

    /// Every chunk up to the final one is placed.
    pub fn is_complete(&self) -> bool {
        self.final_seq.is_some_and(|f| self.next_seq > f)
    }

    /// Parked seqs, ascending.
    pub fn waiting_seqs(&self) -> impl Iterator<Item = u32> + '_ {
        self.parked.keys().copied()
    }

    /// Samples, all leads together, of the parked chunks.
    pub fn waiting_samples(&self) -> u64 {
        self.parked.values().sum()
    }

    /// The parked seqs that can be placed now, `next_seq..=last` (a
    /// contiguous run), to read back from storage; `None` when the next seq
    /// is not parked.
    pub fn placeable(&self) -> Option<(u32, u32)> {
        self.placeable_within(u64::MAX)
    }

    /// [`EcgState::placeable`], cut where the run's samples (all leads)
    /// would pass `budget`; at least one chunk.
    pub fn placeable_within(&self, budget: u64) -> Option<(u32, u32)> {
        let mut last = None;
        let mut want = self.next_seq;
        let mut taken = 0u64;
        for (&seq, &samples) in self.parked.range(self.next_seq..) {
            taken = taken.saturating_add(samples);
            if seq != want || (last.is_some() && taken > budget) {
                break;
            }
            last = Some(seq);
            match want.checked_add(1) {
                Some(w) => want = w,
                None => break,
            }
        }
        last.map(|l| (self.next_seq, l))
    }

    /// Forgets a parked seq whose chunk could not be stored: it is missing
    /// again. If it was the final chunk, the final seq is unknown again.
    pub fn forget_parked(&mut self, seq: u32) {
        self.parked.remove(&seq);
        if self.final_seq == Some(seq) {
            self.final_seq = None;
        }
    }

    /// Places a parked chunk read back from storage: it must be the next
    /// seq, and parked.
    pub fn place_parked(&mut self, prepared: Prepared, pos: Position) -> Result<Ready, String> {
        let seq = prepared.chunk.seq;
        if seq != self.next_seq || !self.parked.contains_key(&seq) {
            return Err(format!(
                "parked chunk {seq} read back, but the next seq is {} and parked are {:?}",
                self.next_seq,
                self.parked.keys().take(8).collect::<Vec<_>>()
            ));
        }
        self.parked.remove(&seq);
        if !self.leads.is_empty() && self.leads != prepared.chunk.header.leads {
            // Not placeable ever: the caller refuses it, and it is missing.
            self.forget_parked(seq);
            return Err(format!(
                "parked chunk {seq} has leads {:?}, but this ECG's chunks have {:?}",
                prepared.chunk.header.leads, self.leads
            ));
        }
        Ok(self.advance(prepared, pos))
    }

    /// Offers a validated, prepared chunk of this ECG.
    pub fn offer(&mut self, prepared: Prepared, pos: Position) -> Outcome {
        let chunk = &prepared.chunk;
        if chunk.is_end_mark() {
            return self.end(chunk.seq);
        }
        if !self.leads.is_empty() && self.leads != chunk.header.leads {
            return Outcome::Rejected(format!(
                "chunk {} has leads {:?}, but this ECG's chunks so far have {:?}",
                chunk.seq, chunk.header.leads, self.leads
            ));
        }
        if prepared.summaries.len() != chunk.header.leads.len() {
            return Outcome::Rejected(format!(
                "chunk {} has {} lead summaries for {} leads",
                chunk.seq,
                prepared.summaries.len(),
                chunk.header.leads.len()
            ));
        }
        let stored = chunk.seq < self.next_seq || self.parked.contains_key(&chunk.seq);
        if let Some(f) = self.final_seq {
            if chunk.seq > f {
                return Outcome::Ignored(format!(
                    "chunk {} comes after the final chunk {f}; it is not stored and the ECG is unchanged",
                    chunk.seq
                ));
            }
            if chunk.is_final && chunk.seq != f {
                let reason = format!(
                    "chunk {} is marked final, but chunk {f} already was",
                    chunk.seq
                );
                return if stored {
                    Outcome::Ignored(format!("{reason}; the stored chunk {} is kept", chunk.seq))
                } else {
                    Outcome::Rejected(reason)
                };
            }
        }
        if stored {
            // A stored chunk sent again marked final ends the stream there,
            // as an end mark would.
            if chunk.is_final && self.final_seq.is_none() {
                if let Outcome::Ignored(reason) = self.end(chunk.seq) {
                    return Outcome::Ignored(reason);
                }
            }
            return Outcome::Resent {
                fingerprint: prepared.fingerprint,
            };
        }
        if chunk.is_final {
            if let Some(beyond) = self.arrived_beyond(chunk.seq) {
                return Outcome::Rejected(format!(
                    "chunk {} is marked final, but chunk {beyond} already arrived",
                    chunk.seq
                ));
            }
            self.final_seq = Some(chunk.seq);
        }
        if chunk.seq > self.next_seq {
            if self.leads.is_empty() {
                self.leads = chunk.header.leads.clone();
            }
            let samples = (chunk.samples.len() * chunk.header.leads.len()) as u64;
            self.parked.insert(chunk.seq, samples);
            let Prepared {
                chunk,
                summaries,
                fingerprint,
            } = prepared;
            return Outcome::Parked(Ready {
                chunk,
                pos,
                fingerprint,
                first_sample: 0,
                leads: summaries
                    .into_iter()
                    .map(|own| (own, LeadSummary::EMPTY))
                    .collect(),
                beats: Vec::new(),
            });
        }
        Outcome::Placed(self.advance(prepared, pos))
    }

    /// An end mark: chunk `seq` is the last one. Sets the final seq once;
    /// the same mark again is harmless, any other is ignored.
    fn end(&mut self, seq: u32) -> Outcome {
        match self.final_seq {
            Some(f) if f == seq => Outcome::Ended,
            Some(f) => Outcome::Ignored(format!(
                "the stream was ended at chunk {seq}, but chunk {f} is already the final one; the ECG is unchanged"
            )),
            None => match self.arrived_beyond(seq) {
                Some(beyond) => Outcome::Ignored(format!(
                    "the stream was ended at chunk {seq}, but chunk {beyond} already arrived; the ECG is unchanged"
                )),
                None => {
                    self.final_seq = Some(seq);
                    Outcome::Ended
                }
            },
        }
    }

    /// The highest seq above `seq` that is placed or parked, if any.
    fn arrived_beyond(&self, seq: u32) -> Option<u32> {
        let parked = self
            .parked
            .range((Bound::Excluded(seq), Bound::Unbounded))
            .next_back()
            .map(|(&s, _)| s);
        let placed = self.next_seq.checked_sub(1).filter(|&last| last > seq);
        parked.max(placed)
    }

    /// Applies the chunk with seq `next_seq`. `next_seq` is at most
    /// `u32::MAX - 1` here (validation caps every seq below it), so it
    /// cannot overflow; saturating keeps that true whatever a caller did.
    fn advance(&mut self, prepared: Prepared, pos: Position) -> Ready {
        let Prepared {
            chunk,
            summaries,
            fingerprint,
        } = prepared;
        if self.leads.is_empty() {
            self.leads = chunk.header.leads.clone();
        }
        if self.totals.is_empty() {
            self.totals = vec![LeadSummary::EMPTY; self.leads.len()];
        }
        let first_sample = self.totals.first().map_or(0, |t| t.samples);
        let leads = self
            .totals
            .iter_mut()
            .zip(summaries)
            .map(|(total, own)| {
                *total = total.then(own);
                (own, *total)
            })
            .collect();
        if self.beats.len() != self.leads.len() {
            let rate = chunk.header.sample_rate_hz;
            self.beats = vec![LeadBeats::new(rate); self.leads.len()];
        }
        let last = self.final_seq == Some(chunk.seq);
        let beats = self
            .beats
            .iter_mut()
            .enumerate()
            .map(|(i, b)| b.place(&chunk.samples, i, first_sample, last))
            .collect();
        self.next_seq = self.next_seq.saturating_add(1);
        Ready {
            chunk,
            pos,
            fingerprint,
            first_sample,
            leads,
            beats,
        }
    }
}

/// One lead's summary. Digital leads are counted on the exact integer
/// `adc - baseline`, never on a rounded physical value.
fn summarise(signal: &Signal, lead: usize) -> LeadSummary {
    match signal {
        Signal::Physical(v) => LeadSummary::of(&v[lead]),
        Signal::Digital { adc, calibration } => {
            LeadSummary::of_digital_i32(&adc[lead], i64::from(calibration[lead].baseline))
        }
    }
}

impl Default for EcgState {
    fn default() -> Self {
        EcgState::new()
    }
}
