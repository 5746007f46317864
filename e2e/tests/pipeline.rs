//! The whole path: client -> ingest -> Kafka -> processor -> ClickHouse ->
//! query API, with a real 12-lead ECG whose exact zeros and -0.0 are traps.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use ecg_e2e::Stack;
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
    stack
        .insights_when_complete(token, id, Duration::from_secs(60))
        .await
}

/// A chunk body in one of the gateway's three formats.
struct Body {
    seq: usize,
    is_final: bool,
    content_type: &'static str,
    bytes: Vec<u8>,
}

fn encode(rec: &Recording, seq: usize, range: std::ops::Range<usize>, is_final: bool) -> Body {
    let (content_type, bytes) = match seq % 3 {
        0 => {
            let samples: BTreeMap<&String, &[f64]> = rec
                .leads
                .iter()
                .map(|l| (l, &rec.signals[l][range.clone()]))
                .collect();
            let body = json!({"seq": seq, "samples": samples, "final": is_final});
            ("application/json", body.to_string().into_bytes())
        }
        1 => {
            let mut csv = format!("time,{}\n", rec.leads.join(","));
            for i in range.clone() {
                csv.push_str(&format!("{:.3}", i as f64 / rec.fs));
                for l in &rec.leads {
                    // `{:?}` prints the shortest string that reads back exactly, -0.0 included.
                    csv.push_str(&format!(",{:?}", rec.signals[l][i]));
                }
                csv.push('\n');
            }
            ("text/csv", csv.into_bytes())
        }
        _ => {
            let columns: Vec<arrow_array::ArrayRef> = rec
                .leads
                .iter()
                .map(|l| {
                    std::sync::Arc::new(arrow_array::Float64Array::from(
                        rec.signals[l][range.clone()].to_vec(),
                    )) as arrow_array::ArrayRef
                })
                .collect();
            let bytes = arrow_stream(&rec.leads, columns);
            ("application/vnd.apache.arrow.stream", bytes)
        }
    };
    Body {
        seq,
        is_final,
        content_type,
        bytes,
    }
}

/// An Arrow IPC stream of one batch: one column per lead, of the columns'
/// own types.
fn arrow_stream(leads: &[String], columns: Vec<arrow_array::ArrayRef>) -> Vec<u8> {
    let fields: Vec<arrow_schema::Field> = leads
        .iter()
        .zip(&columns)
        .map(|(l, c)| arrow_schema::Field::new(l, c.data_type().clone(), false))
        .collect();
    let schema = std::sync::Arc::new(arrow_schema::Schema::new(fields));
    let batch = arrow_array::RecordBatch::try_new(schema.clone(), columns).unwrap();
    let mut bytes = Vec::new();
    let mut writer = arrow_ipc::writer::StreamWriter::try_new(&mut bytes, &schema).unwrap();
    writer.write(&batch).unwrap();
    writer.finish().unwrap();
    drop(writer);
    bytes
}

