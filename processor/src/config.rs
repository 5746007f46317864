//! The processor's configuration, loaded by `ecg_runtime::load_config`:
//! defaults < TOML file (`ECG_CONFIG`, default `processor.toml`) < `ECG_*`
//! environment variables (e.g. `ECG_KAFKA__BROKERS`).

use std::net::SocketAddr;

use ecg_clickhouse::ClickHouseConfig;
use ecg_runtime::kafka::KafkaProperties;
use ecg_schemas::Limits;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The health endpoint.
    pub http: HttpConfig,
    /// Where chunks come from.
    pub kafka: KafkaConfig,
    /// Where samples and insights go.
    pub clickhouse: ClickHouseConfig,
    /// How consumed chunks are grouped into inserts.
    pub batch: BatchConfig,
    /// What a chunk may carry (the same rules as the gateway).
    pub limits: Limits,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address of `GET /healthz`.
    pub addr: SocketAddr,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 8082)),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma-separated.
    pub brokers: String,
    /// Topic of chunks.
    pub topic: String,
    /// Consumer group: instances in one group share the partitions.
    pub group_id: String,
    /// Static group membership (`group.instance.id`), unique per instance:
    /// an instance restarted with the same id takes its member slot and its
    /// partitions back instead of joining as a new member. It does not leave
    /// the group on shutdown, so its partitions wait up to
    /// `session_timeout_ms` for it. Empty: dynamic membership. The local
    /// stack sets it because its broker can leave a dynamic group without a
    /// working leader after a quick restart (processor/README.md, "Group
    /// membership").
    pub group_instance_id: String,
    /// Where refused messages go, unchanged, with the reason in headers;
    /// empty means `<topic>.dlq`.
    pub dead_letter_topic: String,
    /// Group session timeout; a crashed instance's partitions move after it.
    /// Revoked partitions are flushed and committed within
    /// `revoke_deadline_ms`, which must be shorter.
    pub session_timeout_ms: u32,
    /// How long an instance losing partitions in a rebalance (or shutting
    /// down) may spend writing and committing what it consumed from them.
    pub revoke_deadline_ms: u64,
    /// How often librdkafka reports statistics (consumer lag per partition,
    /// exported as metrics); 0 turns them off.
    pub statistics_interval_ms: u32,
    /// Extra librdkafka properties (e.g. SASL/TLS settings), for the
    /// consumer and the dead-letter producer alike (consumer-only ones
    /// are left out of the producer); secrets are never logged.
    pub properties: KafkaProperties,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:9092".into(),
            topic: "ecg.chunks".into(),
            group_id: "ecg-processor".into(),
            group_instance_id: String::new(),
            dead_letter_topic: String::new(),
            session_timeout_ms: 6_000,
            revoke_deadline_ms: 4_000,
            statistics_interval_ms: 5_000,
            properties: KafkaProperties::default(),
        }
    }
}

impl KafkaConfig {
    /// The dead-letter topic: `dead_letter_topic`, or `<topic>.dlq`.
    pub fn dead_letter_topic(&self) -> String {
        if self.dead_letter_topic.is_empty() {
            format!("{}.dlq", self.topic)
        } else {
            self.dead_letter_topic.clone()
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Flush once this many samples (all leads) are consumed. Real-time
    /// streams usually flush on `max_latency_ms` first; this bounds a batch
    /// when a backlog is read (a 24-hour upload, a restart): one INSERT per
    /// million samples keeps ClickHouse's per-insert and merge costs small,
    /// for about 30 MB of batch in memory.
    pub max_samples: usize,
    /// Flush at the latest this long after the first message of a batch.
    pub max_latency_ms: u64,
    /// First retry delay after a failed ClickHouse call; doubles up to
    /// `retry_max_ms`, with jitter.
    pub retry_initial_ms: u64,
    /// Longest delay between retries.
    pub retry_max_ms: u64,
    /// Give up (exit with an error, offsets uncommitted) after retrying this
    /// long: staying in the group while unable to write would stall the
    /// partitions that another instance could serve.
    pub give_up_after_s: u64,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_samples: 1_000_000,
            max_latency_ms: 300,
            retry_initial_ms: 100,
            retry_max_ms: 5_000,
            give_up_after_s: 240,
        }
    }
}
