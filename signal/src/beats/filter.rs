//! The detector's band-pass, designed for the lead's sample rate: a cascade
//! of second-order Butterworth sections (high-pass, then low-pass), each by
//! the bilinear transform with the cutoff pre-warped, so the band in hertz
//! is the same at 125 Hz as at 2,000 Hz.
//!
//! Sections run in transposed direct form II in `f64`: two state values
//! each, and the same operations in the same order for every sample, which
//! is what makes the output independent of how the lead is chunked.

use std::f64::consts::{PI, SQRT_2};

/// One second-order section, `a0` normalised to 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Section {
    b: [f64; 3],
    a1: f64,
    a2: f64,
}

impl Section {
    /// Butterworth high-pass (`high`) or low-pass at `cutoff_hz`, quality
    /// `q` (1/√2 for a second-order Butterworth).
    fn butterworth(rate_hz: f64, cutoff_hz: f64, q: f64, high: bool) -> Self {
        // Bilinear transform with pre-warping (the audio EQ cookbook's
        // formulas): the analogue prototype's cutoff lands on `cutoff_hz`.
        let w0 = 2.0 * PI * cutoff_hz / rate_hz;
        let (sin, cos) = w0.sin_cos();
        let alpha = sin / (2.0 * q);
        let a0 = 1.0 + alpha;
        let b = if high {
            [(1.0 + cos) / 2.0, -(1.0 + cos), (1.0 + cos) / 2.0]
        } else {
            [(1.0 - cos) / 2.0, 1.0 - cos, (1.0 - cos) / 2.0]
        };
        Section {
            b: b.map(|v| v / a0),
            a1: -2.0 * cos / a0,
            a2: (1.0 - alpha) / a0,
        }
    }

    /// Filters one sample; `s` is the section's state.
    #[inline(always)]
    pub(crate) fn step(&self, s: &mut [f64; 2], x: f64) -> f64 {
        let y = self.b[0] * x + s[0];
        s[0] = self.b[1] * x - self.a1 * y + s[1];
        s[1] = self.b[2] * x - self.a2 * y;
        y
    }

    /// The gain at 0 Hz.
    fn dc_gain(&self) -> f64 {
        (self.b[0] + self.b[1] + self.b[2]) / (1.0 + self.a1 + self.a2)
    }

    /// The state after a constant input `x` forever, and the output then:
    /// starting from it, a lead that opens away from 0 mV does not ring as
    /// if it had stepped there from zero.
    pub(crate) fn settled(&self, x: f64) -> ([f64; 2], f64) {
        let y = self.dc_gain() * x;
        let s1 = self.b[2] * x - self.a2 * y;
        let s0 = self.b[1] * x - self.a1 * y + s1;
        ([s0, s1], y)
    }

    /// Group delay in samples at `w` radians per sample: the delay of the
    /// numerator's phase minus the denominator's.
    fn group_delay(&self, w: f64) -> f64 {
        poly_delay(&self.b, w) - poly_delay(&[1.0, self.a1, self.a2], w)
    }
}

/// Group delay of the polynomial `sum p[k] z^-k` at `w`:
/// `Re(sum k p[k] e^(-jwk) / sum p[k] e^(-jwk))`.
fn poly_delay(p: &[f64], w: f64) -> f64 {
    let (mut re, mut im, mut kre, mut kim) = (0.0, 0.0, 0.0, 0.0);
    for (k, &c) in p.iter().enumerate() {
        let (s, co) = (w * k as f64).sin_cos();
        re += c * co;
        im -= c * s;
        kre += k as f64 * c * co;
        kim -= k as f64 * c * s;
    }
    (kre * re + kim * im) / (re * re + im * im)
}

/// Sections of the band-pass, in order.
pub(crate) const SECTIONS: usize = 3;

/// The band the QRS complex's energy is in and the P and T waves, baseline
/// wander and muscle noise mostly are not: the classic 5-15 Hz of
/// Pan and Tompkins. Second-order high-pass at 5 Hz, fourth-order low-pass
/// at 15 Hz (Butterworth sections of Q 0.5412 and 1.3066).
pub(crate) fn band_pass(rate_hz: f64) -> [Section; SECTIONS] {
    const HIGH_HZ: f64 = 5.0;
    const LOW_HZ: f64 = 15.0;
    [
        Section::butterworth(rate_hz, HIGH_HZ, 1.0 / SQRT_2, true),
        Section::butterworth(rate_hz, LOW_HZ, 0.541_196_100_146_197, false),
        Section::butterworth(rate_hz, LOW_HZ, 1.306_562_964_876_376_7, false),
    ]
}

/// The band-pass's group delay at `hz`, in samples: how much later a QRS
/// complex's peak comes out of it than it went in.
pub(crate) fn delay_samples(sections: &[Section], rate_hz: f64, hz: f64) -> f64 {
    let w = 2.0 * PI * hz / rate_hz;
    sections.iter().map(|s| s.group_delay(w)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// |H| at `hz` by running a long sine through the cascade.
    fn measured_gain(rate: f64, hz: f64) -> f64 {
        let mut f = band_pass(rate);
        let mut s = [[0.0; 2]; SECTIONS];
        let n = (rate * 20.0) as usize;
        let mut peak: f64 = 0.0;
        for i in 0..n {
            let mut v = (2.0 * PI * hz * i as f64 / rate).sin();
            for (sec, st) in f.iter_mut().zip(&mut s) {
                v = sec.step(st, v);
            }
            if i > n / 2 {
                peak = peak.max(v.abs());
            }
        }
        peak
    }

    #[test]
    fn the_band_is_the_same_in_hertz_at_every_rate() {
        for rate in [125.0, 360.0, 1000.0, 2000.0] {
            let pass = measured_gain(rate, 10.0);
            assert!(pass > 0.8, "{rate} Hz: 10 Hz passes ({pass})");
            let cut_low = measured_gain(rate, 1.0);
            assert!(cut_low < 0.05, "{rate} Hz: 1 Hz is cut ({cut_low})");
            let cut_high = measured_gain(rate, 50.0);
            assert!(cut_high < 0.1, "{rate} Hz: 50 Hz is cut ({cut_high})");
        }
    }

    #[test]
    fn a_settled_section_stays_put() {
        for sec in band_pass(360.0) {
            let (mut s, y) = sec.settled(-0.7);
            for _ in 0..10 {
                let out = sec.step(&mut s, -0.7);
                assert!((out - y).abs() < 1e-12, "{out} {y}");
            }
        }
    }

    #[test]
    fn group_delay_scales_with_the_rate() {
        let at = |rate| delay_samples(&band_pass(rate), rate, 10.0) / rate;
        let (a, b) = (at(250.0), at(2000.0));
        assert!(a > 0.0 && (a - b).abs() < 0.003, "{a} s vs {b} s");
    }
}
