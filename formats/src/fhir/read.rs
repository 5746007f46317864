//! [`import`]: an Observation's JSON into ecg-stream's shape.
//!
//! serde reads the fields this needs ([`super::model`]); numbers whose
//! digits matter (`origin`, `factor`, `period`, `dimensions`, extension
//! values) are taken as raw JSON text, so that no digit is lost to a
//! double before the exact arithmetic of [`super::decimal`]. Errors come
//! from `ecg_input::json::decode`, with the same JSON pointers as every
//! other body of the API, or from [`super::fields`].

use std::collections::BTreeMap;

use ecg_schemas::samples::{Columns, CountColumns, LeadColumns};
use ecg_schemas::{Calibration, Units};

use super::decimal::{self, Decimal};
use super::fields::{
    adc_extension, device_id, finite, item_decimal, lead_name, sample_rate, shown, shown_json,
    started_at, units,
};
use super::model::{Component, Observation};
use super::{FhirError, Imported};

/// Reads a FHIR R4 Observation (JSON) with one `SampledData` component
/// per lead; see the module documentation for the rules and for when the
/// samples are counts or values.
///
/// - Lead name: the component's MDC coding, as ecg-stream names the lead
///   ([`super::lead_of_code`]); else `code.text`; else the first coding's
///   `code`.
/// - Device: `device.identifier.value`, else `subject.identifier.value`.
/// - Start: `effectivePeriod.start`, `effectiveDateTime` or
///   `effectiveInstant` (RFC 3339); `None` without any.
/// - Sample rate: the `sample-rate` extension (which must agree with the
///   period to 1e-9); else `1000 / period`, or the rate with at most 6
///   decimals `r` when `1000.0 / r` is the period's double (so a period
///   of 8.333333333333334 ms is 120 Hz, not 119.99999999999999).
/// - Calibration: a lead whose data are all `i32` integers and which has
///   the `adc` extension takes it as its calibration, exactly. Otherwise
///   the extension is ignored. When the document is not counts as a whole,
///   such a lead's values are `(count - baseline) / gain`, from the
///   extension.
pub fn import(body: &[u8]) -> Result<Imported, FhirError> {
    let obs: Observation =
        ecg_input::json::decode(body).map_err(|e| FhirError::new(e.field, e.message))?;
    match obs.resource_type.as_deref() {
        Some("Observation") => {}
        Some(other) => {
            return Err(FhirError::new(
                "/resourceType",
                format!("must be \"Observation\", got {}", shown(other)),
            ));
        }
        None => {
            return Err(FhirError::new(
                "/resourceType",
                "missing; expected \"Observation\" (a FHIR R4 Observation with one SampledData component per lead)",
            ));
        }
    }
    let device_id = device_id(&obs)?;
    let started_at = started_at(&obs)?;
    if obs.component.is_empty() {
        return Err(FhirError::new(
            "/component",
            "no component: one component per lead is required, each with valueSampledData",
        ));
    }

    let mut leads: Vec<Lead<'_>> = Vec::with_capacity(obs.component.len());
    for (i, component) in obs.component.iter().enumerate() {
        let lead = Lead::read(i, component)?;
        if let Some(j) = leads.iter().position(|l| l.name == lead.name) {
            return Err(FhirError::new(
                format!("/component/{i}/code"),
                format!(
                    "lead {} is named twice (components {j} and {i}); each lead has one component",
                    shown(&lead.name)
                ),
            ));
        }
        if let Some(first) = leads.first() {
            lead.check_like(first)?;
        }
        leads.push(lead);
    }
    let first = &leads[0];
    let units = first.units;
    let sample_rate_hz = sample_rate(&obs.extension, first.period)?;

    // Counts only if every lead is counts: the columns are one or the other.
    let calibrations: Option<Vec<Calibration>> = leads.iter().map(Lead::calibration).collect();
    let (adc, columns) = match calibrations {
        Some(calibrations) => {
            let mut adc = BTreeMap::new();
            let mut counts = CountColumns::new();
            for (lead, calibration) in leads.iter_mut().zip(calibrations) {
                adc.insert(lead.name.clone(), calibration);
                let values = lead.counts.take().unwrap_or_default();
                counts.insert(lead.name.clone(), values.into());
            }
            (Some(adc), Columns::Counts(counts))
        }
        None => {
            let mut values = LeadColumns::new();
            for lead in &leads {
                values.insert(lead.name.clone(), lead.values()?.into());
            }
            (None, Columns::Values(values))
        }
    };
    Ok(Imported {
        device_id,
        sample_rate_hz,
        leads: leads.into_iter().map(|l| l.name).collect(),
        units,
        started_at,
        adc,
        columns,
    })
}

