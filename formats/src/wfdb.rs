//! PhysioNet WFDB records: a text header (`.hea`) and one signal file
//! (`.dat`) in format 212 (two 12-bit samples in three bytes), 16 (16-bit
//! little-endian two's complement) or 32 (32-bit, likewise), frames of one
//! sample per lead.
//!
//! Supported: single-segment records whose signals share one signal file
//! and one format, with a byte offset, one sample per frame (no `x2`
//! oversampling) and no skew. Header fields follow `header(5)` of the WFDB
//! Software Package: gain defaults to 200 counts per unit, baseline to the
//! ADC zero, units to millivolts. Multi-segment records, other formats and
//! mixed files are refused with a message saying which.
//!
//! [`annotations`] reads and writes the record's annotation files;
//! [`write`](mod@write) writes records (signal file and header), streamed.

pub mod annotations;
pub mod write;

use std::io::{self, BufRead, Read};

use ecg_schemas::Calibration;
use time::{Date, Month, OffsetDateTime, Time};

use crate::units::millivolts_per;
use crate::{FormatError, Recording, SignalReader};

/// Gain of a signal whose header gives none, or 0 (`DEFGAIN` of the WFDB
/// library).
const DEFAULT_GAIN: f64 = 200.0;
/// Sampling frequency of a record whose header gives none (`DEFFREQ`).
const DEFAULT_FREQUENCY: f64 = 250.0;

/// Storage formats this reader decodes and [`write`](mod@write) writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Two 12-bit two's-complement samples in three bytes.
    F212,
    /// 16-bit little-endian two's complement.
    F16,
    /// 32-bit little-endian two's complement.
    F32,
}

impl Format {
    /// The format's number in a header's signal lines.
    pub fn number(self) -> u16 {
        match self {
            Format::F212 => 212,
            Format::F16 => 16,
            Format::F32 => 32,
        }
    }

    /// Bits per sample.
    pub fn bits(self) -> u32 {
        match self {
            Format::F212 => 12,
            Format::F16 => 16,
            Format::F32 => 32,
        }
    }

    /// The counts the format holds. The lowest is also the WFDB library's
    /// mark of an invalid sample (`WFDB_INVALID_SAMPLE` when read).
    pub fn range(self) -> std::ops::RangeInclusive<i32> {
        let bits = self.bits();
        (i32::MIN >> (32 - bits))..=(i32::MAX >> (32 - bits))
    }
}

/// A parsed `.hea` header.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub recording: Recording,
    /// The signal file, relative to the header's directory.
    pub file: String,
    pub format: Format,
    /// Bytes to skip at the start of the signal file.
    pub byte_offset: u64,
}

/// Parses a header's text.
pub fn parse_header(text: &str) -> Result<Header, FormatError> {
    let mut lines = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty());
    let record = lines
        .next()
        .ok_or_else(|| FormatError::header("record line", "the header is empty"))?;
    let fields: Vec<&str> = record.split_whitespace().collect();
    let name = fields[0];
    if name.contains('/') {
        return Err(FormatError::Unsupported(format!(
            "record {name} is multi-segment"
        )));
    }
    let nsig: usize = parse_field(fields.get(1).copied(), "number of signals")?.unwrap_or(0);
    if nsig == 0 {
        return Err(FormatError::header(
            "record line",
            "the record has no signals",
        ));
    }
    if nsig > 4096 {
        return Err(FormatError::header(
            "number of signals",
            format!("{nsig} is over 4096"),
        ));
    }
    let fs = fields.get(2).map(|f| f.split('/').next().unwrap_or(f));
    let sample_rate_hz: f64 = parse_field(fs, "sampling frequency")?.unwrap_or(DEFAULT_FREQUENCY);
    if !(sample_rate_hz.is_finite() && sample_rate_hz > 0.0) {
        return Err(FormatError::header(
            "sampling frequency",
            format!("{sample_rate_hz} is not positive"),
        ));
    }
    let samples_per_lead: Option<u64> =
        parse_field(fields.get(3).copied(), "number of samples")?.filter(|&n| n > 0);
    let started_at = match (fields.get(4), fields.get(5)) {
        (Some(t), Some(d)) => Some(base_datetime(t, d)?),
        _ => None,
    };

    let mut leads = Vec::with_capacity(nsig);
    let mut calibration = Vec::with_capacity(nsig);
    let mut first: Option<(String, Format, u64)> = None;
    for i in 0..nsig {
        let line = lines.next().ok_or_else(|| {
            FormatError::header(
                "signal lines",
                format!("{nsig} signals declared, {i} given"),
            )
        })?;
        let signal = parse_signal(line, i)?;
        let key = (signal.file.clone(), signal.format, signal.byte_offset);
        match &first {
            None => first = Some(key),
            Some(f) if *f != key => {
                return Err(FormatError::Unsupported(format!(
                    "signal {i} is in {} format {:?}; every signal must share the first's file and format",
                    key.0, key.1
                )));
            }
            Some(_) => {}
        }
        leads.push(signal.description.unwrap_or_else(|| format!("{name}_{i}")));
        calibration.push(signal.calibration);
    }
    let (file, format, byte_offset) = first.expect("nsig > 0");
    Ok(Header {
        recording: Recording {
            leads,
            sample_rate_hz,
            calibration,
            samples_per_lead,
            started_at,
        },
        file,
        format,
        byte_offset,
    })
}

