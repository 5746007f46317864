//! Beat detector throughput, one thread: `cargo bench -p ecg-signal --bench
//! beats`.
//!
//! For each rate (125 to 2,000 Hz) and two synthetic ECGs (clean at 70
//! beats a minute; noisy, fast and irregular with ectopic beats), prints the
//! detector's M samples/s on millivolts (`push`), on ADC counts
//! (`push_digital`), and pushed in 1-second chunks with the state saved and
//! restored after each (what a processor that keeps no detector in memory
//! would do). Each figure is the best of several rounds: the machine is
//! shared, and the best round is the one least disturbed by other work.
//! `ECG_BENCH_SECONDS=N` changes the signal's length (default 600 s).
//!
//! Before timing, every variant's beats are checked equal to one pass's.

// Shared with the tests, which use all of it.
#[allow(dead_code)]
#[path = "../tests/synthetic/mod.rs"]
mod synthetic;

use ecg_signal::{Adc, Analytic, BeatDetector};
use std::hint::black_box;
use std::time::{Duration, Instant};

const ROUNDS: usize = 5;

fn best(mut f: impl FnMut() -> Vec<u64>) -> Duration {
    (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            black_box(f());
            start.elapsed()
        })
        .min()
        .expect("at least one round")
}

fn one_pass(x: &[f64], rate: f64) -> Vec<u64> {
    let mut d = BeatDetector::new(rate).unwrap();
    let mut beats = Vec::new();
    d.push(x, &mut beats);
    d.finish(&mut beats);
    beats
}

fn digital(counts: &[i32], adc: Adc, rate: f64) -> Vec<u64> {
    let mut d = BeatDetector::new(rate).unwrap();
    let mut beats = Vec::new();
    d.push_digital(counts, adc, &mut beats);
    d.finish(&mut beats);
    beats
}

/// One-second chunks, the detector saved to bytes and restored after each.
fn through_bytes(x: &[f64], rate: f64) -> Vec<u64> {
    let mut state = BeatDetector::new(rate).unwrap().save();
    let mut beats = Vec::new();
    for chunk in x.chunks(rate as usize) {
        let mut d = BeatDetector::restore(&state).unwrap();
        d.push(chunk, &mut beats);
        state = d.save();
    }
    let mut d = BeatDetector::restore(&state).unwrap();
    d.finish(&mut beats);
    beats
}

fn bench(label: &str, style: synthetic::Style, rate: f64, seconds: f64, timed: bool) {
    let (x, truth) = synthetic::ecg(42, rate, seconds, style);
    let adc = Adc {
        baseline: 1024,
        gain: 200.0,
    };
    let counts: Vec<i32> = x
        .iter()
        .map(|v| (v * adc.gain).round() as i32 + adc.baseline)
        .collect();
    let mv: Vec<f64> = counts.iter().map(|&c| adc.millivolts(c)).collect();
    let expected = one_pass(&mv, rate);
    assert_eq!(
        digital(&counts, adc, rate),
        expected,
        "{label} {rate}: digital"
    );
    assert_eq!(
        through_bytes(&mv, rate),
        expected,
        "{label} {rate}: chunked"
    );
    if !timed {
        return;
    }
    let n = x.len() as f64;
    let m = |d: Duration| n / d.as_secs_f64() / 1e6;
    let physical = m(best(|| one_pass(black_box(&mv), rate)));
    let adc_rate = m(best(|| digital(black_box(&counts), adc, rate)));
    let chunked = m(best(|| through_bytes(black_box(&mv), rate)));
    let state = BeatDetector::new(rate).unwrap().save().len();
    println!(
        "| {rate:>5} | {label:<8} | {:>6} | {:>5} | {physical:>6.1} | {adc_rate:>6.1} | {chunked:>6.1} | {state:>6} |",
        expected.len(),
        truth.len()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and
    // then the equality checks on a short signal are enough.
    let timed = std::env::args().any(|a| a == "--bench");
    let seconds: f64 = std::env::var("ECG_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if timed { 600.0 } else { 20.0 });
    let noisy = synthetic::Style {
        mean_rr_s: 0.5,
        ectopic: 0.08,
        noise_mv: 0.06,
    };
    if timed {
        println!("M samples/s, one thread, best of {ROUNDS} rounds, {seconds} s of signal");
        println!();
        println!(
            "| rate Hz | ECG      |  beats | truth |     mV |    ADC | 1 s chunks via bytes | state bytes |"
        );
        println!("|--------:|----------|-------:|------:|-------:|-------:|-------:|-------:|");
    }
    for rate in [125.0, 250.0, 360.0, 500.0, 1000.0, 2000.0] {
        bench("clean", synthetic::Style::CLEAN, rate, seconds, timed);
        bench("noisy", noisy, rate, seconds, timed);
    }
}
