//! The v1 HTTP bodies. Requests deny unknown fields so a misspelt field is an
//! error, not silently ignored data.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::samples::{Calibration, Samples};

pub mod live;
pub mod query;

pub use live::{
    ActiveStream, ActiveStreams, ConsumerLag, DeadLettered, DeviceBucket, DeviceInsights, Pipeline,
    Rate, StatusCounts, Throughput,
};
pub use query::{
    EcgPage, EcgSummary, LeadSeries, SamplesPage, SignalQuality, Window, WindowHeart, Windows,
};

/// The physical unit of the samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, ToSchema)]
pub enum Units {
    /// Millivolts.
    #[default]
    #[serde(rename = "mV")]
    Millivolts,
    /// Microvolts.
    #[serde(rename = "uV")]
    Microvolts,
}

impl Units {
    pub fn as_str(self) -> &'static str {
        match self {
            Units::Millivolts => "mV",
            Units::Microvolts => "uV",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "mV" => Some(Units::Millivolts),
            "uV" => Some(Units::Microvolts),
            _ => None,
        }
    }
}

/// `POST /v1/ecgs`: open an ECG, optionally with its whole signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEcg {
    /// The device that recorded the ECG, as the client names it.
    pub device_id: String,
    /// Samples per second per lead.
    pub sample_rate_hz: f64,
    /// Lead names, in the order the device records them.
    pub leads: Vec<String>,
    /// Unit of the samples (default `mV`).
    #[serde(default)]
    pub units: Units,
    /// When the first sample was taken (RFC 3339); defaults to now. From
    /// 1900-01-01T00:00:00Z up to, not including, 2200-01-01T00:00:00Z.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<OffsetDateTime>,
    /// Present when the samples are integer ADC counts: each lead's gain and
    /// baseline (physical = (adc - baseline) / gain, in `units`).
    #[serde(default)]
    pub adc: Option<BTreeMap<String, Calibration>>,
    /// The whole signal at once; the ECG is then final.
    #[serde(default)]
    #[schema(value_type = Option<BTreeMap<String, Vec<f64>>>)]
    pub signal: Option<Samples>,
}

/// `POST /v1/ecgs/{id}/chunks`: the next piece of a streamed ECG.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChunkRequest {
    /// Position of the chunk in the ECG, from 0 without gaps; at most
    /// `limits.max_seq`.
    pub seq: u32,
    /// The chunk's samples, one array per declared lead, all the same length.
    #[schema(value_type = BTreeMap<String, Vec<f64>>)]
    pub samples: Samples,
    /// True on the last chunk of the ECG.
    #[serde(default)]
    pub r#final: bool,
}

/// `POST /v1/ecgs/{id}/end`: ends a streamed ECG whose last chunk was sent
/// without `final` (a device that learns it stopped only afterwards).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndStream {
    /// Seq of the ECG's last chunk, sent or still to come; at most
    /// `limits.max_seq`.
    pub final_seq: u32,
}

/// An Arrow IPC stream (`application/vnd.apache.arrow.stream`), documented
/// as what it is: bytes, not a JSON array of numbers.
#[derive(Debug, Clone, PartialEq, ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct ArrowStream(pub Vec<u8>);

/// 202 answer of the write endpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    pub id: Uuid,
    pub status_url: String,
    /// Chunks produced to Kafka by this request (0 for an end).
    pub chunks: u32,
}

/// Where an ECG is in the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The final chunk has not been processed yet: more data may come.
    Receiving,
    /// The final chunk is known, but some chunks before it are not processed.
    Processing,
    /// Every chunk from 0 to the final one is processed (even if some were
    /// refused first and resent).
    Complete,
    /// The processor refused a chunk of this ECG and it is not complete: it
    /// cannot complete unless the client resends the refused chunks.
    Failed,
}

/// `GET /v1/ecgs/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EcgStatus {
    pub id: Uuid,
    pub device_id: String,
    pub status: Status,
    pub sample_rate_hz: f64,
    pub leads: Vec<String>,
    pub units: Units,
    /// Each lead's calibration when the samples are ADC counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adc: Option<BTreeMap<String, Calibration>>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: OffsetDateTime,
    /// Distinct chunks written to ClickHouse.
    pub chunks_processed: u64,
    /// Samples written to ClickHouse, all leads together (rows of `samples`).
    pub samples_processed: u64,
    /// Chunks the pipeline has seen: processed, waiting for a gap, or
    /// refused (distinct seqs).
    pub chunks_received: u64,
    /// Samples of the received chunks, all leads together: written plus
    /// waiting. A refused chunk's samples are not counted (it may not have
    /// been readable at all).
    pub samples_received: u64,
    /// When the processor last wrote or refused a chunk of this ECG; null
    /// before it has.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_activity_at: Option<OffsetDateTime>,
    /// The seq of the final chunk, once known.
    pub final_seq: Option<u32>,
    /// The first seq not yet written: chunks 0 to `next_seq - 1` are in
    /// ClickHouse.
    pub next_seq: u32,
    /// Seqs known to be needed that are neither written nor waiting, ascending:
    /// up to the final seq when it is known, else up to the highest waiting
    /// seq. The first 1,000; `missing_count` has them all.
    pub missing_seqs: Vec<u32>,
    /// How many seqs are missing in all.
    pub missing_count: u64,
    /// Seqs received but held back until the gap before them fills,
    /// ascending. The first 1,000; `waiting_count` has them all.
    pub waiting_seqs: Vec<u32>,
    /// How many seqs are waiting in all.
    pub waiting_count: u64,
    /// Chunks of this ECG the processor refused, each once, by seq (unknown
    /// seqs last) then time. The first 100; `failed_chunks_count` has them
    /// all. Resending a refused seq, corrected, lets the ECG complete.
    pub failed_chunks: Vec<FailedChunk>,
    /// How many chunks were refused in all.
    pub failed_chunks_count: u64,
}

