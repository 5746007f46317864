//! Processor throughput, alone: a topic pre-filled with chunks of real ECG
//! (Arrow IPC, as the gateway produces them), then one processor started on
//! it, timed until every chunk is in ClickHouse (`lead_chunks` complete and
//! `samples` holding every sample).
//!
//! ```text
//! dev/stack.sh infra-up
//! cargo run --release -p ecg-processor --example throughput -- [samples] [ecgs]
//! ```
//!
//! Defaults: 50,000,000 samples over 20 ECGs of 12 leads at 500 Hz, in
//! messages of 1,000 samples per lead (2 s). `ECG_BATCH__MAX_SAMPLES` and
//! `ECG_BATCH__MAX_LATENCY_MS` tune the processor's batches, `ECG_BENCH_KAFKA`
//! ("name=value,…") adds librdkafka consumer properties. Prints samples
//! per second and the processor's peak RSS growth; drops its topic and
//! database afterwards.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ecg_clickhouse::ClickHouseConfig;
use ecg_schemas::{Chunk, EcgHeader, Signal, Units};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const LEADS: usize = 12;
const PER_MESSAGE: usize = 1_000;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.into())
}

fn real_ecg() -> anyhow::Result<(Vec<String>, Vec<Vec<f64>>)> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/ecg/ecgplot_12lead.json");
    let data: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    let leads: Vec<String> = serde_json::from_value(data["meta"]["leads"].clone())?;
    let signals: BTreeMap<String, Vec<f64>> = serde_json::from_value(data["signals"].clone())?;
    let columns = leads.iter().map(|l| signals[l].clone()).collect();
    Ok((leads, columns))
}

/// CPU seconds (user + system) of process `pid` ("self" for this one).
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// The local ClickHouse server's pid, when `dev/stack.sh` started it.
/// The ClickHouse server's pid: `ECG_BENCH_CLICKHOUSE_PID`, else the local
/// stack's pid file.
fn clickhouse_pid() -> Option<String> {
    if let Ok(pid) = std::env::var("ECG_BENCH_CLICKHOUSE_PID") {
        return Some(pid);
    }
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.local/run/clickhouse.pid");
    Some(std::fs::read_to_string(path).ok()?.trim().to_string())
}

