//! Produces chunks to Kafka and waits for the broker's acknowledgement: a 202
//! is a promise that the chunk is durable in Kafka.
//!
//! The producer is idempotent (`enable.idempotence`, which implies
//! `acks=all` and bounded in-flight requests), so librdkafka's internal
//! retries cannot duplicate or reorder a chunk within a partition.

use std::time::Duration;

use anyhow::Context as _;
use ecg_schemas::Chunk;
use futures::future::try_join_all;
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

use crate::config::KafkaConfig;
use crate::error::ApiError;

#[derive(Clone)]
pub struct ChunkProducer {
    producer: FutureProducer,
    topic: String,
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
        let mut kafka = ClientConfig::new();
        kafka
            .set("bootstrap.servers", &config.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("linger.ms", "2")
            // A chunk is capped below 1 MB of samples; leave room for Arrow framing.
            .set("message.max.bytes", "2000000")
            .set("message.timeout.ms", config.delivery_timeout_ms.to_string());
        for (k, v) in &config.properties {
            kafka.set(k, v);
        }
        let producer: FutureProducer = kafka.create().context("creating the Kafka producer")?;
        Ok(ChunkProducer {
            producer,
            topic: config.topic.clone(),
        })
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
        // Waits for room in the local queue at most this long; the delivery
        // itself is bounded by message.timeout.ms.
        self.producer
            .send(record, Timeout::After(Duration::from_secs(5)))
            .await
            .map_err(|(e, _)| ApiError::Unavailable(e.to_string()))?;
        Ok(())
    }

    /// Messages waiting in the local queue for delivery (a gauge for
    /// `/metrics`).
    pub fn queue_depth(&self) -> i32 {
        self.producer.in_flight_count()
    }

    /// Waits for queued messages to be delivered (graceful shutdown).
    pub fn flush(&self, timeout: Duration) {
        if let Err(e) = self.producer.flush(Timeout::After(timeout)) {
            tracing::warn!(error = %e, "producer flush incomplete at shutdown");
        }
    }
}