struct SignalLine {
    file: String,
    format: Format,
    byte_offset: u64,
    calibration: Calibration,
    description: Option<String>,
}

fn parse_signal(line: &str, i: usize) -> Result<SignalLine, FormatError> {
    let what = |field: &str| format!("signal {i} {field}");
    let mut fields = line
        .splitn(9, char::is_whitespace)
        .filter(|f| !f.is_empty());
    let file = fields.next().unwrap_or_default().to_string();
    if file == "-" || file.contains('/') || file.contains('\\') || file.starts_with('.') {
        return Err(FormatError::Unsupported(format!(
            "signal {i} file {file:?}: only a file beside the header is read"
        )));
    }
    let spec = fields
        .next()
        .ok_or_else(|| FormatError::header(what("format"), "missing"))?;
    let (spec, byte_offset) = match spec.split_once('+') {
        Some((s, o)) => (
            s,
            o.parse().map_err(|_| {
                FormatError::header(what("byte offset"), format!("{o:?} is not a number"))
            })?,
        ),
        None => (spec, 0),
    };
    if spec.contains('x') || spec.contains(':') {
        return Err(FormatError::Unsupported(format!(
            "signal {i} format {spec}: oversampled or skewed signals"
        )));
    }
    let format = match spec {
        "212" => Format::F212,
        "16" => Format::F16,
        "32" => Format::F32,
        other => {
            return Err(FormatError::Unsupported(format!(
                "signal {i} format {other}: only formats 212, 16 and 32 are read"
            )));
        }
    };
    // gain[(baseline)][/units]
    let gain_field = fields.next();
    let (mut gain, mut baseline, mut unit) = (DEFAULT_GAIN, None, "mV".to_string());
    if let Some(g) = gain_field {
        let (g, u) = match g.split_once('/') {
            Some((g, u)) => (g, Some(u)),
            None => (g, None),
        };
        let (g, b) = match g.split_once('(') {
            Some((g, b)) => (
                g,
                Some(
                    b.strip_suffix(')')
                        .ok_or_else(|| FormatError::header(what("baseline"), "missing )"))?,
                ),
            ),
            None => (g, None),
        };
        let value: f64 = g
            .parse()
            .map_err(|_| FormatError::header(what("gain"), format!("{g:?} is not a number")))?;
        if !value.is_finite() || value < 0.0 {
            return Err(FormatError::header(
                what("gain"),
                format!("{value} is not a positive number"),
            ));
        }
        if value > 0.0 {
            gain = value;
        }
        if let Some(b) = b {
            baseline = Some(b.parse::<i32>().map_err(|_| {
                FormatError::header(what("baseline"), format!("{b:?} is not an integer"))
            })?);
        }
        if let Some(u) = u {
            unit = u.to_string();
        }
    }
    let _resolution = fields.next();
    let adc_zero: i32 = match fields.next() {
        Some(z) => z.parse().map_err(|_| {
            FormatError::header(what("ADC zero"), format!("{z:?} is not an integer"))
        })?,
        None => 0,
    };
    let _initial = fields.next();
    let _checksum = fields.next();
    let _block = fields.next();
    let description = fields
        .next()
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty());
    let factor = millivolts_per(&unit).ok_or_else(|| {
        FormatError::Unsupported(format!(
            "signal {i} unit {unit:?}: only voltages (V, mV, uV, nV)"
        ))
    })?;
    Ok(SignalLine {
        file,
        format,
        byte_offset,
        calibration: Calibration {
            gain: gain / factor,
            baseline: baseline.unwrap_or(adc_zero),
        },
        description,
    })
}

fn parse_field<T: std::str::FromStr>(
    field: Option<&str>,
    what: &str,
) -> Result<Option<T>, FormatError> {
    field
        .map(|f| {
            f.parse()
                .map_err(|_| FormatError::header(what, format!("{f:?} is not a number")))
        })
        .transpose()
}

