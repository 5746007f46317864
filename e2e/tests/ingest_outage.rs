//! The gateway with ClickHouse out of reach (a proxy in between, cut): what
//! needs the registry (opening an ECG, a chunk of an ECG the gateway has not
//! seen) answers 503 with `Retry-After`, never 500, and produces nothing;
//! what does not (a chunk of an ECG it knows) goes on. Once ClickHouse is
//! back, a create retried with its `Idempotency-Key` opens its ECG once.

use std::time::Duration;

use anyhow::Context as _;
use ecg_clickhouse::EcgRow;
use ecg_e2e::proxy::Proxy;
use ecg_e2e::{Stack, clickhouse_url, kafka_brokers};
use ecg_schemas::Units;
use serde_json::{Value, json};
use uuid::Uuid;

/// A request's status, `Retry-After` and JSON body.
async fn answer(request: reqwest::RequestBuilder) -> anyhow::Result<(u16, Option<String>, Value)> {
    let r = request.send().await?;
    let status = r.status().as_u16();
    let retry_after = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap_or_default().to_string());
    let body = r.bytes().await?;
    Ok((
        status,
        retry_after,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clickhouse_out_of_reach_is_503_with_retry_after_and_produces_nothing() -> anyhow::Result<()>
{
    let target = clickhouse_url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let proxy = Proxy::start(&target).await?;
    let proxied = proxy.url();
    let stack = Stack::start_with("ch_outage", &kafka_brokers(), |c| {
        c.clickhouse.url = proxied;
        c.registry.timeout_ms = 2_000;
    })
    .await?;
    let token = stack.token("demo", "demo-secret", None).await?;
    let post = |path: &str| {
        stack
            .http
            .post(format!("{}{path}", stack.ingest))
            .bearer_auth(&token)
    };
    let chunk = json!({"seq": 0, "samples": {"I": [0.1, 0.2, 0.3]}});

    // An ECG this gateway opened (and knows), and one registered elsewhere
    // (another gateway's, written straight to the registry).
    let (status, _, opened) = answer(post("/v1/ecgs").json(&json!({
        "device_id": "d", "sample_rate_hz": 500, "leads": ["I"]
    })))
    .await?;
    anyhow::ensure!(status == 202, "{status} {opened}");
    let known: Uuid = opened["id"].as_str().context("id")?.parse()?;
    let unseen = Uuid::new_v4();
    ecg_clickhouse::ecgs::insert(
        &stack.clickhouse.client(),
        &EcgRow {
            tenant: "demo".into(),
            ecg_id: unseen,
            device_id: "d".into(),
            sample_rate_hz: 500.0,
            leads: vec!["I".into()],
            units: Units::Millivolts,
            adc_gain: Vec::new(),
            adc_baseline: Vec::new(),
            started_at: time::OffsetDateTime::now_utc(),
            final_seq: None,
            signal_digest: String::new(),
        },
    )
    .await?;
    let before = stack.messages_in_topic().await?;

    proxy.cut();
    let with_signal = json!({
        "device_id": "d", "sample_rate_hz": 500, "leads": ["I"],
        "signal": {"I": [0.5, 0.25, 0.0, -0.25]}
    });
    let key = Uuid::new_v4().to_string();
    let refused = [
        (
            "a create",
            post("/v1/ecgs").json(&json!({
                "device_id": "d", "sample_rate_hz": 500, "leads": ["I"]
            })),
        ),
        (
            "a create with its signal",
            post("/v1/ecgs").json(&with_signal),
        ),
        (
            "a keyed create with its signal",
            post("/v1/ecgs")
                .header("Idempotency-Key", &key)
                .json(&with_signal),
        ),
        (
            "a chunk of an ECG the gateway has not seen",
            post(&format!("/v1/ecgs/{unseen}/chunks")).json(&chunk),
        ),
    ];
    for (what, request) in refused {
        let started = std::time::Instant::now();
        let (status, retry_after, body) = answer(request).await?;
        println!("{what}: {status} in {:?}: {body}", started.elapsed());
        assert_eq!(status, 503, "{what}: {body}");
        assert_eq!(retry_after.as_deref(), Some("5"), "{what}");
        assert_eq!(body["error"], "unavailable", "{what}: {body}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{what} took {:?}",
            started.elapsed()
        );
    }
    assert_eq!(
        stack.messages_in_topic().await?,
        before,
        "a refused request produced"
    );
    // A chunk of an ECG the gateway knows needs no registry.
    let (status, _, body) = answer(post(&format!("/v1/ecgs/{known}/chunks")).json(&chunk)).await?;
    assert_eq!(status, 202, "{body}");
    assert_eq!(stack.messages_in_topic().await?, before + 1);
    let (status, readiness) = {
        let r = stack
            .http
            .get(format!("{}/readyz", stack.ingest))
            .send()
            .await?;
        (r.status().as_u16(), r.json::<Value>().await?)
    };
    assert_eq!(status, 503, "{readiness}");
    assert_ne!(readiness["clickhouse"], "ok", "{readiness}");

    // Back: the keyed create, retried, opens its ECG once.
    proxy.restore();
    let keyed = || {
        post("/v1/ecgs")
            .header("Idempotency-Key", &key)
            .json(&with_signal)
    };
    let (status, _, first) = answer(keyed()).await?;
    assert_eq!(status, 202, "{first}");
    let (status, _, again) = answer(keyed()).await?;
    assert_eq!(status, 202, "{again}");
    assert_eq!(first, again);
    assert_eq!(stack.messages_in_topic().await?, before + 2);
    let (status, _, body) = answer(post(&format!("/v1/ecgs/{unseen}/chunks")).json(&chunk)).await?;
    assert_eq!(status, 202, "{body}");
    stack.stop().await
}
