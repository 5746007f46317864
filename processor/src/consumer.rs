//! The Kafka side: consume, batch, write, then commit.
//!
//! Order of effects for every batch: (1) load the states of ECGs this
//! instance has not seen, (2) build the batch, (3) write it to ClickHouse and
//! dead-letter what was refused, retrying with backoff, (4) commit offsets. A
//! crash anywhere before (4) replays the batch's messages; the states rebuilt
//! from ClickHouse then skip whatever (3) already wrote, so nothing is
//! counted twice or lost.
//!
//! When partitions are revoked (a rebalance, or shutdown) the instance first
//! writes and commits what it consumed from them, within
//! `kafka.revoke_deadline_ms`, so the next owner starts where it stopped
//! instead of replaying.

use std::collections::HashSet;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use ecg_runtime::kafka::{self, Role};
use ecg_schemas::Chunk;
use futures::FutureExt as _;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use time::OffsetDateTime;
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::{BatchConfig, Config};
use crate::dlq::DeadLetters;
use crate::pipeline::{
    Batch, EcgKey, Failure, FailureKind, Incoming, Original, Pipeline, panic_message, read_chunk,
};
use crate::sink::{self, Sink};
use crate::state::{Position, Ready};
use ecg_clickhouse::blocks;

/// One processor instance: a group member with its pipeline and sink.
pub struct Processor {
    consumer: StreamConsumer<GroupContext>,
    core: Arc<Mutex<Core>>,
    /// False once `run` has returned or the instance is being dropped: a
    /// revocation then has nothing to flush (see [`GroupContext`]).
    live: Arc<AtomicBool>,
    topic: String,
    give_up_after: Duration,
    revoke_deadline: Duration,
}

impl std::fmt::Debug for Processor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processor")
            .field("topic", &self.topic)
            .finish()
    }
}

impl Drop for Processor {
    fn drop(&mut self) {
        // Runs before the consumer is closed: closing revokes the partitions,
        // and a dropped (aborted) instance must not try to flush then.
        self.live.store(false, Ordering::SeqCst);
    }
}

/// Everything a flush needs, shared between the consume loop and the
/// rebalance callback (which runs inside `recv`, never during a flush).
struct Core {
    sink: Sink,
    dead_letters: DeadLetters,
    pipeline: Pipeline,
    batch: BatchConfig,
    inbox: Vec<Incoming>,
    inbox_samples: usize,
    flush_at: Option<Instant>,
}

/// librdkafka callbacks: rebalances and statistics.
struct GroupContext {
    core: Arc<Mutex<Core>>,
    live: Arc<AtomicBool>,
    topic: String,
    revoke_deadline: Duration,
}

impl ClientContext for GroupContext {
    fn stats(&self, statistics: Statistics) {
        let Some(topic) = statistics.topics.get(&self.topic) else {
            return;
        };
        for (partition, p) in &topic.partitions {
            // -1: not consumed by this instance, or not known yet.
            if *partition >= 0 && p.consumer_lag >= 0 {
                metrics::gauge!(crate::metrics::CONSUMER_LAG, "partition" => partition.to_string())
                    .set(p.consumer_lag as f64);
            }
        }
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else {
            return;
        };
        let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
        metrics::counter!(crate::metrics::REBALANCES, "kind" => "revoke").increment(1);
        for p in &partitions {
            metrics::gauge!(crate::metrics::CONSUMER_LAG, "partition" => p.to_string()).set(0.0);
        }
        tracing::info!(
            ?partitions,
            "partitions revoked: writing and committing what was consumed from them"
        );
        // This callback runs inside `recv`, on a runtime worker thread; the
        // loop holds the core only while flushing, never during `recv`.
        let Ok(mut core) = self.core.try_lock() else {
            tracing::warn!("revocation during a flush; the new owner replays from the last commit");
            return;
        };
        let can_block =
            Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread);
        if self.live.load(Ordering::SeqCst) && can_block {
            let deadline = Instant::now() + self.revoke_deadline;
            let flushed = tokio::task::block_in_place(|| {
                Handle::current().block_on(async {
                    tokio::time::timeout_at(deadline, core.flush(deadline)).await
                })
            });
            match flushed {
                Ok(Ok(())) => core.commit(consumer, &self.topic, CommitMode::Sync),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "could not write before letting go; the new owner replays")
                }
                Err(_) => tracing::warn!("revocation deadline passed; the new owner replays"),
            }
        }
        core.revoke(&partitions);
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
            metrics::counter!(crate::metrics::REBALANCES, "kind" => "assign").increment(1);
            tracing::info!(?partitions, "partitions assigned");
        }
    }
}

