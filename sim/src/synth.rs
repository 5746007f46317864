//! A synthetic multi-lead ECG, deterministic by seed: each beat is a sum of
//! Gaussian waves (P, Q, R, S, T, after McSharry et al.'s ECGSYN
//! morphology) with per-lead amplitudes of a normal 12-lead ECG, beat-to-beat
//! RR variability, baseline wander (respiration, 0.25 Hz, and a slow drift)
//! and white noise. Samples are ADC counts at [`GAIN`] counts per mV with
//! baseline 0, as a wearable's converter gives them.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// ADC counts per millivolt (1 µV resolution).
pub const GAIN: f64 = 1000.0;

/// The standard lead names; leads past 12 are `L13`, `L14`, ...
pub const LEADS: [&str; 12] = [
    "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6",
];

/// Peak amplitudes in mV of P, Q, R, S, T per standard lead.
const AMPLITUDES: [[f64; 5]; 12] = [
    [0.10, -0.05, 0.80, -0.10, 0.20],
    [0.15, -0.05, 1.20, -0.20, 0.30],
    [0.05, -0.05, 0.50, -0.30, 0.10],
    [-0.12, 0.05, -0.90, 0.20, -0.25],
    [0.03, -0.05, 0.30, -0.10, 0.05],
    [0.10, -0.05, 0.80, -0.25, 0.20],
    [0.08, 0.00, 0.30, -1.00, -0.10],
    [0.10, 0.00, 0.60, -1.20, 0.40],
    [0.10, -0.05, 0.90, -0.80, 0.45],
    [0.10, -0.10, 1.30, -0.50, 0.40],
    [0.10, -0.10, 1.20, -0.30, 0.30],
    [0.10, -0.08, 1.00, -0.15, 0.25],
];
/// Centre (s after the beat's start, at 60 bpm) and width (s) of each wave.
const WAVES: [(f64, f64); 5] = [
    (0.20, 0.025),
    (0.36, 0.010),
    (0.38, 0.012),
    (0.40, 0.012),
    (0.62, 0.050),
];

/// How the synthetic signal looks.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub heart_rate_bpm: f64,
    /// Standard deviation of the white noise, mV.
    pub noise_mv: f64,
    /// Amplitude of the baseline wander, mV.
    pub wander_mv: f64,
}

/// One device's signal generator.
#[derive(Debug)]
pub struct Synth {
    shape: Shape,
    rate: f64,
    leads: usize,
    rng: StdRng,
    /// Samples generated so far (per lead).
    t: u64,
    beat_start: f64,
    rr: f64,
    phase: f64,
}

impl Synth {
    pub fn new(shape: Shape, sample_rate_hz: f64, leads: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let phase = rng.random::<f64>() * std::f64::consts::TAU;
        let mut s = Synth {
            shape,
            rate: sample_rate_hz,
            leads,
            rng,
            t: 0,
            beat_start: 0.0,
            rr: 1.0,
            phase,
        };
        s.rr = s.next_rr();
        // Devices do not all start at the same point of a beat.
        s.beat_start = -s.rng.random::<f64>() * s.rr;
        s
    }

    /// Lead names for `n` leads.
    pub fn lead_names(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| {
                LEADS
                    .get(i)
                    .map_or_else(|| format!("L{}", i + 1), |s| s.to_string())
            })
            .collect()
    }

    fn next_rr(&mut self) -> f64 {
        let mean = 60.0 / self.shape.heart_rate_bpm.max(1.0);
        (mean * (1.0 + 0.04 * self.gaussian())).clamp(0.5 * mean, 1.5 * mean)
    }

    fn gaussian(&mut self) -> f64 {
        // Box-Muller; 1 - u keeps the logarithm finite.
        let u: f64 = 1.0 - self.rng.random::<f64>();
        let v: f64 = self.rng.random::<f64>();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// The next `n` samples of every lead, as ADC counts.
    pub fn next_block(&mut self, n: usize) -> Vec<Vec<i32>> {
        let mut out = vec![Vec::with_capacity(n); self.leads];
        for _ in 0..n {
            let time = self.t as f64 / self.rate;
            while time >= self.beat_start + self.rr {
                self.beat_start += self.rr;
                self.rr = self.next_rr();
            }
            // QT shortens with the heart rate (Bazett): scale wave times by sqrt(RR).
            let stretch = self.rr.sqrt();
            let x = time - self.beat_start;
            let waves: [f64; 5] = std::array::from_fn(|w| {
                let (centre, width) = WAVES[w];
                let c = if w == 4 { centre * stretch } else { centre };
                (-(x - c).powi(2) / (2.0 * width * width)).exp()
            });
            let wander = self.shape.wander_mv
                * (0.8 * (std::f64::consts::TAU * 0.25 * time + self.phase).sin()
                    + 0.2 * (std::f64::consts::TAU * 0.03 * time).sin());
            for (lead, column) in out.iter_mut().enumerate() {
                let a = &AMPLITUDES[lead % 12];
                let mv: f64 = a.iter().zip(&waves).map(|(a, w)| a * w).sum::<f64>()
                    + wander
                    + self.shape.noise_mv * self.gaussian();
                column.push((mv * GAIN).round() as i32);
            }
            self.t += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHAPE: Shape = Shape {
        heart_rate_bpm: 72.0,
        noise_mv: 0.01,
        wander_mv: 0.1,
    };

    #[test]
    fn the_same_seed_gives_the_same_signal_however_it_is_cut() {
        let mut a = Synth::new(SHAPE, 500.0, 12, 7);
        let whole = a.next_block(1000);
        let mut b = Synth::new(SHAPE, 500.0, 12, 7);
        let mut parts = b.next_block(300);
        for (p, q) in parts.iter_mut().zip(b.next_block(700)) {
            p.extend(q);
        }
        assert_eq!(whole, parts);
        assert_ne!(whole, Synth::new(SHAPE, 500.0, 12, 8).next_block(1000));
    }

    #[test]
    fn beats_come_at_the_heart_rate() {
        let mut s = Synth::new(
            Shape {
                noise_mv: 0.0,
                wander_mv: 0.0,
                ..SHAPE
            },
            500.0,
            2,
            1,
        );
        let ii = &s.next_block(500 * 60)[1];
        // R peaks: lead II above 0.8 mV, counted once per excursion.
        let peaks = ii.windows(2).filter(|w| w[0] < 800 && w[1] >= 800).count();
        assert!(
            (65..=79).contains(&peaks),
            "{peaks} beats in a minute at 72 bpm"
        );
    }
}
