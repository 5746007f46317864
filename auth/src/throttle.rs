//! What keeps `/oauth/token` from being used to burn the service's CPU.
//!
//! Every credential check costs one argon2 verification (tens of
//! milliseconds of CPU and 19 MiB of memory), whether the client exists or
//! not. Before one runs, a request must pass, in order:
//!
//! 1. its source address's token bucket (see `source` for what the address
//!    is);
//! 2. its claimed client id's token bucket; known and unknown ids alike, so
//!    the answer says nothing about which ids exist. Skipped for a client
//!    that authenticated from the same address within the last day, so that
//!    someone spraying a real client's id from elsewhere cannot lock that
//!    client out (the address limit still applies);
//! 3. a free slot among `max_concurrent_hashes`. A request waits for one at
//!    most `max_wait_ms`, and only while fewer than `max_waiting` others
//!    wait; otherwise it gets 503 at once. Requests of a client+address pair
//!    that authenticated before wait even when the queue is full (up to
//!    `max_waiting` of them), so they are not crowded out by strangers.
//!
//! A refused request gets 429 `slow_down` (limits) or 503
//! `temporarily_unavailable` (no slot), both with `Retry-After`, and costs
//! no hashing. The bucket tables are bounded (`bucket`), and so is the table
//! of known pairs, which only a correct secret can add to.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::bucket::{KeyedBuckets, Quota};
use crate::oauth_error::OAuthError;
use crate::source::{AddrKey, IpNet, client_address};

/// How long a successful client+address pair is remembered: longer than
/// any sensible token lifetime, so a client refreshing its token is known.
const KNOWN_FOR: Duration = Duration::from_secs(24 * 3600);
/// Most client+address pairs remembered.
const KNOWN_PAIRS: usize = 10_000;
/// What a 503 tells the client to wait, in seconds.
const BUSY_RETRY_AFTER_S: u64 = 1;

/// `auth.token_limits`: rate limits and the hashing cap of `/oauth/token`.
/// A rate of 0 means unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenLimits {
    /// Credential checks per minute per source address (IPv6: per /64).
    pub per_address_per_minute: u32,
    /// Checks one address may make at once above that rate.
    pub per_address_burst: u32,
    /// Credential checks per minute per client id, existing or not.
    pub per_client_per_minute: u32,
    /// Checks for one client id at once above that rate.
    pub per_client_burst: u32,
    /// Argon2 verifications running at once; 0: half the CPU cores (at
    /// least one), leaving the rest of the API the other half.
    pub max_concurrent_hashes: usize,
    /// Requests that may wait for a verification slot; more get 503 at once.
    pub max_waiting: usize,
    /// Longest wait for a verification slot before 503, milliseconds.
    pub max_wait_ms: u64,
    /// Most addresses, and most client ids, tracked by the rate limits;
    /// beyond that, new ones share one bucket.
    pub max_tracked: usize,
    /// Proxies whose `X-Forwarded-For` is believed (CIDR blocks or single
    /// addresses, e.g. `["172.16.0.0/12"]`). Default: none, the TCP peer is
    /// the client.
    pub trusted_proxies: Vec<IpNet>,
}

impl Default for TokenLimits {
    fn default() -> Self {
        Self {
            per_address_per_minute: 60,
            per_address_burst: 30,
            per_client_per_minute: 30,
            per_client_burst: 10,
            max_concurrent_hashes: 0,
            max_waiting: 8,
            max_wait_ms: 500,
            max_tracked: 100_000,
            trusted_proxies: Vec::new(),
        }
    }
}

impl TokenLimits {
    /// No rate limits, and as many verifications at once as requests: the
    /// behaviour before limits existed, for tests that measure it.
    pub fn unlimited() -> Self {
        Self {
            per_address_per_minute: 0,
            per_client_per_minute: 0,
            max_concurrent_hashes: Semaphore::MAX_PERMITS,
            ..Self::default()
        }
    }

    fn concurrent_hashes(&self) -> usize {
        match self.max_concurrent_hashes {
            0 => std::thread::available_parallelism()
                .map_or(1, |n| n.get() / 2)
                .max(1),
            n => n.min(Semaphore::MAX_PERMITS),
        }
    }
}

/// A client id and source address, as remembered after a success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Pair {
    client: u64,
    address: AddrKey,
}

/// Leave to run one verification; the slot is freed when this is dropped.
#[derive(Debug)]
pub(crate) struct Admitted {
    pub(crate) permit: OwnedSemaphorePermit,
    pub(crate) pair: Pair,
}

