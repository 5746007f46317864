//! The memory budget of request bodies: how many bytes of JSON, CSV and
//! Arrow bodies the gateway holds at once, over all requests, from the
//! first byte read until the handler answers (which for a chunk is after
//! Kafka's acknowledgement, so a slow broker holds bodies longest).
//!
//! Without it, memory grows with the clients waiting: 1,000 devices, each
//! with a chunk in flight while the broker falls behind, held the body, its
//! decoded samples, the encoded chunk and librdkafka's copy of each, and
//! took the gateway past 256 MB. With it, a request that finds the budget
//! spent waits for room before reading its body (the bytes stay in the
//! kernel's socket buffer and the client's), up to `wait`, then gets 503
//! with `Retry-After`: backpressure instead of growth.
//!
//! A body of known length reserves all of it before the first byte is read,
//! so requests never hold part of the budget while waiting for more. A body
//! without `Content-Length` (chunked transfer) reserves each piece as it
//! arrives. Streamed whole-signal uploads (`PUT .../signal`) are not
//! counted here: they never hold the body, only `upload.max_in_flight`
//! chunks (see [`crate::upload`]).

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, HttpBody as _};
use bytes::{Bytes, BytesMut};
use ecg_schemas::Invalid;
use http_body_util::BodyExt as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

const BUFFERED: &str = "ecg_ingest_buffered_body_bytes";

/// Shared by every handler; cloning shares the budget.
#[derive(Debug, Clone)]
pub struct BodyBudget {
    permits: Arc<Semaphore>,
    total: usize,
    wait: Duration,
    /// The largest body one request may send (`upload.max_json_bytes`).
    max_body: usize,
}

/// Bytes of the budget held by one request (one permit per byte); returned
/// when dropped.
#[derive(Debug)]
pub struct Reserved(OwnedSemaphorePermit);

impl Drop for Reserved {
    fn drop(&mut self) {
        metrics::gauge!(BUFFERED).decrement(self.0.num_permits() as f64);
    }
}

impl BodyBudget {
    /// `total` bytes at once (1 byte to 4 GiB, what one acquisition can
    /// take); a request waits at most `wait`; one body is at most
    /// `max_body` bytes.
    pub fn new(total: usize, wait: Duration, max_body: usize) -> Self {
        let total = total.clamp(1, u32::MAX as usize);
        BodyBudget {
            permits: Arc::new(Semaphore::new(total)),
            total,
            wait,
            max_body,
        }
    }

    /// The largest body one request may send, in bytes.
    pub fn max_body(&self) -> usize {
        self.max_body
    }

    /// Bytes of bodies held at once, at most.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Bytes free now.
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }

    /// Takes `bytes` (at most the whole budget, so one body larger than it
    /// still goes alone), waiting at most `wait`. Wrap the permit in a
    /// [`Reserved`] at once: the gauge counts it from here.
    async fn acquire(&self, bytes: usize) -> Result<OwnedSemaphorePermit, ApiError> {
        let n = bytes.min(self.total) as u32; // `total` fits in a u32
        let permit =
            tokio::time::timeout(self.wait, Arc::clone(&self.permits).acquire_many_owned(n))
                .await
                .ok()
                .and_then(Result::ok)
                .ok_or(ApiError::Busy {
                    limit: self.total as u64,
                })?;
        metrics::gauge!(BUFFERED).increment(f64::from(n));
        Ok(permit)
    }

    /// Reads a whole body of at most `max_body` bytes (413 beyond it, before
    /// reading more) within the budget. The
    /// body's bytes count against the budget until the [`Reserved`] is
    /// dropped: keep it for as long as anything made from the body lives.
    pub async fn read(&self, body: Body) -> Result<(Bytes, Reserved), ApiError> {
        let limit = self.max_body;
        // hyper gives a body with `Content-Length` an exact size hint.
        let declared = body.size_hint().exact();
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(ApiError::TooLarge { limit });
        }
        let mut reserved = Reserved(self.acquire(declared.unwrap_or(0) as usize).await?);
        let mut body = http_body_util::Limited::new(body, limit);
        let mut frames: Vec<Bytes> = Vec::new();
        let mut len = 0;
        while let Some(frame) = body.frame().await {
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
            len += data.len();
            // Capped at the whole budget, like a declared length.
            let unreserved = len.min(self.total).saturating_sub(reserved.0.num_permits());
            if unreserved > 0 {
                reserved.0.merge(self.acquire(unreserved).await?);
            }
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
        budget.read(Body::from(vec![b'x'; len])).await.unwrap()
    }

    /// Reads `body` from a budget of 100 bytes: it must come back as
    /// `expected` and hold its length until dropped.
    async fn assert_held_until_dropped(body: Body, expected: &[u8]) {
        let budget = BodyBudget::new(100, Duration::from_millis(10), 1_000);
        let (bytes, held) = budget.read(body).await.unwrap();
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
        let declared = budget.read(Body::from(vec![b'y'; 30]));
        assert!(matches!(declared.await, Err(ApiError::Busy { limit: 100 })));
        // A chunked body takes what is free, then waits for the rest.
        let chunked = budget.read(body(&[&[b'z'; 15], &[b'z'; 15]]));
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
                    .read(Body::from(vec![b'y'; 60]))
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
            small.read(Body::from(vec![b'x'; 50])).await,
            Err(ApiError::TooLarge { limit: 40 })
        ));
        assert!(matches!(
            small.read(body(&[&[b'x'; 30], &[b'x'; 30]])).await,
            Err(ApiError::TooLarge { limit: 40 })
        ));
        assert_eq!(small.available(), 10);
        let (bytes, _held) = budget
            .read(body(&[&[b'x'; 30], &[b'x'; 30]]))
            .await
            .unwrap();
        assert_eq!(
            bytes.len(),
            60,
            "a chunked body over the budget goes alone too"
        );
    }
}
