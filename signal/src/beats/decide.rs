//! What the detector does with a peak of the integrated signal, and with
//! the passing of time: learning, beats, T waves, noise, search-back and
//! the decay of the QRS level. See [`super`] for the rules and why.

use super::BeatDetector;
use super::levels::Levels;

/// A peak of the integrated signal, measured when it was taken.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Peak {
    /// Where the integrated signal peaked.
    pub(crate) at: u64,
    /// Its height there.
    pub(crate) height: f64,
    /// The R peak it stands for.
    pub(crate) r: u64,
    /// The steepest band-passed slope in its window.
    pub(crate) slope: f64,
}

impl Peak {
    /// The higher of two peaks; this one on a tie.
    fn higher(self, other: Peak) -> Peak {
        if other.height > self.height {
            other
        } else {
            self
        }
    }
}

/// Peaks more than a refractory period apart in 2 s: at most 11, and room
/// to spare for rounding at low rates.
pub(crate) const LEARN_CAPACITY: usize = 16;

/// The learning period: its end, the sum of the integrated signal so far,
/// and its peaks (a peak within the refractory period of the previous one
/// replaces it when higher).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Learning {
    pub(crate) end: u64,
    pub(crate) mwi_sum: f64,
    pub(crate) peaks: Vec<Peak>,
}

impl Learning {
    pub(crate) fn new(end: u64) -> Self {
        Learning {
            end,
            mwi_sum: 0.0,
            peaks: Vec::with_capacity(LEARN_CAPACITY),
        }
    }
}

/// Search-back takes peaks down to this fraction of the threshold.
const SEARCH_BACK_FRACTION: f64 = 0.5;
/// Within the T-wave window, a peak less steep than this share of the last
/// beat's slope (Pan and Tompkins' rule), and lower than this share of the
/// QRS level, is a T wave. The height test is ours: it keeps early
/// ectopic beats, wide and so less steep, but integrated to 40-60 % of a
/// normal beat's height in the synthetic tests, where a T wave, after the
/// 5 Hz high-pass and the squaring, is a few per cent (record 100's
/// T waves: under 1 %).
const T_WAVE_SLOPE: f64 = 0.5;
const T_WAVE_HEIGHT: f64 = 0.3;
/// The QRS level decays no lower than this many times the noise level.
const DECAY_FLOOR: f64 = 4.0;

impl BeatDetector {
    /// A peak of height `height` at `at`, taken at sample `now`; `cut`
    /// when the end of the lead cut its hump short, so its height is
    /// incomplete and it is judged against the search-back threshold.
    pub(super) fn on_peak(
        &mut self,
        now: u64,
        at: u64,
        height: f64,
        cut: bool,
        out: &mut Vec<u64>,
    ) {
        if self.learning.is_some() {
            let peak = self.measure(now, at, height);
            self.learn(peak);
            return;
        }
        if let Some((last_at, _)) = self.last {
            if at < last_at + self.p.refractory {
                return;
            }
        }
        let mut threshold = self.levels.threshold();
        if cut {
            threshold *= SEARCH_BACK_FRACTION;
        }
        if height < SEARCH_BACK_FRACTION * threshold {
            self.levels.noise.push(height);
            return;
        }
        let peak = self.measure(now, at, height);
        self.judge(peak, threshold, true, out);
        self.next_event = self.next_event();
    }

    /// Keeps a peak of the learning period.
    fn learn(&mut self, peak: Peak) {
        let refractory = self.p.refractory;
        let Some(l) = &mut self.learning else {
            return;
        };
        let len = l.peaks.len();
        match l.peaks.last_mut() {
            Some(prev) if peak.at.saturating_sub(prev.at) < refractory => *prev = prev.higher(peak),
            _ if len < LEARN_CAPACITY => l.peaks.push(peak),
            _ => {}
        }
    }

    /// A peak that passed the refractory period: T wave, beat, or noise
    /// (and maybe the search-back candidate, when `may_search_back`).
    fn judge(&mut self, peak: Peak, threshold: f64, may_search_back: bool, out: &mut Vec<u64>) {
        if let Some((last_at, last_r)) = self.last {
            let t_wave = peak.at.saturating_sub(last_at) < self.p.t_wave
                && peak.slope < T_WAVE_SLOPE * self.last_slope
                && peak.height < T_WAVE_HEIGHT * self.levels.qrs.median();
            // Beats are reported in increasing order; a peak whose R peak
            // is not after the last one is that beat seen again.
            if t_wave || peak.r <= last_r {
                self.levels.noise.push(peak.height);
                return;
            }
        }
        if peak.height >= threshold {
            self.accept(peak, false, out);
        } else {
            self.levels.noise.push(peak.height);
            if may_search_back && self.candidate.is_none_or(|c| peak.height > c.height) {
                self.candidate = Some(peak);
            }
        }
    }

    /// Reports `peak` as a beat. Only a beat that reached the threshold
    /// (not `searched` back) puts off the QRS level's decay: while beats are
    /// found only by search-back, the level is still too high for them.
    fn accept(&mut self, peak: Peak, searched: bool, out: &mut Vec<u64>) {
        if let Some((last_at, _)) = self.last {
            self.levels.push_rr(peak.at.saturating_sub(last_at) as f64);
        }
        self.levels.qrs.push(peak.height);
        self.last = Some((peak.at, peak.r));
        self.last_slope = peak.slope;
        self.candidate = None;
        if !searched {
            self.next_decay = peak.at.saturating_add(self.stale());
        }
        out.push(peak.r);
    }

