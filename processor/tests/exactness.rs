//! The processor's exactness argument, tested without I/O: chunks arrive in
//! any order, duplicated, and the process "crashes" at random points and
//! restarts from its committed offsets with state rebuilt from what was
//! written. Every lead's running total must equal one pass over the signal,
//! and every chunk must be written exactly once.

use std::collections::BTreeMap;

use ecg_processor::pipeline::{Incoming, Original, Pipeline};
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

/// What ClickHouse would hold: every written chunk, in write order.
#[derive(Default)]
struct FakeStore {
    written: Vec<Ready>,
}

impl FakeStore {
    /// What `sink::load_states` would read back for our one ECG.
    fn stored(&self) -> Vec<StoredLead> {
        let Some(last) = self.written.iter().max_by_key(|r| r.chunk.seq) else {
            return Vec::new();
        };
        let final_seq = self
            .written
            .iter()
            .find(|r| r.chunk.is_final)
            .map(|r| r.chunk.seq);
        LEADS
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
            .collect()
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
                let state = EcgState::restored(store.stored());
                pipeline.restore([(("demo".to_string(), header().ecg_id), 0, state)]);
            }
            let batch = pipeline.process(incoming, OffsetDateTime::UNIX_EPOCH);
            prop_assert!(batch.failures.is_empty(), "{:?}", batch.failures);
            store.written.extend(batch.ready);
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
fn early_chunk_holds_back_the_commit_until_the_gap_fills() {
    let signal = vec![vec![1.0, -1.0, 1.0, -1.0, 1.0, -1.0]; 2];
    let cs = chunks(&signal, &[2, 4]);
    let mut pipeline = Pipeline::new(Limits::default());
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
    // seq 1 arrives first, at offset 10: nothing can be written or committed past it.
    let b = pipeline.process(vec![msg(10, &cs[1])], OffsetDateTime::UNIX_EPOCH);
    assert_eq!((b.ready.len(), b.buffered), (0, 1));
    assert_eq!(pipeline.committable(), vec![(3, 10)]);
    let standing = |b: &ecg_processor::pipeline::Batch| {
        let p = &b.progress[0];
        (b.progress.len(), p.next_seq, p.waiting.clone(), p.final_seq)
    };
    assert_eq!(standing(&b), (1, 0, vec![1], None), "seq 0 is missing");
    // seq 0 at offset 11 releases both.
    let b = pipeline.process(vec![msg(11, &cs[0])], OffsetDateTime::UNIX_EPOCH);
    assert_eq!(
        b.ready.iter().map(|r| r.chunk.seq).collect::<Vec<_>>(),
        vec![0, 1]
    );
    assert_eq!(pipeline.committable(), vec![(3, 12)]);
    assert_eq!(standing(&b), (1, 2, vec![], None), "0 and 1 written");
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
    let b = pipeline.process(
        vec![msg(0, &cs[0]), msg(1, &cs[1])],
        OffsetDateTime::UNIX_EPOCH,
    );
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
