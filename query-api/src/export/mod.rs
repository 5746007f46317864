//! Exports of a stored ECG in the formats hospitals move ECGs in: FHIR R4
//! Observations ([`fhir`]) and PhysioNet WFDB records ([`wfdb`]).
//!
//! Both are exact and streamed. Before a sample is written, one small query
//! ([`blocks::lead_forms`]) says how each lead's blocks in the range are
//! stored, and [`plan`] picks one representation for the whole lead: ADC
//! counts with their calibration, integers over a power of ten, or (FHIR
//! only) each value's shortest decimal text. The blocks are then read one
//! by one from a cursor and encoded on the blocking pool into a bounded
//! channel that feeds the response body, so a 24-hour recording is never
//! in memory, and a client that reads slowly slows the reading down.

pub mod fhir;
pub mod wfdb;

use std::io;

use axum::body::Body;
use bytes::Bytes;
use ecg_clickhouse::blocks::{Codec, LeadForm, Stored};
use ecg_clickhouse::ecgs::EcgRow;
use time::{Duration, OffsetDateTime};
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::params::{self, Params};

/// How one lead of an export is written: one choice for all its blocks.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Every block holds ADC counts under one calibration.
    Adc {
        gain: f64,
        baseline: i32,
        low: i32,
        high: i32,
    },
    /// Every block holds decimal integers (`value = n / 10^scale`, the
    /// blocks' scales raised to the largest), any raw exception being ±0.
    Scaled { scale: u8, low: i64, high: i64 },
    /// Neither: the values themselves, and why.
    Values { why: String },
}

/// The plan for one lead from its forms (all of one lead).
pub fn plan(lead: &str, forms: &[LeadForm]) -> Plan {
    let Some(first) = forms.first() else {
        return Plan::Scaled {
            scale: 0,
            low: 0,
            high: 0,
        };
    };
    if first.codec == Codec::Adc {
        if let Some(other) = forms.iter().find(|f| {
            f.codec != Codec::Adc
                || f.adc_gain.to_bits() != first.adc_gain.to_bits()
                || f.adc_baseline != first.adc_baseline
        }) {
            return Plan::Values {
                why: format!(
                    "lead {lead:?} changes calibration at chunk {} (gain {} and baseline {} before)",
                    other.first_seq, first.adc_gain, first.adc_baseline
                ),
            };
        }
        return Plan::Adc {
            gain: first.adc_gain,
            baseline: first.adc_baseline,
            low: forms.iter().map(|f| f.ints_low).min().unwrap_or(0),
            high: forms.iter().map(|f| f.ints_high).max().unwrap_or(0),
        };
    }
    if let Some(f) = forms
        .iter()
        .find(|f| f.codec != Codec::Decimal || f.raw_nonzero)
    {
        return Plan::Values {
            why: format!(
                "lead {lead:?} has samples with no decimal form of 9 digits from chunk {}",
                f.first_seq
            ),
        };
    }
    let scale = forms.iter().map(|f| f.scale).max().unwrap_or(0);
    let (mut low, mut high) = (0i64, 0i64);
    for f in forms {
        let Some(m) = 10i64.checked_pow(u32::from(scale - f.scale)) else {
            return Plan::Values {
                why: format!("lead {lead:?} mixes decimal scales too far apart"),
            };
        };
        low = low.min(i64::from(f.ints_low) * m);
        high = high.max(i64::from(f.ints_high) * m);
    }
    Plan::Scaled { scale, low, high }
}

/// Each lead's plan, in the ECG's lead order.
pub fn plans(leads: &[String], forms: &[LeadForm]) -> Vec<Plan> {
    leads
        .iter()
        .map(|lead| {
            let mine: Vec<LeadForm> = forms.iter().filter(|f| f.lead == *lead).cloned().collect();
            plan(lead, &mine)
        })
        .collect()
}

/// A block's samples in the export's integers: counts for [`Plan::Adc`],
/// `n` of `n / 10^scale` for [`Plan::Scaled`]. `None` for another plan.
pub fn integers(plan: &Plan, block: &Stored) -> Option<Vec<i64>> {
    match plan {
        Plan::Adc { .. } => Some(block.ints.iter().map(|&n| i64::from(n)).collect()),
        Plan::Scaled { scale, .. } => {
            // `plan` checked the power fits, and that raw exceptions are ±0
            // (their `ints` slot holds 0).
            let m = 10i64.pow(u32::from(scale.saturating_sub(block.scale)));
            let mut out: Vec<i64> = block.ints.iter().map(|&n| i64::from(n) * m).collect();
            for &at in &block.raw_at {
                if let Some(slot) = out.get_mut(at as usize) {
                    *slot = 0;
                }
            }
            Some(out)
        }
        Plan::Values { .. } => None,
    }
}

