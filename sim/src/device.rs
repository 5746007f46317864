//! One simulated device: opens its ECG, then sends chunk after chunk, each
//! due at `start + k * chunk_duration` in real time (or at once, as fast as
//! possible), retrying what the gateway asks to retry, and keeps the
//! running zero-crossing summary of every lead it sent, for verification.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ecg_client::{Api, ClientError};
use ecg_schemas::Calibration;
use ecg_schemas::api::{ChunkRequest, CreateEcg};
use ecg_signal::LeadSummary;
use tokio::time::Instant;
use uuid::Uuid;

use crate::stats::Stats;
use crate::synth::Synth;

/// Where a device's samples come from.
#[derive(Debug)]
pub enum Signal {
    Synthetic(Box<Synth>),
    /// A decoded file, replayed from `position`, from its start again when
    /// it ends.
    Replay {
        counts: Arc<Vec<Vec<i32>>>,
        position: usize,
    },
}

impl Signal {
    fn next_block(&mut self, n: usize) -> Vec<Vec<i32>> {
        match self {
            Signal::Synthetic(s) => s.next_block(n),
            Signal::Replay { counts, position } => {
                let len = counts[0].len();
                let mut out = vec![Vec::with_capacity(n); counts.len()];
                for _ in 0..n {
                    for (o, c) in out.iter_mut().zip(counts.iter()) {
                        o.push(c[*position]);
                    }
                    *position = (*position + 1) % len;
                }
                out
            }
        }
    }
}

/// What one device streams.
#[derive(Debug)]
pub struct Plan {
    pub device_id: String,
    pub leads: Vec<String>,
    pub sample_rate_hz: f64,
    pub calibration: Vec<Calibration>,
    pub signal: Signal,
    pub chunks: u32,
    pub chunk_samples: usize,
    pub chunk_duration: Duration,
    /// When the device starts (after its ramp-up delay).
    pub start: Instant,
    pub real_time: bool,
    pub max_retries: u32,
}

/// What a device sent: its ECG and each lead's summary of the whole signal.
#[derive(Debug, Clone)]
pub struct Sent {
    pub id: Uuid,
    pub leads: Vec<String>,
    pub summaries: Vec<LeadSummary>,
    pub samples_per_lead: u64,
    /// False when the device gave up before sending every chunk.
    pub complete: bool,
}

/// Runs the device to its end; `None` when it could not even open its ECG.
pub async fn run(api: &Api, mut plan: Plan, stats: &Stats) -> Option<Sent> {
    tokio::time::sleep_until(plan.start).await;
    stats.devices_running.fetch_add(1, Ordering::Relaxed);
    let result = stream(api, &mut plan, stats).await;
    stats.devices_running.fetch_sub(1, Ordering::Relaxed);
    match &result {
        Some(sent) if sent.complete => stats.devices_done.fetch_add(1, Ordering::Relaxed),
        _ => stats.devices_gave_up.fetch_add(1, Ordering::Relaxed),
    };
    result
}

async fn stream(api: &Api, plan: &mut Plan, stats: &Stats) -> Option<Sent> {
    let create = CreateEcg {
        device_id: plan.device_id.clone(),
        sample_rate_hz: plan.sample_rate_hz,
        leads: plan.leads.clone(),
        units: ecg_schemas::Units::Millivolts,
        started_at: None,
        adc: Some(
            plan.leads
                .iter()
                .cloned()
                .zip(plan.calibration.iter().copied())
                .collect(),
        ),
        signal: None,
    };
    let begun = Instant::now();
    // One key for every attempt: a retry after a lost answer opens no
    // second ECG.
    let key = Uuid::new_v4().to_string();
    let id = retry(plan.max_retries, stats, || {
        api.create_ecg_once(&create, Some(&key))
    })
    .await?
    .id;
    stats.ecg_opened(begun.elapsed());

    let mut sent = Sent {
        id,
        leads: plan.leads.clone(),
        summaries: vec![LeadSummary::EMPTY; plan.leads.len()],
        samples_per_lead: 0,
        complete: false,
    };
    // The schedule starts once the ECG is open.
    let start = Instant::now();
    for seq in 0..plan.chunks {
        // The chunk is built before it is due: a real device has its samples
        // buffered by then, and neither the synthesis nor the encoding is
        // the pipeline's latency.
        let block = plan.signal.next_block(plan.chunk_samples);
        let samples: BTreeMap<String, Vec<f64>> = plan
            .leads
            .iter()
            .zip(&block)
            .map(|(l, c)| (l.clone(), c.iter().map(|&v| f64::from(v)).collect()))
            .collect();
        let body = match serde_json::to_vec(&ChunkRequest {
            seq,
            samples,
            r#final: seq + 1 == plan.chunks,
        }) {
            Ok(b) => b,
            Err(_) => return Some(sent),
        };
        let due = start + plan.chunk_duration * seq;
        let from = if !plan.real_time {
            Instant::now()
        } else if Instant::now() < due {
            // On time: the latency runs from the wake-up, so the timer's own
            // lateness (tokio rounds up to the millisecond, and this process
            // shares the CPUs) is not charged to the gateway.
            tokio::time::sleep_until(due).await;
            Instant::now()
        } else {
            // Coordinated omission: behind schedule because earlier answers
            // were slow, so the latency runs from when the chunk was due and
            // a slow answer is charged to the chunks it delayed too, as a
            // device's buffer would feel it.
            due
        };
        if retry(plan.max_retries, stats, || {
            api.post_chunk_json(id, body.clone())
        })
        .await
        .is_none()
        {
            return Some(sent);
        }
        stats.chunk_accepted(
            (plan.chunk_samples * plan.leads.len()) as u64,
            from.elapsed(),
        );
        for ((summary, column), calibration) in
            sent.summaries.iter_mut().zip(&block).zip(&plan.calibration)
        {
            *summary = summary.then(LeadSummary::of_digital_i32(
                column,
                i64::from(calibration.baseline),
            ));
        }
        sent.samples_per_lead += plan.chunk_samples as u64;
    }
    sent.complete = true;
    Some(sent)
}

/// Calls `f` until it succeeds, retrying what may succeed later (429, 503,
/// no answer) after `Retry-After` or a backoff, at most `max_retries` times.
async fn retry<T, F, Fut>(max_retries: u32, stats: &Stats, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ClientError>>,
{
    let mut attempt = 0;
    loop {
        match f().await {
            Ok(v) => return Some(v),
            Err(e) => {
                stats.error(&e);
                if !e.is_retryable() || attempt >= max_retries {
                    return None;
                }
                attempt += 1;
                stats.retries.fetch_add(1, Ordering::Relaxed);
                let backoff = Duration::from_millis(100 << attempt.min(6));
                tokio::time::sleep(
                    e.retry_after()
                        .unwrap_or(backoff)
                        .min(Duration::from_secs(10)),
                )
                .await;
            }
        }
    }
}
