//! Beats on the ECG page. A regular synthetic rhythm, a QRS-like spike every
//! 0.8 s (75 bpm) on two leads, lead II's spikes 40 ms after lead I's, is
//! streamed in two halves with the page open in between. Once the ECG is
//! complete, and again after a zoom, each track must mark exactly the beats
//! the API lists for that lead in the range shown, each where the time axis
//! puts its time (read both from the page's hooks and from the pixels
//! drawn); the heart-rate trend must be that of the ECG's `heart_rate_lead`,
//! one value per RR interval in the range, drawn at 75 bpm on its labelled
//! scale; and the summary must show the API's heart rate, SDNN and RMSSD.

use std::f64::consts::PI;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use anyhow::Context as _;
use ecg_e2e::Stack;
use ecg_e2e::browser::Browser;
use fantoccini::Locator;
use fantoccini::actions::{InputSource, MOUSE_BUTTON_LEFT, MouseActions, PointerAction};
use futures::FutureExt as _;
use serde_json::Value;
use uuid::Uuid;

use crate::{WAIT, finish, open_ecg, open_ecg_page, send, synthetic, target_dir};

const FS: f64 = 250.0;
/// Samples between beats: 0.8 s, 75 bpm.
const PERIOD: usize = 200;
/// 30 s of signal.
const SAMPLES: usize = 7500;
/// Lead II's spikes come this many samples (40 ms) after lead I's.
const LAG: usize = 10;

/// A spike every [`PERIOD`] samples from `first` on, scaled by `gain`, over
/// a slow baseline wander: what the detector sees as a steady 75 bpm.
fn rhythm(first: usize, gain: f64) -> Vec<f64> {
    (0..SAMPLES)
        .map(|k| {
            let spike = match (k + PERIOD - first % PERIOD) % PERIOD {
                0 => 1.2,
                1 => 0.4,
                2 | 3 => -0.3,
                _ => 0.0,
            };
            gain * spike + 0.05 * (2.0 * PI * 0.3 * k as f64 / FS).sin()
        })
        .collect()
}

/// What the page shows of the beats, read from its hooks and its pixels.
/// Each track: the markers' count and x (data-beats, data-beat-x) and the
/// centres of the columns of marker-amber ink in its top rows; the axis
/// ticks as (x on the tracks' canvases, seconds); the trend's hooks and
/// the rows and columns of its purple ink; the summary's heart-rate facts.
const BEATS_STATE: &str = r#"
const ratio = (c) => c.width / c.clientWidth;
function inkColumns(canvas, rows, match) {
  const r = ratio(canvas);
  const { data, width } = canvas.getContext('2d').getImageData(0, 0, canvas.width, Math.round(rows * r));
  const cols = new Uint8Array(width);
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] > 0 && match(data[i], data[i + 1], data[i + 2])) cols[(i / 4) % width] = 1;
  }
  // Runs of inked columns, each as its centre in CSS px.
  const centres = [];
  for (let x = 0; x < width; x++) {
    if (!cols[x]) continue;
    const start = x;
    while (x + 1 < width && cols[x + 1]) x++;
    centres.push((start + x + 1) / 2 / r);
  }
  return { centres, columns: cols.reduce((n, v) => n + v, 0) / r };
}
const amber = (r, g, b) => r > 180 && g > 100 && g < 190 && b < 90;
const purple = (r, g, b) => r > 100 && r < 190 && g < 120 && b > 130 && b > r + 15;
const plot = document.getElementById('plot');
const axis = document.getElementById('axis');
const tracks = [...document.querySelectorAll('#tracks .track')].map((t) => {
  const canvas = t.querySelector('canvas');
  // The markers are 8 px tall at the top of the track.
  const { centres } = inkColumns(canvas, 10, amber);
  return { lead: t.dataset.lead, beats: t.dataset.beats === undefined ? null : Number(t.dataset.beats),
    beat_x: (t.dataset.beatX || '').split(' ').filter((x) => x).map(Number), ink_x: centres,
    left: canvas.getBoundingClientRect().left };
});
const shift = axis.getBoundingClientRect().left - (tracks[0]?.left ?? 0);
const ticks = [...axis.querySelectorAll('.tick')].map((t) =>
  [parseFloat(t.style.left) + shift, parseFloat(t.textContent.replace(/,/g, ''))]);