/// What became of a chunk listed in `failed_chunks`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FailedKind {
    /// The chunk was not stored: the ECG cannot complete until a valid chunk
    /// with this seq arrives.
    #[default]
    Refused,
    /// The chunk's seq was already stored with other samples: this resend
    /// was dropped, the stored chunk is kept and the ECG is unaffected.
    Conflict,
    /// Dropped and nothing lost: a chunk after the final one, or a final or
    /// end mark that contradicts the known one. The ECG is unaffected.
    Ignored,
}

/// A chunk the processor refused, in `GET /v1/ecgs/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FailedChunk {
    /// The chunk's seq; null when the message could not be read that far.
    pub seq: Option<u32>,
    /// Refused (not stored), or a conflicting resend of a stored seq.
    #[serde(default)]
    pub kind: FailedKind,
    /// Why it was refused, e.g. which sample was invalid.
    pub reason: String,
    /// When the processor refused it.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub failed_at: OffsetDateTime,
}

/// One lead's totals in `GET /v1/ecgs/{id}/insights`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LeadInsight {
    pub samples: u64,
    pub zero_crossings: u64,
    /// Crossings per second of signal.
    pub zero_crossing_rate_hz: f64,
    /// Beats (R peaks) found so far; 0 when the ECG's rate is outside the
    /// detector's 100 to 4,000 Hz.
    #[serde(default)]
    pub beats: u64,
    /// Heart rate and HRV of the lead's beats in its windows of good
    /// quality (see `quality`), once two normal RR intervals are known there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heart_rate: Option<HeartRate>,
    /// The lead's 5-minute windows by signal-quality verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<LeadQuality>,
}

/// A lead's 5-minute windows (from the ECG's first sample; the last one may
/// be shorter) by their signal-quality verdict (see `SignalQuality`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LeadQuality {
    pub windows: u64,
    pub good: u64,
    pub flat: u64,
    pub saturated: u64,
    pub noisy: u64,
}

/// Heart rate and time-domain heart-rate variability of a lead's beats.
/// Computed on normal-to-normal (NN) intervals: an RR interval is kept when
/// it lies within 0.3 to 2.0 s and within 20 % of the median of the 11
/// intervals centred on it, so ectopic beats, missed beats and artefacts
/// (and the interval after them) are left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HeartRate {
    /// RR intervals between the lead's beats.
    pub rr_intervals: u64,
    /// Of those, the NN intervals kept.
    pub normal_intervals: u64,
    /// Mean heart rate, beats per minute: 60 / mean NN interval.
    pub heart_rate_bpm: f64,
    /// Standard deviation of the NN intervals (N - 1), ms.
    pub sdnn_ms: f64,
    /// Root mean square of successive NN differences, ms; null without two
    /// consecutive NN intervals.
    pub rmssd_ms: Option<f64>,
}

/// One beat of `GET /v1/ecgs/{id}/beats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Beat {
    /// The R peak's sample index in the lead, from 0.
    pub sample_index: u64,
    /// Its time: `started_at` + `sample_index` / rate (to the microsecond).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub t: OffsetDateTime,
    /// Seconds from the ECG's first sample.
    pub t_s: f64,
    /// Milliseconds since the lead's previous beat; null for its first.
    pub rr_ms: Option<f64>,
}

/// `GET /v1/ecgs/{id}/beats`: a page of one lead's beats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BeatsPage {
    pub id: Uuid,
    pub lead: String,
    pub sample_rate_hz: f64,
    pub items: Vec<Beat>,
    /// Pass back as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /v1/ecgs/{id}/insights`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Insights {
    pub id: Uuid,
    pub status: Status,
    pub leads: BTreeMap<String, LeadInsight>,
    pub total_zero_crossings: u64,
    /// The ECG's heart rate: that of its best-quality lead (the most
    /// 5-minute windows of good quality; ties: the largest share of NN
    /// intervals, then the most intervals, then the first declared), null
    /// until a lead has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heart_rate_bpm: Option<f64>,
    /// The lead `heart_rate_bpm` comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heart_rate_lead: Option<String>,
    /// Crossings per time window, when asked for with `?window=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows: Option<Windows>,
}

/// The body of every 4xx and 5xx answer of the API (OAuth2 errors excepted,
/// which follow RFC 6749).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// A stable machine-readable code, e.g. `invalid_field`.
    pub error: String,
    /// What was wrong, for people.
    pub message: String,
    /// JSON pointer to the offending field, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The limit that was exceeded, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

/// The `bearer` security scheme (a JWT) of both HTTP APIs' OpenAPI
/// documents: `#[openapi(modifiers(&BearerAuth))]`.
#[derive(Debug)]
pub struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::from(Http::new(HttpAuthScheme::Bearer))
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}
