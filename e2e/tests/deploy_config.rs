//! The deployment files, checked by the tools that read them, without a
//! Docker engine: `docker-compose config` (Debian's docker-compose parses
//! and validates the file, interpolation and merges included), `nginx -t`
//! (Debian's nginx) on the shipped template, the secrets script's output
//! as the services load it, and Prometheus and Grafana files against the
//! compose services and the metric names the code really exports.
//!
//! Least privilege: no service connects to ClickHouse as `default`, every
//! password comes from a file, each service loads (with figment, in a
//! process of its own, from the compose environment) its own ClickHouse
//! and Kafka users, Kafka's client listener is SASL_SSL (its scripts run
//! here in a dry run, the Kafka tools stubbed), and the three-broker file
//! replicates every topic three times with two in sync.
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
    #[serde(default)]
    secrets: Vec<ServiceSecret>,
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    volumes: Vec<String>,
}

#[derive(Deserialize)]
struct ServiceSecret {
    source: String,
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
    let migrate = built_binary("ecg-clickhouse", "ecg-migrate")?;
    let output = Command::new(repo().join("deploy/secrets.sh"))
        .env("ECG_SECRETS_DIR", dir.path())
        .env("ECG_HASH_SECRET", &hasher)
        .env("ECG_MIGRATE", &migrate)
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

/// `docker-compose config` of docker-compose.yml with the three-broker file.
fn parsed_cluster_config(secrets: &Path) -> anyhow::Result<ComposeFile> {
    let output = compose(
        &["-f", "docker-compose.kafka-cluster.yml", "config"],
        &[("ECG_SECRETS_DIR", secrets)],
    )?;
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

/// A directory standing for service `name`'s /run/secrets: links to the
/// generated files of the secrets it mounts, by their compose names.
fn run_secrets(config: &ComposeFile, name: &str) -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    let service = config.services.get(name).context(name.to_string())?;
    for s in &service.secrets {
        let file = &config
            .secrets
            .get(&s.source)
            .with_context(|| format!("{name} mounts an undeclared secret {}", s.source))?
            .file;
        std::os::unix::fs::symlink(file, dir.path().join(&s.source))?;
    }
    Ok(dir)
}

/// Service `name`'s compose environment, `/run/secrets` standing for `run`.
fn env_of(config: &ComposeFile, name: &str, run: &Path) -> Vec<(String, String)> {
    let run = run.display().to_string();
    config.services[name]
        .environment
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_deref()?.replace("/run/secrets", &run))))
        .collect()
}

/// The generated file of secret `name`, as text.
fn secret_text(config: &ComposeFile, name: &str) -> anyhow::Result<String> {
    let file = &config.secrets.get(name).context(name.to_string())?.file;
    Ok(std::fs::read_to_string(file)?)
}

const CHILD: &str = "DEPLOY_CONFIG_CHILD";

/// Not a check of its own: run by [`load_as`] in a process of its own, it
/// loads the configuration of service `$DEPLOY_CONFIG_CHILD` from the
/// environment, as that service's main.rs does, and prints what the parent
/// checks. Without the variable it does nothing.
#[test]
fn child_loads_a_service_config() -> anyhow::Result<()> {
    let Ok(service) = std::env::var(CHILD) else {
        return Ok(());
    };
    fn load<T: serde::Serialize + serde::de::DeserializeOwned + Default>() -> anyhow::Result<T> {
        ecg_runtime::load_config("/nonexistent.toml").map_err(|e| anyhow::anyhow!("{e}"))
    }
    let (clickhouse, kafka, brokers, proxies) = match service.as_str() {
        "ingest" => {
            let c: ecg_ingest::Config = load()?;
            (c.clickhouse, c.kafka.properties, c.kafka.brokers, vec![])
        }
        "processor" => {
            let c: ecg_processor::Config = load()?;
            (c.clickhouse, c.kafka.properties, c.kafka.brokers, vec![])
        }
        "query-api" => {
            let c: ecg_query_api::Config = load()?;
            let proxies = c.auth.token_limits.trusted_proxies.iter();
            let proxies = proxies.map(|n| n.to_string()).collect();
            (
                c.clickhouse,
                c.pipeline.properties,
                c.pipeline.brokers,
                proxies,
            )
        }
        other => anyhow::bail!("no service {other}"),
    };
    println!(
        "{CHILD} {}",
        serde_json::json!({
            "user": clickhouse.user, "password": clickhouse.password, "migrate": clickhouse.migrate,
            "kafka": kafka.0, "brokers": brokers, "trusted_proxies": proxies,
        })
    );
    Ok(())
}

