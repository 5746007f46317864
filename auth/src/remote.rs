//! A JWKS fetched over HTTP, refreshed when a token names a key we lack.
//!
//! Guarantees: the set is fetched lazily on first use; tokens whose `kid` is
//! known never wait on the network; at most one fetch runs at a time and
//! fetches start at most once per `min_refresh` (so tokens with made-up
//! `kid`s cannot turn into a flood of requests to the issuer); a failed fetch
//! keeps the last good set. The limit: a key rotated in less than
//! `min_refresh` after the previous fetch is seen only after that interval.

use std::error::Error;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use jsonwebtoken::Algorithm;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::error::AuthError;
use crate::keyset::{KeySet, VerifyingKey};

/// How long one JWKS request may take before the verifier gives up.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Retry interval while no key set was ever fetched: there is nothing to
/// protect by waiting longer, and every request is failing meanwhile.
const RETRY_WITHOUT_KEYS: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub(crate) struct RemoteJwks {
    url: String,
    /// Keys for other algorithms are dropped when the set is fetched.
    allowed: Vec<Algorithm>,
    /// `Err` if the HTTP client could not be built; reported at each fetch.
    client: Result<reqwest::Client, String>,
    min_refresh: Duration,
    current: RwLock<Option<Arc<KeySet>>>,
    /// Bumped each time a fetched set replaces the current one (see
    /// `Verifier`'s token cache).
    generation: AtomicU64,
    /// When the last fetch started. Held across the fetch, which makes
    /// concurrent refreshes wait for the one in flight instead of piling on.
    last_fetch: Mutex<Option<Instant>>,
}

impl RemoteJwks {
    pub(crate) fn new(url: String, allowed: Vec<Algorithm>, min_refresh: Duration) -> Self {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|e| error_chain(&e));
        Self {
            url,
            allowed,
            client,
            min_refresh,
            current: RwLock::new(None),
            generation: AtomicU64::new(0),
            last_fetch: Mutex::new(None),
        }
    }

    /// The key for `kid`, fetching the set if it is not known yet.
    /// `Ok(None)`: the issuer does not have (or did not recently have) such a
    /// key. `Err(Unavailable)`: the set could not be fetched when needed.
    pub(crate) async fn key(&self, kid: &str) -> Result<Option<VerifyingKey>, AuthError> {
        if let Some(key) = self.lookup(kid) {
            return Ok(Some(key));
        }
        let mut last_fetch = self.last_fetch.lock().await;
        // The fetch we waited for may have brought the key.
        if let Some(key) = self.lookup(kid) {
            return Ok(Some(key));
        }
        let have_keys = self.snapshot().is_some();
        let interval = if have_keys {
            self.min_refresh
        } else {
            RETRY_WITHOUT_KEYS
        };
        if last_fetch.is_some_and(|at| at.elapsed() < interval) {
            return if have_keys {
                Ok(None)
            } else {
                Err(AuthError::Unavailable)
            };
        }
        *last_fetch = Some(Instant::now());
        match self.fetch().await {
            Ok(set) => {
                tracing::info!(url = %self.url, keys = ?set, "fetched token signing keys");
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(set));
                self.generation.fetch_add(1, Ordering::SeqCst);
                Ok(self.lookup(kid))
            }
            Err(cause) => {
                // Logged once per attempt; attempts are rate limited above.
                tracing::warn!(url = %self.url, %cause, "cannot fetch token signing keys; keeping the last good set");
                Err(AuthError::Unavailable)
            }
        }
    }

    /// How many times the key set was replaced.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    fn snapshot(&self) -> Option<Arc<KeySet>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn lookup(&self, kid: &str) -> Option<VerifyingKey> {
        self.snapshot()?.get(kid).cloned()
    }

    async fn fetch(&self) -> Result<KeySet, String> {
        let client = self
            .client
            .as_ref()
            .map_err(|e| format!("no HTTP client: {e}"))?;
        let response = client
            .get(&self.url)
            .send()
            .await
            .map_err(|e| error_chain(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("HTTP status {status}"));
        }
        let body = response.bytes().await.map_err(|e| error_chain(&e))?;
        let set = KeySet::from_json(&body, &self.allowed)?;
        if set.is_empty() {
            return Err(
                "the JWK Set has no usable key (see debug logs for why each was ignored)".into(),
            );
        }
        Ok(set)
    }
}

/// `error: cause: cause`, since reqwest's Display shows only the outermost layer.
fn error_chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