const hr = document.getElementById('heart-rate');
const r = ratio(hr);
const { data, width, height } = hr.getContext('2d').getImageData(0, 0, hr.width, hr.height);
const rows = [];
for (let y = 0; y < height; y++) {
  for (let x = 0; x < width; x++) {
    const i = 4 * (y * width + x);
    if (data[i + 3] > 0 && purple(data[i], data[i + 1], data[i + 2])) { rows.push((y + 0.5) / r); break; }
  }
}
const facts = {};
for (const dd of document.querySelectorAll('#ecg-facts dd[data-fact]')) {
  facts[dd.dataset.fact] = { value: dd.dataset.value, text: dd.textContent };
}
const beats = {};
for (const td of document.querySelectorAll('#counts td[data-field="beats"]')) beats[td.dataset.lead] = Number(td.dataset.value);
return { state: plot.dataset.state, fetches: Number(plot.dataset.fetches),
  from_s: Number(plot.dataset.fromS), to_s: Number(plot.dataset.toS),
  status: document.getElementById('ecg-view').dataset.status,
  tracks, ticks, facts, beats,
  trend: { lead: hr.dataset.lead, points: Number(hr.dataset.points),
    hi: Number(hr.dataset.hi), lo: Number(hr.dataset.lo),
    hi_y: Number(hr.dataset.hiY), lo_y: Number(hr.dataset.loY),
    ink_rows: rows, ink_columns: inkColumns(hr, hr.clientHeight, purple).columns,
    width: hr.clientWidth } };
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ecg_page_marks_each_beat_of_the_range_shown_and_draws_the_heart_rate_trend()
-> anyhow::Result<()> {
    let browser = Browser::start("dashboard-beats").await?;
    let rec = synthetic(
        FS,
        vec![("I", rhythm(100, 1.0)), ("II", rhythm(100 + LAG, 0.8))],
    );
    let stack = Stack::start("dashboard_beats").await?;
    let demo = stack.token("demo", "demo-secret", None).await?;
    let id = open_ecg(&stack, &demo, &rec.create_body("dashboard-beats")).await?;
    let half = rec.chunks() / 2;
    send(&stack, &demo, id, &rec, 0..half).await?;
    let outcome = AssertUnwindSafe(async {
        // Opened mid-stream: the page must follow the stream, beats included.
        open_ecg_page(&browser, &stack, id, rec.leads.len()).await?;
        let first = (half * crate::CHUNK) as f64 / FS;
        browser
            .wait_until(
                WAIT,
                "the first half plotted with its beats",
                &format!(
                    r#"const p = document.getElementById('plot');
                       return p.dataset.state === 'ready' && Number(p.dataset.toS) === {first}
                         && [...document.querySelectorAll('#tracks .track')].every((t) => Number(t.dataset.beats) > 0);"#
                ),
            )
            .await?;
        send(&stack, &demo, id, &rec, half..rec.chunks()).await?;
        let insights = stack
            .insights_when_complete(&demo, id, Duration::from_secs(60))
            .await?;
        check(&browser, &stack, &demo, id, &insights).await
    })
    .catch_unwind()
    .await;
    finish(browser, outcome).await?;
    stack.stop().await
}

