//! No service writes a secret of its configuration to its log: each of the
//! three binaries is started with a configuration file holding a Kafka SASL
//! password, a TLS key password and a ClickHouse password, and its startup
//! log (which prints the whole configuration) must name the settings but
//! hold none of their values.

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use ecg_e2e::binary::built_binary;

const SECRETS: [&str; 3] = ["kafka-pw-0b6f", "tls-key-pw-77aa", "clickhouse-pw-3c1d"];

/// Starts `bin` with `config`, waits for its startup line (or its exit),
/// stops it and returns everything it logged.
async fn startup_log(package: &str, bin: &str, config: &str) -> anyhow::Result<String> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join(format!("{bin}.toml"));
    std::fs::write(&path, config)?;
    let log = dir.path().join("log");
    let out = std::fs::File::create(&log)?;
    let mut cmd = Command::new(built_binary(package, bin)?);
    for (k, _) in std::env::vars() {
        if k.starts_with("ECG_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd
        .env("ECG_CONFIG", &path)
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .with_context(|| format!("starting {bin}"))?;
    let until = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let exited = child.try_wait()?.is_some();
        if text.contains(&format!("starting {bin}")) || exited {
            // A moment more, for what follows the configuration.
            tokio::time::sleep(Duration::from_millis(500)).await;
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < until,
            "{bin} printed no startup line in 20 s: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    Ok(std::fs::read_to_string(&log)?)
}

fn kafka_properties(table: &str) -> String {
    format!(
        r#"
[{table}.properties]
"security.protocol" = "PLAINTEXT"
"sasl.mechanism" = "SCRAM-SHA-512"
"sasl.username" = "svc"
"sasl.password" = "{}"
"ssl.key.password" = "{}"
"#,
        SECRETS[0], SECRETS[1]
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_service_logs_a_secret_of_its_configuration() -> anyhow::Result<()> {
    let clickhouse = format!(
        "[clickhouse]\nurl = \"http://127.0.0.1:9\"\npassword = \"{}\"\n",
        SECRETS[2]
    );
    for (package, bin, kafka_table) in [
        ("ecg-ingest", "ingest", "kafka"),
        ("ecg-processor", "processor", "kafka"),
        ("ecg-query-api", "query-api", "pipeline"),
    ] {
        let config = format!(
            "[http]\naddr = \"127.0.0.1:0\"\n{clickhouse}{}",
            kafka_properties(kafka_table)
        );
        let log = startup_log(package, bin, &config).await?;
        assert!(
            log.contains(&format!("starting {bin}")),
            "{bin} logged no configuration:\n{log}"
        );
        for secret in SECRETS {
            assert!(!log.contains(secret), "{bin} logged {secret}:\n{log}");
        }
        // The settings themselves are there, for the operator.
        for shown in [
            "sasl.password",
            "sasl.username",
            "SCRAM-SHA-512",
            "<redacted>",
        ] {
            assert!(log.contains(shown), "{bin} did not log {shown}:\n{log}");
        }
    }
    Ok(())
}
