//! The processor as a real operating-system process, for faults an
//! in-process task cannot show: SIGKILL (no drain, no goodbye to the group),
//! SIGTERM (graceful leave), and several group members at once.
//!
//! The binary is the workspace's `processor` (built by `cargo test
//! --workspace`; built here on first use otherwise), configured through
//! `ECG_*` environment variables exactly as an operator would.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context as _, bail};

/// The processor binary, built once per test process if missing.
fn binary() -> anyhow::Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            crate::binary::built_binary("ecg-processor", "processor").map_err(|e| format!("{e:#}"))
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

/// One processor process; killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct ProcessorProcess {
    child: Option<Child>,
    /// `http://127.0.0.1:port`: `/healthz` and `/metrics`.
    pub http: String,
    pub log: PathBuf,
}

/// What a processor process connects to.
#[derive(Debug, Clone)]
pub struct ProcessorEnv {
    pub brokers: String,
    pub topic: String,
    pub group_id: String,
    pub clickhouse_url: String,
    pub database: String,
    /// Extra `ECG_*` variables (e.g. `ECG_BATCH__MAX_LATENCY_MS`).
    pub extra: Vec<(String, String)>,
}

impl ProcessorProcess {
    /// Starts a processor and waits until its health endpoint answers.
    pub async fn start(env: &ProcessorEnv, name: &str) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = std::env::temp_dir().join(format!("ecg-e2e-{}-{name}.log", env.group_id));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let mut cmd = Command::new(binary()?);
        // Only what this process is given: no ECG_* leaking from the caller.
        for (k, _) in std::env::vars() {
            if k.starts_with("ECG_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("ECG_CONFIG", "/nonexistent/processor.toml")
            .env("ECG_HTTP__ADDR", format!("127.0.0.1:{port}"))
            .env("ECG_KAFKA__BROKERS", &env.brokers)
            .env("ECG_KAFKA__TOPIC", &env.topic)
            .env("ECG_KAFKA__GROUP_ID", &env.group_id)
            .env("ECG_CLICKHOUSE__URL", &env.clickhouse_url)
            .env("ECG_CLICKHOUSE__DATABASE", &env.database)
            .env("RUST_LOG", "info,ecg_processor=debug");
        for (k, v) in &env.extra {
            cmd.env(k, v);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting the processor binary")?;
        let mut process = ProcessorProcess {
            child: Some(child),
            http: format!("http://127.0.0.1:{port}"),
            log,
        };
        let url = format!("{}/healthz", process.http);
        let http = reqwest::Client::new();
        let until = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = process
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!(
                    "processor exited during start-up ({status}); see {}",
                    process.log.display()
                );
            }
            if http
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(process);
            }
            if tokio::time::Instant::now() > until {
                process.kill();
                bail!(
                    "processor not healthy after 30 s; see {}",
                    process.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL: no drain, no commit, no leaving the group.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for the process to drain and exit (at most
    /// `deadline`); its exit status must be success.
    pub async fn stop(&mut self, deadline: Duration) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .context("sending SIGTERM")?;
        let until = tokio::time::Instant::now() + deadline;
        loop {
            if let Some(status) = child.try_wait()? {
                anyhow::ensure!(
                    status.success(),
                    "processor exited with {status}; see {}",
                    self.log.display()
                );
                return Ok(());
            }
            if tokio::time::Instant::now() > until {
                let _ = child.kill();
                bail!("processor still running {deadline:?} after SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The value of a metric (summed over its label sets matching
    /// `labels`, e.g. `kind="revoke"`), from `/metrics`; 0 if absent.
    pub async fn metric(&self, name: &str, labels: &str) -> anyhow::Result<f64> {
        let text = reqwest::get(format!("{}/metrics", self.http))
            .await?
            .text()
            .await?;
        Ok(metric_value(&text, name, labels))
    }
}

/// Sums the samples of metric `name` whose label set contains `labels`.
pub fn metric_value(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            (metric == name && rest.contains(labels)).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

impl Drop for ProcessorProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
