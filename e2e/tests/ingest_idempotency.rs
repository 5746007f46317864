//! `Idempotency-Key` on `POST /v1/ecgs`, through the whole pipeline: a
//! create retried with the same key and body opens one ECG with one set of
//! chunks, also through a restarted gateway and another instance; the key
//! with another body is refused; keys are per client.

use std::time::Duration;

use anyhow::Context as _;
use ecg_e2e::{Stack, wait_for};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A gateway of the stack's, run by the test so it can stop it.
struct Gateway {
    url: String,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Gateway {
    async fn start(stack: &Stack) -> anyhow::Result<Gateway> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let mut config = ecg_ingest::Config::default();
        config.http.addr = listener.local_addr()?;
        config.clickhouse = stack.clickhouse.clone();
        config.kafka.brokers = stack.brokers.clone();
        config.kafka.topic = stack.topic.clone();
        config.auth.issuer = stack.query.clone();
        config.auth.jwks_url = format!("{}/.well-known/jwks.json", stack.query);
        let url = format!("http://{}", config.http.addr);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(ecg_ingest::run_with_listener(
            config,
            listener,
            shutdown.clone(),
        ));
        wait_for(Duration::from_secs(30), "the gateway to start", || async {
            Ok(stack
                .http
                .get(format!("{url}/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success()))
        })
        .await?;
        Ok(Gateway {
            url,
            shutdown,
            task,
        })
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.await?
    }
}

/// `POST /v1/ecgs` with `key`: status, whether it says it is a replay, and
/// the JSON body.
async fn create(
    stack: &Stack,
    gateway: &str,
    token: &str,
    key: &str,
    body: &Value,
) -> anyhow::Result<(u16, bool, Value)> {
    let r = stack
        .http
        .post(format!("{gateway}/v1/ecgs"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await?;
    let status = r.status().as_u16();
    let replayed = r
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    Ok((status, replayed, r.json().await?))
}

/// 2,500 samples on two leads: two chunks of 2,000 and 500. No
/// `started_at`: the gateway's clock at the first attempt is kept.
fn recording(shift: f64) -> Value {
    let lead = |k: f64| -> Vec<f64> {
        (0..2_500)
            .map(|i| (i as f64 * 0.03 + k + shift).sin())
            .collect()
    };
    json!({
        "device_id": "holter-9",
        "sample_rate_hz": 500,
        "leads": ["I", "II"],
        "signal": {"I": lead(0.0), "II": lead(1.0)},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retried_create_opens_one_ecg_through_restarts_and_instances() -> anyhow::Result<()> {
    let stack = Stack::start("idempotency").await?;
    let token = stack.token("demo", "demo-secret", None).await?;
    let key = Uuid::new_v4().to_string();
    let body = recording(0.0);

    // The first create, through a gateway that is then stopped.
    let first = Gateway::start(&stack).await?;
    let (status, replayed, accepted) = create(&stack, &first.url, &token, &key, &body).await?;
    anyhow::ensure!(status == 202, "{status} {accepted}");
    assert!(!replayed);
    assert_eq!(accepted["chunks"], 2);
    let id: Uuid = accepted["id"].as_str().context("id")?.parse()?;
    // Watermarks, not chunks: the broker may count a batch of them once.
    let produced = stack.messages_in_topic().await?;
    assert!(produced > 0);

    // Retried through the same gateway, a restarted one, and the stack's
    // own: the same 202, nothing produced.
    let (status, replayed, again) = create(&stack, &first.url, &token, &key, &body).await?;
    assert_eq!((status, replayed), (202, true), "{again}");
    assert_eq!(again, accepted);
    first.stop().await?;
    let restarted = Gateway::start(&stack).await?;
    for gateway in [&restarted.url, &stack.ingest] {
        let (status, replayed, again) = create(&stack, gateway, &token, &key, &body).await?;
        assert_eq!((status, replayed), (202, true), "{gateway}: {again}");
        assert_eq!(again, accepted, "{gateway}");
    }
    assert_eq!(stack.messages_in_topic().await?, produced, "produced again");

    // The same key with another body: 422 naming the ECG the key opened.
    let (status, _, refused) =
        create(&stack, &restarted.url, &token, &key, &recording(0.5)).await?;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"], "idempotency_key_reused");
    assert_eq!(refused["field"], "Idempotency-Key");
    assert!(
        refused["message"]
            .as_str()
            .unwrap_or_default()
            .contains(&id.to_string()),
        "{refused}"
    );
    restarted.stop().await?;

    // One ECG, complete, every sample once.
    stack.wait_complete(&token, id, 5_000).await?;
    stack.assert_one_row_per_chunk(id).await?;
    let (code, list) = stack
        .get_json(Some(&token), "/v1/ecgs?device_id=holter-9")
        .await?;
    assert_eq!(code, 200, "{list}");
    let items = list["items"].as_array().context("items")?;
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["id"], id.to_string());

    // Keys are per client: another client's same key opens its own ECG.
    let other = stack.token("other", "other-secret", None).await?;
    let (status, replayed, theirs) = create(&stack, &stack.ingest, &other, &key, &body).await?;
    assert_eq!((status, replayed), (202, false), "{theirs}");
    assert_ne!(theirs["id"], accepted["id"]);
    stack.stop().await
}
