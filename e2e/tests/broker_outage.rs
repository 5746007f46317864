//! The gateway's promise under a broker crash: a 202 only for chunks the
//! broker acknowledged, a bounded wait then 503 + Retry-After while it is
//! down, and every acknowledged chunk processed once it is back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ecg_e2e::broker::DurableBroker;
use ecg_e2e::{Stack, wait_for};
use serde_json::{Value, json};

const CHUNK: usize = 250;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_chunk_acknowledged_around_a_broker_crash_is_processed() -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let mut broker = DurableBroker::start("outage").await?;
    let stack = Stack::start_with("outage", &broker.brokers, |c| {
        c.kafka.delivery_timeout_ms = 3_000;
    })
    .await?;
    let token = stack.token("demo", "demo-secret", None).await?;

    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/ecg/ecgplot_12lead.json");
    let data: Value = serde_json::from_slice(&std::fs::read(path)?)?;
    let leads: Vec<String> = serde_json::from_value(data["meta"]["leads"].clone())?;
    let signals: BTreeMap<String, Vec<f64>> = serde_json::from_value(data["signals"].clone())?;
    let signals: BTreeMap<String, Vec<f64>> =
        signals.into_iter().map(|(l, s)| (l, s.repeat(3))).collect();
    let n = signals[&leads[0]].len();
    let chunks = n.div_ceil(CHUNK);

    let created: Value = stack
        .http
        .post(format!("{}/v1/ecgs", stack.ingest))
        .bearer_auth(&token)
        .json(&json!({"device_id": "ward-3", "sample_rate_hz": 500, "leads": leads}))
        .send()
        .await?
        .json()
        .await?;
    let id: uuid::Uuid = created["id"].as_str().context("id")?.parse()?;

    // The client: sends chunks in order, retrying each after a 503 as told.
    let accepted = Arc::new(AtomicU32::new(0));
    let client = {
        let (http, url, token, accepted) = (
            stack.http.clone(),
            format!("{}/v1/ecgs/{id}/chunks", stack.ingest),
            token.clone(),
            accepted.clone(),
        );
        let signals = signals.clone();
        tokio::spawn(async move {
            let mut refused = 0u32;
            let mut slowest = Duration::ZERO;
            let deadline = Instant::now() + Duration::from_secs(150);
            for seq in 0..chunks {
                let range = seq * CHUNK..((seq + 1) * CHUNK).min(n);
                let samples: BTreeMap<&String, &[f64]> = signals
                    .iter()
                    .map(|(l, s)| (l, &s[range.clone()]))
                    .collect();
                let body = json!({"seq": seq, "final": seq + 1 == chunks, "samples": samples});
                loop {
                    let started = Instant::now();
                    let r = http
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&body)
                        .send()
                        .await?;
                    slowest = slowest.max(started.elapsed());
                    match r.status().as_u16() {
                        202 => break,
                        503 => {
                            anyhow::ensure!(
                                Instant::now() < deadline,
                                "chunk {seq} still refused after the broker came back"
                            );
                            anyhow::ensure!(
                                r.headers().contains_key("retry-after"),
                                "503 without Retry-After"
                            );
                            refused += 1;
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                        other => anyhow::bail!("chunk {seq}: {other} {}", r.text().await?),
                    }
                }
                accepted.fetch_add(1, Ordering::SeqCst);
            }
            anyhow::Ok((refused, slowest))
        })
    };

    // Crash the broker a third of the way through, keep it down for 8 s.
    let third = (chunks / 3) as u32;
    wait_for(Duration::from_secs(60), "a third of the chunks", || async {
        Ok(accepted.load(Ordering::SeqCst) >= third)
    })
    .await?;
    broker.kill();
    let at_kill = accepted.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(8)).await;
    let during = accepted.load(Ordering::SeqCst) - at_kill;
    broker.restart().await?;

    let (refused, slowest) = client.await??;
    assert!(refused > 0, "the outage was never seen by the client");
    // At most the one request in flight at the kill can have been
    // acknowledged just before the broker died.
    assert!(
        during <= 1,
        "{during} chunks got a 202 while the broker was down"
    );
    // Bounded waiting: the gateway's deadline is the delivery timeout plus
    // a second (4 s here); the rest is slack for a loaded machine.
    assert!(
        slowest < Duration::from_secs(7),
        "a request waited {slowest:?}"
    );

    let insights = stack
        .insights_when_complete(&token, id, Duration::from_secs(120))
        .await
        .with_context(|| format!("broker logs in {}", broker.logs().display()))?;
    let columns: Vec<&[f64]> = leads.iter().map(|l| signals[l].as_slice()).collect();
    stack.assert_exact(&insights, id, &leads, &columns).await?;
    stack.stop().await
}
