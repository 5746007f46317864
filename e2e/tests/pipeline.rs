//! The whole path: client -> ingest -> Kafka -> processor -> ClickHouse ->
//! query API, with a real 12-lead ECG whose exact zeros and -0.0 are traps.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use ecg_e2e::{Stack, wait_for};
use futures::stream::{self, StreamExt, TryStreamExt};
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use uuid::Uuid;

struct Recording {
    fs: f64,
    leads: Vec<String>,
    signals: BTreeMap<String, Vec<f64>>,
    expected: BTreeMap<String, u64>,
}

fn recording() -> anyhow::Result<Recording> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/ecg");
    let data: Value = serde_json::from_slice(&std::fs::read(dir.join("ecgplot_12lead.json"))?)?;
    let expected: Value =
        serde_json::from_slice(&std::fs::read(dir.join("ecgplot_12lead.expected.json"))?)?;
    let leads: Vec<String> = serde_json::from_value(data["meta"]["leads"].clone())?;
    Ok(Recording {
        fs: data["meta"]["fs_hz"].as_f64().context("fs_hz")?,
        signals: serde_json::from_value(data["signals"].clone())?,
        expected: serde_json::from_value(expected["zero_crossings_per_lead"].clone())?,
        leads,
    })
}

async fn post(
    stack: &Stack,
    token: &str,
    url: String,
    body: &Value,
) -> anyhow::Result<(u16, Value)> {
    let r = stack
        .http
        .post(url)
        .bearer_auth(token)
        .json(body)
        .send()
        .await?;
    let status = r.status().as_u16();
    Ok((status, r.json().await?))
}

async fn get(stack: &Stack, token: &str, path: &str) -> anyhow::Result<(u16, Value)> {
    let r = stack
        .http
        .get(format!("{}{path}", stack.query))
        .bearer_auth(token)
        .send()
        .await?;
    let status = r.status().as_u16();
    Ok((status, r.json().await?))
}

async fn wait_complete(stack: &Stack, token: &str, id: Uuid) -> anyhow::Result<Value> {
    let path = format!("/v1/ecgs/{id}");
    wait_for(Duration::from_secs(60), "the ECG to complete", || async {
        let (status, body) = get(stack, token, &path).await?;
        anyhow::ensure!(status == 200, "status endpoint answered {status}: {body}");
        anyhow::ensure!(body["status"] != "failed", "ECG failed: {body}");
        Ok(body["status"] == "complete")
    })
    .await?;
    let (_, insights) = get(stack, token, &format!("/v1/ecgs/{id}/insights")).await?;
    Ok(insights)
}

