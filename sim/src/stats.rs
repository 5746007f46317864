//! What the fleet has done so far, shared by every device: counters,
//! errors by status, and HDR histograms of latency in microseconds.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

#[derive(Debug)]
pub struct Stats {
    pub chunks: AtomicU64,
    pub samples: AtomicU64,
    pub ecgs_opened: AtomicU64,
    pub devices_running: AtomicU64,
    pub devices_done: AtomicU64,
    pub devices_gave_up: AtomicU64,
    pub retries: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
    /// Chunk latency to its 202: in real time from the chunk's send, or
    /// from its scheduled time when the device is behind; as fast as
    /// possible from its first send.
    chunk_latency: Mutex<Histogram<u64>>,
    /// `POST /v1/ecgs` latency.
    create_latency: Mutex<Histogram<u64>>,
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 1 h, 3 significant digits.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds")
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            chunks: AtomicU64::new(0),
            samples: AtomicU64::new(0),
            ecgs_opened: AtomicU64::new(0),
            devices_running: AtomicU64::new(0),
            devices_done: AtomicU64::new(0),
            devices_gave_up: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            errors: Mutex::new(BTreeMap::new()),
            chunk_latency: Mutex::new(histogram()),
            create_latency: Mutex::new(histogram()),
        }
    }
}

impl Stats {
    pub fn error(&self, error: &ecg_client::ClientError) {
        let key = match error.status() {
            Some(s) => s.to_string(),
            None if matches!(error, ecg_client::ClientError::Transport(e) if e.is_timeout()) => {
                "timeout".into()
            }
            None => "transport".into(),
        };
        *self
            .errors
            .lock()
            .expect("not poisoned")
            .entry(key)
            .or_default() += 1;
    }

    pub fn chunk_accepted(&self, samples: u64, latency: Duration) {
        self.chunks.fetch_add(1, Ordering::Relaxed);
        self.samples.fetch_add(samples, Ordering::Relaxed);
        self.chunk_latency
            .lock()
            .expect("not poisoned")
            .saturating_record(latency.as_micros().max(1) as u64);
    }

    pub fn ecg_opened(&self, latency: Duration) {
        self.ecgs_opened.fetch_add(1, Ordering::Relaxed);
        self.create_latency
            .lock()
            .expect("not poisoned")
            .saturating_record(latency.as_micros().max(1) as u64);
    }

    pub fn errors(&self) -> BTreeMap<String, u64> {
        self.errors.lock().expect("not poisoned").clone()
    }

    pub fn chunk_percentiles(&self) -> Percentiles {
        Percentiles::of(&self.chunk_latency.lock().expect("not poisoned"))
    }

    pub fn create_percentiles(&self) -> Percentiles {
        Percentiles::of(&self.create_latency.lock().expect("not poisoned"))
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Percentiles {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.5)),
            p90_ms: ms(h.value_at_quantile(0.9)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }
}

impl std::fmt::Display for Percentiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms, max {:.1} ms (n = {})",
            self.p50_ms, self.p90_ms, self.p99_ms, self.p999_ms, self.max_ms, self.count
        )
    }
}
