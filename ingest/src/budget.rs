//! The memory budget of request bodies: how many bytes of JSON, CSV and
//! Arrow bodies the gateway holds at once, from the first byte read until
//! the handler answers (which for a chunk is after Kafka's acknowledgement,
//! so a slow broker holds bodies longest), and how they are shared.
//!
//! Without it, memory grows with the clients waiting: 1,000 devices, each
//! with a chunk in flight while the broker falls behind, held the body, its
//! decoded samples, the encoded chunk and librdkafka's copy of each, and
//! took the gateway past 256 MB. With it, a request that finds no room
//! waits for room before reading its body (the bytes stay in the kernel's
//! socket buffer and the client's), up to `wait`, then is refused with
//! `Retry-After`: backpressure instead of growth.
//!
//! Shares. The budget (`upload.max_buffered_bytes`) is shared three ways at
//! once: the bodies of one client (OAuth2 client id) hold at most
//! `upload.max_buffered_bytes_per_client`, those of one tenant at most
//! `upload.max_buffered_bytes_per_tenant`, those of everyone at most the
//! whole budget. A client past its share, or a tenant past its share, waits
//! like everyone and is then answered 429 (`over_share`), its own limit; only
//! a full budget answers 503 (`busy`). So clients that hold bodies open
//! (slow ones, or many at once) spend their own share, never another
//! tenant's: while one tenant misbehaves, the others keep at least the
//! budget minus its share.
//!
//! What a request holds. A body of known length reserves its length, up to
//! its client's share, before its first byte is read, so that requests
//! never hold part of the budget while waiting for more: otherwise, under
//! overload, many half-read bodies could fill the budget and all wait for
//! room that only their own completion would free, until each is refused
//! (reserving bytes as they arrive was considered for that reason and not
//! taken). A slow body therefore holds its declared length for as long as
//! it takes, and that is bounded by [`crate::body_rate`]: at 10 bytes/s it
//! is cut, 408, after the grace (`upload.body_rate_grace_ms`, 5 s). A body
//! without `Content-Length` (chunked transfer) reserves each piece as it
//! arrives.
//!
//! A body larger than a client's share (a whole recording in one JSON body)
//! holds the whole share, and the rest of it comes from one extra slot for a
//! single such body gateway-wide: a second one waits for the first, then gets
//! 503. Memory held by bodies is therefore at most `max_buffered_bytes` plus
//! one body's excess over a client's share (`upload.max_json_bytes` −
//! `max_buffered_bytes_per_client`), plus a piece (at most
//! `http.max_read_buffer_bytes`) per chunked request waiting for room.
//!
//! A client's and a tenant's shares are semaphores made on first use and
//! forgotten once nobody holds or waits for them (past 1,024 owners, on the
//! next new one). Streamed whole-signal uploads (`PUT .../signal`) are not
//! counted here: they never hold the body, only `upload.max_in_flight`
//! chunks (see [`crate::upload`]); they keep to [`crate::body_rate`] too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::{Body, HttpBody as _};
use bytes::{Bytes, BytesMut};
use ecg_schemas::Invalid;
use http_body_util::BodyExt as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::body_rate::BodyRate;
use crate::error::{ApiError, Share};
use crate::metrics::BUFFERED_BODY_BYTES;

/// Past this many owners with a semaphore, the idle ones are forgotten.
const FORGET_PAST: usize = 1_024;

/// Whose body: its bytes count against these shares.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    pub tenant: &'a str,
    pub client: &'a str,
}

/// Shared by every handler; cloning shares the budget.
#[derive(Debug, Clone)]
pub struct BodyBudget {
    permits: Arc<Semaphore>,
    total: usize,
    tenants: Shares,
    clients: Shares,
    /// The one body at a time that may be larger than a client's share.
    large: Arc<Semaphore>,
    wait: Duration,
    /// The largest body one request may send (`upload.max_json_bytes`).
    max_body: usize,
    rate: BodyRate,
}

/// One semaphore of `cap` bytes per owner (tenant or client).
#[derive(Debug, Clone)]
struct Shares {
    cap: usize,
    owners: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

impl Shares {
    fn new(cap: usize) -> Self {
        Shares {
            cap,
            owners: Arc::default(),
        }
    }

