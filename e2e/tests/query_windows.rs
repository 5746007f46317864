//! Exact zero crossings per time window (`GET /v1/ecgs/{id}/insights?window=`),
//! computed in ClickHouse from `samples`: crossings on chunk boundaries and on
//! window boundaries count once, in the window where the new sign is seen;
//! digital ECGs take the sign from the exact ADC count; windows sum to the
//! processor's per-lead totals on a 10-minute 12-lead ECG.

use std::collections::BTreeMap;
use std::time::Instant;

use ecg_e2e::Stack;
use serde_json::{Value, json};

/// Crossings per window of `per_window` samples, by the definition: a sign
/// change between consecutive non-zero samples, at the second one.
fn reference(values: &[f64], per_window: usize) -> Vec<u64> {
    let mut out = vec![0; values.len().div_ceil(per_window)];
    let mut last = 0.0f64;
    for (i, &v) in values.iter().enumerate() {
        if v == 0.0 {
            continue;
        }
        if last != 0.0 && (last > 0.0) != (v > 0.0) {
            out[i / per_window] += 1;
        }
        last = v;
    }
    out
}

fn series(insights: &Value, lead: &str) -> Vec<u64> {
    insights["windows"]["series"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| w["leads"][lead].as_u64().unwrap_or(u64::MAX))
        .collect()
}

