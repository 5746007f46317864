//! The dashboard in a real headless Chromium, one scenario per module:
//! - [`ecg_page`]: a person signs in with the demo client, finds the ECG
//!   the test streamed in the list, opens it, sees every lead plotted and
//!   the zero crossings per lead and per window, and zooms into a time range.
//!   The counts on screen must equal both the API's and one pass over the
//!   signal that was sent (computed with `ecg-signal`).
//! - [`live`]: an ECG page opened mid-stream follows the stream by itself
//!   until the ECG is complete.
//! - [`extremes`]: signals at the ends of the `f64` range (±1e300, the
//!   largest finite values, subnormals) are drawn to scale with short labels.
//! - [`beats`]: a steady 75 bpm rhythm streamed while its page is open:
//!   each lead's beats marked where they are, before and after a zoom, and
//!   the heart-rate trend and summary at 75 bpm.
//! - [`overview`]: the throughput sparkline is drawn at the first load, and
//!   sample rates are shown as declared (128.5 Hz is not rounded).
//!
//! Screenshots go to target/dashboard-*.png; with
//! `ECG_UPDATE_DOCS_SCREENSHOT=1` the ECG page is also saved as
//! docs/dashboard.png, the picture in the README.

mod beats;
mod ecg_page;
mod extremes;
mod live;
mod overview;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use ecg_e2e::Stack;
use ecg_e2e::browser::Browser;
use fantoccini::Locator;
use serde_json::{Value, json};
use uuid::Uuid;

const CHUNK: usize = 1000;
const WAIT: Duration = Duration::from_secs(30);

struct Recording {
    fs: f64,
    units: String,
    leads: Vec<String>,
    signals: BTreeMap<String, Vec<f64>>,
    expected: BTreeMap<String, u64>,
}

impl Recording {
    fn samples(&self) -> usize {
        self.signals[&self.leads[0]].len()
    }

    /// How many chunks of [`CHUNK`] samples the recording is sent in.
    fn chunks(&self) -> usize {
        self.samples().div_ceil(CHUNK)
    }

    /// The body that opens an ECG for this recording.
    fn create_body(&self, device_id: &str) -> Value {
        json!({"device_id": device_id, "sample_rate_hz": self.fs,
               "leads": self.leads, "units": self.units})
    }
}

/// A made-up recording in mV: `leads` with their signals, all as long.
fn synthetic(fs: f64, leads: Vec<(&str, Vec<f64>)>) -> Recording {
    Recording {
        fs,
        units: "mV".into(),
        leads: leads.iter().map(|(l, _)| l.to_string()).collect(),
        signals: leads.into_iter().map(|(l, s)| (l.to_string(), s)).collect(),
        expected: BTreeMap::new(),
    }
}

/// A triangle wave of `n` samples between exactly `-peak` and `peak`,
/// 40 samples per period.
fn triangle(n: usize, peak: f64) -> Vec<f64> {
    (0..n)
        .map(|k| {
            // 1 - |k mod 40 - 20| / 10 is in -1..=1 and hits both ends exactly.
            let phase = (k % 40) as f64 - 20.0;
            peak * (1.0 - phase.abs() / 10.0)
        })
        .collect()
}

fn recording() -> anyhow::Result<Recording> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/ecg");
    let data: Value = serde_json::from_slice(&std::fs::read(dir.join("ecgplot_12lead.json"))?)?;
    let expected: Value =
        serde_json::from_slice(&std::fs::read(dir.join("ecgplot_12lead.expected.json"))?)?;
    Ok(Recording {
        fs: data["meta"]["fs_hz"].as_f64().context("fs_hz")?,
        units: data["meta"]["units"].as_str().unwrap_or("mV").to_string(),
        leads: serde_json::from_value(data["meta"]["leads"].clone())?,
        signals: serde_json::from_value(data["signals"].clone())?,
        expected: serde_json::from_value(expected["zero_crossings_per_lead"].clone())?,
    })
}

async fn open_ecg(stack: &Stack, token: &str, body: &Value) -> anyhow::Result<Uuid> {
    let r = stack
        .http
        .post(format!("{}/v1/ecgs", stack.ingest))
        .bearer_auth(token)
        .json(body)
        .send()
        .await?;
    anyhow::ensure!(r.status() == 202, "opening an ECG: {}", r.status());
    let created: Value = r.json().await?;
    Ok(created["id"].as_str().context("id")?.parse()?)
}

/// Sends chunks `seqs` of the recording as JSON, [`CHUNK`] samples each;
/// the recording's last chunk says it is final.
async fn send(
    stack: &Stack,
    token: &str,
    id: Uuid,
    rec: &Recording,
    seqs: std::ops::Range<usize>,
) -> anyhow::Result<()> {
    let n = rec.samples();
    for seq in seqs {
        let (start, end) = (seq * CHUNK, ((seq + 1) * CHUNK).min(n));
        let samples: BTreeMap<&String, &[f64]> = rec
            .leads
            .iter()
            .map(|l| (l, &rec.signals[l][start..end]))
            .collect();
        let r = stack
            .http
            .post(format!("{}/v1/ecgs/{id}/chunks", stack.ingest))
            .bearer_auth(token)
            .json(&json!({"seq": seq, "samples": samples, "final": end == n}))
            .send()
            .await?;
        anyhow::ensure!(r.status() == 202, "chunk {seq}: {}", r.status());
    }
    Ok(())
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    )
}

