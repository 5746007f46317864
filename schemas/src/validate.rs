//! The rules every request meets before anything is produced to Kafka.
//!
//! Each failure is an [`Invalid`] naming the field (a JSON pointer) and, where
//! a limit was exceeded, the limit. The same checks run in the processor on
//! decoded chunks, so a message that bypassed the gateway is still refused.

use std::collections::BTreeMap;

use arrow_buffer::ScalarBuffer;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::samples::{Calibration, Columns, LeadColumns, Samples, Signal};

/// A request that breaks a rule: which field, what is wrong, which limit.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    /// JSON pointer to the field; empty for the whole body.
    pub field: String,
    pub message: String,
    pub limit: Option<u64>,
}

impl Invalid {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Invalid {
            field: field.into(),
            message: message.into(),
            limit: None,
        }
    }

    /// The same error, naming the limit that was exceeded.
    pub fn limit(mut self, limit: u64) -> Self {
        self.limit = Some(limit);
        self
    }
}

/// Limits on what one request may carry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Most leads an ECG may declare.
    pub max_leads: usize,
    /// Longest lead name, in bytes.
    pub max_lead_name_len: usize,
    /// Longest device id, in bytes.
    pub max_device_id_len: usize,
    /// Lowest accepted sample rate, Hz.
    pub min_sample_rate_hz: f64,
    /// Highest accepted sample rate, Hz.
    pub max_sample_rate_hz: f64,
    /// Most samples per lead in one chunk.
    pub max_chunk_samples: usize,
    /// Most samples in one chunk, all leads together: keeps one Kafka
    /// message under about a megabyte (8 bytes a sample).
    pub max_chunk_values: usize,
    /// Highest accepted chunk seq (and so final seq). Capped at
    /// `u32::MAX - 1` whatever is configured, so `seq + 1` always fits.
    pub max_seq: u32,
}

/// Earliest accepted `started_at`: 1900-01-01T00:00:00Z, the start of
/// ClickHouse's `DateTime64` range (and before any recorded ECG).
pub const EARLIEST_START: OffsetDateTime = time::macros::datetime!(1900-01-01 00:00 UTC);
/// First `started_at` no longer accepted: 2200-01-01T00:00:00Z, a century
/// before the end of ClickHouse's `DateTime64` range, which leaves room for
/// the samples' timestamps after it.
pub const END_OF_STARTS: OffsetDateTime = time::macros::datetime!(2200-01-01 00:00 UTC);

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_leads: 32,
            max_lead_name_len: 16,
            max_device_id_len: 128,
            // Holter recorders go down to ~100 Hz, pacemaker-spike detection
            // up to ~32 kHz; anything outside is a unit mistake (kHz, period).
            min_sample_rate_hz: 50.0,
            max_sample_rate_hz: 32_000.0,
            max_chunk_samples: 100_000,
            max_chunk_values: 120_000,
            // The OpenAPI int32 range: a chunk a second for 68 years.
            max_seq: i32::MAX as u32,
        }
    }
}

/// The device ids [`Limits::check_header`] accepts, length aside (1 to
/// `max_device_id_len` bytes), as a regex for the OpenAPI document: no
/// control character, i.e. none of Unicode's category Cc (U+0000 to U+001F,
/// U+007F to U+009F), which is what `char::is_control` tests. ECMA-262,
/// Python and Rust regexes read it alike.
pub const DEVICE_ID_PATTERN: &str = r"^[^\x00-\x1F\x7F-\x9F]*$";

impl Limits {
    /// The lead names [`Limits::check_header`] accepts, as a regex for the
    /// OpenAPI document: 1 to `max_lead_name_len` of A-Z, a-z, 0-9, `-`,
    /// `_` (ASCII, so characters and bytes are the same count). ECMA-262
    /// and Rust read `$` as the end of the name; Python's `re.search` also
    /// lets a final newline through, which the gateway refuses.
    pub fn lead_name_pattern(&self) -> String {
        match self.max_lead_name_len {
            // `{1,0}` is not a regex; no name is accepted.
            0 => r"^[^\s\S]$".to_string(),
            max => format!("^[A-Za-z0-9_-]{{1,{max}}}$"),
        }
    }

