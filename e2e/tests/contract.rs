//! The v1 contract's edges: authentication, scopes, tenant isolation, and
//! precise refusals that change nothing.

use ecg_e2e::Stack;
use serde_json::{Value, json};

async fn send(
    req: reqwest::RequestBuilder,
) -> anyhow::Result<(u16, reqwest::header::HeaderMap, Value)> {
    let r = req.send().await?;
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.json().await.unwrap_or(Value::Null);
    Ok((status, headers, body))
}

fn ecg_body() -> Value {
    json!({"device_id": "dev-1", "sample_rate_hz": 500, "leads": ["I", "II"]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn auth_scopes_and_tenants_are_enforced() -> anyhow::Result<()> {
    let stack = Stack::start("auth").await?;
    let demo = stack.token("demo", "demo-secret", None).await?;
    let other = stack.token("other", "other-secret", None).await?;
    let read_only = stack.token("demo", "demo-secret", Some("ecg:read")).await?;
    let create = format!("{}/v1/ecgs", stack.ingest);

    // No token: 401 with a Bearer challenge.
    let (status, headers, _) = send(stack.http.post(&create).json(&ecg_body())).await?;
    assert_eq!(status, 401);
    assert!(headers["www-authenticate"].to_str()?.starts_with("Bearer"));

    // A token without ecg:write cannot submit: 403 naming the scope.
    let (status, headers, _) = send(
        stack
            .http
            .post(&create)
            .bearer_auth(&read_only)
            .json(&ecg_body()),
    )
    .await?;
    assert_eq!(status, 403);
    assert!(headers["www-authenticate"].to_str()?.contains("ecg:write"));

    // A forged token is refused.
    let (status, _, _) = send(
        stack
            .http
            .post(&create)
            .bearer_auth(format!("{demo}x"))
            .json(&ecg_body()),
    )
    .await?;
    assert_eq!(status, 401);

    let (status, _, created) = send(
        stack
            .http
            .post(&create)
            .bearer_auth(&demo)
            .json(&ecg_body()),
    )
    .await?;
    assert_eq!(status, 202, "{created}");
    let id = created["id"].as_str().unwrap().to_string();

    // The owner sees it; another tenant gets 404 exactly like a missing ECG.
    let status_url = format!("{}/v1/ecgs/{id}", stack.query);
    let (status, _, mine) = send(stack.http.get(&status_url).bearer_auth(&demo)).await?;
    assert_eq!(
        (status, mine["status"].as_str()),
        (200, Some("receiving")),
        "{mine}"
    );
    for path in ["", "/insights"] {
        let (status, _, theirs) = send(
            stack
                .http
                .get(format!("{status_url}{path}"))
                .bearer_auth(&other),
        )
        .await?;
        let missing = format!("{}/v1/ecgs/{}{path}", stack.query, uuid::Uuid::new_v4());
        let (missing_status, _, missing_body) =
            send(stack.http.get(missing).bearer_auth(&other)).await?;
        assert_eq!((status, missing_status), (404, 404));
        assert_eq!(theirs["error"], missing_body["error"]);
    }
    // Nor can another tenant add chunks to it.
    let chunk = json!({"seq": 0, "samples": {"I": [1.0], "II": [1.0]}});
    let (status, _, _) = send(
        stack
            .http
            .post(format!("{}/v1/ecgs/{id}/chunks", stack.ingest))
            .bearer_auth(&other)
            .json(&chunk),
    )
    .await?;
    assert_eq!(status, 404);
    // Reading needs ecg:read.
    let write_only = stack
        .token("demo", "demo-secret", Some("ecg:write"))
        .await?;
    let (status, _, _) = send(stack.http.get(&status_url).bearer_auth(&write_only)).await?;
    assert_eq!(status, 403);

    // A bad client secret: 401 with an RFC 6749 error body.
    let (status, _, body) = send(
        stack
            .http
            .post(format!("{}/oauth/token", stack.query))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials&client_id=demo&client_secret=wrong"),
    )
    .await?;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client");
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_gets_a_precise_4xx_and_produces_nothing() -> anyhow::Result<()> {
    let stack = Stack::start("refusals").await?;
    let demo = stack.token("demo", "demo-secret", None).await?;
    let create = format!("{}/v1/ecgs", stack.ingest);

    let cases = [
        (
            json!({"device_id": "d", "sample_rate_hz": 0.1, "leads": ["I"]}),
            "/sample_rate_hz",
        ),
        (
            json!({"device_id": "d", "sample_rate_hz": 500, "leads": ["I", "I"]}),
            "/leads/1",
        ),
        (
            json!({"device_id": "d", "sample_rate_hz": 500, "leads": ["I"], "signal": {"I": [1, "x"]}}),
            "/signal/I/1",
        ),
        (
            json!({"device_id": "d", "sample_rate_hz": 500, "leads": ["I", "II"], "signal": {"I": [1, 2], "II": [1]}}),
            "/signal/II",
        ),
        (
            json!({"device_id": "d", "sample_rate_hz": 500, "leads": ["I"], "signal": {"V9": [1]}}),
            "/signal/V9",
        ),
    ];
    for (body, field) in cases {
        let (status, _, answer) =
            send(stack.http.post(&create).bearer_auth(&demo).json(&body)).await?;
        assert_eq!(status, 422, "{body} -> {answer}");
        assert_eq!(answer["field"], field, "{answer}");
    }
    let (status, _, _) = send(
        stack
            .http
            .post(&create)
            .bearer_auth(&demo)
            .header("content-type", "text/plain")
            .body("hi"),
    )
    .await?;
    assert_eq!(status, 415);

    let (_, _, created) = send(stack.http.post(&create).bearer_auth(&demo).json(&json!({
        "device_id": "d", "sample_rate_hz": 500, "leads": ["I"], "signal": {"I": [1.0, -1.0]}
    })))
    .await?;
    let id = created["id"].as_str().unwrap();
    // The whole-signal ECG is final: a chunk beyond its end is a conflict.
    let chunk = json!({"seq": 5, "samples": {"I": [1.0]}});
    let (status, _, answer) = send(
        stack
            .http
            .post(format!("{}/v1/ecgs/{id}/chunks", stack.ingest))
            .bearer_auth(&demo)
            .json(&chunk),
    )
    .await?;
    assert_eq!(status, 409, "{answer}");
    let unknown = format!("{}/v1/ecgs/{}/chunks", stack.ingest, uuid::Uuid::new_v4());
    let (status, _, _) = send(stack.http.post(unknown).bearer_auth(&demo).json(&chunk)).await?;
    assert_eq!(status, 404);

    // Nothing but the one accepted ECG reached Kafka.
    let messages = stack.messages_in_topic().await?;
    assert_eq!(
        messages, 1,
        "only the accepted whole-signal ECG's one chunk"
    );
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn query_parameters_must_agree_with_the_body_and_refusals_are_json() -> anyhow::Result<()> {
    let stack = Stack::start_with("params", &ecg_e2e::kafka_brokers(), |c| {
        c.upload.max_json_bytes = 1_000;
    })
    .await?;
    let demo = stack.token("demo", "demo-secret", None).await?;
    let (status, _, created) = send(
        stack
            .http
            .post(format!("{}/v1/ecgs", stack.ingest))
            .bearer_auth(&demo)
            .json(&ecg_body()),
    )
    .await?;
    assert_eq!(status, 202, "{created}");
    let chunks = format!(
        "{}/v1/ecgs/{}/chunks",
        stack.ingest,
        created["id"].as_str().unwrap()
    );
    let chunk = json!({"seq": 0, "samples": {"I": [1.0], "II": [2.0]}});
    let csv = |query: &str, body: String| {
        stack
            .http
            .post(format!("{chunks}{query}"))
            .bearer_auth(&demo)
            .header("content-type", "text/csv")
            .body(body)
    };
    let refusals = [
        // The query contradicts the JSON body: which one did the client mean?
        (
            stack
                .http
                .post(format!("{chunks}?seq=1"))
                .bearer_auth(&demo)
                .json(&chunk),
            400,
            "?seq",
        ),
        (
            stack
                .http
                .post(format!("{chunks}?final=true"))
                .bearer_auth(&demo)
                .json(&chunk),
            400,
            "?final",
        ),
        (csv("", "I,II\n1,2\n".into()), 400, "?seq"),
        (
            csv("?seq=0&final=true&x=1", "I,II\n1,2\n".into()),
            400,
            "?x",
        ),
    ];
    for (req, want, field) in refusals {
        let (status, headers, answer) = send(req).await?;
        assert_eq!(
            (status, answer["field"].as_str()),
            (want, Some(field)),
            "{answer}"
        );
        assert_eq!(headers["content-type"], "application/json");
    }
    // A CSV body over the limit is not called JSON.
    let big = format!("I,II\n{}", "1.5,2.5\n".repeat(200));
    let (status, _, answer) = send(csv("?seq=0", big)).await?;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["limit"], 1_000);
    let message = answer["message"].as_str().unwrap();
    assert!(!message.contains("JSON"), "{message}");
    assert!(message.contains("upload.max_json_bytes"), "{message}");

    // A query that repeats the body is fine.
    let (status, _, answer) = send(
        stack
            .http
            .post(format!("{chunks}?seq=0&final=false"))
            .bearer_auth(&demo)
            .json(&chunk),
    )
    .await?;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        stack.messages_in_topic().await?,
        1,
        "only the agreeing chunk"
    );
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_csv_column_that_is_no_lead_is_refused_by_name_and_time_must_keep_the_rate()
-> anyhow::Result<()> {
    let stack = Stack::start("csv_columns").await?;
    let demo = stack.token("demo", "demo-secret", None).await?;
    let (status, _, created) = send(
        stack
            .http
            .post(format!("{}/v1/ecgs", stack.ingest))
            .bearer_auth(&demo)
            .json(&json!({"device_id": "d", "sample_rate_hz": 250, "leads": ["II", "V1"]})),
    )
    .await?;
    assert_eq!(status, 202, "{created}");
    let ecg = format!(
        "{}/v1/ecgs/{}",
        stack.ingest,
        created["id"].as_str().unwrap()
    );
    let chunk = |body: &str| {
        stack
            .http
            .post(format!("{ecg}/chunks?seq=0"))
            .bearer_auth(&demo)
            .header("content-type", "text/csv")
            .body(body.to_string())
    };
    let signal = |body: &str| {
        stack
            .http
            .put(format!("{ecg}/signal"))
            .bearer_auth(&demo)
            .header("content-type", "text/csv")
            .body(body.to_string())
    };
    let refusals = [
        // A stray lead first was taken for time and dropped; last, it was
        // an "unknown lead". Both are named now, in either request.
        (chunk("I,II,V1\n1,2,3\n"), "/samples/I"),
        (chunk("II,V1,I\n1,2,3\n"), "/samples/I"),
        (signal("I,II,V1\n1,2,3\n"), "/samples/I"),
        // Time going backwards, or 0.5 s steps at 250 Hz.
        (chunk("t,II,V1\n5,1,2\n0,3,4\n"), "/samples/t/1"),
        (chunk("t,II,V1\n0,1,2\n0.5,3,4\n"), "/samples/t/1"),
        (
            signal("time,II,V1\n0,1,2\n0.004,1,2\n0.5,3,4\n"),
            "/samples/time/2",
        ),
    ];
    for (req, field) in refusals {
        let (status, _, answer) = send(req).await?;
        assert_eq!(
            (status, answer["field"].as_str()),
            (422, Some(field)),
            "{answer}"
        );
    }
    // A time column named as one, stepping at the rate, is skipped.
    let (status, _, answer) = send(chunk("t_ms,II,V1\n1000,1,2\n1004,3,4\n")).await?;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(stack.messages_in_topic().await?, 1, "only the valid chunk");
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_identical_signal_retry_gets_the_first_answer_and_another_body_409() -> anyhow::Result<()>
{
    let stack = Stack::start("signal_retry").await?;
    let demo = stack.token("demo", "demo-secret", None).await?;
    let create = format!("{}/v1/ecgs", stack.ingest);
    let (status, _, created) = send(
        stack
            .http
            .post(&create)
            .bearer_auth(&demo)
            .json(&ecg_body()),
    )
    .await?;
    assert_eq!(status, 202, "{created}");
    let signal = format!(
        "{}/v1/ecgs/{}/signal",
        stack.ingest,
        created["id"].as_str().unwrap()
    );
    let body: String = std::iter::once("I,II\n".to_string())
        .chain((0..5_000).map(|i| format!("{},{}\n", i % 7, -(i % 5))))
        .collect();
    let put = |body: String| {
        stack
            .http
            .put(&signal)
            .bearer_auth(&demo)
            .header("content-type", "text/csv")
            .body(body)
    };
    let (status, _, first) = send(put(body.clone())).await?;
    assert_eq!(status, 202, "{first}");
    assert!(first["chunks"].as_u64() > Some(1), "{first}");
    // Watermarks, not chunks: the broker may count a batch of them once.
    let produced = stack.messages_in_topic().await?;
    assert!(produced > 0);

    // The client lost the answer and retries: the same answer, nothing new.
    let (status, _, again) = send(put(body.clone())).await?;
    assert_eq!((status, &again), (202, &first));
    // Another body is a conflict, even one sample apart.
    let other = body.replacen("\n0,0\n", "\n0,1\n", 1);
    assert_ne!(other, body);
    let (status, _, conflict) = send(put(other)).await?;
    assert_eq!(
        (status, conflict["error"].as_str()),
        (409, Some("conflict")),
        "{conflict}"
    );
    assert_eq!(
        stack.messages_in_topic().await?,
        produced,
        "retries produced nothing"
    );

    // An ECG given its signal when opened has no PUT to repeat: 409.
    let (_, _, whole) = send(stack.http.post(&create).bearer_auth(&demo).json(&json!({
        "device_id": "d", "sample_rate_hz": 500, "leads": ["I"], "signal": {"I": [1.0, -1.0]}
    })))
    .await?;
    let (status, _, answer) = send(
        stack
            .http
            .put(format!(
                "{}/v1/ecgs/{}/signal",
                stack.ingest,
                whole["id"].as_str().unwrap()
            ))
            .bearer_auth(&demo)
            .header("content-type", "text/csv")
            .body("I\n1\n-1\n"),
    )
    .await?;
    assert_eq!(status, 409, "{answer}");
    stack.stop().await
}
