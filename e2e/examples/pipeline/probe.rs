//! Insight freshness: how long from a chunk's 202 until the insights
//! endpoint counts it. One probe device streams a 12-lead chunk every
//! `period` while the fleet runs; while any chunk is not yet seen, one
//! poller asks `GET /v1/ecgs/{id}/insights` every 100 ms, and a chunk's
//! freshness is the time from its 202 until lead I's sample count includes
//! it. Beat freshness likewise: the probe's signal beats every 0.8 s, the
//! probe runs the same detector over lead I as it sends it, and a beat's
//! freshness is the time from the 202 of the chunk holding its peak until
//! lead I's beat count includes it (beats of the detector's first 2 s,
//! its learning period, are left out: they are decided when it ends). The probe's own load is one device's (6,000 samples/s) plus at most
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
use ecg_signal::{Analytic, BeatDetector};
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
    /// Beats timed, and their freshness.
    pub beats: u64,
    pub beat_p50_ms: f64,
    pub beat_p99_ms: f64,
    pub beat_max_ms: f64,
}

/// Samples between two beats of the probe's signal: 0.8 s (75 bpm).
const BEAT_PERIOD: usize = 400;
/// Beats with a peak before this sample are not timed (the detector's
/// learning period, 2 s at 500 Hz).
const LEARNING: u64 = 1_000;

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

/// Lead values of chunk `seq`: a QRS-like spike every [`BEAT_PERIOD`]
/// samples on a small sine with a crossing every few samples.
fn values(seq: u32) -> Vec<f64> {
    (0..CHUNK)
        .map(|i| {
            let n = seq as usize * CHUNK + i;
            let spike = match n % BEAT_PERIOD {
                0 => 1.2,
                1 => 0.4,
                2 | 3 => -0.3,
                _ => 0.0,
            };
            spike + 0.05 * (n as f64 * 0.3).sin()
        })
        .collect()
}

fn chunk(seq: u32) -> ChunkRequest {
    let column = values(seq);
    let samples: BTreeMap<String, Vec<f64>> = LEADS
        .iter()
        .map(|l| (l.to_string(), column.clone()))
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
        let (seen, _) = seen(api, id).await;
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
    // (samples lead I must count, when the chunk was accepted), in order;
    // the same for beats (the count lead I must reach).
    let pending = Arc::new(Mutex::new(Pending::default()));
    let sent_all = CancellationToken::new();
    let poller = tokio::spawn(poll(api.clone(), id, pending.clone(), sent_all.clone()));
    let mut ticker = tokio::time::interval(period);
    // The processor's detector, run here over what is sent: which beats
    // will be found, and when each chunk holding a peak was accepted.
    let mut detector = BeatDetector::new(500.0)?;
    let mut found = Vec::new();
    detector.push(&values(0), &mut found);
    let mut accepted: BTreeMap<u64, Instant> = BTreeMap::from([(0, Instant::now())]);
    let mut beats = found.len() as u64;
    for seq in 1u32.. {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = ticker.tick() => {}
        }
        api.post_chunk(id, &chunk(seq)).await?;
        let now = Instant::now();
        accepted.insert(u64::from(seq), now);
        let needed = (u64::from(seq) + 1) * CHUNK as u64;
        let mut pending = pending.lock().expect("not poisoned");
        pending.chunks.push_back((needed, now));
        let mut decided = Vec::new();
        detector.push(&values(seq), &mut decided);
        for peak in decided {
            beats += 1;
            let holder = peak / CHUNK as u64;
            // A beat of the learning period counts, untimed.
            if let Some(&at) = accepted.get(&holder).filter(|_| peak >= LEARNING) {
                pending.beats.push_back((beats, at));
            }
        }
        // Keep the acceptance times a beat decision can still need.
        let keep = u64::from(seq).saturating_sub(8);
        accepted.retain(|&s, _| s >= keep);
    }
    sent_all.cancel();
    let (h, b) = poller.await??;
    Ok(Freshness {
        chunks: h.len(),
        p50_ms: h.value_at_quantile(0.5) as f64,
        p99_ms: h.value_at_quantile(0.99) as f64,
        max_ms: h.max() as f64,
        beats: b.len(),
        beat_p50_ms: b.value_at_quantile(0.5) as f64,
        beat_p99_ms: b.value_at_quantile(0.99) as f64,
        beat_max_ms: b.max() as f64,
    })
}

/// What the poller still waits for.
#[derive(Debug, Default)]
struct Pending {
    /// (samples lead I must count, when the chunk was accepted).
    chunks: VecDeque<(u64, Instant)>,
    /// (beats lead I must count, when the chunk holding the peak was
    /// accepted).
    beats: VecDeque<(u64, Instant)>,
}

/// Asks for the insights every [`POLL`] while chunks are pending, like one
/// dashboard watching the ECG, and records each chunk's wait when lead I's
/// count first includes it. One poller, not one per chunk: the polls are
/// load on the machine being measured.
async fn poll(
    api: Api,
    id: Uuid,
    pending: Arc<Mutex<Pending>>,
    sent_all: CancellationToken,
) -> anyhow::Result<(Histogram<u64>, Histogram<u64>)> {
    let mut chunks = Histogram::<u64>::new_with_bounds(1, 600_000, 3)?;
    let mut beats = Histogram::<u64>::new_with_bounds(1, 600_000, 3)?;
    loop {
        let idle = {
            let p = pending.lock().expect("not poisoned");
            p.chunks.is_empty() && p.beats.is_empty()
        };
        if idle && sent_all.is_cancelled() {
            return Ok((chunks, beats));
        }
        if !idle {
            let (seen, seen_beats) = seen(&api, id).await;
            let mut p = pending.lock().expect("not poisoned");
            while let Some(&(needed, accepted_at)) = p.chunks.front() {
                let waited = accepted_at.elapsed();
                if seen < needed && waited <= GIVE_UP {
                    break;
                }
                chunks.saturating_record(waited.as_millis().max(1) as u64);
                p.chunks.pop_front();
            }
            while let Some(&(needed, accepted_at)) = p.beats.front() {
                let waited = accepted_at.elapsed();
                if seen_beats < needed && waited <= GIVE_UP {
                    break;
                }
                beats.saturating_record(waited.as_millis().max(1) as u64);
                p.beats.pop_front();
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Samples and beats of lead I the insights endpoint counts (0 if it
/// fails).
async fn seen(api: &Api, id: Uuid) -> (u64, u64) {
    api.insights(id)
        .await
        .ok()
        .and_then(|i| i.leads.get("I").map(|l| (l.samples, l.beats)))
        .unwrap_or((0, 0))
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
