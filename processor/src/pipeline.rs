//! Turns consumed messages into a [`Batch`] to write, and tracks which
//! offsets are safe to commit once it is written. Pure: the Kafka and
//! ClickHouse adapters around it do the I/O.
//!
//! Every consumed message is written by the batch that consumed it: placed
//! (`blocks`), parked (`waiting_blocks`), recorded as failed, or skipped as a
//! resend. So a partition commits everything it consumed once the batch is
//! written; nothing waits in memory for a gap. A message put back for the
//! next batch ([`Pipeline::rollback`], or a panic) holds the commit back
//! until then.
//!
//! Parked chunks are placed when the gap before them fills: the consumer
//! reads them back ([`Pipeline::placeable`]) and hands them to
//! [`Pipeline::place_parked`], in the same batch.
//!
//! No message stops the pipeline: validating and summarising a chunk, and
//! offering it to its ECG's state, run under `catch_unwind`; a panic refuses
//! that message alone (its reason is the panic's message). If the panic came
//! from the ECG's state, the state is discarded and rebuilt from ClickHouse
//! before the next batch.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};

use ecg_schemas::{Chunk, Limits};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::state::{EcgState, Outcome, Position, Prepared, Ready};

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

impl Original {
    /// The message of a chunk that is no longer held as read (it was put
    /// back for the next batch): the chunk encoded again, keyed by its ECG.
    /// Same samples and header; the original headers are gone.
    pub fn reencoded(chunk: &Chunk) -> Self {
        Original {
            key: Some(chunk.header.ecg_id.to_string().into_bytes()),
            payload: chunk.encode().ok(),
            headers: Vec::new(),
        }
    }
}

/// Why a message is in `failed_chunks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The chunk was not stored.
    Refused,
    /// The chunk's seq was already stored with other samples; the stored
    /// chunk is kept and stays valid.
    Conflict,
    /// The message contradicts what is known but loses nothing (a chunk
    /// after the final one, a wrong end mark): not stored, the ECG is
    /// unchanged and does not turn `failed`.
    Ignored,
}

impl FailureKind {
    /// The value of `failed_chunks.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Refused => "refused",
            FailureKind::Conflict => "conflict",
            FailureKind::Ignored => "ignored",
        }
    }
}

/// A message the processor refuses, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub pos: Position,
    pub tenant: String,
    pub ecg_id: Uuid,
    pub seq: Option<u32>,
    pub kind: FailureKind,
    pub reason: String,
    pub original: Original,
}

/// A chunk whose seq was already written: a harmless duplicate if the
/// stored chunk has the same fingerprint, a conflict otherwise. The consumer
/// checks against ClickHouse once the batch's chunks are written.
#[derive(Debug, Clone, PartialEq)]
pub struct Resent {
    pub key: EcgKey,
    pub seq: u32,
    pub fingerprint: u64,
    pub pos: Position,
    pub original: Original,
}

impl Resent {
    /// The conflict this resend is when the stored chunk's fingerprint is
    /// `stored` (0: unknown, written before fingerprints, taken as equal).
    pub fn conflict(self, stored: u64) -> Option<Failure> {
        if stored == 0 || stored == self.fingerprint {
            return None;
        }
        Some(Failure {
            pos: self.pos,
            tenant: self.key.0,
            ecg_id: self.key.1,
            seq: Some(self.seq),
            kind: FailureKind::Conflict,
            reason: format!(
                "chunk {} was resent with other samples than the stored chunk {} (fingerprint {:016x}, stored {stored:016x}); the stored chunk is kept",
                self.seq, self.seq, self.fingerprint
            ),
            original: self.original,
        })
    }
}

/// Reads a message's payload as a chunk with `decode` (`Chunk::decode`).
/// The decoders read untrusted bytes: a panic in them (fuzzing found some in
/// arrow-ipc) refuses this message, with the panic's message as the reason,
/// never the process.
pub fn read_chunk(
    payload: Option<&[u8]>,
    decode: impl FnOnce(&[u8]) -> Result<Chunk, ecg_schemas::chunk::DecodeError>,
) -> Result<Chunk, String> {
    let bytes = payload.ok_or_else(|| "empty message".to_string())?;
    match catch_unwind(AssertUnwindSafe(|| decode(bytes))) {
        Ok(chunk) => chunk.map_err(|e| format!("undecodable chunk: {e}")),
        Err(panic) => Err(format!(
            "undecodable chunk: panic while decoding: {}",
            panic_message(&*panic)
        )),
    }
}

