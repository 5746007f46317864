//! The detector's memory of recent peaks and intervals, and the detection
//! threshold it gives (Hamilton and Tompkins' rule: the noise level plus a
//! fixed fraction of the distance from it to the QRS level, each level the
//! median of the last eight peaks of its kind, so one outlier moves neither).

use crate::state::{StateError, StateReader, StateWriter};

/// How many recent values each median is over.
const RECENT: usize = 8;

/// The last eight values of something, oldest overwritten first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Recent {
    values: [f64; RECENT],
    next: usize,
}

impl Recent {
    /// Eight copies of `v`: a start that the first real values replace one
    /// by one.
    pub(crate) fn filled(v: f64) -> Self {
        Recent {
            values: [v; RECENT],
            next: 0,
        }
    }

    pub(crate) fn push(&mut self, v: f64) {
        self.values[self.next] = v;
        self.next = (self.next + 1) % RECENT;
    }

    /// The median: the mean of the middle two.
    pub(crate) fn median(&self) -> f64 {
        let mut sorted = self.values;
        sorted.sort_unstable_by(f64::total_cmp);
        (sorted[RECENT / 2 - 1] + sorted[RECENT / 2]) / 2.0
    }

    pub(crate) fn scale(&mut self, factor: f64) {
        for v in &mut self.values {
            *v *= factor;
        }
    }

    pub(crate) fn save(&self, w: &mut StateWriter) {
        for &v in &self.values {
            w.f64(v);
        }
        w.u8(self.next as u8);
    }

    pub(crate) fn restore(
        r: &mut StateReader<'_>,
        field: &'static str,
    ) -> Result<Self, StateError> {
        let mut values = [0.0; RECENT];
        for v in &mut values {
            *v = r.finite(field)?;
            if *v < 0.0 {
                return Err(StateError::invalid(field, format!("{v} is negative")));
            }
        }
        let next = usize::from(r.u8(field)?);
        if next >= RECENT {
            return Err(StateError::invalid(
                field,
                format!("index {next} of {RECENT}"),
            ));
        }
        Ok(Recent { values, next })
    }
}

/// Where the threshold sits between the noise level and the QRS level.
const THRESHOLD_FRACTION: f64 = 0.3125;

/// Peak heights (of the integrated signal) and RR intervals (in samples).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Levels {
    /// Heights of the last beats' peaks.
    pub(crate) qrs: Recent,
    /// Heights of the last peaks that were not beats.
    pub(crate) noise: Recent,
    /// The last RR intervals, in samples.
    pub(crate) rr: Recent,
    /// Whether `rr` holds a measured interval yet (until then it holds a
    /// guess, which the first interval replaces whole).
    pub(crate) rr_measured: bool,
}

impl Levels {
    pub(crate) fn new(qrs: f64, noise: f64, rr_guess: f64) -> Self {
        Levels {
            qrs: Recent::filled(qrs),
            noise: Recent::filled(noise),
            rr: Recent::filled(rr_guess),
            rr_measured: false,
        }
    }

    /// The height a peak must reach to be a beat.
    pub(crate) fn threshold(&self) -> f64 {
        let noise = self.noise.median();
        noise + THRESHOLD_FRACTION * (self.qrs.median() - noise)
    }

    /// The typical RR interval, in samples.
    pub(crate) fn rr(&self) -> f64 {
        self.rr.median()
    }

    pub(crate) fn push_rr(&mut self, rr: f64) {
        if self.rr_measured {
            self.rr.push(rr);
        } else {
            self.rr = Recent::filled(rr);
            self.rr_measured = true;
        }
    }

    pub(crate) fn save(&self, w: &mut StateWriter) {
        self.qrs.save(w);
        self.noise.save(w);
        self.rr.save(w);
        w.bool(self.rr_measured);
    }

    pub(crate) fn restore(r: &mut StateReader<'_>) -> Result<Self, StateError> {
        Ok(Levels {
            qrs: Recent::restore(r, "QRS levels")?,
            noise: Recent::restore(r, "noise levels")?,
            rr: Recent::restore(r, "RR intervals")?,
            rr_measured: r.bool("RR measured")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_outlier_does_not_move_the_median() {
        let mut r = Recent::filled(1.0);
        r.push(1000.0);
        assert_eq!(r.median(), 1.0);
        for _ in 0..3 {
            r.push(3.0);
        }
        assert_eq!(
            r.median(),
            2.0,
            "four 1s, three 3s and 1000: between 1 and 3"
        );
    }

    #[test]
    fn the_first_interval_replaces_the_guess() {
        let mut l = Levels::new(1.0, 0.0, 360.0);
        l.push_rr(300.0);
        assert_eq!(l.rr(), 300.0);
        assert_eq!(l.threshold(), 0.3125);
    }
}