/// A script's function `blueInk(canvas)`: how many pixel columns and rows
/// of the canvas hold signal-blue ink, the trace really drawn (the grid, the
/// zero line, the labels and the green of the sparkline are other colours).
/// Many rows means a shape; one or two, a flat line. A macro, so that
/// scripts can start with it through `concat!`.
macro_rules! blue_ink {
    () => {
        r#"
function blueInk(canvas) {
  const { data, width, height } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
  const cols = new Uint8Array(width);
  const rows = new Uint8Array(height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = 4 * (y * width + x);
      if (data[i + 3] > 0 && data[i + 2] > data[i] + 60 && data[i + 2] > data[i + 1] + 30) {
        cols[x] = 1;
        rows[y] = 1;
      }
    }
  }
  const sum = (a) => a.reduce((n, v) => n + v, 0);
  return { columns: sum(cols), rows: sum(rows) };
}
"#
    };
}
pub(crate) use blue_ink;

/// What the ECG page shows, read from its DOM in one go.
const PAGE_STATE: &str = concat!(
    blue_ink!(),
    r#"
const plot = document.getElementById('plot');
const tracks = [...document.querySelectorAll('#tracks .track')].map((t) => {
  const canvas = t.querySelector('canvas');
  const { columns, rows } = blueInk(canvas);
  return { lead: t.dataset.lead, points: Number(t.dataset.points),
    width: canvas.clientWidth, height: canvas.clientHeight, ink: columns, ink_rows: rows,
    top: t.dataset.top, bottom: t.dataset.bottom };
});
const counts = {};
for (const row of document.querySelectorAll('#counts tbody tr[data-lead]')) {
  const c = {};
  for (const td of row.querySelectorAll('td[data-field]')) c[td.dataset.field] = Number(td.dataset.value);
  counts[row.dataset.lead] = c;
}
const windows = {};
for (const td of document.querySelectorAll('#windows td[data-lead]')) {
  (windows[td.dataset.lead] ||= [])[Number(td.dataset.window)] = Number(td.textContent.replace(/,/g, ''));
}
return { state: plot.dataset.state, fetches: Number(plot.dataset.fetches),
  from_s: Number(plot.dataset.fromS), to_s: Number(plot.dataset.toS),
  bucket_samples: Number(plot.dataset.bucketSamples),
  ticks: [...document.querySelectorAll('#axis .tick')].map((t) => t.textContent),
  status: document.getElementById('ecg-view').dataset.status,
  window: document.getElementById('windows').dataset.window,
  total: Number(document.getElementById('total-crossings')?.dataset.value),
  tracks, counts, windows };
"#
);

/// Ends the browser session whatever `outcome` was (Chromium outlives a
/// killed chromedriver, so even a panic must close it first), with a
/// screenshot of the page when the test failed; then resumes the panic or
/// returns the error.
async fn finish(
    browser: Browser,
    outcome: std::thread::Result<anyhow::Result<()>>,
) -> anyhow::Result<()> {
    if !matches!(outcome, Ok(Ok(()))) {
        // The state the page was in, for whoever reads the failure.
        let _ = browser
            .screenshot(&target_dir().join("dashboard-failure.png"))
            .await;
    }
    browser.close().await?;
    match outcome {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Opens the ECG page of `id` by its link, signs in as the demo client and
/// waits until every one of its `leads` tracks is plotted and counted.
async fn open_ecg_page(
    browser: &Browser,
    stack: &Stack,
    id: Uuid,
    leads: usize,
) -> anyhow::Result<()> {
    browser
        .client
        .goto(&format!("{}/dashboard#/ecg/{id}", stack.query))
        .await?;
    browser
        .client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Id("client-id"))
        .await?;
    sign_in(browser, "demo", "demo-secret").await?;
    browser
        .wait_until(
            WAIT,
            "the plot and the counts",
            &format!(
                r#"const p = document.getElementById('plot');
                   return p.dataset.state === 'ready'
                     && document.querySelectorAll('#tracks .track[data-top]').length === {leads}
                     && document.querySelectorAll('#counts tbody tr[data-lead]').length === {leads};"#
            ),
        )
        .await
}

/// Types the credentials into the sign-in form and submits it.
async fn sign_in(browser: &Browser, client: &str, secret: &str) -> anyhow::Result<()> {
    let c = &browser.client;
    let id = c.find(Locator::Id("client-id")).await?;
    id.clear().await?;
    id.send_keys(client).await?;
    let field = c.find(Locator::Id("client-secret")).await?;
    field.clear().await?;
    field.send_keys(secret).await?;
    c.find(Locator::Id("signin-submit")).await?.click().await?;
    Ok(())
}
