//! `ecgctl export` on a real record: MIT-BIH record 100 (`data/mitdb`, 30
//! min, two leads at 360 Hz, format 212), uploaded as WFDB with the real
//! `ecgctl` binary to an in-process stack, then exported both ways and read
//! with the reference readers in the test tools venv:
//! - as WFDB: `wfdb.rdrecord` reads the same ADC samples, gains,
//!   baselines, frequency, lead names and format as the original, the
//!   `.dat` is byte-identical to `100.dat`, and each lead's beat
//!   annotations (`rdann`) are exactly the API's beats of that lead;
//! - as FHIR: `fhir.resources` validates the Observation (R4B models, whose
//!   Observation and SampledData are R4's), the data are the ADC counts,
//!   and origin + factor x data, in exact decimal arithmetic, is every
//!   stored value (`(adc - baseline) / gain`) bit for bit;
//! - round trip: the exported Observation posted back as
//!   `application/fhir+json` makes an ECG whose FHIR export has the same
//!   components and whose WFDB `.dat` is again `100.dat`.
//!
//! Needs the test tools venv (`dev/stack.sh install` makes
//! `.local/venv-tools`; `ECG_TOOLS_PYTHON` overrides).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use ecg_e2e::Stack;
use serde_json::Value;

mod common;
use common::{api_beats, ecgctl, root, tools_python};