fn vm_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let total: usize = args.next().map_or(Ok(50_000_000), |a| a.parse())?;
    let ecgs: usize = args.next().map_or(Ok(20), |a| a.parse())?;
    let brokers = env_or("ECG_TEST_KAFKA_BROKERS", "127.0.0.1:9092");
    let clickhouse_url = env_or("ECG_TEST_CLICKHOUSE_URL", "http://127.0.0.1:8123");
    let run = Uuid::new_v4().simple().to_string()[..8].to_string();
    let topic = format!("bench.processor.{run}");
    let clickhouse = ClickHouseConfig {
        url: clickhouse_url,
        database: format!("bench_processor_{run}"),
        ..ClickHouseConfig::default()
    };

    let (leads, columns) = real_ecg()?;
    anyhow::ensure!(leads.len() == LEADS, "expected a 12-lead ECG");
    let per_ecg = total / ecgs / LEADS;
    let messages_per_ecg = per_ecg.div_ceil(PER_MESSAGE);

    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()?;
    admin
        .create_topics(
            &[NewTopic::new(&topic, 4, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await?
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|(t, e)| anyhow::anyhow!("creating {t}: {e}"))?;
    ecg_clickhouse::migrate(&clickhouse).await?;

    // Pre-fill, untimed: ECGs interleaved, as devices streaming at once.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("compression.type", "lz4")
        .set("linger.ms", "20")
        .create()?;
    let headers: Vec<EcgHeader> = (0..ecgs)
        .map(|i| EcgHeader {
            ecg_id: Uuid::new_v4(),
            tenant: "bench".into(),
            device_id: format!("bench-{i}"),
            sample_rate_hz: 500.0,
            units: Units::Millivolts,
            started_at: time::OffsetDateTime::now_utc(),
            leads: leads.clone(),
        })
        .collect();
    let filling = Instant::now();
    let mut payload_bytes = 0usize;
    for seq in 0..messages_per_ecg {
        let start = seq * PER_MESSAGE;
        let end = ((seq + 1) * PER_MESSAGE).min(per_ecg);
        let mut sends = Vec::new();
        for (i, header) in headers.iter().enumerate() {
            let samples = columns
                .iter()
                .map(|c| (start..end).map(|k| c[(k + 977 * i) % c.len()]).collect())
                .collect();
            let chunk = Chunk {
                header: header.clone(),
                seq: seq as u32,
                is_final: seq + 1 == messages_per_ecg,
                samples: Signal::from_vecs(samples),
            };
            let bytes = chunk.encode()?;
            payload_bytes += bytes.len();
            let key = header.ecg_id.to_string();
            let producer = producer.clone();
            let topic = topic.clone();
            sends.push(async move {
                producer
                    .send(
                        FutureRecord::to(&topic).key(&key).payload(&bytes),
                        Duration::from_secs(30),
                    )
                    .await
                    .map_err(|(e, _)| e)
            });
        }
        for r in futures::future::join_all(sends).await {
            r?;
        }
    }
    let messages = messages_per_ecg * ecgs;
    let samples = per_ecg * ecgs * LEADS;
    println!(
        "pre-filled {topic}: {messages} messages, {samples} samples, {:.1} MB of Arrow IPC, in {:.1} s",
        payload_bytes as f64 / 1e6,
        filling.elapsed().as_secs_f64()
    );

    let config = ecg_processor::Config {
        clickhouse: clickhouse.clone(),
        kafka: ecg_processor::config::KafkaConfig {
            brokers: brokers.clone(),
            topic: topic.clone(),
            group_id: format!("bench-{run}"),
            // ECG_BENCH_KAFKA="name=value,name=value": librdkafka consumer
            // properties to try (fetch sizes, for example).
            properties: env_or("ECG_BENCH_KAFKA", "")
                .split(',')
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect(),
            ..Default::default()
        },
        batch: ecg_processor::config::BatchConfig {
            max_samples: env_or("ECG_BATCH__MAX_SAMPLES", "1000000").parse()?,
            max_latency_ms: env_or("ECG_BATCH__MAX_LATENCY_MS", "1000").parse()?,
            ..Default::default()
        },
        ..Default::default()
    };
    println!(
        "processor batches: max_samples {}, max_latency_ms {}",
        config.batch.max_samples, config.batch.max_latency_ms
    );
    let rss_before = vm_rss_kb();
    let shutdown = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let ch_pid = clickhouse_pid();
    let cpu_before = (cpu_seconds("self"), ch_pid.as_deref().and_then(cpu_seconds));
    let started = Instant::now();
    let processor = tokio::spawn(ecg_processor::run_with_listener(
        config,
        listener,
        shutdown.clone(),
    ));
    let client = clickhouse.client();
    let want_rows = (messages * LEADS) as u64;
    // The first stored block and the samples stored by then: joining the
    // consumer group is start-up, not throughput, and is reported apart.
    let mut first: Option<(Instant, u64)> = None;
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        anyhow::ensure!(!processor.is_finished(), "the processor stopped early");
        let (rows, stored): (u64, u64) = client
            .query("SELECT count(), sum(samples) FROM blocks")
            .fetch_one()
            .await?;
        if rows > 0 && first.is_none() {
            first = Some((Instant::now(), stored));
        }
        if rows >= want_rows {
            break;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    if let Some((at, stored)) = first {
        let steady = at.elapsed().as_secs_f64();
        println!(
            "first block stored {:.2} s after the start (group join, first fetch, first batch); \
             from then on: {:.2} M samples/s ({} samples in {steady:.2} s)",
            (at - started).as_secs_f64(),
            (samples as u64 - stored) as f64 / steady / 1e6,
            samples as u64 - stored,
        );
    }
    let cpu_after = (cpu_seconds("self"), ch_pid.as_deref().and_then(cpu_seconds));
    shutdown.cancel();
    processor.await??;
    let stored: u64 = client
        .query("SELECT count() FROM samples")
        .fetch_one()
        .await?;
    let parts: u64 = client
        .query(
            "SELECT count() FROM system.parts
             WHERE database = currentDatabase() AND table = 'blocks' AND active",
        )
        .fetch_one()
        .await?;
    let inserts = ecg_runtime::metrics::render()
        .lines()
        .find(|l| l.starts_with("ecg_processor_batch_size_count{unit=\"messages\"}"))
        .and_then(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .unwrap_or(0.0);
    anyhow::ensure!(
        stored == samples as u64,
        "samples holds {stored} rows, expected {samples}"
    );
    println!(
        "processed {samples} samples ({messages} messages) in {elapsed:.2} s: {:.2} M samples/s, {:.0} messages/s; samples rows {stored}; peak RSS {:.0} MB",
        samples as f64 / elapsed / 1e6,
        messages as f64 / elapsed,
        (vm_rss_kb().max(rss_before)) as f64 / 1024.0,
    );
    println!(
        "{inserts} inserts ({:.0} samples each); active parts of samples at the end: {parts}",
        samples as f64 / inserts.max(1.0)
    );
    if let (Some(a), Some(b)) = (cpu_before.0, cpu_after.0) {
        println!(
            "processor CPU: {:.2} s, {:.0} ns per sample ({:.1} M samples per CPU-second)",
            b - a,
            (b - a) * 1e9 / samples as f64,
            samples as f64 / (b - a) / 1e6
        );
    }
    if let (Some(a), Some(b)) = (cpu_before.1, cpu_after.1) {
        println!(
            "ClickHouse server CPU (all threads, merges included): {:.2} s, {:.0} ns per sample",
            b - a,
            (b - a) * 1e9 / samples as f64
        );
    }

    client
        .query(&format!("DROP DATABASE IF EXISTS {}", clickhouse.database))
        .execute()
        .await
        .context("dropping the bench database")?;
    admin.delete_topics(&[&topic], &AdminOptions::new()).await?;
    Ok(())
}
