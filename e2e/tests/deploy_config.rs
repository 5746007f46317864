//! The deployment files, checked by the tools that read them, without a
//! Docker engine: `docker-compose config` (Debian's docker-compose parses
//! and validates the file, interpolation and merges included), `nginx -t`
//! (Debian's nginx) on the shipped template, the secrets script's output
//! as the services load it, and Prometheus and Grafana files against the
//! compose services and the metric names the code really exports.
//!
//! docker-compose and nginx must be installed (`make test` installs both); a
//! missing one fails the test with how to install it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::Context as _;
use ecg_e2e::binary::built_binary;
use ecg_e2e::nginx::{self, Site};
use serde::Deserialize;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `docker-compose -f docker-compose.yml ARGS` in the repository, with
/// `env` and nothing of the caller's compose settings.
fn compose(args: &[&str], env: &[(&str, &Path)]) -> anyhow::Result<Output> {
    let mut cmd = Command::new("docker-compose");
    cmd.current_dir(repo())
        .args(["-f", "docker-compose.yml"])
        .args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("ECG_") || k.starts_with("COMPOSE_") || k == "QUERY_PUBLIC_URL" {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let output = cmd.output().context(
        "running docker-compose: install Debian's package (`apt-get install docker-compose`; \
         `make test` installs it)",
    )?;
    anyhow::ensure!(
        output.status.success(),
        "docker-compose {args:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(output)
}

/// What the tests read of `docker-compose config`'s output.
#[derive(Deserialize)]
struct ComposeFile {
    services: BTreeMap<String, Service>,
    secrets: BTreeMap<String, SecretFile>,
}

#[derive(Deserialize)]
struct Service {
    #[serde(default)]
    environment: BTreeMap<String, Option<String>>,
    #[serde(default)]
    restart: Option<String>,
    #[serde(default)]
    image: Option<String>,
}

#[derive(Deserialize)]
struct SecretFile {
    file: PathBuf,
}

impl Service {
    fn env(&self, key: &str) -> Option<&str> {
        self.environment.get(key).and_then(|v| v.as_deref())
    }
}

/// Runs deploy/secrets.sh into a fresh temp dir.
fn generate_secrets() -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    let hasher = built_binary("ecg-auth", "ecg-hash-secret")?;
    let output = Command::new(repo().join("deploy/secrets.sh"))
        .env("ECG_SECRETS_DIR", dir.path())
        .env("ECG_HASH_SECRET", &hasher)
        .env("ECG_CLIENT_ID", "fleet-1")
        .env("ECG_CLIENT_TENANT", "hospital-1")
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "deploy/secrets.sh failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(dir)
}

fn parsed_config(secrets: &Path) -> anyhow::Result<ComposeFile> {
    let output = compose(&["config"], &[("ECG_SECRETS_DIR", secrets)])?;
    Ok(serde_saphyr::from_str(&String::from_utf8(output.stdout)?)?)
}

#[test]
fn the_compose_file_parses_on_a_fresh_clone_and_with_generated_secrets() -> anyhow::Result<()> {
    // A fresh clone: no secret files yet (they are git-ignored); `config`
    // must still pass, `up` then names the missing file.
    compose(&["config", "-q"], &[])?;

    let secrets = generate_secrets()?;
    compose(&["config", "-q"], &[("ECG_SECRETS_DIR", secrets.path())])?;
    let config = parsed_config(secrets.path())?;

    // Every secret the file mounts exists, in the chosen directory.
    for (name, secret) in &config.secrets {
        assert!(
            secret.file.starts_with(secrets.path()) && secret.file.is_file(),
            "secret {name}: {} was not generated",
            secret.file.display()
        );
    }

    // Two gateways and two processors, configured alike; the processors in
    // one consumer group.
    let service = |name: &str| {
        config
            .services
            .get(name)
            .with_context(|| format!("no service {name}"))
    };
    for name in [
        "kafka",
        "clickhouse",
        "migrate",
        "query-api",
        "nginx",
        "prometheus",
        "grafana",
    ] {
        service(name)?;
    }
    let (i1, i2) = (service("ingest-1")?, service("ingest-2")?);
    assert_eq!(i1.image, i2.image);
    for key in ["ECG_KAFKA__TOPIC", "ECG_AUTH__ISSUER", "ECG_AUTH__JWKS_URL"] {
        assert!(i1.env(key).is_some(), "ingest-1 has no {key}");
        assert_eq!(i1.env(key), i2.env(key), "{key}");
    }
    let (p1, p2) = (service("processor-1")?, service("processor-2")?);
    assert_eq!(p1.env("ECG_KAFKA__GROUP_ID"), Some("ecg-processor"));
    assert_eq!(p2.env("ECG_KAFKA__GROUP_ID"), Some("ecg-processor"));
    // Secrets come as files, never as values in the environment.
    let query = service("query-api")?;
    assert_eq!(
        query.env("ECG_AUTH__KEY_FILE"),
        Some("/run/secrets/jwt_signing_key")
    );
    assert_eq!(
        query.env("ECG_AUTH__CLIENTS_FILE"),
        Some("/run/secrets/oauth_clients")
    );
    // query-api issues what the gateways check.
    assert_eq!(query.env("ECG_AUTH__ISSUER"), i1.env("ECG_AUTH__ISSUER"));
    Ok(())
}

#[tokio::test]
async fn the_generated_secrets_load_as_query_api_loads_them() -> anyhow::Result<()> {
    let secrets = generate_secrets()?;
    let dir = secrets.path();
    // query-api's own router, configured with the generated files as the
    // compose file configures it: the key openssl wrote and the clients.
    let mut config = ecg_query_api::Config::default();
    config.auth.issuer = "https://localhost".into();
    config.auth.key_file = dir.join("jwt-signing-key.pem");
    config.auth.clients_file = Some(dir.join("clients.toml"));
    let app = ecg_query_api::router(ecg_query_api::AppState::new(&config)?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    // The secret handed to the operator gets a token over HTTP Basic, as a
    // client would send it; the demo clients are gone.
    let secret = std::fs::read_to_string(dir.join("client-fleet-1.secret"))?;
    let token = |id: &str, secret: &str| {
        reqwest::Client::new()
            .post(format!("{base}/oauth/token"))
            .basic_auth(id, Some(secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
    };
    let granted = token("fleet-1", secret.trim_end()).await?;
    assert_eq!(granted.status(), 200, "{}", granted.text().await?);
    let granted: serde_json::Value = granted.json().await?;
    assert_eq!(granted["scope"], "ecg:write ecg:read");
    assert_eq!(token("fleet-1", "wrong").await?.status(), 401);
    assert_eq!(token("demo", "demo-secret").await?.status(), 401);
    server.abort();

    // Running the script again creates nothing: a signing key is never
    // rotated by accident.
    let before = std::fs::read(dir.join("jwt-signing-key.pem"))?;
    let again = Command::new(repo().join("deploy/secrets.sh"))
        .env("ECG_SECRETS_DIR", dir)
        .env("ECG_HASH_SECRET", "false")
        .output()?;
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing created"));
    assert_eq!(std::fs::read(dir.join("jwt-signing-key.pem"))?, before);
    Ok(())
}

#[test]
fn nginx_accepts_the_shipped_config() -> anyhow::Result<()> {
    let site = Site::render(["127.0.0.1:18080", "127.0.0.1:18081"], "127.0.0.1:18082")?;
    site.check()?;
    // A value the template needs but nobody set is caught before nginx.
    let template = std::fs::read_to_string(nginx::template_path())?;
    let err = nginx::render(&template, &BTreeMap::new()).unwrap_err();
    assert!(err.to_string().contains("ECG_NGINX_"), "{err}");
    // And nginx -t does fail on a broken file: the check is not vacuous.
    std::fs::write(&site.conf, "events {}\nhttp { server { listen ; } }\n")?;
    assert!(site.check().is_err());
    Ok(())
}

/// What the tests read of prometheus.yml.
#[derive(Deserialize)]
struct Prometheus {
    scrape_configs: Vec<ScrapeConfig>,
}

#[derive(Deserialize)]
struct ScrapeConfig {
    job_name: String,
    static_configs: Vec<StaticConfig>,
}

#[derive(Deserialize)]
struct StaticConfig {
    targets: Vec<String>,
}

#[test]
fn prometheus_scrapes_every_long_running_service() -> anyhow::Result<()> {
    let secrets = generate_secrets()?;
    let config = parsed_config(secrets.path())?;
    let prometheus: Prometheus = serde_saphyr::from_str(&std::fs::read_to_string(
        repo().join("deploy/prometheus/prometheus.yml"),
    )?)?;
    let mut hosts = BTreeSet::new();
    for job in &prometheus.scrape_configs {
        for target in job.static_configs.iter().flat_map(|s| &s.targets) {
            let (host, port) = target
                .rsplit_once(':')
                .with_context(|| format!("job {}: target {target} has no port", job.job_name))?;
            port.parse::<u16>()?;
            assert!(
                config.services.contains_key(host),
                "job {}: {host} is not a compose service",
                job.job_name
            );
            hosts.insert(host.to_string());
        }
    }
    // Kafka and nginx have no Prometheus endpoint of their own (see the
    // comment in prometheus.yml); one-shot jobs are gone before a scrape.
    let unscraped = ["kafka", "nginx"];
    for (name, service) in &config.services {
        if service.restart.as_deref() == Some("no") || unscraped.contains(&name.as_str()) {
            continue;
        }
        assert!(hosts.contains(name), "Prometheus does not scrape {name}");
    }
    Ok(())
}

#[test]
fn the_dashboard_shows_metrics_the_services_export() -> anyhow::Result<()> {
    let dashboard: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        repo().join("deploy/grafana/dashboards/ecg-stream.json"),
    )?)?;
    // Each crate's metrics module lists its metrics in its docs.
    let exported: String = [
        "ingest/src/metrics.rs",
        "processor/src/metrics.rs",
        "query-api/src/metrics.rs",
    ]
    .iter()
    .map(|f| std::fs::read_to_string(repo().join(f)))
    .collect::<Result<_, _>>()?;
    let datasource: serde_json::Value =
        serde_saphyr::from_str::<serde_json::Value>(&std::fs::read_to_string(
            repo().join("deploy/grafana/provisioning/datasources/prometheus.yml"),
        )?)?;
    let uid = &datasource["datasources"][0]["uid"];

    let mut names = BTreeSet::new();
    let panels = dashboard["panels"].as_array().context("panels")?;
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        let targets = panel["targets"].as_array().context("targets")?;
        assert!(!targets.is_empty(), "panel {} has no query", panel["title"]);
        for target in targets {
            assert_eq!(&target["datasource"]["uid"], uid, "{}", panel["title"]);
            let expr = target["expr"].as_str().context("expr")?;
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("ecg_") {
                    names.insert(
                        word.trim_end_matches("_bucket")
                            .trim_end_matches("_sum")
                            .trim_end_matches("_count")
                            .to_string(),
                    );
                }
            }
        }
    }
    for name in &names {
        assert!(
            exported.contains(&format!("`{name}`")),
            "the dashboard queries {name}, which no service exports"
        );
    }
    // Each service's throughput is on the dashboard.
    for name in [
        "ecg_ingest_samples_accepted_total",
        "ecg_processor_samples_written_total",
        "ecg_processor_consumer_lag",
        "ecg_query_requests_total",
    ] {
        assert!(names.contains(name), "the dashboard lacks {name}");
    }
    Ok(())
}
