//! The chaos run (`make chaos`): a fleet of simulated devices (ecg-sim,
//! real time, 10-second chunks) streams through the gateway while the
//! processor is killed (SIGKILL) and restarted again and again, ClickHouse
//! is killed and started again, and so is the broker, whose log lives in S3
//! (a local moto server, `ecg_e2e::broker`), so a broker restart is a fault
//! to survive and not data loss by design. Afterwards, every ECG must be
//! complete and exact:
//! - every chunk that got a 202 is stored exactly once (one row per ECG,
//!   lead and seq in `blocks`, gapless; no `FINAL`);
//! - every lead's samples and zero crossings equal what its device sent
//!   (ecg-sim's verification), and its beats equal one pass of the
//!   detector over the signal its device generated (regenerated here from
//!   the device's seed).
//!
//! Every piece runs on this machine: ClickHouse (`PrivateClickHouse`, chdb
//! on its own ports and data), the durable broker, the processor as a
//! separate process, the gateway and query API in this process (they are not
//! killed; the gateway answers 503 while a dependency is down, and ecg-sim
//! retries as a client must).
//!
//! ```sh
//! make chaos    # = cargo run --release -p ecg-e2e --example chaos (after dev/stack.sh install)
//! cargo run --release -p ecg-e2e --example chaos -- --devices 20 --duration 120   # a short one
//! ```

use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use clap::Parser;
use ecg_clickhouse::ClickHouseConfig;
use ecg_e2e::Stack;
use ecg_e2e::broker::DurableBroker;
use ecg_e2e::clickhouse::PrivateClickHouse;
use ecg_e2e::process::ServiceProcess;
use ecg_signal::{Adc, Analytic, BeatDetector};
use ecg_sim::synth::{GAIN, Shape, Synth};
use serde_json::Value;

#[derive(Debug, Parser)]
#[command(
    about = "Stream a fleet through processor, ClickHouse and broker crashes; check every ECG"
)]
struct Args {
    /// Simulated devices, one ECG each.
    #[arg(long, default_value_t = 100)]
    devices: usize,
    /// Seconds of signal each device streams, in real time.
    #[arg(long, default_value_t = 600.0)]
    duration: f64,
    /// Leads per device.
    #[arg(long, default_value_t = 3)]
    leads: usize,
    /// Samples per second per lead.
    #[arg(long, default_value_t = 250.0)]
    rate: f64,
    /// Milliseconds of signal per chunk. The local durable broker (tansu
    /// storing each produced batch as an object in a local S3 emulator)
    /// lists those objects on every fetch, so its reads slow down as they
    /// pile up: 100 devices sending 1-second chunks (60,000 objects in 10
    /// minutes) outran it, and so did 5-second chunks (12,000) once the
    /// machine was busy: a limit of this stand-in that a Kafka cluster on
    /// disks does not have. 10-second chunks send the same samples as 6,000.
    #[arg(long, default_value_t = 10000)]
    chunk_ms: u64,
    /// Processor kills (SIGKILL, restarted 1 s later).
    #[arg(long, default_value_t = 10)]
    processor_kills: usize,
    /// ClickHouse kills (SIGKILL, started again after --outage).
    #[arg(long, default_value_t = 3)]
    clickhouse_kills: usize,
    /// Broker kills (SIGKILL, started again after --outage).
    #[arg(long, default_value_t = 3)]
    broker_kills: usize,
    /// Seconds ClickHouse and the broker stay down.
    #[arg(long, default_value_t = 5.0)]
    outage: f64,
    /// Produce with Kafka's idempotence, the gateway's default for Apache
    /// Kafka. Off by default here: tansu 0.6, the local broker, lost an
    /// acknowledged record of an idempotent producer in a SIGKILL (see
    /// BENCHMARKS.md, "Chaos run"), and nothing of the pipeline needs it
    /// (the processor stores each (ECG, lead, seq) once whatever the broker
    /// does).
    #[arg(long)]
    idempotent: bool,
    /// Seed of the devices' signals (device i uses seed + i).
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Processor,
    ClickHouse,
    Broker,
}