    /// The highest seq accepted: the configured one, capped so that no
    /// arithmetic on a seq (`seq + 1`, the count of chunks) can overflow.
    pub fn seq_limit(&self) -> u32 {
        self.max_seq.min(u32::MAX - 1)
    }

    /// Checks a chunk's seq against [`Limits::seq_limit`].
    pub fn check_seq(&self, field: &str, seq: u32) -> Result<(), Invalid> {
        let max = self.seq_limit();
        if seq > max {
            return Err(
                Invalid::new(field, format!("seq must be between 0 and {max}, got {seq}"))
                    .limit(u64::from(max)),
            );
        }
        Ok(())
    }

    /// Checks an ECG's `started_at`: from [`EARLIEST_START`] up to, not
    /// including, [`END_OF_STARTS`].
    pub fn check_started_at(&self, started_at: OffsetDateTime) -> Result<(), Invalid> {
        if started_at < EARLIEST_START || started_at >= END_OF_STARTS {
            return Err(Invalid::new(
                "/started_at",
                format!(
                    "must be from 1900-01-01T00:00:00Z up to, not including, 2200-01-01T00:00:00Z, got {started_at}"
                ),
            ));
        }
        Ok(())
    }

    /// Checks an ECG's declaration: device, rate, leads.
    pub fn check_header(
        &self,
        device_id: &str,
        sample_rate_hz: f64,
        leads: &[String],
    ) -> Result<(), Invalid> {
        if device_id.is_empty() || device_id.len() > self.max_device_id_len {
            return Err(Invalid::new(
                "/device_id",
                format!(
                    "must be 1 to {} bytes, got {}",
                    self.max_device_id_len,
                    device_id.len()
                ),
            )
            .limit(self.max_device_id_len as u64));
        }
        if device_id.chars().any(char::is_control) {
            return Err(Invalid::new(
                "/device_id",
                "must not contain control characters",
            ));
        }
        if !sample_rate_hz.is_finite()
            || sample_rate_hz < self.min_sample_rate_hz
            || sample_rate_hz > self.max_sample_rate_hz
        {
            return Err(Invalid::new(
                "/sample_rate_hz",
                format!(
                    "must be between {} and {} Hz, got {sample_rate_hz}",
                    self.min_sample_rate_hz, self.max_sample_rate_hz
                ),
            )
            .limit(self.max_sample_rate_hz as u64));
        }
        if leads.is_empty() || leads.len() > self.max_leads {
            return Err(Invalid::new(
                "/leads",
                format!(
                    "must name 1 to {} leads, got {}",
                    self.max_leads,
                    leads.len()
                ),
            )
            .limit(self.max_leads as u64));
        }
        for (i, lead) in leads.iter().enumerate() {
            let ok_chars = lead
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if lead.is_empty() || lead.len() > self.max_lead_name_len || !ok_chars {
                return Err(Invalid::new(
                    format!("/leads/{i}"),
                    format!(
                        "lead names are 1 to {} characters of A-Z, a-z, 0-9, '-' or '_', got {lead:?}",
                        self.max_lead_name_len
                    ),
                ));
            }
            if leads[..i].contains(lead) {
                return Err(Invalid::new(
                    format!("/leads/{i}"),
                    format!("lead {lead:?} is declared twice"),
                ));
            }
        }
        Ok(())
    }

    /// Checks samples against the declared leads and returns them in lead
    /// order: every declared lead present, no other, all the same non-zero
    /// length, every sample finite.
    pub fn check_samples(
        &self,
        field: &str,
        leads: &[String],
        samples: &Samples,
    ) -> Result<Vec<Vec<f64>>, Invalid> {
        self.check_sample_shapes(field, leads, samples, check_finite)?;
        Ok(leads.iter().map(|lead| samples[lead].clone()).collect())
    }

    /// [`Limits::check_samples`] taking the columns by value: the buffers
    /// are moved out, not copied (the hot path of the gateway).
    pub fn take_samples(
        &self,
        field: &str,
        leads: &[String],
        mut samples: LeadColumns,
    ) -> Result<Vec<ScalarBuffer<f64>>, Invalid> {
        self.check_sample_shapes(field, leads, &samples, check_finite)?;
        Ok(leads
            .iter()
            .map(|lead| samples.remove(lead).unwrap_or_default())
            .collect())
    }

