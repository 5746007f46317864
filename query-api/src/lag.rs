//! The processor's consumer lag, asked of the broker: per partition of the
//! chunk topic, the high watermark minus the group's committed offset (minus
//! the low watermark when the group has not committed yet). The client reads
//! offsets only: it never joins the group nor commits.

use std::time::{Duration, Instant};

use ecg_runtime::kafka::{self, Role};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::config::PipelineConfig;

/// Reads one consumer group's lag on one topic.
pub struct LagProbe {
    consumer: BaseConsumer,
    topic: String,
    timeout: Duration,
}

impl std::fmt::Debug for LagProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LagProbe")
            .field("topic", &self.topic)
            .finish()
    }
}

impl LagProbe {
    pub fn new(config: &PipelineConfig) -> anyhow::Result<Self> {
        let consumer: BaseConsumer = kafka::client_config(
            &config.brokers,
            Role::Consumer,
            &[
                ("group.id", &config.group_id),
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
            ],
            &config.properties,
        )
        .create()?;
        Ok(LagProbe {
            consumer,
            topic: config.topic.clone(),
            timeout: Duration::from_millis(config.timeout_ms),
        })
    }

    /// Messages not yet committed, all partitions together; an error when
    /// the broker does not answer within the timeout. Blocking: call it
    /// from `spawn_blocking`.
    pub fn messages(&self) -> anyhow::Result<u64> {
        let deadline = Instant::now() + self.timeout;
        let left = || deadline.saturating_duration_since(Instant::now());
        let metadata = self.consumer.fetch_metadata(Some(&self.topic), left())?;
        let topic = metadata
            .topics()
            .first()
            .filter(|t| t.error().is_none())
            .ok_or_else(|| anyhow::anyhow!("no topic {}", self.topic))?;
        let mut tpl = TopicPartitionList::new();
        for p in topic.partitions() {
            tpl.add_partition(&self.topic, p.id());
        }
        let committed = self.consumer.committed_offsets(tpl, left())?;
        let mut lag = 0u64;
        for e in committed.elements() {
            let (low, high) = self
                .consumer
                .fetch_watermarks(&self.topic, e.partition(), left())?;
            let from = match e.offset() {
                Offset::Offset(o) => o,
                _ => low,
            };
            lag += u64::try_from(high - from).unwrap_or(0);
        }
        Ok(lag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broker_that_does_not_answer_is_an_error_within_the_timeout() {
        let probe = LagProbe::new(&PipelineConfig {
            brokers: "127.0.0.1:1".into(),
            timeout_ms: 300,
            ..PipelineConfig::default()
        })
        .unwrap();
        let started = Instant::now();
        assert!(probe.messages().is_err());
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
}
