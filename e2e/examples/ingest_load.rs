//! Open-loop load on the gateway: one chunk body posted by many connections
//! at a fixed total rate, with latency measured from when each request was
//! due, and the gateway's own CPU time read from `/proc`.
//!
//! wrk (`bench/ingest_load.sh`) is closed-loop: each connection sends its
//! next request when the last is answered, so at 100 connections the
//! latency it reports is 100 / throughput, whatever the gateway's service
//! time. Here each connection has a schedule instead (request k due at
//! start + (k + i / N) × N / rate); a connection that falls behind sends at
//! once and is charged from the due time (no coordinated omission). Before
//! the schedule starts, every connection is opened with one unmeasured
//! request, all at once ("open ms": until the last is answered). So a row
//! reads: at this offered rate over N connections, the gateway answered
//! with these percentiles, and spent this much of its CPU per sample.
//!
//! ```sh
//! cargo run --release -p ecg-e2e --example ingest_load -- \
//!   --body chunk.arrow --pid "$(cat .local/run/ingest.pid)" --rates 100,200,400
//! ```
//!
//! The body is a chunk in any of the gateway's formats, by its extension
//! (`.arrow`, `.json`, `.csv`, as `bench/chunk_bodies.py` writes them); the
//! tool opens an ECG for it (digital, gain 1000, when every column of an
//! Arrow body is an integer type) with the demo client's token, and posts
//! it with `?seq=k`, k counting up (a JSON body carries its own seq).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context as _, ensure};
use clap::Parser;
use ecg_client::Api;
use ecg_schemas::api::CreateEcg;
use ecg_schemas::{Calibration, Units};
use hdrhistogram::Histogram;
use tokio::sync::Mutex;
use tokio::time::Instant;

#[derive(Debug, Parser)]
struct Args {
    /// The gateway.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    ingest: String,
    /// The query API (tokens).
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    query: String,
    /// The Arrow IPC stream body to post.
    #[arg(long)]
    body: std::path::PathBuf,
    /// Connections, each with its own schedule.
    #[arg(long, default_value_t = 100)]
    connections: usize,
    /// Total requests per second to offer, one row each.
    #[arg(long, value_delimiter = ',', required = true)]
    rates: Vec<f64>,
    /// Seconds measured per rate.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds at each rate before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// The gateway's process id: its CPU time is read from /proc.
    #[arg(long)]
    pid: Option<u32>,
}

/// What one rate gave.
struct Row {
    ok: u64,
    errors: u64,
    latency_us: Histogram<u64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let body = bytes::Bytes::from(std::fs::read(&args.body).context("reading --body")?);
    let chunk = describe(&args.body, &body)?;
    let (leads, samples, digital) = (&chunk.leads, chunk.samples, chunk.digital);
    let http = reqwest::Client::new();
    let token = ecg_client::token(&http, &args.query, "demo", "demo-secret").await?;
    let api = Api::new(http, &args.ingest, &args.query, &token.access_token);
    let counts = Calibration {
        gain: 1000.0,
        baseline: 0,
    };
    let adc = digital.then(|| leads.iter().map(|l| (l.clone(), counts)).collect());
    let ecg = api
        .create_ecg(&CreateEcg {
            device_id: "ingest-load".into(),
            sample_rate_hz: 500.0,
            leads: leads.clone(),
            units: Units::default(),
            started_at: None,
            adc,
            signal: None,
        })
        .await?;
    let url = format!(
        "{}/v1/ecgs/{}/chunks",
        args.ingest.trim_end_matches('/'),
        ecg.id
    );
    println!(
        "{} connections, body {} ({}: {} leads x {} samples = {samples} samples, {} bytes, {}), {} s per rate after {} s warm-up",
        args.connections,
        args.body.display(),
        chunk.content_type,
        leads.len(),
        samples / leads.len() as u64,
        body.len(),
        if digital { "ADC counts" } else { "floats" },
        args.duration,
        args.warmup,
    );
    println!(
        "{:>9} {:>9} {:>11} {:>14} {:>13} {:>8} {:>8} {:>8} {:>8} {:>7} {:>8}",
        "offered/s",
        "req/s",
        "M samples/s",
        "gateway cores",
        "M/gateway-s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "errors",
        "open ms"
    );
    let seq = Arc::new(AtomicU32::new(1));
    // Built once (each loads its TLS roots: milliseconds), kept across rates.
    let connections: Vec<Arc<Connection>> = (0..args.connections)
        .map(|_| {
            Ok(Arc::new(Connection {
                // One client per connection: its own keep-alive socket.
                http: reqwest::Client::builder().http1_only().build()?,
                url: url.clone(),
                token: token.access_token.clone(),
                body: body.clone(),
                content_type: chunk.content_type,
                seq: seq.clone(),
            }))
        })
        .collect::<anyhow::Result<_>>()?;
    for &rate in &args.rates {
        ensure!(rate > 0.0, "rates must be positive");
        let warmup = Duration::from_secs_f64(args.warmup);
        let window = Duration::from_secs_f64(args.duration);
        let row = Arc::new(Mutex::new(Row {
            ok: 0,
            errors: 0,
            latency_us: Histogram::new_with_bounds(1, 60_000_000, 3)?,
        }));
        // Every connection answers one request (opening it the first time;
        // not measured) before the schedule starts, so a storm of connects
        // is not charged to the rate.
        let connecting = Instant::now();
        futures::future::join_all(connections.iter().map(|c| c.send())).await;
        let opened = connecting.elapsed();
        let start = Instant::now() + Duration::from_millis(100);
        let measured = (start + warmup, start + warmup + window);
        let interval = Duration::from_secs_f64(args.connections as f64 / rate);
        let tasks: Vec<_> = connections
            .iter()
            .enumerate()
            .map(|(i, connection)| {
                let first = start + interval.mul_f64(i as f64 / args.connections as f64);
                let (connection, row) = (connection.clone(), row.clone());
                tokio::spawn(async move { connection.run(first, interval, measured, row).await })
            })
            .collect();
        let cpu = tokio::spawn(cpu_over(args.pid, start + warmup, window));
        for task in tasks {
            task.await??;
        }
        let cpu_seconds = cpu.await??;
        let row = row.lock().await;
        let seconds = window.as_secs_f64();
        let sent = row.ok as f64 * samples as f64;
        let h = &row.latency_us;
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1e3;
        println!(
            "{:>9.0} {:>9.0} {:>11.2} {:>14} {:>13} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>7} {:>8.0}",
            rate,
            row.ok as f64 / seconds,
            sent / seconds / 1e6,
            cpu_seconds.map_or("-".into(), |c| format!("{:.2}", c / seconds)),
            cpu_seconds.map_or("-".into(), |c| format!("{:.1}", sent / c / 1e6)),
            ms(0.5),
            ms(0.99),
            ms(0.999),
            h.max() as f64 / 1e3,
            row.errors,
            opened.as_secs_f64() * 1e3,
        );
    }
    Ok(())
}

