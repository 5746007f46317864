//! Every read endpoint of the query API hides other tenants' data (404, or
//! an answer without it), refuses a token without `ecg:read` (403) and a
//! request without a token (401).

use ecg_e2e::Stack;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_endpoint_hides_other_tenants_and_checks_the_token() -> anyhow::Result<()> {
    let stack = Stack::start("query_tenancy").await?;
    let demo = stack.token("demo", "demo-secret", None).await?;
    let other = stack.token("other", "other-secret", None).await?;
    let write_only = stack
        .token("demo", "demo-secret", Some("ecg:write"))
        .await?;
    let open = |device: &str| json!({"device_id": device, "sample_rate_hz": 100, "leads": ["I"]});
    let mine = stack.open_ecg(&demo, open("both")).await?;
    let solo = stack.open_ecg(&demo, open("demo-only")).await?;
    let theirs = stack.open_ecg(&other, open("both")).await?;
    stack
        .send_chunk(&demo, mine, 0, json!({"I": [1.0, -1.0, 1.0, -1.0]}), true)
        .await?;
    stack
        .send_chunk(&demo, solo, 0, json!({"I": [1.0]}), false)
        .await?;
    stack
        .send_chunk(&other, theirs, 0, json!({"I": [2.0, 2.0]}), true)
        .await?;
    stack.wait_complete(&demo, mine, 4).await?;
    stack.wait_complete(&other, theirs, 2).await?;

    let paths = [
        "/v1/ecgs".to_string(),
        format!("/v1/ecgs/{mine}"),
        format!("/v1/ecgs/{mine}/insights"),
        format!("/v1/ecgs/{mine}/insights?window=1s"),
        format!("/v1/ecgs/{mine}/samples"),
        "/v1/devices/both/insights?bucket=1d".to_string(),
        "/v1/streams/active?within_s=3600".to_string(),
        "/v1/pipeline".to_string(),
    ];
    for path in &paths {
        let (code, body) = stack.get_json(None, path).await?;
        assert_eq!(code, 401, "{path} without a token: {body}");
        let (code, body) = stack.get_json(Some("not-a-token"), path).await?;
        assert_eq!(code, 401, "{path} with a bad token: {body}");
        let (code, body) = stack.get_json(Some(&write_only), path).await?;
        assert_eq!(code, 403, "{path} without ecg:read: {body}");
        let (code, body) = stack.get_json(Some(&demo), path).await?;
        assert_eq!(code, 200, "{path} for its owner: {body}");
    }

    // Another tenant's ECG is not found, whatever the endpoint.
    for suffix in ["", "/insights", "/insights?window=1s", "/samples?lead=I"] {
        let (code, body) = stack
            .get_json(Some(&other), &format!("/v1/ecgs/{mine}{suffix}"))
            .await?;
        assert_eq!(code, 404, "{suffix}: {body}");
        assert!(!body.to_string().contains("\"I\""), "{body}");
    }
    let (code, _) = stack
        .get_json(Some(&other), "/v1/devices/demo-only/insights")
        .await?;
    assert_eq!(code, 404, "a device only the other tenant has");

    // Lists and aggregates show the caller's own data only.
    let text = |v: &Value| v.to_string();
    let (_, list) = stack.get_json(Some(&other), "/v1/ecgs").await?;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["items"][0]["id"], theirs.to_string());
    let (_, device) = stack
        .get_json(Some(&other), "/v1/devices/both/insights?bucket=1d")
        .await?;
    let samples: u64 = device["buckets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| b["samples"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(samples, 2, "only its own ECG's samples: {device}");
    let (_, active) = stack
        .get_json(Some(&other), "/v1/streams/active?within_s=3600")
        .await?;
    assert!(!text(&active).contains(&mine.to_string()), "{active}");
    assert!(text(&active).contains(&theirs.to_string()), "{active}");
    let (_, pipeline) = stack.get_json(Some(&other), "/v1/pipeline").await?;
    assert_eq!(
        pipeline["ecgs"],
        json!({"receiving": 0, "processing": 0, "complete": 1, "failed": 0})
    );
    let (_, pipeline) = stack.get_json(Some(&demo), "/v1/pipeline").await?;
    assert_eq!(
        pipeline["ecgs"],
        json!({"receiving": 1, "processing": 0, "complete": 1, "failed": 0})
    );
    stack.stop().await
}
