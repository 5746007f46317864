//! Insight freshness: how long from a chunk's 202 until the insights
//! endpoint counts it. One probe device streams a 12-lead chunk every
//! `period` while the fleet runs; while any chunk is not yet seen, one
//! poller asks `GET /v1/ecgs/{id}/insights` every 100 ms, and a chunk's
//! freshness is the time from its 202 until lead I's sample count includes
//! it. The probe's own load is one device's (6,000 samples/s) plus at most
//! 10 polls a second (50 until 2026-12-07, see [`POLL`]; one poller per
//! chunk in flight before 2026-11-23 18:50 UTC).
//!
//! [`Probe::warm_up`] first sends one chunk and waits until it is visible,
//! unrecorded: the processors of a fresh deployment join their consumer group
//! and the gateway fetches the token keys on first use, which would otherwise
//! be charged to the first chunks of every run.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ecg_client::Api;
use ecg_schemas::Units;
use ecg_schemas::api::{ChunkRequest, CreateEcg};
use hdrhistogram::Histogram;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const LEADS: [&str; 12] = [
    "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6",
];
/// Samples per lead per chunk: 0.5 s at 500 Hz.
const CHUNK: usize = 250;
/// Time between two polls of the insights: fine enough for a 2 s freshness
/// target, and 10 requests a second. At 20 ms (before 2026-12-07) the poller
/// alone was about half a core of this ClickHouse (each insights request runs
/// 5 small queries, 2-5 ms of server CPU each, mostly fixed per-query cost),
/// and it, not the pipeline, decided the ingest tail.
const POLL: Duration = Duration::from_millis(100);
/// A chunk never seen is given up on here and counts as this long.
const GIVE_UP: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, Default)]
pub struct Freshness {
    pub chunks: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// A probe ECG whose first chunk is through the whole pipeline.
pub struct Probe {
    api: Api,
    id: Uuid,
}

impl Probe {
    /// Samples the probe sends per chunk, all leads.
    pub const CHUNK_SAMPLES: u64 = (CHUNK * LEADS.len()) as u64;

    /// Creates the probe ECG and sends its chunk 0 through, unrecorded.
    pub async fn warm_up(api: Api) -> anyhow::Result<Probe> {
        let id = open_ecg(&api, "bench-probe").await?;
        api.post_chunk(id, &chunk(0)).await?;
        let waited = visible(&api, id, CHUNK as u64, Instant::now()).await;
        anyhow::ensure!(waited < GIVE_UP, "the warm-up chunk never became visible");
        Ok(Probe { api, id })
    }
}

fn chunk(seq: u32) -> ChunkRequest {
    // A sine with a crossing every few samples: the values do not matter
    // for freshness, only that they are valid.
    let samples: BTreeMap<String, Vec<f64>> = LEADS
        .iter()
        .map(|l| {
            let column = (0..CHUNK)
                .map(|i| ((seq as usize * CHUNK + i) as f64 * 0.3).sin())
                .collect();
            (l.to_string(), column)
        })
        .collect();
    ChunkRequest {
        seq,
        samples,
        r#final: false,
    }
}

/// Polls the insights until lead I counts `needed` samples; how long after
/// `accepted_at` that was (at most a little over [`GIVE_UP`]).
async fn visible(api: &Api, id: Uuid, needed: u64, accepted_at: Instant) -> Duration {
    loop {
        let seen = seen(api, id).await;
        let waited = accepted_at.elapsed();
        if seen >= needed || waited > GIVE_UP {
            return waited;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Streams chunks 1, 2, ... until `stop`, while one poller times them all,
/// then waits until every chunk sent is seen (or given up on).
pub async fn run(
    probe: Probe,
    period: Duration,
    stop: CancellationToken,
) -> anyhow::Result<Freshness> {
    let Probe { api, id } = probe;
    // (samples lead I must count, when the chunk was accepted), in order.
    let pending = Arc::new(Mutex::new(VecDeque::<(u64, Instant)>::new()));
    let sent_all = CancellationToken::new();
    let poller = tokio::spawn(poll(api.clone(), id, pending.clone(), sent_all.clone()));
    let mut ticker = tokio::time::interval(period);
    for seq in 1u32.. {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = ticker.tick() => {}
        }
        api.post_chunk(id, &chunk(seq)).await?;
        let needed = (u64::from(seq) + 1) * CHUNK as u64;
        pending
            .lock()
            .expect("not poisoned")
            .push_back((needed, Instant::now()));
    }
    sent_all.cancel();
    let h = poller.await??;
    Ok(Freshness {
        chunks: h.len(),
        p50_ms: h.value_at_quantile(0.5) as f64,
        p99_ms: h.value_at_quantile(0.99) as f64,
        max_ms: h.max() as f64,
    })
}

/// Asks for the insights every [`POLL`] while chunks are pending, like one
/// dashboard watching the ECG, and records each chunk's wait when lead I's
/// count first includes it. One poller, not one per chunk: the polls are
/// load on the machine being measured.
async fn poll(
    api: Api,
    id: Uuid,
    pending: Arc<Mutex<VecDeque<(u64, Instant)>>>,
    sent_all: CancellationToken,
) -> anyhow::Result<Histogram<u64>> {
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 600_000, 3)?;
    loop {
        let idle = pending.lock().expect("not poisoned").is_empty();
        if idle && sent_all.is_cancelled() {
            return Ok(histogram);
        }
        if !idle {
            let seen = seen(&api, id).await;
            let mut pending = pending.lock().expect("not poisoned");
            while let Some(&(needed, accepted_at)) = pending.front() {
                let waited = accepted_at.elapsed();
                if seen < needed && waited <= GIVE_UP {
                    break;
                }
                histogram.saturating_record(waited.as_millis().max(1) as u64);
                pending.pop_front();
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Samples of lead I the insights endpoint counts (0 if it fails).
async fn seen(api: &Api, id: Uuid) -> u64 {
    api.insights(id)
        .await
        .ok()
        .and_then(|i| i.leads.get("I").map(|l| l.samples))
        .unwrap_or(0)
}

/// Opens a streamed 12-lead 500 Hz millivolt ECG for `device_id`: the
/// probe's and the Holter upload's.
pub async fn open_ecg(api: &Api, device_id: &str) -> anyhow::Result<uuid::Uuid> {
    let accepted = api
        .create_ecg(&CreateEcg {
            device_id: device_id.into(),
            sample_rate_hz: 500.0,
            leads: LEADS.iter().map(|l| l.to_string()).collect(),
            units: Units::Millivolts,
            started_at: None,
            adc: None,
            signal: None,
        })
        .await?;
    Ok(accepted.id)
}
