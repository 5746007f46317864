//! One isolated deployment for one benchmark run: its own ClickHouse
//! database and topic, and the three services as separate release-built
//! processes (so each one's peak memory is its own), on the shared
//! ClickHouse and broker.

use std::time::Duration;

use anyhow::Context as _;
use ecg_clickhouse::ClickHouseConfig;
use ecg_e2e::process::{ServiceProcess, free_port};

pub struct Deployment {
    pub ingest: ServiceProcess,
    pub query: ServiceProcess,
    pub processors: Vec<ServiceProcess>,
    pub clickhouse: ClickHouseConfig,
    key_file: std::path::PathBuf,
}

/// Each service's peak resident memory over the run, in MB.
#[derive(Debug, Clone, Default)]
pub struct PeakRss {
    pub ingest: f64,
    pub query: f64,
    /// The largest of the processors.
    pub processor: f64,
}

fn var(k: &str, v: impl Into<String>) -> (String, String) {
    (k.to_owned(), v.into())
}

impl Deployment {
    /// Migrates a fresh database, creates a fresh topic (4 partitions, as
    /// the local stack) and starts query-api, ingest and `processors`
    /// processors in one consumer group.
    /// `batch_ms`: the processors' `batch.max_latency_ms`, if not their
    /// default.
    pub async fn start(
        name: &str,
        processors: usize,
        batch_ms: Option<u64>,
    ) -> anyhow::Result<Self> {
        let unique = format!("{name}_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let clickhouse = ClickHouseConfig {
            url: ecg_e2e::clickhouse_url(),
            database: format!("bench_{unique}"),
            ..ClickHouseConfig::default()
        };
        let brokers = ecg_e2e::kafka_brokers();
        let topic = format!("bench.{unique}");
        let group = format!("bench-{unique}");
        ecg_e2e::create_topic(&brokers, &topic, 4).await?;
        ecg_e2e::create_topic(&brokers, &format!("{topic}.dlq"), 1).await?;
        ecg_clickhouse::migrate(&clickhouse)
            .await
            .context("migrating the benchmark database")?;

        let ch = [
            var("ECG_CLICKHOUSE__URL", &clickhouse.url),
            var("ECG_CLICKHOUSE__DATABASE", &clickhouse.database),
        ];
        let log = |service: &str| format!("bench-{unique}-{service}");
        let key_file = std::env::temp_dir().join(format!("ecg-bench-{unique}.pem"));
        let query_port = free_port()?;
        let issuer = format!("http://127.0.0.1:{query_port}");
        let mut env = ch.to_vec();
        env.extend([
            var("ECG_AUTH__ISSUER", &issuer),
            var("ECG_AUTH__KEY_FILE", key_file.to_string_lossy()),
            var("ECG_PIPELINE__BROKERS", &brokers),
            var("ECG_PIPELINE__TOPIC", &topic),
            var("ECG_PIPELINE__GROUP_ID", &group),
            var("RUST_LOG", "warn"),
        ]);
        let query = ServiceProcess::spawn(
            "ecg-query-api",
            "query-api",
            &log("query"),
            query_port,
            &env,
        )
        .await?;

        let mut env = ch.to_vec();
        env.extend([
            var("ECG_KAFKA__BROKERS", &brokers),
            var("ECG_KAFKA__TOPIC", &topic),
            var("ECG_AUTH__ISSUER", &issuer),
            var(
                "ECG_AUTH__JWKS_URL",
                format!("{issuer}/.well-known/jwks.json"),
            ),
            // The whole fleet is one API client: its default budget (1,000
            // requests/s) would measure the quota, not the pipeline.
            var("ECG_RATE_LIMIT__REQUESTS_PER_SECOND", "1000000"),
            var("ECG_RATE_LIMIT__REQUEST_BURST", "1000000"),
            var("RUST_LOG", "warn"),
        ]);
        let ingest =
            ServiceProcess::spawn("ecg-ingest", "ingest", &log("ingest"), free_port()?, &env)
                .await?;

        let mut env = ch.to_vec();
        env.extend([
            var("ECG_KAFKA__BROKERS", &brokers),
            var("ECG_KAFKA__TOPIC", &topic),
            var("ECG_KAFKA__GROUP_ID", &group),
            var("RUST_LOG", "warn"),
        ]);
        env.extend(batch_ms.map(|ms| var("ECG_BATCH__MAX_LATENCY_MS", ms.to_string())));
        let mut running = Vec::new();
        for i in 0..processors {
            let name = log(&format!("processor-{i}"));
            running.push(
                ServiceProcess::spawn("ecg-processor", "processor", &name, free_port()?, &env)
                    .await?,
            );
        }
        Ok(Deployment {
            ingest,
            query,
            processors: running,
            clickhouse,
            key_file,
        })
    }

    pub fn peak_rss(&self) -> anyhow::Result<PeakRss> {
        let mb = |p: &ServiceProcess| p.peak_rss_bytes().map(|b| b as f64 / 1e6);
        let mut processor: f64 = 0.0;
        for p in &self.processors {
            processor = processor.max(mb(p)?);
        }
        Ok(PeakRss {
            ingest: mb(&self.ingest)?,
            query: mb(&self.query)?,
            processor,
        })
    }

    /// Samples written to ClickHouse so far, all leads, by the running
    /// totals of `lead_chunks` (what the insights endpoint reads).
    pub async fn samples_written(&self) -> anyhow::Result<u64> {
        Ok(self
            .clickhouse
            .client()
            .query("SELECT toUInt64(sum(samples)) FROM lead_chunks")
            .fetch_one::<u64>()
            .await?)
    }

    /// Waits until `samples` samples are written; returns when they were,
    /// or an error after `deadline`.
    pub async fn wait_written(&self, samples: u64, deadline: Duration) -> anyhow::Result<()> {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            let written = self.samples_written().await?;
            if written >= samples {
                return Ok(());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < until,
                "only {written} of {samples} samples written after {deadline:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the services and drops the database (its samples would
    /// otherwise pile up run after run).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        for p in &mut self.processors {
            p.stop(Duration::from_secs(10)).await?;
        }
        self.ingest.stop(Duration::from_secs(40)).await?;
        self.query.stop(Duration::from_secs(10)).await?;
        let admin = ClickHouseConfig {
            database: "default".into(),
            ..self.clickhouse.clone()
        };
        admin
            .client()
            .query(&format!(
                "DROP DATABASE IF EXISTS `{}`",
                self.clickhouse.database
            ))
            .execute()
            .await?;
        let _ = std::fs::remove_file(&self.key_file);
        Ok(())
    }
}