    /// Leads, lengths and limits; then `check_values` on each lead.
    fn check_sample_shapes<T, V: AsRef<[T]>>(
        &self,
        field: &str,
        leads: &[String],
        samples: &BTreeMap<String, V>,
        check_values: impl Fn(&str, &[T]) -> Result<(), Invalid>,
    ) -> Result<(), Invalid> {
        check_leads_match(field, leads, samples)?;
        let mut len = None;
        for lead in leads {
            let values = samples[lead].as_ref();
            let at = format!("{field}/{}", escape(lead));
            match len {
                None if values.is_empty() => {
                    return Err(Invalid::new(at, "a chunk must hold at least one sample"));
                }
                None if values.len() > self.max_chunk_samples => {
                    return Err(Invalid::new(
                        at,
                        format!(
                            "{} samples exceed the limit of {} per lead per chunk; send smaller chunks",
                            values.len(),
                            self.max_chunk_samples
                        ),
                    )
                    .limit(self.max_chunk_samples as u64));
                }
                None if values.len() * leads.len() > self.max_chunk_values => {
                    return Err(Invalid::new(
                        field,
                        format!(
                            "{} leads x {} samples exceed the limit of {} samples per chunk; send smaller chunks",
                            leads.len(),
                            values.len(),
                            self.max_chunk_values
                        ),
                    )
                    .limit(self.max_chunk_values as u64));
                }
                None => len = Some(values.len()),
                Some(n) if n != values.len() => {
                    return Err(Invalid::new(
                        at,
                        format!(
                            "all leads must have the same number of samples: lead {:?} has {n}, lead {lead:?} has {}",
                            leads[0],
                            values.len()
                        ),
                    ));
                }
                Some(_) => {}
            }
            check_values(&at, values)?;
        }
        Ok(())
    }
}

impl Limits {
    /// Checks a decoded Kafka chunk as strictly as the gateway checks a
    /// request: the processor never trusts that a message came through it.
    pub fn check_chunk(&self, chunk: &crate::Chunk) -> Result<(), Invalid> {
        let h = &chunk.header;
        self.check_header(&h.device_id, h.sample_rate_hz, &h.leads)?;
        self.check_started_at(h.started_at)?;
        self.check_seq("/seq", chunk.seq)?;
        if h.tenant.is_empty() {
            return Err(Invalid::new("/tenant", "a chunk must name its tenant"));
        }
        let len = chunk.len();
        if len == 0 && !chunk.is_end_mark() {
            return Err(Invalid::new(
                "/samples",
                "a chunk must hold at least one sample (only an end mark, marked final, holds none)",
            ));
        }
        if len > self.max_chunk_samples {
            return Err(Invalid::new(
                "/samples",
                format!(
                    "{len} samples exceed the limit of {} per lead per chunk",
                    self.max_chunk_samples
                ),
            )
            .limit(self.max_chunk_samples as u64));
        }
        if len.saturating_mul(h.leads.len()) > self.max_chunk_values {
            return Err(Invalid::new(
                "/samples",
                format!(
                    "{} leads x {len} samples exceed the limit of {} samples per chunk",
                    h.leads.len(),
                    self.max_chunk_values
                ),
            )
            .limit(self.max_chunk_values as u64));
        }
        if chunk.samples.leads() != h.leads.len() {
            return Err(Invalid::new(
                "/samples",
                "one column per declared lead is required",
            ));
        }
        for (i, lead) in h.leads.iter().enumerate() {
            let at = format!("/samples/{}", escape(lead));
            if chunk.samples.lead_len(i) != len {
                return Err(Invalid::new(
                    at,
                    format!(
                        "lead {lead:?} has {} samples, lead {:?} has {len}",
                        chunk.samples.lead_len(i),
                        h.leads[0]
                    ),
                ));
            }
            match &chunk.samples {
                Signal::Physical(v) => check_finite(&at, &v[i])?,
                Signal::Digital { calibration, .. } => {
                    check_calibration(&format!("/adc/{}", escape(lead)), &calibration[i])?
                }
            }
        }
        Ok(())
    }

