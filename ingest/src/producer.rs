//! Produces chunks to Kafka and waits for the broker's acknowledgement: a 202
//! is a promise that the chunk is durable in Kafka.
//!
//! The producer is idempotent (`enable.idempotence`, which implies
//! `acks=all` and bounded in-flight requests), so librdkafka's internal
//! retries cannot duplicate or reorder a chunk within a partition.
//!
//! An idempotent producer can hit a fatal error (e.g. its producer epoch
//! fenced after a broker restart that lost producer state): librdkafka then
//! fails every later message. The gateway replaces such a producer with a
//! new one (a new producer id) on the first failure that reveals it; the
//! requests that saw the error got 503 and their clients retry.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use ecg_runtime::kafka::{self, Role};
use ecg_schemas::Chunk;
use futures::future::try_join_all;
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

use crate::config::KafkaConfig;
use crate::error::ApiError;

#[derive(Clone)]
pub struct ChunkProducer {
    producer: Arc<RwLock<FutureProducer>>,
    config: Arc<ClientConfig>,
    topic: String,
    /// The longest a request waits for its chunk's acknowledgement:
    /// `message.timeout.ms` plus a second for librdkafka to report it.
    max_wait: Duration,
}

impl std::fmt::Debug for ChunkProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkProducer")
            .field("topic", &self.topic)
            .finish()
    }
}

impl ChunkProducer {
    pub fn new(config: &KafkaConfig) -> anyhow::Result<Self> {
        let timeout = config.delivery_timeout_ms.to_string();
        let kafka = kafka::client_config(
            &config.brokers,
            Role::Producer,
            &[
                ("enable.idempotence", "true"),
                ("acks", "all"),
                ("compression.type", "lz4"),
                // No lingering: each chunk is one large message, so waiting
                // to batch buys nothing under load (librdkafka batches what
                // queues behind in-flight requests anyway) and costs every
                // request the wait when the gateway is quiet: `linger.ms` = 2
                // measured 3.0 ms p50 for one connection, 0 measured 0.64
                // ms, with the same throughput at 100 connections
                // (BENCHMARKS.md).
                ("linger.ms", "0"),
                // A chunk is capped below 1 MB of samples; leave room for
                // Arrow framing.
                ("message.max.bytes", "2000000"),
                ("message.timeout.ms", &timeout),
            ],
            &config.properties,
        );
        let producer: FutureProducer = kafka.create().context("creating the Kafka producer")?;
        Ok(ChunkProducer {
            producer: Arc::new(RwLock::new(producer)),
            config: Arc::new(kafka),
            topic: config.topic.clone(),
            max_wait: Duration::from_millis(config.delivery_timeout_ms) + Duration::from_secs(1),
        })
    }

    fn current(&self) -> FutureProducer {
        self.producer
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces `failed` with a new producer if it can no longer deliver
    /// (and nobody replaced it yet): librdkafka reports a fatal error, or
    /// the broker fences its producer id/epoch, which librdkafka retries
    /// forever without declaring fatal. Queued messages of the old one fail,
    /// and their requests answer 503.
    fn replace_if_broken(&self, failed: &FutureProducer, error: &KafkaError) {
        let (code, reason) = match (failed.client().fatal_error(), error) {
            (Some(fatal), _) => fatal,
            (None, KafkaError::MessageProduction(code)) if epoch_lost(*code) => {
                (*code, error.to_string())
            }
            _ => return,
        };
        let mut current = self
            .producer
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if !std::ptr::eq(current.client(), failed.client()) {
            return;
        }
        match self.config.create::<FutureProducer>() {
            Ok(fresh) => {
                tracing::warn!(?code, %reason, "the Kafka producer hit a fatal error; replaced it with a new one");
                metrics::counter!(crate::metrics::PRODUCER_RESETS).increment(1);
                *current = fresh;
            }
            Err(e) => tracing::error!(error = %e, "cannot create a new Kafka producer"),
        }
    }

    /// Produces `chunks` (all of one ECG, keyed by its id so they share a
    /// partition and keep their order) and returns once the broker has
    /// acknowledged every one, or fails if any was not.
    pub async fn send(&self, chunks: &[Chunk]) -> Result<(), ApiError> {
        let encoded = chunks
            .iter()
            .map(|c| Ok((c.header.ecg_id.to_string(), c.encode()?)))
            .collect::<Result<Vec<_>, arrow_schema::ArrowError>>()
            .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("encoding a chunk")))?;
        try_join_all(
            encoded
                .iter()
                .map(|(key, payload)| self.send_payload(key, payload)),
        )
        .await?;
        Ok(())
    }

    /// Produces one encoded chunk under `key` (the ECG id) and returns once
    /// the broker has acknowledged it.
    pub async fn send_payload(&self, key: &str, payload: &[u8]) -> Result<(), ApiError> {
        let record = FutureRecord::to(&self.topic).key(key).payload(payload);
        let started = std::time::Instant::now();
        let producer = self.current();
        // librdkafka bounds the delivery by message.timeout.ms, but a
        // message in flight when the broker vanishes can outlive it; the
        // request's own deadline keeps the wait bounded whatever happens. A
        // chunk given up on here may still be delivered later: its client
        // got a 503 and resends it, and the processor counts it once.
        let delivery = tokio::time::timeout(
            self.max_wait,
            producer.send(record, Timeout::After(self.max_wait)),
        )
        .await;
        metrics::histogram!(crate::metrics::PRODUCE_DURATION)
            .record(started.elapsed().as_secs_f64());
        let failure = match delivery {
            Ok(Ok(_)) => {
                metrics::counter!(crate::metrics::CHUNKS_PRODUCED).increment(1);
                return Ok(());
            }
            Ok(Err((e, _))) => {
                self.replace_if_broken(&producer, &e);
                e.to_string()
            }
            Err(_) => format!("no acknowledgement within {:?}", self.max_wait),
        };
        metrics::counter!(crate::metrics::PRODUCE_FAILURES).increment(1);
        Err(ApiError::Unavailable(failure))
    }

    /// Messages waiting in the local queue for delivery (a gauge for
    /// `/metrics`).
    pub fn queue_depth(&self) -> i32 {
        self.current().in_flight_count()
    }

    /// Whether the broker answers a metadata request for our topic within
    /// `timeout` (readiness).
    pub async fn ping(&self, timeout: Duration) -> Result<(), String> {
        let producer = self.current();
        let topic = self.topic.clone();
        tokio::task::spawn_blocking(move || {
            let metadata = producer
                .client()
                .fetch_metadata(Some(&topic), Timeout::After(timeout))
                .map_err(|e| e.to_string())?;
            match metadata.topics().first().and_then(|t| t.error()) {
                None => Ok(()),
                Some(e) => Err(format!("topic {topic}: {e:?}")),
            }
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// Waits for queued messages to be delivered (graceful shutdown).
    pub fn flush(&self, timeout: Duration) {
        if let Err(e) = self.current().flush(Timeout::After(timeout)) {
            tracing::warn!(error = %e, "producer flush incomplete at shutdown");
        }
    }
}

/// Errors meaning the broker no longer knows this producer's id or epoch.
fn epoch_lost(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::ProducerFenced
            | RDKafkaErrorCode::InvalidProducerEpoch
            | RDKafkaErrorCode::UnknownProducerId
            | RDKafkaErrorCode::OutOfOrderSequenceNumber
            | RDKafkaErrorCode::InvalidProducerIdMapping
    )
}
