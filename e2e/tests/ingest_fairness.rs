//! Gateway fairness under slow bodies: 50 connections of one client trickle
//! request bodies at 10 bytes/s, each declaring the length of a large chunk,
//! while another tenant's device streams 1-second chunks. The device must
//! not notice: no 503, p99 latency under 50 ms. Before the body budget had
//! per-client and per-tenant shares and bodies had a minimum rate, the
//! trickling bodies reserved the whole budget and every other request waited
//! `upload.buffer_wait_ms`, then got 503 `busy`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ecg_e2e::Stack;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// Trickling connections.
const TRICKLERS: usize = 50;
/// What each declares: a large chunk (120,000 values of JSON).
const DECLARED: usize = 1 << 20;
/// How long the device streams.
const STREAM_FOR: Duration = Duration::from_secs(25);
/// Between two chunks of the device (each holds 1 s of signal: the device
/// catches up after a gap, 4 chunks a second).
const EVERY: Duration = Duration::from_millis(250);

/// One trickling client: sends the headers of a chunk of `DECLARED` bytes,
/// then one byte every 100 ms until the gateway answers, then starts over.
/// Counts the answers by status line.
async fn trickle(
    addr: String,
    path: String,
    token: String,
    answers: Arc<Mutex<BTreeMap<String, u32>>>,
    stop: CancellationToken,
) {
    while !stop.is_cancelled() {
        let Ok(mut stream) = TcpStream::connect(&addr).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {DECLARED}\r\n\r\n"
        );
        if stream.write_all(head.as_bytes()).await.is_err() {
            continue;
        }
        let (mut read, mut write) = stream.split();
        let mut answer = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let status = loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {
                    if write.write_all(b"[").await.is_err() {
                        break "write failed".to_string();
                    }
                }
                n = read.read_buf(&mut answer) => {
                    if matches!(n, Ok(0) | Err(_)) || answer.windows(2).any(|w| w == b"\r\n") {
                        let line = String::from_utf8_lossy(&answer);
                        break line.lines().next().unwrap_or("closed").to_string();
                    }
                }
            }
        };
        *answers.lock().unwrap().entry(status).or_default() += 1;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trickling_bodies_do_not_slow_or_refuse_another_tenant() -> anyhow::Result<()> {
    let stack = Stack::start("fairness").await?;
    let device = stack.token("demo", "demo-secret", None).await?;
    let attacker = stack.token("other", "other-secret", None).await?;
    let create = |token: &str, leads: &[&str]| {
        stack
            .http
            .post(format!("{}/v1/ecgs", stack.ingest))
            .bearer_auth(token)
            .json(&json!({"device_id": "d", "sample_rate_hz": 500, "leads": leads}))
            .send()
    };
    let id_of = |created: Value| -> anyhow::Result<String> {
        Ok(created["id"].as_str().context("no id")?.to_string())
    };
    let target = id_of(create(&attacker, &["I"]).await?.json().await?)?;

    let stop = CancellationToken::new();
    let answers = Arc::new(Mutex::new(BTreeMap::new()));
    let addr = stack.ingest.trim_start_matches("http://").to_string();
    let tricklers: Vec<_> = (0..TRICKLERS)
        .map(|_| {
            tokio::spawn(trickle(
                addr.clone(),
                format!("/v1/ecgs/{target}/chunks"),
                attacker.clone(),
                answers.clone(),
                stop.clone(),
            ))
        })
        .collect();
    // Let every trickling request reach its body.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // The device opens its ECG (counted as one of its requests), retrying
    // a refusal.
    let leads = ["I", "II", "V1"];
    let mut latencies = Vec::new();
    let mut refusals = BTreeMap::<u16, u32>::new();
    let mut id = None;
    for _ in 0..10 {
        let sent = Instant::now();
        let r = create(&device, &leads).await?;
        latencies.push(sent.elapsed());
        match r.status().as_u16() {
            202 => {
                id = Some(id_of(r.json().await?)?);
                break;
            }
            other => *refusals.entry(other).or_default() += 1,
        }
    }
    // Unopened, it streams nothing; the figures still say why.
    let url = format!(
        "{}/v1/ecgs/{}/chunks",
        stack.ingest,
        id.as_deref().unwrap_or("")
    );
    let started = Instant::now();
    let mut seq = 0u32;
    while id.is_some() && started.elapsed() < STREAM_FOR {
        let samples: BTreeMap<&str, Vec<f64>> = leads
            .iter()
            .enumerate()
            .map(|(l, lead)| {
                let values = (0..500)
                    .map(|i| ((seq as f64 * 500.0 + i as f64) * 0.01 + l as f64).sin())
                    .collect();
                (*lead, values)
            })
            .collect();
        let body = json!({"seq": seq, "samples": samples});
        let sent = Instant::now();
        let r = stack
            .http
            .post(&url)
            .bearer_auth(&device)
            .json(&body)
            .send()
            .await?;
        let status = r.status().as_u16();
        r.bytes().await?;
        latencies.push(sent.elapsed());
        if status != 202 {
            *refusals.entry(status).or_default() += 1;
        }
        seq += 1;
        tokio::time::sleep(EVERY.saturating_sub(sent.elapsed())).await;
    }
    stop.cancel();
    for t in tricklers {
        t.await?;
    }

    latencies.sort();
    let (p50, p99, max) = (
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        *latencies.last().context("no chunk sent")?,
    );
    println!(
        "device: {} requests, p50 {p50:?}, p99 {p99:?}, max {max:?}, refused {refusals:?}; \
         trickling requests' answers: {:?}",
        latencies.len(),
        answers.lock().unwrap()
    );
    assert!(refusals.is_empty(), "the device was refused: {refusals:?}");
    assert!(
        p99 < Duration::from_millis(50),
        "the device's p99 latency is {p99:?}"
    );
    stack.stop().await
}