impl Processor {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let core = Arc::new(Mutex::new(Core {
            sink: Sink::new(config.clickhouse.client(), config.kafka.topic.clone()),
            dead_letters: DeadLetters::new(&config.kafka)
                .context("creating the dead-letter producer")?,
            pipeline: Pipeline::new(config.limits.clone()),
            batch: config.batch.clone(),
            inbox: Vec::new(),
            inbox_samples: 0,
            flush_at: None,
        }));
        let live = Arc::new(AtomicBool::new(false));
        let (session, statistics) = (
            config.kafka.session_timeout_ms.to_string(),
            config.kafka.statistics_interval_ms.to_string(),
        );
        let fetch = (16 << 20).to_string();
        let mut defaults = vec![
            ("group.id", config.kafka.group_id.as_str()),
            ("session.timeout.ms", &session),
            ("statistics.interval.ms", &statistics),
            // Offsets are committed by us, after ClickHouse has the data.
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            // One recording is one partition: a 24-hour upload is thousands
            // of ~200 KB messages behind one key. librdkafka's default of 1 MB
            // per partition per fetch held such a backlog to one fetch round
            // trip per 5 messages (about 20 MB/s here); 16 MB lets a batch
            // come in one or two fetches. The pre-fetch queue stays bounded
            // by `queued.max.messages.kbytes` (64 MB by default).
            ("max.partition.fetch.bytes", &fetch),
        ];
        if !config.kafka.group_instance_id.is_empty() {
            defaults.push(("group.instance.id", &config.kafka.group_instance_id));
        }
        let kafka = kafka::client_config(
            &config.kafka.brokers,
            Role::Consumer,
            &defaults,
            &config.kafka.properties,
        );
        let consumer: StreamConsumer<GroupContext> = kafka
            .create_with_context(GroupContext {
                core: core.clone(),
                live: live.clone(),
                topic: config.kafka.topic.clone(),
                revoke_deadline: Duration::from_millis(config.kafka.revoke_deadline_ms),
            })
            .context("creating the Kafka consumer")?;
        consumer
            .subscribe(&[&config.kafka.topic])
            .with_context(|| format!("subscribing to {}", config.kafka.topic))?;
        Ok(Processor {
            consumer,
            core,
            live,
            topic: config.kafka.topic.clone(),
            give_up_after: Duration::from_secs(config.batch.give_up_after_s),
            revoke_deadline: Duration::from_millis(config.kafka.revoke_deadline_ms),
        })
    }

    /// Consumes until `shutdown`, then drains: writes what was consumed and
    /// commits, within the revocation deadline.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        self.live.store(true, Ordering::SeqCst);
        let dead_letter_topic = self.core.lock().await.dead_letters.topic().to_string();
        tracing::info!(topic = %self.topic, %dead_letter_topic, "processor consuming");
        let result = self.consume(&shutdown).await;
        let mut core = self.core.lock().await;
        if result.is_ok() {
            tracing::info!(pending = core.inbox.len(), "draining before shutdown");
            core.flush(Instant::now() + self.revoke_deadline).await?;
            core.commit(&self.consumer, &self.topic, CommitMode::Sync);
        }
        self.live.store(false, Ordering::SeqCst);
        result
    }

    async fn consume(&self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        loop {
            let flush_at = self.core.lock().await.flush_at;
            let flush_due = async move {
                match flush_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return Ok(()),
                _ = flush_due => self.flush().await?,
                msg = self.consumer.recv() => match msg {
                    Ok(m) => {
                        let incoming = decode(&m);
                        let full = self.core.lock().await.accept(incoming);
                        if full {
                            self.flush().await?;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "Kafka consume error"),
                },
            }
        }
    }

    /// Writes everything consumed so far, then commits.
    async fn flush(&self) -> anyhow::Result<()> {
        let mut core = self.core.lock().await;
        core.flush(Instant::now() + self.give_up_after).await?;
        core.commit(&self.consumer, &self.topic, CommitMode::Async);
        Ok(())
    }
}

