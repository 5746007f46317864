//! The processor's exactness argument, tested without I/O: chunks arrive in
//! any order, duplicated, and the process "crashes" at random points and
//! restarts from its committed offsets with state rebuilt from what was
//! written. Early chunks are parked in the (fake) store and read back when
//! the gap fills, as the consumer does. Every lead's running total must
//! equal one pass over the signal, and every chunk must be placed exactly
//! once.

use std::collections::BTreeMap;

use ecg_processor::pipeline::{Batch, Incoming, Original, Pipeline};
use ecg_processor::state::{EcgState, Position, Ready, StoredLead};
use ecg_schemas::{Chunk, EcgHeader, Limits, Signal, Units};
use ecg_signal::LeadSummary;
use proptest::prelude::*;
use time::OffsetDateTime;
use uuid::Uuid;

const LEADS: [&str; 2] = ["I", "V1"];

fn header() -> EcgHeader {
    EcgHeader {
        ecg_id: Uuid::from_u128(42),
        tenant: "demo".into(),
        device_id: "dev".into(),
        sample_rate_hz: 500.0,
        units: Units::Millivolts,
        started_at: OffsetDateTime::UNIX_EPOCH,
        leads: LEADS.iter().map(|s| s.to_string()).collect(),
    }
}

/// A signal per lead, rich in zeros and -0.0, cut at `cuts`; the last chunk
/// is marked final.
fn chunks(signal: &[Vec<f64>], cuts: &[usize]) -> Vec<Chunk> {
    let len = signal[0].len();
    let mut bounds: Vec<usize> = cuts.iter().copied().filter(|&c| c > 0 && c < len).collect();
    bounds.sort_unstable();
    bounds.dedup();
    bounds.insert(0, 0);
    bounds.push(len);
    let n = bounds.len() - 1;
    (0..n)
        .map(|i| Chunk {
            header: header(),
            seq: i as u32,
            is_final: i == n - 1,
            samples: Signal::from_vecs(
                signal
                    .iter()
                    .map(|l| l[bounds[i]..bounds[i + 1]].to_vec())
                    .collect(),
            ),
        })
        .collect()
}

/// What ClickHouse would hold: every placed chunk, in write order, and the
/// parked ones.
#[derive(Default)]
struct FakeStore {
    written: Vec<Ready>,
    parked: BTreeMap<u32, Ready>,
    /// The final seq of the newest progress row (what an end mark leaves).
    ended: Option<u32>,
}

impl FakeStore {
    /// What `sink::load_states` would read back for our one ECG.
    fn state(&self) -> EcgState {
        let parked: Vec<(u32, u64, bool)> = self
            .parked
            .values()
            .map(|r| (r.chunk.seq, (r.chunk.len() * 2) as u64, r.chunk.is_final))
            .collect();
        let Some(last) = self.written.iter().max_by_key(|r| r.chunk.seq) else {
            return EcgState::restored(
                Vec::new(),
                &parked,
                Some(LEADS.iter().map(|l| l.to_string()).collect()),
                self.ended,
            );
        };
        let final_seq = self
            .written
            .iter()
            .find(|r| r.chunk.is_final)
            .map(|r| r.chunk.seq);
        let stored = LEADS
            .iter()
            .enumerate()
            .map(|(i, lead)| StoredLead {
                lead: lead.to_string(),
                lead_index: i as u8,
                last_seq: last.chunk.seq,
                samples_total: last.leads[i].1.samples,
                crossings_total: last.leads[i].1.crossings,
                last_sign_total: last.leads[i].1.last.as_i8(),
                final_seq,
            })
            .collect();
        EcgState::restored(
            stored,
            &parked,
            Some(LEADS.iter().map(|l| l.to_string()).collect()),
            self.ended,
        )
    }

