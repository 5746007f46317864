//! The example queries of `clickhouse/README.md` run as written, on a
//! database filled by a real run of the pipeline, and give the numbers the
//! API gives: the test reads the ```sql blocks from the README itself, so the
//! README and the test cannot drift apart.

use ecg_e2e::Stack;
use serde_json::{Value, json};

/// The README's ```sql blocks, in order.
fn examples() -> anyhow::Result<Vec<String>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../clickhouse/README.md");
    let text = std::fs::read_to_string(path)?;
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sql") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), l) => {
                block.push_str(l);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    Ok(blocks)
}

/// Runs `sql` in the stack's database over HTTP, rows as JSON objects.
async fn rows(stack: &Stack, sql: &str) -> anyhow::Result<Vec<Value>> {
    let r = stack
        .http
        // The database name is the harness's own `test_<name>_<hex>`: URL-safe.
        .post(format!(
            "{}/?database={}&default_format=JSONEachRow&output_format_json_quote_64bit_integers=0",
            stack.clickhouse.url.trim_end_matches('/'),
            stack.clickhouse.database
        ))
        .body(sql.to_string())
        .send()
        .await?;
    let status = r.status();
    let text = r.text().await?;
    anyhow::ensure!(status.is_success(), "{status}: {text}\n{sql}");
    text.lines().map(|l| Ok(serde_json::from_str(l)?)).collect()
}

