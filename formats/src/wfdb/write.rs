//! Writes WFDB records, streamed: the signal file (`.dat`) is encoded frame
//! by frame into the caller's buffer, so a record of any length is written
//! in constant memory, and its header (`.hea`) is made from what the signal
//! file's writer counted.
//!
//! Guarantee: a record written here reads back through [`parse_header`] and
//! [`WfdbReader`] as the same [`Recording`] and the same counts, and the
//! header's initial values and checksums are those the WFDB library checks.
//! Counts are never altered: one outside the format's range is refused.
//!
//! A streaming export (signal file first, in an archive whose entries
//! declare their length up front) goes:
//! 1. [`format_for`] the counts' extremes, and [`check_header`], so that
//!    nothing is refused after bytes are sent;
//! 2. [`dat_len`] for the signal file's length;
//! 3. [`DatWriter::push_frame`] or [`DatWriter::push_block`] for every
//!    sample, then [`DatWriter::finish`];
//! 4. [`header_text`] with what `finish` returned.
//!
//! Limits: single-segment records, one signal file in one format, one
//! sample per frame, no byte offset, no info strings. The lowest count of
//! each format (-2048 in 212, -32768 in 16, `i32::MIN` in 32) is written
//! as given, but the WFDB library reads it as an invalid sample (a gap):
//! that is how a file read in the same format keeps its gaps.
//!
//! [`parse_header`]: super::parse_header
//! [`WfdbReader`]: super::WfdbReader
//! [`Recording`]: crate::Recording

use time::{OffsetDateTime, UtcOffset};

use super::Format;
use crate::FormatError;

/// Most signals a header may declare (the reader's limit).
const MAX_SIGNALS: usize = 4096;

/// The narrowest format for counts in `lo..=hi`: 212 if within
/// -2048..=2047, 16 if within `i16`, else 32. An empty range (`lo > hi`:
/// no counts) gives 212.
pub fn format_for(lo: i32, hi: i32) -> Format {
    if lo > hi {
        return Format::F212;
    }
    [Format::F212, Format::F16]
        .into_iter()
        .find(|f| f.range().contains(&lo) && f.range().contains(&hi))
        .unwrap_or(Format::F32)
}

/// Bytes of the signal file for `samples` samples in all (frames ×
/// signals) in `format`. Format 212 ends an odd count with two bytes, the
/// last sample's, as the WFDB library (`f212`) and wfdb-python write it.
pub fn dat_len(format: Format, samples: u64) -> u64 {
    match format {
        Format::F212 => samples / 2 * 3 + samples % 2 * 2,
        Format::F16 => samples * 2,
        Format::F32 => samples * 4,
    }
}

/// What the signal file's writer counted, for the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Each signal's checksum: the sum of its counts modulo 2^16, as the
    /// signed 16-bit value a header stores.
    pub checksums: Vec<i16>,
    /// Each signal's first count (0 if none).
    pub initial: Vec<i32>,
    /// Frames written.
    pub samples_per_signal: u64,
}

/// Encodes a record's counts in frame order (sample 0 of each signal, then
/// sample 1 of each, ...) as they come. Format 212 packs samples in pairs
/// that run across frames; the writer keeps the first of a pair until the
/// second comes, or [`finish`](Self::finish).
///
/// A push that returns an error has written nothing and changed nothing:
/// the caller may stop there, or go on with other counts.
#[derive(Debug, Clone)]
pub struct DatWriter {
    format: Format,
    /// Running sums modulo 2^16, one per signal.
    sums: Vec<u16>,
    initial: Vec<i32>,
    frames: u64,
    /// The first sample of a 212 pair whose second has not come yet.
    half: Option<i32>,
}

