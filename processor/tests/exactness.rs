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

/// A signal per lead, rich in zeros and -0.0, cut at `cuts`.
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
    ) {
        let chunks = chunks(&signal, &cuts);
        // The topic's log: chunks in a shuffled order, some sent twice.
        let mut log: Vec<Chunk> = chunks.clone();
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

#[test]
fn chunk_after_the_final_one_is_refused() {
    let signal = vec![vec![1.0, -1.0, 1.0, -1.0]; 2];
    let mut cs = chunks(&signal, &[2]);
    let mut extra = cs[1].clone();
    extra.seq = 2;
    extra.is_final = false;
    cs.push(extra);
    let mut pipeline = Pipeline::new(Limits::default());
    let incoming = cs
        .into_iter()
        .enumerate()
        .map(|(o, c)| Incoming {
            pos: Position {
                partition: 0,
                offset: o as i64,
                ..Default::default()
            },
            key: None,
            chunk: Ok(c),
            original: Original::default(),
        })
        .collect();
    let batch = pipeline.process(incoming, OffsetDateTime::UNIX_EPOCH);
    assert_eq!(batch.ready.len(), 2);
    assert_eq!(batch.failures.len(), 1);
    assert!(
        batch.failures[0].reason.contains("after the final chunk"),
        "{:?}",
        batch.failures
    );
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
