//! Turns consumed messages into a [`Batch`] to write, and tracks which
//! offsets are safe to commit once it is written. Pure: the Kafka and
//! ClickHouse adapters around it do the I/O.
//!
//! The commit rule: a partition's committed offset never passes a message
//! whose effect is not in ClickHouse. Messages are consumed in offset order;
//! after a batch is written every consumed message is either in it, skipped
//! as a duplicate, recorded as failed, or waiting for an earlier seq. So the
//! partition may commit up to its oldest waiting message, or everything
//! consumed if none waits.

use std::collections::{BTreeSet, HashMap};

use ecg_schemas::{Chunk, Limits};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::state::{EcgState, Outcome, Position, Ready};

/// An ECG as the processor keys it: the tenant is part of the key, so a chunk
/// claiming another tenant's ECG id can never touch that ECG's state.
pub type EcgKey = (String, Uuid);

/// One consumed message, decoded or not.
#[derive(Debug)]
pub struct Incoming {
    pub pos: Position,
    /// The message key, read as an ECG id when it is one.
    pub key: Option<Uuid>,
    pub chunk: Result<Chunk, String>,
    /// The message as it was read, kept until the message is processed so a
    /// refused one can be dead-lettered unchanged.
    pub original: Original,
}

/// A Kafka message's bytes: key, payload and headers, unchanged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Original {
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// A message the processor refuses, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub pos: Position,
    pub tenant: String,
    pub ecg_id: Uuid,
    pub seq: Option<u32>,
    pub reason: String,
    pub original: Original,
}

/// Where one ECG stands after a batch: what the `ecg_progress` table holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub tenant: String,
    pub ecg_id: Uuid,
    /// Chunks `0..next_seq` are written.
    pub next_seq: u32,
    /// Seqs received but waiting for an earlier one, ascending.
    pub waiting: Vec<u32>,
    /// Samples, all leads together, of the waiting chunks.
    pub waiting_samples: u64,
    pub final_seq: Option<u32>,
}

/// What one flush writes: chunks in a deterministic order (so a retried
/// insert is byte-identical and ClickHouse deduplicates it) and failures.
#[derive(Debug, Default)]
pub struct Batch {
    pub ready: Vec<Ready>,
    pub failures: Vec<Failure>,
    /// The new standing of every ECG this batch touched, ordered by key.
    pub progress: Vec<Progress>,
    /// Fixed when the batch is built, so retries write identical rows.
    pub processed_at: Option<OffsetDateTime>,
    pub duplicates: usize,
    pub buffered: usize,
}

impl Batch {
    pub fn samples(&self) -> usize {
        self.ready
            .iter()
            .map(|r| r.chunk.len() * r.chunk.header.leads.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.ready.is_empty() && self.failures.is_empty() && self.progress.is_empty()
    }
}

#[derive(Debug, Default)]
struct PartitionOffsets {
    /// One past the last consumed offset.
    next: Option<i64>,
    /// Offsets of chunks waiting in some ECG's `pending`.
    waiting: BTreeSet<i64>,
}

/// All ECG states and offset bookkeeping of this processor instance.
#[derive(Debug, Default)]
pub struct Pipeline {
    ecgs: HashMap<EcgKey, (i32, EcgState)>,
    partitions: HashMap<i32, PartitionOffsets>,
    limits: Limits,
}

impl Pipeline {
    pub fn new(limits: Limits) -> Self {
        Pipeline {
            limits,
            ..Default::default()
        }
    }