/// The samples `first..last` of an export, read from its query string
/// (`from`, `to`, RFC 3339) against the ECG's placed samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub first: u64,
    pub last: u64,
}

impl Span {
    /// The span `from..to` asks for within `0..placed`; the whole ECG so far
    /// by default.
    pub fn of(q: &Params, ecg: &EcgRow, placed: u64) -> Result<Span, ApiError> {
        let (from, to) = (q.time("from")?, q.time("to")?);
        params::check_range(from, to)?;
        let (t0, rate) = (ecg.started_at, ecg.sample_rate_hz);
        let first = from
            .map_or(0, |t| params::index_at(t, t0, rate))
            .min(placed);
        let last = to
            .map_or(placed, |t| params::index_at(t, t0, rate))
            .min(placed)
            .max(first);
        Ok(Span { first, last })
    }

    pub fn len(&self) -> u64 {
        self.last - self.first
    }

    pub fn is_empty(&self) -> bool {
        self.last == self.first
    }

    /// The part of `block` inside the span: (offset into the block, count).
    pub fn of_block(&self, block: &Stored, samples: usize) -> Option<(usize, usize)> {
        let start = block.first_sample;
        let end = start + samples as u64;
        let lo = self.first.clamp(start, end);
        let hi = self.last.clamp(start, end);
        (hi > lo).then(|| ((lo - start) as usize, (hi - lo) as usize))
    }
}

/// The time of sample `index`, rounded down to the microsecond: a `from`
/// that [`params::index_at`] maps back to `index` exactly (rounding to the
/// nearest microsecond may land after the sample, and so on the next one).
pub fn time_before(index: u64, started_at: OffsetDateTime, rate_hz: f64) -> OffsetDateTime {
    let at = |micros: i64| {
        started_at
            .checked_add(Duration::microseconds(micros))
            .unwrap_or(started_at)
    };
    let mut micros = (index as f64 * 1e6 / rate_hz).floor() as i64;
    // `index_at` rounds up `seconds x rate`, whose float product may land
    // just past a whole sample (0.275 s x 360 Hz = 99.00000000000001): step
    // back until it maps to `index`, then forward if it fell short.
    while micros > 0 && params::index_at(at(micros), started_at, rate_hz) > index {
        micros -= 1;
    }
    while params::index_at(at(micros), started_at, rate_hz) < index {
        micros += 1;
    }
    at(micros)
}

/// Bytes gathered before they go to the body, at most about this many.
const FLUSH_AT: usize = 256 << 10;
/// Pieces on their way to the client, at most.
const IN_FLIGHT: usize = 4;

/// The writing end of a streamed response body: bytes gather in `buf` and
/// leave in pieces of about [`FLUSH_AT`] through a channel of
/// [`IN_FLIGHT`], so a slow reader slows the writer.
#[derive(Debug)]
pub struct Out {
    pub buf: Vec<u8>,
    tx: mpsc::Sender<io::Result<Bytes>>,
}

/// The reader went away: stop writing.
#[derive(Debug)]
pub struct Gone;

impl Out {
    /// A writer and the body it feeds.
    pub fn new() -> (Out, Body) {
        let (tx, rx) = mpsc::channel(IN_FLIGHT);
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|piece| (piece, rx))
        });
        let out = Out {
            buf: Vec::with_capacity(FLUSH_AT + (64 << 10)),
            tx,
        };
        (out, Body::from_stream(stream))
    }

    fn take(&mut self) -> Bytes {
        Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(FLUSH_AT + (64 << 10)),
        ))
    }

    /// Sends what is gathered, from async code.
    pub async fn flush(&mut self) -> Result<(), Gone> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = self.take();
        self.tx.send(Ok(piece)).await.map_err(|_| Gone)
    }

    /// Sends what is gathered once it is [`FLUSH_AT`] or more, from the
    /// blocking pool (never from async code: it blocks the thread).
    pub fn flush_if_full_blocking(&mut self) -> Result<(), Gone> {
        if self.buf.len() < FLUSH_AT {
            return Ok(());
        }
        let piece = self.take();
        self.tx.blocking_send(Ok(piece)).map_err(|_| Gone)
    }

    /// What ends the body with an error, kept apart from the writer: the
    /// writer may be lost with a failed fold.
    pub fn alarm(&self) -> Alarm {
        Alarm(self.tx.clone())
    }
}

