//! The beat detector's behaviour on synthetic ECGs with known beats: noisy
//! and irregular leads with ectopic beats at every rate, the decision
//! delay, flat leads, amplitude drops, constant memory. (Real ECGs:
//! `formats/tests/mitdb.rs`, MIT-BIH record 100.)

mod synthetic;

use ecg_signal::score::{self, Score, Scoring};
use ecg_signal::{Analytic, AnalyticError, BeatDetector};

fn detect(x: &[f64], rate: f64) -> Vec<u64> {
    let mut d = BeatDetector::new(rate).unwrap();
    let mut out = Vec::new();
    d.push(x, &mut out);
    d.finish(&mut out);
    out
}

/// Beats whose QRS complex the lead holds whole: a beat whose R peak is in
/// the lead's last 50 ms is cut off, and may or may not be found; it is
/// left out of both lists.
fn whole_beats(beats: &[u64], len: usize, rate: f64) -> Vec<u64> {
    let end = len as f64 - 0.05 * rate;
    beats
        .iter()
        .copied()
        .filter(|&t| (t as f64) < end)
        .collect()
}

#[test]
fn finds_the_beats_of_noisy_irregular_ecgs_at_every_rate() {
    for rate in [125.0, 250.0, 360.0, 500.0, 1000.0, 2000.0] {
        let mut total = Score::default();
        let mut offsets = Vec::new();
        for seed in 0..20 {
            // 45-150 beats a minute, up to 10 % ectopic, noise up to 0.08 mV.
            let mut rng = synthetic::Rng::new(seed);
            let style = synthetic::Style::random(&mut rng);
            let (x, truth) = synthetic::ecg(seed, rate, 60.0, style);
            let truth = whole_beats(&truth, x.len(), rate);
            let beats = whole_beats(&detect(&x, rate), x.len(), rate);
            let d = score::detail(&truth, &beats, Scoring::whole(rate));
            let s = d.score();
            assert!(
                s.sensitivity().unwrap() >= 0.98 && s.positive_predictivity().unwrap() >= 0.98,
                "{rate} Hz, seed {seed}, {style:?}: {s}; missed {:?}, extra {:?}",
                d.missed,
                d.extra
            );
            total.tp += s.tp;
            total.fp += s.fp;
            total.fn_ += s.fn_;
            offsets.extend(d.matched.iter().map(|&(r, t)| r.abs_diff(t) as f64 / rate));
        }
        let mean_offset_ms = offsets.iter().sum::<f64>() / offsets.len() as f64 * 1000.0;
        println!("{rate} Hz: {total}; R peaks {mean_offset_ms:.1} ms from the truth on average");
        assert!(total.sensitivity().unwrap() >= 0.998, "{rate} Hz: {total}");
        assert!(
            total.positive_predictivity().unwrap() >= 0.998,
            "{rate} Hz: {total}"
        );
        assert!(mean_offset_ms <= 4.0, "{rate} Hz: {mean_offset_ms} ms");
    }
}

#[test]
fn beats_are_decided_within_half_a_second_of_their_r_peak() {
    for rate in [125.0, 360.0, 1000.0] {
        let mut rng = synthetic::Rng::new(3);
        let style = synthetic::Style::random(&mut rng);
        let (x, _) = synthetic::ecg(3, rate, 30.0, style);
        let mut d = BeatDetector::new(rate).unwrap();
        let learning_end = (2.0 * rate) as u64;
        let mut count = 0;
        for (i, v) in x.iter().enumerate() {
            let mut out = Vec::new();
            d.push(std::slice::from_ref(v), &mut out);
            for r in out {
                let i = i as u64;
                count += 1;
                // Beats of the learning period are decided at its end; a
                // beat whose peak comes after it, like any other.
                let in_time = (i - r) as f64 <= 0.5 * rate;
                let learnt = r < learning_end && i <= learning_end;
                assert!(in_time || learnt, "{rate} Hz: beat {r} decided at {i}");
            }
        }
        assert!(count > 20);
    }
}

#[test]
fn a_flat_lead_has_no_beats_and_those_after_it_are_found() {
    let rate = 500.0;
    let flat = 10 * 500;
    let (ecg, truth) = synthetic::ecg(11, rate, 30.0, synthetic::Style::CLEAN);
    let mut x = vec![0.0; flat];
    x.extend(&ecg);
    let beats = detect(&x, rate);
    assert!(beats.iter().all(|&b| b >= flat as u64), "{beats:?}");
    let truth: Vec<u64> = truth.iter().map(|t| t + flat as u64).collect();
    let s = score::compare(
        &whole_beats(&truth, x.len(), rate),
        &beats,
        Scoring::whole(rate),
    );
    assert_eq!((s.fp, s.fn_), (0, 0), "{s}");
}

#[test]
fn beats_are_found_again_after_the_amplitude_drops() {
    // 20 s, then the same heart at a third or a tenth of the amplitude (a
    // loose electrode): the QRS level decays until the small beats pass.
    let rate = 360.0;
    for factor in [0.3, 0.1] {
        let (mut x, truth) = synthetic::ecg(5, rate, 60.0, synthetic::Style::CLEAN);
        let drop = (20.0 * rate) as usize;
        x[drop..].iter_mut().for_each(|v| *v *= factor);
        let beats = detect(&x, rate);
        let truth = whole_beats(&truth, x.len(), rate);
        let d = score::detail(&truth, &beats, Scoring::whole(rate));
        let lost: Vec<f64> = d.missed.iter().map(|&m| m as f64 / rate).collect();
        println!("amplitude x{factor} at 20 s: beats missed at {lost:.1?} s");
        assert!(d.extra.is_empty(), "{:?}", d.extra);
        assert!(
            lost.iter().all(|&t| t < 27.0),
            "found again within 7 s: {lost:?}"
        );
    }
}

#[test]
fn memory_does_not_grow_with_the_lead() {
    let rate = 360.0;
    let (x, _) = synthetic::ecg(9, rate, 600.0, synthetic::Style::CLEAN);
    let mut d = BeatDetector::new(rate).unwrap();
    d.push(&x[..(10.0 * rate) as usize], &mut Vec::new());
    let early = d.save().len();
    d.push(&x[(10.0 * rate) as usize..], &mut Vec::new());
    assert_eq!(d.save().len(), early);
    println!("state at 360 Hz: {early} bytes");
    assert!(early < 4_000, "{early}");
    let mut d = BeatDetector::new(2000.0).unwrap();
    d.push(&vec![0.5; 10_000], &mut Vec::new());
    println!("state at 2,000 Hz: {} bytes", d.save().len());
}

#[test]
fn rates_outside_the_supported_range_are_refused() {
    for rate in [0.0, 99.0, 4001.0, f64::NAN] {
        assert!(matches!(
            BeatDetector::new(rate),
            Err(AnalyticError::SampleRate { .. })
        ));
    }
    for rate in [100.0, 125.0, 2000.0, 4000.0] {
        assert!(BeatDetector::new(rate).is_ok());
    }
}

#[test]
fn samples_that_are_not_numbers_do_not_stop_the_detector() {
    let rate = 250.0;
    let (mut x, truth) = synthetic::ecg(2, rate, 30.0, synthetic::Style::CLEAN);
    for i in (1000..1010).chain([3000, 3001]) {
        x[i] = f64::NAN;
    }
    x[5000] = f64::INFINITY;
    x[6000] = 1e300;
    let beats = detect(&x, rate);
    let s = score::compare(
        &whole_beats(&truth, x.len(), rate),
        &beats,
        Scoring::whole(rate),
    );
    assert!(s.fn_ <= 1 && s.fp <= 1, "{s}");
}
