//! Whole recordings streamed with `PUT /v1/ecgs/{id}/signal`: cut into chunks
//! as they arrive, exact end to end, and refused without a trace when any
//! part of them is bad.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use arrow_array::{ArrayRef, Int32Array, RecordBatch};
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{DataType, Field, Schema};
use ecg_e2e::{Stack, wait_for};
use ecg_signal::LeadSummary;
use futures::StreamExt;
use serde_json::{Value, json};
use uuid::Uuid;

/// Samples per lead in each chunk the gateway cuts; deliberately not a
/// divisor of the recordings' lengths.
const CHUNK_SAMPLES: usize = 7_000;

/// The real 12-lead recording, repeated `times` over.
fn recording(times: usize) -> anyhow::Result<(Vec<String>, Vec<Vec<f64>>)> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/ecg/ecgplot_12lead.json");
    let data: Value = serde_json::from_slice(&std::fs::read(path)?)?;
    let leads: Vec<String> = serde_json::from_value(data["meta"]["leads"].clone())?;
    let signals: BTreeMap<String, Vec<f64>> = serde_json::from_value(data["signals"].clone())?;
    let columns = leads
        .iter()
        .map(|l| signals[l].repeat(times))
        .collect::<Vec<_>>();
    Ok((leads, columns))
}

fn csv(leads: &[String], columns: &[Vec<f64>]) -> Vec<u8> {
    let mut out = format!("time,{}\n", leads.join(",")).into_bytes();
    for i in 0..columns[0].len() {
        out.extend_from_slice(format!("{:.3}", i as f64 / 500.0).as_bytes());
        for c in columns {
            out.extend_from_slice(format!(",{:?}", c[i]).as_bytes());
        }
        out.push(b'\n');
    }
    out
}

fn small_csv(leads: &[String]) -> Vec<u8> {
    csv(leads, &vec![vec![0.5]; leads.len()])
}

/// A body sent in pieces of `piece` bytes, so lines and Arrow messages
/// straddle the frames the gateway reads.
fn pieces(body: Vec<u8>, piece: usize) -> reqwest::Body {
    let parts: Vec<Result<Vec<u8>, std::io::Error>> =
        body.chunks(piece).map(|c| Ok(c.to_vec())).collect();
    reqwest::Body::wrap_stream(futures::stream::iter(parts))
}

async fn open_ecg(
    stack: &Stack,
    token: &str,
    leads: &[String],
    adc: Option<Value>,
) -> anyhow::Result<Uuid> {
    let mut body = json!({"device_id": "holter-7", "sample_rate_hz": 500, "leads": leads});
    if let Some(adc) = adc {
        body["adc"] = adc;
    }
    let r = stack
        .http
        .post(format!("{}/v1/ecgs", stack.ingest))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?;
    anyhow::ensure!(r.status() == 202, "create answered {}", r.status());
    let created: Value = r.json().await?;
    Ok(created["id"].as_str().context("id")?.parse()?)
}