/// Ends a streamed body with an error, so the client sees a broken transfer
/// rather than a document that looks whole.
#[derive(Debug)]
pub struct Alarm(mpsc::Sender<io::Result<Bytes>>);

impl Alarm {
    pub async fn raise(self, error: &anyhow::Error) {
        tracing::error!(error = ?error, "export failed while streaming");
        let _ = self
            .0
            .send(Err(io::Error::other(format!("export failed: {error:#}"))))
            .await;
    }
}

/// Why an export stopped before its end.
#[derive(Debug)]
pub enum Stop {
    /// The client went away.
    Gone,
    /// Reading failed.
    Failed(anyhow::Error),
}

impl From<Gone> for Stop {
    fn from(_: Gone) -> Self {
        Stop::Gone
    }
}

impl From<clickhouse::error::Error> for Stop {
    fn from(e: clickhouse::error::Error) -> Self {
        Stop::Failed(anyhow::Error::new(e).context("reading the blocks"))
    }
}

/// Runs `job` (which writes the body through the [`Out`] it is given) in
/// its own task, ending the body with an error if it fails.
pub fn spawn_writer<F>(out: Out, job: impl FnOnce(Out) -> F + Send + 'static)
where
    F: Future<Output = Result<(), Stop>> + Send + 'static,
{
    let alarm = out.alarm();
    tokio::spawn(async move {
        match job(out).await {
            Ok(()) | Err(Stop::Gone) => {}
            Err(Stop::Failed(e)) => alarm.raise(&e).await,
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(codec: Codec, gain: f64, baseline: i32, scale: u8, ints: (i32, i32)) -> LeadForm {
        LeadForm {
            lead: "I".into(),
            codec,
            adc_gain: gain,
            adc_baseline: baseline,
            scale,
            ints_low: ints.0,
            ints_high: ints.1,
            raw_nonzero: false,
            first_seq: 3,
        }
    }

    #[test]
    fn one_calibration_is_adc_and_a_second_one_is_not() {
        let a = form(Codec::Adc, 200.0, 1024, 0, (-5, 2047));
        let b = form(Codec::Adc, 200.0, 1024, 0, (-2048, 7));
        assert_eq!(
            plan("I", &[a.clone(), b]),
            Plan::Adc {
                gain: 200.0,
                baseline: 1024,
                low: -2048,
                high: 2047
            }
        );
        let c = form(Codec::Adc, 400.0, 1024, 0, (0, 1));
        let Plan::Values { why } = plan("I", &[a, c]) else {
            panic!("two calibrations must not be one ADC lead");
        };
        assert!(why.contains("chunk 3"), "{why}");
    }

    #[test]
    fn decimals_are_raised_to_the_largest_scale() {
        let a = form(Codec::Decimal, 0.0, 0, 1, (-15, 20));
        let b = form(Codec::Decimal, 0.0, 0, 3, (-7, 9));
        assert_eq!(
            plan("I", &[a, b]),
            Plan::Scaled {
                scale: 3,
                low: -1500,
                high: 2000
            }
        );
        let mut raw = form(Codec::Decimal, 0.0, 0, 1, (0, 1));
        raw.raw_nonzero = true;
        assert!(matches!(plan("I", &[raw]), Plan::Values { .. }));
        let floats = form(Codec::Raw, 0.0, 0, 0, (0, 0));
        assert!(matches!(plan("I", &[floats]), Plan::Values { .. }));
    }

    #[test]
    fn a_time_rounded_down_maps_back_to_its_sample() {
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::microseconds(123_457);
        for rate in [360.0, 500.0, 128.5, 1000.0 / 3.0, 4000.0] {
            for index in (0..5_000u64).chain([1 << 20, 43_200_000, 86_400 * 4000 - 1]) {
                let t = time_before(index, t0, rate);
                assert_eq!(params::index_at(t, t0, rate), index, "rate {rate}");
            }
        }
    }
}
