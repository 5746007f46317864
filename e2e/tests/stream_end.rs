//! Ending a stream, and what comes after the end, through the whole
//! pipeline: `POST /v1/ecgs/{id}/end`, a last chunk resent marked final, 409
//! for chunks after the final one and for a final seq below a chunk that
//! arrived, and the processor's side of each for messages that got past a
//! gateway (ignored, never turning an ECG `failed`, each listed once).

use std::time::Duration;

use ecg_e2e::Stack;
use ecg_schemas::{Chunk, EcgHeader, Signal, Units};
use serde_json::{Value, json};
use uuid::Uuid;

const STARTED: &str = "2026-03-01T08:00:00Z";

fn open() -> Value {
    json!({"device_id": "patch-9", "sample_rate_hz": 250, "leads": ["I"], "started_at": STARTED})
}

/// Chunk `seq` of ECG `id` (tenant demo), as the gateway would produce it.
fn chunk(id: Uuid, seq: u32, is_final: bool) -> Chunk {
    Chunk {
        header: EcgHeader {
            ecg_id: id,
            tenant: "demo".into(),
            device_id: "patch-9".into(),
            sample_rate_hz: 250.0,
            units: Units::Millivolts,
            started_at: time::macros::datetime!(2026-03-01 08:00 UTC),
            leads: vec!["I".into()],
        },
        seq,
        is_final,
        samples: Signal::from_vecs(vec![vec![1.0, -1.0, 0.5]]),
    }
}

async fn status(stack: &Stack, token: &str, id: Uuid) -> anyhow::Result<Value> {
    let (code, s) = stack
        .get_json(Some(token), &format!("/v1/ecgs/{id}"))
        .await?;
    anyhow::ensure!(code == 200, "status of {id}: {code} {s}");
    Ok(s)
}

/// Waits until the ECG's status satisfies `check`, and returns it.
async fn wait_status(
    stack: &Stack,
    token: &str,
    id: Uuid,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    ecg_e2e::wait_for(Duration::from_secs(30), what, || async {
        Ok(check(&status(stack, token, id).await?))
    })
    .await?;
    status(stack, token, id).await
}