/// When each fault strikes, seconds after the fleet's start: each kind
/// evenly over the stream, the kinds offset from one another so no two
/// strike at once.
fn schedule(args: &Args, ramp_up: f64) -> Vec<(f64, Fault)> {
    let mut faults = Vec::new();
    let mut spread = |n: usize, offset: f64, fault: Fault| {
        for k in 0..n {
            let at = ramp_up + args.duration * (k as f64 + offset) / n as f64;
            faults.push((at, fault));
        }
    };
    spread(args.processor_kills, 0.5, Fault::Processor);
    spread(args.clickhouse_kills, 0.3, Fault::ClickHouse);
    spread(args.broker_kills, 0.7, Fault::Broker);
    faults.sort_by(|a, b| a.0.total_cmp(&b.0));
    faults
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "error,tower_http=off,rdkafka=off,librdkafka=off".into()),
        )
        .init();
    let args = Args::parse();
    let ramp_up = 10.0;

    let mut clickhouse =
        PrivateClickHouse::start("chaos", &ecg_clickhouse::access::users_xml("ecg", &[])?).await?;
    let mut broker = DurableBroker::start("chaos").await?;
    let stack = Stack::start_on(
        "chaos",
        &broker.brokers,
        Some(ClickHouseConfig {
            url: clickhouse.url.clone(),
            database: "ecg".into(),
            ..ClickHouseConfig::default()
        }),
        false,
        |c| {
            if !args.idempotent {
                c.kafka.properties = [("enable.idempotence", "false")].into();
            }
        },
    )
    .await?;
    let env = stack.processor_env();
    let mut processor = ServiceProcess::start(&env, "chaos").await?;
    println!(
        "chaos: {} devices x {} leads at {} Hz for {} s; ClickHouse {}, broker {}",
        args.devices, args.leads, args.rate, args.duration, clickhouse.url, broker.brokers
    );

    let sim = ecg_sim::Config::try_parse_from([
        "ecg-sim".to_owned(),
        format!("--ingest={}", stack.ingest),
        format!("--query={}", stack.query),
        format!("--devices={}", args.devices),
        format!("--leads={}", args.leads),
        format!("--rate={}", args.rate),
        format!("--duration={}", args.duration),
        format!("--chunk-ms={}", args.chunk_ms),
        format!("--ramp-up={ramp_up}"),
        format!("--seed={}", args.seed),
        // Retry through any outage: a chunk that never gets its 202 would
        // leave its ECG incomplete, which the check below reports.
        "--max-retries=100000".to_owned(),
        "--verify".to_owned(),
        "--verify-timeout=1800".to_owned(),
        "--progress=30".to_owned(),
    ])?;
    let shape = Shape {
        heart_rate_bpm: sim.heart_rate,
        noise_mv: sim.noise_mv,
        wander_mv: sim.wander_mv,
    };
    let began = Instant::now();
    // The faults, on schedule, while the fleet streams (one task: ecg-sim's
    // future is not `Send`).
    let faults = async {
        let mut log = Vec::new();
        for (at, fault) in schedule(&args, ramp_up) {
            let wait = Duration::from_secs_f64(at).saturating_sub(began.elapsed());
            tokio::time::sleep(wait).await;
            let struck = began.elapsed().as_secs_f64();
            let down = Instant::now();
            match fault {
                Fault::Processor => {
                    processor.kill();
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    processor = ServiceProcess::start(&env, "chaos").await?;
                }
                Fault::ClickHouse => {
                    clickhouse.kill();
                    tokio::time::sleep(Duration::from_secs_f64(args.outage)).await;
                    clickhouse.restart().await?;
                }
                Fault::Broker => {
                    broker.kill();
                    tokio::time::sleep(Duration::from_secs_f64(args.outage)).await;
                    broker.restart().await?;
                }
            }
            let seconds_down = down.elapsed().as_secs_f64();
            println!("  t={struck:6.1} s  {fault:?} killed, back after {seconds_down:.1} s");
            log.push((struck, fault, seconds_down));
        }
        anyhow::Ok((log, began.elapsed()))
    };
    let (report, faults) = tokio::join!(ecg_sim::run(sim), faults);
    let (log, last_fault) = faults?;
    let report = report?;
    let converged = began.elapsed().saturating_sub(last_fault);

    // Beyond ecg-sim's checks: one row per chunk, and exact beats.
    let ids: Vec<(uuid::Uuid, String)> = stack
        .clickhouse
        .client()
        .query(
            "SELECT DISTINCT toString(ecg_id), device_id FROM ecgs WHERE tenant = 'demo' ORDER BY device_id",
        )
        .fetch_all::<(String, String)>()
        .await
        .context("listing the ECGs")?
        .into_iter()
        .map(|(id, device)| Ok((id.parse()?, device)))
        .collect::<anyhow::Result<_>>()?;
    ensure!(
        ids.len() == args.devices,
        "{} ECGs for {} devices",
        ids.len(),
        args.devices
    );
    let token = stack.token("demo", "demo-secret", None).await?;
    // As ecg-sim cuts the signal.
    let chunk_samples = ((args.rate * args.chunk_ms as f64 / 1000.0).round() as usize).max(1);
    let chunks = ((args.duration * 1000.0 / args.chunk_ms as f64).round() as usize).max(1);
    let mut beat_mismatches = Vec::new();
    let mut beats_total = 0usize;
    for (id, device) in &ids {
        stack
            .assert_one_row_per_chunk(*id)
            .await
            .with_context(|| format!("ECG {id} of {device}"))?;
        let i: u64 = device.trim_start_matches("sim-").parse()?;
        let mut synth = Synth::new(shape, args.rate, args.leads, args.seed.wrapping_add(i));
        let mut detectors = (0..args.leads)
            .map(|_| BeatDetector::new(args.rate))
            .collect::<Result<Vec<_>, _>>()?;
        let mut expected = vec![Vec::new(); args.leads];
        let adc = Adc::new(0, GAIN)?;
        for _ in 0..chunks {
            let block = synth.next_block(chunk_samples);
            for ((d, out), counts) in detectors.iter_mut().zip(&mut expected).zip(&block) {
                d.push_digital(counts, adc, out);
            }
        }
        for (d, out) in detectors.iter_mut().zip(&mut expected) {
            d.finish(out);
        }
        let insights: Value = stack
            .http
            .get(format!("{}/v1/ecgs/{id}/insights", stack.query))
            .bearer_auth(&token)
            .send()
            .await?
            .json()
            .await?;
        for (lead, want) in Synth::lead_names(args.leads).iter().zip(&expected) {
            beats_total += want.len();
            let got = insights["leads"][lead]["beats"].as_u64();
            if got != Some(want.len() as u64) {
                beat_mismatches.push(format!(
                    "{device} lead {lead}: {got:?} beats stored, {} in one pass",
                    want.len()
                ));
            }
        }
    }
    let not_placed_twice: i64 = stack
        .clickhouse
        .client()
        .query("SELECT count() - uniqExact(ecg_id, lead, seq) FROM blocks WHERE tenant = 'demo'")
        .fetch_one()
        .await?;

    println!("\nchaos run: {} s of streaming", args.duration);
    println!("| fault | times | down (s, each) |");
    println!("|---|---:|---|");
    for kind in [Fault::Processor, Fault::ClickHouse, Fault::Broker] {
        let downs: Vec<String> = log
            .iter()
            .filter(|(_, f, _)| *f == kind)
            .map(|(_, _, s)| format!("{s:.1}"))
            .collect();
        println!("| {kind:?} | {} | {} |", downs.len(), downs.join(", "));
    }
    let verification = report.verification.as_ref();
    println!(
        "chunks accepted: {}, retries: {}, failed requests by status: {:?}; chunk latency p99 {:.1} ms",
        report.chunks_accepted, report.retries, report.errors, report.chunk_latency.p99_ms
    );
    println!(
        "ECGs: {} checked, {} exact (samples, zero crossings); {} incomplete; beats: {} of {} leads exact ({beats_total} beats); duplicate rows: {not_placed_twice}; all complete {:.0} s after the last fault",
        verification.map_or(0, |v| v.checked),
        verification.map_or(0, |v| v.matched),
        verification.map_or(0, |v| v.incomplete),
        ids.len() * args.leads - beat_mismatches.len(),
        ids.len() * args.leads,
        converged.as_secs_f64(),
    );
    for m in beat_mismatches.iter().take(10) {
        println!("  {m}");
    }
    if let Some(v) = verification {
        for m in v.mismatches.iter().take(10) {
            println!("  {m}");
        }
    }
    drop(processor);
    stack.stop().await?;
    ensure!(
        verification.is_some_and(|v| v.passed())
            && beat_mismatches.is_empty()
            && not_placed_twice == 0,
        "the chaos run found lost, doubled or inexact data (see above)"
    );
    println!("PASSED: every accepted chunk stored once, every insight exact");
    Ok(())
}
