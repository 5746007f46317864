//! A synthetic ECG with known beats, for tests and the bench: each beat a
//! sum of Gaussian waves (P, Q, R, S, T), RR intervals varying around a
//! rate, ventricular ectopic beats (early, wide, large, no P wave, inverted
//! T, a compensatory pause), baseline wander, mains hum and noise.
//! Deterministic for a seed, without dependencies.

/// Minimal xorshift: reproducible data without a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly normal, mean 0, deviation 1 (sum of four uniforms).
    pub fn normal(&mut self) -> f64 {
        ((0..4).map(|_| self.unit()).sum::<f64>() - 2.0) * 3f64.sqrt()
    }
}

/// One wave: amplitude (mV), offset from the R peak (s), width (s).
type Wave = (f64, f64, f64);

const NORMAL: [Wave; 5] = [
    (0.15, -0.16, 0.025),
    (-0.12, -0.03, 0.010),
    (1.0, 0.0, 0.011),
    (-0.25, 0.03, 0.012),
    (0.3, 0.26, 0.055),
];
const ECTOPIC: [Wave; 3] = [(1.4, 0.0, 0.035), (-0.4, 0.07, 0.03), (-0.45, 0.32, 0.07)];

/// How noisy and irregular.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub mean_rr_s: f64,
    /// Share of ventricular ectopic beats.
    pub ectopic: f64,
    /// Noise deviation, mV.
    pub noise_mv: f64,
}

impl Style {
    pub const CLEAN: Style = Style {
        mean_rr_s: 0.85,
        ectopic: 0.0,
        noise_mv: 0.01,
    };

    /// From a seed: 45 to 150 beats a minute, up to 10 % ectopic beats,
    /// noise up to 0.08 mV.
    pub fn random(rng: &mut Rng) -> Style {
        Style {
            mean_rr_s: 0.4 + 0.9 * rng.unit(),
            ectopic: 0.1 * rng.unit(),
            noise_mv: 0.08 * rng.unit(),
        }
    }
}

/// `seconds` of ECG at `rate_hz` in mV, and the sample of each R peak.
pub fn ecg(seed: u64, rate_hz: f64, seconds: f64, style: Style) -> (Vec<f64>, Vec<u64>) {
    let mut rng = Rng::new(seed);
    let n = (seconds * rate_hz) as usize;
    // Beats: (time of R, ectopic).
    let mut beats = Vec::new();
    let mut t = 0.3 + 0.5 * rng.unit();
    while t < seconds {
        let ectopic = rng.unit() < style.ectopic;
        beats.push((t, ectopic));
        let rr = style.mean_rr_s * (1.0 + 0.08 * rng.normal());
        t += if ectopic { 1.4 * rr } else { rr };
        if !ectopic && rng.unit() < style.ectopic {
            // The next beat is ectopic and early.
            let early = 0.6 * style.mean_rr_s;
            beats.push((t - rr + early, true));
            t += 0.4 * style.mean_rr_s;
        }
    }
    let amp: Vec<f64> = beats.iter().map(|_| 1.0 + 0.1 * rng.normal()).collect();
    let (wander_hz, wander_phase) = (0.15 + 0.3 * rng.unit(), 6.3 * rng.unit());
    let tau = std::f64::consts::TAU;
    let mut first = 0;
    let signal = (0..n)
        .map(|i| {
            let t = i as f64 / rate_hz;
            while first < beats.len() && beats[first].0 < t - 0.8 {
                first += 1;
            }
            let mut v = 0.0;
            for (k, &(r, ectopic)) in beats[first..].iter().enumerate() {
                if r > t + 0.8 {
                    break;
                }
                let waves: &[Wave] = if ectopic { &ECTOPIC } else { &NORMAL };
                for &(a, off, w) in waves {
                    let d = (t - r - off) / w;
                    v += amp[first + k] * a * (-0.5 * d * d).exp();
                }
            }
            v + 0.2 * (tau * wander_hz * t + wander_phase).sin()
                + 0.02 * (tau * 50.0 * t).sin()
                + style.noise_mv * rng.normal()
        })
        .collect();
    let peaks = beats
        .iter()
        .map(|&(r, _)| (r * rate_hz).round() as u64)
        .filter(|&s| (s as usize) < n)
        .collect();
    (signal, peaks)
}