impl DatWriter {
    pub fn new(format: Format, signals: usize) -> Self {
        DatWriter {
            format,
            sums: vec![0; signals],
            initial: vec![0; signals],
            frames: 0,
            half: None,
        }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Frames pushed so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Encodes one frame, one count per signal, into `out`.
    pub fn push_frame(&mut self, frame: &[i32], out: &mut Vec<u8>) -> Result<(), FormatError> {
        if frame.len() != self.sums.len() {
            return Err(FormatError::Unsupported(format!(
                "frame {}: {} counts for {} signals",
                self.frames,
                frame.len(),
                self.sums.len()
            )));
        }
        for (signal, &v) in frame.iter().enumerate() {
            self.check(signal, 0, v)?;
        }
        out.reserve(frame.len() * 4);
        for (signal, &v) in frame.iter().enumerate() {
            self.put(signal, v, out);
        }
        self.frames += 1;
        Ok(())
    }

    /// Encodes a block given lead by lead (one slice per signal, all of one
    /// length, as [`SignalReader::next_block`](crate::SignalReader::next_block)
    /// gives them) into `out`, in frame order.
    pub fn push_block<L: AsRef<[i32]>>(
        &mut self,
        leads: &[L],
        out: &mut Vec<u8>,
    ) -> Result<(), FormatError> {
        let rows = leads.first().map_or(0, |l| l.as_ref().len());
        if leads.len() != self.sums.len() || leads.iter().any(|l| l.as_ref().len() != rows) {
            let lengths: Vec<usize> = leads.iter().map(|l| l.as_ref().len()).collect();
            return Err(FormatError::Unsupported(format!(
                "a block of leads of {lengths:?} counts for {} signals; \
                 expected one lead per signal, all of one length",
                self.sums.len()
            )));
        }
        for (signal, lead) in leads.iter().enumerate() {
            for (row, &v) in lead.as_ref().iter().enumerate() {
                self.check(signal, row as u64, v)?;
            }
        }
        out.reserve(dat_len(self.format, (rows * leads.len()) as u64) as usize + 2);
        for row in 0..rows {
            for (signal, lead) in leads.iter().enumerate() {
                self.put(signal, lead.as_ref()[row], out);
            }
            self.frames += 1;
        }
        Ok(())
    }

    /// Writes the last half pair of format 212, if any, and gives what the
    /// header needs. The bytes written in all are
    /// [`dat_len`]`(format, frames × signals)`.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Written {
        if let Some(a) = self.half.take() {
            out.extend_from_slice(&[a as u8, ((a >> 8) & 0x0f) as u8]);
        }
        Written {
            checksums: self.sums.iter().map(|&s| s as i16).collect(),
            initial: self.initial,
            samples_per_signal: self.frames,
        }
    }

    /// Refuses a count the format cannot hold, `row` frames after the
    /// next frame.
    fn check(&self, signal: usize, row: u64, v: i32) -> Result<(), FormatError> {
        let range = self.format.range();
        if range.contains(&v) {
            return Ok(());
        }
        Err(FormatError::Unsupported(format!(
            "signal {signal}, frame {}: count {v} is outside format {}'s {}..={}",
            self.frames + row,
            self.format.number(),
            range.start(),
            range.end()
        )))
    }

    /// Encodes a count already checked.
    fn put(&mut self, signal: usize, v: i32, out: &mut Vec<u8>) {
        if self.frames == 0 {
            self.initial[signal] = v;
        }
        // Modulo 2^16: the low 16 bits of the two's complement.
        self.sums[signal] = self.sums[signal].wrapping_add(v as u16);
        match self.format {
            Format::F16 => out.extend_from_slice(&(v as i16).to_le_bytes()),
            Format::F32 => out.extend_from_slice(&v.to_le_bytes()),
            Format::F212 => match self.half.take() {
                None => self.half = Some(v),
                // The low 8 bits of each, then their high 4 bits in one byte
                // (the first's low nibble), the second's low 8 bits last.
                Some(a) => out.extend_from_slice(&[
                    a as u8,
                    (((a >> 8) & 0x0f) | (((v >> 8) & 0x0f) << 4)) as u8,
                    v as u8,
                ]),
            },
        }
    }
}

/// One signal line's calibration and name.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignalSpec<'a> {
    /// The lead's name, the line's description.
    pub description: &'a str,
    /// Counts per unit.
    pub gain: f64,
    /// The count of 0 units.
    pub baseline: i32,
    /// The physical unit, `mV` for ecg-stream's calibrations.
    pub units: &'a str,
}

