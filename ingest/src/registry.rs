//! The ECG registry: table `ecgs` in ClickHouse (its SQL is
//! `ecg_clickhouse::ecgs`). The gateway writes a row when an ECG is opened
//! and reads it to check that a chunk's ECG exists, belongs to the caller's
//! tenant, and which leads it declared. An ECG's row changes once at most:
//! when its final seq becomes known (a whole-signal upload, a chunk marked
//! final, an end), the gateway writes it again with `final_seq`. A found row
//! is cached for the life of the process and replaced when this gateway
//! writes the final row; another gateway instance keeps its row without the
//! final seq, so a chunk it lets past the final one reaches the processor,
//! which ignores it (the ECG is unharmed).
//!
//! It also keeps the `Idempotency-Key`s of creates (table
//! `idempotency_keys`, see [`crate::idempotency`]).
//!
//! Failures: every call is bounded by `registry.timeout_ms`. ClickHouse out
//! of reach, too slow, or saying it cannot serve now (overloaded, read-only,
//! a replica missing) is [`RegistryError::Unavailable`], answered 503 with
//! `Retry-After` like a broker outage; anything else (a query the schema
//! refuses, a row that does not decode) is a bug, answered 500.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clickhouse::Client;
use ecg_clickhouse::idempotency::{self, KeyClaim};
use ecg_clickhouse::{EcgRow, blocks, ecgs};
use uuid::Uuid;

use crate::error::ApiError;

/// Bound on cached ECGs; past it the cache starts over (rows are cheap to
/// read again, and this keeps memory flat without an LRU).
const CACHE_LIMIT: usize = 100_000;

/// Registered ECGs by (tenant, id).
type Cache = HashMap<(String, Uuid), Arc<EcgRow>>;

/// How long one registry call may take by default (`registry.timeout_ms`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// ClickHouse error codes that say "not now" rather than "never": the
/// request may succeed when retried.
const TRANSIENT_CODES: &[u32] = &[
    3,   // UNEXPECTED_END_OF_FILE
    159, // TIMEOUT_EXCEEDED
    164, // READONLY
    202, // TOO_MANY_SIMULTANEOUS_QUERIES
    203, // NO_FREE_CONNECTION
    209, // SOCKET_TIMEOUT
    210, // NETWORK_ERROR
    236, // ABORTED
    241, // MEMORY_LIMIT_EXCEEDED
    242, // TABLE_IS_READ_ONLY
    252, // TOO_MANY_PARTS
    285, // TOO_FEW_LIVE_REPLICAS
    319, // UNKNOWN_STATUS_OF_INSERT
    394, // QUERY_WAS_CANCELLED
    425, // SYSTEM_ERROR
    439, // CANNOT_SCHEDULE_TASK
    999, // KEEPER_EXCEPTION
];

/// A registry call that failed, and whether retrying may help.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// ClickHouse is out of reach, too slow, or cannot serve now: 503.
    #[error("{doing}: {cause}")]
    Unavailable { doing: &'static str, cause: String },
    /// Anything else: a bug, 500.
    #[error("{doing}")]
    Failed {
        doing: &'static str,
        #[source]
        source: clickhouse::error::Error,
    },
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Unavailable { .. } => ApiError::RegistryUnavailable(e.to_string()),
            RegistryError::Failed { .. } => ApiError::Internal(anyhow::Error::new(e)),
        }
    }
}

/// Whether `e` says ClickHouse cannot serve now (rather than that the
/// gateway asked for something wrong).
pub fn is_outage(e: &clickhouse::error::Error) -> bool {
    use clickhouse::error::Error;
    match e {
        Error::Network(_) | Error::TimedOut => true,
        Error::BadResponse(reason) => match exception_code(reason) {
            Some(code) => TRANSIENT_CODES.contains(&code),
            // Not ClickHouse's own exception: what stands in front of it (a
            // proxy, a load balancer) answered instead, e.g. 502 or 503.
            None => true,
        },
        _ => false,
    }
}

