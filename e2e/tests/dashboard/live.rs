//! An ECG page opened while the ECG is still streaming shows what has been
//! processed so far, then follows the stream without a reload: the status,
//! the plotted range and the counts grow until the ECG is complete.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use anyhow::Context as _;
use ecg_e2e::Stack;
use ecg_e2e::browser::Browser;
use futures::FutureExt as _;
use uuid::Uuid;

use crate::{PAGE_STATE, Recording, WAIT, finish, open_ecg, recording, send, sign_in};

/// Chunks sent before the page is opened (of the recording's five).
const FIRST: usize = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ecg_page_follows_a_stream_until_it_is_complete() -> anyhow::Result<()> {
    let browser = Browser::start("dashboard-live").await?;
    let rec = recording()?;
    let stack = Stack::start("dashboard_live").await?;
    let demo = stack.token("demo", "demo-secret", None).await?;
    let id = open_ecg(&stack, &demo, &rec.create_body("dashboard-live")).await?;
    send(&stack, &demo, id, &rec, 0..FIRST).await?;
    let outcome = AssertUnwindSafe(follow(&browser, &stack, &demo, id, &rec))
        .catch_unwind()
        .await;
    finish(browser, outcome).await?;
    stack.stop().await
}

async fn follow(
    browser: &Browser,
    stack: &Stack,
    token: &str,
    id: Uuid,
    rec: &Recording,
) -> anyhow::Result<()> {
    let sent = FIRST * crate::CHUNK;
    let first = sent as f64 / rec.fs;
    let whole = rec.samples() as f64 / rec.fs;
    // A deep link: the sign-in form first, then straight to the ECG.
    browser
        .client
        .goto(&format!("{}/dashboard#/ecg/{id}", stack.query))
        .await?;
    browser
        .client
        .wait()
        .at_most(WAIT)
        .for_element(fantoccini::Locator::Id("client-id"))
        .await?;
    sign_in(browser, "demo", "demo-secret").await?;
    browser
        .wait_until(
            WAIT,
            "the first chunks plotted, the ECG still receiving",
            &format!(
                r#"const p = document.getElementById('plot');
                   // The counts come from their own request: wait for them too.
                   const samples = [...document.querySelectorAll('#counts td[data-field="samples"]')];
                   return p.dataset.state === 'ready' && Number(p.dataset.toS) === {first}
                     && document.getElementById('ecg-view').dataset.status === 'receiving'
                     && samples.length === {leads}
                     && samples.every((td) => Number(td.dataset.value) === {sent});"#,
                leads = rec.leads.len()
            ),
        )
        .await?;
    let partial = browser.eval(PAGE_STATE).await?;
    for lead in &rec.leads {
        assert_eq!(
            partial["counts"][lead]["zero_crossings"],
            ecg_signal::LeadSummary::of(&rec.signals[lead][..sent]).crossings,
            "lead {lead} after {FIRST} chunks"
        );
    }

    send(stack, token, id, rec, FIRST..rec.chunks()).await?;
    browser
        .wait_until(
            // The page refreshes every 5 s; the processor needs a moment too.
            WAIT + Duration::from_secs(30),
            "the page to show the complete ECG",
            &format!(
                r#"const p = document.getElementById('plot');
                   const samples = [...document.querySelectorAll('#counts td[data-field="samples"]')];
                   return document.getElementById('ecg-view').dataset.status === 'complete'
                     && p.dataset.state === 'ready' && Number(p.dataset.toS) === {whole}
                     && samples.every((td) => Number(td.dataset.value) === {n});"#,
                n = rec.samples()
            ),
        )
        .await?;
    let done = browser.eval(PAGE_STATE).await?;
    for lead in &rec.leads {
        assert_eq!(
            done["counts"][lead]["zero_crossings"], rec.expected[lead],
            "lead {lead}"
        );
        assert_eq!(
            done["counts"][lead]["windows_sum"], rec.expected[lead],
            "lead {lead}"
        );
    }
    let fetches = done["fetches"].as_u64().context("fetches")?;
    assert!(
        fetches >= 2,
        "the plot refetched as the ECG grew: {fetches} fetches"
    );
    Ok(())
}
