//! `GET /v1/ecgs/{id}` says which chunks are missing, which wait for a gap and
//! which were refused and why, from the processor's `ecg_progress` rows and
//! `failed_chunks`, for the ECG's own tenant only.
//!
//! The rows are written here directly, as the processor would: the ECG gets
//! no chunks through the pipeline, so nothing else writes rows for it.

use ecg_e2e::Stack;
use serde_json::{Value, json};
use uuid::Uuid;

async fn get(stack: &Stack, token: &str, id: Uuid) -> anyhow::Result<(u16, Value)> {
    let r = stack
        .http
        .get(format!("{}/v1/ecgs/{id}", stack.query))
        .bearer_auth(token)
        .send()
        .await?;
    let status = r.status().as_u16();
    Ok((status, r.json().await?))
}

/// The fields this test is about, so one assertion shows all of them.
fn standing(body: &Value) -> Value {
    let keys = [
        "status",
        "final_seq",
        "next_seq",
        "missing_seqs",
        "missing_count",
        "waiting_seqs",
        "waiting_count",
        "failed_chunks_count",
    ];
    keys.iter()
        .map(|&k| (k.to_string(), body[k].clone()))
        .collect()
}

async fn progress(
    stack: &Stack,
    id: Uuid,
    next_seq: u32,
    waiting: &[u32],
    final_seq: Option<u32>,
    updated_at: &str,
) -> anyhow::Result<()> {
    stack
        .clickhouse
        .client()
        .query(
            "INSERT INTO ecg_progress (tenant, ecg_id, next_seq, waiting, final_seq, updated_at)
             VALUES ('demo', ?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(next_seq)
        .bind(waiting)
        .bind(final_seq)
        .bind(updated_at)
        .execute()
        .await?;
    Ok(())
}

async fn failed(
    stack: &Stack,
    tenant: &str,
    id: Uuid,
    seq: Option<u32>,
    reason: &str,
    offset: i64,
    failed_at: &str,
) -> anyhow::Result<()> {
    stack
        .clickhouse
        .client()
        .query(
            "INSERT INTO failed_chunks
                 (tenant, ecg_id, seq, reason, kafka_topic, kafka_partition, kafka_offset, failed_at)
             VALUES (?, ?, ?, ?, ?, 2, ?, ?)",
        )
        .bind(tenant)
        .bind(id.to_string())
        .bind(seq)
        .bind(reason)
        .bind(&stack.topic)
        .bind(offset)
        .bind(failed_at)
        .execute()
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_lists_missing_waiting_and_refused_chunks_to_the_owner_only() -> anyhow::Result<()> {
    let stack = Stack::start("status").await?;
    let demo = stack.token("demo", "demo-secret", None).await?;
    let other = stack.token("other", "other-secret", None).await?;
    let created: Value = stack
        .http
        .post(format!("{}/v1/ecgs", stack.ingest))
        .bearer_auth(&demo)
        .json(&json!({"device_id": "status-1", "sample_rate_hz": 500, "leads": ["I"]}))
        .send()
        .await?
        .json()
        .await?;
    let id: Uuid = created["id"].as_str().unwrap_or_default().parse()?;

    // No progress row yet: lead_chunks says nothing is written, nothing is known missing.
    let (code, body) = get(&stack, &demo, id).await?;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        standing(&body),
        json!({"status": "receiving", "final_seq": null, "next_seq": 0,
               "missing_seqs": [], "missing_count": 0, "waiting_seqs": [], "waiting_count": 0,
               "failed_chunks_count": 0})
    );
    assert_eq!(body["failed_chunks"], json!([]));

    // Chunks 0 and 1 written, 4, 5 and 7 waiting: 2, 3 and 6 are missing.
    progress(&stack, id, 2, &[4, 5, 7], None, "2026-01-01 00:00:01.000").await?;
    let (_, body) = get(&stack, &demo, id).await?;
    assert_eq!(
        standing(&body),
        json!({"status": "receiving", "final_seq": null, "next_seq": 2,
               "missing_seqs": [2, 3, 6], "missing_count": 3,
               "waiting_seqs": [4, 5, 7], "waiting_count": 3, "failed_chunks_count": 0})
    );

    // The newest row wins, whatever the insertion order; the final seq is
    // now known, so the seqs after the last waiting one are missing too.
    progress(
        &stack,
        id,
        3,
        &[5, 7, 9],
        Some(10),
        "2026-01-01 00:00:03.000",
    )
    .await?;
    progress(&stack, id, 9, &[], Some(10), "2026-01-01 00:00:02.000").await?;
    let (_, body) = get(&stack, &demo, id).await?;
    assert_eq!(
        standing(&body),
        json!({"status": "processing", "final_seq": 10, "next_seq": 3,
               "missing_seqs": [3, 4, 6, 8, 10], "missing_count": 5,
               "waiting_seqs": [5, 7, 9], "waiting_count": 3, "failed_chunks_count": 0})
    );

    // Refused chunks: a replayed message counts once; another tenant's row
    // for the same id and this tenant's row for another ECG do not show.
    let nan = "invalid chunk: /samples/I/1: sample 1 is NaN; samples must be finite numbers";
    failed(
        &stack,
        "demo",
        id,
        Some(4),
        nan,
        11,
        "2026-01-01 00:00:04.250",
    )
    .await?;
    failed(
        &stack,
        "demo",
        id,
        Some(4),
        nan,
        11,
        "2026-01-01 00:00:06.500",
    )
    .await?;
    failed(
        &stack,
        "demo",
        id,
        None,
        "malformed Arrow IPC stream",
        12,
        "2026-01-01 00:00:04.000",
    )
    .await?;
    failed(
        &stack,
        "other",
        id,
        Some(0),
        "not theirs",
        13,
        "2026-01-01 00:00:04.000",
    )
    .await?;
    failed(
        &stack,
        "demo",
        Uuid::new_v4(),
        Some(1),
        "another ECG",
        14,
        "2026-01-01 00:00:04.000",
    )
    .await?;
    let (_, body) = get(&stack, &demo, id).await?;
    assert_eq!(body["status"], "failed", "{body}");
    assert_eq!(body["failed_chunks_count"], 2, "{body}");
    assert_eq!(
        body["failed_chunks"],
        json!([
            {"seq": 4, "kind": "refused", "reason": nan, "failed_at": "2026-01-01T00:00:06.5Z"},
            {"seq": null, "kind": "refused", "reason": "malformed Arrow IPC stream", "failed_at": "2026-01-01T00:00:04Z"},
        ])
    );

    // More than a hundred: the first hundred by seq are listed, all counted.
    stack
        .clickhouse
        .client()
        .query(
            "INSERT INTO failed_chunks
                 (tenant, ecg_id, seq, reason, kafka_topic, kafka_partition, kafka_offset, failed_at)
             SELECT 'demo', toUUID(?), toUInt32(200 - number), concat('bad ', toString(200 - number)),
                    ?, 3, toInt64(number), toDateTime64('2026-01-01 00:00:05', 3, 'UTC')
             FROM numbers(101)",
        )
        .bind(id.to_string())
        .bind(&stack.topic)
        .execute()
        .await?;
    let (_, body) = get(&stack, &demo, id).await?;
    assert_eq!(body["failed_chunks_count"], 103, "{body}");
    let listed = body["failed_chunks"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let seqs: Vec<Value> = listed.iter().map(|f| f["seq"].clone()).collect();
    let expected: Vec<Value> = [4].into_iter().chain(100..199).map(Value::from).collect();
    assert_eq!(seqs, expected);
    assert_eq!(listed[1]["reason"], "bad 100");

    // The client resent what was refused and missing: every seq is written,
    // so the ECG is complete and the old refusals stay listed.
    progress(&stack, id, 11, &[], Some(10), "2026-01-01 00:00:07.000").await?;
    let (_, body) = get(&stack, &demo, id).await?;
    assert_eq!(
        standing(&body),
        json!({"status": "complete", "final_seq": 10, "next_seq": 11,
               "missing_seqs": [], "missing_count": 0, "waiting_seqs": [], "waiting_count": 0,
               "failed_chunks_count": 103})
    );

    // Another tenant gets the 404 of an unknown ECG.
    let (code, theirs) = get(&stack, &other, id).await?;
    let (missing_code, unknown) = get(&stack, &other, Uuid::new_v4()).await?;
    assert_eq!((code, missing_code), (404, 404), "{theirs}");
    assert_eq!(theirs["error"], unknown["error"]);
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_huge_final_seq_is_counted_not_listed() -> anyhow::Result<()> {
    let stack = Stack::start("status_huge").await?;
    let demo = stack.token("demo", "demo-secret", None).await?;
    let created: Value = stack
        .http
        .post(format!("{}/v1/ecgs", stack.ingest))
        .bearer_auth(&demo)
        .json(&json!({"device_id": "status-2", "sample_rate_hz": 500, "leads": ["I"]}))
        .send()
        .await?
        .json()
        .await?;
    let id: Uuid = created["id"].as_str().unwrap_or_default().parse()?;
    let waiting: Vec<u32> = (2..1_000).step_by(2).collect();
    progress(
        &stack,
        id,
        1,
        &waiting,
        Some(10_000_000),
        "2026-01-01 00:00:01.000",
    )
    .await?;

    let (_, body) = get(&stack, &demo, id).await?;
    // 1..=10,000,000 less the 499 waiting seqs 2, 4, ..., 998.
    assert_eq!(
        body["missing_count"],
        10_000_000 - 499,
        "{}",
        standing(&body)
    );
    assert_eq!(body["waiting_count"], 499);
    let missing: Vec<u32> = serde_json::from_value(body["missing_seqs"].clone())?;
    let expected: Vec<u32> = (1..1_000).step_by(2).chain(1_000..1_500).collect();
    assert_eq!(missing, expected);
    assert_eq!(body["status"], "processing");
    stack.stop().await
}
