//! Zero-crossing kernel throughput, one thread: `cargo bench -p ecg-signal`.
//!
//! For each sample type, two data sets (ECG-like with many exact zeros, and
//! random signs so branch prediction cannot flatter the scalar loop) and two
//! sizes (4 Ki samples, in L1; 64 Mi samples, far beyond the caches), prints
//! the scalar definition's and the fast kernel's G samples/s. Each figure is
//! the best of several timed rounds: the machine is shared, and the best
//! round is the one least disturbed by other work. `ECG_BENCH_BIG=N` changes
//! the out-of-cache size to N Mi samples.
//!
//! Every fast result is checked against the scalar one before it is timed.

use ecg_signal::{LeadSummary, Sign};
use std::hint::black_box;
use std::time::{Duration, Instant};

const SMALL: usize = 4 << 10;
const SAMPLE_RATE_HZ: f64 = 500.0;

/// Minimal xorshift: reproducible data without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `[-1, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// ADC codes around 0 of an ECG-like lead at 500 Hz: a 1.2 Hz wave with a
/// sharper 7 Hz component and noise, a dead band that reads exactly 0, and
/// one second of flat zero (lead off) every ten seconds.
fn ecg_like(n: usize) -> Vec<i32> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..n)
        .map(|i| {
            let t = i as f64 / SAMPLE_RATE_HZ;
            if t % 10.0 >= 9.0 {
                return 0;
            }
            let tau = std::f64::consts::TAU;
            let v = 600.0 * (tau * 1.2 * t).sin() + 150.0 * (tau * 7.0 * t).sin();
            let v = v + 40.0 * rng.unit();
            if v.abs() < 30.0 { 0 } else { v as i32 }
        })
        .collect()
}

/// ADC codes with independent random signs: a third each zero, positive and
/// negative, so a branch on the sign is mispredicted about half the time.
fn random_signs(n: usize) -> Vec<i32> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    (0..n)
        .map(|_| {
            let r = rng.next();
            let magnitude = 1 + (r >> 32) as i32 % 1000;
            match r % 3 {
                0 => 0,
                1 => magnitude,
                _ => -magnitude,
            }
        })
        .collect()
}

/// Best time of `rounds` rounds, each running `f` `reps` times.
fn best(rounds: usize, reps: usize, mut f: impl FnMut() -> LeadSummary) -> Duration {
    (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..reps {
                black_box(f());
            }
            start.elapsed() / reps as u32
        })
        .min()
        .expect("at least one round")
}

/// G samples/s of `f` over `n` samples.
fn rate(n: usize, f: impl FnMut() -> LeadSummary) -> f64 {
    let (rounds, reps) = if n <= SMALL { (7, 40_000) } else { (5, 1) };
    n as f64 / best(rounds, reps, f).as_secs_f64() / 1e9
}

fn row(
    ty: &str,
    data: &str,
    n: usize,
    scalar: impl FnMut() -> LeadSummary,
    fast: impl FnMut() -> LeadSummary,
) {
    let mut scalar = scalar;
    let mut fast = fast;
    let expected = scalar();
    assert_eq!(fast(), expected, "{ty} {data} {n}: fast kernel disagrees");
    let s = rate(n, &mut scalar);
    let f = rate(n, &mut fast);
    let size = if n <= SMALL {
        format!("{} Ki", n >> 10)
    } else {
        format!("{} Mi", n >> 20)
    };
    println!(
        "| {ty:<4} | {data:<12} | {size:>6} | {s:>6.2} | {f:>6.2} | {:>5.1}x | {:>9} |",
        f / s,
        expected.crossings
    );
}

fn bench(data: &str, codes: &[i32]) {
    let n = codes.len();
    // Negative zeros where a negative sample returns to zero, as filtering
    // produces; they must count as zeros.
    let volts = |scale: f64| {
        let mut prev = 0;
        codes.iter().map(move |&c| {
            let v = if c == 0 && prev < 0 {
                -0.0
            } else {
                f64::from(c) * scale
            };
            prev = c;
            v
        })
    };
    {
        let x: Vec<f64> = volts(0.005).collect();
        let x = black_box(&x[..]);
        row(
            "f64",
            data,
            n,
            || LeadSummary::of_scalar(x),
            || LeadSummary::of(x),
        );
    }
    {
        let x: Vec<f32> = volts(0.005).map(|v| v as f32).collect();
        let x = black_box(&x[..]);
        let scalar = || LeadSummary::from_signs(x.iter().map(|&v| Sign::of(f64::from(v))));
        row("f32", data, n, scalar, || LeadSummary::of_f32(x));
    }
    {
        // A 12-bit ADC centred on 2048.
        let baseline = 2048i32;
        let x: Vec<i16> = codes.iter().map(|&c| (c + baseline) as i16).collect();
        let x = black_box(&x[..]);
        let scalar =
            || LeadSummary::from_signs(x.iter().map(|&v| Sign::from(i32::from(v).cmp(&baseline))));
        row("i16", data, n, scalar, || {
            LeadSummary::of_digital_i16(x, baseline)
        });
    }
    {
        // A 24-bit ADC centred on 2^23.
        let baseline = 1i64 << 23;
        let x: Vec<i32> = codes.iter().map(|&c| c + (1 << 23)).collect();
        let x = black_box(&x[..]);
        let scalar =
            || LeadSummary::from_signs(x.iter().map(|&v| Sign::from(i64::from(v).cmp(&baseline))));
        row("i32", data, n, scalar, || {
            LeadSummary::of_digital_i32(x, baseline)
        });
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and
    // then a quick pass on small data is enough.
    let timed = std::env::args().any(|a| a == "--bench");
    let big_mi: usize = std::env::var("ECG_BENCH_BIG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    if !timed {
        for n in [0, 1, 63, 64, 65, 1000] {
            for codes in [ecg_like(n), random_signs(n)] {
                bench_check(&codes);
            }
        }
        return;
    }
    println!("G samples/s, one thread, best of several rounds");
    println!();
    println!("| type | data         |   size | scalar |   fast | speed | crossings |");
    println!("|------|--------------|-------:|-------:|-------:|------:|----------:|");
    for n in [SMALL, big_mi << 20] {
        bench("ECG-like", &ecg_like(n));
        bench("random signs", &random_signs(n));
    }
}

/// Fast equals scalar for the benchmark's own data (run by `cargo test`).
fn bench_check(codes: &[i32]) {
    let x: Vec<f64> = codes.iter().map(|&c| f64::from(c)).collect();
    assert_eq!(LeadSummary::of(&x), LeadSummary::of_scalar(&x));
}
