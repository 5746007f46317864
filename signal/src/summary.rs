//! [`LeadSummary`]: everything about a run of samples that zero-crossing
//! counting needs from it to combine with its neighbours, the scalar
//! definition, and how two summaries combine. The fast kernels that build a
//! summary from a slice are in [`crate::kernel`].

use crate::Sign;

/// The summary of a contiguous run of samples of one lead.
///
/// `first` is the sign of the run's first non-zero sample and `last` the sign
/// of its last one; both are [`Sign::Zero`] exactly when the run holds no
/// non-zero sample (an all-zero run passes the sign through when combined).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeadSummary {
    /// Number of samples in the run.
    pub samples: u64,
    /// Sign of the first non-zero sample, or zero if there is none.
    pub first: Sign,
    /// Sign of the last non-zero sample, or zero if there is none.
    pub last: Sign,
    /// Crossings between samples of this run.
    pub crossings: u64,
}

impl LeadSummary {
    /// The summary of no samples; the identity of [`LeadSummary::then`].
    pub const EMPTY: LeadSummary = LeadSummary {
        samples: 0,
        first: Sign::Zero,
        last: Sign::Zero,
        crossings: 0,
    };

    /// The scalar definition, one sign at a time: the reference every fast
    /// kernel is tested against, and the baseline the benchmarks compare.
    pub fn from_signs(signs: impl IntoIterator<Item = Sign>) -> Self {
        let mut samples = 0u64;
        let mut first = Sign::Zero;
        let mut last = Sign::Zero;
        let mut crossings = 0u64;
        for s in signs {
            samples += 1;
            if s.is_zero() {
                continue;
            }
            if last.is_zero() {
                first = s;
            } else if s != last {
                crossings += 1;
            }
            last = s;
        }
        LeadSummary {
            samples,
            first,
            last,
            crossings,
        }
    }

    /// [`LeadSummary::of`] by the scalar definition, one sample at a time.
    pub fn of_scalar(samples: &[f64]) -> Self {
        Self::from_signs(samples.iter().map(|&x| Sign::of(x)))
    }

    /// The summary of this run followed immediately by `next`.
    ///
    /// The crossing at the seam is counted when this run's last non-zero sign
    /// differs from `next`'s first; an all-zero side adds none and passes the
    /// other side's sign through. Associative, with [`LeadSummary::EMPTY`] as
    /// identity.
    #[must_use]
    pub fn then(self, next: LeadSummary) -> LeadSummary {
        let seam = !self.last.is_zero() && !next.first.is_zero() && self.last != next.first;
        LeadSummary {
            // Saturating: real totals stay far below u64::MAX (2^32 chunks of
            // 100,000 samples), and no stored or forged total can panic here.
            samples: self.samples.saturating_add(next.samples),
            first: if self.first.is_zero() {
                next.first
            } else {
                self.first
            },
            last: if next.last.is_zero() {
                self.last
            } else {
                next.last
            },
            crossings: self
                .crossings
                .saturating_add(next.crossings)
                .saturating_add(u64::from(seam)),
        }
    }

    /// Zero crossings per second at `sample_rate_hz`; 0 for an empty run.
    pub fn crossing_rate_hz(&self, sample_rate_hz: f64) -> f64 {
        if self.samples == 0 || sample_rate_hz <= 0.0 {
            return 0.0;
        }
        self.crossings as f64 * sample_rate_hz / self.samples as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(samples: &[f64]) -> u64 {
        assert_eq!(LeadSummary::of(samples), LeadSummary::of_scalar(samples));
        LeadSummary::of(samples).crossings
    }

    #[test]
    fn zeros_carry_the_last_sign() {
        assert_eq!(count(&[1.0, 0.0, -1.0]), 1, "+,0,- passes through zero");
        assert_eq!(count(&[1.0, 0.0, 1.0]), 0, "+,0,+ only touches zero");
        assert_eq!(count(&[1.0, 0.0, 0.0, 0.0, -2.0, 0.0, 3.0]), 2);
    }

    #[test]
    fn leading_zeros_have_no_sign() {
        assert_eq!(count(&[0.0, 0.0, -1.0, 1.0]), 1);
        assert_eq!(count(&[0.0, -0.0, 0.0]), 0);
        let s = LeadSummary::of(&[0.0, -0.0, 2.0, -1.0, 0.0]);
        assert_eq!(s.first, Sign::Positive);
        assert_eq!(s.last, Sign::Negative);
    }

    #[test]
    fn negative_zero_is_not_a_negative_sample() {
        assert_eq!(count(&[1.0, -0.0, 1.0]), 0);
        assert_eq!(count(&[-0.0, 1.0]), 0);
        assert_eq!(count(&[-1.0, -0.0, 0.0, 1.0]), 1);
    }

    #[test]
    fn seam_between_chunks_is_counted_once() {
        let whole = LeadSummary::of(&[1.0, 2.0, -1.0, -2.0]);
        let cut = LeadSummary::of(&[1.0, 2.0]).then(LeadSummary::of(&[-1.0, -2.0]));
        assert_eq!(cut, whole);
        assert_eq!(cut.crossings, 1);
    }

    #[test]
    fn all_zero_chunk_passes_the_sign_through() {
        let parts = [
            LeadSummary::of(&[1.0]),
            LeadSummary::of(&[0.0, -0.0]),
            LeadSummary::of(&[-1.0]),
        ];
        let folded = parts.iter().fold(LeadSummary::EMPTY, |acc, p| acc.then(*p));
        assert_eq!(folded.crossings, 1);
        assert_eq!(folded.samples, 4);
    }

    #[test]
    fn rate_is_crossings_per_second() {
        let s = LeadSummary::of(&[1.0, -1.0, 1.0, -1.0]);
        assert_eq!(s.crossings, 3);
        assert_eq!(s.crossing_rate_hz(2.0), 1.5);
        assert_eq!(LeadSummary::EMPTY.crossing_rate_hz(500.0), 0.0);
    }
}
