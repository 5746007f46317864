//! The part of a FHIR R4 Observation that import reads, as serde types.
//! Unknown fields are ignored (FHIR resources carry many). Numbers whose
//! digits matter are `RawValue`s: their JSON text, as written.

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Observation {
    pub(super) resource_type: Option<String>,
    #[serde(default)]
    pub(super) extension: Vec<Extension>,
    pub(super) subject: Option<Reference>,
    pub(super) device: Option<Reference>,
    pub(super) effective_period: Option<Period>,
    pub(super) effective_date_time: Option<String>,
    pub(super) effective_instant: Option<String>,
    #[serde(default)]
    pub(super) component: Vec<Component>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Extension {
    pub(super) url: Option<String>,
    pub(super) value_decimal: Option<Box<RawValue>>,
    pub(super) value_integer: Option<Box<RawValue>>,
    #[serde(default)]
    pub(super) extension: Vec<Extension>,
}

#[derive(Deserialize)]
pub(super) struct Reference {
    pub(super) identifier: Option<Identifier>,
}

#[derive(Deserialize)]
pub(super) struct Identifier {
    pub(super) value: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Period {
    pub(super) start: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Component {
    pub(super) code: Option<CodeableConcept>,
    pub(super) value_sampled_data: Option<SampledData>,
}

#[derive(Deserialize)]
pub(super) struct CodeableConcept {
    #[serde(default)]
    pub(super) coding: Vec<Coding>,
    pub(super) text: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Coding {
    pub(super) system: Option<String>,
    pub(super) code: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct SampledData {
    #[serde(default)]
    pub(super) extension: Vec<Extension>,
    pub(super) origin: Option<Quantity>,
    pub(super) period: Option<Box<RawValue>>,
    pub(super) factor: Option<Box<RawValue>>,
    pub(super) dimensions: Option<Box<RawValue>>,
    pub(super) data: Option<String>,
    /// R5's name for the period, read only to say so.
    pub(super) interval: Option<IgnoredAny>,
}

#[derive(Deserialize)]
pub(super) struct Quantity {
    pub(super) value: Option<Box<RawValue>>,
    pub(super) unit: Option<String>,
    pub(super) system: Option<String>,
    pub(super) code: Option<String>,
}
