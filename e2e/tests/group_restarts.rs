//! Processing resumes within seconds however the processors are restarted,
//! against the real broker that `make test` and the local stack run (tansu):
//! the sequences a developer runs with `make up`, `make run` and `make down`
//! (a processor replaced while it is still joining the group, killed, stopped,
//! every processor of the group stopped and started again). The processors
//! are configured as `dev/stack.sh` configures its own: static group
//! membership, `kafka.group_instance_id` (processor/README.md, "Group
//! membership").
//!
//! After each step new ECGs go through the gateway until every partition of
//! the topic has received some, and the group's committed offsets must reach
//! the end of every partition within [`RESUME`] of the step's restart: the
//! processors commit only what they have written to ClickHouse, so that is
//! processing resumed on every partition, not only on one. Each step prints
//! how long it took.

use std::time::Duration;

use anyhow::Context as _;
use ecg_e2e::process::{ProcessorEnv, ProcessorProcess};
use ecg_e2e::{Stack, kafka_brokers};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::json;
use tokio::time::Instant;

/// How soon after a restart every partition must be processed again. The
/// broker holds each JoinGroup and SyncGroup of a static member 3 s (tansu
/// 0.6.0), and a restart of two members measured 14 s; dynamic members
/// replacing one that left mid-join got no partitions at all.
const RESUME: Duration = Duration::from_secs(20);

/// How long a SIGTERMed processor may take to drain and exit.
const STOP: Duration = Duration::from_secs(15);

/// The topic's partitions (`Stack` creates 4).
const PARTITIONS: i32 = 4;

/// The test's stack, and how its processors are started.
struct Group {
    stack: Stack,
    token: String,
    env: ProcessorEnv,
    /// Reads the topic's watermarks and the group's committed offsets; never
    /// joins the group.
    offsets: std::sync::Arc<BaseConsumer>,
    /// Processes started so far, to give each log its own name.
    started: usize,
}

impl Group {
    /// A processor with static membership id `<group>-<instance>`, as
    /// `dev/stack.sh` starts `ecg-processor-1`.
    async fn start(&mut self, instance: u32) -> anyhow::Result<ProcessorProcess> {
        let mut env = self.env.clone();
        env.extra.push((
            "ECG_KAFKA__GROUP_INSTANCE_ID".into(),
            format!("{}-{instance}", env.group_id),
        ));
        self.started += 1;
        ProcessorProcess::start(&env, &format!("{}-{instance}", self.started)).await
    }

    /// Per partition: (high watermark, the group's committed offset or -1).
    async fn positions(&self) -> anyhow::Result<Vec<(i64, i64)>> {
        let consumer = self.offsets.clone();
        let topic = self.stack.topic.clone();
        tokio::task::spawn_blocking(move || {
            let timeout = Duration::from_secs(10);
            let mut tpl = TopicPartitionList::new();
            for p in 0..PARTITIONS {
                tpl.add_partition(&topic, p);
            }
            let committed = consumer.committed_offsets(tpl, timeout)?;
            (0..PARTITIONS)
                .map(|p| {
                    let (_, high) = consumer.fetch_watermarks(&topic, p, timeout)?;
                    let at = match committed.find_partition(&topic, p).map(|e| e.offset()) {
                        Some(Offset::Offset(o)) => o,
                        _ => -1,
                    };
                    Ok((high, at))
                })
                .collect()
        })
        .await?
    }

