//! `ecgctl upload` of real files: MIT-BIH record 208 written as WFDB format
//! 212, WFDB format 16 and EDF+ by the reference Python packages (wfdb,
//! pyedflib; `make_files.py`), uploaded with the real `ecgctl` binary to an
//! in-process stack. Each lead's insights must equal one pass over the
//! signal as those packages decode it.
//!
//! Needs the test tools venv (`dev/stack.sh install` makes
//! `.local/venv-tools`; `ECG_TOOLS_PYTHON` overrides) and, once, PyPI for
//! the scipy 1.14.0 wheel that holds the record (cached in `.local/cache`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use ecg_e2e::Stack;
use ecg_signal::LeadSummary;
use serde_json::Value;

mod common;
use common::{ecgctl, root};

fn make_files(out: &Path) -> anyhow::Result<Value> {
    let python = std::env::var_os("ECG_TOOLS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".local/venv-tools/bin/python"));
    let status = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/make_files.py"))
        .arg(root().join(".local/cache"))
        .arg(out)
        .status()
        .with_context(|| {
            format!(
                "running {}; did `dev/stack.sh install` make the tools venv?",
                python.display()
            )
        })?;
    ensure!(status.success(), "make_files.py failed: {status}");
    Ok(serde_json::from_slice(&std::fs::read(
        out.join("expected.json"),
    )?)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uploads_of_wfdb_212_wfdb_16_edf_and_csv_give_the_crossings_of_the_decoded_signal()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let files = dir.path().join("files");
    let home = dir.path().join("home");
    let expected = tokio::task::spawn_blocking({
        let files = files.clone();
        move || make_files(&files)
    })
    .await??;
    let stack = Stack::start("ecgctl_files").await?;
    let token = stack.token("demo", "demo-secret", None).await?;

    let run = |args: Vec<String>| {
        let (ingest, query, home) = (stack.ingest.clone(), stack.query.clone(), home.clone());
        async move { tokio::task::spawn_blocking(move || ecgctl(&ingest, &query, &home, &args)).await? }
    };
    run(vec!["login".into(), "--client-id".into(), "demo".into()]).await?;

    for (file, key) in [
        ("r212.hea", "r212"),
        ("r16", "r16"),
        ("r208.edf", "r208.edf"),
    ] {
        let path = files.join(file);
        let out = run(vec![
            "upload".into(),
            "--quiet".into(),
            path.display().to_string(),
        ])
        .await?;
        let accepted: Value = serde_json::from_str(out.trim())?;
        let id: uuid::Uuid = accepted["id"].as_str().context("no id")?.parse()?;
        let insights = stack
            .insights_when_complete(&token, id, Duration::from_secs(60))
            .await?;
        let want = &expected[key];
        let mut total = 0;
        for (i, lead) in want["leads"]
            .as_array()
            .context("leads")?
            .iter()
            .enumerate()
        {
            let lead = lead.as_str().context("lead name")?;
            let digital: Vec<i32> = serde_json::from_value(want["digital"][i].clone())?;
            let baseline = want["baseline"][i].as_i64().context("baseline")?;
            let one_pass = LeadSummary::of_digital_i32(&digital, baseline);
            assert!(
                one_pass.crossings > 1000,
                "{key} {lead}: a real ECG crosses often"
            );
            assert_eq!(
                insights["leads"][lead]["zero_crossings"], one_pass.crossings,
                "{key} lead {lead}"
            );
            assert_eq!(
                insights["leads"][lead]["samples"],
                digital.len(),
                "{key} lead {lead}"
            );
            total += one_pass.crossings;
        }
        assert_eq!(insights["total_zero_crossings"], total, "{key}");
        // The CLI's own views agree with the API.
        let shown: Value =
            serde_json::from_str(&run(vec!["insights".into(), id.to_string()]).await?)?;
        assert_eq!(shown, insights, "{key}: ecgctl insights");
        let watched: Value =
            serde_json::from_str(&run(vec!["watch".into(), id.to_string()]).await?)?;
        assert_eq!(watched, insights, "{key}: ecgctl watch");
        let status: Value =
            serde_json::from_str(&run(vec!["status".into(), id.to_string()]).await?)?;
        assert_eq!(
            status["adc"]["MLII"]["baseline"],
            if key == "r208.edf" { 0 } else { 1024 },
            "{key}"
        );
    }

    // CSV in mV with a time column, sent as it is: crossings of the floats.
    let digital: Vec<i64> = serde_json::from_value(expected["r16"]["digital"][0].clone())?;
    let values: Vec<f64> = digital.iter().map(|&d| (d - 1024) as f64 / 200.0).collect();
    let mut csv = String::from("time,MLII\n");
    for (i, v) in values.iter().enumerate() {
        csv.push_str(&format!("{},{v}\n", i as f64 / 360.0));
    }
    let path = files.join("r208.csv");
    std::fs::write(&path, csv)?;
    let out = run(vec![
        "upload".into(),
        "--quiet".into(),
        "--rate".into(),
        "360".into(),
        path.display().to_string(),
    ])
    .await?;
    let accepted: Value = serde_json::from_str(out.trim())?;
    let id: uuid::Uuid = accepted["id"].as_str().context("no id")?.parse()?;
    let insights = stack
        .insights_when_complete(&token, id, Duration::from_secs(60))
        .await?;
    assert_eq!(
        insights["leads"]["MLII"]["zero_crossings"],
        LeadSummary::of(&values).crossings,
        "csv"
    );
    assert_eq!(insights["leads"]["MLII"]["samples"], values.len(), "csv");
    stack.stop().await
}