    /// One batch as the consumer runs it: process, read back and place the
    /// parked chunks a gap fill made placeable, then write.
    fn run(&mut self, pipeline: &mut Pipeline, incoming: Vec<Incoming>) -> Batch {
        let mut batch = pipeline.process(incoming, OffsetDateTime::UNIX_EPOCH);
        loop {
            let requests = pipeline.placeable(&mut batch, u64::MAX);
            if requests.is_empty() {
                break;
            }
            let before = batch.ready.len();
            for (key, from, to) in requests {
                let chunks = self
                    .parked
                    .range(from..=to)
                    .map(|(_, r)| (r.chunk.clone(), r.pos))
                    .collect();
                pipeline.place_parked(&mut batch, &key, chunks);
            }
            assert!(batch.ready.len() > before, "a read-back placed nothing");
        }
        pipeline.finish(&mut batch);
        for r in &batch.parked {
            assert!(
                self.parked.insert(r.chunk.seq, r.clone()).is_none(),
                "chunk {} parked twice",
                r.chunk.seq
            );
        }
        self.written.extend(batch.ready.iter().cloned());
        if let Some(p) = batch.progress.first() {
            self.ended = p.final_seq;
            let next = p.next_seq;
            self.parked.retain(|&seq, _| seq >= next);
        }
        batch
    }
}

fn sample() -> impl Strategy<Value = f64> {
    prop_oneof![3 => Just(0.0), 2 => Just(-0.0), 4 => -2.0f64..2.0]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn totals_are_exact_through_reordering_duplicates_and_crashes(
        signal in prop::collection::vec(prop::collection::vec(sample(), 300), 2),
        cuts in prop::collection::vec(1usize..300, 0..25),
        swaps in prop::collection::vec((0usize..30, 0usize..30), 0..15),
        dups in prop::collection::vec(0usize..30, 0..10),
        crash_points in prop::collection::vec(0usize..60, 0..4),
        batch_size in 1usize..8,
        ended_by_mark in any::<bool>(),
    ) {
        let chunks = chunks(&signal, &cuts);
        // The topic's log: chunks in a shuffled order, some sent twice. A
        // stream ended by an end mark has no chunk marked final.
        let mut log: Vec<Chunk> = chunks.clone();
        if ended_by_mark {
            let last = log.len() - 1;
            log[last].is_final = false;
            log.push(Chunk::end_mark(header(), last as u32));
        }
        for (a, b) in swaps {
            let n = log.len();
            log.swap(a % n, b % n);
        }
        for d in dups {
            let c = log[d % log.len()].clone();
            log.push(c);
        }

        let mut store = FakeStore::default();
        let mut pipeline = Pipeline::new(Limits::default());
        let mut committed = 0usize; // next offset to consume after a restart
        let mut cursor = 0usize;
        let mut consumed = 0usize;
        let mut crash_points: Vec<usize> = crash_points;
        crash_points.sort_unstable();
        while cursor < log.len() {
            let end = (cursor + batch_size).min(log.len());
            let incoming: Vec<Incoming> = (cursor..end)
                .map(|o| Incoming {
                    pos: Position { partition: 0, offset: o as i64, ..Default::default() },
                    key: Some(header().ecg_id),
                    chunk: Ok(log[o].clone()),
                    original: Original::default(),
                })
                .collect();
            consumed += incoming.len();
            cursor = end;
            if pipeline.ecg_count() == 0 {
                let state = store.state();
                pipeline.restore([(("demo".to_string(), header().ecg_id), 0, state)]);
            }
            let batch = store.run(&mut pipeline, incoming);
            prop_assert!(batch.failures.is_empty(), "{:?}", batch.failures);
            // Nothing is held back: every consumed message is written.
            prop_assert_eq!(pipeline.waiting_count(), 0);
            // The crash may come after the write but before the commit.
            if crash_points.first().is_some_and(|&c| c <= consumed) {
                crash_points.remove(0);
                pipeline = Pipeline::new(Limits::default());
                cursor = committed;
                continue;
            }
            committed = pipeline.committable().first().map_or(0, |&(_, o)| o as usize);
        }

        // The final seq is known, from the chunk or the mark.
        prop_assert_eq!(store.ended, Some(chunks.len() as u32 - 1));
        // Every chunk written exactly once, in seq order.
        let seqs: Vec<u32> = store.written.iter().map(|r| r.chunk.seq).collect();
        prop_assert_eq!(seqs, (0..chunks.len() as u32).collect::<Vec<_>>());
        // The last running totals equal one pass over each lead.
        let last = store.written.last().unwrap();
        for (i, lead) in signal.iter().enumerate() {
            prop_assert_eq!(last.leads[i].1.crossings, LeadSummary::of(lead).crossings);
            prop_assert_eq!(last.leads[i].1.samples, lead.len() as u64);
        }
        // And the per-chunk summaries fold to the same.
        let mut folded: BTreeMap<usize, LeadSummary> = BTreeMap::new();
        for r in &store.written {
            for (i, (own, _)) in r.leads.iter().enumerate() {
                let acc = folded.entry(i).or_insert(LeadSummary::EMPTY);
                *acc = acc.then(*own);
            }
        }
        for (i, lead) in signal.iter().enumerate() {
            prop_assert_eq!(folded[&i].crossings, LeadSummary::of(lead).crossings);
        }
    }
}

