//! A real headless Chromium driven over WebDriver (chromedriver + the
//! `fantoccini` client), for tests of the dashboard as a person sees it.
//!
//! It never downloads a browser: it uses Debian's `chromium` and
//! `chromium-driver` (paths overridable with `ECG_TEST_CHROMIUM` and
//! `ECG_TEST_CHROMEDRIVER`), and fails with a clear message when they are
//! missing, so a machine without them fails the test rather than skipping it.
//! Each [`Browser`] has its own chromedriver on a free port and a fresh
//! profile directory; both go away on drop.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

/// Viewport of every test browser: wide enough for the plot, tall enough
/// for a screenshot of an ECG page with 12 leads.
pub const WINDOW: (u32, u32) = (1280, 1500);

/// A headless Chromium session and the chromedriver serving it.
#[derive(Debug)]
pub struct Browser {
    pub client: Client,
    driver: Child,
    profile: PathBuf,
}

fn binary(var: &str, default: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from);
    if !path.is_file() {
        bail!(
            "{} not found: the dashboard test needs a real headless Chromium. Install the Debian \
             packages `chromium` and `chromium-driver` (apt-get install -y chromium \
             chromium-driver; `make test` does, through dev/system-packages.sh), or set {var} \
             to the binary",
            path.display()
        );
    }
    Ok(path)
}

impl Browser {
    /// Starts chromedriver and opens a Chromium session.
    pub async fn start(name: &str) -> anyhow::Result<Browser> {
        let chromium = binary("ECG_TEST_CHROMIUM", "/usr/bin/chromium")?;
        let chromedriver = binary("ECG_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")?;
        let port = free_port()?;
        // Its own process group, which Chromium joins: on drop the whole
        // group is killed, so a failed test leaves no browser behind even
        // when the session could not be closed.
        let driver = Command::new(&chromedriver)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", chromedriver.display()))?;
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        crate::wait_for(
            Duration::from_secs(20),
            "chromedriver to be ready",
            || async {
                let Ok(r) = http.get(format!("{url}/status")).send().await else {
                    return Ok(false);
                };
                let body: serde_json::Value = r.json().await.unwrap_or_default();
                Ok(body["value"]["ready"] == true)
            },
        )
        .await?;

        let profile = std::env::temp_dir().join(format!(
            "ecg-e2e-chromium-{name}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&profile)?;
        let capabilities = json!({
            "browserName": "chrome",
            // The page's console (script errors, CSP refusals), for [`Browser::console_errors`].
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": chromium,
                "args": chromium_args(&profile),
            }
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("a json! object literal")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&url)
            .await
            .with_context(|| format!("opening a Chromium session through chromedriver at {url}"))?;
        Ok(Browser {
            client,
            driver,
            profile,
        })
    }

    /// Evaluates `script` (a function body that `return`s JSON) in the page.
    pub async fn eval(&self, script: &str) -> anyhow::Result<serde_json::Value> {
        Ok(self.client.execute(script, Vec::new()).await?)
    }

    /// Polls `script` until it returns `true`, failing after `deadline`
    /// with the last value of `describe` (the page state that matters).
    pub async fn wait_until(
        &self,
        deadline: Duration,
        what: &str,
        script: &str,
    ) -> anyhow::Result<()> {
        crate::wait_for(deadline, what, || async {
            Ok(self.eval(script).await? == serde_json::Value::Bool(true))
        })
        .await
    }

    /// Saves a PNG of the viewport to `path`.
    pub async fn screenshot(&self, path: &Path) -> anyhow::Result<()> {
        let png = self.client.screenshot().await?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
    }

    /// Saves a PNG of the whole page: the window grows to the page's height
    /// for the shot, then returns to [`WINDOW`].
    pub async fn screenshot_full_page(&self, path: &Path) -> anyhow::Result<()> {
        let size = self
            .eval(
                "return [document.documentElement.scrollHeight, \
                 window.outerHeight - window.innerHeight];",
            )
            .await?;
        let page = size[0].as_u64().context("scrollHeight")?;
        let chrome = size[1].as_u64().unwrap_or(0);
        let height = u32::try_from(page + chrome)?;
        self.client.set_window_size(WINDOW.0, height).await?;
        let shot = self.screenshot(path).await;
        self.client.set_window_size(WINDOW.0, WINDOW.1).await?;
        shot
    }

    /// The console's errors since the last call (chromedriver hands each
    /// entry out once): uncaught exceptions, CSP refusals, failed loads.
    pub async fn console_errors(&self) -> anyhow::Result<Vec<String>> {
        let log = self.client.issue_cmd(BrowserLog).await?;
        Ok(log
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            .filter_map(|e| e["message"].as_str().map(str::to_string))
            .collect())
    }

    /// Ends the session (closing Chromium) and chromedriver.
    pub async fn close(self) -> anyhow::Result<()> {
        self.client.clone().close().await?;
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // std cannot signal a process group; kill(1) can. Chromium would
        // outlive a killed chromedriver otherwise.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// chromedriver's log endpoint (not in the W3C standard, so not in fantoccini).
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (reqwest::Method, Option<String>) {
        (reqwest::Method::POST, Some(r#"{"type":"browser"}"#.into()))
    }
}

/// Headless, and nothing that reaches the network on its own (there is none
/// on the test machines): no background updates, sync, QUIC or first-run.
fn chromium_args(profile: &Path) -> Vec<String> {
    let (w, h) = WINDOW;
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-quic",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync",
        // No crash handler: it runs in a session of its own and would outlive the test.
        "--disable-crash-reporter",
        "--disable-breakpad",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        format!("--window-size={w},{h}"),
        format!("--user-data-dir={}", profile.display()),
    ])
    .collect()
}

/// A port nobody listens on now (chromedriver binds it right after).
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
