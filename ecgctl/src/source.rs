//! Which reader a path needs. WFDB records are named by their header
//! (`208.hea`), their signal file (`208.dat`) or the record (`208`); the
//! signal file is the one the header names, beside it.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use ecg_formats::SignalReader;
use ecg_formats::edf::EdfReader;

use crate::cli::FileFormat;

/// An opened file.
pub enum Source {
    /// WFDB or EDF, decoded to ADC counts.
    Decoded(Box<dyn SignalReader>),
    /// A CSV file, sent as it is: its header's lead names, its size.
    Csv {
        path: PathBuf,
        leads: Vec<String>,
        bytes: u64,
    },
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Decoded(r) => f.debug_tuple("Decoded").field(r.recording()).finish(),
            Source::Csv { path, leads, .. } => f
                .debug_struct("Csv")
                .field("path", path)
                .field("leads", leads)
                .finish(),
        }
    }
}

/// The format `path` has, from its extension when `format` is auto.
pub fn format_of(path: &Path, format: FileFormat) -> anyhow::Result<FileFormat> {
    if format != FileFormat::Auto {
        return Ok(format);
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    Ok(match ext.as_str() {
        "hea" | "dat" => FileFormat::Wfdb,
        "edf" | "rec" => FileFormat::Edf,
        "csv" | "txt" => FileFormat::Csv,
        "" if path.with_extension("hea").is_file() => FileFormat::Wfdb,
        _ => bail!(
            "cannot tell the format of {} from its extension; pass --format",
            path.display()
        ),
    })
}

/// Opens `path`; `leads` selects EDF signals (other formats select later).
pub fn open(path: &Path, format: FileFormat, leads: &[String]) -> anyhow::Result<Source> {
    match format_of(path, format)? {
        FileFormat::Wfdb => {
            // Named by its header, whatever the extension given.
            let reader = ecg_formats::open_file(&path.with_extension("hea"), leads)
                .with_context(|| format!("reading the WFDB record {}", path.display()))?;
            Ok(Source::Decoded(reader))
        }
        FileFormat::Edf => {
            let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
            let reader = EdfReader::with_signals(BufReader::with_capacity(1 << 16, file), leads)
                .with_context(|| format!("in {}", path.display()))?;
            Ok(Source::Decoded(Box::new(reader)))
        }
        FileFormat::Csv => {
            let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
            let bytes = file.metadata()?.len();
            let mut first = String::new();
            BufReader::new(file).read_line(&mut first)?;
            let mut names: Vec<String> = first
                .trim_end()
                .split(',')
                .map(|n| n.trim().trim_matches('"').to_string())
                .collect();
            // The gateway skips a leading time column, named as one.
            if names.len() > 1 && ecg_input::tabular::time_column_unit(&names[0]).is_some() {
                names.remove(0);
            }
            if names.iter().any(String::is_empty) {
                bail!("{}: the first line must name the leads", path.display());
            }
            Ok(Source::Csv {
                path: path.to_path_buf(),
                leads: names,
                bytes,
            })
        }
        FileFormat::Auto => unreachable!("format_of resolves auto"),
    }
}
