//! Helpers for the query API's tests: open and stream ECGs through the
//! gateway, and read the API as a client would.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{Stack, wait_for};

impl Stack {
    /// Opens an ECG (`POST /v1/ecgs` with `body`) and returns its id.
    pub async fn open_ecg(&self, token: &str, body: Value) -> anyhow::Result<Uuid> {
        let r = self
            .http
            .post(format!("{}/v1/ecgs", self.ingest))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await?;
        let status = r.status();
        let created: Value = r.json().await?;
        ensure!(status.is_success(), "POST /v1/ecgs: {status} {created}");
        created["id"]
            .as_str()
            .context("no id")?
            .parse()
            .context("id is not a UUID")
    }

    /// Sends one JSON chunk (`samples`: lead name to values).
    pub async fn send_chunk(
        &self,
        token: &str,
        id: Uuid,
        seq: u32,
        samples: Value,
        last: bool,
    ) -> anyhow::Result<()> {
        let r = self
            .http
            .post(format!("{}/v1/ecgs/{id}/chunks", self.ingest))
            .bearer_auth(token)
            .json(&json!({"seq": seq, "samples": samples, "final": last}))
            .send()
            .await?;
        let status = r.status();
        ensure!(
            status.is_success(),
            "chunk {seq}: {status} {}",
            r.text().await?
        );
        Ok(())
    }

    /// `POST` of a JSON body to the gateway: the status code and the JSON
    /// answer (null when the answer is not JSON).
    pub async fn post_ingest(
        &self,
        token: &str,
        path: &str,
        body: &Value,
    ) -> anyhow::Result<(u16, Value)> {
        let r = self
            .http
            .post(format!("{}{path}", self.ingest))
            .bearer_auth(token)
            .json(body)
            .send()
            .await?;
        let status = r.status().as_u16();
        let bytes = r.bytes().await?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    /// `GET` on the query API: the status code and the JSON body (null when
    /// the body is not JSON).
    pub async fn get_json(&self, token: Option<&str>, path: &str) -> anyhow::Result<(u16, Value)> {
        let mut req = self.http.get(format!("{}{path}", self.query));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await?;
        let status = r.status().as_u16();
        let bytes = r.bytes().await?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    /// Waits until the ECG's status is `complete` and every sample of it is
    /// readable in `samples` (`expected_rows`, all leads together).
    pub async fn wait_complete(
        &self,
        token: &str,
        id: Uuid,
        expected_rows: u64,
    ) -> anyhow::Result<()> {
        wait_for(Duration::from_secs(60), "the ECG to complete", || async {
            let (_, status) = self
                .get_json(Some(token), &format!("/v1/ecgs/{id}"))
                .await?;
            ensure!(status["status"] != "failed", "ECG failed: {status}");
            let rows = self
                .count("SELECT count() FROM samples WHERE ecg_id = ?", id)
                .await?;
            Ok(status["status"] == "complete" && rows == expected_rows)
        })
        .await
    }
}

/// A second query API on a stack's database, configured apart (e.g. smaller
/// export pages), issuing its own tokens; stopped when dropped.
#[derive(Debug)]
pub struct ExtraQueryApi {
    pub url: String,
    http: reqwest::Client,
    shutdown: tokio_util::sync::CancellationToken,
    _keys: crate::TempDir,
}

impl Drop for ExtraQueryApi {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl ExtraQueryApi {
    /// A token of its own issuer for a client of the default set.
    pub async fn token(&self, client: &str, secret: &str) -> anyhow::Result<String> {
        let r = self
            .http
            .post(format!("{}/oauth/token", self.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=client_credentials&client_id={client}&client_secret={secret}"
            ))
            .send()
            .await?;
        let status = r.status();
        let json: Value = r.json().await?;
        ensure!(status.is_success(), "token: {status} {json}");
        Ok(json["access_token"]
            .as_str()
            .context("no access_token")?
            .to_owned())
    }
}

impl Stack {
    /// Starts an [`ExtraQueryApi`] on this stack's database, with the
    /// stack's settings changed by `configure`.
    pub async fn extra_query_api(
        &self,
        configure: impl FnOnce(&mut ecg_query_api::Config),
    ) -> anyhow::Result<ExtraQueryApi> {
        let (listener, addr) = crate::bind().await?;
        let url = format!("http://{addr}");
        let keys = crate::TempDir(
            std::env::temp_dir().join(format!("ecg-e2e-extra-{}", Uuid::new_v4().simple())),
        );
        let mut c = ecg_query_api::Config::default();
        c.http.addr = addr;
        c.clickhouse = self.clickhouse.clone();
        c.auth.issuer = url.clone();
        c.auth.key_file = keys.0.join("signing-key.pem");
        c.pipeline.brokers = self.brokers.clone();
        c.pipeline.topic = self.topic.clone();
        configure(&mut c);
        let shutdown = tokio_util::sync::CancellationToken::new();
        tokio::spawn(ecg_query_api::run_with_listener(
            c,
            listener,
            shutdown.clone(),
        ));
        let http = self.http.clone();
        let health = format!("{url}/healthz");
        wait_for(Duration::from_secs(30), "the extra query API", || {
            let (http, health) = (http.clone(), health.clone());
            async move {
                Ok(http
                    .get(&health)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success()))
            }
        })
        .await?;
        Ok(ExtraQueryApi {
            url,
            http: self.http.clone(),
            shutdown,
            _keys: keys,
        })
    }
}