/// Service `service`'s configuration loaded from `env` (and nothing else
/// of this process's environment), by [`child_loads_a_service_config`].
fn load_as(service: &str, env: &[(String, String)]) -> anyhow::Result<serde_json::Value> {
    let output = Command::new(std::env::current_exe()?)
        .args(["--exact", "child_loads_a_service_config", "--nocapture"])
        .args(["--test-threads", "1"])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env(CHILD, service)
        .output()?;
    let stdout = String::from_utf8(output.stdout)?;
    anyhow::ensure!(
        output.status.success(),
        "loading {service}'s configuration failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| Some(l.split_once(&format!("{CHILD} "))?.1))
        .with_context(|| format!("no configuration printed: {stdout}"))?;
    Ok(serde_json::from_str(line)?)
}

#[test]
fn no_service_connects_to_clickhouse_as_default_and_every_password_is_a_file() -> anyhow::Result<()>
{
    let secrets = generate_secrets()?;
    let config = parsed_config(secrets.path())?;
    let mut services = 0;
    for (name, service) in &config.services {
        if service.env("ECG_CLICKHOUSE__URL").is_none() {
            continue;
        }
        let file = service
            .env("ECG_CLICKHOUSE__PASSWORD_FILE")
            .with_context(|| format!("{name} has no ClickHouse password file"))?;
        let secret = file
            .strip_prefix("/run/secrets/")
            .with_context(|| format!("{name}: {file} is not a secret"))?;
        assert!(
            service.secrets.iter().any(|s| s.source == secret),
            "{name} does not mount {secret}"
        );
        let user = service.env("ECG_CLICKHOUSE__USER");
        if name == "migrate" {
            // The one-shot migrations: the admin, the only user allowed DDL.
            assert_eq!(
                (user, secret),
                (Some("default"), "clickhouse_admin_password")
            );
            continue;
        }
        let own = match name.as_str() {
            "query-api" => "query_api",
            n if n.starts_with("ingest-") => "ingest",
            n if n.starts_with("processor-") => "processor",
            other => anyhow::bail!("unexpected ClickHouse client {other}"),
        };
        assert_eq!(user, Some(own), "{name}'s ClickHouse user");
        assert_eq!(
            service.env("ECG_CLICKHOUSE__MIGRATE"),
            Some("false"),
            "{name}"
        );
        services += 1;
    }
    assert_eq!(services, 5, "ingest ×2, processor ×2, query-api");

    // No password in any environment: the text of every generated password
    // file is in no value of any service.
    let mut passwords = Vec::new();
    for entry in std::fs::read_dir(secrets.path())? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if (name.starts_with("clickhouse-") || name.starts_with("kafka-"))
            && path.extension().is_none()
        {
            passwords.push(std::fs::read_to_string(&path)?);
        }
    }
    assert_eq!(
        passwords.len(),
        8,
        "4 ClickHouse, 3 Kafka users, the keystore's"
    );
    for (name, service) in &config.services {
        for (key, value) in &service.environment {
            let value = value.as_deref().unwrap_or_default();
            assert!(
                !passwords.iter().any(|p| value.contains(p.as_str())),
                "{name}: {key} holds a password"
            );
        }
    }

    // ClickHouse: `default`'s password and the services' users come from
    // the generated users.d file, hashes only.
    let clickhouse = &config.services["clickhouse"];
    assert!(
        clickhouse
            .environment
            .keys()
            .all(|k| !k.contains("PASSWORD")),
        "a password in ClickHouse's environment"
    );
    let users = secrets.path().join("clickhouse-services.xml");
    assert!(
        clickhouse
            .volumes
            .iter()
            .any(|v| v.starts_with(&*users.to_string_lossy())
                && v.contains(":/etc/clickhouse-server/users.d/services.xml")),
        "ClickHouse does not load {}: {:?}",
        users.display(),
        clickhouse.volumes
    );
    let xml = std::fs::read_to_string(&users)?;
    assert!(xml.contains("<default replace=\"replace\">"), "{xml}");
    for user in ["<ingest>", "<processor>", "<query_api>"] {
        assert!(xml.contains(user), "{user} missing: {xml}");
    }
    assert_eq!(xml.matches("<password_sha256_hex>").count(), 4);
    assert!(!passwords.iter().any(|p| xml.contains(p.as_str())));

    // Each service, loading its configuration as it does at start, gets
    // its own ClickHouse user and that user's password from its file.
    for (name, service, secret) in [
        ("ingest-1", "ingest", "clickhouse_ingest_password"),
        ("processor-1", "processor", "clickhouse_processor_password"),
        ("query-api", "query-api", "clickhouse_query_api_password"),
    ] {
        let run = run_secrets(&config, name)?;
        let loaded = load_as(service, &env_of(&config, name, run.path()))?;
        assert_eq!(
            loaded["user"],
            config.services[name]
                .env("ECG_CLICKHOUSE__USER")
                .unwrap_or_default()
        );
        assert_eq!(loaded["password"], secret_text(&config, secret)?, "{name}");
        assert_eq!(loaded["migrate"], false, "{name}");
    }
    Ok(())
}

