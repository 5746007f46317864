//! A signal-quality verdict for a window of one lead: is its heart rate
//! worth reporting? Pure, from figures a store can compute per window
//! without decoding samples one by one ([`WindowStats`]) and the beats the
//! detector found in the window.
//!
//! The verdicts, checked in this order:
//! - [`Quality::Flat`]: the lead barely moves (peak to peak under
//!   [`FLAT_MV`]): a disconnected or flat lead.
//! - [`Quality::Saturated`]: at least [`SATURATED_SHARE`] of the samples sit
//!   at their block's minimum or maximum: the signal is clipped at the
//!   amplifier's or the converter's rail (an ECG touches its extremes only
//!   at a few samples per second).
//! - [`Quality::Noisy`]: the beats are not to be trusted: fewer than
//!   [`MIN_NN_SHARE`] of the window's RR intervals are normal-to-normal
//!   ([`crate::hrv::normal_intervals`]), or a lead that moves has no two
//!   beats in the window.
//! - [`Quality::Good`] otherwise.

use crate::hrv::{normal_intervals, rr_intervals};

/// Peak to peak below which a lead is flat, millivolts.
pub const FLAT_MV: f64 = 0.02;
/// Share of samples at their block's extremes from which a lead is clipped.
pub const SATURATED_SHARE: f64 = 0.05;
/// Share of normal RR intervals below which the beats are unreliable.
pub const MIN_NN_SHARE: f64 = 0.8;

/// What a window of one lead holds, in the lead's units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowStats {
    pub samples: u64,
    pub min: f64,
    pub max: f64,
    /// Samples equal to the minimum or maximum of their block.
    pub at_extremes: u64,
}

/// The verdict on a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quality {
    Good,
    Flat,
    Saturated,
    Noisy,
}

impl Quality {
    /// The verdict's name in the API: `good`, `flat`, `saturated`, `noisy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Quality::Good => "good",
            Quality::Flat => "flat",
            Quality::Saturated => "saturated",
            Quality::Noisy => "noisy",
        }
    }
}

/// The verdict on a window of `stats`, whose beats (sample indices,
/// ascending, at `rate_hz`) are `beats`; `per_mv` is how many of the lead's
/// units make a millivolt (1 for mV, 1000 for µV).
pub fn verdict(stats: &WindowStats, beats: &[u64], rate_hz: f64, per_mv: f64) -> Quality {
    if stats.samples == 0 || (stats.max - stats.min) / per_mv < FLAT_MV {
        return Quality::Flat;
    }
    if stats.at_extremes as f64 >= SATURATED_SHARE * stats.samples as f64 {
        return Quality::Saturated;
    }
    let rr = rr_intervals(beats, rate_hz);
    if rr.is_empty() {
        return Quality::Noisy;
    }
    let normal = normal_intervals(&rr).iter().filter(|&&n| n).count();
    if (normal as f64) < MIN_NN_SHARE * rr.len() as f64 {
        return Quality::Noisy;
    }
    Quality::Good
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(min: f64, max: f64, at_extremes: u64) -> WindowStats {
        WindowStats {
            samples: 75_000,
            min,
            max,
            at_extremes,
        }
    }

    /// Beats every `rr` samples from 0, `n` of them.
    fn regular(rr: u64, n: u64) -> Vec<u64> {
        (0..n).map(|k| k * rr).collect()
    }

    #[test]
    fn each_verdict_and_its_order() {
        let rate = 250.0;
        let beats = regular(200, 90);
        assert_eq!(
            verdict(&stats(-0.4, 1.2, 600), &beats, rate, 1.0),
            Quality::Good
        );
        assert_eq!(
            verdict(&stats(0.1, 0.11, 0), &beats, rate, 1.0),
            Quality::Flat
        );
        // The same 10 µV in a µV lead is flat; 1,600 µV is not.
        assert_eq!(
            verdict(&stats(0.0, 10.0, 0), &beats, rate, 1000.0),
            Quality::Flat
        );
        assert_eq!(
            verdict(&stats(-400.0, 1200.0, 600), &beats, rate, 1000.0),
            Quality::Good
        );
        assert_eq!(
            verdict(&stats(-5.0, 5.0, 3_750), &beats, rate, 1.0),
            Quality::Saturated
        );
        assert_eq!(
            verdict(&stats(-0.4, 1.2, 0), &[], rate, 1.0),
            Quality::Noisy
        );
        assert_eq!(
            verdict(&stats(-0.4, 1.2, 0), &[10], rate, 1.0),
            Quality::Noisy
        );
        // Every other interval a false detection in between.
        let mut noisy = regular(200, 90);
        noisy.extend((0..45).map(|k| k * 400 + 70));
        noisy.sort_unstable();
        assert_eq!(
            verdict(&stats(-0.4, 1.2, 0), &noisy, rate, 1.0),
            Quality::Noisy
        );
        // Flat wins over anything the beats say.
        assert_eq!(
            verdict(&stats(0.0, 0.0, 75_000), &[], rate, 1.0),
            Quality::Flat
        );
        let empty = WindowStats {
            samples: 0,
            ..stats(0.0, 0.0, 0)
        };
        assert_eq!(verdict(&empty, &beats, rate, 1.0), Quality::Flat);
    }
}
