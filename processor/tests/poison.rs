//! No message, however formed, stops the processor: random valid-looking
//! chunks (extreme seqs, rates, lead sets, lengths, start times, finals in any
//! order, resends with other samples) and random bytes go through the
//! pipeline's message handling, which must never panic and never write one
//! (ECG, seq) twice, across batches and restarts from what was written.

use std::collections::{BTreeMap, BTreeSet};

use ecg_processor::pipeline::{EcgKey, FailureKind, Incoming, Original, Pipeline, read_chunk};
use ecg_processor::state::{EcgState, Position, StoredLead};
use ecg_schemas::validate::{EARLIEST_START, END_OF_STARTS};
use ecg_schemas::{Chunk, EcgHeader, Limits, Signal, Units};
use proptest::prelude::*;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

const MAX_SEQ: u32 = i32::MAX as u32;

fn seq() -> impl Strategy<Value = u32> {
    prop_oneof![
        6 => 0u32..6,
        1 => Just(MAX_SEQ - 1),
        1 => Just(MAX_SEQ),
        1 => Just(MAX_SEQ + 1),
        1 => Just(u32::MAX - 1),
        1 => Just(u32::MAX),
        1 => any::<u32>(),
    ]
}

fn rate() -> impl Strategy<Value = f64> {
    prop_oneof![
        6 => Just(500.0),
        1 => Just(50.0),
        1 => Just(32_000.0),
        1 => Just(49.999),
        1 => Just(0.0),
        1 => Just(-500.0),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::MAX),
    ]
}

fn started_at() -> impl Strategy<Value = OffsetDateTime> {
    prop_oneof![
        6 => Just(OffsetDateTime::UNIX_EPOCH + Duration::days(20_000)),
        1 => Just(EARLIEST_START),
        1 => Just(EARLIEST_START - Duration::microseconds(1)),
        1 => Just(END_OF_STARTS - Duration::microseconds(1)),
        1 => Just(END_OF_STARTS),
        1 => Just(time::PrimitiveDateTime::MIN.assume_utc()),
        1 => Just(time::PrimitiveDateTime::MAX.assume_utc()),
    ]
}

fn leads() -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        6 => Just(vec!["I".to_string()]),
        2 => Just(vec!["I".to_string(), "II".to_string()]),
        1 => Just(vec![]),
        1 => Just(vec!["".to_string()]),
        1 => Just(vec!["I".to_string(), "I".to_string()]),
        1 => Just((0..33).map(|i| format!("L{i}")).collect()),
    ]
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => -2.0f64..2.0,
        2 => Just(0.0),
        1 => Just(-0.0),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::MAX),
        1 => Just(f64::MIN_POSITIVE / 2.0),
    ]
}

/// Samples per lead: mostly short, sometimes none, rarely over the limit.
fn length() -> impl Strategy<Value = usize> {
    prop_oneof![20 => 1usize..6, 1 => Just(0usize), 1 => Just(100_001usize)]
}

prop_compose! {
    fn chunk()(
        ecg in 0u128..3,
        tenant in prop_oneof![4 => Just("demo"), 1 => Just("other"), 1 => Just("")],
        device in prop_oneof![Just("dev".to_string()), Just(String::new()), Just("x".repeat(129))],
        rate in rate(),
        started_at in started_at(),
        leads in leads(),
        seq in seq(),
        is_final in prop::bool::weighted(0.3),
        len in length(),
        fill in value(),
        values in prop::collection::vec(value(), 5),
        ragged in prop::bool::weighted(0.05),
    ) -> Chunk {
        let columns: Vec<Vec<f64>> = leads
            .iter()
            .enumerate()
            .map(|(i, _)| {
                let n = if ragged && i == 1 { len + 1 } else { len };
                (0..n).map(|k| values.get(k).copied().unwrap_or(fill)).collect()
            })
            .collect();
        Chunk {
            header: EcgHeader {
                ecg_id: Uuid::from_u128(ecg),
                tenant: tenant.to_string(),
                device_id: device,
                sample_rate_hz: rate,
                units: Units::Millivolts,
                started_at,
                leads,
            },
            seq,
            is_final,
            samples: Signal::from_vecs(columns),
        }
    }
}

