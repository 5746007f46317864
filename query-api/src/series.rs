//! Pure pieces the block scans of `store` share (no I/O): the signs of a
//! stored block's samples as the processor summarised them, the running sign
//! that carries crossings from block to block, how a block splits where a
//! window or bucket changes, and the time of a sample.
//!
//! The zero-crossing rule itself is not here: counts come from the `signal`
//! kernel ([`LeadSummary`] of a slice, joined with [`LeadSummary::then`]), so
//! cutting a lead at blocks, windows and range edges gives exactly the counts
//! of one pass over it.

use std::ops::Range;

use ecg_clickhouse::blocks::{Codec, Form};
use ecg_signal::{LeadSummary, Sign};

/// A block's samples as the processor signs them: a digital lead by its
/// exact count against the baseline (never the computed float, which can be
/// a tiny non-zero), a physical one by its value (`-0.0` is a zero).
#[derive(Debug)]
pub enum Signs<'a> {
    Counts { counts: &'a [i32], baseline: i32 },
    Values(Vec<f64>),
}

impl<'a> Signs<'a> {
    pub fn of(form: &'a Form<'a>) -> Self {
        match form.codec {
            Codec::Adc => Signs::Counts {
                counts: &form.ints,
                baseline: form.adc_baseline,
            },
            Codec::Decimal | Codec::Raw => Signs::Values(form.values()),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Signs::Counts { counts, .. } => counts.len(),
            Signs::Values(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The summary of samples `r` (positions in the block).
    pub fn summary(&self, r: Range<usize>) -> LeadSummary {
        match self {
            Signs::Counts { counts, baseline } => {
                LeadSummary::of_digital_i32(&counts[r], i64::from(*baseline))
            }
            Signs::Values(v) => LeadSummary::of(&v[r]),
        }
    }
}

/// The last non-zero sign of a lead so far, carried across blocks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Running(Sign);

impl Running {
    /// From a stored sign (`blocks.last_sign_total`).
    pub fn seeded(sign: i8) -> Self {
        Running(Sign::from_i8(sign))
    }

    /// The crossings of a run that follows what came before, the one at the
    /// seam included (it belongs to the run: a crossing is counted at the
    /// sample where the new sign is seen); then carries the run's sign on.
    pub fn cross(&mut self, next: LeadSummary) -> u64 {
        let before = LeadSummary {
            samples: 0,
            first: self.0,
            last: self.0,
            crossings: 0,
        };
        let joined = before.then(next);
        self.0 = joined.last;
        joined.crossings
    }
}

/// `range` cut into maximal runs of equal `key`, in order. `key` must be
/// monotone over the range (windows, buckets and sample times are), so each
/// run's end is found by bisection: a few calls per run, not one per sample.
pub fn runs<K: PartialEq>(
    range: Range<u64>,
    key: impl Fn(u64) -> K,
) -> impl Iterator<Item = (K, Range<u64>)> {
    let mut start = range.start;
    std::iter::from_fn(move || {
        if start >= range.end {
            return None;
        }
        let k = key(start);
        // The first index in start + 1..end whose key differs, else end.
        let (mut lo, mut hi) = (start + 1, range.end);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if key(mid) == k {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let run = start..lo;
        start = lo;
        Some((k, run))
    })
}

/// The time of sample `index`, in µs since the epoch, exactly as ClickHouse
/// computes `blocks.first_ts` and the `samples` view's `ts`:
/// `addMicroseconds(started_at, toInt64(round(index * 1e6 / rate)))`, where
/// `round` of a `Float64` rounds half to even.
pub fn sample_micros(started_us: i64, index: u64, rate_hz: f64) -> i64 {
    started_us.saturating_add((index as f64 * 1e6 / rate_hz).round_ties_even() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_split_where_the_key_changes_and_cover_the_range() {
        let got: Vec<(u64, Range<u64>)> = runs(3..25, |i| i / 10).collect();
        assert_eq!(got, [(0, 3..10), (1, 10..20), (2, 20..25)]);
        assert_eq!(runs(5..5, |i| i).count(), 0);
        let ones: Vec<Range<u64>> = runs(0..3, |i| i).map(|(_, r)| r).collect();
        assert_eq!(ones, [0..1, 1..2, 2..3]);
    }

    #[test]
    fn the_running_sign_counts_the_seam_in_the_later_run() {
        let mut r = Running::seeded(1);
        assert_eq!(r.cross(LeadSummary::of(&[0.0, -0.0])), 0, "zeros carry");
        assert_eq!(r, Running::seeded(1));
        assert_eq!(r.cross(LeadSummary::of(&[-1.0, 2.0])), 2);
        assert_eq!(Running::default().cross(LeadSummary::of(&[-1.0])), 0);
    }

    #[test]
    fn digital_signs_come_from_the_counts_not_the_floats() {
        // A gain that turns every count into a zero float: the counts
        // still cross twice.
        let counts = [1025, 1023, 1024, 1025];
        let calibration = ecg_schemas::Calibration {
            gain: f64::INFINITY,
            baseline: 1024,
        };
        let form = Form::adc(&counts, calibration);
        assert_eq!(LeadSummary::of(&form.values()).crossings, 0);
        assert_eq!(Signs::of(&form).summary(0..4).crossings, 2);
    }

    #[test]
    fn sample_times_round_half_to_even_as_clickhouse_does() {
        // 1 / 2e6 s = 0.5 µs, 3 / 2e6 s = 1.5 µs.
        assert_eq!(sample_micros(0, 1, 2e6), 0);
        assert_eq!(sample_micros(0, 3, 2e6), 2);
        assert_eq!(sample_micros(10, 500, 500.0), 1_000_010);
    }
}
