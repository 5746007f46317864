//! The gateway and the query API over HTTPS (rustls, the same
//! `[http.tls]` and serving code, `ecg_runtime::tls`): the gateway with a
//! self-signed certificate, the query API with one signed by a test CA.

use std::time::Duration;

use ecg_e2e::{Stack, clickhouse_url, kafka_brokers, wait_for};
use ecg_runtime::tls::TlsConfig;
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_serves_https_with_the_configured_certificate() -> anyhow::Result<()> {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])?;
    let dir = tempfile::tempdir()?;
    let cert_file = dir.path().join("cert.pem");
    let key_file = dir.path().join("key.pem");
    std::fs::write(&cert_file, certified.cert.pem())?;
    std::fs::write(&key_file, certified.signing_key.serialize_pem())?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let mut config = ecg_ingest::Config::default();
    config.clickhouse.url = clickhouse_url();
    config.clickhouse.database = format!(
        "test_tls_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    config.kafka.brokers = kafka_brokers();
    config.http.tls = Some(ecg_ingest::config::TlsConfig {
        cert_file,
        key_file,
    });
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(ecg_ingest::run_with_listener(
        config,
        listener,
        shutdown.clone(),
    ));

    let trusted = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(
            certified.cert.pem().as_bytes(),
        )?)
        .build()?;
    let https = format!("https://localhost:{port}");
    wait_for(Duration::from_secs(30), "the HTTPS gateway", || async {
        anyhow::ensure!(!server.is_finished(), "the gateway stopped: {server:?}");
        Ok(trusted.get(format!("{https}/healthz")).send().await.is_ok())
    })
    .await?;
    let health = trusted.get(format!("{https}/healthz")).send().await?;
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await?, "ok");
    let refused = trusted.post(format!("{https}/v1/ecgs")).send().await?;
    assert_eq!(
        refused.status(),
        401,
        "authentication applies over HTTPS too"
    );

    // A client that does not trust the certificate cannot talk to it, and
    // plain HTTP on the HTTPS port gets no answer.
    let untrusting = reqwest::Client::new();
    assert!(
        untrusting
            .get(format!("{https}/healthz"))
            .send()
            .await
            .is_err()
    );
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(
        plain.map_or(true, |r| !r.status().is_success()),
        "plain HTTP was served"
    );

    shutdown.cancel();
    server.await??;
    Ok(())
}

/// A test CA, and a certificate for `localhost` it signed: the CA's PEM,
/// and the certificate's and key's files in `dir`.
fn ca_signed_localhost(dir: &std::path::Path) -> anyhow::Result<(String, TlsConfig)> {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "ecg-stream test CA");
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca = rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate()?)?;
    let key = rcgen::KeyPair::generate()?;
    let cert =
        rcgen::CertificateParams::new(vec!["localhost".to_string()])?.signed_by(&key, &ca)?;
    let tls = TlsConfig {
        cert_file: dir.join("query.pem"),
        key_file: dir.join("query.key"),
    };
    std::fs::write(&tls.cert_file, cert.pem())?;
    std::fs::write(&tls.key_file, key.serialize_pem())?;
    Ok((ca.pem(), tls))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_query_api_serves_tokens_and_insights_over_https() -> anyhow::Result<()> {
    // An ECG streamed to complete through a plain stack, and its insights.
    let stack = Stack::start("tls_query").await?;
    let token = stack.token("demo", "demo-secret", None).await?;
    let id = stack
        .open_ecg(
            &token,
            json!({"device_id": "watch-9", "sample_rate_hz": 500, "leads": ["I"]}),
        )
        .await?;
    let signal: Vec<f64> = (0..2000).map(|i| (f64::from(i) / 7.0).sin()).collect();
    stack
        .send_chunk(&token, id, 0, json!({ "I": signal }), true)
        .await?;
    let plain = stack
        .insights_when_complete(&token, id, Duration::from_secs(60))
        .await?;

    // A second query API on the same database, over HTTPS only.
    let dir = tempfile::tempdir()?;
    let (ca, tls) = ca_signed_localhost(dir.path())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let https = format!("https://localhost:{port}");
    let mut config = ecg_query_api::Config::default();
    config.http.addr = listener.local_addr()?;
    config.http.tls = Some(tls);
    config.clickhouse = stack.clickhouse.clone();
    config.auth.issuer = https.clone();
    config.auth.key_file = dir.path().join("signing-key.pem");
    config.pipeline.brokers = stack.brokers.clone();
    config.pipeline.topic = stack.topic.clone();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(ecg_query_api::run_with_listener(
        config,
        listener,
        shutdown.clone(),
    ));

    let trusted = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes())?)
        .build()?;
    wait_for(Duration::from_secs(30), "the HTTPS query API", || async {
        anyhow::ensure!(!server.is_finished(), "the query API stopped: {server:?}");
        Ok(trusted.get(format!("{https}/healthz")).send().await.is_ok())
    })
    .await?;

    // A token over HTTPS, then the same insights with it.
    let granted = trusted
        .post(format!("{https}/oauth/token"))
        .basic_auth("demo", Some("demo-secret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await?;
    assert_eq!(granted.status(), 200);
    let granted: serde_json::Value = granted.json().await?;
    let tls_token = granted["access_token"].as_str().unwrap_or_default();
    let insights = trusted
        .get(format!("{https}/v1/ecgs/{id}/insights"))
        .bearer_auth(tls_token)
        .send()
        .await?;
    assert_eq!(insights.status(), 200);
    assert_eq!(insights.json::<serde_json::Value>().await?, plain);
    // Its tokens name the HTTPS issuer: the plain API does not take them.
    let (status, _) = stack
        .get_json(Some(tls_token), &format!("/v1/ecgs/{id}"))
        .await?;
    assert_eq!(status, 401);

    // Without the CA no client talks to it, and plain HTTP gets no answer.
    assert!(
        reqwest::Client::new()
            .get(format!("{https}/healthz"))
            .send()
            .await
            .is_err()
    );
    let plain_http = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(
        plain_http.map_or(true, |r| !r.status().is_success()),
        "plain HTTP was served"
    );

    shutdown.cancel();
    server.await??;
    stack.stop().await
}