/// The token endpoint's limits, shared by all its requests.
pub(crate) struct Throttle {
    address: Option<Mutex<KeyedBuckets<AddrKey>>>,
    client: Option<Mutex<KeyedBuckets<u64>>>,
    /// Client ids are kept as 64-bit keyed hashes: bounded memory whatever
    /// their length, and collisions cannot be aimed at (random key).
    ids: std::hash::RandomState,
    known: Mutex<HashMap<Pair, Instant>>,
    hashes: Arc<Semaphore>,
    waiting: AtomicUsize,
    waiting_known: AtomicUsize,
    max_waiting: usize,
    max_wait: Duration,
    trusted_proxies: Vec<IpNet>,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle")
            .field("address", &self.address)
            .field("client", &self.client)
            .field("free_slots", &self.hashes.available_permits())
            .field("max_waiting", &self.max_waiting)
            .field("max_wait", &self.max_wait)
            .field("trusted_proxies", &self.trusted_proxies)
            .finish_non_exhaustive()
    }
}

impl Throttle {
    pub(crate) fn new(limits: &TokenLimits) -> Self {
        fn buckets<K: std::hash::Hash + Eq>(
            per_minute: u32,
            burst: u32,
            capacity: usize,
        ) -> Option<Mutex<KeyedBuckets<K>>> {
            Quota::per_minute(per_minute, burst)
                .map(|q| Mutex::new(KeyedBuckets::new(q, capacity, Instant::now())))
        }
        let permits = limits.concurrent_hashes();
        tracing::debug!(permits, ?limits, "token endpoint limits");
        Self {
            address: buckets(
                limits.per_address_per_minute,
                limits.per_address_burst,
                limits.max_tracked,
            ),
            client: buckets(
                limits.per_client_per_minute,
                limits.per_client_burst,
                limits.max_tracked,
            ),
            ids: std::hash::RandomState::new(),
            known: Mutex::default(),
            hashes: Arc::new(Semaphore::new(permits)),
            waiting: AtomicUsize::new(0),
            waiting_known: AtomicUsize::new(0),
            max_waiting: limits.max_waiting,
            max_wait: Duration::from_millis(limits.max_wait_ms),
            trusted_proxies: limits.trusted_proxies.clone(),
        }
    }

    /// The client's address (see `source`).
    pub(crate) fn client_address(
        &self,
        peer: Option<std::net::SocketAddr>,
        headers: &HeaderMap,
    ) -> Option<IpAddr> {
        client_address(peer, headers, &self.trusted_proxies)
    }

    /// Checks the limits and waits for a verification slot, or says why not.
    pub(crate) async fn admit(
        &self,
        address: Option<IpAddr>,
        client_id: &str,
    ) -> Result<Admitted, OAuthError> {
        let pair = Pair {
            client: self.ids.hash_one(client_id),
            address: AddrKey::of(address),
        };
        let now = Instant::now();
        if let Some(buckets) = &self.address {
            lock(buckets)
                .take(pair.address, now)
                .map_err(|wait| slow_down("from this address", wait))?;
        }
        let known = self.is_known(pair, now);
        if let Some(buckets) = &self.client
            && !known
        {
            lock(buckets)
                .take(pair.client, now)
                .map_err(|wait| slow_down("for this client", wait))?;
        }
        let permit = self.slot(known).await?;
        Ok(Admitted { permit, pair })
    }

    /// Remembers that `pair` authenticated.
    pub(crate) fn succeeded(&self, pair: Pair) {
        let now = Instant::now();
        let mut known = lock(&self.known);
        if known.len() >= KNOWN_PAIRS && !known.contains_key(&pair) {
            known.retain(|_, at| now.saturating_duration_since(*at) < KNOWN_FOR);
            if known.len() >= KNOWN_PAIRS {
                // Only correct secrets get here, so this takes a very large
                // fleet; it then just loses the shortcut.
                return;
            }
        }
        known.insert(pair, now);
    }

    fn is_known(&self, pair: Pair, now: Instant) -> bool {
        lock(&self.known)
            .get(&pair)
            .is_some_and(|at| now.saturating_duration_since(*at) < KNOWN_FOR)
    }

    async fn slot(&self, known: bool) -> Result<OwnedSemaphorePermit, OAuthError> {
        if let Ok(permit) = self.hashes.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let queue = if known {
            &self.waiting_known
        } else {
            &self.waiting
        };
        let _place = Waiting::join(queue, self.max_waiting).ok_or_else(busy)?;
        match tokio::time::timeout(self.max_wait, self.hashes.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed; a timeout is the real case.
            Ok(Err(_)) | Err(_) => Err(busy()),
        }
    }
}

/// A place in a bounded wait queue, given back when dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn join(queue: &'a AtomicUsize, max: usize) -> Option<Self> {
        queue
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(queue))
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn slow_down(whom: &str, wait: Duration) -> OAuthError {
    // Whole seconds, rounded up, at least 1 (RFC 9110 §10.2.3).
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    tracing::debug!(whom, seconds, "token request over its rate limit");
    OAuthError::slow_down(
        format!("too many token requests {whom}; retry in {seconds} s"),
        seconds,
    )
}