    /// Keys among `incoming` whose state this instance does not hold: they
    /// must be loaded from ClickHouse before [`Pipeline::process`].
    pub fn unknown_keys(&self, incoming: &[Incoming]) -> Vec<EcgKey> {
        let mut keys: Vec<EcgKey> = incoming
            .iter()
            .filter_map(|m| m.chunk.as_ref().ok())
            .map(|c| (c.header.tenant.clone(), c.header.ecg_id))
            .filter(|k| !self.ecgs.contains_key(k))
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// Installs states loaded from ClickHouse.
    pub fn restore(&mut self, states: impl IntoIterator<Item = (EcgKey, i32, EcgState)>) {
        for (key, partition, state) in states {
            self.ecgs.entry(key).or_insert((partition, state));
        }
    }

    /// Applies consumed messages, in offset order, and returns what to write.
    pub fn process(&mut self, incoming: Vec<Incoming>, now: OffsetDateTime) -> Batch {
        let mut batch = Batch {
            processed_at: Some(now),
            ..Default::default()
        };
        let mut touched: BTreeSet<EcgKey> = BTreeSet::new();
        for m in incoming {
            let offsets = self.partitions.entry(m.pos.partition).or_default();
            offsets.next = Some(
                offsets
                    .next
                    .map_or(m.pos.offset + 1, |n| n.max(m.pos.offset + 1)),
            );
            let chunk = match m.chunk {
                Err(reason) => {
                    batch.failures.push(Failure {
                        pos: m.pos,
                        tenant: String::new(),
                        ecg_id: m.key.unwrap_or_default(),
                        seq: None,
                        reason,
                        original: m.original,
                    });
                    continue;
                }
                Ok(c) => match self.limits.check_chunk(&c) {
                    Ok(()) => c,
                    Err(e) => {
                        batch.failures.push(Failure {
                            pos: m.pos,
                            tenant: c.header.tenant.clone(),
                            ecg_id: c.header.ecg_id,
                            seq: Some(c.seq),
                            reason: format!("invalid chunk: {e}"),
                            original: m.original,
                        });
                        continue;
                    }
                },
            };
            let key = (chunk.header.tenant.clone(), chunk.header.ecg_id);
            let (seq, tenant, ecg_id) = (chunk.seq, key.0.clone(), key.1);
            touched.insert(key.clone());
            let (_, state) = self
                .ecgs
                .entry(key)
                .or_insert_with(|| (m.pos.partition, EcgState::new()));
            match state.offer(chunk, m.pos) {
                Outcome::Ready(ready) => {
                    for r in &ready {
                        offsets.waiting.remove(&r.pos.offset);
                    }
                    batch.ready.extend(ready);
                }
                Outcome::Buffered => {
                    offsets.waiting.insert(m.pos.offset);
                    batch.buffered += 1;
                }
                Outcome::Duplicate => batch.duplicates += 1,
                Outcome::Rejected(reason) => batch.failures.push(Failure {
                    pos: m.pos,
                    tenant,
                    ecg_id,
                    seq: Some(seq),
                    reason,
                    original: m.original,
                }),
            }
        }
        batch.progress = touched
            .into_iter()
            .filter_map(|key| {
                let (_, state) = self.ecgs.get(&key)?;
                let progress = Progress {
                    next_seq: state.next_seq(),
                    waiting: state.waiting_seqs().collect(),
                    waiting_samples: state.waiting_samples(),
                    final_seq: state.final_seq(),
                    tenant: key.0.clone(),
                    ecg_id: key.1,
                };
                // A complete ECG's state is dropped: memory stays bounded by
                // the ECGs in flight, not all ECGs ever seen. A late duplicate
                // reloads it from ClickHouse (after this batch is written, as
                // flushes are sequential) and is skipped there.
                if state.is_complete() {
                    self.ecgs.remove(&key);
                }
                Some(progress)
            })
            .collect();
        batch
    }

    /// Offsets (next to consume) each partition may commit once the batches
    /// built so far are written.
    pub fn committable(&self) -> Vec<(i32, i64)> {
        let mut out: Vec<(i32, i64)> = self
            .partitions
            .iter()
            .filter_map(|(&p, o)| {
                let next = o.next?;
                Some((p, o.waiting.first().copied().unwrap_or(next).min(next)))
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// Forgets everything about partitions this instance no longer owns: the
    /// new owner starts from the committed offset and rebuilds the states
    /// from ClickHouse.
    pub fn revoke(&mut self, partitions: &[i32]) {
        self.ecgs.retain(|_, (p, _)| !partitions.contains(p));
        self.partitions.retain(|p, _| !partitions.contains(p));
    }

    /// ECG states held in memory.
    pub fn ecg_count(&self) -> usize {
        self.ecgs.len()
    }

    /// Chunks held in memory until an earlier seq arrives.
    pub fn waiting_count(&self) -> usize {
        self.partitions.values().map(|p| p.waiting.len()).sum()
    }
}
