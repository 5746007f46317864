//! EDF and EDF+ files (continuous, `EDF+C`): a 256-byte header, 256 bytes
//! per signal, then data records holding each signal's samples as 16-bit
//! little-endian two's complement.
//!
//! EDF maps a digital value `d` to `pmin + (d - dmin) * (pmax - pmin) /
//! (dmax - dmin)`: a gain and a baseline, but the baseline need not be an
//! integer (with the usual symmetric ranges it is -0.5). The reader then
//! scales every count by the smallest integer `m` (at most
//! [`MAX_SCALE`]) that makes `m * baseline` an integer: `m * d` counts with
//! gain `m * gain` and baseline `m * baseline` are the same physical values,
//! and zero crossings, the sign of `d - baseline`, stay exact. A signal
//! with no such `m` is refused.
//!
//! Every selected signal must have the same number of samples per record
//! (one sample rate); the `EDF Annotations` signal of EDF+ is skipped, and
//! so are the signals a caller leaves out with [`EdfReader::select`].
//! Discontinuous EDF+ (`EDF+D`) is refused: its records are not contiguous
//! in time.

use std::io::{self, Read};

use ecg_schemas::Calibration;
use time::{Date, Month, OffsetDateTime, Time};

use crate::units::millivolts_per;
use crate::{FormatError, Recording, SignalReader};

/// The largest factor applied to counts to make a baseline an integer.
pub const MAX_SCALE: i32 = 1000;
/// Most signals a header may declare (bounds what a header makes us read).
pub const MAX_SIGNALS: usize = 4096;
/// Largest data record, bytes: one record is held in memory at a time.
pub const MAX_RECORD_BYTES: usize = 64 << 20;
const ANNOTATIONS: &str = "EDF Annotations";

/// One signal's header.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub label: String,
    pub unit: String,
    pub physical: (f64, f64),
    pub digital: (i32, i32),
    pub samples_per_record: usize,
}

/// A parsed EDF header.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub signals: Vec<Signal>,
    /// Data records, when known (`-1` in the file: read to the end).
    pub records: Option<u64>,
    /// Seconds per data record.
    pub record_seconds: f64,
    pub started_at: Option<OffsetDateTime>,
}

/// Reads the header from the start of `r`.
pub fn read_header(r: &mut impl Read) -> Result<Header, FormatError> {
    let mut fixed = [0u8; 256];
    r.read_exact(&mut fixed)
        .map_err(|_| FormatError::header("header", "shorter than 256 bytes"))?;
    let field = |at: usize, len: usize| -> &[u8] { &fixed[at..at + len] };
    let version = text(field(0, 8));
    if version != "0" {
        return Err(FormatError::Unsupported(format!(
            "version {version:?}: only EDF/EDF+ (version 0), not BDF"
        )));
    }
    let reserved = text(field(192, 44));
    if reserved.starts_with("EDF+D") {
        return Err(FormatError::Unsupported(
            "discontinuous EDF+ (EDF+D)".into(),
        ));
    }
    let header_bytes: usize = number(field(184, 8), "number of bytes in header")?;
    let records: i64 = number(field(236, 8), "number of data records")?;
    let record_seconds: f64 = number(field(244, 8), "duration of a data record")?;
    let ns: usize = number(field(252, 4), "number of signals")?;
    if ns == 0 || ns > MAX_SIGNALS {
        return Err(FormatError::header(
            "number of signals",
            format!("{ns} is not in 1..={MAX_SIGNALS}"),
        ));
    }
    if header_bytes != 256 * (ns + 1) {
        return Err(FormatError::header(
            "number of bytes in header",
            format!(
                "{header_bytes}, expected {} for {ns} signals",
                256 * (ns + 1)
            ),
        ));
    }
    if !(record_seconds.is_finite() && record_seconds > 0.0) {
        return Err(FormatError::header(
            "duration of a data record",
            format!("{record_seconds} is not positive"),
        ));
    }
    let started_at = start(text(field(168, 8)).as_str(), text(field(176, 8)).as_str());

    let mut rest = vec![0u8; 256 * ns];
    r.read_exact(&mut rest).map_err(|_| {
        FormatError::header(
            "signal headers",
            format!("shorter than {} bytes", rest.len()),
        )
    })?;
    // Each field is an array of ns entries, fields one after another.
    let mut at = 0;
    let mut column = |len: usize| -> Vec<String> {
        let values = (0..ns)
            .map(|i| text(&rest[at + i * len..at + (i + 1) * len]))
            .collect();
        at += ns * len;
        values
    };
    let labels = column(16);
    let _transducers = column(80);
    let units = column(8);
    let pmin = column(8);
    let pmax = column(8);
    let dmin = column(8);
    let dmax = column(8);
    let _prefiltering = column(80);
    let per_record = column(8);
    let mut signals = Vec::with_capacity(ns);
    for i in 0..ns {
        let what = |f: &str| format!("signal {i} ({}) {f}", labels[i]);
        let signal = Signal {
            label: labels[i].clone(),
            unit: units[i].clone(),
            physical: (
                number(pmin[i].as_bytes(), &what("physical minimum"))?,
                number(pmax[i].as_bytes(), &what("physical maximum"))?,
            ),
            digital: (
                number(dmin[i].as_bytes(), &what("digital minimum"))?,
                number(dmax[i].as_bytes(), &what("digital maximum"))?,
            ),
            samples_per_record: number(
                per_record[i].as_bytes(),
                &what("number of samples in each data record"),
            )?,
        };
        if signal.samples_per_record == 0 || signal.samples_per_record > 1 << 24 {
            return Err(FormatError::header(
                what("number of samples in each data record"),
                format!("{} is not in 1..=16777216", signal.samples_per_record),
            ));
        }
        signals.push(signal);
    }
    let record_bytes: usize = signals.iter().map(|s| 2 * s.samples_per_record).sum();
    if record_bytes > MAX_RECORD_BYTES {
        return Err(FormatError::Unsupported(format!(
            "data records of {record_bytes} bytes; at most {MAX_RECORD_BYTES}"
        )));
    }
    Ok(Header {
        signals,
        records: u64::try_from(records).ok(),
        record_seconds,
        started_at,
    })
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_string()
}