/// A record name WFDB accepts: letters, digits and underscores
/// (`header(5)`), else an error naming the first other character.
pub fn check_record_name(name: &str) -> Result<(), FormatError> {
    if name.is_empty() {
        return Err(FormatError::header("record name", "empty"));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
    {
        Some(c) => Err(FormatError::header(
            "record name",
            format!("{name:?} has {c:?}; WFDB allows letters, digits and underscores only"),
        )),
        None => Ok(()),
    }
}

/// Checks everything [`header_text`] refuses that is known before the
/// signal file is written: the record and file names, the sampling
/// frequency, the base time, the signals' names, gains and units.
pub fn check_header(
    record: &str,
    dat_file: &str,
    sample_rate_hz: f64,
    started_at: Option<OffsetDateTime>,
    signals: &[SignalSpec<'_>],
) -> Result<(), FormatError> {
    check_record_name(record)?;
    // The reader takes only a file beside the header; a space or `#` would
    // end the field.
    let bad_file = |c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if dat_file.is_empty() || dat_file.starts_with(['.', '-']) || dat_file.contains(bad_file) {
        return Err(FormatError::header(
            "signal file name",
            format!(
                "{dat_file:?}: letters, digits, '_', '.' and '-' only, not starting with '.' or '-'"
            ),
        ));
    }
    if !(sample_rate_hz.is_finite() && sample_rate_hz > 0.0) {
        return Err(FormatError::header(
            "sampling frequency",
            format!("{sample_rate_hz} is not a positive number"),
        ));
    }
    if signals.is_empty() || signals.len() > MAX_SIGNALS {
        return Err(FormatError::header(
            "number of signals",
            format!("{} is not 1 to {MAX_SIGNALS}", signals.len()),
        ));
    }
    if let Some(t) = started_at {
        base_time(t)?;
    }
    for (i, s) in signals.iter().enumerate() {
        let name = s.description;
        // The reader trims the description and cuts lines at `#` (WFDB's
        // comment mark); a name it would read otherwise is refused.
        if name.is_empty()
            || name.trim() != name
            || name.contains(|c: char| c.is_control() || c == '#')
        {
            return Err(FormatError::header(
                format!("signal {i} description"),
                format!(
                    "lead name {name:?}: empty, or with a '#', a line break or another control \
                     character, or spaces at either end"
                ),
            ));
        }
        // Zero is WFDB's "uncalibrated", read as 200.
        if !(s.gain.is_finite() && s.gain > 0.0) {
            return Err(FormatError::header(
                format!("signal {i} gain"),
                format!("lead {name:?}: gain {} is not a positive number", s.gain),
            ));
        }
        if s.units.is_empty()
            || s.units
                .contains(|c: char| c.is_whitespace() || c.is_control() || c == '#')
        {
            return Err(FormatError::header(
                format!("signal {i} units"),
                format!(
                    "lead {name:?}: units {:?} must be a word without spaces or '#'",
                    s.units
                ),
            ));
        }
    }
    Ok(())
}

/// The `.hea` text of a single-segment record whose signal file `dat_file`
/// (beside the header) holds `signals` in `format`, as `written` counted:
///
/// ```text
/// record nsig fs nsamp [HH:MM:SS[.ffffff] DD/MM/YYYY]
/// file format gain(baseline)/units adcres 0 initval checksum 0 description
/// ```
///
/// Frequency and gains are printed in the shortest text that reads back as
/// the same `f64` (a gain of 200 prints `200`). The baseline is always
/// given (ADC zero is 0); the ADC resolution is the format's width. The base
/// time is `started_at` in UTC to the microsecond (as wfdb-python writes
/// and reads it); a finer time is refused. No samples gives `nsamp` 0,
/// which WFDB reads as "not given".
pub fn header_text(
    record: &str,
    dat_file: &str,
    format: Format,
    sample_rate_hz: f64,
    started_at: Option<OffsetDateTime>,
    signals: &[SignalSpec<'_>],
    written: &Written,
) -> Result<String, FormatError> {
    check_header(record, dat_file, sample_rate_hz, started_at, signals)?;
    if written.checksums.len() != signals.len() || written.initial.len() != signals.len() {
        return Err(FormatError::header(
            "signal lines",
            format!(
                "{} signals, but checksums and initial values of {} and {}",
                signals.len(),
                written.checksums.len(),
                written.initial.len()
            ),
        ));
    }
    // Rust prints an f64 in the shortest text that parses back to it, and
    // never in exponent form, which every WFDB reader takes (`strtod`).
    let mut text = format!(
        "{record} {} {sample_rate_hz} {}",
        signals.len(),
        written.samples_per_signal
    );
    if let Some(t) = started_at {
        text.push(' ');
        text.push_str(&base_time(t)?);
    }
    text.push('\n');
    let (number, bits) = (format.number(), format.bits());
    for ((s, initial), checksum) in signals.iter().zip(&written.initial).zip(&written.checksums) {
        text.push_str(&format!(
            "{dat_file} {number} {}({})/{} {bits} 0 {initial} {checksum} 0 {}\n",
            s.gain, s.baseline, s.units, s.description
        ));
    }
    Ok(text)
}

/// `HH:MM:SS[.ffffff] DD/MM/YYYY` of `t` in UTC, the fraction's trailing
/// zeros dropped.
fn base_time(t: OffsetDateTime) -> Result<String, FormatError> {
    let bad = |why: &str| FormatError::header("base time", format!("{t}: {why}"));
    let t = t
        .checked_to_offset(UtcOffset::UTC)
        .ok_or_else(|| bad("out of range in UTC"))?;
    if !(1..=9999).contains(&t.year()) {
        return Err(bad("the year is not 1 to 9999"));
    }
    // wfdb-python reads 6 digits at most; ecg-stream stores microseconds.
    if t.nanosecond() % 1000 != 0 {
        return Err(bad("finer than a microsecond"));
    }
    let mut s = format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second());
    let micros = t.microsecond();
    if micros != 0 {
        s.push('.');
        s.push_str(format!("{micros:06}").trim_end_matches('0'));
    }
    s.push_str(&format!(
        " {:02}/{:02}/{:04}",
        t.day(),
        u8::from(t.month()),
        t.year()
    ));
    Ok(s)
}