async fn put(
    stack: &Stack,
    token: &str,
    id: Uuid,
    content_type: &str,
    body: reqwest::Body,
) -> anyhow::Result<(u16, Value)> {
    let r = stack
        .http
        .put(format!("{}/v1/ecgs/{id}/signal", stack.ingest))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await?;
    let status = r.status().as_u16();
    Ok((status, r.json().await.unwrap_or(Value::Null)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streamed_csv_and_arrow_uploads_are_cut_into_chunks_and_exact() -> anyhow::Result<()> {
    let stack = Stack::start_with("upload", &ecg_e2e::kafka_brokers(), |c| {
        c.upload.chunk_samples = CHUNK_SAMPLES
    })
    .await?;
    let token = stack.token("demo", "demo-secret", None).await?;

    // Physical samples as CSV with a time column: 60,000 samples per lead.
    let (leads, columns) = recording(12)?;
    let n = columns[0].len();
    let id = open_ecg(&stack, &token, &leads, None).await?;
    let (status, answer) = put(
        &stack,
        &token,
        id,
        "text/csv",
        pieces(csv(&leads, &columns), 8_191),
    )
    .await?;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["chunks"], n.div_ceil(CHUNK_SAMPLES), "{answer}");
    let insights = stack
        .insights_when_complete(&token, id, Duration::from_secs(90))
        .await?;
    let columns_ref: Vec<&[f64]> = columns.iter().map(Vec::as_slice).collect();
    stack
        .assert_exact(&insights, id, &leads, &columns_ref)
        .await?;

    // Digital samples (ADC counts) as Arrow, in record batches of sizes
    // unrelated to the chunk size.
    let baseline = 1024;
    let counts: Vec<Vec<i32>> = columns
        .iter()
        .map(|c| {
            c.iter()
                .map(|v| (v * 200.0).round() as i32 + baseline)
                .collect()
        })
        .collect();
    let adc: serde_json::Map<String, Value> = leads
        .iter()
        .map(|l| (l.clone(), json!({"gain": 200.0, "baseline": baseline})))
        .collect();
    let id = open_ecg(&stack, &token, &leads, Some(Value::Object(adc))).await?;
    let (status, answer) = put(
        &stack,
        &token,
        id,
        "application/vnd.apache.arrow.stream",
        pieces(
            arrow(&leads, &counts, &[1, 4_999, 13_000, 20_000, 22_000])?,
            65_536,
        ),
    )
    .await?;
    assert_eq!(status, 202, "{answer}");
    let insights = stack
        .insights_when_complete(&token, id, Duration::from_secs(90))
        .await?;
    for (lead, values) in leads.iter().zip(&counts) {
        let expected = LeadSummary::of_digital_i32(values, i64::from(baseline));
        assert_eq!(
            insights["leads"][lead]["zero_crossings"], expected.crossings,
            "lead {lead}"
        );
    }

    // A retried PUT of a complete ECG is refused, not counted twice. (Bodies
    // refused before they are read are kept small: the gateway answers
    // without reading them, and a client may see the connection close
    // before it has sent a large one.)
    let (status, answer) = put(&stack, &token, id, "text/csv", small_csv(&leads).into()).await?;
    assert_eq!(status, 409, "{answer}");
    stack.stop().await
}

fn arrow(leads: &[String], counts: &[Vec<i32>], batch_ends: &[usize]) -> anyhow::Result<Vec<u8>> {
    let schema = Arc::new(Schema::new(
        leads
            .iter()
            .map(|l| Field::new(l, DataType::Int32, false))
            .collect::<Vec<_>>(),
    ));
    let mut out = Vec::new();
    let mut writer = StreamWriter::try_new(&mut out, &schema)?;
    let mut start = 0;
    for &end in batch_ends.iter().chain([&counts[0].len()]) {
        let columns: Vec<ArrayRef> = counts
            .iter()
            .map(|c| Arc::new(Int32Array::from(c[start..end].to_vec())) as ArrayRef)
            .collect();
        writer.write(&RecordBatch::try_new(schema.clone(), columns)?)?;
        start = end;
    }
    writer.finish()?;
    drop(writer);
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bad_upload_is_refused_precisely_and_produces_nothing() -> anyhow::Result<()> {
    let stack = Stack::start_with("upload_refusals", &ecg_e2e::kafka_brokers(), |c| {
        c.upload.chunk_samples = CHUNK_SAMPLES;
        c.upload.max_signal_samples = 500_000;
    })
    .await?;
    let token = stack.token("demo", "demo-secret", None).await?;
    let (leads, columns) = recording(4)?;
    let n = columns[0].len();
    let id = open_ecg(&stack, &token, &leads, None).await?;

    // The very last sample is bad: nothing of the body may reach Kafka.
    let mut bad = columns.clone();
    bad[11][n - 1] = f64::NAN;
    let (status, answer) = put(
        &stack,
        &token,
        id,
        "text/csv",
        pieces(csv(&leads, &bad), 10_000),
    )
    .await?;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(
        answer["field"],
        format!("/samples/{}/{}", leads[11], n - 1),
        "{answer}"
    );

    let mut bad = csv(&leads, &columns);
    bad.extend_from_slice(b"9.0,1,2\n");
    let (status, answer) = put(&stack, &token, id, "text/csv", bad.into()).await?;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains(&format!("line {}", n + 2)),
        "{answer}"
    );

    let (status, answer) = put(&stack, &token, id, "application/json", "{}".into()).await?;
    assert_eq!(status, 415, "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("text/csv"),
        "{answer}"
    );

    let (long_leads, long) = recording(10)?;
    let (status, answer) = put(
        &stack,
        &token,
        id,
        "text/csv",
        pieces(csv(&long_leads, &long), 65_536),
    )
    .await?;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["limit"], 500_000, "{answer}");

    let (status, _) = put(
        &stack,
        &token,
        Uuid::new_v4(),
        "text/csv",
        small_csv(&leads).into(),
    )
    .await?;
    assert_eq!(status, 404);
    let other = stack.token("other", "other-secret", None).await?;
    let (status, _) = put(&stack, &other, id, "text/csv", small_csv(&leads).into()).await?;
    assert_eq!(status, 404, "another tenant's ECG is not found");

    assert_eq!(
        stack.messages_in_topic().await?,
        0,
        "a refused upload produced chunks"
    );

    // The same ECG still takes a good upload afterwards.
    let (status, answer) = put(
        &stack,
        &token,
        id,
        "text/csv",
        pieces(csv(&leads, &columns), 4_096),
    )
    .await?;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        stack.messages_in_topic().await?,
        n.div_ceil(CHUNK_SAMPLES) as i64
    );
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_lets_an_upload_in_flight_finish_and_stops_accepting() -> anyhow::Result<()> {
    let stack = Stack::start_with("upload_shutdown", &ecg_e2e::kafka_brokers(), |c| {
        c.upload.chunk_samples = CHUNK_SAMPLES;
    })
    .await?;
    let token = stack.token("demo", "demo-secret", None).await?;
    let (leads, columns) = recording(2)?;
    let id = open_ecg(&stack, &token, &leads, None).await?;

    // A slow client: the body trickles in over about two seconds.
    let body = csv(&leads, &columns);
    let parts: Vec<Vec<u8>> = body
        .chunks(body.len() / 20 + 1)
        .map(<[u8]>::to_vec)
        .collect();
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let slow = futures::stream::iter(parts).then({
        let sent = sent.clone();
        move |part| {
            let sent = sent.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok::<_, std::io::Error>(part)
            }
        }
    });
    let upload = tokio::spawn({
        let (http, url, token) = (
            stack.http.clone(),
            format!("{}/v1/ecgs/{id}/signal", stack.ingest),
            token.clone(),
        );
        async move {
            let r = http
                .put(url)
                .bearer_auth(token)
                .header("content-type", "text/csv")
                .body(reqwest::Body::wrap_stream(slow))
                .send()
                .await?;
            anyhow::Ok(r.status().as_u16())
        }
    });
    // Shut down once the gateway is reading the body (reqwest pulls parts
    // only as the connection takes them).
    wait_for(
        Duration::from_secs(30),
        "the upload to be under way",
        || async { Ok(sent.load(std::sync::atomic::Ordering::SeqCst) >= 4) },
    )
    .await?;
    let ingest = stack.ingest.clone();
    let http = stack.http.clone();
    // Shuts every service down: the gateway stops accepting at once and
    // waits for the upload.
    let stopping = tokio::spawn(stack.stop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        http.get(format!("{ingest}/healthz")).send().await.is_err(),
        "a new connection was accepted during shutdown"
    );
    assert_eq!(upload.await??, 202, "the upload in flight was cut off");
    stopping.await??;
    Ok(())
}
