//! The exports (`GET /v1/ecgs/{id}/fhir`, `/wfdb`) and the FHIR import
//! (`POST /v1/ecgs` with `application/fhir+json`) on physical ECGs, against
//! the real stack; record 100 (a digital ECG) is `ecgctl/tests/export.rs`.
//! - FHIR: every stored value comes back exactly (decimals as scaled
//!   integers, others as their shortest text, -0.0 and 1e300 included),
//!   the document validates with `fhir.resources`, a range and the pages of
//!   a long range (linked by `Link: rel="next"`) hold exactly their
//!   samples, and the Observation posted back makes the same ECG.
//! - WFDB: decimals as integers with gain 10^scale (`wfdb.rdrecord` gives
//!   back each value), and 409 where no integer form is exact.
//! - Bad requests and bad Observations get precise errors and change
//!   nothing.
//!
//! Needs the test tools venv (`dev/stack.sh install`; `ECG_TOOLS_PYTHON`
//! overrides).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use ecg_e2e::Stack;
use serde_json::{Value, json};

fn tools_python() -> PathBuf {
    std::env::var_os("ECG_TOOLS_PYTHON").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../.local/venv-tools/bin/python"),
        PathBuf::from,
    )
}

/// Runs a Python script with the tools venv; its stdout as JSON.
fn python(script: &str, args: &[&Path]) -> anyhow::Result<Value> {
    let python = tools_python();
    let output = Command::new(&python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .with_context(|| format!("running {}; is the tools venv installed?", python.display()))?;
    ensure!(
        output.status.success(),
        "python: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(serde_json::from_slice(&output.stdout)?)
}

/// Validates an Observation (argv 1) with fhir.resources and compares each
/// component's origin + factor x data, in exact decimals, with the expected
/// values (argv 2: lead -> the values' `float.hex()`), bit for bit.
const FHIR_VALUES: &str = r#"
import json, sys
from decimal import Decimal, getcontext
from fhir.resources.R4B.observation import Observation
getcontext().prec = 80
text = open(sys.argv[1], encoding="utf-8").read()
Observation.model_validate_json(text)
doc = json.loads(text, parse_float=Decimal, parse_int=Decimal)
want = json.load(open(sys.argv[2]))
out = {}
for comp in doc["component"]:
    sd = comp["valueSampledData"]
    origin, factor = Decimal(sd["origin"]["value"]), Decimal(sd.get("factor", 1))
    got = []
    for d in sd["data"].split(" ") if sd["data"] else []:
        v = float(Decimal(d)) if origin == 0 and factor == 1 else float(origin + factor * Decimal(d))
        got.append(v.hex())
    lead = comp["code"]["text"]
    out[lead] = {"same": got == want.get(lead), "n": len(got), "integers": all(
        x.lstrip("-").isdigit() for x in sd["data"].split(" ")), "factor": str(factor)}
print(json.dumps(out))
"#;

/// Reads a WFDB record (argv 1) as physical values: lead -> `float.hex()`.
const WFDB_VALUES: &str = r#"
import json, sys, wfdb
r = wfdb.rdrecord(sys.argv[1], physical=True)
print(json.dumps({"fmt": r.fmt, "gain": [float(g) for g in r.adc_gain],
    "leads": {n: [float(v).hex() for v in r.p_signal[:, k]] for k, n in enumerate(r.sig_name)}}))
"#;

/// Each lead's values as Python's `float.hex()` writes them.
fn hex_of(values: &[f64]) -> Vec<String> {
    values.iter().map(|&v| python_hex(v)).collect()
}

/// `float.hex()`: `[-]0x1.<13 hex digits>p<exp>` (`0x0.` for subnormals),
/// and `0x0.0p+0` for zero.
fn python_hex(v: f64) -> String {
    let sign = if v.is_sign_negative() { "-" } else { "" };
    if v == 0.0 {
        return format!("{sign}0x0.0p+0");
    }
    let bits = v.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i64;
    let mantissa = bits & ((1u64 << 52) - 1);
    let (lead, exp) = if exp == 0 {
        (0, -1022)
    } else {
        (1, exp - 1023)
    };
    format!("{sign}0x{lead}.{mantissa:013x}p{exp:+}")
}

/// Sends an ECG with its whole signal as JSON; its id once complete.
async fn send(stack: &Stack, token: &str, body: &Value) -> anyhow::Result<uuid::Uuid> {
    let r = stack
        .http
        .post(format!("{}/v1/ecgs", stack.ingest))
        .bearer_auth(token)
        .json(body)
        .send()
        .await?;
    ensure!(
        r.status() == 202,
        "create: {} {}",
        r.status(),
        r.text().await?
    );
    let id: uuid::Uuid = r.json::<Value>().await?["id"]
        .as_str()
        .context("id")?
        .parse()?;
    stack
        .insights_when_complete(token, id, Duration::from_secs(120))
        .await?;
    Ok(id)
}

async fn get(stack: &Stack, token: &str, path: &str) -> anyhow::Result<reqwest::Response> {
    Ok(stack
        .http
        .get(format!("{}{path}", stack.query))
        .bearer_auth(token)
        .send()
        .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn physical_ecgs_export_exactly_and_fhir_comes_back_the_same() -> anyhow::Result<()> {
    let stack = Stack::start("exports").await?;
    let token = stack.token("demo", "demo-secret", None).await?;
    let dir = tempfile::tempdir()?;
    let n = 1_500usize;
    // Decimals of 3 and 4 places; decimals with -0.0 among them; floats
    // with no decimal form at all.
    let milli: Vec<f64> = (0..n).map(|k| (k as f64 - 700.0) / 1000.0).collect();
    let tenth: Vec<f64> = (0..n)
        .map(|k| ((k * 37 % 201) as f64 - 100.0) / 10_000.0)
        .collect();
    // A few -0.0 (no decimal form) among decimals: kept raw beside them.
    let zeros: Vec<f64> = (0..n)
        .map(|k| match k % 10 {
            0 => -0.0,
            1..5 => 0.25,
            _ => -1.5,
        })
        .collect();
    let floats: Vec<f64> = (0..n)
        .map(|k| match k % 5 {
            0 => 1.0 / 3.0,
            1 => 1e300,
            2 => 5e-324,
            3 => -0.0,
            _ => -f64::MAX,
        })
        .collect();
    let leads = ["I", "aVR", "V1", "X1"];
    let columns = [&milli, &tenth, &zeros, &floats];
    let body = json!({
        "device_id": "dev \"quoted\" \\ 1",
        "sample_rate_hz": 500.0,
        "leads": leads,
        "started_at": "2026-03-01T08:00:00.123456Z",
        "signal": leads.iter().zip(columns).map(|(l, c)| (l.to_string(), json!(c))).collect::<serde_json::Map<_, _>>(),
    });
    let id = send(&stack, &token, &body).await?;
    // Among decimals, -0.0 travels as the integer 0: origin + factor x 0
    // is +0 (FHIR's arithmetic, like WFDB's, has no signed zero). Where
    // values travel as text (X1), -0.0 stays -0.0.
    let unsigned_zeros: Vec<f64> = zeros
        .iter()
        .map(|&v| if v == 0.0 { 0.0 } else { v })
        .collect();
    let want: serde_json::Map<String, Value> = leads
        .iter()
        .zip([&milli, &tenth, &unsigned_zeros, &floats])
        .map(|(l, c)| (l.to_string(), json!(hex_of(c))))
        .collect();
    let want_path = dir.path().join("want.json");
    std::fs::write(&want_path, serde_json::to_vec(&want)?)?;

    // FHIR: the whole ECG, exact and valid.
    let r = get(&stack, &token, &format!("/v1/ecgs/{id}/fhir")).await?;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/fhir+json");
    assert!(r.headers().get("link").is_none(), "one page");
    let text = r.bytes().await?;
    let fhir_path = dir.path().join("obs.json");
    std::fs::write(&fhir_path, &text)?;
    let checked = python(FHIR_VALUES, &[&fhir_path, &want_path])?;
    for lead in leads {
        assert_eq!(checked[lead]["same"], true, "lead {lead}: {checked}");
        assert_eq!(checked[lead]["n"], n, "lead {lead}");
    }
    // Decimals travel as integers over a power of ten; floats as text.
    assert_eq!(
        (
            checked["I"]["integers"].clone(),
            checked["I"]["factor"].clone()
        ),
        (json!(true), json!("0.001"))
    );
    assert_eq!(checked["aVR"]["factor"], "0.0001");
    assert_eq!(
        checked["V1"]["integers"], true,
        "-0.0 among decimals: {checked}"
    );
    assert_eq!(checked["X1"]["integers"], false);
    let doc: Value = serde_json::from_slice(&text)?;
    assert_eq!(doc["status"], "final");
    assert_eq!(doc["device"]["identifier"]["value"], "dev \"quoted\" \\ 1");
    assert_eq!(
        doc["effectivePeriod"]["start"],
        "2026-03-01T08:00:00.123456Z"
    );
    assert_eq!(doc["effectivePeriod"]["end"], "2026-03-01T08:00:03.123456Z");
    assert_eq!(
        doc["component"][1]["code"]["coding"][0]["code"], "131390",
        "aVR"
    );

    // A range: samples 250..1000.
    let r = get(
        &stack,
        &token,
        &format!(
            "/v1/ecgs/{id}/fhir?from=2026-03-01T08:00:00.623456Z&to=2026-03-01T08:00:02.123456Z"
        ),
    )
    .await?;
    let ranged: Value = r.json().await?;
    let data = ranged["component"][0]["valueSampledData"]["data"]
        .as_str()
        .context("data")?;
    let got: Vec<i64> = data.split(' ').map(str::parse).collect::<Result<_, _>>()?;
    let expected: Vec<i64> = (250..1000).map(|k| k as i64 - 700).collect();
    assert_eq!(got, expected, "the range's samples, exactly");

    // Pages: a query API that puts 400 samples per lead in an Observation.
    let paged = stack
        .extra_query_api(|c| c.export.fhir_page_samples = 400)
        .await?;
    let paged_token = paged.token("demo", "demo-secret").await?;
    let mut url = Some(format!("{}/v1/ecgs/{id}/fhir", paged.url));
    let (mut pages, mut all) = (0, Vec::<i64>::new());
    while let Some(u) = url.take() {
        let u = if u.starts_with('/') {
            format!("{}{u}", paged.url)
        } else {
            u
        };
        let r = stack.http.get(&u).bearer_auth(&paged_token).send().await?;
        ensure!(r.status() == 200, "{u}: {}", r.status());
        url = r.headers().get("link").map(|l| {
            let l = l.to_str().unwrap_or_default();
            l.trim_start_matches('<')
                .split('>')
                .next()
                .unwrap_or_default()
                .to_owned()
        });
        let page: Value = r.json().await?;
        let data = page["component"][0]["valueSampledData"]["data"]
            .as_str()
            .context("data")?;
        all.extend(
            data.split(' ')
                .map(|d| d.parse::<i64>())
                .collect::<Result<Vec<_>, _>>()?,
        );
        pages += 1;
        ensure!(pages < 10, "pages do not end");
    }
    assert_eq!(pages, 4, "1,500 samples in pages of 400");
    let whole: Vec<i64> = (0..n).map(|k| k as i64 - 700).collect();
    assert_eq!(all, whole, "the pages hold every sample once, in order");

    // FHIR back in: the same values in a new ECG.
    let back = stack
        .http
        .post(format!("{}/v1/ecgs", stack.ingest))
        .bearer_auth(&token)
        .header("content-type", "application/fhir+json")
        .body(text.clone())
        .send()
        .await?;
    assert_eq!(back.status(), 202, "{}", back.text().await?);
    let back_id: uuid::Uuid = back.json::<Value>().await?["id"]
        .as_str()
        .context("id")?
        .parse()?;
    stack
        .insights_when_complete(&token, back_id, Duration::from_secs(120))
        .await?;
    let again = get(&stack, &token, &format!("/v1/ecgs/{back_id}/fhir"))
        .await?
        .bytes()
        .await?;
    let again_path = dir.path().join("again.json");
    std::fs::write(&again_path, &again)?;
    let checked = python(FHIR_VALUES, &[&again_path, &want_path])?;
    for lead in leads {
        assert_eq!(
            checked[lead]["same"], true,
            "round trip, lead {lead}: {checked}"
        );
    }
    let again: Value = serde_json::from_slice(&again)?;
    assert_eq!(again["effectivePeriod"], doc["effectivePeriod"]);
    assert_eq!(again["device"], doc["device"]);

    // WFDB: not with floats that have no decimal form...
    let r = get(&stack, &token, &format!("/v1/ecgs/{id}/wfdb")).await?;
    assert_eq!(r.status(), 409);
    let e: Value = r.json().await?;
    assert_eq!(e["error"], "no_exact_form");
    assert!(
        e["message"].as_str().unwrap_or_default().contains("X1"),
        "{e}"
    );
    // ... but decimals are integers over 10^scale.
    let decimals = json!({
        "device_id": "d2",
        "sample_rate_hz": 250.0,
        "leads": ["I", "aVR", "V1"],
        "signal": {"I": milli, "aVR": tenth, "V1": zeros},
    });
    let id2 = send(&stack, &token, &decimals).await?;
    let r = get(&stack, &token, &format!("/v1/ecgs/{id2}/wfdb?record=dec")).await?;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-tar");
    let tar = r.bytes().await?;
    let wfdb_dir = dir.path().join("wfdb");
    tar::Archive::new(&tar[..]).unpack(&wfdb_dir)?;
    let read = python(WFDB_VALUES, &[&wfdb_dir.join("dec")])?;
    assert_eq!(
        read["gain"],
        json!([1000.0, 10000.0, 100.0]),
        "{}",
        read["gain"]
    );
    for (lead, values) in [("I", &milli), ("aVR", &tenth)] {
        assert_eq!(read["leads"][lead], json!(hex_of(values)), "lead {lead}");
    }
    assert_eq!(read["leads"]["V1"], json!(hex_of(&unsigned_zeros)));
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_exports_and_bad_observations_get_precise_errors_and_change_nothing()
-> anyhow::Result<()> {
    let stack = Stack::start("exports_bad").await?;
    let token = stack.token("demo", "demo-secret", None).await?;
    let other = stack.token("other", "other-secret", None).await?;
    let id = send(
        &stack,
        &token,
        &json!({"device_id": "d", "sample_rate_hz": 100.0, "leads": ["I"], "signal": {"I": [0.5, 1.5]}}),
    )
    .await?;
    for (path, tok, status, field) in [
        (format!("/v1/ecgs/{id}/fhir"), other.as_str(), 404, None),
        (format!("/v1/ecgs/{id}/wfdb"), other.as_str(), 404, None),
        (
            format!("/v1/ecgs/{id}/fhir?from=yesterday"),
            token.as_str(),
            400,
            Some("from"),
        ),
        (
            format!("/v1/ecgs/{id}/fhir?x=1"),
            token.as_str(),
            400,
            Some("x"),
        ),
        (
            format!("/v1/ecgs/{id}/fhir?from=2030-01-01T00:00:00Z&to=2029-01-01T00:00:00Z"),
            token.as_str(),
            400,
            Some("to"),
        ),
        (
            format!("/v1/ecgs/{id}/wfdb?record=a.b"),
            token.as_str(),
            400,
            Some("record"),
        ),
        (
            format!("/v1/ecgs/{id}/wfdb?record="),
            token.as_str(),
            400,
            Some("record"),
        ),
        (
            "/v1/ecgs/nope/fhir".to_owned(),
            token.as_str(),
            400,
            Some("id"),
        ),
        (format!("/v1/ecgs/{id}/fhir"), "not-a-token", 401, None),
    ] {
        let r = get(&stack, tok, &path).await?;
        assert_eq!(r.status().as_u16(), status, "{path}");
        let body: Value = r.json().await?;
        if let Some(field) = field {
            assert_eq!(body["field"], field, "{path}: {body}");
        }
    }

    let observation = |data: &str, period: Value| {
        json!({
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "ECG"},
            "device": {"identifier": {"value": "dev-1"}},
            "effectivePeriod": {"start": "2026-03-01T08:00:00Z"},
            "component": [
                {"code": {"text": "I"}, "valueSampledData": {
                    "origin": {"value": 0, "code": "mV"}, "period": period, "factor": 0.001,
                    "dimensions": 1, "data": data}},
                {"code": {"text": "II"}, "valueSampledData": {
                    "origin": {"value": 0, "code": "mV"}, "period": period, "factor": 0.001,
                    "dimensions": 1, "data": "1 2 3"}}
            ]
        })
    };
    let post = |body: Vec<u8>| {
        let (http, url, token) = (
            stack.http.clone(),
            format!("{}/v1/ecgs", stack.ingest),
            token.clone(),
        );
        async move {
            let r = http
                .post(url)
                .bearer_auth(token)
                .header("content-type", "application/fhir+json")
                .body(body)
                .send()
                .await?;
            let status = r.status().as_u16();
            anyhow::Ok((status, r.json::<Value>().await?))
        }
    };
    let produced_before = stack.messages_in_topic().await?;
    for (body, status, field) in [
        (b"{".to_vec(), 422, None),
        (b"".to_vec(), 422, None),
        (
            serde_json::to_vec(&json!({"resourceType": "Patient"}))?,
            422,
            Some("/resourceType"),
        ),
        (
            serde_json::to_vec(&observation("1 E 3", json!(4)))?,
            422,
            Some("/component/0/valueSampledData/data"),
        ),
        (
            serde_json::to_vec(&observation("1 2", json!(4)))?,
            422,
            Some("/component/1/valueSampledData/data"),
        ),
        // 1,000,000 Hz: over the gateway's rate limit, said of the period.
        (
            serde_json::to_vec(&observation("1 2 3", json!(0.001)))?,
            422,
            Some("/component/0/valueSampledData/period"),
        ),
    ] {
        let (got, answer) = post(body).await?;
        assert_eq!(got, status, "{answer}");
        if let Some(field) = field {
            assert!(
                answer["field"]
                    .as_str()
                    .is_some_and(|f| f.starts_with(field)),
                "want {field}: {answer}"
            );
        }
    }
    assert_eq!(
        stack.messages_in_topic().await?,
        produced_before,
        "nothing produced"
    );
    // The same document, well formed, is accepted.
    let (got, answer) = post(serde_json::to_vec(&observation("1 2 3", json!(4)))?).await?;
    assert_eq!(got, 202, "{answer}");
    stack.stop().await
}
