//! HL7 FHIR R4 `Observation` with `SampledData`, the shape of FHIR's "ekg"
//! example: one `component` per lead, each lead's samples a
//! `valueSampledData` whose value at sample k is
//! `origin + factor × data[k]`, one sample every `period` milliseconds.
//!
//! Both directions, pure (no I/O, no clock):
//! - [`import`] reads a whole Observation into ecg-stream's shape: ADC
//!   counts with each lead's gain and baseline when the document's
//!   numbers say so exactly, otherwise physical values.
//! - [`write_head`], [`write_component_start`], [`write_count`] or
//!   [`write_value`], [`write_component_end`], [`write_tail`] write one
//!   in pieces, so that a caller can stream an Observation of any length.
//!
//! Exactness, the guarantee of the module:
//! - Import computes `origin + factor × data[k]` in exact decimal
//!   arithmetic (an `i128` mantissa and a decimal exponent) and rounds
//!   once, correctly, to the nearest double. Samples are counts instead
//!   when every item of every lead is written as an integer (no point, no
//!   exponent) that fits an `i32`, and each lead's `factor` is exactly
//!   `1 / gain` for a double `gain` (the product checked exactly in
//!   integers) and `-origin / factor` is an integer baseline that fits an
//!   `i32`, or the lead carries the `adc` extension below. Then `physical
//!   = (count - baseline) / gain` is the document's value, exactly.
//! - Only when a decimal has more than 38 significant digits or an
//!   intermediate overflows does import fall back to `f64` arithmetic
//!   (`origin + factor * d`, two roundings).
//! - Export writes every double as its shortest round-trip text and the
//!   sample rate in an ecg-stream extension, so export then import gives
//!   back the same bits: values, counts, gains, baselines and rate.
//!
//! ecg-stream extensions (`https://ecg-stream.dev/fhir/StructureDefinition/...`):
//! - `sample-rate` on the Observation (`valueDecimal`, Hz): the exact
//!   rate, which `period` (milliseconds, `1000 / rate`) may not carry.
//! - `adc` on a `valueSampledData`, with sub-extensions `gain`
//!   (`valueDecimal`, counts per unit) and `baseline` (`valueInteger`): the
//!   lead's exact calibration, for gains whose reciprocal is not a finite
//!   decimal (e.g. 3 counts per mV: `factor` is then rounded).
//! - `next-page` on the Observation (`valueUrl`): where the rest of the
//!   ECG is, when this Observation is one page of it.
//!
//! Limits: none on sizes (the caller applies its own). Refused, with a
//! JSON pointer and what was found and allowed: anything but an
//! Observation, `dimensions` other than 1, the `E`, `U` and `L` markers
//! (points without a value), units other than UCUM `mV` and `uV`, leads of
//! different lengths, periods (compared as doubles) or units, a missing
//! device, values beyond the range of a double. R5's `interval`
//! and `intervalUnit` are not read. Import never panics, whatever the
//! input.

mod decimal;
mod fields;
mod leads;
mod model;
mod read;
mod write;

use std::collections::BTreeMap;

use ecg_schemas::samples::Columns;
use ecg_schemas::{Calibration, Units};
use time::OffsetDateTime;

pub use leads::{
    MDC_ECG_ELEC_POTL, MDC_SYSTEM, MDC_SYSTEM_URI, lead_code, lead_of_code, standard_leads,
};
pub use read::import;
pub use write::{
    DataForm, Head, adc_factor, write_component_end, write_component_start, write_count,
    write_head, write_tail, write_value,
};

/// The extension on the Observation carrying the exact sample rate (Hz).
pub const SAMPLE_RATE_URL: &str = "https://ecg-stream.dev/fhir/StructureDefinition/sample-rate";
/// The extension on a `valueSampledData` carrying the lead's calibration.
pub const ADC_URL: &str = "https://ecg-stream.dev/fhir/StructureDefinition/adc";
/// The extension on the Observation pointing at the next page.
pub const NEXT_PAGE_URL: &str = "https://ecg-stream.dev/fhir/StructureDefinition/next-page";
/// UCUM, the code system of the units.
pub const UCUM: &str = "http://unitsofmeasure.org";
/// LOINC 11524-6 "EKG study", the Observation's second code.
pub const LOINC_EKG_STUDY: &str = "11524-6";
/// The media type of FHIR's JSON format.
pub const MEDIA_TYPE: &str = "application/fhir+json";

/// An imported Observation, in the shape `POST /v1/ecgs` takes.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    pub device_id: String,
    pub sample_rate_hz: f64,
    /// Lead names, in the document's component order.
    pub leads: Vec<String>,
    pub units: Units,
    pub started_at: Option<OffsetDateTime>,
    /// Some when the samples are ADC counts: each lead's gain and baseline.
    pub adc: Option<BTreeMap<String, Calibration>>,
    /// `Counts` when `adc` is Some, `Values` otherwise.
    pub columns: Columns,
}

/// A document that cannot be imported, and where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{pointer}: {message}")]
pub struct FhirError {
    /// JSON pointer into the body, e.g. `/component/2/valueSampledData/data`;
    /// empty for the whole body.
    pub pointer: String,
    pub message: String,
}

impl FhirError {
    pub(crate) fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        FhirError {
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests;
