//! `ecgctl beats`, `ecgctl score` and the text of `ecgctl insights` on a
//! real, expert-annotated ECG: MIT-BIH record 100 (`data/mitdb`, 30 min,
//! two leads at 360 Hz), uploaded as WFDB with the real `ecgctl` binary to
//! an in-process stack.
//! - `score` against the cardiologists' `100.atr` must find Se and +P of at
//!   least 99.8 %, from 5 minutes on (bxb's default) and over the whole
//!   record, with TP + FN equal to the reference beats scored.
//! - `beats --export` must write a WFDB annotation file that the reference
//!   reader (the `wfdb` Python package, `rdann`) reads back as exactly the
//!   API's beats, every one an `N`; `beats --format json` must list them
//!   too. The API's beats are read here page by page with plain HTTP, so a
//!   paging mistake in the client cannot hide on both sides.
//!
//! Needs the test tools venv (`dev/stack.sh install` makes
//! `.local/venv-tools` with wfdb; `ECG_TOOLS_PYTHON` overrides).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use ecg_e2e::Stack;
use serde_json::Value;

mod common;
use common::{api_beats, ecgctl, root, tools_python};

/// `Scoring::bxb(360.0).from`: 5 minutes at 360 Hz.
const FIVE_MINUTES: u64 = 108_000;

/// The reference beats of record 100 (`100.beats.csv`: the beat
/// annotations of `100.atr`).
fn reference_beats() -> anyhow::Result<Vec<u64>> {
    let csv = std::fs::read_to_string(root().join("data/mitdb/100.beats.csv"))?;
    Ok(csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap_or_default().parse::<u64>())
        .collect::<Result<_, _>>()?)
}

/// The percentage of a `bxb` statistics line such as
/// ` QRS positive predictivity: 100.00% (1901/1901)`.
fn percent(report: &str, label: &str) -> anyhow::Result<f64> {
    let line = report
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{label}:")))
        .with_context(|| format!("no {label:?} line in\n{report}"))?;
    let value = line
        .split_once(':')
        .and_then(|(_, v)| v.trim().split_once('%'))
        .with_context(|| format!("no percentage in {line:?}"))?
        .0;
    Ok(value.trim().parse()?)
}

