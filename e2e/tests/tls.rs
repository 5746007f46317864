//! The gateway over HTTPS (rustls), with a self-signed certificate made by
//! the test.

use std::time::Duration;

use ecg_e2e::{clickhouse_url, kafka_brokers, wait_for};
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
