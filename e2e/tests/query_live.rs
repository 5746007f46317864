//! The dashboard's live endpoints on a stream in progress:
//! `GET /v1/streams/active` (rate, lag from the Kafka timestamp, waiting
//! chunks), `GET /v1/pipeline` (rates, step by step over the last ten
//! minutes too, and consumer lag from the broker) and
//! `GET /v1/devices/{device_id}/insights` (buckets summing to the ECGs'
//! totals), and the status's received chunks and last activity.

use std::time::Duration;

use ecg_e2e::{Stack, wait_for};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_live_stream_shows_its_rate_lag_and_device_buckets() -> anyhow::Result<()> {
    let stack = Stack::start("query_live").await?;
    let demo = stack.token("demo", "demo-secret", None).await?;
    let open = |started: &str| json!({"device_id": "patch-9", "sample_rate_hz": 250, "leads": ["I", "II"], "started_at": started});
    let first = stack.open_ecg(&demo, open("2026-03-01T08:00:00Z")).await?;
    let second = stack.open_ecg(&demo, open("2026-03-01T09:30:00Z")).await?;
    // 8 s per ECG: chunks 0..=3 of 500 samples per lead; chunk 2 of the
    // second ECG is held back, so 3 waits for it.
    let wave = |seq: u32, n: usize| -> Vec<f64> {
        (0..n)
            .map(|i| (((seq as usize * n + i) as f64) / 7.0).sin())
            .collect()
    };
    for seq in 0..4u32 {
        let samples = json!({"I": wave(seq, 500), "II": wave(seq + 9, 500)});
        stack
            .send_chunk(&demo, first, seq, samples.clone(), seq == 3)
            .await?;
        if seq != 2 {
            stack
                .send_chunk(&demo, second, seq, samples, seq == 3)
                .await?;
        }
    }
    stack.wait_complete(&demo, first, 4000).await?;
    wait_for(Duration::from_secs(30), "chunk 3 to wait for 2", || async {
        let (_, s) = stack
            .get_json(Some(&demo), &format!("/v1/ecgs/{second}"))
            .await?;
        Ok(s["waiting_seqs"] == json!([3]))
    })
    .await?;

    let (_, status) = stack
        .get_json(Some(&demo), &format!("/v1/ecgs/{second}"))
        .await?;
    assert_eq!(status["chunks_processed"], 2, "{status}");
    assert_eq!(
        status["chunks_received"], 3,
        "written 0 and 1, waiting 3: {status}"
    );
    // 2 leads x 500 samples per chunk: 2 chunks written, 1 waiting.
    assert_eq!(status["samples_processed"], 2000, "{status}");
    assert_eq!(
        status["samples_received"], 3000,
        "the waiting chunk's samples are received: {status}"
    );
    assert!(status["last_activity_at"].is_string(), "{status}");

    let (code, active) = stack
        .get_json(Some(&demo), "/v1/streams/active?within_s=600")
        .await?;
    assert_eq!(code, 200, "{active}");
    let streams = active["streams"].as_array().cloned().unwrap_or_default();
    assert_eq!(streams.len(), 2, "{active}");
    for s in &streams {
        let lag = s["lag_s"].as_f64().expect("a lag from the Kafka timestamp");
        assert!((0.0..60.0).contains(&lag), "{s}");
        assert!(s["samples_per_s"].as_f64().unwrap_or(0.0) > 0.0, "{s}");
    }
    let second_stream = streams
        .iter()
        .find(|s| s["id"] == second.to_string())
        .expect("listed");
    assert_eq!(second_stream["waiting_chunks"], 1);
    assert_eq!(second_stream["samples_per_s"], 2.0 * 2.0 * 500.0 / 600.0);

    let (_, pipeline) = stack.get_json(Some(&demo), "/v1/pipeline").await?;
    assert_eq!(pipeline["window_s"], 60);
    // 4 + 2 chunks written, 6 000 samples, all within the last minute.
    assert_eq!(
        pipeline["processing"]["chunks_per_s"],
        6.0 / 60.0,
        "{pipeline}"
    );
    assert_eq!(
        pipeline["processing"]["samples_per_s"],
        6000.0 / 60.0,
        "{pipeline}"
    );
    assert_eq!(
        pipeline["ingest"]["samples_per_s"],
        6000.0 / 60.0,
        "{pipeline}"
    );
    // The same samples step by step over the last ten minutes, for the
    // dashboard's sparkline: all 6 000 of them, ingested and processed.
    let throughput = &pipeline["throughput"];
    let step_s = throughput["step_s"].as_f64().unwrap_or(0.0);
    for rate in ["ingest_samples_per_s", "processing_samples_per_s"] {
        let steps = throughput[rate].as_array().cloned().unwrap_or_default();
        assert_eq!(steps.len(), 60, "{rate}: {throughput}");
        let samples: f64 = steps.iter().filter_map(|v| v.as_f64()).sum::<f64>() * step_s;
        assert_eq!(samples.round(), 6000.0, "{rate}: {throughput}");
    }
    assert_eq!(pipeline["active_streams"], 2);
    assert_eq!(pipeline["ecgs"]["complete"], 1);
    assert_eq!(pipeline["ecgs"]["processing"], 1);
    // The waiting chunk is stored (parked), so its offset is committed: the
    // group does not lag behind a gap.
    wait_for(
        Duration::from_secs(30),
        "the broker to report no lag",
        || async {
            let (_, p) = stack.get_json(Some(&demo), "/v1/pipeline").await?;
            Ok(p["consumer_lag"]["available"] == true
                && p["consumer_lag"]["messages"].as_u64() == Some(0))
        },
    )
    .await?;

    // Device buckets: each ECG's 8 s lies in one hour; per lead they sum to
    // the ECG's own totals.
    let (code, device) = stack
        .get_json(Some(&demo), "/v1/devices/patch-9/insights?from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00Z&bucket=1h")
        .await?;
    assert_eq!(code, 200, "{device}");
    let buckets = device["buckets"].as_array().cloned().unwrap_or_default();
    assert_eq!(buckets.len(), 2, "{device}");
    assert_eq!(buckets[0]["start"], "2026-03-01T08:00:00Z");
    assert_eq!(buckets[1]["start"], "2026-03-01T09:00:00Z");
    assert_eq!(
        (buckets[0]["ecgs"].as_u64(), buckets[0]["samples"].as_u64()),
        (Some(1), Some(4000))
    );
    for (bucket, id) in buckets.iter().zip([first, second]) {
        let (_, insights) = stack
            .get_json(Some(&demo), &format!("/v1/ecgs/{id}/insights"))
            .await?;
        for lead in ["I", "II"] {
            assert_eq!(
                bucket["leads"][lead], insights["leads"][lead]["zero_crossings"],
                "{lead}: {bucket}"
            );
        }
        assert_eq!(bucket["zero_crossings"], insights["total_zero_crossings"]);
    }
    // A range from the middle of the first ECG: the second is not read, and
    // the device's crossings equal the ECG's own windows over the same range.
    let (_, half) = stack
        .get_json(Some(&demo), "/v1/devices/patch-9/insights?from=2026-03-01T08:00:04Z&to=2026-03-01T09:00:00Z&bucket=1m")
        .await?;
    assert_eq!(half["buckets"].as_array().map(Vec::len), Some(1), "{half}");
    assert_eq!(half["buckets"][0]["samples"], 2000, "{half}");
    let (_, windows) = stack
        .get_json(
            Some(&demo),
            &format!("/v1/ecgs/{first}/insights?window=10s&from=2026-03-01T08:00:04Z"),
        )
        .await?;
    for lead in ["I", "II"] {
        assert_eq!(
            half["buckets"][0]["leads"][lead], windows["windows"]["series"][0]["leads"][lead],
            "{lead}"
        );
    }
    stack.stop().await
}
