//! Response bodies of the query API's reading endpoints: the ECG list, the
//! samples for plotting and the windowed crossings (issue 6 contract).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Status, Units};

/// One ECG in `GET /v1/ecgs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EcgSummary {
    pub id: Uuid,
    pub device_id: String,
    pub status: Status,
    pub sample_rate_hz: f64,
    pub leads: Vec<String>,
    pub units: Units,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: OffsetDateTime,
    /// When the processor last wrote a chunk of this ECG; null before it has.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_activity_at: Option<OffsetDateTime>,
    /// Distinct chunks written to ClickHouse.
    pub chunks_processed: u64,
    /// Samples written, all leads together.
    pub samples_processed: u64,
    /// Chunks refused by the processor, each once.
    pub failed_chunks_count: u64,
}

/// `GET /v1/ecgs`: a page of ECGs, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EcgPage {
    pub items: Vec<EcgSummary>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// One lead's plotted samples in `GET /v1/ecgs/{id}/samples`: parallel arrays,
/// one entry per bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LeadSeries {
    pub lead: String,
    /// Seconds since `started_at` of each bucket's first sample.
    pub t_s: Vec<f64>,
    /// Each bucket's smallest sample, in the ECG's units.
    pub min: Vec<f64>,
    /// Each bucket's largest sample, in the ECG's units.
    pub max: Vec<f64>,
}

/// `GET /v1/ecgs/{id}/samples`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SamplesPage {
    pub id: Uuid,
    pub units: Units,
    pub sample_rate_hz: f64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: OffsetDateTime,
    /// Start of the range served (inclusive).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub from: OffsetDateTime,
    /// End of the range served (exclusive).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub to: OffsetDateTime,
    /// Consecutive samples per bucket; 1 when every sample is served as is.
    pub bucket_samples: u64,
    pub leads: Vec<LeadSeries>,
}

/// One window of `Windows::series`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Window {
    /// Time of the window's first sample.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub start: OffsetDateTime,
    /// Seconds since `started_at`.
    pub start_s: f64,
    /// Crossings per lead in this window.
    pub leads: BTreeMap<String, u64>,
    /// With windows of `1m` or `5m`: per lead, the window's signal quality,
    /// beats, and its heart rate and HRV when the quality is `good`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub heart: BTreeMap<String, WindowHeart>,
}

/// One lead in one window: is its signal good enough for a heart rate
/// (`ecg_signal::quality`: `flat`, `saturated`, `noisy` or `good`), and the
/// heart rate and HRV of the window's beats when it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WindowHeart {
    pub quality: SignalQuality,
    /// Beats whose peak lies in the window.
    pub beats: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heart_rate: Option<crate::api::HeartRate>,
}

/// A window's signal-quality verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignalQuality {
    /// The beats are trustworthy.
    Good,
    /// Peak to peak under 0.02 mV: a flat or disconnected lead.
    Flat,
    /// 5 % or more of the samples at their block's extremes: clipped.
    Saturated,
    /// Fewer than 80 % normal RR intervals, or no two beats in a lead that
    /// moves: the beats are not to be trusted.
    Noisy,
}

/// Zero crossings per time window, in `GET /v1/ecgs/{id}/insights?window=`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Windows {
    /// The window asked for: `1s`, `10s`, `1m` or `5m`.
    pub window: String,
    pub window_s: f64,
    /// Consecutive windows, oldest first, empty ones included.
    pub series: Vec<Window>,
}
