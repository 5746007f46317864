//! A small client of the v1 API, used by `ecgctl` and `ecg-sim`: an OAuth2
//! client-credentials token from query-api, then ECGs opened, streamed and
//! queried with it (status, insights, beats page by page). Bodies are
//! `ecg-schemas` types, so the client and the services cannot disagree on a
//! field.
//!
//! Errors keep what a caller needs to react: the HTTP status, the API's
//! error body, and `Retry-After` (429 and 503 say when to try again).

use std::time::Duration;

use ecg_schemas::EcgStatus;
use ecg_schemas::api::{
    Accepted, Beat, BeatsPage, ChunkRequest, CreateEcg, EndStream, ErrorBody, Insights,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

/// The media type of FHIR's JSON.
pub const FHIR_JSON: &str = "application/fhir+json";

/// The `next` page of a paged export, from its `Link` header.
pub fn next_link(response: &reqwest::Response) -> Option<String> {
    let link = response.headers().get("link")?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == "rel=\"next\"" || p.trim() == "rel=next")
            .then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            })
    })
}

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No answer: connection refused or reset, timeout.
    #[error("{0}")]
    Transport(#[from] reqwest::Error),
    /// The API answered with an error status.
    #[error("{status}: {message}")]
    Api {
        status: u16,
        message: String,
        /// The API's error body, when it sent one.
        body: Option<ErrorBody>,
        retry_after: Option<Duration>,
    },
    /// A success whose body is not what the API documents.
    #[error("unexpected answer: {0}")]
    Decode(String),
}

impl ClientError {
    /// The HTTP status, or `None` when there was no answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the same request may succeed later: 429, 503, or no answer.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Transport(_) => true,
            ClientError::Api { status, .. } => matches!(status, 429 | 502 | 503 | 504),
            ClientError::Decode(_) => false,
        }
    }

    /// How long the server asked to wait before retrying.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ClientError::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// An access token from `POST /oauth/token`.
#[derive(Debug, Clone, Deserialize)]
pub struct Token {
    pub access_token: String,
    /// Seconds the token is valid for.
    pub expires_in: u64,
    #[serde(default)]
    pub scope: String,
}

/// Asks query-api at `query` for a token with the client credentials.
pub async fn token(
    http: &reqwest::Client,
    query: &str,
    client_id: &str,
    secret: &str,
) -> Result<Token, ClientError> {
    let response = http
        .post(format!("{}/oauth/token", query.trim_end_matches('/')))
        .basic_auth(client_id, Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await?;
    if !response.status().is_success() {
        let status = response.status().as_u16();
        // RFC 6749 errors: {"error", "error_description"}.
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let message = format!(
            "{} {}",
            body["error"].as_str().unwrap_or("token request refused"),
            body["error_description"].as_str().unwrap_or("")
        );
        return Err(ClientError::Api {
            status,
            message: message.trim().to_string(),
            body: None,
            retry_after: None,
        });
    }
    decode(response).await
}

/// The API of one deployment, with a token.
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    ingest: String,
    query: String,
    token: String,
}

impl Api {
    /// `ingest` and `query` are the two services' base URLs.
    pub fn new(http: reqwest::Client, ingest: &str, query: &str, token: &str) -> Self {
        Api {
            http,
            ingest: ingest.trim_end_matches('/').to_string(),
            query: query.trim_end_matches('/').to_string(),
            token: token.to_string(),
        }
    }

    /// `POST /v1/ecgs`.
    pub async fn create_ecg(&self, ecg: &CreateEcg) -> Result<Accepted, ClientError> {
        self.create_ecg_once(ecg, None).await
    }

    /// `POST /v1/ecgs` with an `Idempotency-Key`: resent with the same key
    /// (after a 503, a timeout or a lost answer), the create answers the
    /// same ECG and produces nothing again.
    pub async fn create_ecg_once(
        &self,
        ecg: &CreateEcg,
        idempotency_key: Option<&str>,
    ) -> Result<Accepted, ClientError> {
        let mut request = self
            .http
            .post(format!("{}/v1/ecgs", self.ingest))
            .bearer_auth(&self.token)
            .json(ecg);
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        decode(request.send().await?).await
    }

    /// `POST /v1/ecgs/{id}/chunks` with a JSON body.
    pub async fn post_chunk(
        &self,
        id: Uuid,
        chunk: &ChunkRequest,
    ) -> Result<Accepted, ClientError> {
        let body = serde_json::to_vec(chunk).map_err(|e| ClientError::Decode(e.to_string()))?;
        self.post_chunk_json(id, body).await
    }

    /// `POST /v1/ecgs/{id}/chunks` with an already serialised
    /// [`ChunkRequest`].
    pub async fn post_chunk_json(&self, id: Uuid, body: Vec<u8>) -> Result<Accepted, ClientError> {
        let r = self
            .http
            .post(format!("{}/v1/ecgs/{id}/chunks", self.ingest))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        decode(r).await
    }

    /// `POST /v1/ecgs/{id}/end`: chunk `final_seq` is the stream's last.
    pub async fn end_stream(&self, id: Uuid, final_seq: u32) -> Result<Accepted, ClientError> {
        let r = self
            .http
            .post(format!("{}/v1/ecgs/{id}/end", self.ingest))
            .bearer_auth(&self.token)
            .json(&EndStream { final_seq })
            .send()
            .await?;
        decode(r).await
    }

