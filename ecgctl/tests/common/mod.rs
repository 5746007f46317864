//! What ecgctl's integration tests share: the repository, the tools venv's
//! Python, the real `ecgctl` binary run against a stack, and a lead's beats
//! read from the API with plain HTTP (so a paging mistake in the client
//! cannot hide on both sides).

#![allow(dead_code)] // each test file uses its own part

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, ensure};
use ecg_e2e::Stack;
use serde_json::Value;

/// The repository's root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The test tools venv's Python (`dev/stack.sh install`; `ECG_TOOLS_PYTHON`
/// overrides).
pub fn tools_python() -> PathBuf {
    std::env::var_os("ECG_TOOLS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".local/venv-tools/bin/python"))
}

/// Runs ecgctl against the services at `ingest` and `query`, with its token
/// cached in `home`; its stdout.
pub fn ecgctl<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(
    ingest: &str,
    query: &str,
    home: &Path,
    args: &[S],
) -> anyhow::Result<String> {
    let output = Command::new(env!("CARGO_BIN_EXE_ecgctl"))
        .args(args)
        .env("ECG_INGEST_URL", ingest)
        .env("ECG_QUERY_URL", query)
        .env("ECGCTL_HOME", home)
        .env("ECGCTL_CLIENT_SECRET", "demo-secret")
        .output()?;
    ensure!(
        output.status.success(),
        "ecgctl {args:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

/// Every beat of `lead` by plain HTTP, page by page, `limit` a page.
pub async fn api_beats(
    stack: &Stack,
    token: &str,
    id: uuid::Uuid,
    lead: &str,
    limit: u32,
) -> anyhow::Result<Vec<u64>> {
    let mut beats = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!(
            "{}/v1/ecgs/{id}/beats?lead={lead}&limit={limit}",
            stack.query
        );
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = stack
            .http
            .get(url)
            .bearer_auth(token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        for b in page["items"].as_array().context("items")? {
            beats.push(b["sample_index"].as_u64().context("sample_index")?);
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return Ok(beats),
        }
    }
}