/// Reads `file` (`<dir>/<record>.<annotator>`) with `wfdb.rdann`: its
/// samples and symbols.
fn rdann(file: &Path) -> anyhow::Result<(Vec<u64>, Vec<String>)> {
    let record = file.with_extension("");
    let annotator = file
        .extension()
        .and_then(|e| e.to_str())
        .context("no extension")?;
    let script = "import json, sys, wfdb\n\
                  a = wfdb.rdann(sys.argv[1], sys.argv[2])\n\
                  print(json.dumps({'sample': [int(s) for s in a.sample], 'symbol': a.symbol}))";
    let python = tools_python();
    let output = Command::new(&python)
        .args(["-c", script])
        .arg(&record)
        .arg(annotator)
        .output()
        .with_context(|| {
            format!(
                "running {}; did `dev/stack.sh install` make the tools venv?",
                python.display()
            )
        })?;
    ensure!(
        output.status.success(),
        "wfdb.rdann: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let read: Value = serde_json::from_slice(&output.stdout)?;
    Ok((
        serde_json::from_value(read["sample"].clone())?,
        serde_json::from_value(read["symbol"].clone())?,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn record_100_scores_at_least_99_8_percent_and_its_exported_beats_read_back_in_wfdb()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let home = dir.path().join("home");
    let reference = reference_beats()?;
    let stack = Stack::start("ecgctl_beats").await?;
    let token = stack.token("demo", "demo-secret", None).await?;
    let run = |args: Vec<String>| {
        let (ingest, query, home) = (stack.ingest.clone(), stack.query.clone(), home.clone());
        async move { tokio::task::spawn_blocking(move || ecgctl(&ingest, &query, &home, &args)).await? }
    };
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    run(args(&["login", "--client-id", "demo"])).await?;

    let record = root().join("data/mitdb/100.hea").display().to_string();
    let out = run(args(&["upload", "--quiet", &record])).await?;
    let accepted: Value = serde_json::from_str(out.trim())?;
    let id: uuid::Uuid = accepted["id"].as_str().context("no id")?.parse()?;
    let insights = stack
        .insights_when_complete(&token, id, Duration::from_secs(180))
        .await?;
    let id = id.to_string();

    // Score, as bxb by default (from 5 minutes) and over the whole record.
    let atr = root().join("data/mitdb/100.atr").display().to_string();
    for (period, extra, scored) in [
        (
            "from 5 min",
            None,
            reference.iter().filter(|&&s| s >= FIVE_MINUTES).count(),
        ),
        ("whole record", Some("--whole"), reference.len()),
    ] {
        let score = |format: &str| {
            let mut a = args(&["score", &id, "--reference", &atr, "--format", format]);
            a.extend(extra.map(String::from));
            a
        };
        let text = run(score("text")).await?;
        println!("{period}:\n{text}");
        let se = percent(&text, "QRS sensitivity")?;
        let pp = percent(&text, "QRS positive predictivity")?;
        ensure!(se >= 99.8 && pp >= 99.8, "{period}: Se {se} %, +P {pp} %");

        let json: Value = serde_json::from_str(&run(score("json")).await?)?;
        let (tp, fn_) = (json["tp"].as_u64(), json["fn"].as_u64());
        assert_eq!(
            tp.zip(fn_).map(|(tp, fn_)| tp + fn_),
            Some(scored as u64),
            "{period}: TP + FN are the reference beats scored: {json}"
        );
        assert_eq!(json["reference_beats"], reference.len(), "{period}");
        let json_se = json["sensitivity_pct"].as_f64().context("Se")?;
        assert!(
            (json_se - se).abs() < 0.005 + 1e-9,
            "{period}: {json_se} vs {se}"
        );
        assert_eq!(json["lead"], "MLII", "the default lead is the first");
    }

    // Export, read back by the reference reader: the API's beats, all N.
    let api = api_beats(&stack, &token, id.parse()?, "MLII", 500).await?;
    assert_eq!(
        api.len() as u64,
        insights["leads"]["MLII"]["beats"]
            .as_u64()
            .context("beats")?,
        "every page read"
    );
    let exported = dir.path().join("out.atr");
    let out = run(args(&[
        "beats",
        &id,
        "--lead",
        "MLII",
        "--export",
        &exported.display().to_string(),
    ]))
    .await?;
    assert_eq!(out, "", "an export prints nothing on stdout");
    let (samples, symbols) = tokio::task::spawn_blocking(move || rdann(&exported)).await??;
    assert_eq!(samples, api, "wfdb.rdann reads the API's beats");
    assert!(symbols.iter().all(|s| s == "N"), "every beat is N");

    let listed: Value =
        serde_json::from_str(&run(args(&["beats", &id, "--format", "json"])).await?)?;
    let listed: Vec<u64> = listed["beats"]
        .as_array()
        .context("beats")?
        .iter()
        .map(|b| b["sample_index"].as_u64().context("sample_index"))
        .collect::<anyhow::Result<_>>()?;
    assert_eq!(listed, api, "ecgctl beats --format json");
    let table = run(args(&["beats", &id, "--format", "text"])).await?;
    assert_eq!(
        table.lines().count(),
        api.len() + 1,
        "a header and a row per beat"
    );

    // Insights as text: the ECG's heart rate, and each lead's row.
    let text = run(args(&["insights", &id, "--format", "text"])).await?;
    println!("{text}");
    let bpm = insights["heart_rate_bpm"].as_f64().context("heart rate")?;
    assert!(
        (60.0..=90.0).contains(&bpm),
        "record 100 is a sinus rhythm near 75 bpm: {bpm}"
    );
    let lead = insights["heart_rate_lead"].as_str().context("lead")?;
    assert!(
        text.contains(&format!("Heart rate:     {bpm:.1} bpm (lead {lead}")),
        "{text}"
    );
    for (name, l) in insights["leads"].as_object().context("leads")? {
        let row = text
            .lines()
            .find(|r| r.split_whitespace().next() == Some(name.as_str()))
            .with_context(|| format!("no row for lead {name} in\n{text}"))?;
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[1], l["samples"].to_string(), "{row}");
        assert_eq!(cells[2], l["zero_crossings"].to_string(), "{row}");
        assert_eq!(cells[4], l["beats"].to_string(), "{row}");
        let sdnn = l["heart_rate"]["sdnn_ms"].as_f64().context("SDNN")?;
        assert_eq!(cells[6], format!("{sdnn:.1}"), "{row}");
    }
    // Piped without --format, insights stay the API's JSON.
    let piped: Value = serde_json::from_str(&run(args(&["insights", &id])).await?)?;
    assert_eq!(piped, insights);
    stack.stop().await
}
