//! docs/analysts.md cannot rot: its Python runs, in order, with the test
//! tools venv (clickhouse-connect, pandas, pyarrow) against a private
//! ClickHouse filled by the real pipeline, logged in as a read-only analyst
//! of tenant `demo`; its SQL examples run over HTTP with that login, their
//! `{name:Type}` parameters bound as `param_<name>`.
//!
//! The data: two minutes of MIT-BIH record 100 as two ECGs of device
//! `holter-7` (tenant `demo`), and one more ECG of a `holter-7` of tenant
//! `other`, which the analyst must never see. What the Python computed is
//! checked against the REST API's insights.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use ecg_clickhouse::ClickHouseConfig;
use ecg_clickhouse::access::{Analyst, users_xml};
use ecg_e2e::Stack;
use ecg_e2e::clickhouse::PrivateClickHouse;
use serde_json::{Value, json};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tools_python() -> PathBuf {
    std::env::var_os("ECG_TOOLS_PYTHON").map_or_else(
        || repo().join(".local/venv-tools/bin/python"),
        PathBuf::from,
    )
}

/// The fenced blocks of `lang` in a Markdown text, in order.
fn blocks(markdown: &str, lang: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match &mut current {
            None if line.trim_start() == format!("```{lang}") => current = Some(String::new()),
            Some(_) if line.trim_start().starts_with("```") => out.extend(current.take()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    out
}

/// Seconds `from..to` of record 100 as the JSON body of a digital ECG.
fn record_100(device: &str, seconds: std::ops::Range<usize>) -> anyhow::Result<Value> {
    let mut reader = ecg_formats::open_file(&repo().join("data/mitdb/100.hea"), &[])?;
    let all = ecg_formats::read_all(reader.as_mut())?;
    let (a, b) = (seconds.start * 360, seconds.end * 360);
    Ok(json!({
        "device_id": device,
        "sample_rate_hz": 360.0,
        "leads": ["MLII", "V5"],
        "started_at": format!("2026-06-01T08:{:02}:00Z", seconds.start / 60),
        "adc": {"MLII": {"gain": 200.0, "baseline": 1024}, "V5": {"gain": 200.0, "baseline": 1024}},
        "signal": {"MLII": &all[0][a..b], "V5": &all[1][a..b]},
    }))
}

/// What the test adds after the document's Python: its results, as JSON.
const REPORT: &str = r#"
import json as _json
print("@@RESULT@@" + _json.dumps({
    "ecgs": len(ecgs),
    "devices": sorted(set(ecgs["device_id"])),
    "complete": [bool(x) for x in ecgs["complete"]],
    "ecg_id": ecg_id,
    "wide_shape": list(wide.shape),
    "arrow_rows": table.num_rows,
    "window_rows": len(window),
    "crossings": {r.lead: int(r.zero_crossings) for r in insights.itertuples()},
    "beats": {lead: int(n) for lead, n in heart["beats"].items()},
    "heart_rate_bpm": {lead: float(v) for lead, v in heart["heart_rate_bpm"].items()},
    "per_ecg_rows": len(per_ecg),
}))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_analysts_quickstart_runs_as_written_with_a_tenant_login() -> anyhow::Result<()> {
    let doc = std::fs::read_to_string(repo().join("docs/analysts.md"))?;
    let password = uuid::Uuid::new_v4().simple().to_string();
    let analysts = [
        Analyst {
            tenant: "demo".into(),
            user: "analyst_demo".into(),
            password: password.clone(),
        },
        Analyst {
            tenant: "other".into(),
            user: "analyst_other".into(),
            password: uuid::Uuid::new_v4().simple().to_string(),
        },
    ];
    let server = PrivateClickHouse::start("analysts_doc", &users_xml("ecg", &analysts)?).await?;
    let stack = Stack::start_on_clickhouse(
        "analysts_doc",
        ClickHouseConfig {
            url: server.url.clone(),
            database: "ecg".into(),
            ..ClickHouseConfig::default()
        },
    )
    .await?;
    let demo = stack.token("demo", "demo-secret", None).await?;
    let other = stack.token("other", "other-secret", None).await?;
    let first = stack
        .open_ecg(&demo, record_100("holter-7", 0..60)?)
        .await?;
    let newest = stack
        .open_ecg(&demo, record_100("holter-7", 60..120)?)
        .await?;
    let theirs = stack
        .open_ecg(&other, record_100("holter-7", 120..180)?)
        .await?;
    for (token, id) in [(&demo, first), (&demo, newest), (&other, theirs)] {
        stack
            .insights_when_complete(token, id, Duration::from_secs(120))
            .await?;
    }

    // The Python, in order, then the report.
    let mut script = blocks(&doc, "python").join("\n");
    ensure!(
        script.contains("clickhouse_connect"),
        "no Python in the document"
    );
    script.push_str(REPORT);
    let port = server
        .url
        .rsplit(':')
        .next()
        .context("no port in the URL")?
        .to_owned();
    let output = tokio::task::spawn_blocking({
        let password = password.clone();
        move || {
            Command::new(tools_python())
                .arg("-c")
                .arg(&script)
                .env("ECG_CH_HOST", "127.0.0.1")
                .env("ECG_CH_PORT", port)
                .env("ECG_CH_USER", "analyst_demo")
                .env("ECG_CH_PASSWORD", password)
                .env("ECG_CH_DATABASE", "ecg")
                .env("ECG_TENANT", "demo")
                .output()
        }
    })
    .await??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success(),
        "docs/analysts.md's Python failed:\n{}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("@@RESULT@@"))
            .context("no report")?,
    )?;
    println!("{report:#}");
    assert_eq!(
        report["ecgs"], 2,
        "the other tenant's ECG is not seen: {report}"
    );
    assert_eq!(report["devices"], json!(["holter-7"]));
    assert_eq!(report["complete"], json!([true, true]));
    assert_eq!(report["ecg_id"], newest.to_string(), "the newest ECG");
    assert_eq!(
        report["wide_shape"],
        json!([21_600, 2]),
        "a minute of two leads"
    );
    assert_eq!(report["arrow_rows"], 43_200);
    assert_eq!(report["window_rows"], 720, "two seconds at 360 Hz");
    assert_eq!(report["per_ecg_rows"], 4, "two ECGs of two leads");
    let api: Value = stack
        .http
        .get(format!("{}/v1/ecgs/{newest}/insights", stack.query))
        .bearer_auth(&demo)
        .send()
        .await?
        .json()
        .await?;
    for lead in ["MLII", "V5"] {
        assert_eq!(
            report["crossings"][lead], api["leads"][lead]["zero_crossings"],
            "lead {lead}: the table's crossings are the API's"
        );
        assert_eq!(
            report["beats"][lead].as_u64().map(|b| b + 1),
            api["leads"][lead]["beats"].as_u64(),
            "lead {lead}: every beat but the first has an RR interval in range"
        );
        let bpm = report["heart_rate_bpm"][lead].as_f64().unwrap_or(0.0);
        ensure!((60.0..90.0).contains(&bpm), "lead {lead}: {bpm} bpm");
    }

    // The SQL, with the same login.
    let sql = blocks(&doc, "sql");
    ensure!(sql.len() >= 2, "the document's SQL examples: {}", sql.len());
    for query in sql {
        let r = stack
            .http
            .post(format!(
                "{}/?database=ecg&param_ecg_id={newest}&param_device=holter-7&default_format=JSONCompact",
                server.url
            ))
            .basic_auth("analyst_demo", Some(&password))
            .body(query.clone())
            .send()
            .await?;
        let status = r.status();
        let text = r.text().await?;
        ensure!(status.is_success(), "{query}\n{status}: {text}");
        let rows: Value = serde_json::from_str(&text)?;
        ensure!(
            rows["rows"].as_u64().unwrap_or(0) > 0,
            "{query}\nno rows: {text}"
        );
        // No row of the other tenant's ECG.
        ensure!(
            !text.contains(&theirs.to_string()),
            "{query}\nsaw the other tenant: {text}"
        );
    }
    stack.stop().await?;
    drop(server);
    Ok(())
}