    /// Sends ECGs until every partition has received one since this call,
    /// then waits until the group has committed every partition to its end,
    /// at most until `restarted + RESUME`; returns the time since `restarted`.
    async fn resumes(&self, step: &str, restarted: Instant) -> anyhow::Result<Duration> {
        let before = self.positions().await?;
        let signal: Vec<f64> = (0..500).map(|i| f64::from(i % 7) - 3.0).collect();
        let mut sent = 0;
        let ends = loop {
            self.stack
                .http
                .post(format!("{}/v1/ecgs", self.stack.ingest))
                .bearer_auth(&self.token)
                .json(&json!({"device_id": "restarts", "sample_rate_hz": 500,
                              "leads": ["I"], "signal": {"I": signal}}))
                .send()
                .await?
                .error_for_status()?;
            sent += 1;
            let now = self.positions().await?;
            if now
                .iter()
                .zip(&before)
                .all(|((high, _), (was, _))| high > was)
            {
                break now.into_iter().map(|(high, _)| high).collect::<Vec<_>>();
            }
            // The key (a fresh ECG id) picks the partition: 64 ECGs all
            // missing one of 4 partitions is a chance of 4 * 0.75^64.
            anyhow::ensure!(sent < 64, "{sent} ECGs and a partition got none");
        };
        let deadline = restarted + RESUME;
        loop {
            let now = self.positions().await?;
            if now.iter().zip(&ends).all(|((_, at), end)| at >= end) {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{step}: processing did not resume on every partition within {RESUME:?} of \
                 the restart: (end, committed) per partition {now:?}, ends wanted {ends:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let took = restarted.elapsed();
        eprintln!("{step}: every partition processed again {took:.1?} after the restart");
        Ok(took)
    }
}

/// True while the processor has not yet been assigned partitions.
async fn still_joining(processor: &ProcessorProcess) -> anyhow::Result<bool> {
    Ok(processor
        .metric("ecg_processor_rebalances_total", "kind=\"assign\"")
        .await?
        == 0.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn processing_resumes_within_seconds_after_every_restart_sequence() -> anyhow::Result<()> {
    let stack = Stack::start_without_processor("restarts", &kafka_brokers()).await?;
    let token = stack.token("demo", "demo-secret", None).await?;
    let env = stack.processor_env();
    let offsets = ClientConfig::new()
        .set("bootstrap.servers", &stack.brokers)
        .set("group.id", &env.group_id)
        .set("enable.auto.commit", "false")
        .create()
        .context("creating the offsets reader")?;
    let mut group = Group {
        stack,
        token,
        env,
        offsets: std::sync::Arc::new(offsets),
        started: 0,
    };

    // `make up` (and `make down; make run`: the broker keeps no group).
    let t = Instant::now();
    let mut p = group.start(1).await?;
    group.resumes("first start", t).await?;

    // `make up; make up` within seconds: the second run stops the processor
    // while it is still joining the group and starts another.
    p.stop(STOP).await?;
    let t = Instant::now();
    let mut joining = group.start(1).await?;
    anyhow::ensure!(
        still_joining(&joining).await?,
        "the processor had partitions before it could be stopped mid-join"
    );
    joining.stop(STOP).await?;
    let mut p = group.start(1).await?;
    group
        .resumes("stopped while joining, started again", t)
        .await?;

    // The same, killed (SIGKILL) mid-join.
    p.stop(STOP).await?;
    let t = Instant::now();
    let mut joining = group.start(1).await?;
    anyhow::ensure!(
        still_joining(&joining).await?,
        "the processor had partitions before it could be killed mid-join"
    );
    joining.kill();
    let mut p = group.start(1).await?;
    group
        .resumes("killed while joining, started again", t)
        .await?;

    // `make run` twice: a processor with partitions stopped, a new one started.
    p.stop(STOP).await?;
    let t = Instant::now();
    let mut p = group.start(1).await?;
    group.resumes("stopped, started again", t).await?;

    // A processor killed (kill -9) and started again.
    p.kill();
    let t = Instant::now();
    let p = group.start(1).await?;
    group.resumes("killed, started again", t).await?;

    // Two processors; then every processor stopped and started again, and
    // every processor killed and started again.
    let t = Instant::now();
    let q = group.start(2).await?;
    group.resumes("a second processor joined", t).await?;
    let mut both = [p, q];
    for p in &mut both {
        p.stop(STOP).await?;
    }
    let t = Instant::now();
    let mut both = [group.start(1).await?, group.start(2).await?];
    group.resumes("both stopped, both started again", t).await?;
    for p in &mut both {
        p.kill();
    }
    let t = Instant::now();
    let _both = [group.start(1).await?, group.start(2).await?];
    group.resumes("both killed, both started again", t).await?;

    group.stack.stop().await
}