/// A chunk body in one of the gateway's formats.
struct Chunk {
    content_type: &'static str,
    leads: Vec<String>,
    /// Samples in all leads.
    samples: u64,
    /// Every sample an integer (Arrow integer columns): sent to a digital ECG.
    digital: bool,
}

/// Reads what the body holds, by its file extension: `.arrow` (an Arrow
/// IPC stream), `.json` (`{"samples": {lead: [...]}}`) or `.csv` (a header
/// of lead names, after an optional `time` column).
fn describe(path: &std::path::Path, body: &[u8]) -> anyhow::Result<Chunk> {
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let chunk = match extension {
        "arrow" => {
            let reader = arrow_ipc::reader::StreamReader::try_new(body, None)
                .context("--body is not an Arrow IPC stream")?;
            let schema = reader.schema();
            let leads: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
            let digital = schema.fields().iter().all(|f| f.data_type().is_integer());
            let mut rows = 0u64;
            for batch in reader {
                rows += batch?.num_rows() as u64;
            }
            Chunk {
                content_type: "application/vnd.apache.arrow.stream",
                samples: rows * leads.len() as u64,
                leads,
                digital,
            }
        }
        "json" => {
            let value: serde_json::Value = serde_json::from_slice(body)?;
            let samples = value["samples"].as_object().context("no samples object")?;
            Chunk {
                content_type: "application/json",
                leads: samples.keys().cloned().collect(),
                samples: samples
                    .values()
                    .map(|v| v.as_array().map_or(0, Vec::len) as u64)
                    .sum(),
                digital: false,
            }
        }
        "csv" => {
            let text = std::str::from_utf8(body)?;
            let mut lines = text.lines();
            let header: Vec<String> = lines
                .next()
                .context("empty CSV")?
                .split(',')
                .filter(|h| *h != "time")
                .map(str::to_string)
                .collect();
            Chunk {
                content_type: "text/csv",
                samples: lines.count() as u64 * header.len() as u64,
                leads: header,
                digital: false,
            }
        }
        other => anyhow::bail!("--body must end in .arrow, .json or .csv, not {other:?}"),
    };
    ensure!(chunk.samples > 0, "--body holds no samples");
    Ok(chunk)
}

/// The gateway's CPU seconds (user + system, all threads) over `window`
/// from `from`; `None` without a pid.
async fn cpu_over(
    pid: Option<u32>,
    from: Instant,
    window: Duration,
) -> anyhow::Result<Option<f64>> {
    let Some(pid) = pid else {
        return Ok(None);
    };
    tokio::time::sleep_until(from).await;
    let before = cpu_ticks(pid)?;
    tokio::time::sleep(window).await;
    let after = cpu_ticks(pid)?;
    // USER_HZ is 100 on Linux.
    Ok(Some((after - before) as f64 / 100.0))
}

fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the command (which may hold spaces) in parentheses:
    // state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').context("malformed stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Ok(fields[11].parse::<u64>()? + fields[12].parse::<u64>()?)
}

struct Connection {
    http: reqwest::Client,
    url: String,
    token: String,
    body: bytes::Bytes,
    content_type: &'static str,
    seq: Arc<AtomicU32>,
}

impl Connection {
    /// Posts the body once: true on a 202.
    async fn send(&self) -> bool {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        // A JSON body carries its own seq.
        let url = match self.content_type {
            "application/json" => self.url.clone(),
            _ => format!("{}?seq={seq}", self.url),
        };
        let answer = self
            .http
            .post(url)
            .bearer_auth(&self.token)
            .header("content-type", self.content_type)
            .body(self.body.clone())
            .send()
            .await;
        match answer {
            Ok(r) => r.status().as_u16() == 202 && r.bytes().await.is_ok(),
            Err(_) => false,
        }
    }

    /// Sends on schedule until the measured window ends; records the
    /// requests due inside it.
    async fn run(
        &self,
        first: Instant,
        interval: Duration,
        (from, until): (Instant, Instant),
        row: Arc<Mutex<Row>>,
    ) -> anyhow::Result<()> {
        let mut due = first;
        while due < until {
            tokio::time::sleep_until(due).await;
            let ok = self.send().await;
            if due >= from {
                // From when the request was due, not when it went out.
                let micros = due.elapsed().as_micros() as u64;
                let mut row = row.lock().await;
                if ok {
                    row.ok += 1;
                    row.latency_us.saturating_record(micros.max(1));
                } else {
                    row.errors += 1;
                }
            }
            due += interval;
        }
        Ok(())
    }
}
