//! `ecg-sim`: a fleet of simulated ECG wearables against ecg-stream.
//!
//! Each of N devices opens an ECG (`POST /v1/ecgs`, ADC counts with gain and
//! baseline) and streams it chunk by chunk (`POST /v1/ecgs/{id}/chunks`,
//! JSON), devices starting one after another over the ramp-up. The signal is
//! synthetic (deterministic by seed; see [`synth`]) or replayed from WFDB or
//! EDF files. The run prints progress, then a report: chunks and samples
//! accepted, errors by status, latency percentiles from HDR histograms, and,
//! with `--verify`, whether every ECG's insights equal what its device sent.
//!
//! Latency and coordinated omission: in real time each device has a
//! schedule (chunk k is due at start + k × chunk duration). A device that
//! is behind its schedule measures a chunk's latency from when it was DUE,
//! not from when it was sent: a stalled gateway that delays a device's
//! later chunks is charged for that wait (the intended-start-time
//! correction, so no `record_correct` is needed). A device on schedule
//! builds the chunk beforehand and measures from when it wakes to send it,
//! so the simulator's own timer and CPU are not charged to the gateway.
//! Retries of 429/503 count in the latency. As fast as possible there is no
//! schedule, and latency is the closed-loop time from first send to 202.
//!
//! Why not goose: goose (Locust-like) runs each user as a loop of
//! transactions with its own metrics per request name and its own
//! coordinated-omission mitigation based on a user's average cadence. A
//! device here is a stateful schedule (one ECG, seqs in order, the last one
//! final, a running crossing summary per lead), and verification needs every
//! device's summaries back after the run; in goose that state would live in
//! per-user session data and be fished out of it, and the chunk/sample
//! counts and per-status errors would be reported beside goose's own. A
//! tokio task per device with shared counters and hdrhistogram is shorter
//! than that adaptation and keeps the report to what this system needs.
//!
//! Modules: [`synth`] (the generator), [`device`] (one device's run),
//! [`stats`] (counters and histograms), [`verify`] (insights checked),
//! [`report`] (the final report).

pub mod device;
pub mod report;
pub mod stats;
pub mod synth;
pub mod verify;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use clap::{Parser, ValueEnum};
use ecg_client::Api;
use ecg_schemas::Calibration;
use tokio::time::Instant;

use crate::device::{Plan, Signal};
use crate::report::Report;
use crate::stats::Stats;
use crate::synth::{GAIN, Shape, Synth};

/// How fast devices send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Pace {
    /// Each chunk when its samples would have been recorded.
    RealTime,
    /// Each chunk as soon as the previous one is accepted.
    Fast,
}

#[derive(Debug, Clone, Parser)]
#[command(
    name = "ecg-sim",
    version,
    args_override_self = true,
    about = "Simulate a fleet of ECG wearables streaming to ecg-stream"
)]
pub struct Config {
    /// The gateway (ingest) base URL.
    #[arg(long, env = "ECG_INGEST_URL", default_value = "http://127.0.0.1:8080")]
    pub ingest: String,
    /// The query API base URL (tokens, status, insights).
    #[arg(long, env = "ECG_QUERY_URL", default_value = "http://127.0.0.1:8081")]
    pub query: String,
    #[arg(long, env = "ECG_SIM_CLIENT_ID", default_value = "demo")]
    pub client_id: String,
    #[arg(
        long,
        env = "ECG_SIM_CLIENT_SECRET",
        default_value = "demo-secret",
        hide_default_value = true
    )]
    pub client_secret: String,
    /// Number of devices.
    #[arg(long, default_value_t = 200)]
    pub devices: usize,
    /// Leads per device (synthetic signal).
    #[arg(long, default_value_t = 12)]
    pub leads: usize,
    /// Samples per second per lead (synthetic signal).
    #[arg(long, default_value_t = 500.0)]
    pub rate: f64,
    /// Seconds of signal each device sends.
    #[arg(long, default_value_t = 30.0)]
    pub duration: f64,
    /// Milliseconds of signal per chunk.
    #[arg(long, default_value_t = 1000)]
    pub chunk_ms: u64,
    /// Seconds over which devices start, evenly spread.
    #[arg(long, default_value_t = 10.0)]
    pub ramp_up: f64,
    #[arg(long, value_enum, default_value = "real-time")]
    pub pace: Pace,
    /// Seed of the synthetic signals (device i uses seed + i).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Mean heart rate of the synthetic signal.
    #[arg(long, default_value_t = 72.0)]
    pub heart_rate: f64,
    /// White noise, standard deviation in mV.
    #[arg(long, default_value_t = 0.02)]
    pub noise_mv: f64,
    /// Baseline wander amplitude in mV.
    #[arg(long, default_value_t = 0.15)]
    pub wander_mv: f64,
    /// Replay these WFDB (.hea) or EDF files instead (device i replays file
    /// i mod n, from an offset of its own); --leads and --rate then come
    /// from the files.
    #[arg(long)]
    pub replay: Vec<PathBuf>,
    /// Retries of a request answered 429/503 or not at all.
    #[arg(long, default_value_t = 8)]
    pub max_retries: u32,
    /// Check every ECG's insights at the end.
    #[arg(long)]
    pub verify: bool,
    /// Seconds to wait for the ECGs to complete when verifying.
    #[arg(long, default_value_t = 120.0)]
    pub verify_timeout: f64,
    /// Seconds between progress lines (0: none).
    #[arg(long, default_value_t = 5.0)]
    pub progress: f64,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub report_json: Option<PathBuf>,
}