/// The message of a `catch_unwind` payload: what `panic!` was given.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

/// Where one ECG stands after a batch: a row of `ecg_progress`, stamped
/// with the batch's `processed_at`.
pub use ecg_clickhouse::progress::Progress;

/// What one flush writes: chunks in a deterministic order (so a retried
/// insert is byte-identical and ClickHouse deduplicates it) and failures.
#[derive(Debug, Default)]
pub struct Batch {
    pub ready: Vec<Ready>,
    pub failures: Vec<Failure>,
    /// Chunks that arrived after a gap, for `waiting_blocks`.
    pub parked: Vec<Ready>,
    /// Chunks whose seq was already stored, to check against storage.
    pub resent: Vec<Resent>,
    /// ECGs whose parked chunks were placed: their `waiting_blocks` rows
    /// below the placed prefix are deleted once the batch is written.
    pub unparked: BTreeSet<EcgKey>,
    /// ECGs this batch touched.
    pub touched: BTreeSet<EcgKey>,
    /// Parked chunks refused when read back (they contradict their ECG):
    /// deleted from `waiting_blocks` once the batch is written.
    pub unplaceable: Vec<(EcgKey, u32)>,
    /// The new standing of every ECG this batch touched, ordered by key
    /// (set by [`Pipeline::finish`]).
    pub progress: Vec<Progress>,
    /// Fixed when the batch is built, so retries write identical rows.
    pub processed_at: Option<OffsetDateTime>,
    pub duplicates: usize,
}

impl Batch {
    /// Samples written, all leads together, placed or parked.
    pub fn samples(&self) -> usize {
        self.ready
            .iter()
            .chain(&self.parked)
            .map(|r| r.chunk.len() * r.chunk.header.leads.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.ready.is_empty()
            && self.parked.is_empty()
            && self.failures.is_empty()
            && self.progress.is_empty()
    }
}

#[derive(Debug, Default)]
struct PartitionOffsets {
    /// One past the last consumed offset.
    next: Option<i64>,
    /// Offsets of messages put back for the next batch.
    waiting: BTreeSet<i64>,
}

/// All ECG states and offset bookkeeping of this processor instance.
#[derive(Debug, Default)]
pub struct Pipeline {
    ecgs: HashMap<EcgKey, (i32, EcgState)>,
    partitions: HashMap<i32, PartitionOffsets>,
    limits: Limits,
    /// Messages put back for the next batch, after their ECG's state was
    /// discarded (their offsets count as waiting until then).
    deferred: Vec<Incoming>,
    /// ECGs with parked chunks left to place after a batch's read-back
    /// budget ran out: the next batches go on, messages or not.
    placing: BTreeSet<EcgKey>,
}

impl Pipeline {
    pub fn new(limits: Limits) -> Self {
        Pipeline {
            limits,
            ..Default::default()
        }
    }