/// The code of a ClickHouse exception (`Code: 241. DB::Exception: ...`).
fn exception_code(reason: &str) -> Option<u32> {
    let rest = reason.trim_start().strip_prefix("Code:")?.trim_start();
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

#[derive(Clone)]
pub struct Registry {
    client: Client,
    cache: Arc<Mutex<Cache>>,
    timeout: Duration,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    /// A registry on `client`, each call bounded by [`DEFAULT_TIMEOUT`].
    pub fn new(client: Client) -> Self {
        Registry {
            client: client.with_setting("async_insert", "0"),
            cache: Arc::default(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// With each call bounded by `timeout` instead.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs `call`, within the timeout, saying what it was `doing` if it
    /// fails.
    async fn call<T>(
        &self,
        doing: &'static str,
        call: impl Future<Output = clickhouse::error::Result<T>>,
    ) -> Result<T, RegistryError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(source)) if is_outage(&source) => Err(RegistryError::Unavailable {
                doing,
                cause: source.to_string(),
            }),
            Ok(Err(source)) => Err(RegistryError::Failed { doing, source }),
            Err(_) => Err(RegistryError::Unavailable {
                doing,
                cause: format!("no answer within {:?} (registry.timeout_ms)", self.timeout),
            }),
        }
    }

    /// Whether ClickHouse answers (readiness, and before a create
    /// produces).
    pub async fn ping(&self) -> Result<(), RegistryError> {
        self.call(
            "asking ClickHouse whether it answers",
            self.client.query("SELECT 1").execute(),
        )
        .await
    }

    /// Registers a new ECG.
    pub async fn insert(&self, record: EcgRow) -> Result<(), RegistryError> {
        self.call("registering the ECG", ecgs::insert(&self.client, &record))
            .await?;
        self.remember(Arc::new(record));
        Ok(())
    }

    /// The ECG `id` of `tenant`, if it exists. Another tenant's ECG is
    /// indistinguishable from a missing one.
    pub async fn get(&self, tenant: &str, id: Uuid) -> Result<Option<Arc<EcgRow>>, RegistryError> {
        let key = (tenant.to_string(), id);
        if let Some(hit) = self.lock().get(&key) {
            return Ok(Some(hit.clone()));
        }
        let found = self
            .call("looking up the ECG", ecgs::latest(&self.client, tenant, id))
            .await?;
        Ok(found.map(|r| {
            let r = Arc::new(r);
            self.remember(r.clone());
            r
        }))
    }

    /// The highest seq of the ECG stored so far, placed or waiting.
    pub async fn highest_stored_seq(
        &self,
        tenant: &str,
        id: Uuid,
    ) -> Result<Option<u32>, RegistryError> {
        self.call(
            "reading the stored seqs",
            blocks::highest_seq(&self.client, tenant, id),
        )
        .await
    }

    /// The first live claim of an idempotency key.
    pub async fn first_claim(
        &self,
        tenant: &str,
        client_id: &str,
        key: &str,
    ) -> Result<Option<KeyClaim>, RegistryError> {
        self.call(
            "reading the idempotency key",
            idempotency::first(&self.client, tenant, client_id, key),
        )
        .await
    }

    /// Claims an idempotency key.
    pub async fn claim(&self, claim: &KeyClaim) -> Result<(), RegistryError> {
        self.call(
            "claiming the idempotency key",
            idempotency::insert(&self.client, claim),
        )
        .await
    }

    fn remember(&self, record: Arc<EcgRow>) {
        let mut cache = self.lock();
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert((record.tenant.clone(), record.ecg_id), record);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        // Poisoning only means a panic elsewhere mid-insert; the map is fine.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clickhouse::error::Error;

    #[test]
    fn outages_are_told_from_bugs() {
        let network = Error::Network("connection refused".into());
        assert!(is_outage(&network));
        assert!(is_outage(&Error::TimedOut));
        for reason in [
            "Code: 241. DB::Exception: Memory limit (total) exceeded. (MEMORY_LIMIT_EXCEEDED)",
            "Code: 252",
            "502 Bad Gateway",
            "<html><head><title>503 Service Temporarily Unavailable</title></head></html>",
        ] {
            assert!(is_outage(&Error::BadResponse(reason.into())), "{reason}");
        }
        for reason in [
            "Code: 60. DB::Exception: Unknown table expression identifier 'ecgs'. (UNKNOWN_TABLE)",
            "Code: 62. DB::Exception: Syntax error",
            "Code: 516. DB::Exception: default: Authentication failed",
        ] {
            assert!(!is_outage(&Error::BadResponse(reason.into())), "{reason}");
        }
        assert!(!is_outage(&Error::NotEnoughData));
        assert!(!is_outage(&Error::Custom(
            "a row that does not decode".into()
        )));
    }

    /// A ClickHouse that accepts connections and never answers: the call
    /// ends at the timeout, as unavailable.
    #[tokio::test]
    async fn a_silent_clickhouse_is_unavailable_after_the_timeout() {
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", silent.local_addr().unwrap());
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((stream, _)) = silent.accept().await {
                open.push(stream);
            }
        });
        let registry =
            Registry::new(Client::default().with_url(url)).timeout(Duration::from_millis(300));
        let started = std::time::Instant::now();
        let failed = registry.get("t", Uuid::nil()).await;
        assert!(
            matches!(failed, Err(RegistryError::Unavailable { .. })),
            "{failed:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        let answer = ApiError::from(failed.unwrap_err());
        assert!(matches!(answer, ApiError::RegistryUnavailable(_)));
        held.abort();
    }
}
