//! Token buckets, one per key, in a table of bounded size.
//!
//! Pure: the caller passes the time, so the arithmetic is tested without
//! sleeping. `governor`'s keyed limiter was the first choice, but its state
//! store grows with every key it has seen and offers no hook to bound it;
//! the keys here (claimed client ids, source addresses) are chosen by whoever
//! sends the request, so the bound is the point.
//!
//! Guarantees: a key takes at most `burst` requests at once and `per_second`
//! sustained. The table holds at most `capacity` keys. When it is full, keys
//! whose bucket has refilled are dropped (they hold no information: a new
//! bucket starts full too), at most once a second; if none can be dropped, a
//! key not in the table is charged to one shared overflow bucket. So a flood
//! of made-up keys costs a bounded amount of memory, and once the table is
//! full it can only take the overflow bucket's share, never more.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// How often a full table may be scanned for refilled buckets.
const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// A sustained rate and a burst, both positive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Quota {
    per_second: f64,
    burst: f64,
}

impl Quota {
    /// `None` when `per_minute` is 0 (unlimited). A burst below 1 is 1.
    pub(crate) fn per_minute(per_minute: u32, burst: u32) -> Option<Self> {
        (per_minute > 0).then(|| Self {
            per_second: f64::from(per_minute) / 60.0,
            burst: f64::from(burst.max(1)),
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(quota: Quota, now: Instant) -> Self {
        Self {
            tokens: quota.burst,
            at: now,
        }
    }

    fn refill(&mut self, quota: Quota, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * quota.per_second).min(quota.burst);
        self.at = now;
    }

    fn take(&mut self, quota: Quota, now: Instant) -> Result<(), Duration> {
        self.refill(quota, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / quota.per_second,
            ))
        }
    }

    fn is_full(&self, quota: Quota, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens + elapsed * quota.per_second >= quota.burst
    }
}

/// One bucket per key, at most `capacity` keys.
pub(crate) struct KeyedBuckets<K> {
    quota: Quota,
    capacity: usize,
    buckets: HashMap<K, Bucket>,
    overflow: Bucket,
    last_prune: Option<Instant>,
}

impl<K> std::fmt::Debug for KeyedBuckets<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the keys: up to `capacity` of them, and they are addresses.
        f.debug_struct("KeyedBuckets")
            .field("quota", &self.quota)
            .field("keys", &self.buckets.len())
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl<K: Hash + Eq> KeyedBuckets<K> {
    pub(crate) fn new(quota: Quota, capacity: usize, now: Instant) -> Self {
        Self {
            quota,
            capacity: capacity.max(1),
            buckets: HashMap::new(),
            overflow: Bucket::full(quota, now),
            last_prune: None,
        }
    }

    /// Takes one request from `key`'s bucket, or says how long until it
    /// holds one.
    pub(crate) fn take(&mut self, key: K, now: Instant) -> Result<(), Duration> {
        let quota = self.quota;
        if !self.buckets.contains_key(&key) && self.buckets.len() >= self.capacity {
            self.prune(now);
            if self.buckets.len() >= self.capacity {
                return self.overflow.take(quota, now);
            }
        }
        self.buckets
            .entry(key)
            .or_insert_with(|| Bucket::full(quota, now))
            .take(quota, now)
    }

    /// Keys in the table.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.buckets.len()
    }

    fn prune(&mut self, now: Instant) {
        if self
            .last_prune
            .is_some_and(|at| now.saturating_duration_since(at) < PRUNE_EVERY)
        {
            return;
        }
        self.last_prune = Some(now);
        let quota = self.quota;
        self.buckets.retain(|_, bucket| !bucket.is_full(quota, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(per_minute: u32, burst: u32) -> Quota {
        Quota::per_minute(per_minute, burst).unwrap()
    }

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let start = Instant::now();
        let mut buckets = KeyedBuckets::new(quota(60, 3), 10, start);
        for _ in 0..3 {
            buckets.take("a", start).unwrap();
        }
        let wait = buckets.take("a", start).unwrap_err();
        assert!(
            wait > Duration::from_millis(990) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        // Another key has its own bucket.
        buckets.take("b", start).unwrap();
        // One per second after that.
        let later = start + Duration::from_secs(1);
        buckets.take("a", later).unwrap();
        assert!(buckets.take("a", later).is_err());
        // Never more than the burst, however long the key was idle.
        let much_later = start + Duration::from_secs(3600);
        for _ in 0..3 {
            buckets.take("a", much_later).unwrap();
        }
        assert!(buckets.take("a", much_later).is_err());
    }

    #[test]
    fn zero_rate_means_unlimited_and_zero_burst_means_one() {
        assert_eq!(Quota::per_minute(0, 10), None);
        let start = Instant::now();
        let mut buckets = KeyedBuckets::new(quota(60, 0), 10, start);
        buckets.take(1, start).unwrap();
        assert!(buckets.take(1, start).is_err());
    }

    #[test]
    fn a_flood_of_new_keys_stays_within_the_capacity_and_shares_the_overflow() {
        let start = Instant::now();
        let mut buckets = KeyedBuckets::new(quota(60, 2), 100, start);
        let mut admitted = 0;
        for key in 0..100_000u64 {
            if buckets.take(key, start).is_ok() {
                admitted += 1;
            }
        }
        assert_eq!(buckets.len(), 100);
        // Each of the 100 tracked keys once, then the overflow's burst of 2.
        assert_eq!(admitted, 102);
    }

    #[test]
    fn refilled_buckets_make_room_for_new_keys() {
        let start = Instant::now();
        let mut buckets = KeyedBuckets::new(quota(60, 2), 2, start);
        buckets.take("a", start).unwrap();
        buckets.take("b", start).unwrap();
        // Full, and nothing has refilled yet: "c" goes to the overflow.
        buckets.take("c", start).unwrap();
        assert_eq!(buckets.len(), 2);
        // "a" and "b" refill within a second: "d" gets a bucket of its own.
        let later = start + Duration::from_secs(2);
        buckets.take("d", later).unwrap();
        assert_eq!(buckets.len(), 1);
    }

    #[test]
    fn a_key_that_keeps_sending_is_not_pruned_and_stays_limited() {
        let start = Instant::now();
        let mut buckets = KeyedBuckets::new(quota(60, 1), 2, start);
        let mut now = start;
        let mut admitted = 0;
        for i in 0..1_000u64 {
            now += Duration::from_millis(10);
            if buckets.take("attacker".to_owned(), now).is_ok() {
                admitted += 1;
            }
            // New keys keep the table full and force prunes.
            let _ = buckets.take(format!("new-{i}"), now);
        }
        // 10 s at one a second, plus the first.
        assert!(admitted <= 11, "{admitted}");
    }
}
