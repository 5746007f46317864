//! Readers of the files hospitals keep their ECGs in, streamed: a reader
//! holds one block of samples at a time, never the whole recording, so a
//! 24-hour Holter file is read in constant memory.
//!
//! Every reader gives the samples as the file stores them, integer ADC
//! counts, with each lead's gain and baseline (physical = (adc - baseline) /
//! gain, in millivolts, as ecg-stream's API takes them). Nothing is rounded,
//! so zero crossings counted on what a reader gives equal those of the file's
//! decoded signal.
//!
//! Modules:
//! - [`wfdb`]: PhysioNet WFDB records (a `.hea` header and a `.dat` signal
//!   file), formats 212 and 16, and their annotation files (MIT format,
//!   read and written: [`wfdb::annotations`]).
//! - [`edf`]: EDF and EDF+ (continuous) files, 16-bit.
//! - [`units`]: physical units to millivolts.
//! - [`fhir`]: HL7 FHIR R4 `Observation` with `SampledData` (FHIR's "ekg"
//!   example), imported exactly (counts with gain and baseline, or
//!   correctly rounded values) and written in pieces.
//!
//! Why not a crate: when this was written, `wfdb` (0.1) and `wfdb-rust`
//! (0.3, which reads whole signals into memory) and `edf-rs` (0.2, which
//! opens paths only and converts to physical values) were young or did not
//! stream raw counts from any reader; these parsers are small, take any
//! `Read`, and are fuzzed (`fuzz/fuzz_targets/wfdb.rs`, `edf.rs`).

pub mod edf;
pub mod fhir;
pub mod units;
pub mod wfdb;

use ecg_schemas::Calibration;
use time::OffsetDateTime;

/// What a file says about its signal, before any sample is read.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    /// Lead names, in the file's order.
    pub leads: Vec<String>,
    /// Samples per second per lead.
    pub sample_rate_hz: f64,
    /// Each lead's calibration, counts per millivolt.
    pub calibration: Vec<Calibration>,
    /// Samples per lead, when the file says.
    pub samples_per_lead: Option<u64>,
    /// When the first sample was taken, read as UTC (files carry no zone).
    pub started_at: Option<OffsetDateTime>,
}

/// A file that cannot be read, and where.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The header is not what the format allows.
    #[error("{what}: {message}")]
    Header { what: String, message: String },
    /// The samples end before the header says they do.
    #[error("the signal ends after {read} samples per lead; the header promised {promised}")]
    Truncated { read: u64, promised: u64 },
    /// The file holds something valid that this reader does not support.
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl FormatError {
    pub(crate) fn header(what: impl Into<String>, message: impl Into<String>) -> Self {
        FormatError::Header {
            what: what.into(),
            message: message.into(),
        }
    }
}

/// A stream of blocks of ADC counts, one vector per lead.
pub trait SignalReader: Send {
    /// The recording's description.
    fn recording(&self) -> &Recording;

    /// The next block of at most `max_rows` samples per lead (all leads of
    /// one length), or `None` at the end of the signal.
    fn next_block(&mut self, max_rows: usize) -> Result<Option<Vec<Vec<i32>>>, FormatError>;
}

/// Reads `reader` to the end, for tests and small files: one vector per lead.
pub fn read_all(reader: &mut dyn SignalReader) -> Result<Vec<Vec<i32>>, FormatError> {
    let mut all = vec![Vec::new(); reader.recording().leads.len()];
    while let Some(block) = reader.next_block(1 << 16)? {
        for (lead, values) in all.iter_mut().zip(block) {
            lead.extend(values);
        }
    }
    Ok(all)
}

/// Opens a WFDB record (its `.hea`, its `.dat`, or the record's name with a
/// `.hea` beside it) or an EDF file (`.edf`, `.rec`), by extension. For EDF,
/// `labels` selects signals (none: all but annotations).
pub fn open_file(
    path: &std::path::Path,
    labels: &[String],
) -> Result<Box<dyn SignalReader>, FormatError> {
    use std::io::BufReader;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let open = |p: &std::path::Path| {
        std::fs::File::open(p)
            .map(|f| BufReader::with_capacity(1 << 16, f))
            .map_err(|e| {
                FormatError::Io(std::io::Error::new(
                    e.kind(),
                    format!("{}: {e}", p.display()),
                ))
            })
    };
    match ext.as_str() {
        "edf" | "rec" => Ok(Box::new(edf::EdfReader::with_signals(open(path)?, labels)?)),
        "hea" | "dat" | "" => {
            let header_path = path.with_extension("hea");
            let text = std::fs::read_to_string(&header_path).map_err(|e| {
                FormatError::Io(std::io::Error::new(
                    e.kind(),
                    format!("{}: {e}", header_path.display()),
                ))
            })?;
            let header = wfdb::parse_header(&text)?;
            let dat = open(&header_path.with_file_name(&header.file))?;
            Ok(Box::new(wfdb::WfdbReader::new(header, dat)?))
        }
        other => Err(FormatError::Unsupported(format!(
            "{}: extension {other:?}; expected .hea, .dat (WFDB) or .edf (EDF)",
            path.display()
        ))),
    }
}