    /// Checks an ECG's `adc` calibrations against its leads and returns them
    /// in lead order.
    pub fn check_adc(
        &self,
        leads: &[String],
        adc: &BTreeMap<String, Calibration>,
    ) -> Result<Vec<Calibration>, Invalid> {
        if let Some(unknown) = adc.keys().find(|k| !leads.contains(k)) {
            return Err(Invalid::new(
                format!("/adc/{}", escape(unknown)),
                format!("unknown lead {unknown:?}; this ECG declares {leads:?}"),
            ));
        }
        leads
            .iter()
            .map(|lead| {
                let at = format!("/adc/{}", escape(lead));
                let c = adc.get(lead).ok_or_else(|| {
                    Invalid::new(&at, format!("lead {lead:?} needs a gain and a baseline"))
                })?;
                check_calibration(&at, c)?;
                Ok(*c)
            })
            .collect()
    }

    /// Checks samples against the declared leads and, for a digital ECG
    /// (`adc` given), that every sample is an integer ADC count.
    pub fn check_signal(
        &self,
        field: &str,
        leads: &[String],
        adc: Option<&[Calibration]>,
        samples: &Samples,
    ) -> Result<Signal, Invalid> {
        let physical = self.check_samples(field, leads, samples)?;
        to_signal(field, leads, adc, physical)
    }

    /// [`Limits::check_signal`] taking the columns by value (no copy): see
    /// [`crate::samples::lead_columns`] for JSON bodies.
    pub fn take_signal(
        &self,
        field: &str,
        leads: &[String],
        adc: Option<&[Calibration]>,
        samples: LeadColumns,
    ) -> Result<Signal, Invalid> {
        let physical = self.take_samples(field, leads, samples)?;
        to_signal(field, leads, adc, physical)
    }

    /// [`Limits::take_signal`] for a decoded body that may hold integer
    /// columns: a digital ECG (`adc` given) takes integer columns as its ADC
    /// counts as they are (every `i32` is a valid count); anything else goes
    /// through `f64` as [`Limits::take_signal`].
    pub fn take_columns(
        &self,
        field: &str,
        leads: &[String],
        adc: Option<&[Calibration]>,
        columns: Columns,
    ) -> Result<Signal, Invalid> {
        match (columns, adc) {
            (Columns::Counts(mut counts), Some(calibration)) => {
                self.check_sample_shapes(field, leads, &counts, |_, _| Ok(()))?;
                Ok(Signal::Digital {
                    adc: leads
                        .iter()
                        .map(|lead| counts.remove(lead).unwrap_or_default())
                        .collect(),
                    calibration: calibration.to_vec(),
                })
            }
            (columns, adc) => self.take_signal(field, leads, adc, columns.into_values()),
        }
    }
}

/// Checked physical samples as the signal: as they are, or (for a digital
/// ECG) checked to be integer ADC counts. Takes vectors or buffers, both
/// without copying them.
pub fn to_signal<V: Into<ScalarBuffer<f64>>>(
    field: &str,
    leads: &[String],
    adc: Option<&[Calibration]>,
    physical: Vec<V>,
) -> Result<Signal, Invalid> {
    let physical: Vec<ScalarBuffer<f64>> = physical.into_iter().map(Into::into).collect();
    let Some(calibration) = adc else {
        return Ok(Signal::Physical(physical));
    };
    let mut counts = Vec::with_capacity(physical.len());
    for (lead, values) in leads.iter().zip(&physical) {
        if let Some(i) = values.iter().position(|&v| !is_adc_count(v)) {
            return Err(Invalid::new(
                format!("{field}/{}/{i}", escape(lead)),
                adc_count_message(i as u64, values[i]),
            ));
        }
        counts.push(
            values
                .iter()
                .map(|&v| v as i32)
                .collect::<ScalarBuffer<i32>>(),
        );
    }
    Ok(Signal::Digital {
        adc: counts,
        calibration: calibration.to_vec(),
    })
}

/// Whether a sample is an ADC count: an integer that fits in 32 bits. JSON
/// integers up to 2^53 parse exactly as f64, so this is exact for every i32.
pub fn is_adc_count(v: f64) -> bool {
    v.fract() == 0.0 && v >= f64::from(i32::MIN) && v <= f64::from(i32::MAX)
}

/// Says that sample `index`, `v`, is not an ADC count.
pub fn adc_count_message(index: u64, v: f64) -> String {
    format!(
        "sample {index} is {v}; this ECG's samples are ADC counts: integers that fit in 32 bits"
    )
}

