//! The query API's OpenAPI 3.1 document is the truth: schemathesis generates
//! requests from it (valid and invalid, with a valid token, against an ECG
//! with data and random ids) and checks that no answer is a 5xx and every
//! answer conforms to the document (status, content type, headers, body).
//!
//! Schemathesis lives in `<repo>/.local/venv-tools` (`dev/stack.sh install`);
//! `ECG_SCHEMATHESIS` overrides the path of its executable.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use ecg_e2e::Stack;
use serde_json::json;

fn schemathesis() -> PathBuf {
    std::env::var_os("ECG_SCHEMATHESIS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.local/venv-tools/bin/schemathesis"),
        PathBuf::from,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_answer_conforms_to_the_openapi_document() -> anyhow::Result<()> {
    let exe = schemathesis();
    anyhow::ensure!(
        exe.exists(),
        "{} is missing: run `dev/stack.sh install` or set ECG_SCHEMATHESIS",
        exe.display()
    );
    let stack = Stack::start("query_openapi").await?;
    let demo = stack.token("demo", "demo-secret", None).await?;
    let id = stack
        .open_ecg(
            &demo,
            json!({"device_id": "fuzz-1", "sample_rate_hz": 100, "leads": ["I", "II"],
                               "started_at": "2026-04-01T00:00:00Z"}),
        )
        .await?;
    let wave: Vec<f64> = (0..300).map(|i| ((i as f64) / 5.0).sin()).collect();
    stack
        .send_chunk(&demo, id, 0, json!({"I": &wave, "II": &wave}), true)
        .await?;
    stack.wait_complete(&demo, id, 600).await?;

    let (code, doc) = stack.get_json(None, "/openapi.json").await?;
    assert_eq!(code, 200);
    assert!(
        doc["openapi"].as_str().unwrap_or("").starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let docs = stack
        .http
        .get(format!("{}/docs/", stack.query))
        .send()
        .await?;
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await?.contains("swagger-ui"));

    // Half the ids and devices are real ones, so 200 answers are checked
    // too; the rest are whatever the generator draws.
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("schemathesis.toml");
    std::fs::write(
        &config,
        format!(
            "[dictionaries.ecgs]\nvalues = [\"{id}\"]\n\
             [dictionaries.devices]\nvalues = [\"fuzz-1\"]\n\
             [parameters]\n\
             \"path.id\" = {{ dictionary = \"ecgs\", probability = 0.5 }}\n\
             \"path.device_id\" = {{ dictionary = \"devices\", probability = 0.5 }}\n"
        ),
    )?;
    let child = tokio::process::Command::new(&exe)
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(format!("{}/openapi.json", stack.query))
        .args(["-H", &format!("Authorization: Bearer {demo}")])
        // Every check but one: a schema-valid request may still be refused
        // when parameters contradict each other (`from` after `to`), which
        // OpenAPI cannot express.
        .args([
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
        ])
        .args([
            "--max-time",
            "60",
            "--workers",
            "2",
            "--request-timeout",
            "10",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let out = tokio::time::timeout(Duration::from_secs(110), child.wait_with_output())
        .await
        .map_err(|_| anyhow::anyhow!("schemathesis ran over 110 s"))??;
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{report}");
    assert!(out.status.success(), "schemathesis failed:\n{report}");
    let operations = doc["paths"].as_object().map_or(0, |p| p.len());
    assert!(operations >= 10, "{doc}");
    assert!(
        report.contains(&format!("Tested: {operations}")),
        "every operation tested:\n{report}"
    );
    stack.stop().await
}
