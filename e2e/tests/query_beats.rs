//! `GET /v1/ecgs/{id}/beats` and the heart rate of
//! `GET /v1/ecgs/{id}/insights`, on an ECG streamed through the whole
//! pipeline: the pages give exactly the beats of one pass of the detector,
//! and the heart rate is the one of those beats.

use ecg_e2e::Stack;
use ecg_signal::{Analytic, BeatDetector};
use serde_json::{Value, json};

const RATE: usize = 250;
const SECONDS: usize = 60;

/// Lead I: a QRS-like spike every 0.8 s (75 bpm) on a slow wander; lead
/// II: the same, every 0.6 s (100 bpm), at half the amplitude.
fn lead(period: usize, gain: f64) -> Vec<f64> {
    (0..RATE * SECONDS)
        .map(|i| {
            let spike = match i % period {
                0 => 1.2,
                1 => 0.4,
                2 | 3 => -0.3,
                _ => 0.0,
            };
            gain * (spike + 0.08 * (i as f64 * 0.004).sin())
        })
        .collect()
}

fn one_pass(x: &[f64]) -> Vec<u64> {
    let mut d = BeatDetector::new(RATE as f64).expect("a supported rate");
    let mut out = Vec::new();
    d.push(x, &mut out);
    d.finish(&mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn beats_page_by_lead_and_the_heart_rate_is_theirs() -> anyhow::Result<()> {
    let stack = Stack::start("query_beats").await?;
    let demo = stack.token("demo", "demo-secret", None).await?;
    let other = stack.token("other", "other-secret", None).await?;
    let (i, ii) = (lead(200, 1.0), lead(150, 0.5));
    // V1 disconnected (flat); V2 lead I clipped at ±0.05 mV (saturated).
    let v1 = vec![0.0; RATE * SECONDS];
    let v2: Vec<f64> = i.iter().map(|v| v.clamp(-0.05, 0.05)).collect();
    let id = stack
        .open_ecg(
            &demo,
            json!({"device_id": "holter-3", "sample_rate_hz": RATE, "leads": ["I", "II", "V1", "V2"],
                   "started_at": "2026-05-01T09:00:00Z"}),
        )
        .await?;
    // One-second chunks, the second half first.
    let mut order: Vec<usize> = (SECONDS / 2..SECONDS).chain(0..SECONDS / 2).collect();
    order.swap(0, 1);
    for s in order {
        let r = s * RATE..(s + 1) * RATE;
        let samples =
            json!({"I": &i[r.clone()], "II": &ii[r.clone()], "V1": &v1[r.clone()], "V2": &v2[r]});
        stack
            .send_chunk(&demo, id, s as u32, samples, s == SECONDS - 1)
            .await?;
    }
    stack
        .wait_complete(&demo, id, (4 * RATE * SECONDS) as u64)
        .await?;

    // Lead I (the default), 25 a page: exactly one pass's beats.
    let expected = one_pass(&i);
    assert!(expected.len() > 60, "{} beats", expected.len());
    let mut got: Vec<u64> = Vec::new();
    let mut rr: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let q = cursor
            .as_ref()
            .map_or(String::new(), |c| format!("&cursor={c}"));
        let (code, page) = stack
            .get_json(Some(&demo), &format!("/v1/ecgs/{id}/beats?limit=25{q}"))
            .await?;
        assert_eq!(code, 200, "{page}");
        assert_eq!(
            (&page["lead"], &page["sample_rate_hz"]),
            (&json!("I"), &json!(250.0))
        );
        for b in page["items"].as_array().into_iter().flatten() {
            let index = b["sample_index"].as_u64().expect("an index");
            assert_eq!(b["t_s"].as_f64(), Some(index as f64 / RATE as f64), "{b}");
            got.push(index);
            rr.push(b["rr_ms"].clone());
        }
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(got, expected);
    assert_eq!(pages, expected.len().div_ceil(25));
    assert_eq!(rr[0], Value::Null, "the first beat has no RR");
    for (w, r) in got.windows(2).zip(&rr[1..]) {
        assert_eq!(
            r.as_f64(),
            Some((w[1] - w[0]) as f64 * 1000.0 / RATE as f64)
        );
    }
    // Lead II within a time range.
    let (code, page) = stack
        .get_json(
            Some(&demo),
            &format!(
                "/v1/ecgs/{id}/beats?lead=II&from=2026-05-01T09:00:10Z&to=2026-05-01T09:00:20Z&limit=10000"
            ),
        )
        .await?;
    assert_eq!(code, 200, "{page}");
    let in_range: Vec<u64> = one_pass(&ii)
        .into_iter()
        .filter(|&b| (10 * RATE as u64..20 * RATE as u64).contains(&b))
        .collect();
    let listed: Vec<u64> = page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b["sample_index"].as_u64())
        .collect();
    assert_eq!(listed, in_range);
    assert_eq!(page["next_cursor"], Value::Null);

    // The heart rate: 75 bpm on lead I, 100 on lead II. The ECG's comes
    // from the lead with the larger share of normal RR intervals: on this
    // synthetic signal lead II's narrow spikes are missed now and then (its
    // intervals across a miss are not normal), so lead I.
    let (_, insights) = stack
        .get_json(Some(&demo), &format!("/v1/ecgs/{id}/insights"))
        .await?;
    let hr = |lead: &str| insights["leads"][lead]["heart_rate"]["heart_rate_bpm"].as_f64();
    assert!(
        hr("I").is_some_and(|h| (h - 75.0).abs() < 0.01),
        "{insights}"
    );
    assert!(
        hr("II").is_some_and(|h| (h - 100.0).abs() < 0.01),
        "{insights}"
    );
    assert_eq!(
        insights["leads"]["I"]["beats"],
        expected.len(),
        "{insights}"
    );
    assert_eq!(
        insights["leads"]["II"]["beats"],
        one_pass(&ii).len(),
        "{insights}"
    );
    let share = |lead: &str| {
        let h = &insights["leads"][lead]["heart_rate"];
        h["normal_intervals"].as_f64().unwrap_or(0.0) / h["rr_intervals"].as_f64().unwrap_or(1.0)
    };
    let best = if share("I") >= share("II") { "I" } else { "II" };
    assert_eq!(insights["heart_rate_lead"], best, "{insights}");
    assert_eq!(insights["heart_rate_bpm"].as_f64(), hr(best));
    assert!(
        insights["leads"]["I"]["heart_rate"]["sdnn_ms"]
            .as_f64()
            .is_some_and(|s| s < 1.0),
        "a regular rhythm has no variability: {insights}"
    );

    // Per minute: each lead's quality, and a heart rate where it is good.
    let (_, minute) = stack
        .get_json(Some(&demo), &format!("/v1/ecgs/{id}/insights?window=1m"))
        .await?;
    let series = &minute["windows"]["series"];
    assert_eq!(series.as_array().map(Vec::len), Some(1), "{minute}");
    let heart = &series[0]["heart"];
    let quality = |lead: &str| heart[lead]["quality"].as_str().unwrap_or("");
    assert_eq!(
        [quality("I"), quality("II"), quality("V1"), quality("V2")],
        ["good", "good", "flat", "saturated"],
        "{heart}"
    );
    assert_eq!(
        heart["I"]["heart_rate"], insights["leads"]["I"]["heart_rate"],
        "{heart}"
    );
    assert_eq!(heart["I"]["beats"], expected.len(), "{heart}");
    assert_eq!(
        heart["V1"]["heart_rate"],
        Value::Null,
        "no heart rate from a flat lead"
    );
    // The leads' own heart rates come from their good windows only.
    let lead_quality = |lead: &str| insights["leads"][lead]["quality"].clone();
    assert_eq!(
        lead_quality("V2"),
        json!({"windows": 1, "good": 0, "flat": 0, "saturated": 1, "noisy": 0}),
        "{insights}"
    );
    assert_eq!(lead_quality("V1")["flat"], 1, "{insights}");
    assert_eq!(lead_quality("I")["good"], 1, "{insights}");
    assert_eq!(
        insights["leads"]["V2"]["heart_rate"],
        Value::Null,
        "{insights}"
    );
    assert!(
        insights["leads"]["V2"]["beats"].as_u64() > Some(0),
        "{insights}"
    );
    assert_eq!(
        heart["V2"]["heart_rate"],
        Value::Null,
        "nor from a clipped one"
    );
    let (_, seconds) = stack
        .get_json(Some(&demo), &format!("/v1/ecgs/{id}/insights?window=10s"))
        .await?;
    assert_eq!(
        seconds["windows"]["series"][0]["heart"],
        Value::Null,
        "{seconds}"
    );

    // Bad parameters name themselves; another tenant sees nothing.
    for (query, field) in [
        ("lead=V9", "lead"),
        ("limit=0", "limit"),
        ("limit=10001", "limit"),
        ("cursor=%21", "cursor"),
        ("from=2026-05-01T09:00:20Z&to=2026-05-01T09:00:10Z", "to"),
        ("window=1s", "window"),
    ] {
        let (code, body) = stack
            .get_json(Some(&demo), &format!("/v1/ecgs/{id}/beats?{query}"))
            .await?;
        assert_eq!(
            (code, body["field"].as_str()),
            (400, Some(field)),
            "{query}: {body}"
        );
    }
    let (code, _) = stack
        .get_json(Some(&other), &format!("/v1/ecgs/{id}/beats"))
        .await?;
    assert_eq!(code, 404);
    stack.stop().await
}
