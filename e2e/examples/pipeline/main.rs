//! The end-to-end pipeline benchmark (`make bench`): gateway → Kafka →
//! processor → ClickHouse → insights, every component on this machine, the
//! three services as separate release-built processes on the shared
//! ClickHouse and broker (`dev/stack.sh with-infra`).
//!
//! Parts (all by default):
//! - `scale`: a fleet of simulated 12-lead 500 Hz devices (ecg-sim, real
//!   time) at each device count and processor count: accepted and processed
//!   samples/s, ingest latency, insight freshness, peak memory per service.
//! - `sustained`: the largest fleet of a ladder that keeps ingest p99 under
//!   20 ms, freshness p99 under 2 s, no errors, and the processor caught up
//!   within 2 s of the last chunk, in every one of `--repeat` runs.
//! - `holter`: a 24-hour 12-lead 500 Hz recording uploaded in one streamed
//!   `PUT .../signal` (CSV) and processed to `complete`: wall time and peak
//!   memory per service.
//!
//! ```sh
//! cargo build --release --bins && cargo build --release -p ecg-ingest --example holter_csv
//! dev/stack.sh with-infra cargo run --release -p ecg-e2e --example pipeline -- --help
//! ```

mod deployment;
mod probe;

use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use deployment::{Deployment, PeakRss};
use ecg_client::Api;
use ecg_schemas::Status;
use probe::Freshness;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, PartialEq, ValueEnum)]
enum Part {
    Scale,
    Sustained,
    Holter,
}

#[derive(Debug, Parser)]
#[command(about = "End-to-end pipeline benchmark; prints a table per part")]
struct Args {
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "scale,sustained,holter"
    )]
    parts: Vec<Part>,
    /// Device counts of the scale part.
    #[arg(long, value_delimiter = ',', default_value = "1,10,100,1000")]
    devices: Vec<usize>,
    /// Processor counts of the scale part.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    processors: Vec<usize>,
    /// Seconds of signal each device streams (after a ramp-up of a third).
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    /// Fleet sizes the sustained part tries, in order, until one fails.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "10,25,40,50,75,100,150,200,300,400,600,830"
    )]
    ladder: Vec<usize>,
    /// Runs per fleet size in the sustained part: a size meets the targets
    /// only if every run does (a p99 from one short run is too noisy to
    /// trust alone).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Processors of the sustained part.
    #[arg(long, default_value_t = 1)]
    sustained_processors: usize,
    /// The processors' `batch.max_latency_ms` (default: theirs, 300 ms):
    /// longer batches mean fewer, larger ClickHouse inserts.
    #[arg(long)]
    batch_ms: Option<u64>,
    /// Hours of the Holter recording.
    #[arg(long, default_value_t = 24.0)]
    holter_hours: f64,
}

/// A 12-lead 500 Hz device's samples per second, all leads.
const DEVICE_RATE: f64 = 6000.0;

/// One fleet run.
#[derive(Debug, Clone)]
struct FleetRow {
    devices: usize,
    processors: usize,
    accepted_per_s: f64,
    processed_per_s: f64,
    ingest_p50_ms: f64,
    ingest_p99_ms: f64,
    errors: u64,
    fresh: Freshness,
    /// From the fleet's last chunk until everything was written.
    drain_s: f64,
    rss: PeakRss,
}

impl FleetRow {
    fn meets_targets(&self) -> bool {
        self.errors == 0
            && self.ingest_p99_ms < 20.0
            && self.fresh.p99_ms < 2000.0
            && self.fresh.beat_p99_ms < 2000.0
            && self.drain_s < 2.0
    }

    fn print_header() {
        println!(
            "| devices | processors | offered M/s | accepted M/s | processed M/s | ingest p50 / p99 ms | fresh p50 / p99 / max ms | beat fresh p50 / p99 / max ms (beats) | drain s | errors | RSS MB ingest / processor / query |"
        );
        println!("|---:|---:|---:|---:|---:|---|---|---|---:|---:|---|");
    }

    fn print(&self) {
        println!(
            "| {} | {} | {:.3} | {:.3} | {:.3} | {:.1} / {:.1} | {:.0} / {:.0} / {:.0} | {:.0} / {:.0} / {:.0} ({}) | {:.1} | {} | {:.0} / {:.0} / {:.0} |",
            self.devices,
            self.processors,
            self.devices as f64 * DEVICE_RATE / 1e6,
            self.accepted_per_s / 1e6,
            self.processed_per_s / 1e6,
            self.ingest_p50_ms,
            self.ingest_p99_ms,
            self.fresh.p50_ms,
            self.fresh.p99_ms,
            self.fresh.max_ms,
            self.fresh.beat_p50_ms,
            self.fresh.beat_p99_ms,
            self.fresh.beat_max_ms,
            self.fresh.beats,
            self.drain_s,
            self.errors,
            self.rss.ingest,
            self.rss.processor,
            self.rss.query,
        );
    }
}

async fn api_for(deployment: &Deployment) -> anyhow::Result<Api> {
    let http = reqwest::Client::new();
    let token = ecg_client::token(&http, &deployment.query.http, "demo", "demo-secret").await?;
    Ok(Api::new(
        http,
        &deployment.ingest.http,
        &deployment.query.http,
        &token.access_token,
    ))
}