/// `hh:mm:ss[.sss]` and `dd/mm/yyyy`. The fraction of a second is read
/// digit by digit (to the nanosecond), not through a float, so a time
/// written to the microsecond reads back exactly.
fn base_datetime(t: &str, d: &str) -> Result<OffsetDateTime, FormatError> {
    let bad = || {
        FormatError::header(
            "base time and date",
            format!("{t} {d} is not hh:mm:ss dd/mm/yyyy"),
        )
    };
    let mut hms = t.split(':').rev();
    let (whole, fraction) = hms
        .next()
        .map(|s| s.split_once('.').unwrap_or((s, "")))
        .ok_or_else(bad)?;
    let seconds: u8 = whole.parse().map_err(|_| bad())?;
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    // Digits past the ninth are below a nanosecond: dropped.
    let nanos = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(9)
        .fold(0u32, |n, b| n * 10 + u32::from(b - b'0'));
    let minutes: u8 = hms
        .next()
        .map_or(Some(0), |s| s.parse().ok())
        .ok_or_else(bad)?;
    let hours: u8 = hms
        .next()
        .map_or(Some(0), |s| s.parse().ok())
        .ok_or_else(bad)?;
    let dmy: Vec<&str> = d.split('/').collect();
    let [day, month, year] = dmy[..] else {
        return Err(bad());
    };
    let day: u8 = day.parse().map_err(|_| bad())?;
    let month: u8 = month.parse().map_err(|_| bad())?;
    let year: i32 = year.parse().map_err(|_| bad())?;
    let date = Date::from_calendar_date(year, Month::try_from(month).map_err(|_| bad())?, day)
        .map_err(|_| bad())?;
    // `Time` refuses a second over 59, an hour over 23.
    let time = Time::from_hms_nano(hours, minutes, seconds, nanos).map_err(|_| bad())?;
    Ok(date.with_time(time).assume_utc())
}

/// Reads the samples of a record's signal file.
#[derive(Debug)]
pub struct WfdbReader<R> {
    header: Header,
    source: R,
    /// The second sample of a 212 pair, read with the first.
    pending: Option<i32>,
    rows: u64,
}

impl<R: BufRead + Send> WfdbReader<R> {
    /// Skips the header's byte offset of `dat` and reads from there.
    pub fn new(header: Header, mut dat: R) -> Result<Self, FormatError> {
        io::copy(&mut (&mut dat).take(header.byte_offset), &mut io::sink())?;
        Ok(WfdbReader {
            header,
            source: dat,
            pending: None,
            rows: 0,
        })
    }

    /// The next sample of the file's sample stream, `None` at its end.
    fn sample(&mut self) -> io::Result<Option<i32>> {
        match self.header.format {
            Format::F16 => {
                let mut b = [0u8; 2];
                Ok((read_up_to(&mut self.source, &mut b)? == 2)
                    .then(|| i32::from(i16::from_le_bytes(b))))
            }
            Format::F32 => {
                let mut b = [0u8; 4];
                Ok((read_up_to(&mut self.source, &mut b)? == 4).then(|| i32::from_le_bytes(b)))
            }
            Format::F212 => {
                if let Some(s) = self.pending.take() {
                    return Ok(Some(s));
                }
                let mut b = [0u8; 3];
                let n = read_up_to(&mut self.source, &mut b)?;
                if n < 2 {
                    return Ok(None);
                }
                let first = i32::from(b[0]) | (i32::from(b[1] & 0x0f) << 8);
                // Two bytes at the end of the file: an odd last sample.
                if n == 3 {
                    let second = i32::from(b[2]) | (i32::from(b[1] & 0xf0) << 4);
                    self.pending = Some(twelve_bit(second));
                }
                Ok(Some(twelve_bit(first)))
            }
        }
    }
}

/// Sign-extends a 12-bit two's complement value.
fn twelve_bit(v: i32) -> i32 {
    (v << 20) >> 20
}

/// Fills as much of `buf` as the input has left; fewer bytes than asked
/// only at its end.
fn read_up_to(r: &mut impl BufRead, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

impl<R: BufRead + Send> SignalReader for WfdbReader<R> {
    fn recording(&self) -> &Recording {
        &self.header.recording
    }

    fn next_block(&mut self, max_rows: usize) -> Result<Option<Vec<Vec<i32>>>, FormatError> {
        let nsig = self.header.recording.leads.len();
        let mut rows = max_rows.max(1) as u64;
        if let Some(n) = self.header.recording.samples_per_lead {
            rows = rows.min(n - self.rows);
        }
        let mut block = vec![Vec::with_capacity(rows as usize); nsig];
        'frames: for _ in 0..rows {
            for i in 0..nsig {
                match self.sample()? {
                    Some(s) => block[i].push(s),
                    // A frame cut short at the end of the file is dropped
                    // with the leads already pushed.
                    None => {
                        for lead in &mut block[..i] {
                            lead.pop();
                        }
                        break 'frames;
                    }
                }
            }
        }
        let got = block[0].len() as u64;
        self.rows += got;
        if got == 0 {
            if let Some(n) = self
                .header
                .recording
                .samples_per_lead
                .filter(|&n| self.rows < n)
            {
                return Err(FormatError::Truncated {
                    read: self.rows,
                    promised: n,
                });
            }
            return Ok(None);
        }
        if got < rows {
            if let Some(n) = self.header.recording.samples_per_lead {
                return Err(FormatError::Truncated {
                    read: self.rows,
                    promised: n,
                });
            }
        }
        Ok(Some(block))
    }
}

#[cfg(test)]
mod tests;
