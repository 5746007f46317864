//! The fields of an Observation that import checks one by one: numbers,
//! units, lead names, extensions, device, start and sample rate, each
//! refused with its JSON pointer and what was found and allowed.

use ecg_schemas::{Calibration, Units};
use serde_json::value::RawValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::decimal::Decimal;
use super::leads::{MDC_SYSTEM, MDC_SYSTEM_URI, lead_of_code};
use super::model::{CodeableConcept, Extension, Observation, Quantity, Reference};
use super::{ADC_URL, FhirError, SAMPLE_RATE_URL, UCUM};

/// One data item as a decimal, or why it is not one.
pub(super) fn item_decimal(at: &str, k: usize, item: &str) -> Result<Decimal, FhirError> {
    let marker = match item {
        "" => {
            return Err(FhirError::new(
                at,
                format!("sample {k} is empty: data items are decimals separated by single spaces"),
            ));
        }
        "E" => Some("error"),
        "U" => Some("above the upper limit"),
        "L" => Some("below the lower limit"),
        _ => None,
    };
    if let Some(meaning) = marker {
        return Err(FhirError::new(
            at,
            format!(
                "sample {k} is \"{item}\" ({meaning}): only decimal values are imported, not the E, U and L markers of points without a value"
            ),
        ));
    }
    Decimal::parse(item).ok_or_else(|| {
        FhirError::new(
            at,
            format!(
                "sample {k} is {}, not a decimal (-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?)",
                shown(item)
            ),
        )
    })
}

/// A JSON number's decimal, refusing other JSON and non-finite numbers.
pub(super) fn finite(
    raw: Option<&RawValue>,
    at: &str,
    what: &str,
) -> Result<Option<Decimal>, FhirError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let d = number(raw, at, what)?;
    if !d.value.is_finite() {
        return Err(FhirError::new(
            at,
            format!("{what} {} is beyond the range of a double", shown_json(raw)),
        ));
    }
    Ok(Some(d))
}

fn number(raw: &RawValue, at: &str, what: &str) -> Result<Decimal, FhirError> {
    // A JSON number's text is always in the decimal grammar.
    Decimal::parse(raw.get()).ok_or_else(|| {
        FhirError::new(
            at,
            format!("{what} must be a JSON number, got {}", shown_json(raw)),
        )
    })
}

/// ecg-stream's name for the component's lead.
pub(super) fn lead_name(code: Option<&CodeableConcept>) -> Option<String> {
    let code = code?;
    let mdc = code.coding.iter().find_map(|c| {
        let system = c.system.as_deref()?;
        if system != MDC_SYSTEM && system != MDC_SYSTEM_URI {
            return None;
        }
        lead_of_code(c.code.as_deref()?.parse().ok()?)
    });
    mdc.map(str::to_string)
        .or_else(|| code.text.clone())
        .or_else(|| code.coding.first().and_then(|c| c.code.clone()))
}

/// The samples' unit: the origin's UCUM `code`, else its `unit`.
pub(super) fn units(origin: &Quantity, at: &str) -> Result<Units, FhirError> {
    if let Some(code) = &origin.code {
        if let Some(system) = &origin.system
            && system != UCUM
        {
            return Err(FhirError::new(
                format!("{at}/system"),
                format!("must be {UCUM} (UCUM), got {}", shown(system)),
            ));
        }
        return Units::parse(code).ok_or_else(|| {
            FhirError::new(
                format!("{at}/code"),
                format!(
                    "unit {} is not supported: ECG samples are in \"mV\" or \"uV\" (UCUM codes)",
                    shown(code)
                ),
            )
        });
    }
    match origin.unit.as_deref() {
        Some("mV") => Ok(Units::Millivolts),
        Some("uV" | "µV" | "μV") => Ok(Units::Microvolts),
        Some(other) => Err(FhirError::new(
            format!("{at}/unit"),
            format!(
                "unit {} is not supported: ECG samples are in \"mV\" or \"uV\" (UCUM codes)",
                shown(other)
            ),
        )),
        None => Err(FhirError::new(
            at,
            format!("no unit: give \"code\": \"mV\" or \"uV\" with \"system\": \"{UCUM}\""),
        )),
    }
}

