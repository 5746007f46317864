//! The Kafka side: consume, batch, write, then commit.
//!
//! Order of effects for every batch: (1) load the states of ECGs this
//! instance has not seen, (2) build the batch, (3) write it to ClickHouse,
//! retrying with backoff, (4) commit offsets. A crash anywhere before (4)
//! replays the batch's messages; the states rebuilt from ClickHouse then skip
//! whatever (3) already wrote, so nothing is counted twice or lost.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use ecg_schemas::Chunk;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use time::OffsetDateTime;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::{BatchConfig, Config};
use crate::pipeline::{Incoming, Pipeline};
use crate::sink::Sink;
use crate::state::Position;

/// How long a draining shutdown may spend writing the last batch; shorter
/// than the default session timeout so the group is not kept waiting.
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// Records revoked partitions; the loop applies them before it handles the
/// next message (see [`Processor::apply_revocations`]).
struct RebalanceContext {
    revoked: Arc<Mutex<Vec<i32>>>,
}

impl ClientContext for RebalanceContext {}

impl ConsumerContext for RebalanceContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
            tracing::info!(?partitions, "partitions revoked");
            // A poisoned lock only means another thread panicked mid-push;
            // the Vec is still usable.
            self.revoked
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(partitions);
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
            tracing::info!(?partitions, "partitions assigned");
        }
    }
}

/// One processor instance: a group member with its pipeline and sink.
pub struct Processor {
    consumer: StreamConsumer<RebalanceContext>,
    revoked: Arc<Mutex<Vec<i32>>>,
    sink: Sink,
    pipeline: Pipeline,
    topic: String,
    batch: BatchConfig,
    inbox: Vec<Incoming>,
    inbox_samples: usize,
    flush_at: Option<Instant>,
}

impl std::fmt::Debug for Processor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processor")
            .field("topic", &self.topic)
            .field("inbox", &self.inbox.len())
            .field("ecgs", &self.pipeline.ecg_count())
            .finish()
    }
}

