//! The deployment's shape without Docker: two gateways behind a real nginx
//! (Debian's, configured from the shipped template, over TLS), query-api
//! behind the same nginx, and two processor processes in one consumer
//! group. Several 12-lead ECGs stream through nginx as chunks (out of
//! order, some twice) and one as a streamed `PUT .../signal` upload; every
//! ECG must come out exact, both gateways must have served traffic, and
//! both processors must have owned partitions.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use ecg_e2e::nginx::{Nginx, Site};
use ecg_e2e::process::ProcessorProcess;
use ecg_e2e::{Stack, kafka_brokers, wait_for};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use uuid::Uuid;

/// The real 12-lead ECG, `repeats` times over, rotated by `shift` samples.
fn real_signal(repeats: usize, shift: usize) -> anyhow::Result<(Vec<String>, Vec<Vec<f64>>)> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/ecg/ecgplot_12lead.json");
    let data: Value = serde_json::from_slice(&std::fs::read(path)?)?;
    let leads: Vec<String> = serde_json::from_value(data["meta"]["leads"].clone())?;
    let mut signals: BTreeMap<String, Vec<f64>> = serde_json::from_value(data["signals"].clone())?;
    let columns = leads
        .iter()
        .map(|l| {
            let mut s = signals.remove(l).context("lead")?;
            let shift = shift % s.len();
            s.rotate_left(shift);
            Ok(s.repeat(repeats))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok((leads, columns))
}

/// Sends `body` with `send`, retrying the 429s and 503s a loaded gateway may
/// answer, and returns the JSON of the 2xx answer.
async fn accepted(send: impl Fn() -> reqwest::RequestBuilder) -> anyhow::Result<Value> {
    for _ in 0..60 {
        let r = send().send().await?;
        match r.status().as_u16() {
            200..=299 => return Ok(r.json().await?),
            429 | 503 => tokio::time::sleep(Duration::from_millis(500)).await,
            other => anyhow::bail!("{other}: {}", r.text().await?),
        }
    }
    anyhow::bail!("still refused after 60 tries")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exact_through_nginx_two_gateways_and_two_processors() -> anyhow::Result<()> {
    let mut stack = Stack::start_without_processor("multi", &kafka_brokers()).await?;
    let second = stack.add_gateway().await?;
    let upstream = |url: &str| url.trim_start_matches("http://").to_string();
    let gateways = [upstream(&stack.ingest), upstream(&second)];
    let nginx = Nginx::start(Site::render(
        [&gateways[0], &gateways[1]],
        &upstream(&stack.query),
    )?)
    .await?;
    let http = nginx.client()?;
    let base = nginx.https.clone();

    let env = stack.processor_env();
    let mut processors = [
        ProcessorProcess::start(&env, "p1").await?,
        ProcessorProcess::start(&env, "p2").await?,
    ];
    for p in &processors {
        wait_for(
            Duration::from_secs(60),
            "both processors to own partitions",
            || async {
                Ok(
                    p.metric("ecg_processor_rebalances_total", "kind=\"assign\"")
                        .await?
                        >= 1.0,
                )
            },
        )
        .await
        .with_context(|| format!("log: {}", p.log.display()))?;
    }

    // Plain HTTP is redirected to HTTPS; /metrics is not exposed outside.
    let redirect = http.get(format!("{}/v1/ecgs/x", nginx.http)).send().await?;
    assert_eq!(redirect.status(), 301);
    assert!(
        redirect.headers()["location"]
            .to_str()?
            .starts_with("https://")
    );
    assert_eq!(
        http.get(format!("{base}/metrics")).send().await?.status(),
        404
    );

    // A token from query-api, through nginx.
    let token: Value = http
        .post(format!("{base}/oauth/token"))
        .basic_auth("demo", Some("demo-secret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await?
        .json()
        .await?;
    let token = token["access_token"]
        .as_str()
        .context("no access_token")?
        .to_string();

    // Six ECGs streamed as JSON chunks and one uploaded whole as CSV.
    let mut rng = StdRng::seed_from_u64(8);
    let mut ecgs = Vec::new();
    for i in 0..7 {
        let (leads, columns) = real_signal(2, 611 * i + 5)?;
        let open =
            json!({"device_id": format!("multi-{i}"), "sample_rate_hz": 500, "leads": leads});
        let created = accepted(|| {
            http.post(format!("{base}/v1/ecgs"))
                .bearer_auth(&token)
                .json(&open)
        })
        .await?;
        let id: Uuid = created["id"].as_str().context("id")?.parse()?;
        ecgs.push((id, leads, columns));
    }

    let mut sends = Vec::new();
    for (e, (_, _, columns)) in ecgs.iter().enumerate().take(6) {
        let n = columns[0].len();
        let mut cuts = vec![0];
        while cuts[cuts.len() - 1] < n {
            let next = cuts[cuts.len() - 1] + rng.random_range(100..800);
            cuts.push(next.min(n));
        }
        let chunks = cuts.len() - 1;
        for (seq, w) in cuts.windows(2).enumerate() {
            sends.push((e, seq, seq + 1 == chunks, w[0]..w[1]));
            // About one chunk in ten is sent twice.
            if rng.random_bool(0.1) {
                sends.push((e, seq, seq + 1 == chunks, w[0]..w[1]));
            }
        }
    }
    // Out of order, across ECGs and within each.
    for i in (1..sends.len()).rev() {
        let j = rng.random_range(i.saturating_sub(6)..=i);
        sends.swap(i, j);
    }
    let streams = sends.into_iter().map(|(e, seq, is_final, range)| {
        let (id, leads, columns) = &ecgs[e];
        let samples: BTreeMap<&String, &[f64]> = leads
            .iter()
            .zip(columns)
            .map(|(l, c)| (l, &c[range.clone()]))
            .collect();
        let body = json!({"seq": seq, "final": is_final, "samples": samples});
        let (http, url, token) = (
            http.clone(),
            format!("{base}/v1/ecgs/{id}/chunks"),
            token.clone(),
        );
        async move {
            accepted(|| http.post(&url).bearer_auth(&token).json(&body))
                .await
                .with_context(|| format!("ECG {e} chunk {seq}"))
        }
    });
    // Eight requests in flight at a time, as several devices at once.
    use futures::StreamExt as _;
    let results: Vec<_> = futures::stream::iter(streams)
        .buffer_unordered(8)
        .collect()
        .await;
    for r in results {
        r?;
    }

    // The seventh ECG: its whole signal as one streamed CSV body.
    let (id, leads, columns) = &ecgs[6];
    let mut csv = leads.join(",");
    csv.push('\n');
    for i in 0..columns[0].len() {
        let row: Vec<String> = columns.iter().map(|c| format!("{:?}", c[i])).collect();
        csv.push_str(&row.join(","));
        csv.push('\n');
    }
    let uploaded = accepted(|| {
        http.put(format!("{base}/v1/ecgs/{id}/signal"))
            .bearer_auth(&token)
            .header("content-type", "text/csv")
            .body(csv.clone())
    })
    .await?;
    assert_eq!(uploaded["id"], id.to_string());

    // Every ECG exact, read back through nginx from query-api.
    for (id, leads, columns) in &ecgs {
        let get = |path: String| {
            let (http, token) = (http.clone(), token.clone());
            async move {
                let r = http.get(path).bearer_auth(token).send().await?;
                anyhow::ensure!(r.status().is_success(), "{}", r.status());
                anyhow::Ok(r.json::<Value>().await?)
            }
        };
        wait_for(Duration::from_secs(120), "the ECG to complete", || async {
            let status = get(format!("{base}/v1/ecgs/{id}")).await?;
            anyhow::ensure!(status["status"] != "failed", "ECG failed: {status}");
            Ok(status["status"] == "complete")
        })
        .await
        .with_context(|| {
            format!(
                "ECG {id}; logs: {}, {}",
                processors[0].log.display(),
                processors[1].log.display()
            )
        })?;
        let insights = get(format!("{base}/v1/ecgs/{id}/insights")).await?;
        let columns: Vec<&[f64]> = columns.iter().map(Vec::as_slice).collect();
        stack.assert_exact(&insights, *id, leads, &columns).await?;
    }

    // nginx spread the writes over both gateways and sent reads to
    // query-api (its access log names each request's upstream).
    let served: Vec<usize> = gateways.iter().map(|g| nginx.requests_to(g)).collect();
    eprintln!("requests per gateway through nginx: {served:?}");
    for (g, n) in gateways.iter().zip(&served) {
        assert!(*n >= 20, "gateway {g} served {n} requests");
    }
    assert!(nginx.requests_to(&upstream(&stack.query)) >= ecgs.len());

    // Which processor wrote what depends on where the ECG ids hash to;
    // shown, not asserted (both owning partitions is asserted above).
    let mut written = Vec::new();
    for p in &processors {
        written.push(p.metric("ecg_processor_samples_written_total", "").await?);
    }
    eprintln!("samples written per processor: {written:?}");
    for p in &mut processors {
        p.stop(Duration::from_secs(15)).await?;
    }
    stack.stop().await
}