/// One message per chunk of `cs`, at offsets from 0, on partition 0.
fn messages(cs: &[Chunk]) -> Vec<Incoming> {
    cs.iter()
        .enumerate()
        .map(|(o, c)| Incoming {
            pos: Position {
                partition: 0,
                offset: o as i64,
                ..Default::default()
            },
            key: None,
            chunk: Ok(c.clone()),
            original: Original::default(),
        })
        .collect()
}

/// The failures of a batch as (seq, kind, a word of the reason).
fn failures(b: &Batch) -> Vec<(Option<u32>, &'static str, String)> {
    b.failures
        .iter()
        .map(|f| (f.seq, f.kind.as_str(), f.reason.clone()))
        .collect()
}

#[test]
fn a_chunk_after_the_final_one_is_ignored_and_the_ecg_completes() {
    let signal = vec![vec![1.0, -1.0, 1.0, -1.0]; 2];
    let mut cs = chunks(&signal, &[2]);
    let mut extra = cs[1].clone();
    extra.seq = 2;
    extra.is_final = false;
    cs.push(extra);
    let mut pipeline = Pipeline::new(Limits::default());
    let mut batch = FakeStore::default().run(&mut pipeline, messages(&cs));
    assert_eq!(batch.ready.len(), 2);
    let f = failures(&batch);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!((f[0].0, f[0].1), (Some(2), "ignored"));
    assert!(f[0].2.contains("after the final chunk 1"), "{f:?}");
    let p = batch.progress.pop().unwrap();
    assert_eq!((p.next_seq, p.final_seq), (2, Some(1)), "complete");
}

#[test]
fn an_end_mark_ends_a_stream_whose_last_chunk_was_not_marked() {
    let signal = vec![vec![1.0, -1.0, 1.0, -1.0, 1.0, -1.0]; 2];
    let mut cs = chunks(&signal, &[2, 4]);
    cs[2].is_final = false;
    let mut store = FakeStore::default();
    let mut pipeline = Pipeline::new(Limits::default());
    let b = store.run(&mut pipeline, messages(&cs));
    assert_eq!(b.progress[0].final_seq, None, "not ended yet");
    assert_eq!(pipeline.ecg_count(), 1);
    // The mark comes after the last chunk: the ECG is complete, nothing
    // is written but its progress.
    let mut end = messages(&[Chunk::end_mark(header(), 2)]);
    end[0].pos.offset = 3;
    let b = store.run(&mut pipeline, end);
    assert!(b.ready.is_empty() && b.parked.is_empty() && b.failures.is_empty());
    assert_eq!(
        (b.progress[0].next_seq, b.progress[0].final_seq),
        (3, Some(2))
    );
    assert_eq!(pipeline.ecg_count(), 0, "complete: the state is dropped");
    assert_eq!(pipeline.committable(), vec![(0, 4)]);
    // After a restart the final seq comes back from the progress row: the
    // same mark again is harmless, another one or a later chunk is ignored.
    let mut pipeline = Pipeline::new(Limits::default());
    pipeline.restore([(("demo".to_string(), header().ecg_id), 0, store.state())]);
    let mut later = cs[0].clone();
    later.seq = 3;
    let b = store.run(
        &mut pipeline,
        messages(&[
            Chunk::end_mark(header(), 2),
            Chunk::end_mark(header(), 1),
            later,
        ]),
    );
    let f = failures(&b);
    assert_eq!(
        f.iter().map(|f| (f.0, f.1)).collect::<Vec<_>>(),
        vec![(Some(1), "ignored"), (Some(3), "ignored")],
        "{f:?}"
    );
    assert!(f[0].2.contains("chunk 2 is already the final one"), "{f:?}");
    assert!(b.ready.is_empty() && b.parked.is_empty());
}

