//! No single message stops the processor: extreme seqs and start times,
//! chunks ClickHouse refuses, inserts over too many partitions, decoder
//! panics and conflicting resends each refuse (or record) that one message,
//! and everything else is written exactly once, without a restart.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use ecg_e2e::{Stack, wait_for};
use ecg_schemas::{Chunk, EcgHeader, Signal, Units};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;
use uuid::Uuid;

async fn create(stack: &Stack, token: &str, body: Value) -> anyhow::Result<Uuid> {
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

async fn post_chunk(
    stack: &Stack,
    token: &str,
    id: Uuid,
    chunk: &Value,
) -> anyhow::Result<(u16, Value)> {
    let r = stack
        .http
        .post(format!("{}/v1/ecgs/{id}/chunks", stack.ingest))
        .bearer_auth(token)
        .json(chunk)
        .send()
        .await?;
    let status = r.status().as_u16();
    let body = if status == 202 {
        Value::Null
    } else {
        r.json().await?
    };
    Ok((status, body))
}

async fn send(stack: &Stack, token: &str, id: Uuid, chunk: Value) -> anyhow::Result<()> {
    let (status, body) = post_chunk(stack, token, id, &chunk).await?;
    anyhow::ensure!(status == 202, "chunk answered {status}: {body}");
    Ok(())
}

async fn status(stack: &Stack, token: &str, id: Uuid) -> anyhow::Result<Value> {
    let r = stack
        .http
        .get(format!("{}/v1/ecgs/{id}", stack.query))
        .bearer_auth(token)
        .send()
        .await?;
    anyhow::ensure!(r.status() == 200, "status answered {}", r.status());
    Ok(r.json().await?)
}

async fn wait_status(stack: &Stack, token: &str, id: Uuid, want: &str) -> anyhow::Result<Value> {
    let last = std::sync::Mutex::new(Value::Null);
    let waited = wait_for(
        Duration::from_secs(60),
        &format!("ECG {id} {want}"),
        || async {
            let s = status(stack, token, id).await?;
            let done = s["status"] == want;
            *last.lock().unwrap() = s;
            Ok(done)
        },
    )
    .await;
    let last = last.into_inner().unwrap();
    waited.with_context(|| format!("last status: {last}"))?;
    Ok(last)
}

/// One lead "I" of `n` samples starting at `from`, alternating in sign.
fn samples(from: usize, n: usize) -> Value {
    let v: Vec<f64> = (from..from + n)
        .map(|i| if i % 3 == 0 { -1.5 } else { 0.25 * i as f64 })
        .collect();
    json!({ "I": v })
}

/// Produces a chunk straight to the topic, past the gateway's checks.
async fn produce(stack: &Stack, chunk: &Chunk) -> anyhow::Result<()> {
    stack
        .produce_direct(&chunk.header.ecg_id.to_string(), &chunk.encode()?)
        .await
}

fn header(id: Uuid, started_at: OffsetDateTime) -> EcgHeader {
    EcgHeader {
        ecg_id: id,
        tenant: "demo".into(),
        device_id: "direct".into(),
        sample_rate_hz: 500.0,
        units: Units::Millivolts,
        started_at,
        leads: vec!["I".into()],
    }
}

/// Rows of `failed_chunks` for the ECG: (seq, kind, reason), by seq.
async fn failed_rows(
    stack: &Stack,
    id: Uuid,
) -> anyhow::Result<Vec<(Option<u32>, String, String)>> {
    Ok(stack
        .clickhouse
        .client()
        .query(
            "SELECT seq, kind, reason FROM failed_chunks FINAL WHERE ecg_id = ? ORDER BY seq, reason",
        )
        .bind(id.to_string())
        .fetch_all()
        .await?)
}

/// For every (seq, lead) of the ECG, how many `lead_chunks` rows: plain SQL,
/// no FINAL. Exactly once means every value is 1.
async fn rows_per_chunk(stack: &Stack, id: Uuid) -> anyhow::Result<BTreeMap<(u32, String), u64>> {
    let rows: Vec<(u32, String, u64)> = stack
        .clickhouse
        .client()
        .query("SELECT seq, lead, count() FROM lead_chunks WHERE ecg_id = ? GROUP BY seq, lead")
        .bind(id.to_string())
        .fetch_all()
        .await?;
    Ok(rows.into_iter().map(|(s, l, n)| ((s, l), n)).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn extreme_seqs_and_start_times_are_refused_by_the_gateway_and_the_processor()
-> anyhow::Result<()> {
    let stack = Stack::start("poison_seq").await?;
    let token = stack.token("demo", "demo-secret", None).await?;
    let id = create(
        &stack,
        &token,
        json!({"device_id": "seq-test", "sample_rate_hz": 500, "leads": ["I"]}),
    )
    .await?;

    // The gateway: a precise 422 naming the field and the limit.
    for seq in [u64::from(u32::MAX), 2_147_483_648] {
        let (code, body) = post_chunk(
            &stack,
            &token,
            id,
            &json!({"seq": seq, "final": true, "samples": samples(0, 4)}),
        )
        .await?;
        assert_eq!(code, 422, "{body}");
        assert_eq!(body["field"], "/seq", "{body}");
        assert_eq!(body["limit"], 2_147_483_647u64, "{body}");
    }
    let csv = stack
        .http
        .post(format!(
            "{}/v1/ecgs/{id}/chunks?seq=4294967295&final=true",
            stack.ingest
        ))
        .bearer_auth(&token)
        .header("content-type", "text/csv")
        .body("I\n1.0\n")
        .send()
        .await?;
    assert_eq!(csv.status(), 422);
    let body: Value = csv.json().await?;
    assert_eq!(body["field"], "?seq", "{body}");
    for started_at in [
        "2200-01-01T00:00:00Z",
        "1899-12-31T23:59:59Z",
        "9999-12-31T23:59:59Z",
    ] {
        let r = stack
            .http
            .post(format!("{}/v1/ecgs", stack.ingest))
            .bearer_auth(&token)
            .json(&json!({"device_id": "t", "sample_rate_hz": 500, "leads": ["I"], "started_at": started_at}))
            .send()
            .await?;
        assert_eq!(r.status(), 422, "started_at {started_at}");
        let body: Value = r.json().await?;
        assert_eq!(body["field"], "/started_at", "{body}");
    }
    // The highest seq is accepted.
    send(
        &stack,
        &token,
        id,
        json!({"seq": 2_147_483_647u32, "samples": samples(0, 4)}),
    )
    .await?;

    // The processor, for messages that never went through the gateway: the
    // seq that once panicked it (u32::MAX, final), the first seq past the
    // limit, a start time past the range. Then the ECG's real chunk 0,
    // which must be processed: the partition keeps flowing.
    let started = datetime!(2026-01-01 00:00 UTC);
    let direct = |seq: u32, is_final: bool, started_at: OffsetDateTime| Chunk {
        header: header(id, started_at),
        seq,
        is_final,
        samples: Signal::from_vecs(vec![vec![1.0, -1.0, 2.0]]),
    };
    for chunk in [
        direct(u32::MAX, true, started),
        direct(u32::MAX - 1, false, started),
        direct(2_147_483_648, false, started),
        direct(1, false, datetime!(2250-06-01 00:00 UTC)),
    ] {
        produce(&stack, &chunk).await?;
    }
    send(
        &stack,
        &token,
        id,
        json!({"seq": 0, "samples": samples(0, 10)}),
    )
    .await?;
    wait_for(
        Duration::from_secs(60),
        "chunk 0 and 4 failures",
        || async {
            let s = status(&stack, &token, id).await?;
            Ok(s["chunks_processed"] == 1 && s["failed_chunks_count"] == 4)
        },
    )
    .await?;
    let failed = failed_rows(&stack, id).await?;
    let reasons: Vec<&str> = failed.iter().map(|(_, _, r)| r.as_str()).collect();
    assert_eq!(
        reasons
            .iter()
            .filter(|r| r.contains("/seq: seq must be between 0 and 2147483647"))
            .count(),
        3,
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("/started_at")),
        "{reasons:?}"
    );
    assert!(stack.processor_running(), "the processor stopped");
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_chunk_clickhouse_refuses_is_dead_lettered_and_the_rest_is_written_once()
-> anyhow::Result<()> {
    // Everything is produced before the processor starts, so that it reads
    // the refused chunk in one batch with the others.
    let mut stack =
        Stack::start_without_processor("poison_refused", &ecg_e2e::kafka_brokers()).await?;
    let token = stack.token("demo", "demo-secret", None).await?;
    let spec = |device: &str| json!({"device_id": device, "sample_rate_hz": 250, "leads": ["I"]});
    let poisoned = create(&stack, &token, spec("poison")).await?;
    let healthy = create(&stack, &token, spec("healthy")).await?;
    // A real refusal by ClickHouse for one chunk's content: a constraint.
    let ch = stack.clickhouse.client();
    ch.query(&format!(
        "ALTER TABLE blocks ADD CONSTRAINT no_poison CHECK NOT (ecg_id = '{poisoned}' AND seq = 1)"
    ))
    .execute()
    .await?;
    for seq in 0..4usize {
        for id in [poisoned, healthy] {
            send(
                &stack,
                &token,
                id,
                json!({"seq": seq, "final": seq == 3, "samples": samples(seq * 20, 20)}),
            )
            .await?;
        }
    }
    stack.start_processor().await?;

    wait_status(&stack, &token, healthy, "complete").await?;
    let s = wait_status(&stack, &token, poisoned, "failed").await?;
    assert_eq!(s["chunks_processed"], 1, "{s}");
    assert_eq!(s["missing_seqs"], json!([1]), "{s}");
    // The chunks after it are stored, waiting for it (parked), not lost.
    wait_for(Duration::from_secs(60), "chunks 2 and 3 parked", || async {
        Ok(status(&stack, &token, poisoned).await?["waiting_seqs"] == json!([2, 3]))
    })
    .await?;
    assert_eq!(s["failed_chunks"][0]["seq"], 1, "{s}");
    assert_eq!(s["failed_chunks"][0]["kind"], "refused", "{s}");
    let reason = s["failed_chunks"][0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("ClickHouse refused the chunk") && reason.contains("VIOLATED_CONSTRAINT"),
        "{reason}"
    );
    assert!(stack.processor_running(), "the processor stopped");

    // Once ClickHouse takes it, the resent chunk completes the ECG, and
    // every chunk of both ECGs is stored exactly once.
    ch.query("ALTER TABLE blocks DROP CONSTRAINT no_poison")
        .execute()
        .await?;
    send(
        &stack,
        &token,
        poisoned,
        json!({"seq": 1, "samples": samples(20, 20)}),
    )
    .await?;
    wait_status(&stack, &token, poisoned, "complete").await?;
    for id in [poisoned, healthy] {
        let rows = rows_per_chunk(&stack, id).await?;
        let want: BTreeMap<(u32, String), u64> =
            (0..4).map(|seq| ((seq, "I".to_string()), 1)).collect();
        assert_eq!(rows, want, "ECG {id}");
        let n = stack
            .count("SELECT count() FROM samples WHERE ecg_id = ?", id)
            .await?;
        assert_eq!(n, 80, "ECG {id}: every sample once");
    }
    // Same signal, same crossings: the refusal changed nothing else.
    let insights = |id: Uuid| {
        let (stack, token) = (&stack, &token);
        async move {
            let r = stack
                .http
                .get(format!("{}/v1/ecgs/{id}/insights", stack.query))
                .bearer_auth(token)
                .send()
                .await?;
            anyhow::Ok(r.json::<Value>().await?["leads"]["I"].clone())
        }
    };
    assert_eq!(insights(poisoned).await?, insights(healthy).await?);
    assert!(stack.processor_running(), "the processor stopped");
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_insert_over_too_many_partitions_is_written_in_parts_exactly_once() -> anyhow::Result<()>
{
    let mut stack =
        Stack::start_without_processor("poison_partitions", &ecg_e2e::kafka_brokers()).await?;
    let token = stack.token("demo", "demo-secret", None).await?;
    // `samples` is partitioned by month: 120 ECGs, each in its own month,
    // read in one batch, are more partitions than ClickHouse takes in one
    // insert (100 by default).
    let mut ids = Vec::new();
    for month in 0..120 {
        let started_at = format!(
            "{:04}-{:02}-01T00:00:00Z",
            2000 + month / 12,
            month % 12 + 1
        );
        let id = create(
            &stack,
            &token,
            json!({"device_id": "months", "sample_rate_hz": 250, "leads": ["I"], "started_at": started_at}),
        )
        .await?;
        send(
            &stack,
            &token,
            id,
            json!({"seq": 0, "final": true, "samples": samples(month, 5)}),
        )
        .await?;
        ids.push(id);
    }
    stack.start_processor().await?;
    for &id in &ids {
        wait_status(&stack, &token, id, "complete").await?;
        assert_eq!(
            rows_per_chunk(&stack, id).await?,
            BTreeMap::from([((0, "I".to_string()), 1)]),
            "ECG {id}"
        );
        assert_eq!(
            stack
                .count("SELECT count() FROM samples WHERE ecg_id = ?", id)
                .await?,
            5
        );
        assert!(failed_rows(&stack, id).await?.is_empty(), "ECG {id}");
    }
    // One batch (one `processed_at`) held more months than one insert may:
    // ClickHouse refused it whole, and it was written in parts.
    let months: u64 = stack
        .clickhouse
        .client()
        .query(
            "SELECT max(months) FROM (
                 SELECT uniqExact(toYYYYMM(started_at)) AS months FROM lead_chunks GROUP BY processed_at)",
        )
        .fetch_one()
        .await?;
    assert!(months > 100, "the largest batch held only {months} months");
    assert!(stack.processor_running(), "the processor stopped");
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resent_seq_with_other_samples_is_a_conflict_and_an_identical_one_a_duplicate()
-> anyhow::Result<()> {
    let stack = Stack::start("poison_conflict").await?;
    let token = stack.token("demo", "demo-secret", None).await?;
    let id = create(
        &stack,
        &token,
        json!({"device_id": "resend", "sample_rate_hz": 500, "leads": ["I"]}),
    )
    .await?;
    send(
        &stack,
        &token,
        id,
        json!({"seq": 0, "samples": samples(0, 10)}),
    )
    .await?;
    // Chunk 2 waits for chunk 1; its conflicting resend is caught in memory.
    send(
        &stack,
        &token,
        id,
        json!({"seq": 2, "samples": samples(20, 10)}),
    )
    .await?;
    send(
        &stack,
        &token,
        id,
        json!({"seq": 2, "samples": samples(20, 10)}),
    )
    .await?;
    send(
        &stack,
        &token,
        id,
        json!({"seq": 2, "samples": samples(21, 10)}),
    )
    .await?;
    wait_for(Duration::from_secs(60), "chunk 0 written", || async {
        Ok(status(&stack, &token, id).await?["chunks_processed"] == 1)
    })
    .await?;
    // Chunk 0 is stored: its resends are checked against its fingerprint.
    send(
        &stack,
        &token,
        id,
        json!({"seq": 0, "samples": samples(0, 10)}),
    )
    .await?;
    let mut other = samples(0, 10);
    other["I"][9] = json!(-0.0);
    send(&stack, &token, id, json!({"seq": 0, "samples": other})).await?;
    send(
        &stack,
        &token,
        id,
        json!({"seq": 1, "final": false, "samples": samples(10, 10)}),
    )
    .await?;
    send(
        &stack,
        &token,
        id,
        json!({"seq": 3, "final": true, "samples": samples(30, 10)}),
    )
    .await?;

    let s = wait_status(&stack, &token, id, "complete").await?;
    assert_eq!(s["failed_chunks_count"], 2, "{s}");
    let failed = s["failed_chunks"].as_array().context("failed_chunks")?;
    for (f, seq) in failed.iter().zip([0, 2]) {
        assert_eq!(f["seq"], seq, "{s}");
        assert_eq!(f["kind"], "conflict", "{s}");
        assert!(
            f["reason"]
                .as_str()
                .unwrap_or_default()
                .contains("resent with other samples"),
            "{s}"
        );
    }
    // The first-received samples are the ones kept.
    let rows = rows_per_chunk(&stack, id).await?;
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(rows.values().all(|&n| n == 1), "{rows:?}");
    let sum: f64 = stack
        .clickhouse
        .client()
        .query("SELECT sum(value) FROM samples WHERE ecg_id = ?")
        .bind(id.to_string())
        .fetch_one()
        .await?;
    let want: f64 = (0..40)
        .map(|i| if i % 3 == 0 { -1.5 } else { 0.25 * i as f64 })
        .sum();
    assert_eq!(sum, want);

    // A conflict does not make a streaming ECG `failed`.
    let streaming = create(
        &stack,
        &token,
        json!({"device_id": "resend", "sample_rate_hz": 500, "leads": ["I"]}),
    )
    .await?;
    send(
        &stack,
        &token,
        streaming,
        json!({"seq": 0, "samples": samples(0, 5)}),
    )
    .await?;
    send(
        &stack,
        &token,
        streaming,
        json!({"seq": 0, "samples": samples(1, 5)}),
    )
    .await?;
    wait_for(Duration::from_secs(60), "the conflict recorded", || async {
        Ok(status(&stack, &token, streaming).await?["failed_chunks_count"] == 1)
    })
    .await?;
    assert_eq!(
        status(&stack, &token, streaming).await?["status"],
        "receiving"
    );
    // Insights apply the same rule as the status.
    let (code, insights) = stack
        .get_json(Some(&token), &format!("/v1/ecgs/{streaming}/insights"))
        .await?;
    assert_eq!(code, 200, "{insights}");
    assert_eq!(insights["status"], "receiving", "{insights}");
    assert!(stack.processor_running(), "the processor stopped");
    stack.stop().await
}
