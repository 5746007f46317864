//! The services as real operating-system processes. The tests run the
//! processor so, for faults an in-process task cannot show: SIGKILL (no
//! drain, no goodbye to the group), SIGTERM (graceful leave), and several
//! group members at once. The pipeline benchmark runs all three so, to
//! measure each one's memory.
//!
//! The binaries are the workspace's (built by `cargo test --workspace`;
//! built here on first use otherwise), configured through `ECG_*`
//! environment variables exactly as an operator would.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use anyhow::{Context as _, bail};

/// A workspace binary, built once per test process if missing.
fn binary(package: &'static str, bin: &'static str) -> anyhow::Result<PathBuf> {
    static BUILT: OnceLock<Mutex<HashMap<&'static str, Result<PathBuf, String>>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .expect("not poisoned");
    built
        .entry(bin)
        .or_insert_with(|| crate::binary::built_binary(package, bin).map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

/// One service process (a processor in the tests; any of the three services
/// in the pipeline benchmark); killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct ServiceProcess {
    child: Option<Child>,
    /// The binary's name, for messages.
    bin: &'static str,
    /// `http://127.0.0.1:port`: `/healthz` and `/metrics`.
    pub http: String,
    pub log: PathBuf,
}

/// The processor as the tests use it.
pub type ProcessorProcess = ServiceProcess;

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

impl ServiceProcess {
    /// Starts a processor and waits until its health endpoint answers.
    pub async fn start(env: &ProcessorEnv, name: &str) -> anyhow::Result<Self> {
        let mut vars = vec![
            ("ECG_KAFKA__BROKERS".to_owned(), env.brokers.clone()),
            ("ECG_KAFKA__TOPIC".to_owned(), env.topic.clone()),
            ("ECG_KAFKA__GROUP_ID".to_owned(), env.group_id.clone()),
            ("ECG_CLICKHOUSE__URL".to_owned(), env.clickhouse_url.clone()),
            ("ECG_CLICKHOUSE__DATABASE".to_owned(), env.database.clone()),
            ("RUST_LOG".to_owned(), "info,ecg_processor=debug".to_owned()),
        ];
        vars.extend(env.extra.iter().cloned());
        let log = format!("{}-{name}", env.group_id);
        Self::spawn("ecg-processor", "processor", &log, free_port()?, &vars).await
    }

    /// Starts workspace binary `bin` of `package` listening on `port`
    /// (`ECG_HTTP__ADDR`), configured only by `env` (no `ECG_*` of the
    /// caller leaks through), logging to a temp file named after `log`, and
    /// waits until its `/healthz` answers.
    pub async fn spawn(
        package: &'static str,
        bin: &'static str,
        log: &str,
        port: u16,
        env: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let log = std::env::temp_dir().join(format!("ecg-e2e-{log}.log"));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let mut cmd = Command::new(binary(package, bin)?);
        for (k, _) in std::env::vars() {
            if k.starts_with("ECG_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("ECG_CONFIG", format!("/nonexistent/{bin}.toml"))
            .env("ECG_HTTP__ADDR", format!("127.0.0.1:{port}"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting the {bin} binary"))?;
        let mut process = ServiceProcess {
            child: Some(child),
            bin,
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
                    "{bin} exited during start-up ({status}); see {}",
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
                    "{bin} not healthy after 30 s; see {}",
                    process.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The process's peak resident set so far (`VmHWM`), in bytes.
    pub fn peak_rss_bytes(&self) -> anyhow::Result<u64> {
        let pid = self.child.as_ref().context("the process has ended")?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let kb = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .context("no VmHWM in /proc/<pid>/status")?;
        Ok(kb * 1024)
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
                    "{} exited with {status}; see {}",
                    self.bin,
                    self.log.display()
                );
                return Ok(());
            }
            if tokio::time::Instant::now() > until {
                let _ = child.kill();
                bail!("{} still running {deadline:?} after SIGTERM", self.bin);
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

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port free now (the OS picks it; the caller binds it soon after).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
