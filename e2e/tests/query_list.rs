//! `GET /v1/ecgs` (newest first, cursor pages, filters) and
//! `GET /v1/ecgs/{id}/samples` (min/max buckets, JSON and Arrow IPC) on ECGs
//! streamed through the whole pipeline.

use std::io::Cursor;

use arrow_array::{Float64Array, StringArray};
use ecg_e2e::Stack;
use serde_json::{Value, json};
use uuid::Uuid;

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| i["id"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_list_pages_newest_first_filters_and_matches_each_status() -> anyhow::Result<()> {
    let stack = Stack::start("query_list").await?;
    let demo = stack.token("demo", "demo-secret", None).await?;
    let other = stack.token("other", "other-secret", None).await?;
    let open = |device: &str, started: &str| json!({"device_id": device, "sample_rate_hz": 100, "leads": ["I"], "started_at": started});
    let old = stack
        .open_ecg(&demo, open("watch-a", "2026-01-01T10:00:00Z"))
        .await?;
    let mid = stack
        .open_ecg(&demo, open("watch-b", "2026-01-01T11:00:00Z"))
        .await?;
    let new = stack
        .open_ecg(&demo, open("watch-a", "2026-01-01T12:00:00Z"))
        .await?;
    let theirs = stack
        .open_ecg(&other, open("watch-a", "2026-01-01T13:00:00Z"))
        .await?;
    // `old` completes; `mid` stays receiving.
    stack
        .send_chunk(&demo, old, 0, json!({"I": [1.0, -1.0, 2.0]}), true)
        .await?;
    stack.wait_complete(&demo, old, 3).await?;

    let (code, page) = stack.get_json(Some(&demo), "/v1/ecgs?limit=2").await?;
    assert_eq!(code, 200, "{page}");
    assert_eq!(ids(&page), [new.to_string(), mid.to_string()]);
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_string();
    let (_, page2) = stack
        .get_json(Some(&demo), &format!("/v1/ecgs?limit=2&cursor={cursor}"))
        .await?;
    assert_eq!(ids(&page2), [old.to_string()]);
    assert_eq!(page2["next_cursor"], Value::Null);
    assert_eq!(page2["items"][0]["status"], "complete");
    assert_eq!(page2["items"][0]["chunks_processed"], 1);
    assert_eq!(page2["items"][0]["samples_processed"], 3);
    assert!(page2["items"][0]["last_activity_at"].is_string());

    // Filters, alone and together; never another tenant's ECG.
    let (_, a) = stack
        .get_json(Some(&demo), "/v1/ecgs?device_id=watch-a")
        .await?;
    assert_eq!(ids(&a), [new.to_string(), old.to_string()]);
    let (_, c) = stack
        .get_json(Some(&demo), "/v1/ecgs?status=complete")
        .await?;
    assert_eq!(ids(&c), [old.to_string()]);
    let (_, r) = stack
        .get_json(Some(&demo), "/v1/ecgs?status=receiving&device_id=watch-a")
        .await?;
    assert_eq!(ids(&r), [new.to_string()]);
    let (_, t) = stack
        .get_json(
            Some(&demo),
            "/v1/ecgs?from=2026-01-01T10:30:00Z&to=2026-01-01T12:00:00Z",
        )
        .await?;
    assert_eq!(ids(&t), [mid.to_string()]);
    let (_, o) = stack.get_json(Some(&other), "/v1/ecgs").await?;
    assert_eq!(ids(&o), [theirs.to_string()]);

    // A processing ECG (final chunk 1 waits for 0) and a failed one (chunk
    // 0 refused, so final chunk 1 waits for good): the list's statuses,
    // computed in SQL, are the status endpoint's for all four.
    let processing = stack
        .open_ecg(&demo, open("watch-c", "2026-01-01T09:00:00Z"))
        .await?;
    let failed = stack
        .open_ecg(&demo, open("watch-c", "2026-01-01T08:00:00Z"))
        .await?;
    for id in [processing, failed] {
        stack
            .send_chunk(&demo, id, 1, json!({"I": [1.0]}), true)
            .await?;
    }
    stack.send_refused_chunk("demo", failed, 0).await?;
    ecg_e2e::wait_for(
        std::time::Duration::from_secs(30),
        "the refusal",
        || async {
            let (_, s) = stack
                .get_json(Some(&demo), &format!("/v1/ecgs/{failed}"))
                .await?;
            Ok(s["status"] == "failed")
        },
    )
    .await?;
    let (_, p) = stack
        .get_json(Some(&demo), "/v1/ecgs?status=processing")
        .await?;
    assert_eq!(ids(&p), [processing.to_string()]);
    let (_, f) = stack
        .get_json(Some(&demo), "/v1/ecgs?status=failed")
        .await?;
    assert_eq!(ids(&f), [failed.to_string()]);
    assert_eq!(f["items"][0]["failed_chunks_count"], 1);
    // Received: chunk 1 (waiting) and chunk 0 (refused); nothing written.
    let (_, st) = stack
        .get_json(Some(&demo), &format!("/v1/ecgs/{failed}"))
        .await?;
    assert_eq!(
        (
            st["chunks_received"].as_u64(),
            st["chunks_processed"].as_u64()
        ),
        (Some(2), Some(0)),
        "{st}"
    );
    // Each item's status is the status endpoint's.
    let (_, all) = stack.get_json(Some(&demo), "/v1/ecgs").await?;
    for item in all["items"].as_array().into_iter().flatten() {
        let id = item["id"].as_str().unwrap_or_default();
        let (_, status) = stack
            .get_json(Some(&demo), &format!("/v1/ecgs/{id}"))
            .await?;
        assert_eq!(item["status"], status["status"], "{id}");
        assert_eq!(item["chunks_processed"], status["chunks_processed"], "{id}");
    }

    // Bad parameters are 400s naming them.
    for (query, field) in [
        ("cursor=bm90LWEtY3Vyc29y", "cursor"),
        ("cursor=%%%", "cursor"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("status=done", "status"),
        ("from=yesterday", "from"),
        ("sort=asc", "sort"),
    ] {
        let (code, body) = stack
            .get_json(Some(&demo), &format!("/v1/ecgs?{query}"))
            .await?;
        assert_eq!(
            (code, body["field"].as_str()),
            (400, Some(field)),
            "{query}: {body}"
        );
    }
    // Paths and methods no endpoint has are JSON errors too.
    let (code, body) = stack.get_json(Some(&demo), "/v1/ecg").await?;
    assert_eq!(
        (code, body["error"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    let r = stack
        .http
        .delete(format!("{}/v1/ecgs", stack.query))
        .bearer_auth(&demo)
        .send()
        .await?;
    assert_eq!(r.status(), 405);
    let body: Value = r.json().await?;
    assert_eq!(body["error"], "method_not_allowed", "{body}");
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn samples_keep_each_buckets_min_and_max_in_json_and_arrow() -> anyhow::Result<()> {
    let stack = Stack::start("query_samples").await?;
    let demo = stack.token("demo", "demo-secret", None).await?;
    let id = stack
        .open_ecg(
            &demo,
            json!({"device_id": "plot-1", "sample_rate_hz": 100, "leads": ["I", "II"],
                   "started_at": "2026-01-01T00:00:00Z"}),
        )
        .await?;
    // 1,000 samples per lead over 4 chunks, with one spike per lead that a
    // plain decimation would lose.
    let lead_i: Vec<f64> = (0..1000)
        .map(|i| ((i % 50) as f64 - 25.0) / 100.0)
        .collect();
    let mut lead_ii: Vec<f64> = (0..1000).map(|i| (i as f64) / 1000.0).collect();
    lead_ii[537] = 9.5;
    for seq in 0..4u32 {
        let r = seq as usize * 250..(seq as usize + 1) * 250;
        let samples = json!({"I": &lead_i[r.clone()], "II": &lead_ii[r]});
        stack.send_chunk(&demo, id, seq, samples, seq == 3).await?;
    }
    stack.wait_complete(&demo, id, 2000).await?;

    // Everything, under the cap: one sample per bucket.
    let (code, all) = stack
        .get_json(
            Some(&demo),
            &format!("/v1/ecgs/{id}/samples?lead=II&max_points=1000"),
        )
        .await?;
    assert_eq!(code, 200, "{all}");
    assert_eq!(all["bucket_samples"], 1);
    assert_eq!(all["leads"].as_array().map(Vec::len), Some(1));
    assert_eq!(all["leads"][0]["max"].as_array().map(Vec::len), Some(1000));
    assert_eq!(all["leads"][0]["max"][537], 9.5);

    // 10 s to 12 s (samples 1000.. are beyond the end: cut), 20 buckets of 5.
    let path = format!(
        "/v1/ecgs/{id}/samples?from=2026-01-01T00:00:05Z&to=2026-01-01T00:00:06Z&max_points=20"
    );
    let (_, page) = stack.get_json(Some(&demo), &path).await?;
    assert_eq!(page["bucket_samples"], 5, "{page}");
    assert_eq!(page["from"], "2026-01-01T00:00:05Z");
    let ii = &page["leads"][1];
    assert_eq!(ii["lead"], "II");
    let expected_t: Vec<f64> = (0..20).map(|k| 5.0 + k as f64 * 0.05).collect();
    assert_eq!(ii["t_s"], json!(expected_t));
    for k in 0..20 {
        let bucket = &lead_ii[500 + 5 * k..505 + 5 * k];
        let min = bucket.iter().copied().fold(f64::INFINITY, f64::min);
        let max = bucket.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(
            (ii["min"][k].as_f64(), ii["max"][k].as_f64()),
            (Some(min), Some(max)),
            "bucket {k}"
        );
    }
    assert_eq!(ii["max"][7], 9.5, "the spike survives");

    // The same as Arrow IPC.
    let r = stack
        .http
        .get(format!("{}{path}", stack.query))
        .bearer_auth(&demo)
        .header("accept", "application/vnd.apache.arrow.stream")
        .send()
        .await?;
    assert_eq!(
        r.headers()["content-type"],
        "application/vnd.apache.arrow.stream"
    );
    let bytes = r.bytes().await?;
    let mut reader = arrow_ipc::reader::StreamReader::try_new(Cursor::new(bytes.to_vec()), None)?;
    let batch = reader.next().expect("one batch")?;
    assert!(reader.next().is_none());
    assert_eq!(batch.num_rows(), 40);
    let leads = batch
        .column(0)
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("Utf8");
    let max = batch
        .column(3)
        .as_any()
        .downcast_ref::<Float64Array>()
        .expect("Float64");
    assert_eq!((leads.value(27), max.value(27)), ("II", 9.5));

    // Bad parameters name themselves; another tenant sees no ECG.
    for (query, field) in [
        ("lead=V9", "lead"),
        ("max_points=1", "max_points"),
        ("max_points=20001", "max_points"),
    ] {
        let (code, body) = stack
            .get_json(Some(&demo), &format!("/v1/ecgs/{id}/samples?{query}"))
            .await?;
        assert_eq!(
            (code, body["field"].as_str()),
            (400, Some(field)),
            "{query}: {body}"
        );
    }
    let other = stack.token("other", "other-secret", None).await?;
    let (code, _) = stack
        .get_json(Some(&other), &format!("/v1/ecgs/{id}/samples"))
        .await?;
    assert_eq!(code, 404);
    let (code, _) = stack
        .get_json(Some(&demo), &format!("/v1/ecgs/{}/samples", Uuid::new_v4()))
        .await?;
    assert_eq!(code, 404);
    stack.stop().await
}
