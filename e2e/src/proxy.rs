//! A TCP proxy a test can cut: "ClickHouse is unreachable" for one service
//! without stopping the ClickHouse every other test shares.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

/// Forwards `127.0.0.1:<port>` to a target until cut.
#[derive(Debug)]
pub struct Proxy {
    pub addr: SocketAddr,
    cut: Arc<AtomicBool>,
    cutting: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Starts forwarding to `target` (`host:port`).
    pub async fn start(target: &str) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let cut = Arc::new(AtomicBool::new(false));
        let cutting = Arc::new(Notify::new());
        let target = target.to_string();
        let task = tokio::spawn({
            let (cut, cutting) = (cut.clone(), cutting.clone());
            async move {
                let mut connections = JoinSet::new();
                loop {
                    tokio::select! {
                        accepted = listener.accept() => {
                            let Ok((client, _)) = accepted else { continue };
                            if cut.load(Ordering::SeqCst) {
                                drop(client); // refused: closed at once
                                continue;
                            }
                            let target = target.clone();
                            connections.spawn(async move {
                                if let Ok(mut server) = TcpStream::connect(&target).await {
                                    let mut client = client;
                                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                                }
                            });
                        }
                        () = cutting.notified() => connections.abort_all(),
                        Some(_) = connections.join_next(), if !connections.is_empty() => {}
                    }
                }
            }
        });
        Ok(Proxy {
            addr,
            cut,
            cutting,
            task,
        })
    }

    /// `http://<addr>`, for an HTTP target.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Drops every open connection and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.cutting.notify_one();
    }

    /// Forwards again.
    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