/// What ClickHouse would hold per ECG: the last placed chunk's running
/// totals per lead, as `sink::load_states` reads them back, and the parked
/// chunks.
#[derive(Default)]
struct FakeStore {
    written: BTreeMap<EcgKey, Vec<StoredLead>>,
    parked: BTreeMap<EcgKey, BTreeMap<u32, (Chunk, Position)>>,
}

impl FakeStore {
    fn state(&self, key: &EcgKey) -> EcgState {
        let chunks = self.parked.get(key);
        let parked: Vec<(u32, u64, bool)> = chunks
            .map(|p| {
                p.values()
                    .map(|(c, _)| (c.seq, (c.len() * c.header.leads.len()) as u64, c.is_final))
                    .collect()
            })
            .unwrap_or_default();
        let leads = chunks
            .and_then(|p| p.values().next())
            .map(|(c, _)| c.header.leads.clone());
        EcgState::restored(
            self.written.get(key).cloned().unwrap_or_default(),
            &parked,
            leads,
            None,
        )
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn no_message_panics_the_pipeline_or_is_written_twice(
        log in prop::collection::vec(chunk(), 1..40),
        batch_size in 1usize..8,
        restarts in prop::collection::vec(0usize..40, 0..3),
    ) {
        let mut store = FakeStore::default();
        let mut pipeline = Pipeline::new(Limits::default());
        let mut written: BTreeSet<(EcgKey, u32)> = BTreeSet::new();
        let mut offset = 0i64;
        for (b, part) in log.chunks(batch_size).enumerate() {
            if restarts.contains(&b) {
                // A restart: nothing held in memory survives.
                pipeline = Pipeline::new(Limits::default());
            }
            let mut incoming = pipeline.take_deferred();
            for c in part {
                incoming.push(Incoming {
                    pos: Position { partition: 0, offset, produced_at_ms: i64::MAX },
                    key: Some(c.header.ecg_id),
                    chunk: Ok(c.clone()),
                    original: Original::default(),
                });
                offset += 1;
            }
            let unknown = pipeline.unknown_keys(&incoming);
            pipeline.restore(unknown.iter().map(|k| (k.clone(), 0, store.state(k))));
            let mut batch = pipeline.process(incoming, OffsetDateTime::UNIX_EPOCH);
            for r in &batch.parked {
                let key = (r.chunk.header.tenant.clone(), r.chunk.header.ecg_id);
                let parked = store.parked.entry(key.clone()).or_default();
                prop_assert!(
                    parked.insert(r.chunk.seq, (r.chunk.clone(), r.pos)).is_none(),
                    "chunk {} of {key:?} parked twice", r.chunk.seq
                );
                prop_assert!(
                    !written.contains(&(key.clone(), r.chunk.seq)),
                    "chunk {} of {key:?} parked after it was placed", r.chunk.seq
                );
            }
            loop {
                let requests = pipeline.placeable(&mut batch, u64::MAX);
                if requests.is_empty() {
                    break;
                }
                let before = batch.ready.len();
                for (key, from, to) in requests {
                    let chunks = store.parked.get(&key).map(|p| {
                        p.range(from..=to).map(|(_, c)| c.clone()).collect()
                    }).unwrap_or_default();
                    pipeline.place_parked(&mut batch, &key, chunks);
                }
                prop_assert!(
                    batch.ready.len() > before || !batch.unplaceable.is_empty(),
                    "a read-back placed nothing"
                );
                for (key, seq) in &batch.unplaceable {
                    store.parked.get_mut(key).map(|p| p.remove(seq));
                }
            }
            pipeline.finish(&mut batch);
            for p in &batch.progress {
                if let Some(parked) = store.parked.get_mut(&(p.tenant.clone(), p.ecg_id)) {
                    parked.retain(|&seq, _| seq >= p.next_seq);
                }
            }
            for r in &batch.ready {
                let key = (r.chunk.header.tenant.clone(), r.chunk.header.ecg_id);
                prop_assert!(
                    written.insert((key.clone(), r.chunk.seq)),
                    "chunk {} of {key:?} written twice", r.chunk.seq
                );
                let stored: Vec<StoredLead> = r.chunk.header.leads.iter().enumerate().map(|(i, lead)| {
                    StoredLead {
                        lead: lead.clone(),
                        lead_index: i as u8,
                        last_seq: r.chunk.seq,
                        samples_total: r.leads[i].1.samples,
                        crossings_total: r.leads[i].1.crossings,
                        last_sign_total: r.leads[i].1.last.as_i8(),
                        final_seq: r.chunk.is_final.then_some(r.chunk.seq),
                    }
                }).collect();
                let entry = store.written.entry(key).or_default();
                let final_seq = entry.iter().find_map(|s| s.final_seq).or(stored[0].final_seq);
                *entry = stored.into_iter().map(|s| StoredLead { final_seq, ..s }).collect();
            }
            for f in &batch.failures {
                prop_assert!(!f.reason.contains("panic"), "{}", f.reason);
            }
            // Every refusal of a seq past the limit names the limit.
            for f in batch.failures.iter().filter(|f| f.seq.is_some_and(|s| s > MAX_SEQ)) {
                prop_assert_eq!(f.kind, FailureKind::Refused);
                prop_assert!(f.reason.contains("invalid chunk"), "{}", f.reason);
            }
            // Nothing is held back: every consumed message is written.
            for (_, next) in pipeline.committable() {
                prop_assert_eq!(next, offset);
            }
        }
    }

    #[test]
    fn random_bytes_are_refused_never_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        prop_assert!(read_chunk(Some(&bytes), Chunk::decode).is_err());
    }
}