#[test]
fn an_end_mark_before_the_last_chunk_waits_for_it() {
    let signal = vec![vec![1.0, -1.0, 1.0, -1.0]; 2];
    let mut cs = chunks(&signal, &[2]);
    cs[1].is_final = false;
    let mut store = FakeStore::default();
    let mut pipeline = Pipeline::new(Limits::default());
    let b = store.run(
        &mut pipeline,
        messages(&[Chunk::end_mark(header(), 1), cs[0].clone()]),
    );
    assert_eq!(
        (b.progress[0].next_seq, b.progress[0].final_seq),
        (1, Some(1))
    );
    let mut last = messages(&[cs[1].clone()]);
    last[0].pos.offset = 2;
    let b = store.run(&mut pipeline, last);
    assert_eq!(
        (b.progress[0].next_seq, b.progress[0].final_seq),
        (2, Some(1))
    );
    assert!(b.failures.is_empty());
}

#[test]
fn a_final_mark_below_an_arrived_seq_is_refused_and_recoverable() {
    // Chunks 0..=5; 5 arrives, then 0, then 1 marked final.
    let signal = vec![
        vec![
            1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0
        ];
        2
    ];
    let mut cs = chunks(&signal, &[2, 4, 6, 8, 10]);
    cs[5].is_final = false;
    let mut wrong = cs[1].clone();
    wrong.is_final = true;
    let mut store = FakeStore::default();
    let mut pipeline = Pipeline::new(Limits::default());
    let b = store.run(
        &mut pipeline,
        messages(&[cs[5].clone(), cs[0].clone(), wrong]),
    );
    let f = failures(&b);
    assert_eq!((f.len(), f[0].0, f[0].1), (1, Some(1), "refused"), "{f:?}");
    assert!(f[0].2.contains("chunk 5 already arrived"), "{f:?}");
    assert_eq!(b.progress[0].final_seq, None, "the wrong final is not kept");
    // An end mark below the arrived chunk 5 is ignored, not refused.
    let mut end = messages(&[Chunk::end_mark(header(), 3)]);
    end[0].pos.offset = 3;
    let b = store.run(&mut pipeline, end);
    let f = failures(&b);
    assert_eq!((f[0].0, f[0].1), (Some(3), "ignored"), "{f:?}");
    // Chunk 1 resent unmarked, the rest, and chunk 5 again marked final:
    // the ECG completes.
    let mut five = cs[5].clone();
    five.is_final = true;
    let mut rest = messages(&[&cs[1..5], &[five]].concat());
    for (i, m) in rest.iter_mut().enumerate() {
        m.pos.offset = 4 + i as i64;
    }
    let b = store.run(&mut pipeline, rest);
    assert!(b.failures.is_empty(), "{:?}", b.failures);
    assert_eq!(
        (b.progress[0].next_seq, b.progress[0].final_seq),
        (6, Some(5))
    );
    assert_eq!(b.resent.len(), 1, "chunk 5's samples are not written twice");
}

