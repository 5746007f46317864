//! A JWKS fetched over HTTP(S), refreshed on a schedule and when a token
//! names a key we lack.
//!
//! Guarantees: the set is fetched lazily on first use; tokens whose `kid` is
//! known never wait on the network; at most one fetch runs at a time;
//! fetches prompted by unknown `kid`s start at most once per `min_refresh`
//! (so tokens with made-up `kid`s cannot turn into a flood of requests to
//! the issuer); once a set was fetched, it is fetched again every `refresh`
//! by a background task, so a key the issuer no longer publishes stops
//! verifying within `refresh`; a failed fetch keeps the last good set; a
//! response over `max_bytes` is refused without reading the rest, and with
//! `https_only` nothing (redirects included) is fetched over plain http.
//!
//! The limits: a key rotated in less than `min_refresh` after the previous
//! fetch is seen only after that interval; while the issuer is unreachable,
//! the last good set, removed keys included, stays in use.

use std::error::Error;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Duration;

use jsonwebtoken::Algorithm;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::AuthError;
use crate::keyset::{KeySet, VerifyingKey};

/// How long one JWKS request may take before the verifier gives up.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Retry interval while no key set was ever fetched: there is nothing to
/// protect by waiting longer, and every request is failing meanwhile.
const RETRY_WITHOUT_KEYS: Duration = Duration::from_secs(1);
/// Redirects followed; an issuer's `jwks_uri` rarely has even one.
const MAX_REDIRECTS: usize = 3;

/// Where and how a remote key set is fetched.
#[derive(Debug)]
pub(crate) struct JwksFetch {
    pub(crate) url: String,
    /// Keys for other algorithms are dropped when the set is fetched.
    pub(crate) allowed: Vec<Algorithm>,
    pub(crate) min_refresh: Duration,
    pub(crate) refresh: Duration,
    pub(crate) max_bytes: usize,
    pub(crate) https_only: bool,
    /// CA certificates trusted besides the system's.
    pub(crate) roots: Vec<reqwest::Certificate>,
}

#[derive(Debug)]
pub(crate) struct RemoteJwks {
    shared: Arc<Shared>,
    /// The scheduled refresh, started after the first successful fetch.
    refresher: std::sync::Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug)]
struct Shared {
    url: String,
    allowed: Vec<Algorithm>,
    /// `Err` if the HTTP client could not be built; reported at each fetch.
    client: Result<reqwest::Client, String>,
    min_refresh: Duration,
    refresh: Duration,
    max_bytes: usize,
    current: RwLock<Option<Arc<KeySet>>>,
    /// Bumped each time a fetched set replaces the current one (see
    /// `Verifier`'s token cache).
    generation: AtomicU64,
    /// When the last fetch started. Held across the fetch, which makes
    /// concurrent refreshes wait for the one in flight instead of piling on.
    last_fetch: Mutex<Option<Instant>>,
}

impl RemoteJwks {
    pub(crate) fn new(fetch: JwksFetch) -> Self {
        let https_only = fetch.https_only;
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                attempt.stop()
            } else if https_only && attempt.url().scheme() != "https" {
                attempt.error("redirected to a non-https URL")
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .https_only(https_only)
            .redirect(redirects)
            .tls_certs_merge(fetch.roots)
            .build()
            .map_err(|e| error_chain(&e));
        Self {
            shared: Arc::new(Shared {
                url: fetch.url,
                allowed: fetch.allowed,
                client,
                min_refresh: fetch.min_refresh,
                refresh: fetch.refresh,
                max_bytes: fetch.max_bytes,
                current: RwLock::new(None),
                generation: AtomicU64::new(0),
                last_fetch: Mutex::new(None),
            }),
            refresher: std::sync::Mutex::new(None),
        }
    }

    /// The key for `kid`, fetching the set if it is not known yet.
    /// `Ok(None)`: the issuer does not have (or did not recently have) such a
    /// key. `Err(Unavailable)`: the set could not be fetched when needed.
    pub(crate) async fn key(&self, kid: &str) -> Result<Option<VerifyingKey>, AuthError> {
        let shared = &self.shared;
        if let Some(key) = shared.lookup(kid) {
            return Ok(Some(key));
        }
        let mut last_fetch = shared.last_fetch.lock().await;
        // The fetch we waited for may have brought the key.
        if let Some(key) = shared.lookup(kid) {
            return Ok(Some(key));
        }
        let have_keys = shared.snapshot().is_some();
        let interval = if have_keys {
            shared.min_refresh
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
        let fetched = shared.fetch_and_replace().await;
        drop(last_fetch);
        match fetched {
            Ok(()) => {
                self.ensure_refresher();
                Ok(shared.lookup(kid))
            }
            Err(()) => Err(AuthError::Unavailable),
        }
    }

    /// How many times the key set was replaced.
    pub(crate) fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::SeqCst)
    }

    /// Starts the scheduled refresh unless it runs. It holds only a weak
    /// reference, so it ends once the verifier is dropped.
    fn ensure_refresher(&self) {
        let mut refresher = self
            .refresher
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if refresher.as_ref().is_some_and(|task| !task.is_finished()) {
            return;
        }
        // Outside a Tokio runtime (a verifier polled by another executor)
        // there is no schedule, only refreshes on unknown `kid`s.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak = Arc::downgrade(&self.shared);
        let every = self.shared.refresh;
        *refresher = Some(runtime.spawn(refresh_every(weak, every)));
    }
}

impl Drop for RemoteJwks {
    fn drop(&mut self) {
        if let Some(task) = self
            .refresher
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }
}

async fn refresh_every(shared: Weak<Shared>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let mut last_fetch = shared.last_fetch.lock().await;
        *last_fetch = Some(Instant::now());
        // A failure is logged and the last good set kept; try again later.
        let _ = shared.fetch_and_replace().await;
    }
}

impl Shared {
    fn snapshot(&self) -> Option<Arc<KeySet>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn lookup(&self, kid: &str) -> Option<VerifyingKey> {
        self.snapshot()?.get(kid).cloned()
    }

    /// Fetches the set and makes it current. The caller holds `last_fetch`.
    async fn fetch_and_replace(&self) -> Result<(), ()> {
        match self.fetch().await {
            Ok(set) => {
                let before = self.snapshot().map(|s| s.kids());
                if before.as_ref() == Some(&set.kids()) {
                    tracing::debug!(url = %self.url, keys = ?set, "refreshed token signing keys, unchanged");
                } else {
                    tracing::info!(url = %self.url, keys = ?set, "fetched token signing keys");
                }
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(set));
                self.generation.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
            Err(cause) => {
                // Logged once per attempt; attempts are rate limited.
                tracing::warn!(url = %self.url, %cause, "cannot fetch token signing keys; keeping the last good set");
                Err(())
            }
        }
    }

    async fn fetch(&self) -> Result<KeySet, String> {
        let client = self
            .client
            .as_ref()
            .map_err(|e| format!("no HTTP client: {e}"))?;
        let mut response = client
            .get(&self.url)
            .send()
            .await
            .map_err(|e| error_chain(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("HTTP status {status}"));
        }
        let too_big = || format!("the JWK Set is over the limit of {} bytes", self.max_bytes);
        if response
            .content_length()
            .is_some_and(|n| n > self.max_bytes as u64)
        {
            return Err(too_big());
        }
        // Read piece by piece: a body without Content-Length (or lying
        // about it) is cut off at the limit, not buffered whole.
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| error_chain(&e))? {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(too_big());
            }
            body.extend_from_slice(&chunk);
        }
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