impl Core {
    /// Takes a consumed message; true when the batch is full.
    fn accept(&mut self, incoming: Incoming) -> bool {
        if let Ok(c) = &incoming.chunk {
            self.inbox_samples += c.len() * c.header.leads.len();
        }
        self.inbox.push(incoming);
        if self.flush_at.is_none() {
            self.flush_at = Some(Instant::now() + Duration::from_millis(self.batch.max_latency_ms));
        }
        self.inbox_samples >= self.batch.max_samples
    }

    /// Forgets what is held for partitions this instance no longer owns.
    fn revoke(&mut self, partitions: &[i32]) {
        self.inbox
            .retain(|m| !partitions.contains(&m.pos.partition));
        self.pipeline.revoke(partitions);
        self.gauges();
    }

    /// Writes everything consumed so far (not yet committed), and what the
    /// previous batch put back.
    async fn flush(&mut self, give_up: Instant) -> anyhow::Result<()> {
        self.flush_at = None;
        self.inbox_samples = 0;
        let mut incoming = self.pipeline.take_deferred();
        incoming.append(&mut self.inbox);
        if incoming.is_empty() && !self.pipeline.is_placing() {
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
            let states = retry("load_states", &self.batch, give_up, || {
                sink.load_states(&unknown, partition_of)
            })
            .await?;
            self.pipeline.restore(states);
        }
        let mut batch = self.pipeline.process(incoming, OffsetDateTime::now_utc());
        let now = batch.processed_at.unwrap_or_else(OffsetDateTime::now_utc);
        let started = std::time::Instant::now();
        let unowned: Vec<Uuid> = batch
            .failures
            .iter()
            .filter(|f| f.tenant.is_empty() && !f.ecg_id.is_nil())
            .map(|f| f.ecg_id)
            .collect();
        if !unowned.is_empty() {
            let sink = &self.sink;
            let owners = retry("load_states", &self.batch, give_up, || {
                sink.owners(&unowned)
            })
            .await?;
            for f in batch.failures.iter_mut().filter(|f| f.tenant.is_empty()) {
                if let Some(tenant) = owners.get(&f.ecg_id) {
                    f.tenant.clone_from(tenant);
                }
            }
        }
        self.read_back_parked(&mut batch, give_up).await?;
        self.pipeline.finish(&mut batch);
        self.write_chunks(&mut batch, blocks::PLACED, now, give_up)
            .await?;
        self.write_chunks(&mut batch, blocks::WAITING, now, give_up)
            .await?;
        for key in &batch.unparked {
            let Some(p) = batch
                .progress
                .iter()
                .find(|p| (&p.tenant, p.ecg_id) == (&key.0, key.1))
            else {
                continue;
            };
            let (sink, placed) = (&self.sink, p.next_seq);
            retry("delete_parked", &self.batch, give_up, || {
                sink.delete_parked(key, placed)
            })
            .await?;
        }
        for (key, seq) in &batch.unplaceable {
            let (sink, seq) = (&self.sink, *seq);
            retry("delete_parked", &self.batch, give_up, || {
                sink.delete_parked_seq(key, seq)
            })
            .await?;
        }
        self.check_resent(&mut batch, give_up).await?;
        let sink = &self.sink;
        retry("write_failures", &self.batch, give_up, || {
            sink.write_failures(&batch.failures, now)
        })
        .await?;
        retry("write_progress", &self.batch, give_up, || {
            sink.write_progress(&batch.progress)
        })
        .await?;
        if !batch.failures.is_empty() {
            let dead_letters = &self.dead_letters;
            retry("dead_letter", &self.batch, give_up, || {
                dead_letters.send(&batch.failures, now)
            })
            .await?;
            metrics::counter!(crate::metrics::DEAD_LETTERED).increment(batch.failures.len() as u64);
        }
        metrics::histogram!(crate::metrics::INSERT_DURATION)
            .record(started.elapsed().as_secs_f64());
        for f in &batch.failures {
            tracing::warn!(
                partition = f.pos.partition, offset = f.pos.offset, ecg_id = %f.ecg_id,
                seq = ?f.seq, kind = f.kind.as_str(), reason = %f.reason,
                "chunk refused and dead-lettered"
            );
        }
        let samples = batch.samples();
        let placed_rows: usize = batch.ready.iter().map(|r| r.leads.len()).sum();
        let parked_rows: usize = batch.parked.iter().map(|r| r.leads.len()).sum();
        let outcomes = [
            ("written", batch.ready.len()),
            ("duplicate", batch.duplicates),
            ("parked", batch.parked.len()),
            ("failed", batch.failures.len()),
        ];
        for (outcome, n) in outcomes {
            metrics::counter!(crate::metrics::MESSAGES, "outcome" => outcome).increment(n as u64);
        }
        metrics::counter!(crate::metrics::SAMPLES_WRITTEN).increment(samples as u64);
        for (table, rows) in [
            (blocks::PLACED, placed_rows),
            (blocks::WAITING, parked_rows),
            ("failed_chunks", batch.failures.len()),
            ("ecg_progress", batch.progress.len()),
        ] {
            metrics::counter!(crate::metrics::ROWS_INSERTED, "table" => table)
                .increment(rows as u64);
        }
        metrics::histogram!(crate::metrics::BATCH_SIZE, "unit" => "messages")
            .record(messages as f64);
        metrics::histogram!(crate::metrics::BATCH_SIZE, "unit" => "samples").record(samples as f64);
        self.gauges();
        tracing::debug!(
            messages,
            chunks = batch.ready.len(),
            samples,
            duplicates = batch.duplicates,
            parked = batch.parked.len(),
            failed = batch.failures.len(),
            "batch written"
        );
        Ok(())
    }