/// Most ADC counts per physical unit accepted: far beyond any real ADC, and
/// small enough that (adc - baseline) / gain never underflows to zero.
pub const MAX_GAIN: f64 = 1e9;

fn check_calibration(field: &str, c: &Calibration) -> Result<(), Invalid> {
    if !(c.gain.is_finite() && c.gain > 0.0 && c.gain <= MAX_GAIN) {
        return Err(Invalid::new(
            format!("{field}/gain"),
            format!(
                "gain must be positive and at most {MAX_GAIN:e} counts per unit, got {}",
                c.gain
            ),
        )
        .limit(MAX_GAIN as u64));
    }
    Ok(())
}

fn check_leads_match<V>(
    field: &str,
    leads: &[String],
    samples: &BTreeMap<String, V>,
) -> Result<(), Invalid> {
    if let Some(unknown) = samples.keys().find(|k| !leads.contains(k)) {
        return Err(Invalid::new(
            format!("{field}/{}", escape(unknown)),
            format!("unknown lead {unknown:?}; this ECG declares {leads:?}"),
        ));
    }
    if let Some(missing) = leads.iter().find(|l| !samples.contains_key(*l)) {
        return Err(Invalid::new(
            field,
            format!("lead {missing:?} is missing; every chunk carries all declared leads"),
        ));
    }
    Ok(())
}

/// Rejects NaN and infinities, naming the sample.
pub fn check_finite(field: &str, values: &[f64]) -> Result<(), Invalid> {
    // Whole blocks first, without an early exit, so that the compiler
    // vectorises the test; the position only when one fails.
    let all_finite = values
        .chunks(64)
        .all(|block| block.iter().fold(true, |ok, v| ok & v.is_finite()));
    if all_finite {
        return Ok(());
    }
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(Invalid::new(
            format!("{field}/{i}"),
            format!(
                "sample {i} is {}; samples must be finite numbers",
                values[i]
            ),
        )),
    }
}

