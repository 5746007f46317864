//! [`BeatDetector`]: a streaming QRS detector of the Pan-Tompkins /
//! Hamilton-Tompkins family, written for this crate, as an [`Analytic`].
//!
//! What it reports: the sample index (from the lead's first sample, 0) of
//! each beat's R peak, in increasing order, each as soon as it is decided.
//!
//! How, per sample (`step`, `O(1)`, no allocation):
//! 1. a 5-15 Hz band-pass designed for the lead's rate (`filter.rs`);
//! 2. the first difference of that, squared, summed over a moving 150 ms
//!    window: the "integrated" signal, one hump per QRS complex;
//! 3. a hump's peak is taken when the hump falls to half its height, or
//!    150 ms after it stopped rising (`Tracker`).
//!
//! Then, per peak (`decide.rs`):
//! - inside the 200 ms refractory period after a beat it is ignored;
//! - within 360 ms of a beat, a peak less steep (largest band-passed
//!   slope) than half the last beat, and lower than 30 % of the QRS level,
//!   is a T wave (Pan and Tompkins' slope rule; the height test keeps early
//!   ectopic beats, wide and so less steep but high);
//! - otherwise it is a beat when it reaches the threshold of `levels.rs`
//!   (the noise level plus 0.3125 of the way to the QRS level, each the
//!   median of the last eight peaks of its kind), else noise;
//! - search-back: the highest noise peak above half the threshold since
//!   the last beat becomes a beat when no beat has come within
//!   min(1.5 RR, RR + 350 ms) of the last one (RR: the median of the last
//!   eight intervals);
//! - without a beat reaching the threshold for two RR intervals (at least
//!   1.5 s), the QRS level halves every RR interval (at least 0.5 s), down
//!   to four times the noise level, so a lead whose amplitude drops is
//!   found again within seconds.
//!
//! A beat's R peak: the largest band-passed excursion in the 200 ms before
//! the peak, moved back by the band-pass's group delay (about 50 ms at every
//! rate), then the extreme of the unfiltered signal within 40 ms of that,
//! of the polarity departing most from the local baseline. Detections land
//! within a sample or two of MIT-BIH's R-peak annotations.
//!
//! Start: the first 2 s are a learning period (as in Pan-Tompkins): the
//! levels start from its highest peak and half its mean, and its peaks are
//! then judged like any other. A learning period with no peak (a flat
//! lead) starts again.
//!
//! Guarantees:
//! - Any chunking, with the state saved and restored anywhere, gives the
//!   same beats bit for bit: every decision is made per sample, from state
//!   that [`Analytic::save`] writes whole.
//! - Decision delay: after the learning period, a beat is reported at most
//!   0.5 s of signal after its R peak: a peak is taken at most 150 ms after
//!   its hump's top, its R peak is at most 290 ms before the top (window,
//!   margin, group delay, refinement), and a search-back candidate still
//!   undecided 0.5 s after its R peak is dropped. Beats of the learning
//!   period are reported at its end.
//! - Memory per lead is constant: the last 0.5 s of samples, unfiltered and
//!   band-passed, and about 600 bytes more; saved, about 3.2 KB at 360 Hz,
//!   16 KB at 2,000 Hz.
//! - Amplitude: every threshold is relative, so millivolts, microvolts or
//!   ADC counts give the same beats (exactly when the scale is a power of
//!   two). Samples that are not finite or beyond ±1e100 are replaced by the
//!   previous sample.
//!
//! Limits: one lead at a time (no cross-lead voting); a beat missed more
//! than 0.5 s before search-back time (a premature, small beat at a slow
//! rate) stays missed; a beat whose R peak is in the last ~30 ms of a
//! finished lead can be missed (its QRS complex is cut); in the 360 ms after
//! a beat, a real beat less steep than half the last one and lower than
//! 30 % of the QRS level is taken for a T wave; tuned on one real record
//! (MIT-BIH 100) and synthetic ECGs, not on the whole database; ventricular
//! flutter and paced rhythms were not tuned for.

mod decide;
mod filter;
mod levels;
mod persist;

use crate::analytic::{Analytic, AnalyticError};
use crate::state::{StateError, StateReader, StateWriter};
use decide::{Learning, Peak};
use filter::{SECTIONS, Section};
use levels::Levels;

/// Lowest and highest sample rates accepted. Tested from 125 to 2,000 Hz.
const MIN_RATE_HZ: f64 = 100.0;
const MAX_RATE_HZ: f64 = 4_000.0;

/// Samples whose magnitude is beyond this are held at the previous sample:
/// squares of differences of such values stay finite.
const MAX_ABS: f64 = 1e100;

