//! The OpenAPI 3.1 documents of the query API and of the gateway (with its
//! configured limits) are the truth: schemathesis generates requests from
//! each (valid and invalid, with a valid token, against an ECG with data, an
//! open ECG and random ids) and checks that no answer is a 5xx and every
//! answer conforms to the document (status, content type, headers, body);
//! a request the document calls invalid must be refused.
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
    let report = schemathesis_run(
        &exe,
        &format!("{}/openapi.json", stack.query),
        &demo,
        &format!(
            "[dictionaries.ecgs]\nvalues = [\"{id}\"]\n\
             [dictionaries.devices]\nvalues = [\"fuzz-1\"]\n\
             [parameters]\n\
             \"path.id\" = {{ dictionary = \"ecgs\", probability = 0.5 }}\n\
             \"path.device_id\" = {{ dictionary = \"devices\", probability = 0.5 }}\n"
        ),
        2,
    )
    .await?;
    let operations = doc["paths"].as_object().map_or(0, |p| p.len());
    assert!(operations >= 10, "{doc}");
    assert!(
        report.contains(&format!("Tested: {operations}")),
        "every operation tested:\n{report}"
    );

    // The gateway, with its limits in the document: half the ids are an
    // open ECG's, so chunks and ends reach the validator.
    let open = stack
        .open_ecg(
            &demo,
            json!({"device_id": "fuzz-2", "sample_rate_hz": 100, "leads": ["I", "II"]}),
        )
        .await?;
    let gateway_doc: serde_json::Value = stack
        .http
        .get(format!("{}/openapi.json", stack.ingest))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let report = schemathesis_run(
        &exe,
        &format!("{}/openapi.json", stack.ingest),
        &demo,
        &format!(
            "[dictionaries.ecgs]\nvalues = [\"{open}\"]\n\
             [parameters]\n\
             \"path.id\" = {{ dictionary = \"ecgs\", probability = 0.5 }}\n"
        ),
        // One thread: the patterns of the gateway's limits send hypothesis
        // through `ast` from both workers at once, which Python 3.11 fails
        // at now and then ("AST constructor recursion depth mismatch", a
        // runtime error of the tool, not a finding).
        1,
    )
    .await?;
    let operations = gateway_doc["paths"].as_object().map_or(0, |p| p.len());
    assert!(operations >= 6, "{gateway_doc}");
    assert!(
        report.contains(&format!("Tested: {operations}")),
        "every operation tested:\n{report}"
    );
    stack.stop().await
}

/// Runs schemathesis against the document at `doc_url` with `token` and
/// the dictionaries and parameters of `config` (TOML), on `workers`
/// threads; fails unless every check passes. Returns its report.
async fn schemathesis_run(
    exe: &std::path::Path,
    doc_url: &str,
    token: &str,
    config: &str,
    workers: u8,
) -> anyhow::Result<String> {
    let dir = tempfile::tempdir()?;
    let config_file = dir.path().join("schemathesis.toml");
    std::fs::write(&config_file, config)?;
    let child = tokio::process::Command::new(exe)
        .arg("--config-file")
        .arg(&config_file)
        .arg("run")
        .arg(doc_url)
        .args(["-H", &format!("Authorization: Bearer {token}")])
        // Every check but one: a schema-valid request may still be refused
        // when parameters contradict each other (`from` after `to`, samples
        // of unequal lengths), which OpenAPI cannot express.
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
            &workers.to_string(),
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
    anyhow::ensure!(
        out.status.success(),
        "schemathesis failed on {doc_url}:\n{report}"
    );
    Ok(report)
}