/// `deploy/kafka/start.sh` for compose service `name`, as a dry run: the
/// server properties it writes.
fn kafka_properties(config: &ComposeFile, name: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let service = &config.services[name];
    assert_eq!(
        service.entrypoint.as_deref(),
        Some(
            &[
                "/bin/bash".to_string(),
                "/opt/ecg/kafka/start.sh".to_string()
            ][..]
        ),
        "{name} does not run deploy/kafka/start.sh"
    );
    assert!(
        service
            .volumes
            .iter()
            .any(|v| v.ends_with("/deploy/kafka:/opt/ecg/kafka:ro")),
        "{name} does not mount deploy/kafka"
    );
    let run = run_secrets(config, name)?;
    let out = tempfile::tempdir()?;
    let output = Command::new("bash")
        .arg(repo().join("deploy/kafka/start.sh"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env_of(config, name, run.path()))
        .env("ECG_KAFKA_SECRETS", run.path())
        .env("ECG_KAFKA_CONFIG_DIR", out.path())
        .env("ECG_KAFKA_DRY_RUN", "1")
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "deploy/kafka/start.sh for {name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(out.path().join("server.properties"))?;
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// `deploy/kafka/init.sh` as compose runs service `kafka-init`, with
/// Kafka's tools stubbed: each call of a tool, as a line.
fn kafka_init_calls(config: &ComposeFile) -> anyhow::Result<Vec<String>> {
    let run = run_secrets(config, "kafka-init")?;
    let bin = tempfile::tempdir()?;
    let log = bin.path().join("calls.log");
    for tool in ["kafka-topics.sh", "kafka-configs.sh", "kafka-acls.sh"] {
        let path = bin.path().join(tool);
        std::fs::write(
            &path,
            format!("#!/bin/sh\necho \"{tool} $*\" >> '{}'\n", log.display()),
        )?;
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    }
    let output = Command::new("bash")
        .arg(repo().join("deploy/kafka/init.sh"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env_of(config, "kafka-init", run.path()))
        .env("ECG_KAFKA_SECRETS", run.path())
        .env("ECG_KAFKA_BIN", bin.path())
        .env("ECG_KAFKA_CONFIG_DIR", bin.path())
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "deploy/kafka/init.sh: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(std::fs::read_to_string(log)?
        .lines()
        .map(str::to_string)
        .collect())
}

/// The `--create` calls of `calls`, by topic: (replication factor,
/// min.insync.replicas).
fn created_topics(calls: &[String]) -> BTreeMap<String, (String, String)> {
    let mut topics = BTreeMap::new();
    for call in calls.iter().filter(|c| c.contains("--create")) {
        let words: Vec<&str> = call.split_whitespace().collect();
        let after = |flag: &str| {
            words
                .iter()
                .position(|w| *w == flag)
                .and_then(|i| words.get(i + 1))
                .map(|w| w.to_string())
                .unwrap_or_default()
        };
        let isr = words
            .iter()
            .find_map(|w| w.strip_prefix("min.insync.replicas="))
            .unwrap_or_default()
            .to_string();
        topics.insert(after("--topic"), (after("--replication-factor"), isr));
    }
    topics
}

#[test]
fn kafka_clients_authenticate_over_tls_each_as_its_own_user() -> anyhow::Result<()> {
    let secrets = generate_secrets()?;
    let config = parsed_config(secrets.path())?;

    // The broker: TLS on every listener, SASL_SSL on the clients' (:9092),
    // client certificates among brokers, ACLs with nothing allowed by default.
    let p = kafka_properties(&config, "kafka")?;
    let protocols: BTreeMap<&str, &str> = p["listener.security.protocol.map"]
        .split(',')
        .filter_map(|m| m.split_once(':'))
        .collect();
    assert!(
        protocols.values().all(|p| *p == "SSL" || *p == "SASL_SSL"),
        "a listener without TLS: {protocols:?}"
    );
    let client_listener = p["listeners"]
        .split(',')
        .find(|l| l.ends_with(":9092"))
        .and_then(|l| l.split_once("://"))
        .map(|(name, _)| name)
        .context("no listener on 9092")?;
    assert_eq!(protocols[client_listener], "SASL_SSL");
    assert_eq!(p["sasl.enabled.mechanisms"], "SCRAM-SHA-512");
    assert_eq!(p["listener.name.internal.ssl.client.auth"], "required");
    assert_eq!(p["listener.name.controller.ssl.client.auth"], "required");
    assert_eq!(p["allow.everyone.if.no.acl.found"], "false");
    assert!(p["authorizer.class.name"].ends_with("StandardAuthorizer"));
    assert_eq!(p["super.users"], "User:CN=kafka-broker");
    assert_eq!(
        (
            p["default.replication.factor"].as_str(),
            p["min.insync.replicas"].as_str()
        ),
        ("1", "1")
    );

    // Its keystore opens with its password and holds a certificate that
    // the CA the clients trust signed for every broker's name.
    let keystore = secrets.path().join("kafka-broker.p12");
    let cert = secrets.path().join("broker.pem");
    let opened = Command::new("openssl")
        .args(["pkcs12", "-nokeys", "-clcerts", "-in"])
        .arg(&keystore)
        .args(["-passin", &format!("pass:{}", p["ssl.keystore.password"])])
        .arg("-out")
        .arg(&cert)
        .output()?;
    assert!(
        opened.status.success(),
        "{}",
        String::from_utf8_lossy(&opened.stderr)
    );
    for host in ["kafka", "kafka-2", "kafka-3"] {
        let verified = Command::new("openssl")
            .args([
                "verify",
                "-purpose",
                "sslserver",
                "-verify_hostname",
                host,
                "-CAfile",
            ])
            .arg(secrets.path().join("kafka-ca.crt"))
            .arg(&cert)
            .output()?;
        assert!(
            verified.status.success(),
            "{host}: {}",
            String::from_utf8_lossy(&verified.stdout)
        );
    }

    // The services: SASL_SSL to the clients' listener as their own users,
    // trusting the CA; the users kafka-init creates, with those passwords.
    let calls = kafka_init_calls(&config)?;
    for (name, service, section_secret) in [
        ("ingest-1", "ingest", "ingest_config"),
        ("processor-1", "processor", "processor_config"),
        ("query-api", "query-api", "query_api_config"),
    ] {
        let s = &config.services[name];
        assert_eq!(
            s.env("ECG_CONFIG"),
            Some(format!("/run/secrets/{section_secret}").as_str())
        );
        assert!(s.secrets.iter().any(|m| m.source == "kafka_ca"), "{name}");
        let run = run_secrets(&config, name)?;
        let loaded = load_as(service, &env_of(&config, name, run.path()))?;
        let kafka = &loaded["kafka"];
        assert_eq!(kafka["security.protocol"], "SASL_SSL", "{name}");
        assert_eq!(kafka["sasl.mechanisms"], "SCRAM-SHA-512", "{name}");
        assert_eq!(kafka["sasl.username"], service, "{name}");
        assert_eq!(kafka["ssl.ca.location"], "/run/secrets/kafka_ca", "{name}");
        let password = secret_text(
            &config,
            &format!("kafka_{}_password", service.replace('-', "_")),
        )?;
        assert_eq!(kafka["sasl.password"], password.as_str(), "{name}");
        let brokers = loaded["brokers"].as_str().unwrap_or_default();
        assert!(
            brokers.split(',').all(|b| b.ends_with(":9092")),
            "{name}: {brokers}"
        );
        assert!(
            calls.iter().any(|c| c.starts_with("kafka-configs.sh")
                && c.contains(&format!("--entity-name {service} "))
                && c.contains(&format!("password={password}]"))),
            "kafka-init does not create {service} with its password: {calls:#?}"
        );
    }
    // ACLs: each service its own topic and group operations, query-api
    // describes only.
    let acls: Vec<&String> = calls
        .iter()
        .filter(|c| c.starts_with("kafka-acls.sh"))
        .collect();
    for (principal, operation, resource) in [
        ("User:ingest", "Write", "--topic ecg.chunks"),
        ("User:processor", "Read", "--topic ecg.chunks"),
        ("User:processor", "Write", "--topic ecg.chunks.dlq"),
        ("User:processor", "Read", "--group ecg-processor"),
        ("User:query-api", "Describe", "--group ecg-processor"),
    ] {
        assert!(
            acls.iter()
                .any(|c| c.contains(&format!("--allow-principal {principal} "))
                    && c.contains(&format!("--operation {operation}"))
                    && c.ends_with(resource)),
            "no ACL {principal} {operation} {resource}: {acls:#?}"
        );
    }
    assert!(
        !acls.iter().any(|c| c.contains("User:query-api")
            && (c.contains("--operation Write") || c.contains("--operation Read"))),
        "query-api may only describe: {acls:#?}"
    );
    assert!(
        !acls
            .iter()
            .any(|c| c.contains("User:ingest") && c.contains("--group"))
    );
    let topics = created_topics(&calls);
    assert_eq!(topics["ecg.chunks"], ("1".into(), "1".into()));

    // Behind nginx, query-api believes X-Forwarded-For from the compose
    // network only, whose range is fixed.
    let run = run_secrets(&config, "query-api")?;
    let loaded = load_as("query-api", &env_of(&config, "query-api", run.path()))?;
    assert_eq!(
        loaded["trusted_proxies"],
        serde_json::json!(["172.28.0.0/24"])
    );
    let compose_text = std::fs::read_to_string(repo().join("docker-compose.yml"))?;
    assert!(compose_text.contains("- subnet: ${ECG_COMPOSE_SUBNET:-172.28.0.0/24}"));
    Ok(())
}

#[test]
fn the_kafka_cluster_file_replicates_every_topic_three_times() -> anyhow::Result<()> {
    let secrets = generate_secrets()?;
    let config = parsed_cluster_config(secrets.path())?;
    let mut ids = BTreeSet::new();
    for name in ["kafka", "kafka-2", "kafka-3"] {
        let p = kafka_properties(&config, name)?;
        ids.insert(p["node.id"].clone());
        assert_eq!(
            p["controller.quorum.voters"].split(',').count(),
            3,
            "{name}"
        );
        for key in [
            "default.replication.factor",
            "offsets.topic.replication.factor",
            "transaction.state.log.replication.factor",
        ] {
            assert_eq!(p[key], "3", "{name}: {key}");
        }
        assert_eq!(p["min.insync.replicas"], "2", "{name}");
        assert_eq!(p["transaction.state.log.min.isr"], "2", "{name}");
        assert!(p["advertised.listeners"].contains(&format!("//{name}:9092")));
    }
    assert_eq!(ids.len(), 3, "node ids must differ: {ids:?}");

    let calls = kafka_init_calls(&config)?;
    let topics = created_topics(&calls);
    for topic in ["ecg.chunks", "ecg.chunks.dlq"] {
        assert_eq!(topics[topic], ("3".into(), "2".into()), "{topic}");
    }
    assert!(
        calls
            .iter()
            .all(|c| c.contains("kafka:9094,kafka-2:9094,kafka-3:9094"))
    );
    for name in ["ingest-1", "ingest-2", "processor-1", "processor-2"] {
        assert_eq!(
            config.services[name].env("ECG_KAFKA__BROKERS"),
            Some("kafka:9092,kafka-2:9092,kafka-3:9092"),
            "{name}"
        );
    }
    assert_eq!(
        config.services["query-api"].env("ECG_PIPELINE__BROKERS"),
        Some("kafka:9092,kafka-2:9092,kafka-3:9092")
    );
    Ok(())
}
