//! The gateway's handlers called in-process: authentication, refusals, and
//! the promise that no 202 is given for data the broker did not confirm.
//! No server is needed: the broker and ClickHouse addresses point at a
//! closed port, or ClickHouse at a stand-in that answers 200 to everything.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use ecg_auth::{Claims, SigningKey, Verifier};
use ecg_clickhouse::ClickHouseConfig;
use ecg_ingest::budget::BodyBudget;
use ecg_ingest::config::KafkaConfig;
use ecg_ingest::producer::ChunkProducer;
use ecg_ingest::quota::{ClientLimits, RateLimitConfig, RateLimits};
use ecg_ingest::registry::Registry;
use ecg_ingest::{AppState, router};
use ecg_schemas::Limits;
use serde_json::{Value, json};
use tower::ServiceExt;

const ISSUER: &str = "http://issuer.test";
const AUDIENCE: &str = "ecg-stream";

fn setup() -> (axum::Router, SigningKey) {
    setup_with(RateLimitConfig::default())
}

fn setup_with(rate_limit: RateLimitConfig) -> (axum::Router, SigningKey) {
    setup_budget(
        rate_limit,
        BodyBudget::new(64 << 10, Duration::from_secs(2), 4_096),
    )
}

/// A closed port.
const CLOSED: &str = "127.0.0.1:1";

fn setup_budget(rate_limit: RateLimitConfig, bodies: BodyBudget) -> (axum::Router, SigningKey) {
    setup_on(rate_limit, bodies, &format!("http://{CLOSED}"))
}

/// A ClickHouse stand-in that answers every request 200 with an empty
/// body: it answers a ping and takes every insert, so that a create gets as
/// far as the (closed) broker.
async fn answering_clickhouse() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(|| async { "" });
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn setup_on(
    rate_limit: RateLimitConfig,
    bodies: BodyBudget,
    clickhouse: &str,
) -> (axum::Router, SigningKey) {
    let key = SigningKey::generate();
    let closed = CLOSED;
    let state = AppState {
        verifier: Verifier::with_jwks(ISSUER, AUDIENCE, key.jwks()),
        registry: Registry::new(
            ClickHouseConfig {
                url: clickhouse.to_string(),
                ..ClickHouseConfig::default()
            }
            .client(),
        ),
        producer: ChunkProducer::new(&KafkaConfig {
            brokers: closed.into(),
            delivery_timeout_ms: 1_500,
            ..KafkaConfig::default()
        })
        .unwrap(),
        limits: Arc::new(Limits::default()),
        bodies,
        rate_limits: RateLimits::new(&rate_limit),
        upload: ecg_ingest::upload::UploadSettings {
            chunk_samples: 2,
            max_samples: 1_000,
            max_in_flight: 4,
            spool_dir: None,
            body_rate: ecg_ingest::body_rate::BodyRate::UNLIMITED,
        },
    };
    (router(state), key)
}

fn token(key: &SigningKey, scope: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    key.sign(&Claims {
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        sub: "demo".into(),
        tenant: "demo".into(),
        scope: scope.into(),
        iat: now,
        nbf: now,
        exp: now + 600,
        jti: uuid::Uuid::new_v4().to_string(),
    })
}

async fn call(
    app: &axum::Router,
    token: Option<&str>,
    content_type: &str,
    body: String,
) -> (StatusCode, Value, Option<String>) {
    let mut req = Request::post("/v1/ecgs").header(header::CONTENT_TYPE, content_type);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let response = app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        retry_after,
    )
}

fn ecg(signal: Option<Value>) -> String {
    let mut body = json!({"device_id": "d", "sample_rate_hz": 500, "leads": ["I"]});
    if let Some(s) = signal {
        body["signal"] = s;
    }
    body.to_string()
}