    /// Messages put back for the next batch: they go before the newly
    /// consumed ones (offset order does not matter to the states).
    pub fn take_deferred(&mut self) -> Vec<Incoming> {
        std::mem::take(&mut self.deferred)
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
        // Placing that a previous batch left unfinished goes on here.
        let placing = std::mem::take(&mut self.placing);
        batch
            .touched
            .extend(placing.into_iter().filter(|k| self.ecgs.contains_key(k)));
        // ECGs whose state was discarded in this batch: their later
        // messages wait for the next one, when the state is reloaded.
        let mut discarded: HashSet<EcgKey> = HashSet::new();
        for m in incoming {
            let offsets = self.partitions.entry(m.pos.partition).or_default();
            offsets.next = Some(
                offsets
                    .next
                    .map_or(m.pos.offset + 1, |n| n.max(m.pos.offset + 1)),
            );
            // A message put back by an earlier batch waits no more.
            offsets.waiting.remove(&m.pos.offset);
            let chunk = match m.chunk {
                Err(reason) => {
                    batch.failures.push(Failure {
                        pos: m.pos,
                        tenant: String::new(),
                        ecg_id: m.key.unwrap_or_default(),
                        seq: None,
                        kind: FailureKind::Refused,
                        reason,
                        original: m.original,
                    });
                    continue;
                }
                Ok(c) => c,
            };
            let (tenant, ecg_id, seq) =
                (chunk.header.tenant.clone(), chunk.header.ecg_id, chunk.seq);
            let refuse = |reason: String, original: Original| Failure {
                pos: m.pos,
                tenant: tenant.clone(),
                ecg_id,
                seq: Some(seq),
                kind: FailureKind::Refused,
                reason,
                original,
            };
            let limits = &self.limits;
            let prepared = catch_unwind(AssertUnwindSafe(|| {
                limits.check_chunk(&chunk)?;
                Ok(Prepared::of(chunk))
            }));
            let prepared = match prepared {
                Ok(Ok(p)) => p,
                Ok(Err(e)) => {
                    let e: ecg_schemas::Invalid = e;
                    batch
                        .failures
                        .push(refuse(format!("invalid chunk: {e}"), m.original));
                    continue;
                }
                Err(panic) => {
                    let reason =
                        format!("panic while reading the chunk: {}", panic_message(&*panic));
                    batch.failures.push(refuse(reason, m.original));
                    continue;
                }
            };
            let key = (tenant.clone(), ecg_id);
            if discarded.contains(&key) {
                offsets.waiting.insert(m.pos.offset);
                self.deferred.push(Incoming {
                    pos: m.pos,
                    key: m.key,
                    chunk: Ok(prepared.chunk),
                    original: m.original,
                });
                continue;
            }
            batch.touched.insert(key.clone());
            let (_, state) = self
                .ecgs
                .entry(key.clone())
                .or_insert_with(|| (m.pos.partition, EcgState::new()));
            let outcome = catch_unwind(AssertUnwindSafe(|| state.offer(prepared, m.pos)));
            match outcome {
                Ok(Outcome::Placed(ready)) => batch.ready.push(ready),
                Ok(Outcome::Parked(ready)) => batch.parked.push(ready),
                Ok(Outcome::Resent { fingerprint }) => batch.resent.push(Resent {
                    key,
                    seq,
                    fingerprint,
                    pos: m.pos,
                    original: m.original,
                }),
                // The progress row the batch writes records the final seq.
                Ok(Outcome::Ended) => {}
                Ok(Outcome::Rejected(reason)) => batch.failures.push(refuse(reason, m.original)),
                Ok(Outcome::Ignored(reason)) => batch.failures.push(Failure {
                    kind: FailureKind::Ignored,
                    ..refuse(reason, m.original)
                }),
                Err(panic) => {
                    let reason = format!(
                        "panic while applying the chunk to its ECG: {}",
                        panic_message(&*panic)
                    );
                    batch.failures.push(refuse(reason, m.original));
                    // The state may be half-updated: rebuild it from
                    // ClickHouse before the next batch.
                    batch.touched.remove(&key);
                    discarded.insert(key.clone());
                    self.discard(&key, Vec::new());
                }
            }
        }
        batch
    }

    /// The parked chunks that can be placed now, per ECG the batch touched:
    /// seqs `from..=to` to read back from `waiting_blocks`. Chunks parked by
    /// this very batch (not written yet) are placed here first, straight
    /// from the batch: they never reach `waiting_blocks`.
    ///
    /// Each request holds at most `budget` samples (all leads; at least one
    /// chunk): what a read-back holds in memory at once.
    pub fn placeable(&mut self, batch: &mut Batch, budget: u64) -> Vec<(EcgKey, u32, u32)> {
        let mut requests = Vec::new();
        for key in &batch.touched {
            let Some((_, state)) = self.ecgs.get_mut(key) else {
                continue;
            };
            place_from_batch(state, key, &mut batch.parked, &mut batch.ready);
            if let Some((from, to)) = state.placeable_within(budget) {
                requests.push((key.clone(), from, to));
            }
        }
        requests
    }