fn number<T: std::str::FromStr>(bytes: &[u8], what: &str) -> Result<T, FormatError> {
    let t = text(bytes);
    t.parse()
        .map_err(|_| FormatError::header(what, format!("{t:?} is not a number")))
}

/// `dd.mm.yy` and `hh.mm.ss`, years 85-99 in the 1900s (EDF's clipping
/// date); anything unreadable is no start time rather than an error.
fn start(date: &str, time: &str) -> Option<OffsetDateTime> {
    let p = |s: &str| -> Option<Vec<u8>> { s.split('.').map(|x| x.parse().ok()).collect() };
    let (d, t) = (p(date)?, p(time)?);
    let (&[day, month, yy], &[h, m, s]) = (&d[..], &t[..]) else {
        return None;
    };
    let year = if yy >= 85 { 1900 } else { 2000 } + i32::from(yy);
    let date = Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()?;
    Some(date.with_time(Time::from_hms(h, m, s).ok()?).assume_utc())
}

/// The exact calibration of an EDF signal in millivolts, and the factor its
/// counts are multiplied by (see the module docs).
pub fn calibration(signal: &Signal) -> Result<(Calibration, i32), FormatError> {
    let what = format!("signal {}", signal.label);
    let factor = millivolts_per(&signal.unit).ok_or_else(|| {
        FormatError::Unsupported(format!(
            "{what}: unit {:?} is not a voltage (V, mV, uV, nV); leave it out",
            signal.unit
        ))
    })?;
    let (pmin, pmax) = signal.physical;
    let (dmin, dmax) = signal.digital;
    if dmax <= dmin || pmax == pmin || !pmin.is_finite() || !pmax.is_finite() {
        return Err(FormatError::header(
            what,
            format!("digital range {dmin}..{dmax} and physical range {pmin}..{pmax} give no gain"),
        ));
    }
    let gain = f64::from(dmax - dmin) / (pmax - pmin);
    let baseline = f64::from(dmin) - pmin * gain;
    let scale = (1..=MAX_SCALE)
        .find(|&m| {
            let b = f64::from(m) * baseline;
            (b - b.round()).abs() <= 1e-6
        })
        .ok_or_else(|| {
            FormatError::Unsupported(format!(
                "{what}: baseline {baseline} is no integer fraction with denominator <= {MAX_SCALE}"
            ))
        })?;
    let b = (f64::from(scale) * baseline).round();
    if b.abs() > f64::from(i32::MAX / 2) {
        return Err(FormatError::header(
            what,
            format!("baseline {baseline} is out of range"),
        ));
    }
    // A negative gain (pmax < pmin) is the same signal with counts negated.
    let sign = if gain < 0.0 { -1 } else { 1 };
    Ok((
        Calibration {
            gain: (f64::from(scale) * gain).abs() / factor,
            baseline: sign * b as i32,
        },
        sign * scale,
    ))
}

/// Reads the data records of an EDF file.
#[derive(Debug)]
pub struct EdfReader<R> {
    header: Header,
    recording: Recording,
    /// Indexes of the signals read, in output order.
    selected: Vec<usize>,
    /// Each selected signal's count factor.
    scale: Vec<i32>,
    source: R,
    record_bytes: usize,
    record: Vec<u8>,
    /// Samples of the current record not yet returned (per lead).
    offset: usize,
    records_read: u64,
}

impl<R: Read + Send> EdfReader<R> {
    /// Reads the header; every signal but annotations is selected.
    pub fn new(source: R) -> Result<Self, FormatError> {
        Self::with_signals(source, &[])
    }

