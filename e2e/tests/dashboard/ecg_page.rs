//! Signing in, the overview, and one complete ECG: every lead plotted, the
//! counts per lead and per window, zoom and reset, a refused token.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use ecg_e2e::Stack;
use ecg_e2e::browser::Browser;
use ecg_signal::LeadSummary;
use fantoccini::Locator;
use fantoccini::actions::{InputSource, MOUSE_BUTTON_LEFT, MouseActions, PointerAction};
use futures::FutureExt as _;
use serde_json::json;
use uuid::Uuid;

use crate::{PAGE_STATE, Recording, WAIT, finish, open_ecg, recording, send, sign_in, target_dir};

/// Crossings per lead per window of `window` samples, by the contract's rule
/// (a crossing belongs to the window of the sample where it is seen): the
/// difference of one pass over the prefixes ending at the window bounds.
fn crossings_per_window(signal: &[f64], window: usize) -> Vec<u64> {
    let prefix = |end: usize| LeadSummary::of(&signal[..end.min(signal.len())]).crossings;
    (0..signal.len().div_ceil(window))
        .map(|k| prefix((k + 1) * window) - prefix(k * window))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dashboard_signs_in_and_plots_an_ecg_with_its_crossings_per_lead_and_window()
-> anyhow::Result<()> {
    // First, so a machine without Chromium fails at once, saying what to install.
    let browser = Browser::start("dashboard").await?;
    let rec = recording()?;
    let stack = Stack::start("dashboard").await?;
    let demo = stack.token("demo", "demo-secret", None).await?;
    let other = stack.token("other", "other-secret", None).await?;
    let id = open_ecg(&stack, &demo, &rec.create_body("dashboard-e2e")).await?;
    send(&stack, &demo, id, &rec, 0..rec.chunks()).await?;
    // Another tenant's ECG, which the demo client's dashboard must not list.
    let hidden = open_ecg(
        &stack,
        &other,
        &json!({"device_id": "other-device", "sample_rate_hz": 250, "leads": ["I"]}),
    )
    .await?;
    let insights = stack
        .insights_when_complete(&demo, id, Duration::from_secs(60))
        .await?;

    // What the page must show: one pass over the signal sent, per lead and
    // per 1 s window (the page's default for a 10 s ECG).
    let per_sample_window = rec.fs as usize;
    let windows: BTreeMap<&String, Vec<u64>> = rec
        .leads
        .iter()
        .map(|l| (l, crossings_per_window(&rec.signals[l], per_sample_window)))
        .collect();
    for lead in &rec.leads {
        let once = LeadSummary::of(&rec.signals[lead]).crossings;
        assert_eq!(
            once, rec.expected[lead],
            "lead {lead}: ecg-signal vs expected file"
        );
        assert_eq!(
            insights["leads"][lead]["zero_crossings"], once,
            "lead {lead}: API"
        );
        assert_eq!(
            windows[lead].iter().sum::<u64>(),
            once,
            "lead {lead}: windows"
        );
    }

    let outcome = AssertUnwindSafe(drive(&browser, &stack, id, hidden, &rec, &windows))
        .catch_unwind()
        .await;
    finish(browser, outcome).await?;
    stack.stop().await
}

async fn drive(
    browser: &Browser,
    stack: &Stack,
    id: Uuid,
    hidden: Uuid,
    rec: &Recording,
    windows: &BTreeMap<&String, Vec<u64>>,
) -> anyhow::Result<()> {
    let c = &browser.client;
    c.goto(&format!("{}/dashboard", stack.query)).await?;

    // Sign in as a person would: a wrong secret is refused on the form,
    // the right one leads to the overview.
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Id("client-id"))
        .await?;
    sign_in(browser, "demo", "wrong-secret").await?;
    browser
        .wait_until(
            WAIT,
            "the refusal on the sign-in form",
            r#"return document.getElementById('signin-error').textContent.startsWith('Sign-in failed')
                 && !document.getElementById('signin').hidden;"#,
        )
        .await?;
    sign_in(browser, "demo", "demo-secret").await?;
    let row = format!(r#"#ecg-list tr[data-ecg-id="{id}"]"#);
    browser
        .wait_until(
            WAIT,
            "the streamed ECG in the list, complete",
            &format!(
                r#"const r = document.querySelector('{row}');
                   return !!r && r.dataset.status === 'complete'
                     && document.getElementById('pipeline').dataset.at !== undefined;"#
            ),
        )
        .await?;
    // The pipeline panel counts this tenant's ECGs only: the other tenant's
    // open one is not "receiving" here.
    browser
        .wait_until(
            WAIT,
            "the pipeline panel's ECG counts",
            r#"const m = (name) => document.querySelector(`#pipeline [data-metric="${name}"]`).textContent;
               return m('ecgs.receiving') === '0'
                 && m('ecgs.summary') === '0 processing, 1 complete, 0 failed'
                 && m('dead_lettered.total') === '0';"#,
        )
        .await?;
    let listed = browser
        .eval(&format!(
            r#"return !!document.querySelector('#ecg-list tr[data-ecg-id="{hidden}"]');"#
        ))
        .await?;
    assert_eq!(listed, json!(false), "another tenant's ECG is listed");
    browser
        .screenshot(&target_dir().join("dashboard-overview.png"))
        .await?;

    // Open the ECG from the list.
    c.find(Locator::Css(&format!("{row} a.ecg-link")))
        .await?
        .click()
        .await?;
    let n_leads = rec.leads.len();
    browser
        .wait_until(
            WAIT,
            "the plot and the counts",
            &format!(
                r#"const p = document.getElementById('plot');
                   return p.dataset.state === 'ready'
                     && document.querySelectorAll('#counts tbody tr[data-lead]').length === {n_leads}
                     && document.querySelectorAll('#windows tbody tr').length > 0;"#
            ),
        )
        .await?;
    let page = browser.eval(PAGE_STATE).await?;
    let n = rec.signals[&rec.leads[0]].len();
    let seconds = n as f64 / rec.fs;
    assert_eq!(page["status"], "complete");
    assert_eq!(page["window"], "1s");
    let plotted: Vec<&str> = page["tracks"]
        .as_array()
        .context("tracks")?
        .iter()
        .filter_map(|t| t["lead"].as_str())
        .collect();
    assert_eq!(plotted, rec.leads, "one track per lead, in order");
    for t in page["tracks"].as_array().context("tracks")? {
        let points = t["points"].as_u64().context("points")?;
        let width = t["width"].as_u64().context("width")?;
        // Downsampled by the API to about one bucket per pixel column.
        assert!(
            points > 100 && points <= width && (points as usize) < n,
            "lead {}: {points} points on {width} px",
            t["lead"]
        );
        // The trace spans the plot area (the width less the scale on the left).
        let ink = t["ink"].as_u64().context("ink")?;
        assert!(
            ink > width * 8 / 10,
            "lead {}: ink in {ink} of {width} px",
            t["lead"]
        );
    }
    assert_eq!(page["from_s"].as_f64(), Some(0.0));
    assert!((page["to_s"].as_f64().context("to_s")? - seconds).abs() < 1e-9);
    assert!(page["bucket_samples"].as_u64().context("bucket")? > 1);
    let mut total = 0;
    for lead in &rec.leads {
        let expected = rec.expected[lead];
        total += expected;
        let shown = &page["counts"][lead];
        assert_eq!(shown["zero_crossings"], expected, "lead {lead} total shown");
        assert_eq!(
            shown["windows_sum"], expected,
            "lead {lead} windows sum shown"
        );
        assert_eq!(shown["samples"], n, "lead {lead} samples shown");
        assert_eq!(
            page["windows"][lead],
            json!(windows[lead]),
            "lead {lead} per window"
        );
    }
    assert_eq!(page["total"], total);
    let picture = target_dir().join("dashboard-ecg.png");
    browser.screenshot_full_page(&picture).await?;
    if std::env::var_os("ECG_UPDATE_DOCS_SCREENSHOT").is_some() {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs");
        std::fs::create_dir_all(&docs)?;
        let docs = docs.join("dashboard.png");
        std::fs::copy(&picture, &docs)?;
    }

    // Zoom: drag across the middle quarter of the tracks. The plot must
    // refetch that range at a finer resolution and label a shorter axis.
    let tracks = c.find(Locator::Id("tracks")).await?;
    let drag = MouseActions::new("mouse".into())
        .then(PointerAction::MoveToElement {
            element: tracks.clone(),
            duration: None,
            x: -100.0,
            y: 0.0,
        })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(PointerAction::MoveToElement {
            element: tracks.clone(),
            duration: Some(Duration::from_millis(200)),
            x: 150.0,
            y: 0.0,
        })
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
    c.perform_actions(drag).await?;
    browser
        .wait_until(
            WAIT,
            "the zoomed plot",
            r#"const p = document.getElementById('plot');
               return p.dataset.state === 'ready' && Number(p.dataset.fetches) >= 2;"#,
        )
        .await?;
    let zoomed = browser.eval(PAGE_STATE).await?;
    let (from, to) = (
        zoomed["from_s"].as_f64().context("from_s")?,
        zoomed["to_s"].as_f64().context("to_s")?,
    );
    assert!(
        from > 0.5 && to < seconds - 0.5 && to - from < seconds / 3.0,
        "zoomed to {from}..{to} of {seconds} s"
    );
    assert!(
        zoomed["bucket_samples"].as_u64() < page["bucket_samples"].as_u64(),
        "finer buckets: {} then {}",
        page["bucket_samples"],
        zoomed["bucket_samples"]
    );
    assert_ne!(zoomed["ticks"], page["ticks"], "the axis is relabelled");
    for t in zoomed["tracks"].as_array().context("tracks")? {
        assert!(
            t["points"].as_u64() > Some(100),
            "zoomed lead {}",
            t["lead"]
        );
        assert!(
            t["ink"].as_u64() > Some(t["width"].as_u64().unwrap_or(0) * 8 / 10),
            "zoomed lead {} drawn",
            t["lead"]
        );
    }
    browser
        .screenshot(&target_dir().join("dashboard-zoomed.png"))
        .await?;

    // A 10 s window holds the whole 10 s ECG: one window per lead, equal to its total.
    c.find(Locator::Id("window"))
        .await?
        .select_by_value("10s")
        .await?;
    browser
        .wait_until(
            WAIT,
            "the 10 s windows",
            r#"return document.getElementById('windows').dataset.window === '10s';"#,
        )
        .await?;
    let tens = browser.eval(PAGE_STATE).await?;
    for lead in &rec.leads {
        assert_eq!(
            tens["windows"][lead],
            json!([rec.expected[lead]]),
            "lead {lead}"
        );
        assert_eq!(tens["counts"][lead]["windows_sum"], rec.expected[lead]);
    }

    // Reset goes back to the whole ECG.
    c.find(Locator::Id("zoom-reset")).await?.click().await?;
    browser
        .wait_until(
            WAIT,
            "the whole ECG again",
            r#"const p = document.getElementById('plot');
               return p.dataset.state === 'ready' && Number(p.dataset.fetches) >= 3
                 && Number(p.dataset.fromS) === 0;"#,
        )
        .await?;

    // A token the API refuses (as after a key rotation) brings the sign-in
    // form back with the reason, and signing in again returns to the page.
    browser
        .eval(
            r#"const key = 'ecg-stream.dashboard.token';
               const s = JSON.parse(sessionStorage.getItem(key));
               s.access_token = 'not-a-token';
               sessionStorage.setItem(key, JSON.stringify(s));
               location.hash = '#/';
               return true;"#,
        )
        .await?;
    browser
        .wait_until(
            WAIT,
            "the sign-in form after a 401",
            r#"return !document.getElementById('signin').hidden
                 && document.getElementById('signin-error').textContent.includes('refused the token');"#,
        )
        .await?;
    sign_in(browser, "demo", "demo-secret").await?;
    browser
        .wait_until(
            WAIT,
            "the overview again",
            &format!(r#"return !!document.querySelector('{row}');"#),
        )
        .await?;

    // No script error and no CSP refusal on the way; the only failed loads
    // are the two 401s the test provoked.
    let errors: Vec<String> = browser
        .console_errors()
        .await?
        .into_iter()
        .filter(|e| !e.contains("status of 401"))
        .collect();
    assert!(errors.is_empty(), "browser console: {errors:#?}");
    Ok(())
}
