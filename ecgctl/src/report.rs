//! Text for people: aligned tables, and the insights rendered as a summary
//! (the ECG's heart rate and zero crossings) over one row per lead. A value
//! the API does not have yet (no heart rate before two normal RR
//! intervals, no RMSSD without two consecutive ones) prints as `-`, never
//! as 0, so a missing value cannot pass for a measured one.

use std::fmt::Write as _;

use ecg_schemas::Status;
use ecg_schemas::api::Insights;

/// `rows` under `header`, each column as wide as its widest cell, two
/// spaces apart: the first `left` columns (names) left-aligned, the others
/// (numbers) right-aligned. No trailing spaces, so the output diffs
/// cleanly.
pub fn table(header: &[&str], left: usize, rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (k, (cell, w)) in row.iter().zip(&widths).enumerate() {
            let gap = if k == 0 { "" } else { "  " };
            if k < left {
                let _ = write!(line, "{gap}{cell:<w$}");
            } else {
                let _ = write!(line, "{gap}{cell:>w$}");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `v` with `decimals` digits, or `-` when unknown.
pub fn num(v: Option<f64>, decimals: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.decimals$}"))
}

/// The status as the API spells it.
pub fn status(s: Status) -> &'static str {
    match s {
        Status::Receiving => "receiving",
        Status::Processing => "processing",
        Status::Complete => "complete",
        Status::Failed => "failed",
    }
}

/// The insights as text.
pub fn insights(i: &Insights) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "ECG {} ({})", i.id, status(i.status));
    let hr = match (i.heart_rate_bpm, &i.heart_rate_lead) {
        (Some(bpm), Some(lead)) => format!("{bpm:.1} bpm (lead {lead}, the most regular)"),
        (Some(bpm), None) => format!("{bpm:.1} bpm"),
        (None, _) => "- (no lead has two normal RR intervals yet)".into(),
    };
    let _ = writeln!(out, "Heart rate:     {hr}");
    let _ = writeln!(
        out,
        "Zero crossings: {} in {} lead{}",
        i.total_zero_crossings,
        i.leads.len(),
        if i.leads.len() == 1 { "" } else { "s" }
    );
    out.push('\n');
    let rows: Vec<Vec<String>> = i
        .leads
        .iter()
        .map(|(name, l)| {
            let hr = l.heart_rate.as_ref();
            vec![
                name.clone(),
                l.samples.to_string(),
                l.zero_crossings.to_string(),
                format!("{:.2}", l.zero_crossing_rate_hz),
                l.beats.to_string(),
                num(hr.map(|h| h.heart_rate_bpm), 1),
                num(hr.map(|h| h.sdnn_ms), 1),
                num(hr.and_then(|h| h.rmssd_ms), 1),
                hr.map_or("-".into(), |h| {
                    format!("{}/{}", h.normal_intervals, h.rr_intervals)
                }),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "lead",
            "samples",
            "crossings",
            "crossings/s",
            "beats",
            "HR bpm",
            "SDNN ms",
            "RMSSD ms",
            "NN/RR",
        ],
        1,
        &rows,
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecg_schemas::api::{HeartRate, LeadInsight};

    #[test]
    fn columns_align_and_unknown_values_are_dashes() {
        let lead = |samples, heart_rate| LeadInsight {
            samples,
            zero_crossings: 12,
            zero_crossing_rate_hz: 1.5,
            beats: 3,
            heart_rate,
            quality: None,
        };
        let i = Insights {
            id: uuid::Uuid::nil(),
            status: Status::Complete,
            leads: [
                (
                    "MLII".to_string(),
                    lead(
                        650_000,
                        Some(HeartRate {
                            rr_intervals: 2272,
                            normal_intervals: 2250,
                            heart_rate_bpm: 75.55,
                            sdnn_ms: 37.99,
                            rmssd_ms: None,
                        }),
                    ),
                ),
                ("V5".to_string(), lead(8, None)),
            ]
            .into(),
            total_zero_crossings: 24,
            heart_rate_bpm: Some(75.55),
            heart_rate_lead: Some("MLII".into()),
            windows: None,
        };
        let text = insights(&i);
        let want = "\
ECG 00000000-0000-0000-0000-000000000000 (complete)
Heart rate:     75.5 bpm (lead MLII, the most regular)
Zero crossings: 24 in 2 leads

lead  samples  crossings  crossings/s  beats  HR bpm  SDNN ms  RMSSD ms      NN/RR
MLII   650000         12         1.50      3    75.5     38.0         -  2250/2272
V5          8         12         1.50      3       -        -         -          -
";
        assert_eq!(text, want);
    }
}