/// Each value is sent 5 times at 50 Hz, so a 1 s window is 10 values here;
/// chunks of 7 values (35 samples) put chunk boundaries at values 7, 14, 21
/// and 28, window boundaries at 10 and 20.
const SIGNAL: [f64; 30] = [
    0.0, -0.0, 0.5, 0.5, 0.5, 0.5, -0.5, // 6: crossing
    0.5, 0.5, 0.5, // 7: crossing on a chunk boundary
    -0.5, -0.5, -0.5, -0.5, // 10: crossing on a window boundary
    0.5, 0.0, 0.5, 0.5, 0.5, 0.0, // 14: chunk boundary; 16: a touch, no crossing
    -0.0, -0.5, -0.5, -0.5, -0.5, -0.5, -0.5, -0.5, // 21: zeros span window and chunk
    0.5, 0.5, // 28: crossing on a chunk boundary
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crossings_on_chunk_and_window_boundaries_count_once_where_the_sign_changes()
-> anyhow::Result<()> {
    let stack = Stack::start("query_windows").await?;
    let demo = stack.token("demo", "demo-secret", None).await?;
    assert_eq!(reference(&SIGNAL, 10), [2, 2, 2], "the hand count");
    let signal: Vec<f64> = SIGNAL.iter().flat_map(|&v| [v; 5]).collect();
    assert_eq!(reference(&signal, 50), [2, 2, 2]);
    // The same signal as floats and as ADC counts (baseline 1024: a count of
    // 1024 is zero; the float would be a tiny non-zero if computed inexactly).
    let adc: Vec<i64> = signal.iter().map(|v| 1024 + (v * 2.0) as i64).collect();
    let physical = stack
        .open_ecg(
            &demo,
            json!({"device_id": "w", "sample_rate_hz": 50, "leads": ["I", "II"],
                               "started_at": "2026-02-01T00:00:00Z"}),
        )
        .await?;
    let digital = stack
        .open_ecg(
            &demo,
            json!({"device_id": "w", "sample_rate_hz": 50, "leads": ["I", "II"],
                               "started_at": "2026-02-01T00:00:00Z",
                               "adc": {"I": {"gain": 3.0, "baseline": 1024},
                                       "II": {"gain": 3.0, "baseline": 1024}}}),
        )
        .await?;
    let negated: Vec<f64> = signal.iter().map(|v| -v).collect();
    let adc_negated: Vec<i64> = adc.iter().map(|a| 2048 - a).collect();
    for (seq, start) in (0..150).step_by(35).enumerate() {
        let r = start..(start + 35).min(150);
        let last = r.end == 150;
        let samples = json!({"I": &signal[r.clone()], "II": &negated[r.clone()]});
        stack
            .send_chunk(&demo, physical, seq as u32, samples, last)
            .await?;
        let counts = json!({"I": &adc[r.clone()], "II": &adc_negated[r]});
        stack
            .send_chunk(&demo, digital, seq as u32, counts, last)
            .await?;
    }
    for id in [physical, digital] {
        stack.wait_complete(&demo, id, 300).await?;
        let (code, body) = stack
            .get_json(Some(&demo), &format!("/v1/ecgs/{id}/insights?window=1s"))
            .await?;
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["leads"]["I"]["zero_crossings"], 6, "{body}");
        assert_eq!(series(&body, "I"), [2, 2, 2], "{body}");
        assert_eq!(series(&body, "II"), [2, 2, 2], "{body}");
        let w = &body["windows"];
        assert_eq!(
            (w["window"].as_str(), w["window_s"].as_f64()),
            (Some("1s"), Some(1.0))
        );
        assert_eq!(w["series"][2]["start"], "2026-02-01T00:00:02Z");
        assert_eq!(w["series"][2]["start_s"], 2.0);

        // A range: the crossing at sample 10 has its previous sign before
        // `from`, and still counts; the window of `to` is left out.
        let (_, part) = stack
            .get_json(
                Some(&demo),
                &format!("/v1/ecgs/{id}/insights?window=1s&from=2026-02-01T00:00:01Z&to=2026-02-01T00:00:02Z"),
            )
            .await?;
        assert_eq!(series(&part, "I"), [2], "{part}");
        // From sample 105 (2.1 s), the first of chunk 3: its previous
        // non-zero sample is in chunk 2, behind ten zeros, and the scan
        // starts at 105, seeded with chunk 2's running sign. Still counted.
        let (_, seeded) = stack
            .get_json(
                Some(&demo),
                &format!("/v1/ecgs/{id}/insights?window=1s&from=2026-02-01T00:00:02.100Z"),
            )
            .await?;
        assert_eq!(series(&seeded, "I"), [2], "{seeded}");
        assert_eq!(series(&seeded, "II"), [2], "{seeded}");
        // A 10 s window holds the whole ECG.
        let (_, whole) = stack
            .get_json(Some(&demo), &format!("/v1/ecgs/{id}/insights?window=10s"))
            .await?;
        assert_eq!(series(&whole, "I"), [6], "{whole}");
    }
    for (query, field) in [
        ("window=5s", "window"),
        ("from=2026-02-01T00:00:01Z", "window"),
        ("window=1s&from=x", "from"),
    ] {
        let (code, body) = stack
            .get_json(
                Some(&demo),
                &format!("/v1/ecgs/{physical}/insights?{query}"),
            )
            .await?;
        assert_eq!(
            (code, body["field"].as_str()),
            (400, Some(field)),
            "{query}: {body}"
        );
    }
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn windows_of_a_ten_minute_12_lead_ecg_sum_to_each_leads_total() -> anyhow::Result<()> {
    let stack = Stack::start("query_windows_long").await?;
    let demo = stack.token("demo", "demo-secret", None).await?;
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/ecg/ecgplot_12lead.json");
    let data: Value = serde_json::from_slice(&std::fs::read(path)?)?;
    let leads: Vec<String> = serde_json::from_value(data["meta"]["leads"].clone())?;
    let signals: BTreeMap<String, Vec<f64>> = serde_json::from_value(data["signals"].clone())?;
    // The real 10 s recording 60 times: 12 leads x 500 Hz x 10 min.
    let columns: Vec<Vec<f64>> = leads.iter().map(|l| signals[l].repeat(60)).collect();
    let n = columns[0].len();
    let id = stack
        .open_ecg(
            &demo,
            json!({"device_id": "holter", "sample_rate_hz": 500, "leads": leads}),
        )
        .await?;
    let mut csv = format!("{}\n", leads.join(",")).into_bytes();
    for i in 0..n {
        let row: Vec<String> = columns.iter().map(|c| format!("{:?}", c[i])).collect();
        csv.extend_from_slice(row.join(",").as_bytes());
        csv.push(b'\n');
    }
    let r = stack
        .http
        .put(format!("{}/v1/ecgs/{id}/signal", stack.ingest))
        .bearer_auth(&demo)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await?;
    assert!(r.status().is_success(), "{}", r.text().await?);
    stack
        .wait_complete(&demo, id, (n * leads.len()) as u64)
        .await?;

    for window in ["1s", "10s", "1m"] {
        let started = Instant::now();
        let (code, body) = stack
            .get_json(
                Some(&demo),
                &format!("/v1/ecgs/{id}/insights?window={window}"),
            )
            .await?;
        let took = started.elapsed();
        assert_eq!(code, 200, "{body}");
        println!(
            "window={window}: {} windows in {took:?} (12 leads x 300,000 samples)",
            body["windows"]["series"].as_array().map_or(0, Vec::len)
        );
        for (lead, values) in leads.iter().zip(&columns) {
            let per_window = match window {
                "1s" => 500,
                "10s" => 5_000,
                _ => 30_000,
            };
            let expected = reference(values, per_window);
            assert_eq!(
                series(&body, lead),
                expected,
                "lead {lead}, window {window}"
            );
            let total: u64 = expected.iter().sum();
            assert_eq!(body["leads"][lead]["zero_crossings"], total, "lead {lead}");
        }
    }
    stack.stop().await
}
