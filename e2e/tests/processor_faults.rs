//! The processor's guarantee under faults, with the processor as real
//! processes: every ECG's `samples` rows equal the samples sent (plain
//! `count()`, no FINAL) and every lead's crossings equal one pass over the
//! whole signal (the insights endpoint), through
//! - SIGKILL at random moments while writing, ten times in one 200 s stream;
//! - a second and a third processor joining and leaving mid-stream;
//! - ClickHouse unreachable for 30 s.
//!
//! Every stream also sends chunks out of order, sends some twice, and sends
//! each ECG through two gateways. (A broker crash and restart is in
//! `broker_outage.rs`.)

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use ecg_e2e::process::ProcessorProcess;
use ecg_e2e::proxy::Proxy;
use ecg_e2e::{Stack, kafka_brokers, wait_for};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use tokio::time::Instant;
use uuid::Uuid;

/// Each lead's samples, by lead name.
type Signals = BTreeMap<String, Vec<f64>>;

/// One ECG of the workload: its id and the signal of each lead.
struct Ecg {
    id: Uuid,
    signals: Signals,
}

/// One request of a stream.
#[derive(Clone)]
struct Send {
    ecg: usize,
    seq: usize,
    is_final: bool,
    range: std::ops::Range<usize>,
}

/// The real 12-lead ECG, `repeats` times over, rotated by `shift` samples
/// so that every ECG of a workload is a different signal.
fn real_signal(repeats: usize, shift: usize) -> anyhow::Result<(Vec<String>, Signals)> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/ecg/ecgplot_12lead.json");
    let data: Value = serde_json::from_slice(&std::fs::read(path)?)?;
    let leads: Vec<String> = serde_json::from_value(data["meta"]["leads"].clone())?;
    let signals: BTreeMap<String, Vec<f64>> = serde_json::from_value(data["signals"].clone())?;
    let signals = signals
        .into_iter()
        .map(|(l, mut s)| {
            let shift = shift % s.len();
            s.rotate_left(shift);
            (l, s.repeat(repeats))
        })
        .collect();
    Ok((leads, signals))
}

/// Opens `count` ECGs and returns them with their signals.
async fn open_ecgs(
    stack: &Stack,
    token: &str,
    count: usize,
    repeats: usize,
) -> anyhow::Result<(Vec<String>, Vec<Ecg>)> {
    let mut ecgs = Vec::new();
    let mut leads = Vec::new();
    for i in 0..count {
        let (l, signals) = real_signal(repeats, 700 * i + 13)?;
        let created: Value = stack
            .http
            .post(format!("{}/v1/ecgs", stack.ingest))
            .bearer_auth(token)
            .json(&json!({"device_id": format!("fault-{i}"), "sample_rate_hz": 500, "leads": l}))
            .send()
            .await?
            .json()
            .await?;
        let id: Uuid = created["id"].as_str().context("id")?.parse()?;
        leads = l;
        ecgs.push(Ecg { id, signals });
    }
    Ok((leads, ecgs))
}

/// Every request of a stream: (ECG index, seq, final, sample range).
fn plan(ecgs: &[Ecg], leads: &[String], rng: &mut StdRng) -> Vec<Send> {
    let mut per_ecg: Vec<Vec<Send>> = ecgs
        .iter()
        .enumerate()
        .map(|(e, ecg)| {
            let n = ecg.signals[&leads[0]].len();
            let mut cuts = vec![0];
            while *cuts.last().unwrap_or(&0) < n {
                let next = cuts.last().unwrap_or(&0) + rng.random_range(50..400);
                cuts.push(next.min(n));
            }
            let chunks = cuts.len() - 1;
            let mut sends: Vec<_> = cuts
                .windows(2)
                .enumerate()
                .map(|(seq, w)| Send {
                    ecg: e,
                    seq,
                    is_final: seq + 1 == chunks,
                    range: w[0]..w[1],
                })
                .collect();
            // Out of order: swap neighbours now and then (the final chunk
            // too); and send about one chunk in twenty twice, later.
            for i in 1..sends.len() {
                if rng.random_bool(0.15) {
                    sends.swap(i - 1, i);
                }
            }
            for i in 0..sends.len() {
                if rng.random_bool(0.05) {
                    let again = sends[i].clone();
                    let at = rng.random_range(i..=sends.len());
                    sends.insert(at, again);
                }
            }
            sends
        })
        .collect();
    // Interleave the ECGs, as devices streaming at once.
    let mut all = Vec::new();
    while per_ecg.iter().any(|s| !s.is_empty()) {
        for s in per_ecg.iter_mut().filter(|s| !s.is_empty()) {
            all.push(s.remove(0));
        }
    }
    all
}

