//! `ecgctl login` and the cached token. The token (never the secret) is kept
//! in `<home>/token.json`, readable by its owner only, with its expiry and
//! the query API that issued it; other commands use it until it expires
//! and then ask for a new `login`.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use ecg_client::Api;
use serde::{Deserialize, Serialize};

use crate::cli::{Endpoints, Login};

/// What `login` caches.
#[derive(Debug, Serialize, Deserialize)]
struct Cached {
    query: String,
    client_id: String,
    access_token: String,
    /// Unix seconds.
    expires_at: u64,
}

fn home(endpoints: &Endpoints) -> anyhow::Result<PathBuf> {
    if let Some(h) = &endpoints.home {
        return Ok(h.clone());
    }
    let base = match std::env::var_os("XDG_CONFIG_HOME") {
        Some(x) if !x.is_empty() => PathBuf::from(x),
        _ => {
            PathBuf::from(std::env::var_os("HOME").context("neither ECGCTL_HOME nor HOME is set")?)
                .join(".config")
        }
    };
    Ok(base.join("ecgctl"))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Gets a token and caches it.
pub async fn login(
    http: &reqwest::Client,
    endpoints: &Endpoints,
    login: &Login,
) -> anyhow::Result<()> {
    let token = ecg_client::token(
        http,
        &endpoints.query,
        &login.client_id,
        &login.client_secret,
    )
    .await
    .with_context(|| format!("logging in to {}", endpoints.query))?;
    let cached = Cached {
        query: endpoints.query.clone(),
        client_id: login.client_id.clone(),
        access_token: token.access_token,
        expires_at: now() + token.expires_in,
    };
    let dir = home(endpoints)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("token.json");
    write_private(&path, &serde_json::to_vec_pretty(&cached)?)
        .with_context(|| format!("writing {}", path.display()))?;
    eprintln!(
        "logged in as {} (scopes: {}), token valid {} s, cached in {}",
        login.client_id,
        token.scope,
        token.expires_in,
        path.display()
    );
    Ok(())
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// The API with the cached token.
pub fn api(http: &reqwest::Client, endpoints: &Endpoints) -> anyhow::Result<Api> {
    let path = home(endpoints)?.join("token.json");
    let bytes = std::fs::read(&path).with_context(|| {
        format!(
            "no cached token in {}; run `ecgctl login` first",
            path.display()
        )
    })?;
    let cached: Cached =
        serde_json::from_slice(&bytes).with_context(|| format!("reading {}", path.display()))?;
    if cached.query != endpoints.query {
        bail!(
            "the cached token is from {}, not {}; run `ecgctl login` again",
            cached.query,
            endpoints.query
        );
    }
    // A minute of margin, so a long upload does not start on a dying token.
    if cached.expires_at < now() + 60 {
        bail!(
            "the token of {} has expired; run `ecgctl login` again",
            cached.client_id
        );
    }
    Ok(Api::new(
        http.clone(),
        &endpoints.ingest,
        &endpoints.query,
        &cached.access_token,
    ))
}