#[test]
fn a_panicking_decoder_refuses_the_message_with_the_panics_message() {
    let reason = read_chunk(Some(b"x"), |_| panic!("index out of bounds: the len is 3"))
        .expect_err("a panic must refuse the message");
    assert!(
        reason.contains("panic while decoding: index out of bounds: the len is 3"),
        "{reason}"
    );
    assert_eq!(
        read_chunk(None, Chunk::decode).unwrap_err(),
        "empty message"
    );
}

#[test]
fn every_fuzzer_finding_is_refused() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/artifacts");
    let mut seen = 0;
    for target in std::fs::read_dir(&dir).unwrap() {
        for file in std::fs::read_dir(target.unwrap().path()).unwrap() {
            let bytes = std::fs::read(file.unwrap().path()).unwrap();
            assert!(read_chunk(Some(&bytes), Chunk::decode).is_err());
            seen += 1;
        }
    }
    assert!(seen >= 4, "the fuzzer's findings are gone from {dir:?}");
}

#[test]
fn the_seq_that_once_panicked_the_processor_is_refused() {
    let chunk = Chunk {
        header: EcgHeader {
            ecg_id: Uuid::from_u128(1),
            tenant: "demo".into(),
            device_id: "dev".into(),
            sample_rate_hz: 500.0,
            units: Units::Millivolts,
            started_at: OffsetDateTime::UNIX_EPOCH,
            leads: vec!["I".into()],
        },
        seq: u32::MAX,
        is_final: true,
        samples: Signal::from_vecs(vec![vec![1.0, -1.0]]),
    };
    let mut pipeline = Pipeline::new(Limits::default());
    let batch = pipeline.process(
        vec![Incoming {
            pos: Position::default(),
            key: Some(chunk.header.ecg_id),
            chunk: Ok(chunk.clone()),
            original: Original::default(),
        }],
        OffsetDateTime::UNIX_EPOCH,
    );
    assert!(batch.ready.is_empty());
    assert_eq!(batch.failures.len(), 1);
    assert!(
        batch.failures[0]
            .reason
            .contains("/seq: seq must be between 0 and 2147483647, got 4294967295"),
        "{}",
        batch.failures[0].reason
    );
    // Configured above u32::MAX - 1, the limit still leaves room for seq + 1.
    let mut limits = Limits {
        max_seq: u32::MAX,
        ..Limits::default()
    };
    assert_eq!(limits.seq_limit(), u32::MAX - 1);
    limits.max_seq = 10;
    assert!(limits.check_seq("/seq", 11).is_err());
    assert!(limits.check_seq("/seq", 10).is_ok());
}