/// The stack (gateway and query API, no in-process processor), a second
/// gateway, a token, and the ECGs every test streams.
struct Workload {
    stack: Stack,
    gateways: Vec<String>,
    token: String,
    leads: Vec<String>,
    ecgs: Arc<Vec<Ecg>>,
}

impl Workload {
    /// Starts the stack for test `name` and opens `count` ECGs of the real
    /// signal repeated `repeats` times.
    async fn open(name: &str, count: usize, repeats: usize) -> anyhow::Result<Self> {
        let mut stack = Stack::start_without_processor(name, &kafka_brokers()).await?;
        let second_gateway = stack.add_gateway().await?;
        let token = stack.token("demo", "demo-secret", None).await?;
        let (leads, ecgs) = open_ecgs(&stack, &token, count, repeats).await?;
        Ok(Workload {
            gateways: vec![stack.ingest.clone(), second_gateway],
            stack,
            token,
            leads,
            ecgs: Arc::new(ecgs),
        })
    }

    /// Sends `plan` through the gateways (each request to a random one),
    /// spread evenly over `duration`, retrying 503s; the counter says how many
    /// requests were sent so far.
    fn stream(
        &self,
        plan: Vec<Send>,
        duration: Duration,
    ) -> (
        tokio::task::JoinHandle<anyhow::Result<()>>,
        Arc<AtomicUsize>,
    ) {
        let sent = Arc::new(AtomicUsize::new(0));
        let (http, gateways, token, leads, ecgs, counter) = (
            self.stack.http.clone(),
            self.gateways.clone(),
            self.token.clone(),
            self.leads.clone(),
            self.ecgs.clone(),
            sent.clone(),
        );
        let task = tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(7);
            let gap = duration / plan.len().max(1) as u32;
            let start = Instant::now();
            for (
                i,
                Send {
                    ecg: e,
                    seq,
                    is_final,
                    range,
                },
            ) in plan.into_iter().enumerate()
            {
                tokio::time::sleep_until(start + gap * i as u32).await;
                let ecg = &ecgs[e];
                let samples: BTreeMap<&String, &[f64]> = leads
                    .iter()
                    .map(|l| (l, &ecg.signals[l][range.clone()]))
                    .collect();
                let body = json!({"seq": seq, "final": is_final, "samples": samples});
                let gateway = &gateways[rng.random_range(0..gateways.len())];
                let url = format!("{gateway}/v1/ecgs/{}/chunks", ecg.id);
                let mut attempts = 0;
                loop {
                    let r = http
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&body)
                        .send()
                        .await?;
                    match r.status().as_u16() {
                        202 => break,
                        503 | 429 if attempts < 60 => {
                            attempts += 1;
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                        other => anyhow::bail!("ECG {e} chunk {seq}: {other} {}", r.text().await?),
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
            }
            Ok(())
        });
        (task, sent)
    }