fn busy() -> OAuthError {
    tracing::debug!("token request refused: every verification slot is busy");
    OAuthError::temporarily_unavailable(
        "the token service is busy; retry shortly",
        BUSY_RETRY_AFTER_S,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> TokenLimits {
        TokenLimits {
            per_address_per_minute: 60,
            per_address_burst: 4,
            per_client_per_minute: 60,
            per_client_burst: 2,
            max_concurrent_hashes: 1,
            max_waiting: 1,
            max_wait_ms: 50,
            ..TokenLimits::default()
        }
    }

    fn addr(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[tokio::test]
    async fn each_address_and_each_client_id_has_its_own_budget() {
        let throttle = Throttle::new(&limits());
        let a = addr("192.0.2.1");
        // Client budget (2) runs out before the address's (4).
        drop(throttle.admit(a, "x").await.unwrap());
        drop(throttle.admit(a, "x").await.unwrap());
        let refused = throttle.admit(a, "x").await.unwrap_err();
        assert_eq!(refused.error, "slow_down");
        assert!(refused.description.contains("for this client"), "{refused}");
        assert_eq!(refused.retry_after, Some(1));
        // The refused request still cost the address; one left.
        drop(throttle.admit(a, "y").await.unwrap());
        let refused = throttle.admit(a, "z").await.unwrap_err();
        assert!(
            refused.description.contains("from this address"),
            "{refused}"
        );
        // Another address, another budget; but "x" is spent everywhere.
        let b = addr("198.51.100.1");
        drop(throttle.admit(b, "y").await.unwrap());
        assert_eq!(throttle.admit(b, "x").await.unwrap_err().error, "slow_down");
    }

    #[tokio::test]
    async fn a_pair_that_authenticated_skips_its_client_budget_only() {
        let throttle = Throttle::new(&limits());
        let (home, away) = (addr("192.0.2.1"), addr("198.51.100.1"));
        let admitted = throttle.admit(home, "x").await.unwrap();
        throttle.succeeded(admitted.pair);
        drop(admitted);
        // Someone elsewhere spends "x"'s budget.
        drop(throttle.admit(away, "x").await.unwrap());
        assert!(throttle.admit(away, "x").await.is_err());
        // The client at home still gets through, until its address budget ends.
        for _ in 0..3 {
            drop(throttle.admit(home, "x").await.unwrap());
        }
        let refused = throttle.admit(home, "x").await.unwrap_err();
        assert!(
            refused.description.contains("from this address"),
            "{refused}"
        );
    }

    #[tokio::test]
    async fn a_full_queue_is_refused_at_once_and_a_long_wait_times_out() {
        let unlimited = TokenLimits {
            per_address_per_minute: 0,
            per_client_per_minute: 0,
            ..limits()
        };
        let throttle = Arc::new(Throttle::new(&unlimited));
        let a = addr("192.0.2.1");
        let busy_slot = throttle.admit(a, "x").await.unwrap();
        // One may wait; it times out after max_wait.
        let waiter = tokio::spawn({
            let throttle = throttle.clone();
            async move {
                let start = Instant::now();
                let result = throttle.admit(a, "y").await;
                (result.map(|_| ()), start.elapsed())
            }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        // The queue is full: refused without waiting.
        let start = Instant::now();
        let refused = throttle.admit(a, "z").await.unwrap_err();
        assert!(start.elapsed() < Duration::from_millis(40));
        assert_eq!(refused.error, "temporarily_unavailable");
        assert_eq!(refused.retry_after, Some(1));
        let (result, waited) = waiter.await.unwrap();
        assert_eq!(result.unwrap_err().error, "temporarily_unavailable");
        assert!(waited >= Duration::from_millis(50), "{waited:?}");
        // A freed slot goes to the next request.
        drop(busy_slot);
        drop(throttle.admit(a, "x").await.unwrap());
    }

    #[tokio::test]
    async fn a_known_pair_waits_even_when_strangers_fill_the_queue() {
        let unlimited = TokenLimits {
            per_address_per_minute: 0,
            per_client_per_minute: 0,
            max_wait_ms: 2_000,
            ..limits()
        };
        let throttle = Arc::new(Throttle::new(&unlimited));
        let (home, away) = (addr("192.0.2.1"), addr("198.51.100.1"));
        let first = throttle.admit(home, "x").await.unwrap();
        throttle.succeeded(first.pair);
        let stranger = tokio::spawn({
            let throttle = throttle.clone();
            async move { throttle.admit(away, "y").await.map(drop) }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(throttle.admit(away, "z").await.is_err(), "queue is full");
        let known = tokio::spawn({
            let throttle = throttle.clone();
            async move { throttle.admit(home, "x").await.map(drop) }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(first);
        stranger.await.unwrap().unwrap();
        known.await.unwrap().unwrap();
    }

    #[test]
    fn defaults_leave_half_the_cores_and_zero_rates_are_unlimited() {
        let cores = std::thread::available_parallelism().unwrap().get();
        assert_eq!(
            TokenLimits::default().concurrent_hashes(),
            (cores / 2).max(1)
        );
        let throttle = Throttle::new(&TokenLimits::unlimited());
        assert!(throttle.address.is_none() && throttle.client.is_none());
    }
}
