//! Writes a long 12-lead 500 Hz recording as CSV to stdout, for the
//! whole-upload benchmark: the real recording of `data/ecg` repeated until
//! `HOURS` hours (default 24: 43.2 M samples per lead, 518 M in all), with
//! a time column. Nothing is held in memory but one repetition.
//!
//!     cargo run --release -p ecg-ingest --example holter_csv -- 24 | curl -T - ...

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};

fn main() -> anyhow::Result<()> {
    let hours: f64 = std::env::args()
        .nth(1)
        .map(|h| h.parse())
        .transpose()?
        .unwrap_or(24.0);
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../data/ecg/ecgplot_12lead.json"
    );
    let data: serde_json::Value = serde_json::from_slice(&std::fs::read(path)?)?;
    let leads: Vec<String> = serde_json::from_value(data["meta"]["leads"].clone())?;
    let signals: BTreeMap<String, Vec<f64>> = serde_json::from_value(data["signals"].clone())?;
    let columns: Vec<&Vec<f64>> = leads.iter().map(|l| &signals[l]).collect();
    let rate = 500.0;
    let rows = (hours * 3600.0 * rate) as u64;
    let period = columns[0].len() as u64;

    let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    writeln!(out, "time,{}", leads.join(","))?;
    let mut line = String::with_capacity(256);
    for row in 0..rows {
        use std::fmt::Write as _;
        line.clear();
        write!(line, "{:.3}", row as f64 / rate)?;
        let i = (row % period) as usize;
        for column in &columns {
            write!(line, ",{}", column[i])?;
        }
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    out.flush()?;
    Ok(())
}