    /// Checks every ECG exactly: complete, each lead's crossings equal one
    /// pass over the whole signal, and `samples` holds each sample once.
    async fn assert_all_exact(&self, deadline: Duration) -> anyhow::Result<()> {
        for ecg in self.ecgs.iter() {
            let insights = self
                .stack
                .insights_when_complete(&self.token, ecg.id, deadline)
                .await
                .with_context(|| format!("ECG {}", ecg.id))?;
            let columns: Vec<&[f64]> = self
                .leads
                .iter()
                .map(|l| ecg.signals[l].as_slice())
                .collect();
            self.stack
                .assert_exact(&insights, ecg.id, &self.leads, &columns)
                .await?;
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exact_through_ten_sigkills_during_one_long_stream() -> anyhow::Result<()> {
    let w = Workload::open("sigkill", 6, 4).await?;
    let mut rng = StdRng::seed_from_u64(2026);
    let plan = plan(&w.ecgs, &w.leads, &mut rng);
    let requests = plan.len();
    let env = w.stack.processor_env();
    let mut processor = ProcessorProcess::start(&env, "p0").await?;
    let (streaming, sent) = w.stream(plan, Duration::from_secs(200));

    // Ten SIGKILLs, each at a random moment once the process owns
    // partitions and is writing (a process killed before the group gave it
    // anything would prove nothing), each followed by a restart; all while
    // the stream is still being sent.
    for kill in 1..=10 {
        wait_for(
            Duration::from_secs(90),
            "the processor to own partitions and write",
            || async {
                Ok(processor
                    .metric("ecg_processor_rebalances_total", "kind=\"assign\"")
                    .await?
                    >= 1.0
                    && processor
                        .metric("ecg_processor_samples_written_total", "")
                        .await?
                        > 0.0)
            },
        )
        .await
        .with_context(|| format!("before kill {kill}; log: {}", processor.log.display()))?;
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..4_000))).await;
        assert!(
            sent.load(Ordering::SeqCst) < requests,
            "kill {kill} came after the stream ended"
        );
        processor.kill();
        processor = ProcessorProcess::start(&env, &format!("p{kill}")).await?;
    }
    streaming.await??;
    w.assert_all_exact(Duration::from_secs(180))
        .await
        .with_context(|| format!("processor log: {}", processor.log.display()))?;
    processor.stop(Duration::from_secs(15)).await?;
    w.stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exact_while_processors_join_and_leave_the_group() -> anyhow::Result<()> {
    let w = Workload::open("rebalance", 6, 2).await?;
    let plan = plan(&w.ecgs, &w.leads, &mut StdRng::seed_from_u64(11));
    let env = w.stack.processor_env();
    let mut a = ProcessorProcess::start(&env, "a").await?;
    let (streaming, _) = w.stream(plan, Duration::from_secs(60));

    tokio::time::sleep(Duration::from_secs(8)).await;
    let mut b = ProcessorProcess::start(&env, "b").await?;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let mut c = ProcessorProcess::start(&env, "c").await?;
    // Each newcomer must have been given partitions before it leaves.
    for (p, name) in [(&b, "b"), (&c, "c")] {
        wait_for(
            Duration::from_secs(30),
            &format!("{name} to get partitions"),
            || async {
                Ok(
                    p.metric("ecg_processor_rebalances_total", "kind=\"assign\"")
                        .await?
                        >= 1.0,
                )
            },
        )
        .await?;
    }
    tokio::time::sleep(Duration::from_secs(8)).await;
    // b leaves gracefully: it writes and commits what it holds, then exits 0.
    b.stop(Duration::from_secs(15)).await?;
    tokio::time::sleep(Duration::from_secs(8)).await;
    // c dies without a word.
    c.kill();
    let revoked = a
        .metric("ecg_processor_rebalances_total", "kind=\"revoke\"")
        .await?;
    assert!(
        revoked >= 2.0,
        "a saw {revoked} revocations; the group never rebalanced"
    );

    streaming.await??;
    w.assert_all_exact(Duration::from_secs(120))
        .await
        .with_context(|| format!("processor log: {}", a.log.display()))?;
    a.stop(Duration::from_secs(15)).await?;
    w.stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exact_through_thirty_seconds_without_clickhouse() -> anyhow::Result<()> {
    let w = Workload::open("chdown", 4, 2).await?;
    let plan = plan(&w.ecgs, &w.leads, &mut StdRng::seed_from_u64(30));

    // The processor reaches ClickHouse only through a proxy the test cuts.
    let target = w
        .stack
        .clickhouse
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let proxy = Proxy::start(&target).await?;
    let mut env = w.stack.processor_env();
    env.clickhouse_url = proxy.url();
    let mut processor = ProcessorProcess::start(&env, "p").await?;
    let (streaming, _) = w.stream(plan, Duration::from_secs(50));

    tokio::time::sleep(Duration::from_secs(8)).await;
    let rows = || {
        w.stack
            .count("SELECT count() FROM samples WHERE ecg_id != ?", Uuid::nil())
    };
    proxy.cut();
    let cut_at = Instant::now();
    // An insert whose last byte left just before the cut may still land.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rows().await?;
    tokio::time::sleep(Duration::from_secs(29)).await;
    let during = rows().await?;
    let retries = processor.metric("ecg_processor_retries_total", "").await?;
    proxy.restore();
    assert!(cut_at.elapsed() >= Duration::from_secs(30));
    assert!(before > 0, "nothing was written before the outage");
    assert_eq!(
        during, before,
        "rows landed while ClickHouse was unreachable"
    );
    assert!(
        retries > 0.0,
        "the processor never retried: /metrics shows no retries"
    );

    streaming.await??;
    w.assert_all_exact(Duration::from_secs(120))
        .await
        .with_context(|| format!("processor log: {}", processor.log.display()))?;
    processor.stop(Duration::from_secs(15)).await?;
    w.stack.stop().await
}
