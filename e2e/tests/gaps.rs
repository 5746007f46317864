//! A stream that loses one chunk pins nothing: every chunk after the gap is
//! stored at once (parked) and queryable, the processor's memory stays
//! bounded, the committed offsets move on; when the lost chunk comes, the
//! parked ones are placed and the totals are exact.

use std::time::Duration;

use anyhow::Context as _;
use ecg_e2e::process::ProcessorProcess;
use ecg_e2e::{Stack, wait_for};
use ecg_schemas::{Calibration, Chunk, EcgHeader, Signal, Units};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};
use uuid::Uuid;

const LEADS: usize = 12;
const RATE: f64 = 500.0;
/// Samples per lead per chunk: 20 s at 500 Hz.
const CHUNK: usize = 10_000;
/// Chunks after the lost one: an hour of signal.
const AFTER: u32 = 180;

/// Lead `l`'s ADC counts for samples `from..from + n`: a slow sine with a
/// lead-specific period, so crossings are many and lead-specific.
fn counts(l: usize, from: usize, n: usize) -> Vec<i32> {
    (from..from + n)
        .map(|i| {
            let period = 137.0 + 11.0 * l as f64;
            ((i as f64 * std::f64::consts::TAU / period).sin() * 900.0).round() as i32
        })
        .collect()
}

fn chunk(header: &EcgHeader, seq: u32, is_final: bool) -> Chunk {
    let from = seq as usize * CHUNK;
    Chunk {
        header: header.clone(),
        seq,
        is_final,
        samples: Signal::Digital {
            adc: (0..LEADS).map(|l| counts(l, from, CHUNK).into()).collect(),
            calibration: vec![
                Calibration {
                    gain: 200.0,
                    baseline: 0,
                };
                LEADS
            ],
        },
    }
}

async fn status(stack: &Stack, token: &str, id: Uuid) -> anyhow::Result<Value> {
    let r = stack
        .http
        .get(format!("{}/v1/ecgs/{id}", stack.query))
        .bearer_auth(token)
        .send()
        .await?;
    anyhow::ensure!(r.status() == 200, "status answered {}", r.status());
    Ok(r.json().await?)
}

/// The group's committed offsets, summed over the topic's partitions.
fn committed(stack: &Stack, group: &str) -> anyhow::Result<i64> {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &stack.brokers)
        .set("group.id", group)
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..4 {
        tpl.add_partition(&stack.topic, p);
    }
    let offsets = consumer.committed_offsets(tpl, Duration::from_secs(10))?;
    Ok(offsets
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => o,
            _ => 0,
        })
        .sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_hour_after_a_lost_chunk_is_stored_at_once_in_bounded_memory() -> anyhow::Result<()> {
    let stack = Stack::start_without_processor("gaps", &ecg_e2e::kafka_brokers()).await?;
    let token = stack.token("demo", "demo-secret", None).await?;
    let leads: Vec<String> = (0..LEADS).map(|l| format!("L{l}")).collect();
    let adc: serde_json::Map<String, Value> = leads
        .iter()
        .map(|l| (l.clone(), json!({"gain": 200.0, "baseline": 0})))
        .collect();
    let r = stack
        .http
        .post(format!("{}/v1/ecgs", stack.ingest))
        .bearer_auth(&token)
        .json(
            &json!({"device_id": "holter-gap", "sample_rate_hz": RATE, "leads": leads, "adc": adc}),
        )
        .send()
        .await?;
    anyhow::ensure!(r.status() == 202, "create answered {}", r.status());
    let created: Value = r.json().await?;
    let id: Uuid = created["id"].as_str().context("id")?.parse()?;
    let header = EcgHeader {
        ecg_id: id,
        tenant: "demo".into(),
        device_id: "holter-gap".into(),
        sample_rate_hz: RATE,
        units: Units::Millivolts,
        started_at: time::OffsetDateTime::from_unix_timestamp(1_796_000_000)?,
        leads: leads.clone(),
    };

    let env = stack.processor_env();
    let mut processor = ProcessorProcess::start(&env, "gap").await?;
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &stack.brokers)
        .create()?;
    let key = id.to_string();
    // Chunk 0, then chunk 1 is lost, then an hour: chunks 2..=181, the last
    // one final.
    let last = AFTER + 1;
    for seq in std::iter::once(0).chain(2..=last) {
        let payload = chunk(&header, seq, seq == last).encode()?;
        producer
            .send(
                FutureRecord::to(&stack.topic).key(&key).payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)?;
    }
    let sent = (AFTER as u64 + 1) * (CHUNK * LEADS) as u64;

    // Every sent sample is stored and queryable at once, placed or parked.
    wait_for(Duration::from_secs(300), "every chunk stored", || async {
        let s = status(&stack, &token, id).await?;
        Ok(s["chunks_processed"] == 1 && s["waiting_count"] == AFTER)
    })
    .await?;
    let queryable = stack
        .count("SELECT count() FROM samples WHERE ecg_id = ?", id)
        .await?;
    assert_eq!(queryable, sent, "every sent sample is queryable");
    let s = status(&stack, &token, id).await?;
    assert_eq!(s["missing_seqs"], json!([1]), "{s}");
    assert_eq!(s["samples_received"], sent, "{s}");
    // The committed offsets moved past the gap: every message is committed.
    wait_for(Duration::from_secs(30), "offsets committed", || async {
        Ok(committed(&stack, &env.group_id)? == AFTER as i64 + 1)
    })
    .await?;
    let parked_peak = processor.peak_rss_bytes()?;

    // The lost chunk comes: everything is placed, exactly, in bounded memory.
    let payload = chunk(&header, 1, false).encode()?;
    producer
        .send(
            FutureRecord::to(&stack.topic).key(&key).payload(&payload),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)?;
    let mut s = Value::Null;
    for _ in 0..600 {
        s = status(&stack, &token, id).await?;
        if s["status"] == "complete" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(s["status"], "complete", "{s}");
    let placed_peak = processor.peak_rss_bytes()?;
    let r = stack
        .http
        .get(format!("{}/v1/ecgs/{id}/insights", stack.query))
        .bearer_auth(&token)
        .send()
        .await?;
    let insights: Value = r.json().await?;
    let total = (AFTER as usize + 2) * CHUNK;
    for (l, lead) in leads.iter().enumerate() {
        let expected = ecg_signal::LeadSummary::of_digital_i32(&counts(l, 0, total), 0);
        assert_eq!(
            insights["leads"][lead]["zero_crossings"], expected.crossings,
            "lead {lead}"
        );
        assert_eq!(insights["leads"][lead]["samples"], total, "lead {lead}");
    }
    stack.assert_one_row_per_chunk(id).await?;
    let waiting = stack
        .count("SELECT count() FROM waiting_blocks WHERE ecg_id = ?", id)
        .await?;
    assert_eq!(waiting, 0, "placed chunks are deleted from waiting_blocks");
    processor.stop(Duration::from_secs(10)).await?;
    let mb = |b: u64| b as f64 / 1e6;
    eprintln!(
        "processor peak RSS: {:.0} MB with an hour parked, {:.0} MB after placing it",
        mb(parked_peak),
        mb(placed_peak)
    );
    assert!(
        placed_peak < 150_000_000,
        "processor peak RSS {:.0} MB",
        mb(placed_peak)
    );
    stack.stop().await
}