    /// Reads back and places the parked chunks whose gap this batch filled,
    /// pages of at most `batch.max_samples` samples (or one chunk), until
    /// about `batch.max_samples` samples are read: the placed chunks join the
    /// batch and are written with it, so memory stays bounded by the batch
    /// size, however long the run after a gap. What is left is placed by the
    /// next batches, due at once.
    async fn read_back_parked(
        &mut self,
        batch: &mut Batch,
        give_up: Instant,
    ) -> anyhow::Result<()> {
        let budget = self.batch.max_samples as u64;
        let mut read = 0u64;
        loop {
            let requests = self.pipeline.placeable(batch, budget);
            if requests.is_empty() {
                return Ok(());
            }
            if read >= budget {
                // This batch holds enough: the next one goes on (at once).
                for (key, _, _) in requests {
                    self.pipeline.continue_placing(key);
                }
                self.flush_at = Some(Instant::now());
                return Ok(());
            }
            let mut progressed = false;
            for (key, from, to) in requests {
                let sink = &self.sink;
                let chunks = retry("read_parked", &self.batch, give_up, || {
                    sink.read_parked(&key, from, to)
                })
                .await?;
                read += chunks
                    .iter()
                    .map(|(c, _)| (c.len() * c.header.leads.len()) as u64)
                    .sum::<u64>();
                let (before, refused) = (batch.ready.len(), batch.unplaceable.len());
                self.pipeline.place_parked(batch, &key, chunks);
                progressed |= batch.ready.len() > before || batch.unplaceable.len() > refused;
                metrics::counter!(crate::metrics::PARKED_PLACED)
                    .increment((batch.ready.len() - before) as u64);
            }
            if !progressed {
                // Nothing could be placed (rows missing or unreadable): the
                // chunks stay parked, and the status says which wait.
                return Ok(());
            }
        }
    }