/// The calibration of the `adc` extension among `extensions`, if there.
pub(super) fn adc_extension(
    extensions: &[Extension],
    at: &str,
) -> Result<Option<Calibration>, FhirError> {
    let Some((j, adc)) = extensions
        .iter()
        .enumerate()
        .find(|(_, e)| e.url.as_deref() == Some(ADC_URL))
    else {
        return Ok(None);
    };
    let at = format!("{at}/extension/{j}");
    let sub = |url: &str| {
        adc.extension
            .iter()
            .enumerate()
            .find(|(_, e)| e.url.as_deref() == Some(url))
    };
    let missing = || {
        FhirError::new(
            &at,
            "the adc extension needs a sub-extension gain (valueDecimal) and baseline (valueInteger)",
        )
    };
    let (g, gain) = sub("gain").ok_or_else(missing)?;
    let (b, baseline) = sub("baseline").ok_or_else(missing)?;
    let gain_at = format!("{at}/extension/{g}/valueDecimal");
    let gain = gain
        .value_decimal
        .as_deref()
        .ok_or_else(|| FhirError::new(&gain_at, "missing: counts per unit"))?;
    let gain = number(gain, &gain_at, "gain")?.value;
    if !(gain.is_finite() && gain > 0.0) {
        return Err(FhirError::new(
            gain_at,
            format!("gain must be a positive number of counts per unit, got {gain}"),
        ));
    }
    let baseline_at = format!("{at}/extension/{b}/valueInteger");
    let baseline = baseline
        .value_integer
        .as_deref()
        .ok_or_else(|| FhirError::new(&baseline_at, "missing: the count of 0 units"))?;
    let baseline = number(baseline, &baseline_at, "baseline")?
        .as_i32()
        .ok_or_else(|| {
            FhirError::new(
                &baseline_at,
                format!(
                    "baseline must be an integer that fits 32 bits, got {}",
                    shown_json(baseline)
                ),
            )
        })?;
    Ok(Some(Calibration { gain, baseline }))
}

pub(super) fn device_id(obs: &Observation) -> Result<String, FhirError> {
    let id = |r: &Option<Reference>| r.as_ref()?.identifier.as_ref()?.value.clone();
    id(&obs.device).or_else(|| id(&obs.subject)).ok_or_else(|| {
        FhirError::new(
            "/device",
            "no device id: give device.identifier.value (or subject.identifier.value), the id of the device that recorded the ECG",
        )
    })
}

pub(super) fn started_at(obs: &Observation) -> Result<Option<OffsetDateTime>, FhirError> {
    let start = obs.effective_period.as_ref().and_then(|p| p.start.as_ref());
    let (at, text) = match (start, &obs.effective_date_time, &obs.effective_instant) {
        (Some(s), _, _) => ("/effectivePeriod/start", s),
        (None, Some(s), _) => ("/effectiveDateTime", s),
        (None, None, Some(s)) => ("/effectiveInstant", s),
        (None, None, None) => return Ok(None),
    };
    OffsetDateTime::parse(text, &Rfc3339).map(Some).map_err(|e| {
        FhirError::new(
            at,
            format!(
                "{} is not a date and time with seconds and a zone (RFC 3339, e.g. 2015-02-19T09:30:35+01:00): {e}",
                shown(text)
            ),
        )
    })
}

/// The sample rate: the extension's, or the period's (see [`super::import`]).
pub(super) fn sample_rate(extensions: &[Extension], period: f64) -> Result<f64, FhirError> {
    let period_at = "/component/0/valueSampledData/period";
    if let Some((j, ext)) = extensions
        .iter()
        .enumerate()
        .find(|(_, e)| e.url.as_deref() == Some(SAMPLE_RATE_URL))
    {
        let at = format!("/extension/{j}/valueDecimal");
        let raw = ext.value_decimal.as_deref().ok_or_else(|| {
            FhirError::new(&at, "missing: the sample-rate extension's rate in Hz")
        })?;
        let rate = number(raw, &at, "the sample rate")?.value;
        if !(rate.is_finite() && rate > 0.0) {
            return Err(FhirError::new(
                at,
                format!("the sample rate must be a positive number of Hz, got {rate}"),
            ));
        }
        let implied = 1000.0 / rate;
        if (implied - period).abs() > 1e-9 * period {
            return Err(FhirError::new(
                at,
                format!(
                    "{rate} Hz contradicts the period of {period} ms (1000 / {rate} = {implied} ms)"
                ),
            ));
        }
        return Ok(rate);
    }
    let rate = 1000.0 / period;
    if !rate.is_finite() {
        return Err(FhirError::new(
            period_at,
            format!("a period of {period} ms is a sample rate beyond the range of a double"),
        ));
    }
    Ok(round_rate(rate, period))
}

/// `rate` (`1000 / period`), or the rate with at most 6 decimals that
/// gives back exactly the same period, as a writer that computed the
/// period from it would have.
pub(crate) fn round_rate(rate: f64, period: f64) -> f64 {
    let round = (rate * 1e6).round() / 1e6;
    if round > 0.0 && 1000.0 / round == period {
        round
    } else {
        rate
    }
}

/// `text` for an error message: quoted, and cut after 40 characters so
/// that a huge wrong value does not make a huge error.
pub(crate) fn shown(text: &str) -> String {
    let (text, cut) = cut(text);
    format!("{text:?}{cut}")
}

/// A JSON value's text for an error message, as written (it is JSON
/// already), cut like [`shown`].
pub(super) fn shown_json(raw: &RawValue) -> String {
    let (text, cut) = cut(raw.get());
    format!("{text}{cut}")
}

fn cut(text: &str) -> (&str, &'static str) {
    match text.char_indices().nth(40) {
        None => (text, ""),
        Some((at, _)) => (&text[..at], "..."),
    }
}
