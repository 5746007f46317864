//! A private ClickHouse with users of the test's choosing: the stack's own
//! server, `dev/clickhouse_server.py` (chdb), started on free ports with
//! `--users-xml` (e.g. the analysts' logins of
//! [`ecg_clickhouse::access::users_xml`]), its data in a temp directory.
//! chdb reads users only at start, so a test that needs other users starts
//! another server. Killed (SIGKILL) and its directory removed on drop.
//!
//! Python comes from the stack's venv (`dev/stack.sh install`):
//! `ECG_TEST_VENV`, default `<repo>/.local/venv`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};

/// A running private ClickHouse.
#[derive(Debug)]
pub struct PrivateClickHouse {
    /// `http://127.0.0.1:port`.
    pub url: String,
    /// The native protocol's port.
    pub tcp_port: u16,
    http_port: u16,
    child: Child,
    dir: PathBuf,
    users: PathBuf,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn python() -> PathBuf {
    std::env::var_os("ECG_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".local/venv"))
        .join("bin/python")
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl PrivateClickHouse {
    /// Starts a server for test `name` with the users and profiles of
    /// `users_xml` (a users.d document) beside the `default` user, and waits
    /// until it answers `/ping`. A port taken between choosing and binding
    /// (another test) makes the server exit: then it starts again on others.
    pub async fn start(name: &str, users_xml: &str) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "ecg-clickhouse-{name}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ));
        std::fs::create_dir_all(&dir)?;
        let users = dir.join("analysts.xml");
        std::fs::write(&users, users_xml)?;
        let mut last_error = None;
        for _ in 0..3 {
            match Self::spawn(&dir, &users).await {
                Ok(server) => return Ok(server),
                Err(e) => last_error = Some(e),
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        Err(last_error.expect("three attempts"))
    }

    async fn spawn(dir: &std::path::Path, users: &std::path::Path) -> anyhow::Result<Self> {
        let (http_port, tcp_port) = (free_port()?, free_port()?);
        let log = dir.join("server.log");
        let out = std::fs::File::create(&log)?;
        let python = python();
        let child = Command::new(&python)
            .arg(repo().join("dev/clickhouse_server.py"))
            .arg("--dir")
            .arg(dir.join("data"))
            .args(["--http-port", &http_port.to_string()])
            .args(["--tcp-port", &tcp_port.to_string()])
            .arg("--users-xml")
            .arg(users)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {}; run dev/stack.sh install", python.display()))?;
        let mut server = PrivateClickHouse {
            url: format!("http://127.0.0.1:{http_port}"),
            tcp_port,
            http_port,
            child,
            dir: dir.to_path_buf(),
            users: users.to_path_buf(),
        };
        let ping = format!("{}/ping", server.url);
        let http = reqwest::Client::new();
        let until = tokio::time::Instant::now() + Duration::from_secs(60);
        let failure = loop {
            let up = http.get(&ping).send().await;
            if up.is_ok_and(|r| r.status().is_success()) {
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                break format!("clickhouse_server.py exited ({status}) during start-up");
            }
            if tokio::time::Instant::now() > until {
                break format!("ClickHouse at {} not up after 60 s", server.url);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        // Dropped as a failed start: killed, its directory left to `start`.
        server.dir = PathBuf::new();
        let output = std::fs::read_to_string(&log).unwrap_or_default();
        bail!("{failure}; its output:\n{output}")
    }
}

impl PrivateClickHouse {
    /// Kills the server (SIGKILL): a crash, its data left as it was.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same ports and data (after
    /// [`PrivateClickHouse::kill`]), and waits until it answers `/ping`.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        let log = self.dir.join("server.log");
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        self.child = Command::new(python())
            .arg(repo().join("dev/clickhouse_server.py"))
            .arg("--dir")
            .arg(self.dir.join("data"))
            .args(["--http-port", &self.http_port.to_string()])
            .args(["--tcp-port", &self.tcp_port.to_string()])
            .arg("--users-xml")
            .arg(&self.users)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()?;
        let ping = format!("{}/ping", self.url);
        let http = reqwest::Client::new();
        let until = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if http
                .get(&ping)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "ClickHouse exited ({status}) while restarting; see {}",
                    log.display()
                );
            }
            if tokio::time::Instant::now() > until {
                bail!(
                    "ClickHouse not up 60 s after a restart; see {}",
                    log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for PrivateClickHouse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