    /// Writes the batch's placed chunks (`table` = `blocks`) or parked ones
    /// (`waiting_blocks`) in one insert. If ClickHouse refuses it for what it
    /// holds ([`sink::refusal`]), or encoding its rows panics, the chunks are
    /// written in halves, recursively, in batch order, until the chunk at
    /// fault is alone: it becomes a failure with ClickHouse's reason. A
    /// refused placed chunk's ECG's later placed chunks in the batch are not
    /// written (they would skip a seq) but put back for the next batch,
    /// which parks them; everything else is written once. Transient errors
    /// are retried as always.
    async fn write_chunks(
        &mut self,
        batch: &mut Batch,
        table: &'static str,
        now: OffsetDateTime,
        give_up: Instant,
    ) -> anyhow::Result<()> {
        let placed = table == blocks::PLACED;
        let chunks = if placed { &batch.ready } else { &batch.parked };
        let key_of = |r: &Ready| (r.chunk.header.tenant.clone(), r.chunk.header.ecg_id);
        let mut segments: Vec<Vec<usize>> = vec![(0..chunks.len()).collect()];
        let mut refused: Vec<(usize, String)> = Vec::new();
        let mut skipped: Vec<usize> = Vec::new();
        let mut blocked: HashSet<EcgKey> = HashSet::new();
        while let Some(segment) = segments.pop() {
            let (segment, skip): (Vec<usize>, Vec<usize>) = segment
                .into_iter()
                .partition(|&i| !blocked.contains(&key_of(&chunks[i])));
            skipped.extend(skip);
            if segment.is_empty() {
                continue;
            }
            let rows: Vec<&Ready> = segment.iter().map(|&i| &chunks[i]).collect();
            let sink = &self.sink;
            let refusal = retry("write_chunks", &self.batch, give_up, || async {
                match AssertUnwindSafe(sink.write_chunks(table, &rows, now))
                    .catch_unwind()
                    .await
                {
                    Ok(Ok(())) => Ok(None),
                    Ok(Err(e)) => sink::refusal(&e).map(Some).ok_or(e),
                    Err(panic) => Ok(Some(format!(
                        "panic while encoding the chunk's rows: {}",
                        panic_message(&*panic)
                    ))),
                }
            })
            .await?;
            match refusal {
                None => {}
                Some(reason) if segment.len() == 1 => {
                    if placed {
                        blocked.insert(key_of(&chunks[segment[0]]));
                    }
                    refused.push((segment[0], reason));
                }
                Some(reason) => {
                    tracing::warn!(
                        table, chunks = segment.len(), %reason,
                        "ClickHouse refused an insert for what it holds; writing it in halves"
                    );
                    metrics::counter!(crate::metrics::RETRIES, "operation" => "split_batch")
                        .increment(1);
                    let (a, b) = segment.split_at(segment.len() / 2);
                    // Popped last-in first: `a` is written before `b`, so each
                    // ECG's chunks are written in seq order.
                    segments.push(b.to_vec());
                    segments.push(a.to_vec());
                }
            }
        }
        if refused.is_empty() {
            return Ok(());
        }
        let taken = if placed {
            std::mem::take(&mut batch.ready)
        } else {
            std::mem::take(&mut batch.parked)
        };
        let mut slots: Vec<Option<Ready>> = taken.into_iter().map(Some).collect();
        for (i, reason) in refused {
            let Some(r) = slots[i].take() else { continue };
            let key = key_of(&r);
            if placed {
                let mut unwritten = Vec::new();
                for &j in &skipped {
                    if slots[j].as_ref().is_some_and(|s| key_of(s) == key) {
                        unwritten.extend(slots[j].take());
                    }
                }
                let progress = self.pipeline.rollback(&key, r.chunk.seq, unwritten, now);
                match batch
                    .progress
                    .iter_mut()
                    .find(|p| (p.tenant.as_str(), p.ecg_id) == (key.0.as_str(), key.1))
                {
                    Some(p) => *p = progress,
                    None => batch.progress.push(progress),
                }
            } else {
                // Not stored: it is missing again, as if it never came.
                self.pipeline.unpark(&key, r.chunk.seq);
                if let Some(p) = batch
                    .progress
                    .iter_mut()
                    .find(|p| (p.tenant.as_str(), p.ecg_id) == (key.0.as_str(), key.1))
                {
                    p.waiting.retain(|&s| s != r.chunk.seq);
                }
            }
            batch.failures.push(Failure {
                pos: r.pos,
                tenant: key.0,
                ecg_id: key.1,
                seq: Some(r.chunk.seq),
                kind: FailureKind::Refused,
                reason: format!("ClickHouse refused the chunk: {reason}"),
                original: Original::reencoded(&r.chunk),
            });
        }
        let kept: Vec<Ready> = slots.into_iter().flatten().collect();
        if placed {
            batch.ready = kept;
        } else {
            batch.parked = kept;
        }
        Ok(())
    }