    /// Where the R peak of a peak at `at` is, and its steepest slope, from
    /// the ring at sample `now`.
    pub(super) fn measure(&self, now: u64, at: u64, height: f64) -> Peak {
        let p = &self.p;
        // Only samples still in the ring, and from its second oldest (whose
        // difference with the oldest is the first slope), and after the last
        // beat's peak, whose QRS complex is behind it.
        let first = now.saturating_sub(p.ring as u64 - 1);
        let oldest = first + u64::from(now > first);
        let floor = match self.last {
            Some((last_at, _)) if self.learning.is_none() => oldest.max(last_at + 1),
            _ => oldest,
        };
        // Every index is clamped into the ring, so even a forged state
        // (positions older than the ring) reads only what is there.
        let value = |i: u64| self.ring[self.back((now - i.clamp(first, now)) as usize)];
        let from = at.saturating_sub((p.window + p.margin) as u64).max(floor);
        let (mut best, mut best_at, mut slope) = (-1.0, at, 0.0f64);
        let slope_from = at.saturating_sub(p.window as u64).max(floor).max(1);
        for i in from..=at.max(from) {
            let bp = value(i)[1];
            if bp.abs() > best {
                best = bp.abs();
                best_at = i;
            }
            if i >= slope_from {
                slope = slope.max((bp - value(i - 1)[1]).abs());
            }
        }
        // The R peak: the unfiltered signal's extreme near where the
        // band-pass delays it to, of the polarity that departs most from
        // the local baseline (the mean of the signal 100 ms either side:
        // PR and ST segments). The band-passed sign alone would often pick
        // the Q or S wave, whose band-passed lobes can outweigh the R's.
        let centre = best_at.saturating_sub(p.delay as u64);
        let lo = centre.saturating_sub(p.reach as u64).max(floor);
        let hi = (centre + p.reach as u64).min(now).max(lo);
        let before = centre.saturating_sub(p.baseline as u64).max(oldest);
        let after = (centre + p.baseline as u64).min(now);
        let base = (value(before)[0] + value(after)[0]) / 2.0;
        let (mut high, mut high_at, mut low, mut low_at) =
            (f64::NEG_INFINITY, lo, f64::INFINITY, lo);
        for i in lo..=hi {
            let raw = value(i)[0];
            if raw > high {
                high = raw;
                high_at = i;
            }
            if raw < low {
                low = raw;
                low_at = i;
            }
        }
        let r = if high - base >= base - low {
            high_at
        } else {
            low_at
        };
        Peak {
            at,
            height,
            r,
            slope,
        }
    }

    /// Whatever is due at sample `now`.
    pub(super) fn on_time(&mut self, now: u64, out: &mut Vec<u64>) {
        if self.learning.as_ref().is_some_and(|l| now >= l.end) {
            self.end_learning(now, out);
        }
        if let Some(c) = self.candidate {
            if self.search_back_at().is_some_and(|t| now >= t) {
                self.accept(c, true, out);
            } else if now >= c.r.saturating_add(self.p.deadline) {
                self.candidate = None;
            }
        }
        if self.learning.is_none() && now >= self.next_decay {
            let floor = DECAY_FLOOR * self.levels.noise.median();
            let qrs = self.levels.qrs.median();
            if qrs > floor {
                self.levels.qrs.scale((floor / qrs).max(0.5));
            }
            let every = self.levels.rr().max(self.p.min_decay_every);
            self.next_decay = now.saturating_add(every as u64);
        }
        self.next_event = self.next_event();
    }

    /// How long after a beat that reached the threshold the QRS level
    /// starts to decay: two RR intervals, at least 1.5 s.
    fn stale(&self) -> u64 {
        (2.0 * self.levels.rr()).max(self.p.min_stale) as u64
    }

    /// When search-back takes the candidate, if there has been a beat.
    fn search_back_at(&self) -> Option<u64> {
        let (last_at, _) = self.last?;
        let rr = self.levels.rr();
        let wait = (1.5 * rr).min(rr + self.p.search_back_extra);
        Some(last_at.saturating_add(wait as u64))
    }

    /// The first sample at which [`BeatDetector::on_time`] has work.
    pub(super) fn next_event(&self) -> u64 {
        let mut next = u64::MAX;
        if let Some(l) = &self.learning {
            next = next.min(l.end);
        } else {
            next = next.min(self.next_decay);
        }
        if let Some(c) = self.candidate {
            next = next.min(c.r.saturating_add(self.p.deadline));
            if let Some(t) = self.search_back_at() {
                next = next.min(t);
            }
        }
        next
    }

    /// Ends the learning period at sample `now`: the levels start from its
    /// peaks, which are then judged in order. With no peak at all the
    /// period starts again.
    pub(super) fn end_learning(&mut self, now: u64, out: &mut Vec<u64>) {
        let Some(l) = self.learning.take() else {
            return;
        };
        let highest = l.peaks.iter().map(|p| p.height).fold(0.0, f64::max);
        if highest <= 0.0 {
            self.learning = Some(Learning::new(now.saturating_add(self.p.learn)));
            return;
        }
        let length = (now + self.p.learn).saturating_sub(l.end).max(1) as f64;
        self.levels = Levels::new(highest, 0.5 * l.mwi_sum / length, self.levels.rr());
        for peak in l.peaks {
            if let Some((last_at, _)) = self.last {
                if peak.at < last_at + self.p.refractory {
                    continue;
                }
            }
            let threshold = self.levels.threshold();
            // Search-back is for beats missed in real time; these are
            // judged after the fact, once.
            self.judge(peak, threshold, false, out);
        }
        self.next_decay = match self.last {
            Some((at, _)) => at.saturating_add(self.stale()),
            None => now.saturating_add(self.stale()),
        };
    }
}