#[test]
fn an_early_chunk_is_parked_and_the_commit_moves_on() {
    let signal = vec![vec![1.0, -1.0, 1.0, -1.0, 1.0, -1.0]; 2];
    let cs = chunks(&signal, &[2, 4]);
    let mut pipeline = Pipeline::new(Limits::default());
    let mut store = FakeStore::default();
    let msg = |o: i64, c: &Chunk| Incoming {
        pos: Position {
            partition: 3,
            offset: o,
            ..Default::default()
        },
        key: None,
        chunk: Ok(c.clone()),
        original: Original::default(),
    };
    // seq 1 arrives first, at offset 10: parked (stored), and committed.
    let b = store.run(&mut pipeline, vec![msg(10, &cs[1])]);
    assert_eq!((b.ready.len(), b.parked.len()), (0, 1));
    assert_eq!(b.parked[0].first_sample, 0, "its position is unknown");
    assert_eq!(pipeline.committable(), vec![(3, 11)]);
    let standing = |b: &Batch| {
        let p = &b.progress[0];
        (b.progress.len(), p.next_seq, p.waiting.clone(), p.final_seq)
    };
    assert_eq!(standing(&b), (1, 0, vec![1], None), "seq 0 is missing");
    // seq 0 at offset 11 is placed, and seq 1 is read back and placed after it.
    let b = store.run(&mut pipeline, vec![msg(11, &cs[0])]);
    assert_eq!(
        b.ready.iter().map(|r| r.chunk.seq).collect::<Vec<_>>(),
        vec![0, 1]
    );
    assert_eq!(b.ready[1].first_sample, 2, "placed after chunk 0");
    assert_eq!(b.ready[1].pos.offset, 10, "where it was read from");
    assert!(b.unparked.contains(&("demo".to_string(), header().ecg_id)));
    assert_eq!(pipeline.committable(), vec![(3, 12)]);
    assert_eq!(standing(&b), (1, 2, vec![], None), "0 and 1 placed");
    assert!(store.parked.is_empty());
}

#[test]
fn undecodable_message_is_a_failure_not_a_stall() {
    let mut pipeline = Pipeline::new(Limits::default());
    let b = pipeline.process(
        vec![Incoming {
            pos: Position {
                partition: 0,
                offset: 5,
                ..Default::default()
            },
            key: Some(Uuid::from_u128(7)),
            chunk: Err("undecodable chunk: not an Arrow IPC stream".into()),
            original: Original::default(),
        }],
        OffsetDateTime::UNIX_EPOCH,
    );
    assert_eq!(b.failures.len(), 1);
    assert_eq!(b.failures[0].ecg_id, Uuid::from_u128(7));
    assert_eq!(pipeline.committable(), vec![(0, 6)]);
}

#[test]
fn a_complete_ecg_leaves_memory_and_a_late_duplicate_reloads_it() {
    let signal = vec![vec![1.0, -1.0, 1.0, -1.0]; 2];
    let cs = chunks(&signal, &[2]);
    let msg = |o: i64, c: &Chunk| Incoming {
        pos: Position {
            partition: 1,
            offset: o,
            ..Default::default()
        },
        key: None,
        chunk: Ok(c.clone()),
        original: Original::default(),
    };
    let mut pipeline = Pipeline::new(Limits::default());
    let b = FakeStore::default().run(&mut pipeline, vec![msg(0, &cs[0]), msg(1, &cs[1])]);
    assert_eq!(b.ready.len(), 2);
    assert_eq!(
        b.progress[0].next_seq, 2,
        "the last progress row is still written"
    );
    assert_eq!(
        pipeline.ecg_count(),
        0,
        "the complete ECG's state is dropped"
    );
    assert_eq!(pipeline.committable(), vec![(1, 2)]);
    // A late duplicate: its state must be loaded again before processing.
    let late = vec![msg(2, &cs[1])];
    assert_eq!(
        pipeline.unknown_keys(&late),
        vec![("demo".to_string(), header().ecg_id)]
    );
}