    /// Tells harmless duplicates from conflicts among the batch's chunks
    /// whose seq was already written, by their stored fingerprints. Runs
    /// after the batch's chunks are written: a seq written in this very
    /// batch is found too.
    async fn check_resent(&mut self, batch: &mut Batch, give_up: Instant) -> anyhow::Result<()> {
        if batch.resent.is_empty() {
            return Ok(());
        }
        let chunks: Vec<(EcgKey, u32)> = batch
            .resent
            .iter()
            .map(|r| (r.key.clone(), r.seq))
            .collect();
        let sink = &self.sink;
        let stored = retry("load_states", &self.batch, give_up, || {
            sink.fingerprints(&chunks)
        })
        .await?;
        for resent in std::mem::take(&mut batch.resent) {
            let fingerprint = stored
                .get(&(resent.key.clone(), resent.seq))
                .copied()
                .unwrap_or(0);
            match resent.conflict(fingerprint) {
                Some(failure) => batch.failures.push(failure),
                None => batch.duplicates += 1,
            }
        }
        Ok(())
    }

    fn gauges(&self) {
        metrics::gauge!(crate::metrics::WAITING_CHUNKS).set(self.pipeline.waiting_count() as f64);
        metrics::gauge!(crate::metrics::ECG_STATES).set(self.pipeline.ecg_count() as f64);
    }

    /// Commits what [`Pipeline::committable`] allows. A failed commit only
    /// means more replay after a crash; the next flush commits again.
    fn commit<C: ConsumerContext>(
        &self,
        consumer: &impl Consumer<C>,
        topic: &str,
        mode: CommitMode,
    ) {
        let mut tpl = TopicPartitionList::new();
        for (partition, offset) in self.pipeline.committable() {
            if let Err(e) = tpl.add_partition_offset(topic, partition, Offset::Offset(offset)) {
                tracing::warn!(error = %e, partition, "cannot build commit");
            }
        }
        if tpl.count() == 0 {
            return;
        }
        if let Err(e) = consumer.commit(&tpl, mode) {
            tracing::warn!(error = %e, "offset commit failed; will retry on the next batch");
        }
    }
}

/// Reads a message as a chunk; a message that is not one keeps its position
/// and reason so it can be recorded as failed. The original bytes are kept
/// for the dead-letter topic.
fn decode(m: &BorrowedMessage<'_>) -> Incoming {
    let pos = Position {
        partition: m.partition(),
        offset: m.offset(),
        produced_at_ms: m.timestamp().to_millis().unwrap_or(0),
    };
    let key = m
        .key()
        .and_then(|k| std::str::from_utf8(k).ok())
        .and_then(|k| Uuid::parse_str(k).ok());
    let chunk = read_chunk(m.payload(), Chunk::decode);
    let headers = m.headers().map_or_else(Vec::new, |hs| {
        hs.iter()
            .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
            .collect()
    });
    let original = Original {
        key: m.key().map(<[u8]>::to_vec),
        payload: m.payload().map(<[u8]>::to_vec),
        headers,
    };
    Incoming {
        pos,
        key,
        chunk,
        original,
    }
}

/// Runs `op` until it succeeds, backing off exponentially with jitter, or
/// fails once `give_up` has passed. Every failure is logged and counted.
async fn retry<T, E, F, Fut>(
    what: &'static str,
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
                tracing::warn!(what, attempt, error = %e, retry_in_ms = delay.as_millis() as u64, "failed; retrying");
                metrics::counter!(crate::metrics::RETRIES, "operation" => what).increment(1);
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