#[tokio::test]
async fn missing_or_wrong_scope_token_is_refused_before_anything_else() {
    let (app, key) = setup();
    let (status, _, _) = call(&app, None, "application/json", ecg(None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let read_only = token(&key, "ecg:read");
    let (status, body, _) = call(&app, Some(&read_only), "application/json", ecg(None)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}

#[tokio::test]
async fn wrong_content_type_is_415_and_oversized_body_is_413_with_the_limit() {
    let (app, key) = setup();
    let t = token(&key, "ecg:write");
    let (status, _, _) = call(&app, Some(&t), "text/csv", "I\n1\n".into()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let big = ecg(Some(json!({"I": vec![0.5; 2_000]})));
    let (status, body, _) = call(&app, Some(&t), "application/json", big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["limit"], 4_096);
}

#[tokio::test]
async fn invalid_fields_are_422_with_a_json_pointer() {
    let (app, key) = setup();
    let t = token(&key, "ecg:write");
    let body =
        json!({"device_id": "d", "sample_rate_hz": 500, "leads": ["I"], "signal": {"I": []}})
            .to_string();
    let (status, answer, _) = call(&app, Some(&t), "application/json", body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer["field"], "/signal/I");
    let body = json!({"device_id": "d", "sample_rate_hz": "fast", "leads": ["I"]}).to_string();
    let (status, answer, _) = call(&app, Some(&t), "application/json", body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer["field"], "/sample_rate_hz");
}

#[tokio::test]
async fn unconfirmed_chunks_get_503_with_retry_after_never_202() {
    let (app, key) = setup_on(
        RateLimitConfig::default(),
        BodyBudget::new(64 << 10, Duration::from_secs(2), 4_096),
        &answering_clickhouse().await,
    );
    let t = token(&key, "ecg:write");
    let (status, body, retry_after) = call(
        &app,
        Some(&t),
        "application/json",
        ecg(Some(json!({"I": [1.0, -1.0, 0.0]}))),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(retry_after.as_deref(), Some("5"));
    assert_eq!(body["error"], "unavailable");
}

#[tokio::test]
async fn bodies_over_the_buffer_budget_wait_then_get_503_busy() {
    let held = ecg(Some(json!({"I": [1.0, -1.0, 0.0]})));
    // One body fills the budget while its request waits for the (closed)
    // broker, about 2.5 s.
    let total = held.len();
    let budget = BodyBudget::new(total, Duration::from_millis(300), 4_096);
    let (app, key) = setup_on(
        RateLimitConfig::default(),
        budget.clone(),
        &answering_clickhouse().await,
    );
    let t = token(&key, "ecg:write");
    let first = tokio::spawn({
        let (app, t) = (app.clone(), t.clone());
        async move { call(&app, Some(&t), "application/json", held).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(budget.available(), 0, "the first body is held");

    let started = Instant::now();
    let (status, body, retry_after) = call(&app, Some(&t), "application/json", ecg(None)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "busy");
    assert_eq!(body["limit"], total);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("upload.max_buffered_bytes"),
        "{body}"
    );
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert!(started.elapsed() >= Duration::from_millis(300), "it waited");

    // Once the first answers (503: no broker), its bytes are free again and
    // the next request gets past the budget, as far as the registry (whose
    // stand-in cannot take an insert).
    let (status, body, _) = first.await.unwrap();
    assert_eq!(body["error"], "unavailable", "{status} {body}");
    assert_eq!(budget.available(), total);
    let (_, body, _) = call(&app, Some(&t), "application/json", ecg(None)).await;
    assert!(
        body["message"].as_str().unwrap().contains("ClickHouse"),
        "{body}"
    );
}

/// Any request with `headers`: status, `Retry-After` and JSON body.
async fn send(
    app: &axum::Router,
    request: axum::http::request::Builder,
    body: Body,
) -> (StatusCode, Option<String>, Value) {
    let response = app
        .clone()
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        retry_after,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// ClickHouse out of reach is an outage, as the broker's: 503 with
/// `Retry-After`, never 500, for a create (registry row, idempotency key)
/// and for a chunk of an ECG the gateway has not seen.
#[tokio::test]
async fn clickhouse_out_of_reach_is_503_with_retry_after_never_500() {
    let (app, key) = setup();
    let t = token(&key, "ecg:write");
    let post = |uri: String| {
        Request::post(uri)
            .header(header::AUTHORIZATION, format!("Bearer {t}"))
            .header(header::CONTENT_TYPE, "application/json")
    };
    let with_signal = ecg(Some(json!({"I": [1.0, -1.0, 0.0]})));
    for (what, request, body) in [
        ("a create", post("/v1/ecgs".into()), ecg(None)),
        // Refused before anything is produced (the broker is closed too,
        // which would be a 503 of its own after 2.5 s).
        (
            "a create with a signal",
            post("/v1/ecgs".into()),
            with_signal.clone(),
        ),
        (
            "a keyed create",
            post("/v1/ecgs".into()).header("Idempotency-Key", "k-1"),
            with_signal,
        ),
        (
            "a chunk",
            post(format!("/v1/ecgs/{}/chunks", uuid::Uuid::new_v4())),
            r#"{"seq": 0, "samples": {"I": [1.0]}}"#.to_string(),
        ),
    ] {
        let started = Instant::now();
        let (status, retry_after, answer) = send(&app, request, Body::from(body)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{what}: {answer}");
        assert_eq!(retry_after.as_deref(), Some("5"), "{what}");
        assert_eq!(answer["error"], "unavailable", "{what}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains("ClickHouse"),
            "{what}: {answer}"
        );
        assert!(started.elapsed() < Duration::from_secs(2), "{what}");
    }
}

/// The key is checked before anything else is done with the body.
#[tokio::test]
async fn a_malformed_idempotency_key_is_400_naming_the_header() {
    let (app, key) = setup();
    let t = token(&key, "ecg:write");
    for bad in ["", "has space", &"k".repeat(256)] {
        let request = Request::post("/v1/ecgs")
            .header(header::AUTHORIZATION, format!("Bearer {t}"))
            .header(header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", bad);
        let (status, _, answer) = send(&app, request, Body::from(ecg(None))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:?}: {answer}");
        assert_eq!(answer["error"], "invalid_param");
        assert_eq!(answer["field"], "Idempotency-Key");
    }
}

/// A body that stops arriving is cut with 408 naming the limit, and a
/// client past its share of the body budget gets 429 while another
/// tenant's request is served.
#[tokio::test]
async fn a_stalled_body_is_408_and_a_client_over_its_share_is_429() {
    let budget = BodyBudget::new(64 << 10, Duration::from_millis(200), 4_096)
        .shares(0, 1_000)
        .rate(ecg_ingest::body_rate::BodyRate {
            idle: Duration::from_millis(600),
            min_bytes_per_second: 0,
            grace: Duration::ZERO,
        });
    let (app, key) = setup_budget(RateLimitConfig::default(), budget.clone());
    let t = token(&key, "ecg:write");
    // 1,000 bytes, then nothing.
    let (mut tx, rx) = futures::channel::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(1);
    tx.try_send(Ok(vec![b'x'; 1_000].into())).unwrap();
    let stalled = Request::post("/v1/ecgs")
        .header(header::AUTHORIZATION, format!("Bearer {t}"))
        .header(header::CONTENT_TYPE, "application/json");
    let cut = tokio::spawn({
        let app = app.clone();
        async move { send(&app, stalled, Body::from_stream(rx)).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(budget.available(), (64 << 10) - 1_000, "its share is held");
    let (status, answer, retry_after) = call(&app, Some(&t), "application/json", ecg(None)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{answer}");
    assert_eq!(answer["error"], "over_share");
    assert_eq!(answer["limit"], 1_000);
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("upload.max_buffered_bytes_per_client"),
        "{answer}"
    );
    assert_eq!(retry_after.as_deref(), Some("1"));

    let (status, _, answer) = cut.await.unwrap();
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT, "{answer}");
    assert_eq!(answer["error"], "body_timeout");
    assert_eq!(answer["limit"], 600);
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("upload.body_idle_timeout_ms"),
        "{answer}"
    );
    drop(tx);
    assert_eq!(budget.available(), 64 << 10, "and freed when it was cut");
}

#[tokio::test]
async fn a_client_over_its_rate_gets_429_with_retry_after_and_others_do_not() {
    let (app, key) = setup_with(RateLimitConfig {
        default: ClientLimits {
            requests_per_second: 2,
            request_burst: 2,
            ..ClientLimits::default()
        },
        clients: Default::default(),
    });
    let t = token(&key, "ecg:write");
    // Invalid bodies still spend the budget: the limit is on requests.
    for _ in 0..2 {
        let (status, _, _) = call(&app, Some(&t), "application/json", "{}".into()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let (status, body, retry_after) = call(&app, Some(&t), "application/json", "{}".into()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "rate_limited");
    assert_eq!(retry_after.as_deref(), Some("1"));
}

async fn get(app: &axum::Router, path: &str) -> (StatusCode, String) {
    let response = app
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 16 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn the_openapi_document_covers_every_endpoint_and_error_body() {
    let (app, _) = setup();
    let (status, body) = get(&app, "/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let spec: Value = serde_json::from_str(&body).unwrap();
    assert!(
        spec["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        spec["openapi"]
    );
    for (path, method) in [
        ("/v1/ecgs", "post"),
        ("/v1/ecgs/{id}/chunks", "post"),
        ("/v1/ecgs/{id}/signal", "put"),
        ("/healthz", "get"),
        ("/readyz", "get"),
    ] {
        let op = &spec["paths"][path][method];
        assert!(op.is_object(), "{method} {path} missing from the spec");
        if path.starts_with("/v1") {
            for status in ["202", "400", "401", "403", "415", "422", "429", "503"] {
                assert!(
                    op["responses"][status].is_object(),
                    "{method} {path} lacks {status}"
                );
            }
            assert_eq!(op["security"][0]["bearer"][0], "ecg:write");
        }
    }
    for schema in [
        "CreateEcg",
        "ChunkRequest",
        "Accepted",
        "ErrorBody",
        "Calibration",
    ] {
        assert!(
            spec["components"]["schemas"][schema].is_object(),
            "no schema {schema}"
        );
    }
    let (status, page) = get(&app, "/docs/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("swagger-ui"), "{page}");
    let (status, _) = get(&app, "/docs/swagger-ui-bundle.js").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "Swagger UI assets are served from the binary"
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_readyz_reports_what_is_down() {
    let (app, key) = setup();
    let t = token(&key, "ecg:write");
    call(&app, Some(&t), "text/plain", "x".into()).await;
    let (status, body) = get(&app, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let readiness: Value = serde_json::from_str(&body).unwrap();
    assert_ne!(readiness["kafka"], "ok", "{readiness}");
    assert_ne!(readiness["clickhouse"], "ok", "{readiness}");

    let (status, text) = get(&app, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.lines()
            .any(|l| l.starts_with("ecg_ingest_requests_total")
                && l.contains(r#"route="/v1/ecgs""#)
                && l.contains(r#"status="415""#)),
        "{text}"
    );
    assert!(
        text.contains("ecg_ingest_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("ecg_ingest_producer_queue_depth"), "{text}");
}

/// Any request: its status, `Content-Type` and JSON body (null if none).
async fn request(
    app: &axum::Router,
    method: &str,
    uri: &str,
    token: &str,
    content_type: &str,
    body: &str,
) -> (StatusCode, String, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = app.clone().oneshot(req).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        content_type,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A request and what it must get: method, URI, content type, body;
/// status, `error` and `field`.
type Refusal<'a> = (
    &'a str,
    String,
    &'a str,
    &'a str,
    u16,
    &'a str,
    Option<&'a str>,
);

/// Each refusal is answered before the (closed) registry or broker is
/// reached: none of them is a 500 or a 503.
#[tokio::test]
async fn every_refusal_is_json_naming_the_field_at_fault() {
    let (app, key) = setup();
    let t = token(&key, "ecg:write");
    let id = uuid::Uuid::new_v4();
    let chunk = r#"{"seq": 1, "samples": {"I": [1.0]}}"#;
    let json = "application/json";
    let create = ecg(None);
    let cases: Vec<Refusal> = vec![
        // A malformed id names the path parameter.
        (
            "POST",
            "/v1/ecgs/not-a-uuid/chunks".into(),
            json,
            chunk,
            400,
            "invalid_param",
            Some("id"),
        ),
        (
            "PUT",
            "/v1/ecgs/42/signal".into(),
            "text/csv",
            "I\n1\n",
            400,
            "invalid_param",
            Some("id"),
        ),
        // Unknown paths and methods: JSON, not empty bodies.
        (
            "GET",
            "/v1/nothing".into(),
            json,
            "",
            404,
            "not_found",
            None,
        ),
        (
            "GET",
            "/v1/ecgs".into(),
            json,
            "",
            405,
            "method_not_allowed",
            None,
        ),
        (
            "DELETE",
            format!("/v1/ecgs/{id}/chunks"),
            json,
            "",
            405,
            "method_not_allowed",
            None,
        ),
        // Query parameters are read strictly.
        (
            "POST",
            "/v1/ecgs?dry_run=1".into(),
            json,
            &create,
            400,
            "invalid_param",
            Some("?dry_run"),
        ),
        (
            "POST",
            format!("/v1/ecgs/{id}/chunks?seq=abc"),
            json,
            chunk,
            400,
            "invalid_param",
            Some("?seq"),
        ),
        (
            "POST",
            format!("/v1/ecgs/{id}/chunks?seq=1&seq=2"),
            "text/csv",
            "I\n1\n",
            400,
            "invalid_param",
            Some("?seq"),
        ),
        (
            "POST",
            format!("/v1/ecgs/{id}/chunks?final=yes"),
            json,
            chunk,
            400,
            "invalid_param",
            Some("?final"),
        ),
        (
            "POST",
            format!("/v1/ecgs/{id}/chunks?sequence=1"),
            json,
            chunk,
            400,
            "invalid_param",
            Some("?sequence"),
        ),
        (
            "PUT",
            format!("/v1/ecgs/{id}/signal?final=true"),
            "text/csv",
            "I\n1\n",
            400,
            "invalid_param",
            Some("?final"),
        ),
        // A missing field is named by the pointer, not only in the message.
        (
            "POST",
            "/v1/ecgs".into(),
            json,
            r#"{"sample_rate_hz": 500, "leads": ["I"]}"#,
            422,
            "invalid_field",
            Some("/device_id"),
        ),
        // NaN and Infinity are samples that are not finite.
        (
            "POST",
            "/v1/ecgs".into(),
            json,
            r#"{"device_id": "d", "sample_rate_hz": 500, "leads": ["I"], "signal": {"I": [1, NaN]}}"#,
            422,
            "invalid_field",
            Some("/signal/I/1"),
        ),
    ];
    for (method, uri, content_type, body, status, error, field) in cases {
        let (got, got_type, answer) = request(&app, method, &uri, &t, content_type, body).await;
        let what = format!("{method} {uri} {body}: {got} {answer}");
        assert_eq!(got.as_u16(), status, "{what}");
        assert_eq!(got_type, "application/json", "{what}");
        assert_eq!(answer["error"], error, "{what}");
        assert!(!answer["message"].as_str().unwrap().is_empty(), "{what}");
        match field {
            Some(field) => assert_eq!(answer["field"], field, "{what}"),
            None => assert!(answer.get("field").is_none(), "{what}"),
        }
    }
    let (_, _, nan) = request(
        &app,
        "POST",
        "/v1/ecgs",
        &t,
        json,
        r#"{"device_id": "d", "sample_rate_hz": 500, "leads": ["I"], "signal": {"I": [Infinity]}}"#,
    )
    .await;
    assert!(
        nan["message"]
            .as_str()
            .unwrap()
            .starts_with("sample 0 is Infinity; samples must be finite numbers"),
        "{nan}"
    );
}

/// A refusal answered before the body is read to its end leaves the rest of
/// the body on the connection: the answer must tell the client to close it,
/// or the client's next request on that pooled connection fails.
#[tokio::test]
async fn a_refused_request_with_a_body_tells_the_client_to_close_the_connection() {
    let (app, key) = setup();
    let t = token(&key, "ecg:write");
    let body = "I\n1\n";
    let with_body = Request::post("/v1/ecgs")
        .header(header::AUTHORIZATION, format!("Bearer {t}"))
        .header(header::CONTENT_TYPE, "text/csv")
        .header(header::CONTENT_LENGTH, body.len())
        .body(Body::from(body))
        .unwrap();
    let response = app.clone().oneshot(with_body).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        response
            .headers()
            .get(header::CONNECTION)
            .map(|v| v.as_bytes()),
        Some(&b"close"[..])
    );

    // Without a body nothing is left unread: the connection stays usable.
    for uri in ["/nowhere", "/healthz"] {
        let bodiless = Request::get(uri).body(Body::empty()).unwrap();
        let response = app.clone().oneshot(bodiless).await.unwrap();
        assert!(
            response.headers().get(header::CONNECTION).is_none(),
            "{uri}: {:?}",
            response.headers()
        );
    }
}
