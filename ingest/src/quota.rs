//! Per-client rate limits and quotas (GCRA token buckets from `governor`),
//! keyed by the OAuth2 client id of the token.
//!
//! Two budgets per client: requests per second, and samples per second (all
//! leads together). A request over either is answered 429 with `Retry-After`
//! and changes nothing. A streamed upload is not refused halfway: it is
//! paced instead ([`Pacer`]), reading no faster than the client's sample
//! rate allows.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};

/// One client's budgets. A rate of 0 means unlimited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientLimits {
    /// Sustained requests per second.
    pub requests_per_second: u32,
    /// Requests that may come at once above the sustained rate.
    pub request_burst: u32,
    /// Sustained samples per second (all leads together).
    pub samples_per_second: u32,
    /// Samples that may come at once above the sustained rate; at least
    /// the largest chunk (`limits.max_chunk_values`).
    pub sample_burst: u32,
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits {
            requests_per_second: 1_000,
            request_burst: 2_000,
            samples_per_second: 50_000_000,
            sample_burst: 50_000_000,
        }
    }
}

/// `[rate_limit]`: the default budgets and per-client overrides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Budgets of every client without an override.
    #[serde(flatten)]
    pub default: ClientLimits,
    /// Overrides by client id, e.g. `[rate_limit.clients.ward-7-gateway]`.
    pub clients: BTreeMap<String, ClientLimits>,
}

/// Which budget ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    Requests,
    Samples,
}

impl Budget {
    pub fn as_str(self) -> &'static str {
        match self {
            Budget::Requests => "requests",
            Budget::Samples => "samples",
        }
    }
}

/// A request over one of its client's budgets: 429 with `Retry-After`
/// (`ApiError::RateLimited`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("over the client's {} budget; retry in {retry_after:?}", budget.as_str())]
pub struct RateLimited {
    pub budget: Budget,
    /// When the budget has room again.
    pub retry_after: Duration,
}

#[derive(Debug)]
struct Limiters {
    requests: Option<DefaultKeyedRateLimiter<String>>,
    samples: Option<DefaultKeyedRateLimiter<String>>,
    sample_burst: u32,
}

impl Limiters {
    fn new(limits: &ClientLimits) -> Self {
        let quota = |rate: u32, burst: u32| {
            let rate = NonZeroU32::new(rate)?;
            let burst = NonZeroU32::new(burst.max(rate.get())).unwrap_or(rate);
            Some(RateLimiter::keyed(
                Quota::per_second(rate).allow_burst(burst),
            ))
        };
        Limiters {
            requests: quota(limits.requests_per_second, limits.request_burst),
            samples: quota(limits.samples_per_second, limits.sample_burst),
            sample_burst: limits.sample_burst.max(limits.samples_per_second),
        }
    }
}

/// The gateway's limiters. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RateLimits {
    default: Arc<Limiters>,
    overrides: Arc<HashMap<String, Limiters>>,
}

impl RateLimits {
    pub fn new(config: &RateLimitConfig) -> Self {
        RateLimits {
            default: Arc::new(Limiters::new(&config.default)),
            overrides: Arc::new(
                config
                    .clients
                    .iter()
                    .map(|(client, limits)| (client.clone(), Limiters::new(limits)))
                    .collect(),
            ),
        }
    }

    fn of(&self, client: &str) -> &Limiters {
        self.overrides.get(client).unwrap_or(&self.default)
    }

    /// Takes one request from `client`'s budget, or says when to retry.
    pub fn request(&self, client: &str) -> Result<(), RateLimited> {
        let Some(limiter) = &self.of(client).requests else {
            return Ok(());
        };
        limiter.check_key(&client.to_owned()).map_err(|not_until| {
            refused(
                Budget::Requests,
                not_until.wait_time_from(DefaultClock::default().now()),
            )
        })
    }

    /// Takes `samples` from `client`'s budget, or says when to retry.
    pub fn samples(&self, client: &str, samples: u64) -> Result<(), RateLimited> {
        match self.wait_for_samples(client, samples) {
            Some(wait) => Err(refused(Budget::Samples, wait)),
            None => Ok(()),
        }
    }