fn assert_exact(rec: &Recording, insights: &Value) {
    for lead in &rec.leads {
        assert_eq!(
            insights["leads"][lead]["zero_crossings"].as_u64(),
            Some(rec.expected[lead]),
            "lead {lead}: {}",
            insights["leads"][lead]
        );
        assert_eq!(
            insights["leads"][lead]["samples"].as_u64(),
            Some(5_000),
            "lead {lead}"
        );
    }
    assert_eq!(
        insights["total_zero_crossings"].as_u64(),
        Some(rec.expected.values().sum::<u64>())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streamed_chunks_of_random_sizes_give_exact_crossings_per_lead() -> anyhow::Result<()> {
    let rec = recording()?;
    let stack = Stack::start("streamed").await?;
    let token = stack.token("demo", "demo-secret", None).await?;
    let (status, created) = post(
        &stack,
        &token,
        format!("{}/v1/ecgs", stack.ingest),
        &json!({"device_id": "e2e-device", "sample_rate_hz": rec.fs, "leads": rec.leads, "units": "mV"}),
    )
    .await?;
    assert_eq!(status, 202, "{created}");
    let id: Uuid = created["id"].as_str().context("id")?.parse()?;
    assert_eq!(created["status_url"], format!("/v1/ecgs/{id}"));

    // Random cuts, many of one sample, so chunk boundaries fall everywhere:
    // between equal signs, on zeros, inside zero runs.
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xEC6);
    let mut bounds = vec![0usize];
    while *bounds.last().unwrap() < 5_000 {
        let size = match rng.random_range(0..10) {
            0..=3 => 1,
            4..=6 => rng.random_range(2..40),
            _ => rng.random_range(40..400),
        };
        bounds.push((bounds.last().unwrap() + size).min(5_000));
    }
    let chunks: Vec<Value> = bounds
        .windows(2)
        .enumerate()
        .map(|(seq, w)| {
            let samples: BTreeMap<&String, &[f64]> = rec
                .leads
                .iter()
                .map(|l| (l, &rec.signals[l][w[0]..w[1]]))
                .collect();
            json!({"seq": seq, "samples": samples, "final": w[1] == 5_000})
        })
        .collect();
    assert!(chunks.len() > 40, "{} chunks", chunks.len());

    // Eight requests in flight at a time, so chunks reach Kafka out of
    // order; then a few sent again: duplicates must change nothing.
    let url = format!("{}/v1/ecgs/{id}/chunks", stack.ingest);
    let resend: Vec<&Value> = chunks.iter().step_by(7).collect();
    stream::iter(chunks.iter().chain(resend))
        .map(|c| post(&stack, &token, url.clone(), c))
        .buffer_unordered(8)
        .try_for_each(|(status, body)| async move {
            anyhow::ensure!(status == 202, "chunk answered {status}: {body}");
            Ok(())
        })
        .await?;

    let insights = wait_complete(&stack, &token, id).await?;
    assert_exact(&rec, &insights);
    assert_eq!(insights["status"], "complete");
    let (_, status) = get(&stack, &token, &format!("/v1/ecgs/{id}")).await?;
    assert_eq!(
        status["chunks_processed"].as_u64(),
        Some(chunks.len() as u64)
    );
    assert_eq!(status["samples_processed"].as_u64(), Some(60_000));
    // The raw samples table holds each sample exactly once.
    let rows = stack
        .count("SELECT count() FROM samples WHERE ecg_id = ?", id)
        .await?;
    assert_eq!(rows, 60_000);
    let distinct = stack
        .count(
            "SELECT uniqExact(lead, sample_index) FROM samples WHERE ecg_id = ?",
            id,
        )
        .await?;
    assert_eq!(distinct, 60_000);
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn whole_signal_in_one_request_gives_exact_crossings_per_lead() -> anyhow::Result<()> {
    let rec = recording()?;
    let stack = Stack::start("whole").await?;
    let token = stack.token("demo", "demo-secret", None).await?;
    let (status, created) = post(
        &stack,
        &token,
        format!("{}/v1/ecgs", stack.ingest),
        &json!({
            "device_id": "e2e-device", "sample_rate_hz": rec.fs, "leads": rec.leads,
            "started_at": "2026-11-23T08:00:00Z", "signal": rec.signals,
        }),
    )
    .await?;
    assert_eq!(status, 202, "{created}");
    assert!(created["chunks"].as_u64().unwrap() > 1, "{created}");
    let id: Uuid = created["id"].as_str().context("id")?.parse()?;
    let insights = wait_complete(&stack, &token, id).await?;
    assert_exact(&rec, &insights);
    // Timestamps follow the sample index: sample 4999 is 9.998 s in.
    let last_ts = stack
        .count(
            "SELECT toUInt64(toUnixTimestamp64Micro(max(ts))) FROM samples WHERE ecg_id = ?",
            id,
        )
        .await?;
    assert_eq!(last_ts, 1_795_420_800_000_000 + 9_998_000);
    // Analysts' view agrees with the API.
    let from_view = stack
        .count(
            "SELECT toUInt64(sum(zero_crossings)) FROM lead_insights WHERE ecg_id = ?",
            id,
        )
        .await?;
    assert_eq!(from_view, rec.expected.values().sum::<u64>());
    stack.stop().await
}
