//! How fast a request body must arrive: no gap between two pieces longer
//! than `upload.body_idle_timeout_ms`, and, once `upload.body_rate_grace_ms`
//! has passed, at least `upload.body_min_bytes_per_second` on average. A body
//! too slow is answered 408 naming the limit it broke, and its request ends,
//! freeing what it held (its share of the body budget, its connection, an
//! upload's spooling thread).
//!
//! Without it, a client that sends a byte now and then holds its request
//! for as long as the proxy in front allows between reads (nginx: 120 s)
//! and, with the body budget, bytes other requests are waiting for.
//!
//! The rate is mod_reqtimeout's: the body must be complete by
//! `grace + received / min_rate`, a deadline that moves later with every
//! byte. Only the time the gateway spends waiting for the client counts: an
//! upload paced to its client's sample quota, or a request waiting for room
//! in the budget, is not reading, and that time is the gateway's, not the
//! client's.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// How fast a body must arrive; a zero turns that limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyRate {
    /// Longest wait for the next piece of a body.
    pub idle: Duration,
    /// The least average rate after `grace`, in bytes per second.
    pub min_bytes_per_second: u64,
    /// How long a body may take before the rate applies.
    pub grace: Duration,
}

impl BodyRate {
    /// No limit at all.
    pub const UNLIMITED: BodyRate = BodyRate {
        idle: Duration::ZERO,
        min_bytes_per_second: 0,
        grace: Duration::ZERO,
    };

    /// A clock for one body.
    pub fn clock(self) -> BodyClock {
        BodyClock {
            rate: self,
            waited: Duration::ZERO,
            received: 0,
        }
    }
}

/// Which limit a body broke: the answer is 408 naming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TooSlow {
    /// Nothing arrived for `idle`.
    Idle { idle: Duration },
    /// `received` bytes in `waited`: under the minimum rate after the grace.
    Rate {
        min_bytes_per_second: u64,
        grace: Duration,
        received: u64,
        waited: Duration,
    },
}

impl TooSlow {
    /// The limit broken, in its configured unit (ms or bytes/s).
    pub fn limit(&self) -> u64 {
        match self {
            TooSlow::Idle { idle } => idle.as_millis() as u64,
            TooSlow::Rate {
                min_bytes_per_second,
                ..
            } => *min_bytes_per_second,
        }
    }

    /// The `limit` label of `ecg_ingest_slow_bodies_total`.
    pub fn label(&self) -> &'static str {
        match self {
            TooSlow::Idle { .. } => "idle",
            TooSlow::Rate { .. } => "rate",
        }
    }
}

impl std::fmt::Display for TooSlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TooSlow::Idle { idle } => write!(
                f,
                "no byte of the body arrived for {} ms (upload.body_idle_timeout_ms); send the body without pauses",
                idle.as_millis()
            ),
            TooSlow::Rate {
                min_bytes_per_second,
                grace,
                received,
                waited,
            } => write!(
                f,
                "the body arrived at {:.0} bytes/s ({received} bytes in {:.1} s), below the minimum of {min_bytes_per_second} bytes/s (upload.body_min_bytes_per_second) that applies after the first {} ms (upload.body_rate_grace_ms)",
                *received as f64 / waited.as_secs_f64().max(1e-3),
                waited.as_secs_f64(),
                grace.as_millis()
            ),
        }
    }
}

/// The time one body has taken, as far as it is the client's.
#[derive(Debug)]
pub struct BodyClock {
    rate: BodyRate,
    /// Time spent waiting for the client so far.
    waited: Duration,
    received: u64,
}

impl BodyClock {
    /// Awaits `piece` (the next piece of the body), for at most what the
    /// limits leave, and counts the wait as the client's. `Err`: the limit
    /// it broke (`ApiError::SlowBody`, 408).
    pub async fn next<T>(&mut self, piece: impl Future<Output = T>) -> Result<T, TooSlow> {
        let (bound, slow) = self.bound();
        let started = Instant::now();
        let piece = match bound {
            None => Ok(piece.await),
            Some(bound) => tokio::time::timeout(bound, piece).await,
        };
        self.waited += started.elapsed();
        piece.map_err(|_| {
            let slow = slow.unwrap_or(self.too_slow_rate());
            metrics::counter!(crate::metrics::SLOW_BODIES, "limit" => slow.label()).increment(1);
            slow
        })
    }