fn samples() -> Value {
    json!({"I": [1.0, -1.0, 0.5]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_ends_after_its_last_chunk() -> anyhow::Result<()> {
    let stack = Stack::start("stream_end").await?;
    let demo = stack.token("demo", "demo-secret", None).await?;
    let id = stack.open_ecg(&demo, open()).await?;
    let end = format!("/v1/ecgs/{id}/end");
    for seq in 0..2 {
        stack.send_chunk(&demo, id, seq, samples(), false).await?;
    }
    let s = wait_status(&stack, &demo, id, "both chunks", |s| s["next_seq"] == 2).await?;
    assert_eq!(
        (&s["status"], &s["final_seq"]),
        (&json!("receiving"), &Value::Null)
    );

    // Bad ends change nothing, and say which field and which limit.
    for (body, code, field) in [
        (json!({}), 422, "/final_seq"),
        (json!({"final_seq": -1}), 422, "/final_seq"),
        (json!({"final_seq": u64::from(u32::MAX)}), 422, "/final_seq"),
        (json!({"final_seq": 1, "last": true}), 422, "/last"),
        (json!({"final_seq": "1"}), 422, "/final_seq"),
    ] {
        let (got, answer) = stack.post_ingest(&demo, &end, &body).await?;
        assert_eq!(
            (got, answer["field"].as_str()),
            (code, Some(field)),
            "{body}: {answer}"
        );
    }
    let (got, answer) = stack
        .post_ingest(&demo, &end, &json!({"final_seq": u64::from(u32::MAX) - 1}))
        .await?;
    assert_eq!(got, 422, "{answer}");
    assert!(answer["limit"].is_u64(), "the seq limit is named: {answer}");
    let (got, _) = stack
        .post_ingest(
            &demo,
            &format!("/v1/ecgs/{}/end", Uuid::from_u128(9)),
            &json!({"final_seq": 1}),
        )
        .await?;
    assert_eq!(got, 404);
    let r = stack
        .http
        .post(format!("{}{end}", stack.ingest))
        .json(&json!({"final_seq": 1}))
        .send()
        .await?;
    assert_eq!(r.status(), 401, "a token is needed");
    assert_eq!(status(&stack, &demo, id).await?["status"], "receiving");

    // The end: 202 at once, then complete.
    let (got, answer) = stack
        .post_ingest(&demo, &end, &json!({"final_seq": 1}))
        .await?;
    assert_eq!(got, 202, "{answer}");
    assert_eq!(answer["status_url"], format!("/v1/ecgs/{id}"));
    assert_eq!(answer["chunks"], 0);
    let s = wait_status(&stack, &demo, id, "the end", |s| s["status"] == "complete").await?;
    assert_eq!(
        (&s["final_seq"], &s["failed_chunks_count"]),
        (&json!(1), &json!(0))
    );
    let (_, insights) = stack
        .get_json(Some(&demo), &format!("/v1/ecgs/{id}/insights"))
        .await?;
    assert_eq!(insights["status"], "complete", "{insights}");
    assert_eq!(insights["leads"]["I"]["samples"], 6, "{insights}");

    // The same end again is answered as before; anything else after it is 409.
    let (got, _) = stack
        .post_ingest(&demo, &end, &json!({"final_seq": 1}))
        .await?;
    assert_eq!(got, 202);
    let (got, answer) = stack
        .post_ingest(&demo, &end, &json!({"final_seq": 2}))
        .await?;
    assert_eq!(
        (got, answer["error"].as_str()),
        (409, Some("conflict")),
        "{answer}"
    );
    let chunks = format!("/v1/ecgs/{id}/chunks");
    let (got, answer) = stack
        .post_ingest(&demo, &chunks, &json!({"seq": 2, "samples": samples()}))
        .await?;
    assert_eq!(got, 409, "a chunk after the final one: {answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap_or("")
            .contains("ended with chunk 1"),
        "{answer}"
    );
    let (got, answer) = stack
        .post_ingest(
            &demo,
            &chunks,
            &json!({"seq": 0, "samples": samples(), "final": true}),
        )
        .await?;
    assert_eq!(got, 409, "another final chunk: {answer}");
    // A resend of a stored chunk is still a harmless 202.
    stack.send_chunk(&demo, id, 1, samples(), true).await?;

    // A chunk after the final one that got past a gateway (one that did not
    // know the end yet), twice: ignored, listed once, the ECG stays complete.
    let stray = chunk(id, 2, false).encode()?;
    for _ in 0..2 {
        stack.produce_direct(&id.to_string(), &stray).await?;
    }
    let s = wait_status(&stack, &demo, id, "the stray chunk", |s| {
        s["failed_chunks_count"] == 1
    })
    .await?;
    assert_eq!(s["status"], "complete", "{s}");
    assert_eq!(s["failed_chunks"][0]["kind"], "ignored", "{s}");
    assert_eq!(s["failed_chunks"][0]["seq"], 2, "{s}");
    stack.assert_one_row_per_chunk(id).await?;
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_last_chunk_resent_marked_final_ends_the_stream() -> anyhow::Result<()> {
    let stack = Stack::start("stream_end_resend").await?;
    let demo = stack.token("demo", "demo-secret", None).await?;
    let id = stack.open_ecg(&demo, open()).await?;
    for seq in 0..2 {
        stack.send_chunk(&demo, id, seq, samples(), false).await?;
    }
    wait_status(&stack, &demo, id, "both chunks", |s| s["next_seq"] == 2).await?;
    stack.send_chunk(&demo, id, 1, samples(), true).await?;
    let s = wait_status(&stack, &demo, id, "the end", |s| s["status"] == "complete").await?;
    assert_eq!(
        (&s["final_seq"], &s["failed_chunks_count"]),
        (&json!(1), &json!(0))
    );
    stack.assert_one_row_per_chunk(id).await?;
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_final_seq_below_an_arrived_chunk_is_a_409_and_the_stream_recovers() -> anyhow::Result<()>
{
    let stack = Stack::start("stream_end_below").await?;
    let demo = stack.token("demo", "demo-secret", None).await?;
    let id = stack.open_ecg(&demo, open()).await?;
    let chunks = format!("/v1/ecgs/{id}/chunks");
    stack.send_chunk(&demo, id, 5, samples(), false).await?;
    stack.send_chunk(&demo, id, 0, samples(), false).await?;
    wait_status(&stack, &demo, id, "chunks 0 and 5", |s| {
        s["next_seq"] == 1 && s["waiting_seqs"] == json!([5])
    })
    .await?;
    // Chunk 1 marked final, or an end at 3: chunk 5 already arrived. 409 each
    // time, and nothing changes.
    for _ in 0..2 {
        let (got, answer) = stack
            .post_ingest(
                &demo,
                &chunks,
                &json!({"seq": 1, "samples": samples(), "final": true}),
            )
            .await?;
        assert_eq!(got, 409, "{answer}");
        assert!(
            answer["message"]
                .as_str()
                .unwrap_or("")
                .contains("chunk 5 already arrived"),
            "{answer}"
        );
    }
    let (got, answer) = stack
        .post_ingest(
            &demo,
            &format!("/v1/ecgs/{id}/end"),
            &json!({"final_seq": 3}),
        )
        .await?;
    assert_eq!(got, 409, "{answer}");
    let s = status(&stack, &demo, id).await?;
    assert_eq!(
        (&s["status"], &s["failed_chunks_count"]),
        (&json!("receiving"), &json!(0)),
        "{s}"
    );

    // Past a gateway (the race the gateway cannot see: chunk 5 still on its
    // way), twice: the processor refuses the final mark, and lists it once.
    let wrong = chunk(id, 1, true).encode()?;
    for _ in 0..2 {
        stack.produce_direct(&id.to_string(), &wrong).await?;
    }
    let s = wait_status(&stack, &demo, id, "the refusal", |s| {
        s["status"] == "failed"
    })
    .await?;
    assert_eq!(s["failed_chunks_count"], 1, "one refusal, listed once: {s}");
    assert_eq!(
        (
            &s["failed_chunks"][0]["seq"],
            &s["failed_chunks"][0]["kind"]
        ),
        (&json!(1), &json!("refused")),
        "{s}"
    );

    // Recoverable: chunks 1 to 4 unmarked, then the end at 5 (as the client
    // library sends it).
    for seq in 1..5 {
        stack.send_chunk(&demo, id, seq, samples(), false).await?;
    }
    let client = ecg_client::Api::new(stack.http.clone(), &stack.ingest, &stack.query, &demo);
    let accepted = client.end_stream(id, 5).await?;
    assert_eq!((accepted.id, accepted.chunks), (id, 0));
    let s = wait_status(&stack, &demo, id, "completion", |s| {
        s["status"] == "complete"
    })
    .await?;
    assert_eq!(
        (&s["next_seq"], &s["final_seq"]),
        (&json!(6), &json!(5)),
        "{s}"
    );
    stack.assert_one_row_per_chunk(id).await?;
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stray_chunk_never_turns_a_processing_ecg_failed() -> anyhow::Result<()> {
    let stack = Stack::start("stream_end_stray").await?;
    let demo = stack.token("demo", "demo-secret", None).await?;
    let id = stack.open_ecg(&demo, open()).await?;
    // Final chunk 1 waits for chunk 0.
    stack.send_chunk(&demo, id, 1, samples(), true).await?;
    wait_status(&stack, &demo, id, "chunk 1", |s| {
        s["waiting_seqs"] == json!([1])
    })
    .await?;
    stack
        .produce_direct(&id.to_string(), &chunk(id, 4, false).encode()?)
        .await?;
    let s = wait_status(&stack, &demo, id, "the stray chunk", |s| {
        s["failed_chunks_count"] == 1
    })
    .await?;
    assert_eq!(s["status"], "processing", "{s}");
    assert_eq!(s["failed_chunks"][0]["kind"], "ignored", "{s}");
    let (_, list) = stack
        .get_json(Some(&demo), "/v1/ecgs?status=failed")
        .await?;
    assert_eq!(list["items"], json!([]), "{list}");
    stack.send_chunk(&demo, id, 0, samples(), false).await?;
    wait_status(&stack, &demo, id, "completion", |s| {
        s["status"] == "complete"
    })
    .await?;
    stack.stop().await
}
