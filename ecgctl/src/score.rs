//! `ecgctl score`: an ECG's detected beats compared beat by beat with
//! reference annotations (a WFDB annotation file such as a PhysioNet
//! record's `.atr`), as ANSI/AAMI EC57 defines it and WFDB's `bxb`
//! computes it ([`ecg_signal::score`]): a 150 ms match window, from 5
//! minutes into the record unless `--whole`.
//!
//! Only the reference's beat annotations count (N, V, A and the other beat
//! types, as `bxb`'s QRS statistics); rhythm changes, noise and comments
//! are left out. The text layout follows `bxb`'s condensed report, for the
//! QRS statistics only: the detector does not classify beats, so there are
//! no VEB or SVEB rows. Like `bxb`, the command succeeds whatever the
//! score; it fails only when it cannot compute one.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use ecg_client::{Api, BeatsQuery};
use ecg_formats::wfdb::annotations::read_annotations;
use ecg_signal::score::{Score, Scoring, compare};
use serde::Serialize;
use uuid::Uuid;

use crate::beats::{lead_name, warn_if_unfinished};
use crate::cli;

/// The beats of a reference annotation file.
#[derive(Debug)]
pub struct Reference {
    pub path: PathBuf,
    /// Sample indices of its beat annotations, in order.
    pub beats: Vec<u64>,
    /// Its other annotations, left out.
    pub others: usize,
}

impl Reference {
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let file = std::fs::File::open(path)
            .with_context(|| format!("opening the reference {}", path.display()))?;
        let all = read_annotations(std::io::BufReader::new(file))
            .with_context(|| format!("reading {} as WFDB annotations", path.display()))?;
        let mut beats: Vec<u64> = all
            .iter()
            .filter(|a| a.is_beat())
            .map(|a| a.sample)
            .collect();
        // Writers keep time order, but a file edited by hand may not, and
        // the comparison walks both lists in order.
        beats.sort_unstable();
        Ok(Reference {
            path: path.to_path_buf(),
            others: all.len() - beats.len(),
            beats,
        })
    }
}

/// What `score` reports; also its JSON.
#[derive(Debug, Serialize)]
pub struct Report {
    pub id: Uuid,
    pub lead: String,
    pub reference: String,
    pub sample_rate_hz: f64,
    /// First sample scored.
    pub from_sample: u64,
    /// Match window, samples either side.
    pub window_samples: u64,
    /// Beat annotations in the whole reference file.
    pub reference_beats: usize,
    /// Non-beat annotations of the reference, left out.
    pub reference_others: usize,
    /// Beats the ECG's lead has.
    pub detected_beats: usize,
    pub tp: u64,
    pub fp: u64,
    #[serde(rename = "fn")]
    pub fn_: u64,
    /// Se = TP / (TP + FN), percent; null without reference beats scored.
    pub sensitivity_pct: Option<f64>,
    /// +P = TP / (TP + FP), percent; null without detections scored.
    pub positive_predictivity_pct: Option<f64>,
}