/// Durations of the method, in seconds, and what they become at a rate.
#[derive(Debug, Clone, PartialEq)]
struct Params {
    rate_hz: f64,
    sections: [Section; SECTIONS],
    /// Moving-window integration length (150 ms).
    window: usize,
    /// Longest wait for a hump to fall to half before its peak is taken.
    hold: u64,
    /// Extra reach of the R peak search before the integration window.
    margin: usize,
    /// The band-pass's group delay at 10 Hz, rounded.
    delay: usize,
    /// Half-width of the R peak's refinement in the unfiltered signal.
    reach: usize,
    /// Where, either side of the R peak, the local baseline is taken.
    baseline: usize,
    /// Samples kept: enough for the furthest look back from a peak taken
    /// `hold` after its top, plus the two differences at the oldest end.
    ring: usize,
    refractory: u64,
    t_wave: u64,
    learn: u64,
    /// The longest a search-back candidate waits after its R peak.
    deadline: u64,
    /// Search-back waits at most RR plus this.
    search_back_extra: f64,
    /// The QRS level starts to decay no sooner than this after a beat...
    min_stale: f64,
    /// ...and halves no more often than this.
    min_decay_every: f64,
}

impl Params {
    fn new(rate_hz: f64) -> Result<Self, AnalyticError> {
        if !(MIN_RATE_HZ..=MAX_RATE_HZ).contains(&rate_hz) {
            return Err(AnalyticError::SampleRate {
                name: BeatDetector::NAME,
                rate_hz,
                min_hz: MIN_RATE_HZ,
                max_hz: MAX_RATE_HZ,
            });
        }
        let samples = |s: f64| ((s * rate_hz).round() as usize).max(1);
        let sections = filter::band_pass(rate_hz);
        let delay = filter::delay_samples(&sections, rate_hz, 10.0)
            .round()
            .max(0.0) as usize;
        let (window, hold, margin, reach, baseline) = (
            samples(0.150),
            samples(0.150),
            samples(0.050),
            samples(0.040),
            samples(0.100),
        );
        Ok(Params {
            rate_hz,
            sections,
            window,
            hold: hold as u64,
            margin,
            delay,
            reach,
            baseline,
            ring: hold + window + margin + delay + reach.max(baseline) + 2,
            refractory: samples(0.200) as u64,
            t_wave: samples(0.360) as u64,
            learn: samples(2.0) as u64,
            // Rounded down: never past the 0.5 s promised.
            deadline: (0.5 * rate_hz).floor() as u64,
            search_back_extra: 0.350 * rate_hz,
            min_stale: 1.5 * rate_hz,
            min_decay_every: 0.5 * rate_hz,
        })
    }
}

/// The hump tracker's state: rising towards a top, or falling to a low.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Tracker {
    rising: bool,
    /// Highest value of the rising hump, and where.
    top: f64,
    top_at: u64,
    /// Lowest value since the last peak.
    low: f64,
}

/// A streaming QRS detector for one lead; see the module documentation.
#[derive(Debug, Clone, PartialEq)]
pub struct BeatDetector {
    p: Params,
    /// Samples seen.
    n: u64,
    sections: [[f64; 2]; SECTIONS],
    /// The last `p.ring` samples, `[unfiltered, band-passed]`; `pos` holds
    /// the newest (sample `n - 1`).
    ring: Vec<[f64; 2]>,
    pos: usize,
    /// The integrated signal: the sum of squared differences over the window.
    mwi: f64,
    /// `n % p.window`: the sum is recomputed from the ring when it wraps, so
    /// rounding of the running sum never accumulates.
    phase: usize,
    tracker: Tracker,
    levels: Levels,
    /// The last beat: its peak in the integrated signal, and its R peak.
    last: Option<(u64, u64)>,
    /// The steepest band-passed slope of the last beat.
    last_slope: f64,
    /// The best search-back candidate since the last beat.
    candidate: Option<Peak>,
    learning: Option<Learning>,
    next_decay: u64,
    /// The first sample at which `on_time` has something to do.
    next_event: u64,
}

impl BeatDetector {
    /// A detector for a lead sampled at `sample_rate_hz` (100 to 4,000 Hz).
    pub fn new(sample_rate_hz: f64) -> Result<Self, AnalyticError> {
        let p = Params::new(sample_rate_hz)?;
        let learning = Learning::new(p.learn);
        let mut d = BeatDetector {
            n: 0,
            sections: [[0.0; 2]; SECTIONS],
            ring: vec![[0.0; 2]; p.ring],
            pos: 0,
            mwi: 0.0,
            phase: 0,
            tracker: Tracker {
                rising: false,
                top: 0.0,
                top_at: 0,
                low: 0.0,
            },
            levels: Levels::new(0.0, 0.0, sample_rate_hz),
            last: None,
            last_slope: 0.0,
            candidate: None,
            learning: Some(learning),
            next_decay: u64::MAX,
            next_event: 0,
            p,
        };
        d.next_event = d.next_event();
        Ok(d)
    }

    /// The lead's sample rate.
    pub fn sample_rate_hz(&self) -> f64 {
        self.p.rate_hz
    }

    /// Samples pushed so far.
    pub fn samples(&self) -> u64 {
        self.n
    }

    /// Ring index of the sample `k` samples before the newest.
    #[inline(always)]
    fn back(&self, k: usize) -> usize {
        if self.pos >= k {
            self.pos - k
        } else {
            self.pos + self.p.ring - k
        }
    }

