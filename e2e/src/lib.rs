//! Test harness: the three services started in-process, on ports the OS
//! picks, against the real Kafka-protocol broker and the real ClickHouse that
//! `make test` starts (`ECG_TEST_KAFKA_BROKERS`, `ECG_TEST_CLICKHOUSE_URL`).
//! Each [`Stack`] gets its own topic, consumer group and database, named
//! after the test, so tests run in parallel without seeing each other. A
//! test that needs a ClickHouse of its own (other users) starts a
//! [`clickhouse::PrivateClickHouse`] and [`Stack::start_on_clickhouse`].

pub mod binary;
pub mod broker;
pub mod browser;
pub mod clickhouse;
pub mod nginx;
pub mod process;
pub mod proxy;
pub mod query;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, bail};
use ecg_clickhouse::ClickHouseConfig;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Where the shared servers are.
pub fn clickhouse_url() -> String {
    std::env::var("ECG_TEST_CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:8123".into())
}

pub fn kafka_brokers() -> String {
    std::env::var("ECG_TEST_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// A running ingest + processor + query-api, isolated by name.
#[derive(Debug)]
pub struct Stack {
    pub ingest: String,
    pub query: String,
    pub clickhouse: ClickHouseConfig,
    pub topic: String,
    /// The broker's bootstrap address.
    pub brokers: String,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
    ingest_config: ecg_ingest::Config,
    processor_config: ecg_processor::Config,
    /// The in-process processor, unless the test runs its own processes.
    processor: Option<JoinHandle<anyhow::Result<()>>>,
    _key_dir: TempDir,
}

/// The ClickHouse login of each service of a [`Stack`] (the same server and
/// database as the stack's, other users): [`Stack::start_with_logins`].
#[derive(Debug, Clone)]
pub struct ServiceLogins {
    pub ingest: ClickHouseConfig,
    pub processor: ClickHouseConfig,
    pub query_api: ClickHouseConfig,
}

/// A directory removed on drop.
#[derive(Debug)]
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Stack {
    /// Starts everything for test `name` and waits until all are healthy.
    pub async fn start(name: &str) -> anyhow::Result<Stack> {
        Self::start_with(name, &kafka_brokers(), |_| {}).await
    }

    /// [`Stack::start`] against the broker at `brokers`, with the gateway's
    /// configuration adjusted by `configure` (limits, chunk sizes, timeouts).
    pub async fn start_with(
        name: &str,
        brokers: &str,
        configure: impl FnOnce(&mut ecg_ingest::Config),
    ) -> anyhow::Result<Stack> {
        Self::launch(name, brokers, configure, true).await
    }

    /// The gateway and query API only: the test runs processors itself, as
    /// processes ([`Stack::processor_env`], [`process::ProcessorProcess`]).
    pub async fn start_without_processor(name: &str, brokers: &str) -> anyhow::Result<Stack> {
        Self::launch(name, brokers, |_| {}, false).await
    }

    /// [`Stack::start`] on the ClickHouse and database of `clickhouse` (a
    /// [`clickhouse::PrivateClickHouse`], whose users were written for that
    /// database) instead of a database of its own on the shared one. The
    /// database is created and migrated if needed.
    pub async fn start_on_clickhouse(
        name: &str,
        clickhouse: ClickHouseConfig,
    ) -> anyhow::Result<Stack> {
        Self::launch_on(name, &kafka_brokers(), |_| {}, true, Some(clickhouse)).await
    }

    /// [`Stack::start_on_clickhouse`] with each service connecting as its
    /// own ClickHouse user ([`ServiceLogins`]): the migrations are applied
    /// as `clickhouse` (a user allowed DDL) before any service starts.
    pub async fn start_with_logins(
        name: &str,
        clickhouse: ClickHouseConfig,
        logins: ServiceLogins,
    ) -> anyhow::Result<Stack> {
        Self::launch_as(
            name,
            &kafka_brokers(),
            |_| {},
            true,
            Some(clickhouse),
            Some(logins),
        )
        .await
    }

    /// The gateway and query API on the broker at `brokers` and the
    /// ClickHouse of `clickhouse` (a database of its own on the shared one
    /// when `None`), the processor in process or not: for runs that kill
    /// and restart every piece (the chaos run).
    pub async fn start_on(
        name: &str,
        brokers: &str,
        clickhouse: Option<ClickHouseConfig>,
        in_process_processor: bool,
        configure: impl FnOnce(&mut ecg_ingest::Config),
    ) -> anyhow::Result<Stack> {
        Self::launch_on(name, brokers, configure, in_process_processor, clickhouse).await
    }

    async fn launch(
        name: &str,
        brokers: &str,
        configure: impl FnOnce(&mut ecg_ingest::Config),
        in_process_processor: bool,
    ) -> anyhow::Result<Stack> {
        Self::launch_on(name, brokers, configure, in_process_processor, None).await
    }

    async fn launch_on(
        name: &str,
        brokers: &str,
        configure: impl FnOnce(&mut ecg_ingest::Config),
        in_process_processor: bool,
        clickhouse: Option<ClickHouseConfig>,
    ) -> anyhow::Result<Stack> {
        Self::launch_as(
            name,
            brokers,
            configure,
            in_process_processor,
            clickhouse,
            None,
        )
        .await
    }

    async fn launch_as(
        name: &str,
        brokers: &str,
        configure: impl FnOnce(&mut ecg_ingest::Config),
        in_process_processor: bool,
        clickhouse: Option<ClickHouseConfig>,
        logins: Option<ServiceLogins>,
    ) -> anyhow::Result<Stack> {
        let unique = format!("{name}_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let clickhouse = clickhouse.unwrap_or_else(|| ClickHouseConfig {
            url: clickhouse_url(),
            database: format!("test_{unique}"),
            ..ClickHouseConfig::default()
        });
        let topic = format!("test.{unique}");
        create_topic(brokers, &topic, 4).await?;
        create_topic(brokers, &format!("{topic}.dlq"), 1).await?;
        ecg_clickhouse::migrate(&clickhouse)
            .await
            .with_context(|| {
                format!(
                    "migrating {} at {}; is `make test` running the stack?",
                    clickhouse.database, clickhouse.url
                )
            })?;

        let key_dir = TempDir(std::env::temp_dir().join(format!("ecg-e2e-{unique}")));
        let shutdown = CancellationToken::new();
        let mut tasks = Vec::new();

        let (query_listener, query_addr) = bind().await?;
        let query = format!("http://{query_addr}");
        let mut qc = ecg_query_api::Config::default();
        qc.http.addr = query_addr;
        qc.clickhouse = logins
            .as_ref()
            .map_or_else(|| clickhouse.clone(), |l| l.query_api.clone());
        qc.auth.issuer = query.clone();
        qc.auth.key_file = key_dir.0.join("signing-key.pem");
        qc.pipeline.brokers = brokers.to_string();
        qc.pipeline.topic = topic.clone();
        qc.pipeline.group_id = format!("test-{unique}");
        tasks.push(tokio::spawn(ecg_query_api::run_with_listener(
            qc,
            query_listener,
            shutdown.clone(),
        )));

        let (ingest_listener, ingest_addr) = bind().await?;
        let mut ic = ecg_ingest::Config::default();
        ic.http.addr = ingest_addr;
        ic.clickhouse = logins
            .as_ref()
            .map_or_else(|| clickhouse.clone(), |l| l.ingest.clone());
        ic.kafka.brokers = brokers.to_string();
        ic.kafka.topic = topic.clone();
        ic.auth.issuer = query.clone();
        ic.auth.jwks_url = format!("{query}/.well-known/jwks.json");
        configure(&mut ic);
        tasks.push(tokio::spawn(ecg_ingest::run_with_listener(
            ic.clone(),
            ingest_listener,
            shutdown.clone(),
        )));

        let pc = ecg_processor::Config {
            clickhouse: logins
                .as_ref()
                .map_or_else(|| clickhouse.clone(), |l| l.processor.clone()),
            kafka: ecg_processor::config::KafkaConfig {
                brokers: brokers.to_string(),
                topic: topic.clone(),
                group_id: format!("test-{unique}"),
                ..Default::default()
            },
            ..Default::default()
        };
        let (processor, processor_addr) = if in_process_processor {
            let (task, addr) = spawn_processor(&pc, &shutdown).await?;
            (Some(task), Some(format!("http://{addr}")))
        } else {
            (None, None)
        };

        let stack = Stack {
            ingest: format!("http://{ingest_addr}"),
            query,
            clickhouse,
            topic,
            brokers: brokers.to_string(),
            http: reqwest::Client::new(),
            shutdown,
            tasks,
            ingest_config: ic,
            processor_config: pc,
            processor,
            _key_dir: key_dir,
        };
        for base in [
            Some(&stack.query),
            Some(&stack.ingest),
            processor_addr.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            stack.wait_healthy(base).await?;
        }
        Ok(stack)
    }

    /// Starts one more gateway, configured like the first (same topic,
    /// database and issuer), and returns its base URL: clients may send one
    /// ECG's chunks through several gateways.
    pub async fn add_gateway(&mut self) -> anyhow::Result<String> {
        let (listener, addr) = bind().await?;
        let mut config = self.ingest_config.clone();
        config.http.addr = addr;
        self.tasks.push(tokio::spawn(ecg_ingest::run_with_listener(
            config,
            listener,
            self.shutdown.clone(),
        )));
        let base = format!("http://{addr}");
        self.wait_healthy(&base).await?;
        Ok(base)
    }

    /// How a processor process joins this stack: same topic, consumer group
    /// and database as the in-process one.
    pub fn processor_env(&self) -> process::ProcessorEnv {
        process::ProcessorEnv {
            brokers: self.brokers.clone(),
            topic: self.topic.clone(),
            group_id: self.processor_config.kafka.group_id.clone(),
            clickhouse_url: self.clickhouse.url.clone(),
            database: self.clickhouse.database.clone(),
            extra: Vec::new(),
        }
    }

    async fn wait_healthy(&self, base: &str) -> anyhow::Result<()> {
        let url = format!("{base}/healthz");
        wait_for(Duration::from_secs(30), &url, || async {
            if let Some(t) = self
                .tasks
                .iter()
                .chain(self.processor.as_ref())
                .find(|t| t.is_finished())
            {
                bail!("a service stopped during start-up: {t:?}");
            }
            Ok(self
                .http
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success()))
        })
        .await
    }

    /// Kills the processor without letting it drain (no final write, no
    /// commit: like SIGKILL) and starts a new one in the same consumer group.
    pub async fn crash_and_restart_processor(&mut self) -> anyhow::Result<()> {
        self.crash_processor().await?;
        self.start_processor().await
    }

    /// Kills the in-process processor without letting it drain (like
    /// SIGKILL): messages produced from now on wait in the topic until
    /// [`Stack::start_processor`], which then reads them in few batches.
    pub async fn crash_processor(&mut self) -> anyhow::Result<()> {
        let old = self
            .processor
            .take()
            .context("this stack has no in-process processor")?;
        old.abort();
        let _ = old.await;
        Ok(())
    }

    /// Starts an in-process processor in the stack's consumer group.
    pub async fn start_processor(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.processor.is_none(), "a processor is already running");
        let (processor, addr) = spawn_processor(&self.processor_config, &self.shutdown).await?;
        self.processor = Some(processor);
        self.wait_healthy(&format!("http://{addr}")).await
    }

    /// True while the in-process processor runs: it has not exited (with an
    /// error) nor panicked since it was started.
    pub fn processor_running(&self) -> bool {
        self.processor.as_ref().is_some_and(|p| !p.is_finished())
    }

    /// A bearer token for a client, via the OAuth2 client-credentials grant.
    pub async fn token(
        &self,
        client: &str,
        secret: &str,
        scope: Option<&str>,
    ) -> anyhow::Result<String> {
        let mut body =
            format!("grant_type=client_credentials&client_id={client}&client_secret={secret}");
        if let Some(s) = scope {
            body.push_str(&format!("&scope={}", s.replace(' ', "+")));
        }
        let response = self
            .http
            .post(format!("{}/oauth/token", self.query))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await?;
        let status = response.status();
        let json: serde_json::Value = response.json().await?;
        if !status.is_success() {
            bail!("token request failed: {status} {json}");
        }
        Ok(json["access_token"]
            .as_str()
            .context("no access_token")?
            .to_string())
    }

    /// Runs a scalar ClickHouse query in this stack's database.
    pub async fn count(&self, sql: &str, id: uuid::Uuid) -> anyhow::Result<u64> {
        Ok(self
            .clickhouse
            .client()
            .query(sql)
            .bind(id.to_string())
            .fetch_one::<u64>()
            .await?)
    }

    /// The ECG's insights once its status is `complete`, waiting at most
    /// `deadline`; an error as soon as it is `failed`.
    pub async fn insights_when_complete(
        &self,
        token: &str,
        id: uuid::Uuid,
        deadline: Duration,
    ) -> anyhow::Result<serde_json::Value> {
        let get = |path: String| async move {
            let r = self
                .http
                .get(format!("{}{path}", self.query))
                .bearer_auth(token)
                .send()
                .await?;
            let status = r.status();
            let body: serde_json::Value = r.json().await?;
            anyhow::ensure!(status.is_success(), "{path} answered {status}: {body}");
            anyhow::Ok(body)
        };
        wait_for(deadline, "the ECG to complete", || async {
            let status = get(format!("/v1/ecgs/{id}")).await?;
            anyhow::ensure!(status["status"] != "failed", "ECG failed: {status}");
            Ok(status["status"] == "complete")
        })
        .await?;
        get(format!("/v1/ecgs/{id}/insights")).await
    }

    /// Asserts that `insights` and table `samples` hold exactly the physical
    /// signal `columns` (one per lead of `leads`): each lead's crossings equal
    /// one pass over it, and every sample is stored once.
    pub async fn assert_exact(
        &self,
        insights: &serde_json::Value,
        id: uuid::Uuid,
        leads: &[String],
        columns: &[&[f64]],
    ) -> anyhow::Result<()> {
        let n = columns[0].len();
        for (lead, values) in leads.iter().zip(columns) {
            let expected = ecg_signal::LeadSummary::of(values);
            assert_eq!(
                insights["leads"][lead]["zero_crossings"], expected.crossings,
                "lead {lead}"
            );
            assert_eq!(insights["leads"][lead]["samples"], n, "lead {lead}");
        }
        let rows = self
            .count("SELECT count() FROM samples WHERE ecg_id = ?", id)
            .await?;
        assert_eq!(rows, (n * leads.len()) as u64, "every sample once");
        self.assert_one_row_per_chunk(id).await
    }

    /// Asserts that every (lead, seq) of ECG `id` has exactly one stored
    /// row, placed or waiting, with plain SQL (no `FINAL`), and that the
    /// placed chunks are gapless from 0.
    pub async fn assert_one_row_per_chunk(&self, id: uuid::Uuid) -> anyhow::Result<()> {
        let (chunks, not_once, gaps): (u64, u64, u64) = self
            .clickhouse
            .client()
            .query(
                "SELECT count(), countIf(rows != 1), countIf(placed AND seq >= placed_chunks)
                 FROM (
                     SELECT lead, seq, sum(n) AS rows, max(is_placed) AS placed
                     FROM (
                         SELECT lead, seq, count() AS n, true AS is_placed FROM blocks
                         WHERE ecg_id = ? GROUP BY lead, seq
                         UNION ALL
                         SELECT lead, seq, count() AS n, false AS is_placed FROM waiting_blocks
                         WHERE ecg_id = ?
                           AND (lead, seq) NOT IN (SELECT lead, seq FROM blocks WHERE ecg_id = ?)
                         GROUP BY lead, seq
                     )
                     GROUP BY lead, seq
                 ) AS c
                 CROSS JOIN (SELECT toUInt32(uniqExact(seq)) AS placed_chunks FROM blocks WHERE ecg_id = ?) AS p",
            )
            .bind(id.to_string())
            .bind(id.to_string())
            .bind(id.to_string())
            .bind(id.to_string())
            .fetch_one()
            .await?;
        anyhow::ensure!(chunks > 0, "ECG {id} has no stored chunk");
        anyhow::ensure!(
            not_once == 0,
            "ECG {id}: {not_once} of {chunks} (lead, seq) pairs are not stored exactly once"
        );
        anyhow::ensure!(gaps == 0, "ECG {id}: placed chunks are not gapless from 0");
        Ok(())
    }

    /// Asserts that column `value` of table `samples` returns, for every
    /// sample of ECG `id`, the very `f64` that was sent (bit for bit: `-0.0`
    /// stays `-0.0`), whatever form the sample is stored in.
    pub async fn assert_values_bit_identical(
        &self,
        id: uuid::Uuid,
        leads: &[String],
        columns: &[&[f64]],
    ) -> anyhow::Result<()> {
        let n: usize = columns.iter().map(|c| c.len()).sum();
        // `complete` is read from lead_chunks, whose view can run before the
        // samples view of the same insert has committed: wait for the rows.
        wait_for(
            Duration::from_secs(10),
            "every sample in samples",
            || async {
                Ok(self
                    .count("SELECT count() FROM samples WHERE ecg_id = ?", id)
                    .await?
                    >= n as u64)
            },
        )
        .await?;
        let rows: Vec<(String, u64, u64)> = self
            .clickhouse
            .client()
            .query(
                "SELECT lead, assumeNotNull(sample_index), reinterpretAsUInt64(value) FROM samples
                 WHERE ecg_id = ? AND placed ORDER BY lead, sample_index",
            )
            .bind(id.to_string())
            .fetch_all()
            .await?;
        assert_eq!(rows.len(), n, "every sample once");
        for (lead, sample_index, bits) in rows {
            let l = leads
                .iter()
                .position(|x| *x == lead)
                .context("unknown lead")?;
            let sent = columns[l][usize::try_from(sample_index)?];
            assert_eq!(
                bits,
                sent.to_bits(),
                "lead {lead} sample {sample_index}: sent {sent:?}, read {:?}",
                f64::from_bits(bits)
            );
        }
        Ok(())
    }

    /// Produces `payload` (an encoded chunk) straight to this stack's topic,
    /// keyed by ECG `key`, past the gateway's checks: how tests make the
    /// processor meet messages no gateway sends.
    pub async fn produce_direct(&self, key: &str, payload: &[u8]) -> anyhow::Result<()> {
        use rdkafka::producer::{FutureProducer, FutureRecord};
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .create()?;
        producer
            .send(
                FutureRecord::to(&self.topic).key(key).payload(payload),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)?;
        Ok(())
    }

    /// Makes the processor refuse chunk `seq` of `tenant`'s ECG `id`: a chunk
    /// with a NaN sample, produced past the gateway (which would answer
    /// 422). The ECG turns `failed` (the chunk is missing) until it
    /// completes.
    pub async fn send_refused_chunk(
        &self,
        tenant: &str,
        id: uuid::Uuid,
        seq: u32,
    ) -> anyhow::Result<()> {
        use ecg_schemas::{Chunk, EcgHeader, Signal, Units};
        let chunk = Chunk {
            header: EcgHeader {
                ecg_id: id,
                tenant: tenant.into(),
                device_id: "rogue".into(),
                sample_rate_hz: 500.0,
                units: Units::Millivolts,
                started_at: time::OffsetDateTime::UNIX_EPOCH,
                leads: vec!["I".into()],
            },
            seq,
            is_final: false,
            samples: Signal::from_vecs(vec![vec![f64::NAN]]),
        };
        self.produce_direct(&id.to_string(), &chunk.encode()?).await
    }

    /// Messages in this stack's topic, from its partitions' watermarks.
    pub async fn messages_in_topic(&self) -> anyhow::Result<i64> {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let topic = self.topic.clone();
        let brokers = self.brokers.clone();
        tokio::task::spawn_blocking(move || {
            let consumer: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", brokers)
                .create()?;
            let metadata = consumer.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
            let mut total = 0;
            for p in metadata.topics()[0].partitions() {
                let (low, high) =
                    consumer.fetch_watermarks(&topic, p.id(), Duration::from_secs(10))?;
                total += high - low;
            }
            Ok(total)
        })
        .await?
    }

    /// Stops the services (draining) and reports any that failed.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        for t in self.tasks.into_iter().chain(self.processor) {
            t.await??;
        }
        Ok(())
    }
}

async fn spawn_processor(
    config: &ecg_processor::Config,
    shutdown: &CancellationToken,
) -> anyhow::Result<(JoinHandle<anyhow::Result<()>>, SocketAddr)> {
    let (listener, addr) = bind().await?;
    let mut config = config.clone();
    config.http.addr = addr;
    let task = tokio::spawn(ecg_processor::run_with_listener(
        config,
        listener,
        shutdown.clone(),
    ));
    Ok((task, addr))
}

async fn bind() -> anyhow::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// Creates a topic through the Kafka admin API.
pub async fn create_topic(brokers: &str, topic: &str, partitions: i32) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .context("creating the Kafka admin client")?;
    let results = admin
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .with_context(|| format!("creating topic {topic}; is the broker at {brokers} up?"))?;
    for r in results {
        r.map_err(|(t, e)| anyhow::anyhow!("creating topic {t}: {e}"))?;
    }
    Ok(())
}

/// Polls `check` until it returns true, failing after `deadline`.
pub async fn wait_for<F, Fut>(deadline: Duration, what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if check().await? {
            return Ok(());
        }
        if tokio::time::Instant::now() > until {
            bail!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