/// Runs a Python script with the tools venv; its stdout as JSON.
fn python(script: &str, args: &[&Path]) -> anyhow::Result<Value> {
    let python = tools_python();
    let output = Command::new(&python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .with_context(|| {
            format!(
                "running {}; did `dev/stack.sh install` make the tools venv?",
                python.display()
            )
        })?;
    ensure!(
        output.status.success(),
        "python: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    Ok(serde_json::from_slice(&output.stdout)?)
}

/// Compares the exported record with the original, reading both with
/// `wfdb.rdrecord`; prints what differs, or `{"same": true, ...}`.
const SAME_RECORD: &str = r#"
import json, sys, wfdb, numpy as np
ours = wfdb.rdrecord(sys.argv[1], physical=False)
theirs = wfdb.rdrecord(sys.argv[2], physical=False)
diff = []
for field in ["fs", "sig_name", "adc_gain", "baseline", "fmt", "sig_len", "n_sig", "units"]:
    if getattr(ours, field) != getattr(theirs, field):
        diff.append([field, str(getattr(ours, field)), str(getattr(theirs, field))])
if not np.array_equal(ours.d_signal, theirs.d_signal):
    diff.append(["d_signal", int((ours.d_signal != theirs.d_signal).sum()), ""])
print(json.dumps({"same": not diff, "diff": diff, "fmt": ours.fmt, "sig_len": ours.sig_len}))
"#;

/// The beat annotations of one annotator file.
const RDANN: &str = r#"
import json, sys, wfdb
a = wfdb.rdann(sys.argv[1], sys.argv[2])
print(json.dumps({"sample": [int(s) for s in a.sample], "symbol": a.symbol, "chan": [int(c) for c in a.chan]}))
"#;

/// Validates the FHIR Observation with fhir.resources and checks every
/// component's data against the original record, exactly.
const FHIR_CHECK: &str = r#"
import json, sys, wfdb
from decimal import Decimal, getcontext
from fhir.resources.R4B.observation import Observation
getcontext().prec = 60
text = open(sys.argv[1], encoding="utf-8").read()
obs = Observation.model_validate_json(text)
doc = json.loads(text, parse_float=Decimal, parse_int=Decimal)
rec = wfdb.rdrecord(sys.argv[2], physical=False)
out = {"status": obs.status, "components": [], "mismatches": 0, "samples": 0}
for k, comp in enumerate(doc["component"]):
    sd = comp["valueSampledData"]
    data = [int(x) for x in sd["data"].split(" ")]
    origin, factor = Decimal(sd["origin"]["value"]), Decimal(sd.get("factor", 1))
    name = comp["code"].get("text")
    lead = rec.sig_name.index(name)
    counts = [int(x) for x in rec.d_signal[:, lead]]
    gain, base = rec.adc_gain[lead], rec.baseline[lead]
    for d, c in zip(data, counts):
        # What ecg-stream stores for an ADC count: (adc - baseline) / gain, in f64.
        stored = (c - base) / gain
        if float(origin + factor * Decimal(d)) != stored or d != c:
            out["mismatches"] += 1
    out["samples"] += len(data)
    out["components"].append({
        "text": name,
        "codes": [c["code"] for c in comp["code"].get("coding", [])],
        "same_length": len(data) == len(counts),
        "origin": str(origin), "factor": str(factor), "period": str(sd["period"]),
        "unit": sd["origin"].get("code"),
    })
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn record_100_exports_exactly_as_wfdb_and_as_fhir_and_comes_back_from_fhir()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let home = dir.path().join("home");
    let stack = Stack::start("ecgctl_export").await?;
    let token = stack.token("demo", "demo-secret", None).await?;
    let stack = std::sync::Arc::new(stack);
    let run = |args: Vec<String>| {
        let (stack, home) = (stack.clone(), home.clone());
        async move {
            tokio::task::spawn_blocking(move || ecgctl(&stack.ingest, &stack.query, &home, &args))
                .await?
        }
    };
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    run(args(&["login", "--client-id", "demo"])).await?;
    let original = root().join("data/mitdb/100");
    let record = original.with_extension("hea").display().to_string();
    let out = run(args(&["upload", "--quiet", &record])).await?;
    let accepted: Value = serde_json::from_str(out.trim())?;
    let id: uuid::Uuid = accepted["id"].as_str().context("no id")?.parse()?;
    stack
        .insights_when_complete(&token, id, Duration::from_secs(180))
        .await?;

    // WFDB: the same record, byte for byte, and each lead's beats.
    let wfdb_dir = dir.path().join("wfdb");
    let wfdb_out = wfdb_dir.display().to_string();
    let id_text = id.to_string();
    run(args(&[
        "export", &id_text, "--format", "wfdb", "--out", &wfdb_out, "--record", "r100",
    ]))
    .await?;
    let ours = wfdb_dir.join("r100");
    let same = python(SAME_RECORD, &[&ours, &original])?;
    assert_eq!(same["same"], true, "exported record differs: {same}");
    assert_eq!(same["fmt"], serde_json::json!(["212", "212"]), "{same}");
    assert_eq!(
        std::fs::read(ours.with_extension("dat"))?,
        std::fs::read(original.with_extension("dat"))?,
        "the exported 100.dat is byte-identical to PhysioNet's"
    );
    for (k, lead) in ["MLII", "V5"].iter().enumerate() {
        let api = api_beats(&stack, &token, id, lead, 10_000).await?;
        ensure!(api.len() > 2000, "lead {lead}: {} beats", api.len());
        let read = python(RDANN, &[&ours, Path::new(&format!("qrs{k}"))])?;
        let samples: Vec<u64> = serde_json::from_value(read["sample"].clone())?;
        assert_eq!(samples, api, "lead {lead}: rdann reads the API's beats");
        let symbols: Vec<String> = serde_json::from_value(read["symbol"].clone())?;
        assert!(symbols.iter().all(|s| s == "N"), "every beat is N");
        let chans: Vec<u64> = serde_json::from_value(read["chan"].clone())?;
        assert!(
            chans.iter().all(|&c| c == k as u64),
            "lead {lead}: chan {k}"
        );
    }

    // FHIR: valid, the ADC counts, and exact values.
    let fhir_path = dir.path().join("100.fhir.json");
    let fhir_out = fhir_path.display().to_string();
    run(args(&[
        "export", &id_text, "--format", "fhir", "--out", &fhir_out,
    ]))
    .await?;
    let checked = python(FHIR_CHECK, &[&fhir_path, &original])?;
    assert_eq!(checked["status"], "final", "{checked}");
    assert_eq!(checked["samples"], 2 * 650_000, "{checked}");
    assert_eq!(checked["mismatches"], 0, "{checked}");
    let components = checked["components"].as_array().context("components")?;
    assert_eq!(components.len(), 2);
    for c in components {
        assert_eq!(c["same_length"], true, "{c}");
        assert_eq!(
            (c["origin"].as_str(), c["factor"].as_str()),
            (Some("-5.12"), Some("0.005")),
            "{c}"
        );
        assert_eq!(c["unit"], "mV", "{c}");
    }
    // MLII has no MDC code of its own; V5 has.
    assert_eq!(components[0]["codes"], serde_json::json!([]), "{checked}");
    assert_eq!(
        components[1]["codes"],
        serde_json::json!(["131335"]),
        "{checked}"
    );

    // Round trip: the Observation makes a new ECG, which exports the same.
    let api = ecg_client::Api::new(stack.http.clone(), &stack.ingest, &stack.query, &token);
    let back = api.create_ecg_fhir(std::fs::read(&fhir_path)?).await?;
    ensure!(back.id != id, "a new ECG");
    stack
        .insights_when_complete(&token, back.id, Duration::from_secs(180))
        .await?;
    let again_path = dir.path().join("again.fhir.json");
    let again_out = again_path.display().to_string();
    let back_id = back.id.to_string();
    run(args(&[
        "export", &back_id, "--format", "fhir", "--out", &again_out,
    ]))
    .await?;
    let first: Value = serde_json::from_slice(&std::fs::read(&fhir_path)?)?;
    let second: Value = serde_json::from_slice(&std::fs::read(&again_path)?)?;
    assert_eq!(
        first["component"], second["component"],
        "FHIR -> ecg-stream -> FHIR is exact"
    );
    assert_eq!(first["effectivePeriod"], second["effectivePeriod"]);
    assert_eq!(first["subject"], second["subject"]);
    let again_dir = dir.path().join("again");
    let again_dir_out = again_dir.display().to_string();
    run(args(&[
        "export",
        &back_id,
        "--format",
        "wfdb",
        "--out",
        &again_dir_out,
        "--record",
        "r100",
    ]))
    .await?;
    assert_eq!(
        std::fs::read(again_dir.join("r100.dat"))?,
        std::fs::read(original.with_extension("dat"))?,
        "the round-tripped ECG's record is 100.dat again"
    );
    std::sync::Arc::into_inner(stack)
        .context("the stack is still shared")?
        .stop()
        .await
}