    /// The next batch goes on placing `key`'s parked chunks (this batch's
    /// read-back budget ran out).
    pub fn continue_placing(&mut self, key: EcgKey) {
        self.placing.insert(key);
    }

    /// True when parked chunks are left to place: a batch is due even
    /// without new messages.
    pub fn is_placing(&self) -> bool {
        !self.placing.is_empty()
    }

    /// Places parked chunks read back from storage, in seq order: they join
    /// the batch's placed chunks. A chunk that cannot be placed (its state
    /// moved on meanwhile) stops the ECG's read-back; it stays parked.
    pub fn place_parked(
        &mut self,
        batch: &mut Batch,
        key: &EcgKey,
        chunks: Vec<(Chunk, Position)>,
    ) {
        let Some((_, state)) = self.ecgs.get_mut(key) else {
            return;
        };
        for (chunk, pos) in chunks {
            // A chunk parked by this batch (not in storage yet) may come
            // first.
            place_from_batch(state, key, &mut batch.parked, &mut batch.ready);
            if chunk.seq < state.next_seq() {
                continue;
            }
            // Kept for a refusal's dead letter, encoded only then: a clone
            // shares the sample buffers (Arrow buffers are reference-counted).
            let (seq, kept) = (chunk.seq, chunk.clone());
            let placed = catch_unwind(AssertUnwindSafe(|| {
                state.place_parked(Prepared::of(chunk), pos)
            }));
            match placed {
                Ok(Ok(ready)) => {
                    batch.ready.push(ready);
                    batch.unparked.insert(key.clone());
                }
                Ok(Err(reason)) => {
                    batch.failures.push(Failure {
                        pos,
                        tenant: key.0.clone(),
                        ecg_id: key.1,
                        seq: Some(seq),
                        kind: FailureKind::Refused,
                        reason,
                        original: Original::reencoded(&kept),
                    });
                    batch.unplaceable.push((key.clone(), seq));
                    break;
                }
                Err(panic) => {
                    tracing::error!(ecg_id = %key.1, panic = %panic_message(&*panic), "placing a parked chunk panicked");
                    break;
                }
            }
        }
    }

    /// Sets the batch's progress rows, the standing of every ECG it touched,
    /// and drops the states of the ECGs it completed.
    pub fn finish(&mut self, batch: &mut Batch) {
        // Set by `process`, which built the batch (a batch built otherwise
        // stamps the epoch: its rows lose to any newer row).
        let now = batch.processed_at.unwrap_or(OffsetDateTime::UNIX_EPOCH);
        batch.progress = batch
            .touched
            .iter()
            .filter_map(|key| {
                let (_, state) = self.ecgs.get(key)?;
                let progress = Progress {
                    next_seq: state.next_seq(),
                    waiting: state.waiting_seqs().collect(),
                    waiting_samples: state.waiting_samples(),
                    final_seq: state.final_seq(),
                    tenant: key.0.clone(),
                    ecg_id: key.1,
                    updated_at: now,
                };
                // A complete ECG's state is dropped: memory stays bounded by
                // the ECGs in flight, not all ECGs ever seen. A late resend
                // reloads it from ClickHouse (after this batch is written, as
                // flushes are sequential) and is checked there.
                if state.is_complete() {
                    self.ecgs.remove(key);
                }
                Some(progress)
            })
            .collect();
    }