    /// `PUT /v1/ecgs/{id}/signal` with a CSV body of any length, streamed.
    pub async fn put_signal_csv(
        &self,
        id: Uuid,
        body: reqwest::Body,
    ) -> Result<Accepted, ClientError> {
        let r = self
            .http
            .put(format!("{}/v1/ecgs/{id}/signal", self.ingest))
            .bearer_auth(&self.token)
            .header("content-type", "text/csv")
            .body(body)
            .send()
            .await?;
        decode(r).await
    }

    /// `POST /v1/ecgs` with an HL7 FHIR `Observation` (its JSON text).
    pub async fn create_ecg_fhir(&self, observation: Vec<u8>) -> Result<Accepted, ClientError> {
        let r = self
            .http
            .post(format!("{}/v1/ecgs", self.ingest))
            .bearer_auth(&self.token)
            .header("content-type", FHIR_JSON)
            .body(observation)
            .send()
            .await?;
        decode(r).await
    }

    /// A streamed export of the query API (`path_and_query` from `/v1/`,
    /// or a `Link` of a previous page), once its status says success: read
    /// its body as it arrives (`Response::chunk`, `bytes_stream`).
    pub async fn export(&self, path_and_query: &str) -> Result<reqwest::Response, ClientError> {
        let r = self
            .http
            .get(format!("{}{path_and_query}", self.query))
            .bearer_auth(&self.token)
            .send()
            .await?;
        if r.status().is_success() {
            return Ok(r);
        }
        Err(decode::<serde_json::Value>(r)
            .await
            .err()
            .unwrap_or_else(|| ClientError::Decode("an error status with a success body".into())))
    }

    /// `GET /v1/ecgs/{id}`.
    pub async fn status(&self, id: Uuid) -> Result<EcgStatus, ClientError> {
        self.get(&format!("/v1/ecgs/{id}")).await
    }

    /// `GET /v1/ecgs/{id}/insights`.
    pub async fn insights(&self, id: Uuid) -> Result<Insights, ClientError> {
        self.get(&format!("/v1/ecgs/{id}/insights")).await
    }

    /// `GET /v1/ecgs/{id}/beats`: one page of a lead's beats.
    pub async fn beats_page(
        &self,
        id: Uuid,
        query: &BeatsQuery<'_>,
        cursor: Option<&str>,
    ) -> Result<BeatsPage, ClientError> {
        let mut url = reqwest::Url::parse(&format!("{}/v1/ecgs/{id}/beats", self.query))
            .map_err(|e| ClientError::Decode(format!("query API URL {}: {e}", self.query)))?;
        {
            let mut pairs = url.query_pairs_mut();
            if let Some(lead) = query.lead {
                pairs.append_pair("lead", lead);
            }
            for (name, t) in [("from", query.from), ("to", query.to)] {
                if let Some(t) = t {
                    // Formatting fails only for years outside 0..=9999,
                    // which the API would refuse anyway.
                    let t = t
                        .format(&Rfc3339)
                        .map_err(|e| ClientError::Decode(format!("{name}: {e}")))?;
                    pairs.append_pair(name, &t);
                }
            }
            if let Some(limit) = query.limit {
                pairs.append_pair("limit", &limit.to_string());
            }
            if let Some(cursor) = cursor {
                pairs.append_pair("cursor", cursor);
            }
        }
        let r = self.http.get(url).bearer_auth(&self.token).send().await?;
        decode(r).await
    }

    /// `GET /v1/ecgs/{id}/beats`, every page: all of a lead's beats in
    /// `lead` (default: the ECG's first lead), in sample order.
    pub async fn beats(&self, id: Uuid, query: &BeatsQuery<'_>) -> Result<Vec<Beat>, ClientError> {
        let mut beats = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self.beats_page(id, query, cursor.as_deref()).await?;
            beats.extend(page.items);
            match page.next_cursor {
                // A cursor that does not move would loop forever.
                Some(next) if cursor.as_deref() == Some(next.as_str()) => {
                    return Err(ClientError::Decode(format!(
                        "the beats of ECG {id} returned cursor {next} twice"
                    )));
                }
                Some(next) => cursor = Some(next),
                None => return Ok(beats),
            }
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let r = self
            .http
            .get(format!("{}{path}", self.query))
            .bearer_auth(&self.token)
            .send()
            .await?;
        decode(r).await
    }
}

/// Which beats [`Api::beats`] and [`Api::beats_page`] ask for; the default
/// is every beat of the ECG's first lead, pages of the API's default size.
#[derive(Debug, Clone, Copy, Default)]
pub struct BeatsQuery<'a> {
    /// The lead (default: the ECG's first).
    pub lead: Option<&'a str>,
    /// Beats at or after this time.
    pub from: Option<OffsetDateTime>,
    /// Beats before this time.
    pub to: Option<OffsetDateTime>,
    /// Beats per page, 1 to 10,000.
    pub limit: Option<u64>,
}

async fn decode<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, ClientError> {
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs);
    let bytes = response.bytes().await?;
    if !status.is_success() {
        let body: Option<ErrorBody> = serde_json::from_slice(&bytes).ok();
        let message = match &body {
            Some(b) => b.message.clone(),
            None => String::from_utf8_lossy(&bytes).chars().take(500).collect(),
        };
        return Err(ClientError::Api {
            status: status.as_u16(),
            message,
            body,
            retry_after,
        });
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        ClientError::Decode(format!(
            "{e}: {}",
            String::from_utf8_lossy(&bytes)
                .chars()
                .take(200)
                .collect::<String>()
        ))
    })
}