/// A lead name (or any key) as a JSON pointer segment (RFC 6901).
pub fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Lead-name to samples, as a map ordered for stable errors.
pub fn samples_map(leads: &[String], values: &[Vec<f64>]) -> Samples {
    leads
        .iter()
        .cloned()
        .zip(values.iter().cloned())
        .collect::<BTreeMap<_, _>>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::{CountColumns, lead_columns};

    fn leads(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn absurd_sample_rate_is_refused_with_its_limit() {
        let err = Limits::default()
            .check_header("dev", 0.5, &leads(&["I"]))
            .unwrap_err();
        assert_eq!(err.field, "/sample_rate_hz");
        assert_eq!(err.limit, Some(32_000));
    }

    #[test]
    fn duplicate_and_malformed_leads_are_refused() {
        let l = Limits::default();
        assert_eq!(
            l.check_header("d", 500.0, &leads(&["I", "I"]))
                .unwrap_err()
                .field,
            "/leads/1"
        );
        assert_eq!(
            l.check_header("d", 500.0, &leads(&["I", "V 1"]))
                .unwrap_err()
                .field,
            "/leads/1"
        );
        assert!(l.check_header("d", 500.0, &[]).is_err());
    }

    /// Names near every rule: the charset's edges, control and non-ASCII
    /// characters (one and several bytes), and lengths around the limit.
    fn names_near_the_rules() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let chars = prop_oneof![
            4 => prop::sample::select(vec!['a', 'Z', '0', '9', '-', '_', 'V']),
            1 => prop::sample::select(vec![
                ' ', '\n', '\t', '\0', '\u{1f}', '\u{7f}', '\u{80}', '\u{85}', '\u{9f}',
                '\u{a0}', '\u{2028}', 'é', 'Ⅰ', '١', '~', '/', '.', '$', '^', '\\', '[',
            ]),
            1 => any::<char>(),
        ];
        prop::collection::vec(chars, 0..20).prop_map(|c| c.into_iter().collect())
    }

    proptest::proptest! {
        /// The OpenAPI document's lead-name pattern accepts exactly the
        /// names the validator accepts, at the default and a small limit.
        #[test]
        fn lead_name_pattern_matches_exactly_the_accepted_names(
            name in names_near_the_rules(),
            max in proptest::prop_oneof![proptest::strategy::Just(16usize), 0usize..6],
        ) {
            let l = Limits { max_lead_name_len: max, ..Limits::default() };
            let pattern = regex::Regex::new(&l.lead_name_pattern()).unwrap();
            let accepted = l.check_header("d", 500.0, std::slice::from_ref(&name)).is_ok();
            proptest::prop_assert_eq!(pattern.is_match(&name), accepted, "{:?}", name);
        }

        /// [`DEVICE_ID_PATTERN`] with 1 to `max_device_id_len` bytes accepts
        /// exactly the device ids the validator accepts.
        #[test]
        fn device_id_pattern_and_byte_length_match_exactly_the_accepted_ids(
            id in names_near_the_rules(),
            max in proptest::prop_oneof![proptest::strategy::Just(128usize), 1usize..8],
        ) {
            let l = Limits { max_device_id_len: max, ..Limits::default() };
            let pattern = regex::Regex::new(DEVICE_ID_PATTERN).unwrap();
            let documented = pattern.is_match(&id) && !id.is_empty() && id.len() <= max;
            let accepted = l.check_header(&id, 500.0, &leads(&["I"])).is_ok();
            proptest::prop_assert_eq!(documented, accepted, "{:?}", id);
        }
    }

    #[test]
    fn lead_name_pattern_agrees_with_the_validator_on_named_cases() {
        let l = Limits::default();
        let pattern = regex::Regex::new(&l.lead_name_pattern()).unwrap();
        for name in [
            "I",
            "aVR",
            "V1",
            "lead_2",
            "x-y",
            "-",
            "_",
            "ABCDEFGHIJKLMNOP",
            "ABCDEFGHIJKLMNOPQ",
            "",
            "V 1",
            "V1\n",
            "\nV1",
            "é",
            "Ⅰ",
            "a.b",
            "a/b",
            "V1\0",
            "Ｉ",
        ] {
            let accepted = l.check_header("d", 500.0, &leads(&[name])).is_ok();
            assert_eq!(pattern.is_match(name), accepted, "{name:?}");
        }
    }

    #[test]
    fn unequal_lengths_name_the_lead() {
        let s = samples_map(&leads(&["I", "II"]), &[vec![1.0, 2.0], vec![1.0]]);
        let err = Limits::default()
            .check_samples("/samples", &leads(&["I", "II"]), &s)
            .unwrap_err();
        assert_eq!(err.field, "/samples/II");
    }

    #[test]
    fn unknown_and_missing_leads_are_refused() {
        let l = Limits::default();
        let s = samples_map(&leads(&["I", "X"]), &[vec![1.0], vec![1.0]]);
        let err = l.check_samples("/samples", &leads(&["I"]), &s).unwrap_err();
        assert_eq!(err.field, "/samples/X");
        let s = samples_map(&leads(&["I"]), &[vec![1.0]]);
        let err = l
            .check_samples("/samples", &leads(&["I", "II"]), &s)
            .unwrap_err();
        assert!(err.message.contains("\"II\" is missing"));
    }

    #[test]
    fn non_finite_sample_is_located() {
        let err = check_finite("/samples/V2", &[0.0, 1.0, f64::NAN]).unwrap_err();
        assert_eq!(err.field, "/samples/V2/2");
        assert!(check_finite("/x", &[f64::INFINITY]).is_err());
        assert!(check_finite("/x", &[-0.0, 0.0]).is_ok());
        // Past the first block of the vectorised test, and in a partial one.
        for at in [63, 64, 130, 199] {
            let mut values = vec![0.5; 200];
            values[at] = f64::NEG_INFINITY;
            let err = check_finite("/x", &values).unwrap_err();
            assert_eq!(err.field, format!("/x/{at}"));
        }
    }

    #[test]
    fn empty_chunk_is_refused() {
        let s = samples_map(&leads(&["I"]), &[vec![]]);
        assert!(
            Limits::default()
                .check_samples("/samples", &leads(&["I"]), &s)
                .is_err()
        );
    }

    #[test]
    fn digital_samples_must_be_integers_that_fit() {
        let l = Limits::default();
        let cal = [Calibration {
            gain: 200.0,
            baseline: 1024,
        }];
        let s = samples_map(&leads(&["I"]), &[vec![1.0, 2.5]]);
        let err = l
            .check_signal("/samples", &leads(&["I"]), Some(&cal), &s)
            .unwrap_err();
        assert_eq!(err.field, "/samples/I/1");
        let s = samples_map(&leads(&["I"]), &[vec![3e9]]);
        assert!(
            l.check_signal("/samples", &leads(&["I"]), Some(&cal), &s)
                .is_err()
        );
        let s = samples_map(&leads(&["I"]), &[vec![-2147483648.0, 2147483647.0]]);
        let ok = l
            .check_signal("/samples", &leads(&["I"]), Some(&cal), &s)
            .unwrap();
        assert_eq!(ok.lead_len(0), 2);
    }

    #[test]
    fn calibrations_must_cover_every_lead_with_a_positive_gain() {
        let l = Limits::default();
        let mut adc = BTreeMap::new();
        adc.insert(
            "I".to_string(),
            Calibration {
                gain: 0.0,
                baseline: 0,
            },
        );
        assert_eq!(
            l.check_adc(&leads(&["I"]), &adc).unwrap_err().field,
            "/adc/I/gain"
        );
        assert_eq!(
            l.check_adc(&leads(&["I", "II"]), &BTreeMap::new())
                .unwrap_err()
                .field,
            "/adc/I"
        );
    }

    #[test]
    fn taking_samples_checks_exactly_like_checking_them() {
        let l = Limits::default();
        let take = |order: &[&str], s: &Samples| {
            l.take_samples("/samples", &leads(order), lead_columns(s.clone()))
                .map(|v| v.into_iter().map(Vec::from).collect::<Vec<_>>())
        };
        let ok = samples_map(&leads(&["I", "II"]), &[vec![1.0, -0.0], vec![0.5, 2.0]]);
        assert_eq!(
            take(&["II", "I"], &ok),
            l.check_samples("/samples", &leads(&["II", "I"]), &ok)
        );
        let bad = samples_map(&leads(&["I", "II"]), &[vec![1.0, f64::NAN], vec![0.5, 2.0]]);
        let err = take(&["I", "II"], &bad).unwrap_err();
        assert_eq!(err.field, "/samples/I/1");
        assert_eq!(
            Err(err),
            l.check_samples("/samples", &leads(&["I", "II"]), &bad)
        );
    }

    #[test]
    fn integer_columns_are_a_digital_ecgs_counts_as_they_are() {
        let l = Limits::default();
        let cal = [
            Calibration {
                gain: 200.0,
                baseline: 1024,
            },
            Calibration {
                gain: 1.0,
                baseline: 0,
            },
        ];
        let counts = |i: Vec<i32>, ii: Vec<i32>| {
            Columns::Counts(CountColumns::from([
                ("I".to_string(), i.into()),
                ("II".to_string(), ii.into()),
            ]))
        };
        let order = leads(&["II", "I"]);
        let digital = l
            .take_columns(
                "/samples",
                &order,
                Some(&cal),
                counts(vec![i32::MIN, 5], vec![i32::MAX, -1]),
            )
            .unwrap();
        assert_eq!(
            digital,
            Signal::Digital {
                adc: vec![vec![i32::MAX, -1].into(), vec![i32::MIN, 5].into()],
                calibration: cal.to_vec(),
            }
        );
        // A physical ECG takes the same columns as numbers.
        let physical = l
            .take_columns("/samples", &order, None, counts(vec![3, 5], vec![-1, 0]))
            .unwrap();
        assert_eq!(
            physical,
            Signal::from_vecs(vec![vec![-1.0, 0.0], vec![3.0, 5.0]])
        );
        // Shapes are checked as for numbers: the same error, field and all.
        let err = l
            .take_columns("/samples", &order, Some(&cal), counts(vec![1], vec![1, 2]))
            .unwrap_err();
        let as_values = l
            .take_signal(
                "/samples",
                &order,
                Some(&cal),
                counts(vec![1], vec![1, 2]).into_values(),
            )
            .unwrap_err();
        assert_eq!(err, as_values);
        assert_eq!(err.field, "/samples/I");
        let empty = l
            .take_columns("/samples", &order, Some(&cal), counts(vec![], vec![]))
            .unwrap_err();
        assert!(empty.message.contains("at least one sample"), "{empty:?}");
    }
}
