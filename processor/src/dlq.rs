//! The dead-letter topic: every message the processor refuses is produced to
//! `<topic>.dlq` unchanged (key, payload, headers), with headers saying why
//! and where it came from, before the source offset is committed.
//!
//! Delivery is at least once: a crash after the dead-letter write and before
//! the commit replays the message and dead-letters it again. Consumers of the
//! dead-letter topic deduplicate on (`ecg-dlq-source-partition`,
//! `ecg-dlq-source-offset`), as `failed_chunks` does.

use std::time::Duration;

use ecg_runtime::kafka::{self, Role};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::KafkaConfig;
use crate::pipeline::Failure;

/// Header names added to a dead-lettered message.
pub mod headers {
    pub const REASON: &str = "ecg-dlq-reason";
    /// `refused` (not stored), `conflict` (a resent seq with other samples) or
    /// `ignored` (not stored, nothing lost: e.g. a chunk after the final one).
    pub const KIND: &str = "ecg-dlq-kind";
    pub const SOURCE_TOPIC: &str = "ecg-dlq-source-topic";
    pub const SOURCE_PARTITION: &str = "ecg-dlq-source-partition";
    pub const SOURCE_OFFSET: &str = "ecg-dlq-source-offset";
    pub const FAILED_AT: &str = "ecg-dlq-failed-at";
}

/// Produces refused messages to the dead-letter topic.
#[derive(Clone)]
pub struct DeadLetters {
    producer: FutureProducer,
    topic: String,
    source_topic: String,
}

impl std::fmt::Debug for DeadLetters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetters")
            .field("topic", &self.topic)
            .finish()
    }
}

impl DeadLetters {
    pub fn new(config: &KafkaConfig) -> Result<Self, KafkaError> {
        let kafka = kafka::client_config(
            &config.brokers,
            Role::Producer,
            &[
                ("acks", "all"),
                ("enable.idempotence", "true"),
                // A send that cannot be acknowledged fails within this, and
                // the batch's write is retried as a whole (see
                // `consumer::retry`).
                ("message.timeout.ms", "30000"),
            ],
            &config.properties,
        );
        Ok(DeadLetters {
            producer: kafka.create()?,
            topic: config.dead_letter_topic(),
            source_topic: config.topic.clone(),
        })
    }

    /// The topic refused messages go to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Produces every failure and waits for all acknowledgements.
    pub async fn send(&self, failures: &[Failure], at: OffsetDateTime) -> Result<(), KafkaError> {
        let at = at.format(&Rfc3339).unwrap_or_default();
        let sends = failures.iter().map(|f| {
            let partition = f.pos.partition.to_string();
            let offset = f.pos.offset.to_string();
            let mut headers = OwnedHeaders::new_with_capacity(f.original.headers.len() + 6);
            for (key, value) in &f.original.headers {
                headers = headers.insert(Header {
                    key,
                    value: value.as_deref(),
                });
            }
            for (key, value) in [
                (headers::REASON, f.reason.as_str()),
                (headers::KIND, f.kind.as_str()),
                (headers::SOURCE_TOPIC, self.source_topic.as_str()),
                (headers::SOURCE_PARTITION, partition.as_str()),
                (headers::SOURCE_OFFSET, offset.as_str()),
                (headers::FAILED_AT, at.as_str()),
            ] {
                headers = headers.insert(Header {
                    key,
                    value: Some(value),
                });
            }
            let mut record: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(&self.topic).headers(headers);
            if let Some(k) = &f.original.key {
                record = record.key(k.as_slice());
            }
            if let Some(p) = &f.original.payload {
                record = record.payload(p.as_slice());
            }
            self.producer.send(record, Duration::from_secs(5))
        });
        for result in futures::future::join_all(sends).await {
            result.map_err(|(e, _)| e)?;
        }
        Ok(())
    }
}
