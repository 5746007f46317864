//! `ecgctl beats`: one lead's beats (R peaks), every page of `GET
//! /v1/ecgs/{id}/beats`, printed (sample index, seconds from the first
//! sample, time, RR interval) or exported as a WFDB annotation file in MIT
//! format, which PhysioNet's tools (`rdann`, `bxb`) and the `wfdb` Python
//! package read. Sample indices are the lead's, from 0, so an export lines
//! up with the uploaded record's own annotations. Every beat is exported
//! as a normal beat (`N`): the detector finds beats, it does not classify
//! them.

use std::path::Path;

use anyhow::Context as _;
use ecg_client::{Api, BeatsQuery};
use ecg_formats::wfdb::annotations::write_beats;
use ecg_schemas::EcgStatus;
use ecg_schemas::Status;
use ecg_schemas::api::Beat;
use time::format_description::well_known::Rfc3339;

use crate::cli::Beats;
use crate::report;

pub async fn beats(api: &Api, args: &Beats) -> anyhow::Result<()> {
    let status = api.status(args.id).await?;
    let lead = lead_name(&status, args.lead.as_deref());
    warn_if_unfinished(&status);
    let query = BeatsQuery {
        lead: args.lead.as_deref(),
        from: args.from,
        to: args.to,
        limit: None,
    };
    let beats = api
        .beats(args.id, &query)
        .await
        .with_context(|| format!("fetching the beats of ECG {} lead {lead}", args.id))?;
    if let Some(path) = &args.export {
        export(path, &beats)?;
        eprintln!(
            "wrote {} beats of lead {lead} to {} (WFDB annotations, MIT format)",
            beats.len(),
            path.display()
        );
    } else if args.format.is_text() {
        print!("{}", table(&beats));
        eprintln!("{} beats in lead {lead}", beats.len());
    } else {
        let json = serde_json::json!({
            "id": args.id,
            "lead": lead,
            "sample_rate_hz": status.sample_rate_hz,
            "beats": beats,
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
    }
    Ok(())
}

/// The lead the API answers for: the one asked for, else the ECG's first.
pub fn lead_name(status: &EcgStatus, asked: Option<&str>) -> String {
    asked
        .map(str::to_string)
        .or_else(|| status.leads.first().cloned())
        .unwrap_or_default()
}

/// Beats are decided up to half a second after their peak, so an ECG still
/// streaming has not all of them yet: say so rather than let a partial
/// list pass for the whole.
pub fn warn_if_unfinished(status: &EcgStatus) {
    if status.status != Status::Complete {
        eprintln!(
            "warning: ECG {} is {}: these are the beats found so far",
            status.id,
            report::status(status.status)
        );
    }
}

fn export(path: &Path, beats: &[Beat]) -> anyhow::Result<()> {
    let samples: Vec<u64> = beats.iter().map(|b| b.sample_index).collect();
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    // `write_beats` builds the whole file in memory and writes it at once.
    write_beats(file, &samples).with_context(|| format!("writing {}", path.display()))
}

fn table(beats: &[Beat]) -> String {
    let rows: Vec<Vec<String>> = beats
        .iter()
        .map(|b| {
            vec![
                b.sample_index.to_string(),
                format!("{:.3}", b.t_s),
                b.t.format(&Rfc3339).unwrap_or_else(|_| b.t.to_string()),
                report::num(b.rr_ms, 1),
            ]
        })
        .collect();
    report::table(&["sample", "t_s", "time", "rr_ms"], 0, &rows)
}
