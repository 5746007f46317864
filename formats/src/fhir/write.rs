//! Writing an Observation in pieces: [`write_head`], then per lead
//! [`write_component_start`], its samples ([`write_count`] or
//! [`write_value`]) and [`write_component_end`], then [`write_tail`]. The
//! caller can flush `out` between any two calls, so an Observation of
//! any length is written in constant memory.
//!
//! Every string goes through serde_json (escaped: quotes, backslashes,
//! control characters); every double is its shortest round-trip text
//! (ryu), which [`super::import`] reads back to the same bits.

use ecg_schemas::Units;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use super::decimal::{exact_reciprocal, plain};
use super::leads::{MDC_ECG_ELEC_POTL, MDC_SYSTEM, lead_code, lead_of_code};
use super::{ADC_URL, LOINC_EKG_STUDY, NEXT_PAGE_URL, SAMPLE_RATE_URL, UCUM};

/// What the Observation says about the whole ECG.
#[derive(Debug, Clone, Copy)]
pub struct Head<'a> {
    /// The ECG's uuid: the Observation's `id` (a valid FHIR id) and its
    /// `identifier` (system `urn:ecg-stream:ecg`).
    pub id: &'a str,
    /// `"final"` or `"preliminary"`.
    pub status: &'a str,
    pub device_id: &'a str,
    /// When the first sample of this Observation was taken.
    pub start: OffsetDateTime,
    /// When its last sample was taken.
    pub end: OffsetDateTime,
    /// Samples per second per lead; positive and finite.
    pub sample_rate_hz: f64,
    /// The URL of the next page, when this Observation is one page of the
    /// ECG.
    pub next: Option<&'a str>,
}

/// How a lead's samples are written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DataForm {
    /// ADC counts ([`write_count`]), `physical = (count - baseline) /
    /// gain` with `gain` positive and finite. `factor` is `1 / gain` and
    /// `origin` is `-baseline / gain`, exact decimals when `1 / gain` is
    /// one ([`adc_factor`]). Otherwise they are the shortest texts of the
    /// rounded doubles, and `origin + factor × count` is then within about
    /// one ulp of `|origin| + |factor × count|` of the physical value; the
    /// `adc` extension, always written, carries the exact calibration.
    Adc { gain: f64, baseline: i32 },
    /// Integers ([`write_count`]) whose value is `data / 10^scale`:
    /// `factor` is `10^-scale` as plain decimal text (`"0.001"`), `origin`
    /// 0.
    Scaled { scale: u8 },
    /// Each value's shortest round-trip text ([`write_value`]); `factor`
    /// 1, `origin` 0.
    Text,
}

