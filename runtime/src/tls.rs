//! Serving a service's router over plain HTTP or HTTPS (rustls), the same
//! way in every HTTP service: [`TlsConfig`] is their `[http.tls]` section,
//! [`serve`] runs the server until the shutdown token, then lets in-flight
//! requests finish.
//!
//! Every connection carries its peer address (`ConnectInfo<SocketAddr>`),
//! HTTPS or not: the token endpoint's per-address limits need it.
//! HTTP/1.1 and HTTP/2 are both served (ALPN over TLS). With TLS, plain
//! HTTP on the same port gets no answer. Certificates are read once at
//! start: replacing them takes a restart.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// `[http.tls]`: the server certificate (chain) and its private key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file: the certificate, then any intermediates.
    pub cert_file: PathBuf,
    /// PEM file: the private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

/// How [`serve`] runs.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Serve HTTPS with these files instead of plain HTTP.
    pub tls: Option<TlsConfig>,
    /// After the shutdown signal, how long in-flight requests may take
    /// before they are cut; `None`: as long as they need.
    pub shutdown_grace: Option<Duration>,
    /// Largest read buffer of one connection, in bytes (at least 8 KiB;
    /// hyper's default, 400 KiB, when `None`). hyper grows it to fit the
    /// bodies it reads and keeps it while the connection lives; capped, a
    /// larger body arrives in pieces.
    pub max_read_buffer_bytes: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("loading the TLS certificate {cert} and key {key}: {source}")]
    Tls {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves `app` on `listener` until `shutdown`, then stops accepting and
/// lets in-flight requests finish (within `options.shutdown_grace`).
/// `name` names the service in the log line.
pub async fn serve(
    name: &str,
    listener: TcpListener,
    app: Router,
    options: &ServeOptions,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let addr = listener.local_addr()?;
    // Read before anything is served: a bad file stops the start-up.
    let tls = match &options.tls {
        None => None,
        Some(tls) => Some(
            RustlsConfig::from_pem_file(&tls.cert_file, &tls.key_file)
                .await
                .map_err(|source| ServeError::Tls {
                    cert: tls.cert_file.clone(),
                    key: tls.key_file.clone(),
                    source,
                })?,
        ),
    };
    let handle = axum_server::Handle::new();
    let stopper = tokio::spawn({
        let handle = handle.clone();
        let grace = options.shutdown_grace;
        async move {
            shutdown.cancelled().await;
            handle.graceful_shutdown(grace);
        }
    });
    let listener = listener.into_std()?;
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let max_buf = options.max_read_buffer_bytes.map(|b| b.max(8192));
    let served = match tls {
        None => {
            tracing::info!(%addr, "{name} listening (http)");
            let mut server = axum_server::from_tcp(listener)?.handle(handle);
            if let Some(max) = max_buf {
                server.http_builder().http1().max_buf_size(max);
            }
            server.serve(app).await
        }
        Some(tls) => {
            tracing::info!(%addr, "{name} listening (https)");
            let mut server = axum_server::from_tcp_rustls(listener, tls)?.handle(handle);
            if let Some(max) = max_buf {
                server.http_builder().http1().max_buf_size(max);
            }
            server.serve(app).await
        }
    };
    stopper.abort();
    Ok(served?)
}