async fn post_body(
    stack: &Stack,
    token: &str,
    id: Uuid,
    body: &Body,
) -> anyhow::Result<(u16, Value)> {
    let mut url = format!("{}/v1/ecgs/{id}/chunks", stack.ingest);
    if body.content_type != "application/json" {
        url.push_str(&format!("?seq={}&final={}", body.seq, body.is_final));
    }
    let r = stack
        .http
        .post(url)
        .bearer_auth(token)
        .header("content-type", body.content_type)
        .body(body.bytes.clone())
        .send()
        .await?;
    let status = r.status().as_u16();
    Ok((status, r.json().await?))
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
async fn streamed_json_csv_and_arrow_chunks_of_random_sizes_give_exact_crossings_per_lead()
-> anyhow::Result<()> {
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
    // Every third chunk each as JSON, CSV (with a time column) and Arrow.
    let chunks: Vec<Body> = bounds
        .windows(2)
        .enumerate()
        .map(|(seq, w)| encode(&rec, seq, w[0]..w[1], w[1] == 5_000))
        .collect();
    assert!(chunks.len() > 40, "{} chunks", chunks.len());

    // Eight requests in flight at a time, so chunks reach Kafka out of
    // order; then a few sent again: duplicates must change nothing.
    let resend: Vec<&Body> = chunks.iter().step_by(7).collect();
    stream::iter(chunks.iter().chain(resend))
        .map(|c| post_body(&stack, &token, id, c))
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
            "SELECT toUInt64(toUnixTimestamp64Micro(assumeNotNull(max(ts)))) FROM samples WHERE ecg_id = ?",
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
    // Every value reads back as sent, the 37 negative zeros of aVR included.
    let columns: Vec<&[f64]> = rec.leads.iter().map(|l| &rec.signals[l][..]).collect();
    stack
        .assert_values_bit_identical(id, &rec.leads, &columns)
        .await?;
    let negative_zeros = stack
        .count(
            "SELECT countIf(reinterpretAsUInt64(value) = 0x8000000000000000) FROM samples WHERE ecg_id = ?",
            id,
        )
        .await?;
    assert_eq!(negative_zeros, 37);
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn values_that_are_not_short_decimals_read_back_bit_identical() -> anyhow::Result<()> {
    let rec = recording()?;
    let stack = Stack::start("not_decimal").await?;
    let token = stack.token("demo", "demo-secret", None).await?;
    // Lead A: real samples, then floats that no decimal of up to nine places
    // gives (0.1 + 0.2, -0.0, subnormals, extremes, 2^53), then decimals that
    // are. Lead B: computed floats only (k / 3): no decimal form at all.
    let not_decimal = [
        0.1 + 0.2,
        -0.0,
        5e-324,
        -2.2250738585072014e-308,
        f64::MAX,
        f64::MIN,
        9_007_199_254_740_992.0,
    ];
    let mut a = rec.signals["II"][..500].to_vec();
    a.extend(not_decimal);
    a.extend([0.0, 123_456_789.123, -1.5]);
    let b: Vec<f64> = (0..a.len()).map(|k| (k as f64 - 6.0) / 3.0).collect();
    let leads = vec!["A".to_string(), "B".to_string()];
    let (status, created) = post(
        &stack,
        &token,
        format!("{}/v1/ecgs", stack.ingest),
        &json!({
            "device_id": "e2e-device", "sample_rate_hz": 250.0, "leads": leads,
            "signal": {"A": a, "B": b},
        }),
    )
    .await?;
    assert_eq!(status, 202, "{created}");
    let id: Uuid = created["id"].as_str().context("id")?.parse()?;
    let insights = wait_complete(&stack, &token, id).await?;
    stack.assert_exact(&insights, id, &leads, &[&a, &b]).await?;
    stack
        .assert_values_bit_identical(id, &leads, &[&a, &b])
        .await?;
    // Stored compactly where that is exact: A's decimals as Int32 integers,
    // its other floats raw beside them (and 123456789.123, whose integer at
    // scale 5 is beyond Int32); all of B raw, as a whole block.
    let raw = stack
        .count(
            "SELECT countIf(value_codec = 'raw') FROM samples WHERE ecg_id = ? AND lead = 'A'",
            id,
        )
        .await?;
    assert_eq!(raw, not_decimal.len() as u64 + 1);
    let codecs = stack
        .count(
            "SELECT toUInt64(countIf(codec != 'raw') = 0 AND count() > 0) FROM blocks WHERE ecg_id = ? AND lead = 'B'",
            id,
        )
        .await?;
    assert_eq!(codecs, 1, "every block of B raw");
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn digital_adc_counts_give_exact_crossings_and_are_stored_losslessly() -> anyhow::Result<()> {
    let rec = recording()?;
    let stack = Stack::start("digital").await?;
    let token = stack.token("demo", "demo-secret", None).await?;
    // The recording's millivolts are exact multiples of 1e-5 mV, so these
    // counts carry exactly its signs and zeros.
    const GAIN: f64 = 1e5;
    const BASELINE: i64 = 1024;
    let adc: BTreeMap<&String, Vec<i64>> = rec
        .leads
        .iter()
        .map(|l| {
            (
                l,
                rec.signals[l]
                    .iter()
                    .map(|mv| (mv * GAIN).round() as i64 + BASELINE)
                    .collect(),
            )
        })
        .collect();
    let calibration: BTreeMap<&String, Value> = rec
        .leads
        .iter()
        .map(|l| (l, json!({"gain": GAIN, "baseline": BASELINE})))
        .collect();
    let (status, created) = post(
        &stack,
        &token,
        format!("{}/v1/ecgs", stack.ingest),
        &json!({"device_id": "adc-device", "sample_rate_hz": rec.fs, "leads": rec.leads, "adc": calibration}),
    )
    .await?;
    assert_eq!(status, 202, "{created}");
    let id: Uuid = created["id"].as_str().context("id")?.parse()?;
    let url = format!("{}/v1/ecgs/{id}/chunks", stack.ingest);

    // A count that is not an integer is refused with its position.
    let (status, refused) = post(
        &stack,
        &token,
        url.clone(),
        &json!({"seq": 0, "samples":
        rec.leads.iter().map(|l| (l, vec![1.5])).collect::<BTreeMap<_, _>>()}),
    )
    .await?;
    assert_eq!(
        (status, refused["field"].as_str()),
        (422, Some("/samples/I/0")),
        "{refused}"
    );

    // Even chunks as JSON numbers, odd ones as an Arrow body of Int32
    // counts, which the gateway passes on as counts without going through
    // f64: both must give the same stored counts and crossings.
    for (seq, start) in (0..5_000).step_by(700).enumerate() {
        let end = (start + 700).min(5_000);
        let (status, body) = if seq % 2 == 0 {
            let samples: BTreeMap<&&String, &[i64]> =
                adc.iter().map(|(l, v)| (l, &v[start..end])).collect();
            post(
                &stack,
                &token,
                url.clone(),
                &json!({"seq": seq, "samples": samples, "final": end == 5_000}),
            )
            .await?
        } else {
            let counts: Vec<arrow_array::ArrayRef> = rec
                .leads
                .iter()
                .map(|l| {
                    let c: Vec<i32> = adc[l][start..end].iter().map(|&c| c as i32).collect();
                    std::sync::Arc::new(arrow_array::Int32Array::from(c)) as arrow_array::ArrayRef
                })
                .collect();
            let body = Body {
                seq,
                is_final: end == 5_000,
                content_type: "application/vnd.apache.arrow.stream",
                bytes: arrow_stream(&rec.leads, counts),
            };
            post_body(&stack, &token, id, &body).await?
        };
        assert_eq!(status, 202, "{body}");
    }
    let insights = wait_complete(&stack, &token, id).await?;
    assert_exact(&rec, &insights);
    let (_, status) = get(&stack, &token, &format!("/v1/ecgs/{id}")).await?;
    assert_eq!(
        status["adc"]["V1"],
        json!({"gain": GAIN, "baseline": BASELINE})
    );

    // Counts stored exactly as sent, and the physical value derived from them.
    let sent: i64 = adc.values().flatten().sum();
    let stored = stack
        .count("SELECT toUInt64(assumeNotNull(sum(adc)) + 1000000000000) FROM samples WHERE ecg_id = ?", id)
        .await?;
    assert_eq!(stored as i64 - 1_000_000_000_000, sent);
    let off = stack
        .count(
            "SELECT countIf(value != (adc - 1024) / 1e5 OR adc IS NULL OR value_codec != 'adc') FROM samples WHERE ecg_id = ?",
            id,
        )
        .await?;
    assert_eq!(off, 0);
    // Bit for bit what the processor computed: (adc - baseline) / gain in f64.
    let physical: Vec<Vec<f64>> = rec
        .leads
        .iter()
        .map(|l| {
            adc[l]
                .iter()
                .map(|&c| (c - BASELINE) as f64 / GAIN)
                .collect()
        })
        .collect();
    let columns: Vec<&[f64]> = physical.iter().map(Vec::as_slice).collect();
    stack
        .assert_values_bit_identical(id, &rec.leads, &columns)
        .await?;
    stack.stop().await
}
