//! Per-ECG running state: the pure heart of the processor (no I/O, no clock).
//!
//! Chunks of one ECG are written strictly in `seq` order, without gaps, so
//! every written chunk carries exact running totals from sample 0 through its
//! end. A chunk that arrives early waits in `pending` until the gap before it
//! fills; a chunk whose seq was already written (a duplicate or a replay after
//! a crash) is skipped. The state after writing chunks `0..n` is a function of
//! those chunks only, so it can be rebuilt from ClickHouse after a restart
//! ([`EcgState::restored`]) and the result is the same as if the process had
//! never stopped.

use std::collections::BTreeMap;

use ecg_schemas::{Chunk, Signal};
use ecg_signal::{LeadSummary, Sign};

/// Where a message was read from, and when the gateway produced it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    pub partition: i32,
    pub offset: i64,
    /// The message's Kafka timestamp (ms since the epoch), set by the
    /// gateway's producer when it produced the chunk; 0 when absent.
    pub produced_at_ms: i64,
}

/// A chunk ready to be written, with everything its rows need.
#[derive(Debug, Clone, PartialEq)]
pub struct Ready {
    pub chunk: Chunk,
    pub pos: Position,
    /// Index of the chunk's first sample in each lead.
    pub first_sample: u64,
    /// Per lead, in `chunk.header.leads` order: the chunk's own summary and
    /// the running total through the end of the chunk.
    pub leads: Vec<(LeadSummary, LeadSummary)>,
}

/// What became of an offered chunk.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// These chunks (the offered one, then any it unblocked) can be written,
    /// in this order.
    Ready(Vec<Ready>),
    /// The chunk is early: it waits for the seqs before it.
    Buffered,
    /// This seq was already written or is already waiting.
    Duplicate,
    /// The chunk contradicts the ECG (its leads, or the final seq).
    Rejected(String),
}

/// The running state of one ECG in this process.
#[derive(Debug, Clone, PartialEq)]
pub struct EcgState {
    leads: Vec<String>,
    totals: Vec<LeadSummary>,
    next_seq: u32,
    final_seq: Option<u32>,
    pending: BTreeMap<u32, (Chunk, Position)>,
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
            pending: BTreeMap::new(),
        }
    }

    /// The state after the chunks ClickHouse already holds.
    ///
    /// Only `samples`, `crossings` and `last` of a running total matter for
    /// what follows (a running total is always the left side of
    /// [`LeadSummary::then`]); `first` is restored as `last` for that reason.
    pub fn restored(mut stored: Vec<StoredLead>) -> Self {
        if stored.is_empty() {
            return EcgState::new();
        }
        stored.sort_by_key(|s| s.lead_index);
        let last = Sign::from_i8;
        EcgState {
            leads: stored.iter().map(|s| s.lead.clone()).collect(),
            totals: stored
                .iter()
                .map(|s| LeadSummary {
                    samples: s.samples_total,
                    first: last(s.last_sign_total),
                    last: last(s.last_sign_total),
                    crossings: s.crossings_total,
                })
                .collect(),
            next_seq: stored.iter().map(|s| s.last_seq).min().unwrap_or(0) + 1,
            final_seq: stored.iter().find_map(|s| s.final_seq),
            pending: BTreeMap::new(),
        }
    }

    /// The first seq not yet written.
    pub fn next_seq(&self) -> u32 {
        self.next_seq
    }

    /// The seq of the last chunk, once a chunk marked final was seen.
    pub fn final_seq(&self) -> Option<u32> {
        self.final_seq
    }

    /// Every chunk up to the final one is written.
    pub fn is_complete(&self) -> bool {
        self.final_seq.is_some_and(|f| self.next_seq > f)
    }

    /// Seqs of the chunks waiting for a gap to fill, ascending.
    pub fn waiting_seqs(&self) -> impl Iterator<Item = u32> + '_ {
        self.pending.keys().copied()
    }

    /// Samples, all leads together, of the chunks waiting for a gap to fill.
    pub fn waiting_samples(&self) -> u64 {
        self.pending
            .values()
            .map(|(c, _)| (c.samples.len() * c.header.leads.len()) as u64)
            .sum()
    }

    /// Positions of the chunks waiting for a gap to fill.
    pub fn pending_positions(&self) -> impl Iterator<Item = Position> + '_ {
        self.pending.values().map(|(_, pos)| *pos)
    }

    /// Offers a validated chunk of this ECG.
    pub fn offer(&mut self, chunk: Chunk, pos: Position) -> Outcome {
        if !self.leads.is_empty() && self.leads != chunk.header.leads {
            return Outcome::Rejected(format!(
                "chunk {} has leads {:?}, but this ECG's chunks so far have {:?}",
                chunk.seq, chunk.header.leads, self.leads
            ));
        }
        if let Some(f) = self.final_seq {
            if chunk.seq > f {
                return Outcome::Rejected(format!(
                    "chunk {} comes after the final chunk {f}",
                    chunk.seq
                ));
            }
            if chunk.is_final && chunk.seq != f {
                return Outcome::Rejected(format!(
                    "chunk {} is marked final, but chunk {f} already was",
                    chunk.seq
                ));
            }
        }
        if chunk.seq < self.next_seq || self.pending.contains_key(&chunk.seq) {
            return Outcome::Duplicate;
        }
        if chunk.is_final {
            if let Some((&beyond, _)) = self.pending.range(chunk.seq + 1..).next() {
                return Outcome::Rejected(format!(
                    "chunk {} is marked final, but chunk {beyond} already arrived",
                    chunk.seq
                ));
            }
            self.final_seq = Some(chunk.seq);
        }
        if chunk.seq > self.next_seq {
            self.pending.insert(chunk.seq, (chunk, pos));
            return Outcome::Buffered;
        }
        let mut ready = vec![self.advance(chunk, pos)];
        while let Some((chunk, pos)) = self.pending.remove(&self.next_seq) {
            ready.push(self.advance(chunk, pos));
        }
        Outcome::Ready(ready)
    }

    /// Applies the chunk with seq `next_seq`.
    fn advance(&mut self, chunk: Chunk, pos: Position) -> Ready {
        if self.leads.is_empty() {
            self.leads = chunk.header.leads.clone();
            self.totals = vec![LeadSummary::EMPTY; self.leads.len()];
        }
        let first_sample = self.totals.first().map_or(0, |t| t.samples);
        let leads = self
            .totals
            .iter_mut()
            .enumerate()
            .map(|(i, total)| {
                let own = summarise(&chunk.samples, i);
                *total = total.then(own);
                (own, *total)
            })
            .collect();
        self.next_seq += 1;
        Ready {
            chunk,
            pos,
            first_sample,
            leads,
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