    /// Reads the header and selects the signals labelled `labels`, in that
    /// order; none: every signal but annotations.
    pub fn with_signals(mut source: R, labels: &[String]) -> Result<Self, FormatError> {
        let header = read_header(&mut source)?;
        let all: Vec<String> = if labels.is_empty() {
            header
                .signals
                .iter()
                .filter(|s| s.label != ANNOTATIONS)
                .map(|s| s.label.clone())
                .collect()
        } else {
            labels.to_vec()
        };
        let mut reader = EdfReader {
            record_bytes: header
                .signals
                .iter()
                .map(|s| 2 * s.samples_per_record)
                .sum(),
            header,
            recording: Recording {
                leads: vec![],
                sample_rate_hz: 0.0,
                calibration: vec![],
                samples_per_lead: None,
                started_at: None,
            },
            selected: vec![],
            scale: vec![],
            source,
            record: vec![],
            offset: 0,
            records_read: 0,
        };
        reader.select(&all)?;
        Ok(reader)
    }

    /// The header as read.
    pub fn header(&self) -> &Header {
        &self.header
    }

    fn select(&mut self, labels: &[String]) -> Result<(), FormatError> {
        if labels.is_empty() {
            return Err(FormatError::header("signals", "no signal to read"));
        }
        let mut selected = Vec::with_capacity(labels.len());
        let mut calibration = Vec::with_capacity(labels.len());
        let mut scale = Vec::with_capacity(labels.len());
        for label in labels {
            let i = self
                .header
                .signals
                .iter()
                .position(|s| s.label == *label)
                .ok_or_else(|| FormatError::header("signals", format!("no signal {label:?}")))?;
            let (c, m) = calibration_of(&self.header.signals[i])?;
            selected.push(i);
            calibration.push(c);
            scale.push(m);
        }
        let n = self.header.signals[selected[0]].samples_per_record;
        if let Some(&other) = selected
            .iter()
            .find(|&&i| self.header.signals[i].samples_per_record != n)
        {
            return Err(FormatError::Unsupported(format!(
                "signals {} and {} have different sample rates ({} and {} samples per record); select signals of one rate",
                self.header.signals[selected[0]].label,
                self.header.signals[other].label,
                n,
                self.header.signals[other].samples_per_record
            )));
        }
        self.recording = Recording {
            leads: labels.to_vec(),
            sample_rate_hz: n as f64 / self.header.record_seconds,
            calibration,
            samples_per_lead: self.header.records.map(|r| r * n as u64),
            started_at: self.header.started_at,
        };
        self.selected = selected;
        self.scale = scale;
        Ok(())
    }

    /// Reads the next data record; false at the end of the file.
    fn next_record(&mut self) -> Result<bool, FormatError> {
        if self.header.records.is_some_and(|n| self.records_read >= n) {
            return Ok(false);
        }
        self.record.resize(self.record_bytes, 0);
        let mut filled = 0;
        while filled < self.record_bytes {
            match self.source.read(&mut self.record[filled..]) {
                Ok(0) => break,
                Ok(k) => filled += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        if filled < self.record_bytes {
            if let Some(n) = self.header.records {
                let per = self.header.signals[self.selected[0]].samples_per_record as u64;
                return Err(FormatError::Truncated {
                    read: self.records_read * per,
                    promised: n * per,
                });
            }
            // Unknown record count: a trailing partial record is dropped.
            return Ok(false);
        }
        self.records_read += 1;
        self.offset = 0;
        Ok(true)
    }
}

fn calibration_of(signal: &Signal) -> Result<(Calibration, i32), FormatError> {
    if signal.label == ANNOTATIONS {
        return Err(FormatError::Unsupported(
            "the EDF Annotations signal holds no samples".into(),
        ));
    }
    calibration(signal)
}

impl<R: Read + Send> SignalReader for EdfReader<R> {
    fn recording(&self) -> &Recording {
        &self.recording
    }

    fn next_block(&mut self, max_rows: usize) -> Result<Option<Vec<Vec<i32>>>, FormatError> {
        let per = self.header.signals[self.selected[0]].samples_per_record;
        let mut block = vec![Vec::with_capacity(max_rows.min(1 << 20)); self.selected.len()];
        let mut rows = 0;
        while rows < max_rows.max(1) {
            if (self.records_read == 0 || self.offset == per) && !self.next_record()? {
                break;
            }
            let take = (per - self.offset).min(max_rows.max(1) - rows);
            for (k, &i) in self.selected.iter().enumerate() {
                // Byte position of signal i's samples within the record.
                let start: usize = self.header.signals[..i]
                    .iter()
                    .map(|s| 2 * s.samples_per_record)
                    .sum::<usize>()
                    + 2 * self.offset;
                let bytes = &self.record[start..start + 2 * take];
                let m = self.scale[k];
                block[k].extend(
                    bytes
                        .chunks_exact(2)
                        .map(|b| m * i32::from(i16::from_le_bytes([b[0], b[1]]))),
                );
            }
            self.offset += take;
            rows += take;
        }
        Ok((rows > 0).then_some(block))
    }
}

#[cfg(test)]
mod tests;
