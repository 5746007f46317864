//! The overview as it first appears: the throughput sparkline already drawn
//! from the API's history (not a lone point that becomes a line minutes
//! later), and each ECG's sample rate as declared, there and on its page.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use anyhow::Context as _;
use ecg_e2e::Stack;
use ecg_e2e::browser::Browser;
use fantoccini::Locator;
use futures::FutureExt as _;
use serde_json::json;
use uuid::Uuid;

use crate::{WAIT, blue_ink, finish, open_ecg, send, sign_in, synthetic, target_dir, triangle};

/// Opens the dashboard and signs in as the demo client.
async fn sign_in_to_overview(browser: &Browser, stack: &Stack) -> anyhow::Result<()> {
    let c = &browser.client;
    c.goto(&format!("{}/dashboard", stack.query)).await?;
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Id("client-id"))
        .await?;
    sign_in(browser, "demo", "demo-secret").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_throughput_sparkline_is_drawn_at_the_first_load() -> anyhow::Result<()> {
    let browser = Browser::start("dashboard-spark").await?;
    let stack = Stack::start("dashboard_spark").await?;
    let demo = stack.token("demo", "demo-secret", None).await?;
    let rec = synthetic(500.0, vec![("I", triangle(4000, 1.0))]);
    let id = open_ecg(&stack, &demo, &rec.create_body("spark")).await?;
    send(&stack, &demo, id, &rec, 0..rec.chunks()).await?;
    stack
        .insights_when_complete(&demo, id, Duration::from_secs(60))
        .await?;

    let outcome = AssertUnwindSafe(async {
        sign_in_to_overview(&browser, &stack).await?;
        // The first answer of /v1/pipeline, not the next refresh's.
        browser
            .wait_until(
                WAIT,
                "the pipeline panel",
                r#"return document.getElementById('pipeline').dataset.at !== undefined;"#,
            )
            .await?;
        let spark = browser
            .eval(concat!(
                blue_ink!(),
                r#"const c = document.getElementById('throughput');
                   return { width: c.clientWidth, ...blueInk(c) };"#
            ))
            .await?;
        browser
            .screenshot(&target_dir().join("dashboard-spark.png"))
            .await?;
        let width = spark["width"].as_u64().context("width")?;
        // The processed line spans the last minutes (flat where nothing was
        // processed) and rises where the ECG was.
        assert!(
            spark["columns"].as_u64() > Some(width * 9 / 10),
            "the processed line spans the sparkline: {spark}"
        );
        assert!(
            spark["rows"].as_u64() > Some(20),
            "the processed line rises to the ECG's rate: {spark}"
        );
        Ok(())
    })
    .catch_unwind()
    .await;
    finish(browser, outcome).await?;
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sample_rates_are_shown_as_declared() -> anyhow::Result<()> {
    let browser = Browser::start("dashboard-rates").await?;
    let stack = Stack::start("dashboard_rates").await?;
    let demo = stack.token("demo", "demo-secret", None).await?;
    let mut ecgs = Vec::new();
    for (fs, shown) in [(128.5, "128.5"), (500.0, "500")] {
        let rec = synthetic(fs, vec![("I", triangle(1000, 1.0))]);
        let id = open_ecg(&stack, &demo, &rec.create_body("rates")).await?;
        send(&stack, &demo, id, &rec, 0..rec.chunks()).await?;
        ecgs.push((id, shown));
    }
    let outcome = AssertUnwindSafe(check_rates(&browser, &stack, &ecgs))
        .catch_unwind()
        .await;
    finish(browser, outcome).await?;
    stack.stop().await
}

async fn check_rates(
    browser: &Browser,
    stack: &Stack,
    ecgs: &[(Uuid, &str)],
) -> anyhow::Result<()> {
    sign_in_to_overview(browser, stack).await?;
    browser
        .wait_until(
            WAIT,
            "both ECGs in the list",
            &format!(
                "return document.querySelectorAll('#ecg-list tr[data-ecg-id]').length === {};",
                ecgs.len()
            ),
        )
        .await?;
    for (id, shown) in ecgs {
        let cell = browser
            .eval(&format!(
                r#"return document.querySelector('#ecg-list tr[data-ecg-id="{id}"] td[data-field="sample_rate_hz"]').textContent;"#
            ))
            .await?;
        assert_eq!(cell, json!(shown), "the list's Hz column, ECG {id}");
    }
    for (id, shown) in ecgs {
        browser
            .eval(&format!("location.hash = '#/ecg/{id}'; return true;"))
            .await?;
        let rate = r#"const dt = [...document.querySelectorAll('#ecg-facts dt')]
                         .find((d) => d.textContent === 'sample rate');
                       return dt ? dt.nextElementSibling.textContent : null;"#;
        browser
            .wait_until(
                WAIT,
                &format!("the facts of ECG {id}"),
                &format!(
                    r#"if (document.getElementById('ecg-view').dataset.ecgId !== '{id}') return false;
                       return (() => {{ {rate} }})() !== null;"#
                ),
            )
            .await?;
        let fact = browser.eval(rate).await?;
        assert_eq!(fact, json!(format!("{shown} Hz")), "the page of ECG {id}");
    }
    Ok(())
}