    /// Takes `samples` from the budget if there is room now (`None`), or
    /// returns how long until there may be. Amounts above the burst are
    /// taken in burst-sized parts by the caller (see [`RateLimits::pace`]).
    fn wait_for_samples(&self, client: &str, samples: u64) -> Option<Duration> {
        let limiters = self.of(client);
        let limiter = limiters.samples.as_ref()?;
        let n = u32::try_from(samples)
            .unwrap_or(u32::MAX)
            .min(limiters.sample_burst);
        let n = NonZeroU32::new(n)?;
        match limiter.check_key_n(&client.to_owned(), n) {
            Ok(Ok(())) => None,
            Ok(Err(not_until)) => Some(not_until.wait_time_from(DefaultClock::default().now())),
            // Cannot happen: n is capped at the burst.
            Err(_) => None,
        }
    }

    /// Blocks the calling (non-async) thread until `client` may send
    /// `samples` more: how a streamed upload is paced.
    pub fn pace(&self, client: &str, samples: u64) {
        let burst = u64::from(self.of(client).sample_burst.max(1));
        let mut left = samples;
        while left > 0 {
            let part = left.min(burst);
            match self.wait_for_samples(client, part) {
                None => left -= part,
                Some(wait) => std::thread::sleep(wait.max(Duration::from_millis(1))),
            }
        }
    }
}

fn refused(budget: Budget, wait: Duration) -> RateLimited {
    metrics::counter!(crate::metrics::RATE_LIMITED, "limit" => budget.as_str()).increment(1);
    RateLimited {
        budget,
        retry_after: wait,
    }
}

/// Paces a streamed upload to its client's sample quota.
#[derive(Debug, Clone)]
pub struct Pacer {
    limits: RateLimits,
    client: String,
}

impl Pacer {
    /// Paces `client`'s upload.
    pub fn new(limits: RateLimits, client: String) -> Self {
        Pacer { limits, client }
    }

    /// Blocks until `samples` more fit the client's quota.
    pub fn pace(&self, samples: u64) {
        self.limits.pace(&self.client, samples);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(requests: u32, samples: u32) -> RateLimitConfig {
        RateLimitConfig {
            default: ClientLimits {
                requests_per_second: requests,
                request_burst: requests,
                samples_per_second: samples,
                sample_burst: samples,
            },
            clients: BTreeMap::from([(
                "vip".to_string(),
                ClientLimits {
                    requests_per_second: 0,
                    request_burst: 0,
                    samples_per_second: 0,
                    sample_burst: 0,
                },
            )]),
        }
    }

    #[test]
    fn a_client_over_its_request_rate_is_told_when_to_retry() {
        let limits = RateLimits::new(&limits(3, 0));
        for _ in 0..3 {
            limits.request("a").unwrap();
        }
        match limits.request("a") {
            Err(RateLimited {
                budget,
                retry_after,
            }) => {
                assert_eq!(budget, Budget::Requests);
                assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(1));
            }
            other => panic!("expected 429, got {other:?}"),
        }
        // Budgets are per client, and an override can lift them.
        limits.request("b").unwrap();
        for _ in 0..100 {
            limits.request("vip").unwrap();
        }
    }

    #[test]
    fn samples_are_budgeted_and_uploads_are_paced() {
        let limits = RateLimits::new(&limits(0, 1_000));
        limits.samples("a", 1_000).unwrap();
        assert!(matches!(
            limits.samples("a", 10),
            Err(RateLimited {
                budget: Budget::Samples,
                ..
            })
        ));
        let started = std::time::Instant::now();
        limits.pace("b", 1_500);
        // 1,000 at once, the next 500 half a second later.
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(400), "{took:?}");
        assert!(took < Duration::from_secs(3), "{took:?}");
    }
}

#[cfg(test)]
mod config_tests {
    use super::*;

    #[test]
    fn budgets_and_overrides_load_from_the_config_and_misspellings_are_refused() {
        let config: RateLimitConfig = serde_json::from_value(serde_json::json!({
            "requests_per_second": 5,
            "clients": {"gw-7": {"samples_per_second": 9}}
        }))
        .unwrap();
        assert_eq!(config.default.requests_per_second, 5);
        assert_eq!(
            config.default.request_burst,
            ClientLimits::default().request_burst
        );
        assert_eq!(config.clients["gw-7"].samples_per_second, 9);
        assert!(
            serde_json::from_value::<RateLimitConfig>(serde_json::json!({"request_per_second": 5}))
                .is_err()
        );
    }
}