    /// Undoes what a batch assumed of one ECG after ClickHouse refused its
    /// chunk `refused` (which becomes a failure): `unwritten` are the batch's
    /// later chunks of that ECG, which were not written. The state is
    /// discarded (rebuilt from ClickHouse before the next batch, which holds
    /// the chunks up to `refused`), and `unwritten` are offered again in the
    /// next batch (parked then: `refused` is missing). Returns the ECG's
    /// standing at `now` to record in place of the batch's.
    pub fn rollback(
        &mut self,
        key: &EcgKey,
        refused: u32,
        unwritten: Vec<Ready>,
        now: OffsetDateTime,
    ) -> Progress {
        let state = self.ecgs.get(key).map(|(_, s)| s);
        let final_seq = state
            .and_then(EcgState::final_seq)
            // A complete ECG's state is already gone: its final chunk is
            // among the unwritten ones then.
            .or_else(|| {
                unwritten
                    .iter()
                    .find(|r| r.chunk.is_final)
                    .map(|r| r.chunk.seq)
            })
            .filter(|&f| f != refused);
        // Parked chunks stay parked (they are stored); the unwritten ones
        // will be parked when offered again.
        let parked: Vec<(u32, u64)> =
            state.map_or_else(Vec::new, |s| s.waiting_seqs().map(|seq| (seq, 0)).collect());
        let mut waiting = self.discard(key, unwritten);
        waiting.extend(parked);
        waiting.sort_unstable();
        waiting.dedup_by_key(|(seq, _)| *seq);
        Progress {
            tenant: key.0.clone(),
            ecg_id: key.1,
            next_seq: refused,
            waiting_samples: waiting.iter().map(|(_, n)| n).sum(),
            waiting: waiting.into_iter().map(|(seq, _)| seq).collect(),
            final_seq,
            updated_at: now,
        }
    }

    /// Forgets that `seq` is parked: ClickHouse refused to store it.
    pub fn unpark(&mut self, key: &EcgKey, seq: u32) {
        if let Some((_, state)) = self.ecgs.get_mut(key) {
            state.forget_parked(seq);
        }
    }

    /// Drops an ECG's state and puts back `unwritten` for the next batch.
    /// Returns their seqs (ascending) and samples.
    fn discard(&mut self, key: &EcgKey, unwritten: Vec<Ready>) -> Vec<(u32, u64)> {
        let mut back: Vec<(Chunk, Position)> =
            unwritten.into_iter().map(|r| (r.chunk, r.pos)).collect();
        self.ecgs.remove(key);
        back.sort_by_key(|(c, _)| c.seq);
        let mut out = Vec::with_capacity(back.len());
        for (chunk, pos) in back {
            out.push((chunk.seq, (chunk.len() * chunk.header.leads.len()) as u64));
            self.partitions
                .entry(pos.partition)
                .or_default()
                .waiting
                .insert(pos.offset);
            self.deferred.push(Incoming {
                pos,
                key: Some(chunk.header.ecg_id),
                original: Original::reencoded(&chunk),
                chunk: Ok(chunk),
            });
        }
        out
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
        self.deferred
            .retain(|m| !partitions.contains(&m.pos.partition));
        let ecgs = &self.ecgs;
        self.placing.retain(|k| ecgs.contains_key(k));
    }

    /// ECG states held in memory.
    pub fn ecg_count(&self) -> usize {
        self.ecgs.len()
    }

    /// Messages put back for the next batch.
    pub fn waiting_count(&self) -> usize {
        self.partitions.values().map(|p| p.waiting.len()).sum()
    }
}

/// Places, straight from the batch, the chunks it parked that are next in
/// line for `key` (they were checked against the ECG when offered).
fn place_from_batch(
    state: &mut EcgState,
    key: &EcgKey,
    parked: &mut Vec<Ready>,
    ready: &mut Vec<Ready>,
) {
    while let Some((from, _)) = state.placeable() {
        let here = parked.iter().position(|r| {
            r.chunk.seq == from && r.chunk.header.ecg_id == key.1 && r.chunk.header.tenant == key.0
        });
        let Some(i) = here else {
            return;
        };
        let r = parked.remove(i);
        let prepared = Prepared {
            summaries: r.leads.iter().map(|(own, _)| *own).collect(),
            fingerprint: r.fingerprint,
            chunk: r.chunk,
        };
        match state.place_parked(prepared, r.pos) {
            Ok(placed) => ready.push(placed),
            Err(reason) => {
                tracing::error!(ecg_id = %key.1, %reason, "parked chunk not placed");
                return;
            }
        }
    }
}
