//! After the run: every ECG a device sent whole must reach `complete`, and
//! its insights must equal what the device computed from the samples it
//! sent (per lead: samples, zero crossings).

use std::time::Duration;

use ecg_client::Api;
use ecg_schemas::Status;
use futures::StreamExt as _;
use serde::Serialize;
use tokio::time::Instant;

use crate::device::Sent;

/// Status and insights requests in flight at once.
const CONCURRENCY: usize = 32;

/// The verification's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    /// ECGs checked (those their device sent whole).
    pub checked: usize,
    pub matched: usize,
    /// Not complete before the deadline (or failed).
    pub incomplete: usize,
    /// The first mismatches, described.
    pub mismatches: Vec<String>,
    pub mismatch_count: usize,
    pub seconds: f64,
}

impl Verification {
    pub fn passed(&self) -> bool {
        self.matched == self.checked
    }
}

enum Outcome {
    Match,
    Incomplete(String),
    Mismatch(String),
}

pub async fn verify(api: &Api, sent: &[Sent], deadline: Duration) -> Verification {
    let begun = Instant::now();
    let until = begun + deadline;
    let whole: Vec<&Sent> = sent.iter().filter(|s| s.complete).collect();
    let outcomes: Vec<Outcome> = futures::stream::iter(whole.iter().map(|s| check(api, s, until)))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut v = Verification {
        checked: whole.len(),
        matched: 0,
        incomplete: 0,
        mismatches: Vec::new(),
        mismatch_count: 0,
        seconds: 0.0,
    };
    for o in outcomes {
        match o {
            Outcome::Match => v.matched += 1,
            Outcome::Incomplete(why) => {
                v.incomplete += 1;
                if v.mismatches.len() < 20 {
                    v.mismatches.push(why);
                }
            }
            Outcome::Mismatch(why) => {
                v.mismatch_count += 1;
                if v.mismatches.len() < 20 {
                    v.mismatches.push(why);
                }
            }
        }
    }
    v.seconds = begun.elapsed().as_secs_f64();
    v
}

async fn check(api: &Api, sent: &Sent, until: Instant) -> Outcome {
    let id = sent.id;
    loop {
        match api.status(id).await {
            Ok(s) if s.status == Status::Complete => break,
            Ok(s) if s.status == Status::Failed => {
                return Outcome::Incomplete(format!("{id}: failed: {:?}", s.failed_chunks));
            }
            Ok(s) if Instant::now() > until => {
                return Outcome::Incomplete(format!(
                    "{id}: still {:?} at the deadline ({} of {} chunks written)",
                    s.status,
                    s.chunks_processed,
                    s.final_seq.map_or(0, |f| f + 1)
                ));
            }
            Err(e) if Instant::now() > until => return Outcome::Incomplete(format!("{id}: {e}")),
            // Every 2 s: a fleet of checks polling faster loads ClickHouse
            // more than the processor does (100 ECGs at 32 in flight, 2 polls a
            // second each, were 400 queries a second).
            _ => tokio::time::sleep(Duration::from_secs(2)).await,
        }
    }
    let insights = match api.insights(id).await {
        Ok(i) => i,
        Err(e) => return Outcome::Incomplete(format!("{id}: insights: {e}")),
    };
    for (lead, summary) in sent.leads.iter().zip(&sent.summaries) {
        let Some(got) = insights.leads.get(lead) else {
            return Outcome::Mismatch(format!("{id}: lead {lead} missing from the insights"));
        };
        if got.samples != sent.samples_per_lead || got.zero_crossings != summary.crossings {
            return Outcome::Mismatch(format!(
                "{id} lead {lead}: sent {} samples with {} crossings, insights say {} samples, {} crossings",
                sent.samples_per_lead, summary.crossings, got.samples, got.zero_crossings
            ));
        }
    }
    Outcome::Match
}