    /// Squared difference of the band-passed signal ending `k` samples
    /// before the newest.
    #[inline(always)]
    fn energy(&self, k: usize) -> f64 {
        let d = self.ring[self.back(k)][1] - self.ring[self.back(k + 1)][1];
        d * d
    }

    /// Takes the first sample: every section settles on it and the ring is
    /// filled with it, as if the lead had always been at that value.
    fn start(&mut self, x: f64) {
        let mut v = x;
        for (sec, s) in self.p.sections.iter().zip(&mut self.sections) {
            let (state, y) = sec.settled(v);
            *s = state;
            v = y;
        }
        self.ring.fill([x, v]);
        self.pos = self.p.ring - 1;
    }

    /// One sample.
    #[inline(always)]
    fn step(&mut self, x: f64, out: &mut Vec<u64>) {
        let now = self.n;
        let x = if x.abs() <= MAX_ABS {
            x
        } else if now == 0 {
            0.0
        } else {
            self.ring[self.pos][0]
        };
        if now == 0 {
            self.start(x);
        }
        let mut bp = x;
        for (sec, s) in self.p.sections.iter().zip(&mut self.sections) {
            bp = sec.step(s, bp);
        }
        self.pos = if self.pos + 1 == self.p.ring {
            0
        } else {
            self.pos + 1
        };
        self.ring[self.pos] = [x, bp];
        self.n = now + 1;

        let w = self.p.window;
        self.phase += 1;
        if self.phase == w {
            self.phase = 0;
            self.mwi = (0..w).map(|k| self.energy(k)).sum();
        } else {
            self.mwi += self.energy(0) - self.energy(w);
        }
        let y = self.mwi;

        let t = &mut self.tracker;
        if t.rising {
            if y > t.top {
                t.top = y;
                t.top_at = now;
            } else if y <= 0.5 * t.top || now - t.top_at >= self.p.hold {
                let (top, at) = (t.top, t.top_at);
                t.rising = false;
                t.low = y;
                self.on_peak(now, at, top, false, out);
            }
        } else if y < t.low {
            t.low = y;
        } else if y > t.low {
            *t = Tracker {
                rising: true,
                top: y,
                top_at: now,
                low: y,
            };
        }
        if let Some(l) = &mut self.learning {
            l.mwi_sum += y;
        }
        if now >= self.next_event {
            self.on_time(now, out);
        }
    }
}

impl Analytic for BeatDetector {
    const ID: u8 = 2;
    const NAME: &'static str = "beats";
    const STATE_VERSION: u8 = 1;
    type Output = Vec<u64>;

    fn new(sample_rate_hz: f64) -> Result<Self, AnalyticError> {
        BeatDetector::new(sample_rate_hz)
    }

    fn push(&mut self, samples: &[f64], out: &mut Vec<u64>) {
        for &x in samples {
            self.step(x, out);
        }
    }

    /// Ends the lead: a hump still rising is taken as a peak (and judged
    /// against the search-back threshold, since the end cut it short), a
    /// learning period cut short is ended, and a search-back candidate is
    /// dropped (no later beat can show it was missed).
    fn finish(&mut self, out: &mut Vec<u64>) {
        let Some(now) = self.n.checked_sub(1) else {
            return;
        };
        if self.tracker.rising {
            let t = &mut self.tracker;
            let (top, at) = (t.top, t.top_at);
            t.rising = false;
            t.low = 0.0;
            self.on_peak(now, at, top, true, out);
        }
        if self.learning.is_some() {
            self.end_learning(now, out);
        }
        self.candidate = None;
        self.next_event = self.next_event();
    }

    fn save_body(&self, w: &mut StateWriter) {
        self.save_fields(w);
    }

    fn restore_body(_version: u8, r: &mut StateReader<'_>) -> Result<Self, StateError> {
        BeatDetector::restore_fields(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The decision delay's bound, from the durations: a peak is taken at
    /// most `hold` after its top, and its R peak is at most the
    /// integration window, the margin, the group delay and the refinement's
    /// reach before the top. The ring holds all of that and the baseline.
    #[test]
    fn a_beat_is_decided_within_half_a_second_at_every_rate() {
        for rate in [100.0, 125.0, 250.0, 360.0, 1000.0, 2000.0, 4000.0] {
            let p = Params::new(rate).unwrap();
            let r_before_top = p.window + p.margin + p.delay + p.reach;
            let bound = p.hold as f64 + r_before_top as f64;
            println!(
                "{rate} Hz: group delay {:.1} ms, decided at most {:.0} ms after the R peak, ring {:.0} ms",
                p.delay as f64 / rate * 1000.0,
                bound / rate * 1000.0,
                p.ring as f64 / rate * 1000.0
            );
            assert!(bound <= p.deadline as f64, "{rate} Hz: {bound}");
            assert!(p.deadline as f64 <= 0.5 * rate);
            let reach_back = p.hold as usize + p.window + p.margin + p.delay;
            assert!(p.ring >= reach_back + p.reach.max(p.baseline) + 2);
        }
    }
}