impl Processor {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let revoked = Arc::new(Mutex::new(Vec::new()));
        let mut kafka = ClientConfig::new();
        kafka
            .set("bootstrap.servers", &config.kafka.brokers)
            .set("group.id", &config.kafka.group_id)
            .set(
                "session.timeout.ms",
                config.kafka.session_timeout_ms.to_string(),
            )
            // Offsets are committed by us, after ClickHouse has the data.
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest");
        for (k, v) in &config.kafka.properties {
            kafka.set(k, v);
        }
        let consumer: StreamConsumer<RebalanceContext> = kafka
            .create_with_context(RebalanceContext {
                revoked: revoked.clone(),
            })
            .context("creating the Kafka consumer")?;
        consumer
            .subscribe(&[&config.kafka.topic])
            .with_context(|| format!("subscribing to {}", config.kafka.topic))?;
        Ok(Processor {
            consumer,
            revoked,
            sink: Sink::new(config.clickhouse.client(), config.kafka.topic.clone()),
            pipeline: Pipeline::new(config.limits.clone()),
            topic: config.kafka.topic.clone(),
            batch: config.batch.clone(),
            inbox: Vec::new(),
            inbox_samples: 0,
            flush_at: None,
        })
    }

    /// Consumes until `shutdown`, then drains: writes what was consumed and
    /// commits, within [`DRAIN_DEADLINE`].
    pub async fn run(mut self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(topic = %self.topic, "processor consuming");
        loop {
            let flush_at = self.flush_at;
            let flush_due = async move {
                match flush_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = flush_due => self.flush(self.give_up_at()).await?,
                msg = self.consumer.recv() => {
                    let msg = msg.map(|m| decode(&m));
                    self.apply_revocations();
                    match msg {
                        Ok(incoming) => {
                            self.accept(incoming);
                            if self.inbox_samples >= self.batch.max_samples {
                                self.flush(self.give_up_at()).await?;
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "Kafka consume error"),
                    }
                }
            }
        }
        tracing::info!(pending = self.inbox.len(), "draining before shutdown");
        self.apply_revocations();
        self.flush(Instant::now() + DRAIN_DEADLINE).await?;
        self.commit(CommitMode::Sync);
        Ok(())
    }

    fn give_up_at(&self) -> Instant {
        Instant::now() + Duration::from_secs(self.batch.give_up_after_s)
    }

    fn accept(&mut self, incoming: Incoming) {
        if let Ok(c) = &incoming.chunk {
            self.inbox_samples += c.len() * c.header.leads.len();
        }
        self.inbox.push(incoming);
        if self.flush_at.is_none() {
            self.flush_at = Some(Instant::now() + Duration::from_millis(self.batch.max_latency_ms));
        }
    }

    /// Drops everything held for partitions that were revoked: their
    /// messages will be consumed again, from the committed offset, by
    /// whichever instance owns them now. Runs right after `recv` returns, so
    /// a message returned by that `recv` (already from the new assignment) is
    /// kept.
    fn apply_revocations(&mut self) {
        let revoked: Vec<i32> =
            std::mem::take(&mut *self.revoked.lock().unwrap_or_else(|e| e.into_inner()));
        if revoked.is_empty() {
            return;
        }
        self.inbox.retain(|m| !revoked.contains(&m.pos.partition));
        self.pipeline.revoke(&revoked);
    }

    /// Writes everything consumed so far and commits.
    async fn flush(&mut self, give_up: Instant) -> anyhow::Result<()> {
        self.flush_at = None;
        self.inbox_samples = 0;
        let incoming = std::mem::take(&mut self.inbox);
        if incoming.is_empty() {
            return Ok(());
        }
        let messages = incoming.len();
        let unknown = self.pipeline.unknown_keys(&incoming);
        if !unknown.is_empty() {
            let partition_of = |key: &(String, Uuid)| {
                incoming
                    .iter()
                    .find(|m| m.chunk.as_ref().is_ok_and(|c| c.header.ecg_id == key.1))
                    .map_or(0, |m| m.pos.partition)
            };
            let sink = &self.sink;
            let states = retry("load ECG states", &self.batch, give_up, || {
                sink.load_states(&unknown, partition_of)
            })
            .await?;
            self.pipeline.restore(states);
        }
        let batch = self.pipeline.process(incoming, OffsetDateTime::now_utc());
        let sink = &self.sink;
        retry("write batch", &self.batch, give_up, || sink.write(&batch)).await?;
        for f in &batch.failures {
            tracing::warn!(
                partition = f.pos.partition, offset = f.pos.offset, ecg_id = %f.ecg_id,
                seq = ?f.seq, reason = %f.reason, "chunk refused"
            );
        }
        tracing::debug!(
            messages,
            chunks = batch.ready.len(),
            samples = batch.samples(),
            duplicates = batch.duplicates,
            buffered = batch.buffered,
            failed = batch.failures.len(),
            "batch written"
        );
        self.commit(CommitMode::Async);
        Ok(())
    }

    /// Commits what [`Pipeline::committable`] allows. A failed commit only
    /// means more replay after a crash; the next flush commits again.
    fn commit(&self, mode: CommitMode) {
        let mut tpl = TopicPartitionList::new();
        for (partition, offset) in self.pipeline.committable() {
            if let Err(e) = tpl.add_partition_offset(&self.topic, partition, Offset::Offset(offset))
            {
                tracing::warn!(error = %e, partition, "cannot build commit");
            }
        }
        if tpl.count() == 0 {
            return;
        }
        if let Err(e) = self.consumer.commit(&tpl, mode) {
            tracing::warn!(error = %e, "offset commit failed; will retry on the next batch");
        }
    }
}

/// Reads a message as a chunk; a message that is not one keeps its position
/// and reason so it can be recorded as failed.
fn decode(m: &BorrowedMessage<'_>) -> Incoming {
    let pos = Position {
        partition: m.partition(),
        offset: m.offset(),
    };
    let key = m
        .key()
        .and_then(|k| std::str::from_utf8(k).ok())
        .and_then(|k| Uuid::parse_str(k).ok());
    let chunk = match m.payload() {
        None => Err("empty message".to_string()),
        Some(bytes) => Chunk::decode(bytes).map_err(|e| format!("undecodable chunk: {e}")),
    };
    Incoming { pos, key, chunk }
}

/// Runs `op` until it succeeds, backing off exponentially with jitter, or
/// fails once `give_up` has passed. Every failure is logged.
async fn retry<T, E, F, Fut>(
    what: &str,
    config: &BatchConfig,
    give_up: Instant,
    mut op: F,
) -> anyhow::Result<T>
where
    E: std::error::Error + Send + Sync + 'static,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut delay = Duration::from_millis(config.retry_initial_ms);
    let mut attempt = 1u32;
    loop {
        match op().await {
            Ok(v) => {
                if attempt > 1 {
                    tracing::info!(what, attempt, "succeeded after retrying");
                }
                return Ok(v);
            }
            Err(e) if Instant::now() + delay < give_up => {
                tracing::warn!(what, attempt, error = %e, retry_in_ms = delay.as_millis() as u64, "ClickHouse call failed; retrying");
                // Full jitter on the upper half: instances that failed
                // together do not retry together.
                let jittered = delay.mul_f64(0.5 + rand::random::<f64>() * 0.5);
                tokio::time::sleep(jittered).await;
                delay = (delay * 2).min(Duration::from_millis(config.retry_max_ms));
                attempt += 1;
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("{what}: giving up after {attempt} attempts"));
            }
        }
    }
}