/// `devices` simulated devices streaming in real time for `duration` s
/// (plus a ramp-up of a third of it), with the freshness probe beside them.
async fn fleet(
    devices: usize,
    processors: usize,
    duration: f64,
    batch_ms: Option<u64>,
) -> anyhow::Result<FleetRow> {
    let name = format!("fleet{devices}x{processors}");
    let deployment = Deployment::start(&name, processors, batch_ms).await?;
    let api = api_for(&deployment).await?;
    let warm = probe::Probe::warm_up(api.clone()).await?;
    let stop = CancellationToken::new();
    let probe = tokio::spawn(probe::run(warm, Duration::from_millis(500), stop.clone()));
    let began = Instant::now();
    let args = [
        "ecg-sim".to_string(),
        format!("--ingest={}", deployment.ingest.http),
        format!("--query={}", deployment.query.http),
        format!("--devices={devices}"),
        format!("--duration={duration}"),
        format!("--ramp-up={}", duration / 3.0),
        "--progress=0".into(),
    ];
    let report = ecg_sim::run(ecg_sim::Config::parse_from(args)).await?;
    let sent = Instant::now();
    stop.cancel();
    let fresh = probe.await??;
    // Chunk 0 (the warm-up) and one chunk per recorded latency.
    let probe_samples = (fresh.chunks + 1) * probe::Probe::CHUNK_SAMPLES;
    deployment
        .wait_written(
            report.samples_accepted + probe_samples,
            Duration::from_secs(900),
        )
        .await?;
    let row = FleetRow {
        devices,
        processors,
        accepted_per_s: report.samples_per_second,
        processed_per_s: (report.samples_accepted + probe_samples) as f64
            / began.elapsed().as_secs_f64(),
        ingest_p50_ms: report.chunk_latency.p50_ms,
        ingest_p99_ms: report.chunk_latency.p99_ms,
        errors: report.errors.values().sum(),
        fresh,
        drain_s: sent.elapsed().as_secs_f64(),
        rss: deployment.peak_rss()?,
    };
    deployment.stop().await?;
    Ok(row)
}

/// The whole-recording upload, processed to `complete`.
async fn holter(hours: f64, batch_ms: Option<u64>) -> anyhow::Result<()> {
    let generator = std::env::current_exe()?.with_file_name("holter_csv");
    anyhow::ensure!(
        generator.is_file(),
        "{} is missing: cargo build --release -p ecg-ingest --example holter_csv",
        generator.display()
    );
    let deployment = Deployment::start("holter", 1, batch_ms).await?;
    let api = api_for(&deployment).await?;
    let ecg_id = probe::open_ecg(&api, "bench-holter").await?;
    let mut child = tokio::process::Command::new(&generator)
        .arg(hours.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("starting holter_csv")?;
    let stdout = child.stdout.take().context("holter_csv has no stdout")?;
    let body =
        reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(stdout, 1 << 20));
    let began = Instant::now();
    let accepted = api.put_signal_csv(ecg_id, body).await?;
    let uploaded = began.elapsed();
    child.wait().await?;
    loop {
        let status = api.status(ecg_id).await?;
        if status.status == Status::Complete {
            break;
        }
        anyhow::ensure!(
            status.status != Status::Failed && began.elapsed() < Duration::from_secs(3600),
            "the Holter ECG is {:?} after {:?}",
            status.status,
            began.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let processed = began.elapsed();
    let insights = api.insights(ecg_id).await?;
    let samples: u64 = insights.leads.values().map(|l| l.samples).sum();
    let rss = deployment.peak_rss()?;
    println!(
        "| hours | samples | chunks | upload s | processed (complete) s | M samples/s end to end | RSS MB ingest / processor / query |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---|");
    println!(
        "| {hours} | {samples} | {} | {:.1} | {:.1} | {:.2} | {:.0} / {:.0} / {:.0} |",
        accepted.chunks,
        uploaded.as_secs_f64(),
        processed.as_secs_f64(),
        samples as f64 / processed.as_secs_f64() / 1e6,
        rss.ingest,
        rss.processor,
        rss.query,
    );
    deployment.stop().await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    if args.parts.contains(&Part::Scale) {
        println!(
            "\n## scale: {} s of signal per device, real time\n",
            args.duration
        );
        let mut rows = Vec::new();
        for &p in &args.processors {
            for &d in &args.devices {
                rows.push(fleet(d, p, args.duration, args.batch_ms).await?);
            }
        }
        FleetRow::print_header();
        rows.iter().for_each(FleetRow::print);
    }
    if args.parts.contains(&Part::Sustained) {
        println!(
            "\n## sustained: ingest p99 < 20 ms, freshness p99 < 2 s (samples and beats), caught up within 2 s ({} processor(s))\n",
            args.sustained_processors
        );
        let mut rows = Vec::new();
        let runs = args.repeat.max(1);
        let mut best = None;
        'ladder: for &d in &args.ladder {
            for _ in 0..runs {
                let row = fleet(d, args.sustained_processors, args.duration, args.batch_ms).await?;
                let ok = row.meets_targets();
                rows.push(row);
                if !ok {
                    break 'ladder;
                }
            }
            best = Some(d);
        }
        FleetRow::print_header();
        rows.iter().for_each(FleetRow::print);
        match best {
            Some(devices) => {
                let sum: f64 = rows
                    .iter()
                    .filter(|r| r.devices == devices)
                    .map(|r| r.accepted_per_s)
                    .sum();
                println!(
                    "\nsustained: {devices} devices, every one of {runs} runs within the targets, {:.3} M samples/s accepted and processed (mean)",
                    sum / runs as f64 / 1e6
                );
            }
            None => println!("\nsustained: no fleet of the ladder met the targets"),
        }
    }
    if args.parts.contains(&Part::Holter) {
        println!(
            "\n## holter: {} h, 12 leads, 500 Hz, one streamed CSV upload\n",
            args.holter_hours
        );
        holter(args.holter_hours, args.batch_ms).await?;
    }
    Ok(())
}
