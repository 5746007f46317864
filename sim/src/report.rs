//! The progress lines and the final report (text, and JSON for scripts).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::stats::{Percentiles, Stats};
use crate::verify::Verification;
use crate::{Config, Pace};

/// Prints one progress line; returns the samples and time it was printed
/// at, for the next line's rate.
pub fn progress_line(
    stats: &Stats,
    devices: usize,
    began: Instant,
    last: (u64, Instant),
) -> (u64, Instant) {
    let now = Instant::now();
    let samples = stats.samples.load(Ordering::Relaxed);
    let rate = (samples - last.0) as f64 / now.duration_since(last.1).as_secs_f64().max(1e-9);
    let errors: u64 = stats.errors().values().sum();
    eprintln!(
        "[{:>6.1} s] devices {} running, {} done of {devices}; chunks {}, samples {} ({:.0}/s); errors {errors}; chunk latency {}",
        began.elapsed().as_secs_f64(),
        stats.devices_running.load(Ordering::Relaxed),
        stats.devices_done.load(Ordering::Relaxed),
        stats.chunks.load(Ordering::Relaxed),
        samples,
        rate,
        stats.chunk_percentiles()
    );
    (samples, now)
}

/// The outcome of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub devices: usize,
    pub devices_done: u64,
    pub devices_gave_up: u64,
    pub pace: String,
    pub chunk_ms: u64,
    /// From the first device's start to the last device's end.
    pub sending_seconds: f64,
    pub ecgs_opened: u64,
    pub chunks_accepted: u64,
    /// Samples accepted, all leads together.
    pub samples_accepted: u64,
    pub samples_planned: u64,
    pub samples_per_second: f64,
    /// Failed requests by HTTP status (`transport`, `timeout`: no answer).
    pub errors: BTreeMap<String, u64>,
    pub retries: u64,
    /// From the send time, or the scheduled one when behind, in real time; see the crate docs.
    pub chunk_latency: Percentiles,
    pub create_latency: Percentiles,
    pub verification: Option<Verification>,
}

impl Report {
    pub fn new(
        config: &Config,
        stats: &Stats,
        sending: Duration,
        planned: u64,
        verification: Option<Verification>,
    ) -> Self {
        let samples = stats.samples.load(Ordering::Relaxed);
        Report {
            devices: config.devices,
            devices_done: stats.devices_done.load(Ordering::Relaxed),
            devices_gave_up: stats.devices_gave_up.load(Ordering::Relaxed),
            pace: match config.pace {
                Pace::RealTime => "real-time".into(),
                Pace::Fast => "fast".into(),
            },
            chunk_ms: config.chunk_ms,
            sending_seconds: sending.as_secs_f64(),
            ecgs_opened: stats.ecgs_opened.load(Ordering::Relaxed),
            chunks_accepted: stats.chunks.load(Ordering::Relaxed),
            samples_accepted: samples,
            samples_planned: planned,
            samples_per_second: samples as f64 / sending.as_secs_f64().max(1e-9),
            errors: stats.errors(),
            retries: stats.retries.load(Ordering::Relaxed),
            chunk_latency: stats.chunk_percentiles(),
            create_latency: stats.create_percentiles(),
            verification,
        }
    }

    /// Every device sent everything, and verification (if run) passed.
    pub fn passed(&self) -> bool {
        self.devices_gave_up == 0 && self.verification.as_ref().is_none_or(Verification::passed)
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "ecg-sim report")?;
        writeln!(
            f,
            "  devices        {} ({} sent everything, {} gave up), {} chunks of {} ms",
            self.devices, self.devices_done, self.devices_gave_up, self.pace, self.chunk_ms
        )?;
        writeln!(f, "  sending        {:.1} s", self.sending_seconds)?;
        writeln!(f, "  ECGs opened    {}", self.ecgs_opened)?;
        writeln!(f, "  chunks         {} accepted", self.chunks_accepted)?;
        writeln!(
            f,
            "  samples        {} accepted of {} planned ({:.0} samples/s, all leads)",
            self.samples_accepted, self.samples_planned, self.samples_per_second
        )?;
        let errors = if self.errors.is_empty() {
            "none".to_string()
        } else {
            self.errors
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(f, "  errors         {errors} ({} retries)", self.retries)?;
        writeln!(f, "  chunk latency  {}", self.chunk_latency)?;
        writeln!(
            f,
            "                 (real time: from each chunk's send, or its due time when the device is behind: corrected for coordinated omission)"
        )?;
        writeln!(f, "  open latency   {}", self.create_latency)?;
        match &self.verification {
            None => write!(f, "  verification   not run (--verify)")?,
            Some(v) => {
                write!(
                    f,
                    "  verification   {} of {} ECGs match their insights; {} incomplete, {} mismatched ({:.1} s) -> {}",
                    v.matched,
                    v.checked,
                    v.incomplete,
                    v.mismatch_count,
                    v.seconds,
                    if v.passed() { "PASSED" } else { "FAILED" }
                )?;
                for m in &v.mismatches {
                    write!(f, "\n    {m}")?;
                }
            }
        }
        Ok(())
    }
}