    fn of(&self, owner: &str) -> Arc<Semaphore> {
        // Poisoning only means a panic elsewhere mid-insert; the map is fine.
        let mut owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(share) = owners.get(owner) {
            return share.clone();
        }
        if owners.len() >= FORGET_PAST {
            // Held or awaited, a semaphore has references beyond the map's:
            // the permits and the pending acquisitions hold one each.
            owners.retain(|_, share| Arc::strong_count(share) > 1);
        }
        let share = Arc::new(Semaphore::new(self.cap));
        owners.insert(owner.to_owned(), share.clone());
        share
    }

    #[cfg(test)]
    fn known(&self) -> usize {
        self.owners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// Bytes of the budget held by one request (one permit per byte, in the
/// client's share, the tenant's and the budget); returned when dropped.
#[derive(Debug, Default)]
pub struct Reserved {
    client: Option<OwnedSemaphorePermit>,
    tenant: Option<OwnedSemaphorePermit>,
    total: Option<OwnedSemaphorePermit>,
    large: Option<OwnedSemaphorePermit>,
    /// Bytes counted in the gauge: the body's, also beyond the share.
    counted: usize,
}

impl Reserved {
    /// Bytes held in each share (at most the client's share).
    fn charged(&self) -> usize {
        self.total.as_ref().map_or(0, |p| p.num_permits())
    }

    fn count(&mut self, bytes: usize) {
        if bytes > self.counted {
            metrics::gauge!(BUFFERED_BODY_BYTES).increment((bytes - self.counted) as f64);
            self.counted = bytes;
        }
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        metrics::gauge!(BUFFERED_BODY_BYTES).decrement(self.counted as f64);
    }
}

fn merge(held: &mut Option<OwnedSemaphorePermit>, more: OwnedSemaphorePermit) {
    match held {
        Some(held) => held.merge(more),
        None => *held = Some(more),
    }
}

impl BodyBudget {
    /// `total` bytes at once (1 byte to 4 GiB, what one acquisition can
    /// take); a request waits at most `wait`; one body is at most
    /// `max_body` bytes. No shares (a client and a tenant may take it all)
    /// and no rate: see [`BodyBudget::shares`] and [`BodyBudget::rate`].
    pub fn new(total: usize, wait: Duration, max_body: usize) -> Self {
        let total = total.clamp(1, u32::MAX as usize);
        BodyBudget {
            permits: Arc::new(Semaphore::new(total)),
            total,
            tenants: Shares::new(total),
            clients: Shares::new(total),
            large: Arc::new(Semaphore::new(1)),
            wait,
            max_body,
            rate: BodyRate::UNLIMITED,
        }
    }

    /// With a tenant's bodies holding at most `per_tenant` bytes and a
    /// client's at most `per_client` (each at least 1 and at most the
    /// share above it; 0: the share above it).
    pub fn shares(mut self, per_tenant: usize, per_client: usize) -> Self {
        let cap = |share: usize, above: usize| match share {
            0 => above,
            n => n.min(above),
        };
        let per_tenant = cap(per_tenant, self.total);
        self.tenants = Shares::new(per_tenant);
        self.clients = Shares::new(cap(per_client, per_tenant));
        self
    }

    /// With bodies read no slower than `rate`.
    pub fn rate(mut self, rate: BodyRate) -> Self {
        self.rate = rate;
        self
    }

    /// The largest body one request may send, in bytes.
    pub fn max_body(&self) -> usize {
        self.max_body
    }

    /// Bytes of bodies held at once, at most.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Bytes one tenant's bodies hold at once, at most.
    pub fn per_tenant(&self) -> usize {
        self.tenants.cap
    }

    /// Bytes one client's bodies hold at once, at most.
    pub fn per_client(&self) -> usize {
        self.clients.cap
    }

    /// How fast bodies must arrive.
    pub fn body_rate(&self) -> BodyRate {
        self.rate
    }

    /// Bytes free now.
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }

    /// Holds room for `len` bytes of `owner`'s body: its charge (`len` up to
    /// a client's share) in the client's share, the tenant's and the
    /// budget, in that order, and beyond a client's share the large-body
    /// slot; each waits at most `wait`. On a refusal the request keeps what
    /// it held before, which it drops with its answer.
    async fn reserve(
        &self,
        owner: Owner<'_>,
        len: usize,
        reserved: &mut Reserved,
    ) -> Result<(), ApiError> {
        // `per_client` fits in a u32: it is at most `total`.
        let more = len.min(self.clients.cap).saturating_sub(reserved.charged()) as u32;
        if more > 0 {
            let until = tokio::time::Instant::now() + self.wait;
            let take = |share: Arc<Semaphore>, refusal: ApiError| async move {
                tokio::time::timeout_at(until, share.acquire_many_owned(more))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .ok_or(refusal)
            };
            let client = take(self.clients.of(owner.client), self.refusal(Share::Client)).await?;
            let tenant = take(self.tenants.of(owner.tenant), self.refusal(Share::Tenant)).await?;
            let total = take(self.permits.clone(), self.refusal_of_all()).await?;
            merge(&mut reserved.client, client);
            merge(&mut reserved.tenant, tenant);
            merge(&mut reserved.total, total);
        }
        if len > self.clients.cap && reserved.large.is_none() {
            let large = tokio::time::timeout(self.wait, self.large.clone().acquire_owned())
                .await
                .ok()
                .and_then(Result::ok)
                .ok_or(ApiError::BusyLarge {
                    share: self.clients.cap as u64,
                })?;
            reserved.large = Some(large);
        }
        reserved.count(len);
        Ok(())
    }

    /// The answer to a request that found `share` held: its own limit
    /// (429), unless that share is the whole budget (no shares configured).
    fn refusal(&self, share: Share) -> ApiError {
        let cap = match share {
            Share::Client => self.clients.cap,
            Share::Tenant => self.tenants.cap,
        };
        if cap < self.total {
            ApiError::OverShare {
                share,
                limit: cap as u64,
            }
        } else {
            self.refusal_of_all()
        }
    }

    fn refusal_of_all(&self) -> ApiError {
        ApiError::Busy {
            limit: self.total as u64,
        }
    }

    /// Reads a whole body of at most `max_body` bytes (413 beyond it, before
    /// reading more) within `owner`'s shares of the budget and no slower
    /// than the rate (408). The body's bytes count against the budget until
    /// the [`Reserved`] is dropped: keep it for as long as anything made
    /// from the body lives.
    pub async fn read(&self, body: Body, owner: Owner<'_>) -> Result<(Bytes, Reserved), ApiError> {
        let limit = self.max_body;
        // hyper gives a body with `Content-Length` an exact size hint.
        let declared = body.size_hint().exact();
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(ApiError::TooLarge { limit });
        }
        let mut reserved = Reserved::default();
        self.reserve(owner, declared.unwrap_or(0) as usize, &mut reserved)
            .await?;
        let mut clock = self.rate.clock();
        let mut body = http_body_util::Limited::new(body, limit);
        let mut frames: Vec<Bytes> = Vec::new();
        let mut len = 0;
        while let Some(frame) = clock.next(body.frame()).await? {
            let frame = frame.map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    ApiError::TooLarge { limit }
                } else {
                    ApiError::Invalid(Invalid::new("", format!("could not read the body: {e}")))
                }
            })?;
            let Ok(data) = frame.into_data() else {
                continue; // trailers carry no body bytes
            };
            clock.received(data.len());
            len += data.len();
            self.reserve(owner, len, &mut reserved).await?;
            frames.push(data);
        }
        // A body read in one piece is kept as it is (the Arrow path reads
        // its samples in place); only a body of several pieces is joined.
        let bytes = match frames.len() {
            0 => Bytes::new(),
            1 => frames.swap_remove(0),
            _ => {
                let mut joined = BytesMut::with_capacity(len);
                for f in &frames {
                    joined.extend_from_slice(f);
                }
                joined.freeze()
            }
        };
        Ok((bytes, reserved))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Owner<'static> = Owner {
        tenant: "t1",
        client: "a",
    };
    const B: Owner<'static> = Owner {
        tenant: "t1",
        client: "b",
    };
    const C: Owner<'static> = Owner {
        tenant: "t2",
        client: "c",
    };

    fn body(parts: &[&'static [u8]]) -> Body {
        let stream = futures::stream::iter(
            parts
                .iter()
                .map(|p| Ok::<_, std::io::Error>(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        );
        Body::from_stream(stream)
    }

    /// Reads a body of `len` declared bytes.
    async fn read_declared(budget: &BodyBudget, len: usize) -> (Bytes, Reserved) {
        budget.read(Body::from(vec![b'x'; len]), A).await.unwrap()
    }

    /// Reads `body` from a budget of 100 bytes: it must come back as
    /// `expected` and hold its length until dropped.
    async fn assert_held_until_dropped(body: Body, expected: &[u8]) {
        let budget = BodyBudget::new(100, Duration::from_millis(10), 1_000);
        let (bytes, held) = budget.read(body, A).await.unwrap();
        assert_eq!(&bytes[..], expected);
        assert_eq!(budget.available(), 100 - expected.len());
        drop(held);
        assert_eq!(budget.available(), 100);
    }

    #[tokio::test]
    async fn a_body_holds_its_bytes_until_dropped() {
        assert_held_until_dropped(Body::from("0123456789"), b"0123456789").await;
    }

    #[tokio::test]
    async fn a_body_of_unknown_length_reserves_as_it_arrives() {
        assert_held_until_dropped(body(&[b"abc", b"defg", b"h"]), b"abcdefgh").await;
    }

    #[tokio::test]
    async fn a_spent_budget_is_busy_after_the_wait_and_frees_what_it_took() {
        let budget = BodyBudget::new(100, Duration::from_millis(20), 1_000);
        let (_, first) = read_declared(&budget, 80).await;
        let declared = budget.read(Body::from(vec![b'y'; 30]), A);
        assert!(matches!(declared.await, Err(ApiError::Busy { limit: 100 })));
        // A chunked body takes what is free, then waits for the rest.
        let chunked = budget.read(body(&[&[b'z'; 15], &[b'z'; 15]]), A);
        assert!(matches!(chunked.await, Err(ApiError::Busy { .. })));
        assert_eq!(budget.available(), 20, "a refused request keeps nothing");
        drop(first);
        let (bytes, _second) = read_declared(&budget, 30).await;
        assert_eq!(bytes.len(), 30);
    }

    #[tokio::test]
    async fn a_waiting_request_goes_on_when_room_is_freed() {
        let budget = BodyBudget::new(100, Duration::from_secs(5), 1_000);
        let (_, first) = read_declared(&budget, 100).await;
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move {
                budget
                    .read(Body::from(vec![b'y'; 60]), A)
                    .await
                    .map(|(b, _)| b.len())
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        drop(first);
        assert_eq!(waiting.await.unwrap().unwrap(), 60);
    }

    #[tokio::test]
    async fn a_body_larger_than_the_budget_goes_alone_and_oversize_is_413() {
        let budget = BodyBudget::new(10, Duration::from_millis(10), 1_000);
        let (bytes, held) = read_declared(&budget, 50).await;
        assert_eq!(bytes.len(), 50);
        assert_eq!(budget.available(), 0);
        drop(held);
        let small = BodyBudget::new(10, Duration::from_millis(10), 40);
        assert!(matches!(
            small.read(Body::from(vec![b'x'; 50]), A).await,
            Err(ApiError::TooLarge { limit: 40 })
        ));
        assert!(matches!(
            small.read(body(&[&[b'x'; 30], &[b'x'; 30]]), A).await,
            Err(ApiError::TooLarge { limit: 40 })
        ));
        assert_eq!(small.available(), 10);
        let (bytes, _held) = budget
            .read(body(&[&[b'x'; 30], &[b'x'; 30]]), A)
            .await
            .unwrap();
        assert_eq!(
            bytes.len(),
            60,
            "a chunked body over the budget goes alone too"
        );
    }

    /// A client holding its share waits, then is refused (429, its own
    /// limit), while another client of its tenant and another tenant go on;
    /// a tenant's clients together hold at most the tenant's share.
    #[tokio::test]
    async fn a_client_and_a_tenant_hold_at_most_their_share() {
        let budget = BodyBudget::new(100, Duration::from_millis(20), 1_000).shares(50, 30);
        let (_, a) = budget.read(Body::from(vec![b'a'; 30]), A).await.unwrap();
        let refused = budget.read(Body::from(vec![b'a'; 1]), A).await;
        assert!(
            matches!(
                refused,
                Err(ApiError::OverShare {
                    share: Share::Client,
                    limit: 30
                })
            ),
            "{refused:?}"
        );
        let (_, b) = budget.read(Body::from(vec![b'b'; 20]), B).await.unwrap();
        let refused = budget.read(Body::from(vec![b'b'; 1]), B).await;
        assert!(
            matches!(
                refused,
                Err(ApiError::OverShare {
                    share: Share::Tenant,
                    limit: 50
                })
            ),
            "{refused:?}"
        );
        // The other tenant has the rest of the budget.
        let (_, c) = budget.read(Body::from(vec![b'c'; 30]), C).await.unwrap();
        assert_eq!(budget.available(), 20);
        drop((a, b, c));
        assert_eq!(budget.available(), 100);
        let (_, again) = budget.read(Body::from(vec![b'a'; 30]), A).await.unwrap();
        drop(again);
    }

    /// A body over a client's share holds the share and the one large-body
    /// slot: a second such body, of anyone, waits for it, and smaller
    /// bodies of other clients are not held up.
    #[tokio::test]
    async fn bodies_over_a_share_are_read_one_at_a_time() {
        let budget = BodyBudget::new(100, Duration::from_millis(20), 1_000).shares(0, 30);
        let (bytes, large) = budget.read(Body::from(vec![b'a'; 80]), A).await.unwrap();
        assert_eq!(bytes.len(), 80);
        assert_eq!(budget.available(), 70, "charged the share only");
        let second = budget.read(Body::from(vec![b'c'; 40]), C).await;
        assert!(
            matches!(second, Err(ApiError::BusyLarge { share: 30 })),
            "{second:?}"
        );
        let (_, small) = budget.read(Body::from(vec![b'c'; 30]), C).await.unwrap();
        drop((large, small));
        let chunked = budget.read(body(&[&[b'c'; 20], &[b'c'; 20]]), C).await;
        assert_eq!(chunked.unwrap().0.len(), 40);
    }

    #[tokio::test]
    async fn idle_shares_are_forgotten() {
        let budget = BodyBudget::new(100, Duration::from_millis(20), 1_000).shares(50, 30);
        for i in 0..FORGET_PAST + 10 {
            let client = format!("client-{i}");
            let owner = Owner {
                tenant: "t",
                client: &client,
            };
            budget.read(Body::from("x"), owner).await.unwrap();
        }
        assert!(
            budget.clients.known() <= FORGET_PAST,
            "{}",
            budget.clients.known()
        );
    }

    /// A body that stops arriving is cut (408) and frees its share at once.
    #[tokio::test]
    async fn a_stalled_body_is_cut_and_frees_its_share() {
        let budget = BodyBudget::new(100, Duration::from_millis(20), 1_000)
            .shares(50, 30)
            .rate(BodyRate {
                idle: Duration::from_millis(100),
                min_bytes_per_second: 0,
                grace: Duration::ZERO,
            });
        let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
        tx.try_send(Ok(Bytes::from_static(&[b'x'; 20]))).unwrap();
        let read = tokio::spawn({
            let budget = budget.clone();
            async move { budget.read(Body::from_stream(rx), A).await.map(drop) }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(budget.available(), 80, "what arrived is held");
        match read.await.unwrap() {
            Err(ApiError::SlowBody(slow)) => assert_eq!(slow.limit(), 100),
            other => panic!("expected 408, got {other:?}"),
        }
        drop(tx);
        assert_eq!(budget.available(), 100);
    }
}
