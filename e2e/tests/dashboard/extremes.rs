//! Signals at the ends of the `f64` range, plotted as sent: each track's
//! trace has its shape (blue ink over most of the track's height, not a flat
//! line, not blank) and its scale's labels are short engineering notation.
//! The pipeline stores such values bit for bit (`pipeline.rs`); these tests
//! are about the page's arithmetic: a span of ±1.8e308 overflows to Infinity,
//! one of subnormals is below any fixed "flat" threshold.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use anyhow::Context as _;
use ecg_e2e::Stack;
use ecg_e2e::browser::Browser;
use futures::FutureExt as _;
use serde_json::Value;

use crate::{
    PAGE_STATE, Recording, finish, open_ecg, open_ecg_page, send, synthetic, target_dir, triangle,
};

/// 8 s at 500 Hz, in chunks of [`crate::CHUNK`].
const SAMPLES: usize = 4000;

/// Streams `rec`, opens its page and checks what the page shows.
async fn plotted(
    name: &str,
    rec: &Recording,
    check: impl FnOnce(&Value) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let browser = Browser::start(name).await?;
    let stack = Stack::start(name).await?;
    let demo = stack.token("demo", "demo-secret", None).await?;
    let id = open_ecg(&stack, &demo, &rec.create_body(name)).await?;
    send(&stack, &demo, id, rec, 0..rec.chunks()).await?;
    stack
        .insights_when_complete(&demo, id, Duration::from_secs(60))
        .await?;
    let outcome = AssertUnwindSafe(async {
        open_ecg_page(&browser, &stack, id, rec.leads.len()).await?;
        browser
            .screenshot(&target_dir().join(format!("{}.png", name.replace('_', "-"))))
            .await?;
        check(&browser.eval(PAGE_STATE).await?)
    })
    .catch_unwind()
    .await;
    finish(browser, outcome).await?;
    stack.stop().await
}

/// Each track: the trace across the plot's width and over most of its
/// height (a triangle or square wave from its minimum to its maximum), and
/// the labels `top` and `bottom` (lead, top, bottom).
fn assert_drawn(page: &Value, expected: &[(&str, &str, &str)]) -> anyhow::Result<()> {
    let tracks = page["tracks"].as_array().context("tracks")?;
    assert_eq!(tracks.len(), expected.len(), "{page}");
    for (t, (lead, top, bottom)) in tracks.iter().zip(expected) {
        assert_eq!(t["lead"], *lead);
        let width = t["width"].as_u64().context("width")?;
        let height = t["height"].as_u64().context("height")?;
        let (ink, rows) = (t["ink"].as_u64(), t["ink_rows"].as_u64());
        assert!(
            ink > Some(width * 8 / 10),
            "lead {lead}: blue ink in {ink:?} of {width} columns"
        );
        assert!(
            rows > Some(height * 3 / 4),
            "lead {lead}: blue ink in {rows:?} of {height} rows (a flat line has 1 or 2)"
        );
        assert_eq!(
            (t["top"].as_str(), t["bottom"].as_str()),
            (Some(*top), Some(*bottom)),
            "lead {lead}: the scale's labels"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn values_of_1e300_and_the_largest_finite_are_plotted_with_engineering_labels()
-> anyhow::Result<()> {
    let rec = synthetic(
        500.0,
        vec![
            ("I", triangle(SAMPLES, 1e300)),
            // Its span, 2 * f64::MAX, is Infinity.
            ("II", triangle(SAMPLES, f64::MAX)),
        ],
    );
    plotted("dashboard_huge", &rec, |page| {
        assert_drawn(
            page,
            &[("I", "1e300", "-1e300"), ("II", "180e306", "-180e306")],
        )
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subnormal_signal_draws_its_shape() -> anyhow::Result<()> {
    // The smallest subnormal as a square wave (every 10 samples a crossing),
    // and a triangle of peak 1e-310 (subnormal too: below 2.2e-308).
    let square: Vec<f64> = (0..SAMPLES)
        .map(|k| if k / 10 % 2 == 0 { 5e-324 } else { -5e-324 })
        .collect();
    let rec = synthetic(
        500.0,
        vec![("I", square), ("II", triangle(SAMPLES, 1e-310))],
    );
    plotted("dashboard_subnormal", &rec, |page| {
        // Hundreds of crossings counted, and the page draws them.
        assert_eq!(page["counts"]["I"]["zero_crossings"], SAMPLES / 10 - 1);
        assert_drawn(
            page,
            &[
                ("I", "4.94e-324", "-4.94e-324"),
                ("II", "100e-312", "-100e-312"),
            ],
        )
    })
    .await
}