async fn check(
    browser: &Browser,
    stack: &Stack,
    token: &str,
    id: Uuid,
    insights: &Value,
) -> anyhow::Result<()> {
    let bpm = insights["heart_rate_bpm"]
        .as_f64()
        .context("heart_rate_bpm")?;
    assert!((bpm - 75.0).abs() < 0.5, "the API's heart rate: {insights}");
    let trend_lead = insights["heart_rate_lead"]
        .as_str()
        .context("heart_rate_lead")?;
    let all = [
        ("I", beats(stack, token, id, "I").await?),
        ("II", beats(stack, token, id, "II").await?),
    ];
    for (lead, b) in &all {
        // 37 spikes, the first at 0.4 s; the detector may leave out some
        // of the first while it learns.
        assert!(
            (30..=37).contains(&b.len()),
            "lead {lead}: {} beats",
            b.len()
        );
        assert_eq!(insights["leads"][lead]["beats"], b.len(), "lead {lead}");
    }

    // The complete ECG, as the page followed it: every beat marked.
    let seconds = SAMPLES as f64 / FS;
    browser
        .wait_until(
            WAIT + Duration::from_secs(30),
            "the complete ECG with its beats and heart rate",
            &format!(
                r#"const p = document.getElementById('plot');
                   const hr = document.getElementById('heart-rate');
                   const fact = document.querySelector('#ecg-facts dd[data-fact="heart_rate_bpm"]');
                   return document.getElementById('ecg-view').dataset.status === 'complete'
                     && p.dataset.state === 'ready' && Number(p.dataset.toS) === {seconds}
                     && hr.dataset.lead === '{trend_lead}' && Number(hr.dataset.points) > 0
                     && !!fact && fact.dataset.value !== ''
                     && [...document.querySelectorAll('#tracks .track')].map((t) => Number(t.dataset.beats)).join() === '{}';"#,
                all.iter()
                    .map(|(_, b)| b.len().to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        )
        .await?;
    let page = browser.eval(BEATS_STATE).await?;
    browser
        .screenshot_full_page(&target_dir().join("dashboard-beats.png"))
        .await?;
    assert_eq!(page["from_s"].as_f64(), Some(0.0));
    let whole = assert_beats_shown(&page, &all, trend_lead)?;
    assert_eq!(whole, all[0].1.len());

    // The summary: the API's heart rate, SDNN and RMSSD, and beats per lead.
    let hrv = &insights["leads"][trend_lead]["heart_rate"];
    for (fact, expected) in [
        ("heart_rate_bpm", &insights["heart_rate_bpm"]),
        ("sdnn_ms", &hrv["sdnn_ms"]),
        ("rmssd_ms", &hrv["rmssd_ms"]),
    ] {
        let shown = &page["facts"][fact];
        let value: Option<f64> = shown["value"].as_str().and_then(|v| v.parse().ok());
        // The API's statistics are sums over the beats in whatever order
        // ClickHouse reads them, so two calls may differ in the last bits
        // (an SDNN of 2e-13 ms, then 3e-13): equal to a millionth of a ms.
        let close = match (value, expected.as_f64()) {
            (Some(v), Some(e)) => (v - e).abs() <= 1e-6,
            (v, e) => v == e,
        };
        assert!(close, "{fact}: {shown}, the API says {expected}");
    }
    let text = page["facts"]["heart_rate_bpm"]["text"]
        .as_str()
        .unwrap_or("");
    assert!(
        text.starts_with("75.0 bpm") && text.contains(&format!("lead {trend_lead}")),
        "{text}"
    );
    for (lead, b) in &all {
        assert_eq!(
            page["beats"][lead],
            b.len(),
            "lead {lead}'s beats in the table"
        );
    }

    // Zoom into the middle: the markers and the trend follow the range.
    let c = &browser.client;
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
    let fetches = page["fetches"].as_u64().context("fetches")?;
    browser
        .wait_until(
            WAIT,
            "the zoomed plot",
            &format!(
                r#"const p = document.getElementById('plot');
                   return p.dataset.state === 'ready' && Number(p.dataset.fetches) > {fetches};"#
            ),
        )
        .await?;
    let zoomed = browser.eval(BEATS_STATE).await?;
    browser
        .screenshot_full_page(&target_dir().join("dashboard-beats-zoomed.png"))
        .await?;
    let (from, to) = (
        zoomed["from_s"].as_f64().context("from_s")?,
        zoomed["to_s"].as_f64().context("to_s")?,
    );
    assert!(
        from > 1.0 && to < seconds - 1.0 && to - from < seconds / 3.0,
        "zoomed to {from}..{to}"
    );
    let shown = assert_beats_shown(&zoomed, &all, trend_lead)?;
    assert!(
        shown >= 3 && shown < whole / 2,
        "{shown} of {whole} beats in {from}..{to}"
    );
    Ok(())
}

/// A beat as the API lists it: (t_s, rr_ms).
type Beat = (f64, Option<f64>);

/// One lead's beats as the API lists them, every page.
async fn beats(stack: &Stack, token: &str, id: Uuid, lead: &str) -> anyhow::Result<Vec<Beat>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        // Ten a page, so the paging is used too. The leads' names and the
        // cursor (URL-safe base64) need no escaping.
        let mut url = format!("{}/v1/ecgs/{id}/beats?lead={lead}&limit=10", stack.query);
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let r = stack.http.get(url).bearer_auth(token).send().await?;
        anyhow::ensure!(r.status() == 200, "beats of {lead}: {}", r.status());
        let page: Value = r.json().await?;
        for b in page["items"].as_array().context("items")? {
            out.push((b["t_s"].as_f64().context("t_s")?, b["rr_ms"].as_f64()));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return Ok(out),
        }
    }
}

