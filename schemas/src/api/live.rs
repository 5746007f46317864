//! Response bodies of the query API's live and per-device endpoints: what a
//! dashboard polls (issue 6 contract).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// One time bucket of `GET /v1/devices/{device_id}/insights`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeviceBucket {
    /// Start of the bucket (sample time).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub start: OffsetDateTime,
    /// ECGs of the device with samples in the bucket.
    pub ecgs: u64,
    /// Samples in the bucket, all leads together.
    pub samples: u64,
    /// Crossings in the bucket, all leads together.
    pub zero_crossings: u64,
    /// Crossings per lead.
    pub leads: BTreeMap<String, u64>,
}

/// `GET /v1/devices/{device_id}/insights`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeviceInsights {
    pub device_id: String,
    /// `1m`, `1h` or `1d`.
    pub bucket: String,
    /// Buckets with samples, oldest first.
    pub buckets: Vec<DeviceBucket>,
}

/// One ECG in `GET /v1/streams/active`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ActiveStream {
    pub id: Uuid,
    pub device_id: String,
    /// When the processor last wrote a chunk of it.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub last_activity_at: OffsetDateTime,
    /// Samples written per second over the window, all leads together.
    pub samples_per_s: f64,
    /// Seconds between the gateway accepting the newest written chunk and
    /// the processor writing it; null for chunks from before migration 7.
    pub lag_s: Option<f64>,
    /// Chunks received but waiting for an earlier seq.
    pub waiting_chunks: u64,
}

/// `GET /v1/streams/active`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ActiveStreams {
    pub within_s: u64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    pub streams: Vec<ActiveStream>,
}

/// A throughput over `Pipeline::window_s`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Rate {
    pub chunks_per_s: f64,
    /// All leads together.
    pub samples_per_s: f64,
}

/// The processor's consumer group behind the topic's end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConsumerLag {
    /// Messages produced but not yet committed by the processor, all
    /// partitions together; 0 when unavailable.
    pub messages: u64,
    /// False when the broker did not answer in time.
    pub available: bool,
}

/// Refused chunks of the caller's tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeadLettered {
    pub total: u64,
    pub last_hour: u64,
}

/// The caller's ECGs by status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StatusCounts {
    pub receiving: u64,
    pub processing: u64,
    pub complete: u64,
    pub failed: u64,
}

/// Samples per second step by step over the last minutes, what a sparkline
/// draws: it has a history from the first call, not only from the calls a
/// page has made since it opened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Throughput {
    /// Seconds per step.
    pub step_s: u64,
    /// Accepted by the gateway, all leads together, one value per step,
    /// oldest first; the last step ends at `Pipeline::at`.
    pub ingest_samples_per_s: Vec<f64>,
    /// Written by the processor, in the same steps.
    pub processing_samples_per_s: Vec<f64>,
}

/// `GET /v1/pipeline`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Pipeline {
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    /// The window the rates are measured over, seconds.
    pub window_s: u64,
    /// Chunks accepted by the gateway (by Kafka timestamp) and processed since.
    pub ingest: Rate,
    /// Chunks written by the processor.
    pub processing: Rate,
    /// Pipeline-wide, every tenant together: a number, no tenant's data.
    pub consumer_lag: ConsumerLag,
    pub dead_lettered: DeadLettered,
    pub ecgs: StatusCounts,
    /// ECGs with data in the last `streams.active_within_s` seconds.
    pub active_streams: u64,
    /// The ingest and processing rates over the last minutes.
    pub throughput: Throughput,
}