/// A replayed file, decoded once and shared by its devices.
struct Replay {
    leads: Vec<String>,
    rate: f64,
    calibration: Vec<Calibration>,
    counts: Arc<Vec<Vec<i32>>>,
}

fn load_replays(paths: &[PathBuf]) -> anyhow::Result<Vec<Replay>> {
    paths
        .iter()
        .map(|p| {
            let mut reader = ecg_formats::open_file(p, &[])
                .with_context(|| format!("opening {}", p.display()))?;
            let counts = ecg_formats::read_all(reader.as_mut())
                .with_context(|| format!("reading {}", p.display()))?;
            ensure!(!counts[0].is_empty(), "{} holds no samples", p.display());
            let r = reader.recording();
            Ok(Replay {
                leads: r.leads.clone(),
                rate: r.sample_rate_hz,
                calibration: r.calibration.clone(),
                counts: Arc::new(counts),
            })
        })
        .collect()
}

/// Runs the fleet and returns (and prints) its report.
pub async fn run(config: Config) -> anyhow::Result<Report> {
    ensure!(config.devices > 0, "--devices must be at least 1");
    ensure!(
        config.chunk_ms > 0 && config.duration > 0.0,
        "--chunk-ms and --duration must be positive"
    );
    let replays = load_replays(&config.replay)?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(config.devices)
        .build()?;
    let token = ecg_client::token(
        &http,
        &config.query,
        &config.client_id,
        &config.client_secret,
    )
    .await
    .with_context(|| format!("getting a token from {}", config.query))?;
    if token.expires_in as f64 <= config.ramp_up + config.duration + config.verify_timeout {
        bail!(
            "the token lasts {} s, shorter than the run",
            token.expires_in
        );
    }
    let api = Api::new(http, &config.ingest, &config.query, &token.access_token);
    let stats = Arc::new(Stats::default());
    let chunk_duration = Duration::from_millis(config.chunk_ms);
    let shape = Shape {
        heart_rate_bpm: config.heart_rate,
        noise_mv: config.noise_mv,
        wander_mv: config.wander_mv,
    };

    let began = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut planned_samples = 0u64;
    for i in 0..config.devices {
        let (leads, rate, calibration, signal) = match replays.get(i % replays.len().max(1)) {
            Some(r) => {
                let position = (i * 7919 * r.rate as usize) % r.counts[0].len();
                (
                    r.leads.clone(),
                    r.rate,
                    r.calibration.clone(),
                    Signal::Replay {
                        counts: r.counts.clone(),
                        position,
                    },
                )
            }
            None => (
                Synth::lead_names(config.leads),
                config.rate,
                vec![
                    Calibration {
                        gain: GAIN,
                        baseline: 0
                    };
                    config.leads
                ],
                Signal::Synthetic(Box::new(Synth::new(
                    shape,
                    config.rate,
                    config.leads,
                    config.seed.wrapping_add(i as u64),
                ))),
            ),
        };
        let chunk_samples = ((rate * config.chunk_ms as f64 / 1000.0).round() as usize).max(1);
        let chunks = ((config.duration * 1000.0 / config.chunk_ms as f64).round() as u32).max(1);
        planned_samples += u64::from(chunks) * (chunk_samples * leads.len()) as u64;
        let plan = Plan {
            device_id: format!("sim-{i:05}"),
            leads,
            sample_rate_hz: rate,
            calibration,
            signal,
            chunks,
            chunk_samples,
            chunk_duration,
            start: began
                + Duration::from_secs_f64(config.ramp_up * i as f64 / config.devices as f64),
            real_time: config.pace == Pace::RealTime,
            max_retries: config.max_retries,
        };
        let (api, stats) = (api.clone(), stats.clone());
        tasks.spawn(async move { device::run(&api, plan, &stats).await });
    }

    let progress = (config.progress > 0.0).then(|| {
        let stats = stats.clone();
        let every = Duration::from_secs_f64(config.progress);
        let devices = config.devices;
        tokio::spawn(async move {
            let mut last = (0u64, began);
            loop {
                tokio::time::sleep(every).await;
                last = report::progress_line(&stats, devices, began, last);
            }
        })
    });
    let mut sent = Vec::with_capacity(config.devices);
    while let Some(done) = tasks.join_next().await {
        if let Some(s) = done.context("a device task panicked")? {
            sent.push(s);
        }
    }
    let sending = began.elapsed();
    if let Some(p) = progress {
        p.abort();
    }
    let verification = if config.verify {
        eprintln!(
            "verifying {} ECGs ...",
            sent.iter().filter(|s| s.complete).count()
        );
        Some(verify::verify(&api, &sent, Duration::from_secs_f64(config.verify_timeout)).await)
    } else {
        None
    };
    let report = Report::new(&config, &stats, sending, planned_samples, verification);
    println!("{report}");
    if let Some(path) = &config.report_json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report)
}