pub async fn score(api: &Api, args: &cli::Score, reference: &Reference) -> anyhow::Result<()> {
    let status = api.status(args.id).await?;
    let lead = lead_name(&status, args.lead.as_deref());
    warn_if_unfinished(&status);
    let query = BeatsQuery {
        lead: args.lead.as_deref(),
        ..BeatsQuery::default()
    };
    let detected: Vec<u64> = api
        .beats(args.id, &query)
        .await
        .with_context(|| format!("fetching the beats of ECG {} lead {lead}", args.id))?
        .iter()
        .map(|b| b.sample_index)
        .collect();
    let rate = status.sample_rate_hz;
    let scoring = if args.whole {
        Scoring::whole(rate)
    } else {
        Scoring::bxb(rate)
    };
    let s: Score = compare(&reference.beats, &detected, scoring);
    let report = Report {
        id: args.id,
        lead,
        reference: reference.path.display().to_string(),
        sample_rate_hz: rate,
        from_sample: scoring.from,
        window_samples: scoring.window,
        reference_beats: reference.beats.len(),
        reference_others: reference.others,
        detected_beats: detected.len(),
        tp: s.tp,
        fp: s.fp,
        fn_: s.fn_,
        sensitivity_pct: s.sensitivity().map(|v| 100.0 * v),
        positive_predictivity_pct: s.positive_predictivity().map(|v| 100.0 * v),
    };
    if args.format.is_text() {
        print!("{}", text(&report));
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}

/// `bxb`'s condensed report, QRS rows only: reference beats (`Beat`)
/// against detections (`beat`), `o` where the other side has none.
pub fn text(r: &Report) -> String {
    let mut out = String::new();
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let _ = writeln!(
        out,
        "Beat-by-beat comparison results for ECG {}, lead {}",
        r.id, r.lead
    );
    let _ = writeln!(
        out,
        "Reference annotator: {} ({} beats; {} non-beat annotation{} left out)",
        r.reference,
        r.reference_beats,
        r.reference_others,
        plural(r.reference_others)
    );
    let _ = writeln!(
        out,
        "     Test annotator: ecg-stream ({} beats)",
        r.detected_beats
    );
    let _ = writeln!(
        out,
        "Compared from {} (sample {}) to the end, match window {:.0} ms ({} samples at {} Hz)",
        clock(r.from_sample as f64 / r.sample_rate_hz),
        r.from_sample,
        1000.0 * r.window_samples as f64 / r.sample_rate_hz,
        r.window_samples,
        r.sample_rate_hz
    );
    out.push('\n');
    out.push_str("           Algorithm\n");
    out.push_str("          beat       o\n");
    out.push_str("      _______________\n");
    let _ = writeln!(
        out,
        " Beat | {:>6}  {:>6}     TP {}, FN {}",
        r.tp, r.fn_, r.tp, r.fn_
    );
    let _ = writeln!(out, "    O | {:>6}             FP {}", r.fp, r.fp);
    out.push('\n');
    pstat(&mut out, "           QRS sensitivity", r.tp, r.tp + r.fn_);
    pstat(&mut out, " QRS positive predictivity", r.tp, r.tp + r.fp);
    if r.tp + r.fn_ == 0 && r.from_sample > 0 {
        let _ = writeln!(
            out,
            "\nNo reference beat from {} on: is the record shorter? --whole scores from the start.",
            clock(r.from_sample as f64 / r.sample_rate_hz)
        );
    }
    out
}

/// `bxb`'s `pstat`: a percentage to two decimals and its quotient, `-`
/// when undefined.
fn pstat(out: &mut String, label: &str, a: u64, b: u64) {
    if b == 0 {
        let _ = writeln!(out, "{label}:      -  ({a}/{b})");
    } else {
        let _ = writeln!(
            out,
            "{label}: {:6.2}% ({a}/{b})",
            100.0 * a as f64 / b as f64
        );
    }
}

/// `h:mm:ss.sss`.
fn clock(seconds: f64) -> String {
    let ms = (seconds * 1000.0).round() as u64;
    let (h, m, s) = (ms / 3_600_000, ms / 60_000 % 60, ms % 60_000);
    format!("{h}:{m:02}:{:06.3}", s as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_reads_like_bxb() {
        let r = Report {
            id: Uuid::nil(),
            lead: "MLII".into(),
            reference: "100.atr".into(),
            sample_rate_hz: 360.0,
            from_sample: 108_000,
            window_samples: 54,
            reference_beats: 2273,
            reference_others: 1,
            detected_beats: 2272,
            tp: 1901,
            fp: 0,
            fn_: 1,
            sensitivity_pct: None,
            positive_predictivity_pct: None,
        };
        let want = "\
Beat-by-beat comparison results for ECG 00000000-0000-0000-0000-000000000000, lead MLII
Reference annotator: 100.atr (2273 beats; 1 non-beat annotation left out)
     Test annotator: ecg-stream (2272 beats)
Compared from 0:05:00.000 (sample 108000) to the end, match window 150 ms (54 samples at 360 Hz)

           Algorithm
          beat       o
      _______________
 Beat |   1901       1     TP 1901, FN 1
    O |      0             FP 0

           QRS sensitivity:  99.95% (1901/1902)
 QRS positive predictivity: 100.00% (1901/1901)
";
        assert_eq!(text(&r), want);
    }

    #[test]
    fn undefined_ratios_print_dashes_and_times_read_as_a_clock() {
        let mut out = String::new();
        pstat(&mut out, "QRS sensitivity", 0, 0);
        assert_eq!(out, "QRS sensitivity:      -  (0/0)\n");
        assert_eq!(clock(3725.5), "1:02:05.500");
    }
}