/// Writes the Observation up to the opening of its `component` array:
/// `{"resourceType":"Observation", ..., "component":[`.
///
/// Times are written in UTC, RFC 3339 (years 0000 to 9999; a time
/// outside is written as `time`'s text, which is not RFC 3339).
pub fn write_head(out: &mut Vec<u8>, head: &Head<'_>) {
    raw(out, r#"{"resourceType":"Observation","id":"#);
    string(out, head.id);
    raw(out, r#","extension":[{"url":"#);
    string(out, SAMPLE_RATE_URL);
    raw(out, r#","valueDecimal":"#);
    number(out, head.sample_rate_hz);
    out.push(b'}');
    if let Some(next) = head.next {
        raw(out, r#",{"url":"#);
        string(out, NEXT_PAGE_URL);
        raw(out, r#","valueUrl":"#);
        string(out, next);
        out.push(b'}');
    }
    raw(
        out,
        r#"],"identifier":[{"system":"urn:ecg-stream:ecg","value":"#,
    );
    string(out, head.id);
    raw(out, r#"}],"status":"#);
    string(out, head.status);
    raw(
        out,
        r#","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"procedure","display":"Procedure"}]}]"#,
    );
    raw(out, r#","code":{"coding":[{"system":"#);
    string(out, MDC_SYSTEM);
    raw(
        out,
        &format!(r#","code":"{MDC_ECG_ELEC_POTL}","display":"MDC_ECG_ELEC_POTL"}},"#),
    );
    raw(
        out,
        &format!(
            r#"{{"system":"http://loinc.org","code":"{LOINC_EKG_STUDY}","display":"EKG study"}}]}}"#
        ),
    );
    raw(out, r#","subject":"#);
    device(out, head.device_id);
    raw(out, r#","effectivePeriod":{"start":"#);
    time(out, head.start);
    raw(out, r#","end":"#);
    time(out, head.end);
    raw(out, r#"},"device":"#);
    device(out, head.device_id);
    raw(out, r#","component":["#);
}

/// Writes a lead's component up to the opening quote of its `data`
/// string; `first` for the first component (no comma before it).
///
/// The lead is coded in MDC when it is a standard lead written as
/// ecg-stream names it ([`super::lead_of_code`]); `code.text` is always
/// the lead's name. `period` is the shortest text of `1000 /
/// sample_rate_hz`. A non-finite number (a gain or rate that is not
/// positive and finite) is written as `null`, which import refuses.
pub fn write_component_start(
    out: &mut Vec<u8>,
    first: bool,
    lead: &str,
    units: Units,
    sample_rate_hz: f64,
    form: &DataForm,
) {
    if !first {
        out.push(b',');
    }
    raw(out, r#"{"code":{"#);
    if let Some((code, display)) = lead_code(lead)
        && lead_of_code(code) == Some(lead)
    {
        raw(out, r#""coding":[{"system":"#);
        string(out, MDC_SYSTEM);
        raw(
            out,
            &format!(r#","code":"{code}","display":"{display}"}}],"#),
        );
    }
    raw(out, r#""text":"#);
    string(out, lead);
    raw(out, r#"},"valueSampledData":{"#);
    let (origin, factor) = match *form {
        DataForm::Adc { gain, baseline } => {
            raw(out, r#""extension":[{"url":"#);
            string(out, ADC_URL);
            raw(out, r#","extension":[{"url":"gain","valueDecimal":"#);
            number(out, gain);
            raw(
                out,
                &format!(r#"}},{{"url":"baseline","valueInteger":{baseline}}}]}}],"#),
            );
            adc_origin_factor(gain, baseline)
        }
        DataForm::Scaled { scale } => ("0".to_string(), plain(1, -i64::from(scale))),
        DataForm::Text => ("0".to_string(), "1".to_string()),
    };
    raw(out, r#""origin":{"value":"#);
    raw(out, &origin);
    raw(out, r#","unit":"#);
    string(out, units.as_str());
    raw(out, r#","system":"#);
    string(out, UCUM);
    raw(out, r#","code":"#);
    string(out, units.as_str());
    raw(out, r#"},"period":"#);
    number(out, 1000.0 / sample_rate_hz);
    raw(out, r#","factor":"#);
    raw(out, &factor);
    raw(out, r#","dimensions":1,"data":""#);
}

/// One integer data item (`Adc` and `Scaled`), after a space unless
/// `first`.
pub fn write_count(out: &mut Vec<u8>, first: bool, n: i64) {
    if !first {
        out.push(b' ');
    }
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut u = n.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[at..]);
}

/// One `Text` data item, after a space unless `first`: the value's
/// shortest round-trip text (`-0.0` stays `-0.0`, `1e300`, `5e-324`).
/// NaN and infinities have no decimal: they are written as `E`, FHIR's
/// marker of a point without a valid value, which import refuses with its
/// position (ecg-stream's samples are always finite).
pub fn write_value(out: &mut Vec<u8>, first: bool, v: f64) {
    if !first {
        out.push(b' ');
    }
    if v.is_finite() {
        raw(out, ryu::Buffer::new().format_finite(v));
    } else {
        out.push(b'E');
    }
}

/// Closes a component: its `data` string, `valueSampledData`, component.
pub fn write_component_end(out: &mut Vec<u8>) {
    raw(out, "\"}}");
}

/// Closes the `component` array and the Observation.
pub fn write_tail(out: &mut Vec<u8>) {
    raw(out, "]}");
}

/// The plain decimal text of `1 / gain` when it is exact (`factor × gain
/// == 1`, e.g. `"0.005"` for 200 counts per unit), else `None`: 3, 0.62, a
/// gain that is not positive and finite, or one whose reciprocal needs
/// more than 38 significant digits (every exact gain from 2^-40, about
/// 1e-12, to 2^54, about 1.8e16, fits).
pub fn adc_factor(gain: f64) -> Option<String> {
    exact_reciprocal(gain).map(|(m, e)| plain(m, e))
}

/// `origin` and `factor` of an `Adc` lead: exact decimals when `1 / gain`
/// is one (`origin = -baseline × factor`, in integers), else the shortest
/// texts of the doubles nearest `-baseline / gain` and `1 / gain`.
fn adc_origin_factor(gain: f64, baseline: i32) -> (String, String) {
    if let Some((m, e)) = exact_reciprocal(gain)
        && let Some(origin) = m.checked_mul(-i128::from(baseline))
    {
        return (plain(origin, e), plain(m, e));
    }
    let origin = if baseline == 0 {
        "0".to_string()
    } else {
        shortest(-f64::from(baseline) / gain)
    };
    (origin, shortest(1.0 / gain))
}

fn shortest(v: f64) -> String {
    if v.is_finite() {
        ryu::Buffer::new().format_finite(v).to_string()
    } else {
        "null".to_string()
    }
}

/// A logical reference to the device: valid R4 as `subject` (Device is
/// among its targets) and as `device`.
fn device(out: &mut Vec<u8>, device_id: &str) {
    raw(
        out,
        r#"{"type":"Device","identifier":{"system":"urn:ecg-stream:device","value":"#,
    );
    string(out, device_id);
    raw(out, "}}");
}

fn time(out: &mut Vec<u8>, t: OffsetDateTime) {
    // In UTC, RFC 3339 needs no offset seconds; near the ends of `time`'s
    // range the conversion can fail, and then the time stays as it is.
    let utc = t.checked_to_offset(UtcOffset::UTC).unwrap_or(t);
    match utc.format(&Rfc3339) {
        Ok(text) => string(out, &text),
        Err(_) => string(out, &utc.to_string()),
    }
}

fn number(out: &mut Vec<u8>, v: f64) {
    raw(out, &shortest(v));
}

fn raw(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(text.as_bytes());
}

/// `s` as a JSON string.
fn string(out: &mut Vec<u8>, s: &str) {
    // Writing a str into a Vec cannot fail: no I/O, no map key.
    serde_json::to_writer(&mut *out, s).expect("a str serializes into a Vec");
}