/// One component, checked, its data scanned once.
struct Lead<'a> {
    index: usize,
    name: String,
    units: Units,
    /// Milliseconds between samples, positive.
    period: f64,
    origin: Decimal,
    factor: Decimal,
    /// The calibration of the `adc` extension.
    declared: Option<Calibration>,
    data: &'a str,
    samples: usize,
    /// The items as `i32`, while every one is an integer that fits.
    counts: Option<Vec<i32>>,
}

impl<'a> Lead<'a> {
    fn read(i: usize, component: &'a Component) -> Result<Lead<'a>, FhirError> {
        let at = format!("/component/{i}/valueSampledData");
        let sd = component.value_sampled_data.as_ref().ok_or_else(|| {
            FhirError::new(
                &at,
                "missing: each component carries one lead's samples as valueSampledData",
            )
        })?;
        let name = lead_name(component.code.as_ref()).ok_or_else(|| {
            FhirError::new(
                format!("/component/{i}/code"),
                "no lead name: give an MDC coding (system urn:oid:2.16.840.1.113883.6.24), code.text or a coding's code",
            )
        })?;
        let origin = sd.origin.as_ref().ok_or_else(|| {
            FhirError::new(
                format!("{at}/origin"),
                "missing: the zero value and unit of the samples (a Quantity)",
            )
        })?;
        let units = units(origin, &format!("{at}/origin"))?;
        let origin = finite(
            origin.value.as_deref(),
            &format!("{at}/origin/value"),
            "origin",
        )?
        .ok_or_else(|| {
            FhirError::new(
                format!("{at}/origin/value"),
                "missing: the value of data item 0",
            )
        })?;
        let period = match finite(sd.period.as_deref(), &format!("{at}/period"), "period")? {
            Some(p) if p.value > 0.0 => p.value,
            Some(p) => {
                return Err(FhirError::new(
                    format!("{at}/period"),
                    format!("must be a positive number of milliseconds, got {}", p.value),
                ));
            }
            None if sd.interval.is_some() => {
                return Err(FhirError::new(
                    format!("{at}/period"),
                    "missing: interval and intervalUnit are FHIR R5; this reads R4, whose period is in milliseconds",
                ));
            }
            None => {
                return Err(FhirError::new(
                    format!("{at}/period"),
                    "missing: the milliseconds between samples",
                ));
            }
        };
        let factor =
            finite(sd.factor.as_deref(), &format!("{at}/factor"), "factor")?.unwrap_or(Decimal {
                exact: Some((1, 0)),
                negative: false,
                value: 1.0,
                integer: true,
            });
        let dimensions = sd.dimensions.as_deref().ok_or_else(|| {
            FhirError::new(
                format!("{at}/dimensions"),
                "missing; must be 1 (one lead per component)",
            )
        })?;
        if dimensions.get() != "1" {
            return Err(FhirError::new(
                format!("{at}/dimensions"),
                format!(
                    "must be 1 (one lead per component), got {}",
                    shown_json(dimensions)
                ),
            ));
        }
        let declared = adc_extension(&sd.extension, &at)?;
        let data = sd.data.as_deref().unwrap_or("");
        let mut lead = Lead {
            index: i,
            name,
            units,
            period,
            origin,
            factor,
            declared,
            data,
            samples: 0,
            counts: Some(Vec::new()),
        };
        lead.scan()?;
        Ok(lead)
    }

    fn data_pointer(&self) -> String {
        format!("/component/{}/valueSampledData/data", self.index)
    }

    /// The data items, `None` for an empty string (no samples).
    fn items(&self) -> impl Iterator<Item = (usize, &'a str)> + use<'a> {
        let data = self.data;
        (!data.is_empty())
            .then(|| data.split(' '))
            .into_iter()
            .flatten()
            .enumerate()
    }

    /// Checks every item, counts them, and keeps them as counts while
    /// they are `i32` integers.
    fn scan(&mut self) -> Result<(), FhirError> {
        let at = self.data_pointer();
        for (k, item) in self.items() {
            let d = item_decimal(&at, k, item)?;
            self.samples = k + 1;
            if let Some(counts) = &mut self.counts {
                match d.as_i32() {
                    Some(c) => counts.push(c),
                    None => self.counts = None,
                }
            }
        }
        Ok(())
    }

    /// Refuses a lead that does not share the first lead's units, period
    /// and length.
    fn check_like(&self, first: &Lead<'_>) -> Result<(), FhirError> {
        let at = format!("/component/{}/valueSampledData", self.index);
        if self.units != first.units {
            return Err(FhirError::new(
                format!("{at}/origin"),
                format!(
                    "lead {} is in {}, lead {} in {}: every lead must be in the same unit",
                    shown(&self.name),
                    self.units.as_str(),
                    shown(&first.name),
                    first.units.as_str()
                ),
            ));
        }
        if self.period != first.period {
            return Err(FhirError::new(
                format!("{at}/period"),
                format!(
                    "lead {} has a period of {} ms, lead {} of {} ms: every lead must have the same",
                    shown(&self.name),
                    self.period,
                    shown(&first.name),
                    first.period
                ),
            ));
        }
        if self.samples != first.samples {
            return Err(FhirError::new(
                self.data_pointer(),
                format!(
                    "lead {} has {} samples, lead {} has {}: every lead must have the same number",
                    shown(&self.name),
                    self.samples,
                    shown(&first.name),
                    first.samples
                ),
            ));
        }
        Ok(())
    }

    /// The lead's exact calibration, if its samples are counts.
    fn calibration(&self) -> Option<Calibration> {
        self.counts.as_ref()?;
        self.declared
            .or_else(|| decimal::calibration(&self.origin, &self.factor))
    }

    /// The lead's physical values, each correctly rounded (see the module
    /// documentation for the fallback).
    fn values(&self) -> Result<Vec<f64>, FhirError> {
        let at = self.data_pointer();
        let not_finite = |k: usize, item: &str, v: f64| {
            FhirError::new(
                &at,
                format!(
                    "sample {k} ({}) is {v} in {}: beyond the range of a double",
                    shown(item),
                    self.units.as_str()
                ),
            )
        };
        let mut values = Vec::with_capacity(self.samples);
        if let (Some(calibration), Some(counts)) = (self.declared, &self.counts) {
            for ((k, item), &count) in self.items().zip(counts) {
                let v = calibration.physical(count);
                if !v.is_finite() {
                    return Err(not_finite(k, item, v));
                }
                values.push(v);
            }
            return Ok(values);
        }
        let identity = self.factor.exact == Some((1, 0)) && self.origin.is_zero();
        for (k, item) in self.items() {
            let d = item_decimal(&at, k, item)?;
            let v = if identity {
                d.value
            } else {
                decimal::exact_value(&self.origin, &self.factor, &d)
                    .unwrap_or_else(|| decimal::approximate_value(&self.origin, &self.factor, &d))
            };
            if !v.is_finite() {
                return Err(not_finite(k, item, v));
            }
            values.push(v);
        }
        Ok(values)
    }
}
