//! [`BodyFormat`]: the formats of the bodies the gateway reads, told apart
//! by `Content-Type`. Each endpoint names the ones it takes; any other is a
//! 415 that lists them.

use axum::http::{HeaderMap, header};
use ecg_formats::fhir;
use ecg_input::tabular;

use crate::error::ApiError;

/// The body formats the gateway reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    Csv,
    Arrow,
    /// An HL7 FHIR `Observation` with `SampledData` (`ecg_formats::fhir`).
    Fhir,
}

impl BodyFormat {
    /// The `format` label of metrics, and what an upload's digest and an
    /// idempotent create's fingerprint start with.
    pub fn label(self) -> &'static str {
        match self {
            BodyFormat::Json => "json",
            BodyFormat::Csv => "csv",
            BodyFormat::Arrow => "arrow",
            BodyFormat::Fhir => "fhir",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            BodyFormat::Json => "application/json",
            BodyFormat::Csv => tabular::CSV,
            BodyFormat::Arrow => tabular::ARROW_STREAM,
            BodyFormat::Fhir => fhir::MEDIA_TYPE,
        }
    }

    /// The body's format from its `Content-Type`, if the endpoint takes it.
    pub fn of(headers: &HeaderMap, accepted: &[BodyFormat]) -> Result<Self, ApiError> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if let Some(format) = accepted
            .iter()
            .find(|f| f.content_type() == essence.as_str())
        {
            return Ok(*format);
        }
        let types: Vec<&str> = accepted.iter().map(|f| f.content_type()).collect();
        let mut message = format!(
            "content type {content_type:?} is not accepted here; send {}",
            types.join(" or ")
        );
        if essence == "application/json" {
            message
                .push_str("; a whole signal in JSON goes in the `signal` field of POST /v1/ecgs");
        }
        Err(ApiError::UnsupportedMediaType(message))
    }
}