/// A small sine (many zero crossings) with a QRS-like spike every 0.6 s at
/// 500 Hz (beats), to three decimals.
fn wave(n: usize, period: f64, phase: f64) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let spike = match i % 300 {
                0 => 1.5,
                1 => 0.5,
                2 | 3 => -0.4,
                _ => 0.0,
            };
            let v = 0.1 * (((i as f64) + phase) / period).sin() + spike;
            (v * 1000.0).round() / 1000.0
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_readme_examples_run_and_agree_with_the_api() -> anyhow::Result<()> {
    let blocks = examples()?;
    assert_eq!(blocks.len(), 9, "the README's examples");
    let stack = Stack::start("query_analysts").await?;
    let demo = stack.token("demo", "demo-secret", None).await?;
    let other = stack.token("other", "other-secret", None).await?;
    let open = |device: &str, started: &str| json!({"device_id": device, "sample_rate_hz": 500, "leads": ["I", "II"], "started_at": started});
    // Two days of device watch-17 (4 s each, two chunks), another tenant's
    // ECG, and one chunk after the final one, which the processor ignores.
    let day1 = stack
        .open_ecg(&demo, open("watch-17", "2026-11-21T10:00:00Z"))
        .await?;
    let day2 = stack
        .open_ecg(&demo, open("watch-17", "2026-11-22T10:00:00Z"))
        .await?;
    let theirs = stack
        .open_ecg(&other, open("watch-17", "2026-11-22T11:00:00Z"))
        .await?;
    let (lead_i, lead_ii) = (wave(2000, 9.0, 0.0), wave(2000, 23.0, 4.0));
    for id in [day1, day2] {
        for seq in 0..2u32 {
            let r = seq as usize * 1000..(seq as usize + 1) * 1000;
            let samples = json!({"I": &lead_i[r.clone()], "II": &lead_ii[r]});
            stack.send_chunk(&demo, id, seq, samples, seq == 1).await?;
        }
        stack.wait_complete(&demo, id, 4000).await?;
    }
    // A chunk after day 2's final one: the gateway answers 409, so it comes
    // past it, as from a gateway that did not know the end yet.
    let (status, body) = stack
        .post_ingest(
            &demo,
            &format!("/v1/ecgs/{day2}/chunks"),
            &json!({"seq": 3, "samples": {"I": [1.0], "II": [1.0]}}),
        )
        .await?;
    assert_eq!(status, 409, "{body}");
    let stray = ecg_schemas::Chunk {
        header: ecg_schemas::EcgHeader {
            ecg_id: day2,
            tenant: "demo".into(),
            device_id: "watch-17".into(),
            sample_rate_hz: 500.0,
            units: ecg_schemas::Units::Millivolts,
            started_at: time::macros::datetime!(2026-11-22 10:00 UTC),
            leads: vec!["I".into(), "II".into()],
        },
        seq: 3,
        is_final: false,
        samples: ecg_schemas::Signal::from_vecs(vec![vec![1.0], vec![1.0]]),
    };
    stack
        .produce_direct(&day2.to_string(), &stray.encode()?)
        .await?;
    stack
        .send_chunk(
            &other,
            theirs,
            0,
            json!({"I": [1.0, -1.0], "II": [1.0, -1.0]}),
            true,
        )
        .await?;
    stack.wait_complete(&other, theirs, 4).await?;
    ecg_e2e::wait_for(
        std::time::Duration::from_secs(30),
        "the refusal",
        || async {
            let (_, s) = stack
                .get_json(Some(&demo), &format!("/v1/ecgs/{day2}"))
                .await?;
            Ok(s["failed_chunks_count"] == 1)
        },
    )
    .await?;
    let (_, insights) = stack
        .get_json(Some(&demo), &format!("/v1/ecgs/{day2}/insights"))
        .await?;
    let total = insights["total_zero_crossings"].as_u64().expect("a total");
    assert!(total > 50, "{insights}");

    // 1. Daily crossings: one row per day, each the ECG's total.
    let daily = rows(&stack, &blocks[0]).await?;
    assert_eq!(
        daily,
        [
            json!({"day": "2026-11-21", "ecgs": 1, "samples": 4000, "zero_crossings": total}),
            json!({"day": "2026-11-22", "ecgs": 1, "samples": 4000, "zero_crossings": total}),
        ]
    );
    // 2. Rate distribution per lead, over both ECGs.
    let rates = rows(&stack, &blocks[1]).await?;
    assert_eq!(rates.len(), 2, "{rates:?}");
    for (row, lead) in rates.iter().zip(["I", "II"]) {
        assert_eq!(
            (row["lead"].as_str(), row["ecgs"].as_u64()),
            (Some(lead), Some(2))
        );
        let expected = insights["leads"][lead]["zero_crossing_rate_hz"]
            .as_f64()
            .unwrap_or(0.0);
        assert!(
            (row["max_hz"].as_f64().unwrap_or(-1.0) - expected).abs() < 1e-3,
            "{row}"
        );
    }
    // 3. Seconds 1 to 3 of lead II: samples 500..1500, as sent.
    let window = rows(&stack, &blocks[2]).await?;
    assert_eq!(window.len(), 1000);
    assert_eq!(window[0]["sample_index"], 500);
    for row in &window {
        let i = row["sample_index"].as_u64().unwrap_or(0) as usize;
        assert_eq!(row["value"].as_f64(), Some(lead_ii[i]), "{row}");
    }
    // 4. The ignored chunk, once.
    let refused = rows(&stack, &blocks[3]).await?;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["kind"], "ignored", "{refused:?}");
    assert_eq!(
        (refused[0]["chunks"].as_u64(), refused[0]["ecgs"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(
        refused[0]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("after the final chunk 1")
    );
    // 5. Volume per tenant: everything was accepted within an hour or two.
    let volume = rows(&stack, &blocks[4]).await?;
    let sum = |tenant: &str, field: &str| -> u64 {
        volume
            .iter()
            .filter(|r| r["tenant"] == tenant)
            .map(|r| r[field].as_u64().unwrap_or(0))
            .sum()
    };
    assert_eq!(
        (sum("demo", "samples"), sum("demo", "chunks")),
        (8000, 4),
        "{volume:?}"
    );
    assert_eq!(
        (sum("other", "samples"), sum("other", "chunks")),
        (4, 1),
        "{volume:?}"
    );
    assert!(
        volume
            .iter()
            .all(|r| r["hour"].as_str().is_some_and(|h| !h.starts_with("1970")))
    );
    // 6. Crossings per second of the newest ECG sum to its per-lead totals.
    let seconds = rows(&stack, &blocks[5]).await?;
    for lead in ["I", "II"] {
        let summed: u64 = seconds
            .iter()
            .filter(|r| r["lead"] == lead)
            .map(|r| r["zero_crossings"].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(
            summed, insights["leads"][lead]["zero_crossings"],
            "lead {lead}"
        );
    }
    // 7. The window view gives the same rows as example 3.
    let by_view = rows(&stack, &blocks[6]).await?;
    assert_eq!(by_view, window, "samples_window agrees with samples");
    // 8. The block bounds: the two blocks of lead II over seconds 1 to 3,
    // each with the amplitude range of what was sent.
    let bounds = rows(&stack, &blocks[7]).await?;
    let seqs: Vec<u64> = bounds.iter().filter_map(|r| r["seq"].as_u64()).collect();
    assert_eq!(seqs, vec![0, 1], "{bounds:?}");
    for (row, part) in bounds.iter().zip(lead_ii.chunks(1000)) {
        let min = part.iter().copied().fold(f64::INFINITY, f64::min);
        let max = part.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(
            (row["min_value"].as_f64(), row["max_value"].as_f64()),
            (Some(min), Some(max)),
            "{row}"
        );
    }
    // 9. Beats per ECG and lead: the API's counts.
    let beats = rows(&stack, &blocks[8]).await?;
    assert!(
        beats.iter().any(|r| r["beats"].as_u64() > Some(0)),
        "{beats:?}"
    );
    for ecg in [day1, day2] {
        let (_, insights) = stack
            .get_json(Some(&demo), &format!("/v1/ecgs/{ecg}/insights"))
            .await?;
        for lead in ["I", "II"] {
            let listed = beats
                .iter()
                .find(|r| r["ecg_id"] == ecg.to_string() && r["lead"] == lead)
                .map_or(0, |r| r["beats"].as_u64().unwrap_or(0));
            assert_eq!(
                listed, insights["leads"][lead]["beats"],
                "ECG {ecg} lead {lead}: {beats:?}"
            );
        }
    }
    stack.stop().await
}