    /// Counts `bytes` received.
    pub fn received(&mut self, bytes: usize) {
        self.received += bytes as u64;
    }

    /// The longest the next wait may be, and the limit it breaks if it
    /// comes to that (`None`: the rate's).
    fn bound(&self) -> (Option<Duration>, Option<TooSlow>) {
        let idle = (!self.rate.idle.is_zero()).then_some(self.rate.idle);
        let left = (self.rate.min_bytes_per_second > 0).then(|| {
            let earned = Duration::from_secs_f64(
                self.received as f64 / self.rate.min_bytes_per_second as f64,
            );
            (self.rate.grace + earned).saturating_sub(self.waited)
        });
        match (idle, left) {
            (Some(idle), Some(left)) if idle < left => (Some(idle), Some(TooSlow::Idle { idle })),
            (_, Some(left)) => (Some(left), None),
            (Some(idle), None) => (Some(idle), Some(TooSlow::Idle { idle })),
            (None, None) => (None, None),
        }
    }

    fn too_slow_rate(&self) -> TooSlow {
        TooSlow::Rate {
            min_bytes_per_second: self.rate.min_bytes_per_second,
            grace: self.rate.grace,
            received: self.received,
            waited: self.waited,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real time, in tenths of the real limits' scale.
    const RATE: BodyRate = BodyRate {
        idle: Duration::from_millis(200),
        min_bytes_per_second: 1_000,
        grace: Duration::from_millis(500),
    };

    /// A piece of `bytes` that arrives after `after`.
    async fn piece(after: Duration, bytes: usize) -> usize {
        tokio::time::sleep(after).await;
        bytes
    }

    #[tokio::test]
    async fn a_gap_longer_than_the_idle_timeout_is_408_naming_it() {
        let mut clock = RATE.clock();
        let n = clock.next(piece(Duration::from_millis(150), 10)).await;
        assert_eq!(n.unwrap(), 10);
        match clock.next(piece(Duration::from_millis(400), 10)).await {
            Err(slow @ TooSlow::Idle { .. }) => {
                assert_eq!(slow.limit(), 200);
                let message = slow.to_string();
                assert!(message.contains("upload.body_idle_timeout_ms"), "{message}");
            }
            other => panic!("expected the idle limit, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_trickle_is_cut_once_the_grace_and_its_bytes_are_used_up() {
        let mut clock = RATE.clock();
        let started = Instant::now();
        // 100 bytes/s: each 10 bytes earn 10 ms beyond the 500 ms grace, so
        // the body is cut at about 556 ms, after 5 pieces.
        let mut answer = Ok(0);
        while answer.is_ok() {
            answer = clock.next(piece(Duration::from_millis(100), 10)).await;
            if let Ok(n) = answer {
                clock.received(n);
            }
        }
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(540) && took < Duration::from_millis(700),
            "{took:?}"
        );
        match answer {
            Err(slow @ TooSlow::Rate { received, .. }) => {
                assert_eq!(received, 50);
                assert_eq!(slow.limit(), 1_000);
                let message = slow.to_string();
                assert!(
                    message.contains("upload.body_min_bytes_per_second"),
                    "{message}"
                );
                assert!(message.contains("upload.body_rate_grace_ms"), "{message}");
            }
            other => panic!("expected the rate limit, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_body_above_the_rate_and_the_gateways_own_waits_pass() {
        let mut clock = RATE.clock();
        // Pieces of 100 bytes every 20 ms of the client's (5 KB/s), each
        // after 100 ms of the gateway's own (pacing, waiting for room),
        // which do not count: 2 s in all, far past the grace.
        for _ in 0..20 {
            let n = clock.next(piece(Duration::from_millis(20), 100)).await;
            clock.received(n.unwrap());
            tokio::time::sleep(Duration::from_millis(80)).await;
        }
        let mut unlimited = BodyRate::UNLIMITED.clock();
        let n = unlimited.next(piece(Duration::from_millis(300), 1)).await;
        assert_eq!(n.unwrap(), 1);
    }
}