/// Asserts that `page` marks exactly each lead's beats in its range, where
/// its axis puts them, and draws the trend of `trend_lead` at 75 bpm;
/// returns how many beats lead I has in the range.
fn assert_beats_shown(
    page: &Value,
    all: &[(&str, Vec<Beat>)],
    trend_lead: &str,
) -> anyhow::Result<usize> {
    let (from, to) = (
        page["from_s"].as_f64().context("from_s")?,
        page["to_s"].as_f64().context("to_s")?,
    );
    // The axis' own mapping from seconds to x, from its outermost ticks.
    let ticks: Vec<(f64, f64)> = serde_json::from_value(page["ticks"].clone())?;
    anyhow::ensure!(ticks.len() >= 2, "ticks: {}", page["ticks"]);
    let ((x0, t0), (x1, t1)) = (ticks[0], ticks[ticks.len() - 1]);
    let x_of = |t: f64| x0 + (t - t0) * (x1 - x0) / (t1 - t0);

    let tracks = page["tracks"].as_array().context("tracks")?;
    assert_eq!(tracks.len(), all.len());
    for (track, (lead, beats)) in tracks.iter().zip(all) {
        assert_eq!(track["lead"], *lead);
        let expected: Vec<f64> = beats
            .iter()
            .map(|&(t, _)| t)
            .filter(|&t| from <= t && t <= to)
            .collect();
        let hooks: Vec<f64> = serde_json::from_value(track["beat_x"].clone())?;
        let ink: Vec<f64> = serde_json::from_value(track["ink_x"].clone())?;
        assert_eq!(
            track["beats"],
            expected.len(),
            "lead {lead}: markers counted in {from}..{to}"
        );
        assert_eq!(
            hooks.len(),
            expected.len(),
            "lead {lead}: markers listed in {from}..{to}"
        );
        assert_eq!(
            ink.len(),
            expected.len(),
            "lead {lead}: markers drawn in {from}..{to}: {ink:?}"
        );
        for ((t, hook), drawn) in expected.iter().zip(&hooks).zip(&ink) {
            let x = x_of(*t);
            assert!(
                (hook - x).abs() < 0.75,
                "lead {lead}: the beat at {t} s listed at x {hook}, the axis puts it at {x}"
            );
            assert!(
                (drawn - x).abs() < 1.5,
                "lead {lead}: the beat at {t} s drawn at x {drawn}, the axis puts it at {x}"
            );
        }
    }

    // The trend: one value per RR interval of its lead in the range, all
    // drawn at 75 bpm on the scale it labels.
    let trend = &page["trend"];
    assert_eq!(trend["lead"], trend_lead, "{trend}");
    let (_, beats) = all
        .iter()
        .find(|(l, _)| *l == trend_lead)
        .context("trend lead")?;
    let rr: Vec<f64> = beats
        .iter()
        .filter(|&&(t, rr)| from <= t && t <= to && rr.is_some())
        .map(|&(t, _)| t)
        .collect();
    assert_eq!(trend["points"], rr.len(), "{trend}");
    let num = |k: &str| {
        trend[k]
            .as_f64()
            .with_context(|| format!("trend {k}: {trend}"))
    };
    let (hi, lo, hi_y, lo_y) = (num("hi")?, num("lo")?, num("hi_y")?, num("lo_y")?);
    assert!(lo < 75.0 && 75.0 < hi, "the trend's scale: {trend}");
    let rows: Vec<f64> = serde_json::from_value(trend["ink_rows"].clone())?;
    assert!(!rows.is_empty(), "no trend drawn: {trend}");
    for row in rows {
        let at = hi - (row - hi_y) / (lo_y - hi_y) * (hi - lo);
        assert!(
            (at - 75.0).abs() < 1.0,
            "trend ink at row {row}, {at} bpm: {trend}"
        );
    }
    // A line from its first value to its last, at their times.
    let span = x_of(rr[rr.len() - 1]) - x_of(rr[0]);
    let columns = num("ink_columns")?;
    assert!(
        span - 2.0 <= columns && columns <= span + 6.0,
        "trend ink in {columns} px, its values {span} px apart"
    );
    Ok(all[0]
        .1
        .iter()
        .filter(|&&(t, _)| from <= t && t <= to)
        .count())
}
