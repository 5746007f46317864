//! Property tests of every analytic through the [`Analytic`] interface: a
//! lead cut into chunks in any way, with the state saved to bytes and
//! restored between any of them, gives the outcome of one pass bit for bit,
//! and ends in the same state. 1,000 random chunkings per analytic, over
//! synthetic ECGs at rates from 125 to 2,000 Hz.

mod synthetic;

use ecg_signal::{
    Adc, Analytic, AnalyticId, AnyAnalytic, BeatDetector, LeadSummary, StateError, ZeroCrossings,
};
use proptest::prelude::*;

const RATES: [f64; 6] = [125.0, 250.0, 360.0, 500.0, 1000.0, 2000.0];

/// A synthetic lead: seed, rate and length picked by proptest.
fn lead() -> impl Strategy<Value = (Vec<f64>, f64)> {
    (any::<u64>(), 0..RATES.len(), 3.0f64..12.0).prop_map(|(seed, r, seconds)| {
        let mut rng = synthetic::Rng::new(seed);
        let style = synthetic::Style::random(&mut rng);
        let rate = RATES[r];
        (synthetic::ecg(seed, rate, seconds, style).0, rate)
    })
}

/// Chunk ends for a lead of `len` samples (sorted, distinct, inside), each
/// with whether the state goes through bytes after that chunk. Half of the
/// cases cut finely (many chunks, some of one sample).
fn cuts(len: usize) -> impl Strategy<Value = Vec<(usize, bool)>> {
    let count = prop_oneof![0usize..8, 8usize..120];
    (count, any::<u64>()).prop_map(move |(count, seed)| {
        let mut rng = synthetic::Rng::new(seed);
        let mut c: Vec<(usize, bool)> = (0..count)
            .map(|_| {
                let at = (rng.unit() * len as f64) as usize;
                (at, rng.unit() < 0.5)
            })
            .filter(|&(at, _)| at > 0 && at < len)
            .collect();
        c.sort_unstable();
        c.dedup_by_key(|&mut (at, _)| at);
        c
    })
}

fn lead_and_cuts() -> impl Strategy<Value = (Vec<f64>, f64, Vec<(usize, bool)>)> {
    lead().prop_flat_map(|(x, rate)| {
        let n = x.len();
        (Just(x), Just(rate), cuts(n))
    })
}

fn one_pass<A: Analytic>(x: &[f64], rate: f64) -> (A::Output, A) {
    let mut a = A::new(rate).unwrap();
    let mut out = A::Output::default();
    a.push(x, &mut out);
    a.finish(&mut out);
    (out, a)
}

fn chunked<A: Analytic>(x: &[f64], rate: f64, cuts: &[(usize, bool)]) -> (A::Output, A) {
    let mut a = A::new(rate).unwrap();
    let mut out = A::Output::default();
    let mut start = 0;
    for &(end, through_bytes) in cuts.iter().chain(&[(x.len(), false)]) {
        // Each chunk's own outcome, appended: what a processor stores.
        let mut part = A::Output::default();
        a.push(&x[start..end], &mut part);
        ecg_signal::Outcome::append(&mut out, part);
        if through_bytes {
            a = A::restore(&a.save()).unwrap();
        }
        start = end;
    }
    a.finish(&mut out);
    (out, a)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    #[test]
    fn beats_of_any_chunking_equal_one_pass((x, rate, cuts) in lead_and_cuts()) {
        let (whole, end) = one_pass::<BeatDetector>(&x, rate);
        let (parts, end_chunked) = chunked::<BeatDetector>(&x, rate, &cuts);
        prop_assert_eq!(parts, whole);
        prop_assert_eq!(end_chunked.save(), end.save());
    }

    #[test]
    fn crossings_of_any_chunking_equal_one_pass((x, rate, cuts) in lead_and_cuts()) {
        let (whole, _) = one_pass::<ZeroCrossings>(&x, rate);
        prop_assert_eq!(whole, LeadSummary::of(&x));
        let (parts, end) = chunked::<ZeroCrossings>(&x, rate, &cuts);
        prop_assert_eq!(parts, whole);
        prop_assert_eq!(end.total(), whole);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    /// The registry's dispatch and state-by-id restore change nothing.
    #[test]
    fn any_analytic_of_any_chunking_equals_one_pass((x, rate, cuts) in lead_and_cuts()) {
        for &id in AnalyticId::ALL {
            let mut whole = AnyAnalytic::new(id, rate).unwrap();
            let mut expected = vec![whole.push(&x)];
            expected.push(whole.finish());
            let mut a = AnyAnalytic::new(id, rate).unwrap();
            let mut got = Vec::new();
            let mut start = 0;
            for &(end, through_bytes) in cuts.iter().chain(&[(x.len(), false)]) {
                got.push(a.push(&x[start..end]));
                if through_bytes {
                    a = AnyAnalytic::restore(&a.save()).unwrap();
                    prop_assert_eq!(a.id(), id);
                }
                start = end;
            }
            got.push(a.finish());
            prop_assert_eq!(fold(got), fold(expected));
        }
    }

    /// ADC counts give the beats of their millivolts, chunked or not.
    #[test]
    fn digital_chunks_equal_physical_one_pass((x, rate, cuts) in lead_and_cuts(), gain in 50.0f64..5000.0, baseline in -40_000i32..40_000) {
        let adc = Adc { baseline, gain };
        let counts: Vec<i32> = x.iter().map(|v| (v * gain).round() as i32 + baseline).collect();
        let mv: Vec<f64> = counts.iter().map(|&c| adc.millivolts(c)).collect();
        let (expected, _) = one_pass::<BeatDetector>(&mv, rate);
        let mut d = BeatDetector::new(rate).unwrap();
        let mut beats = Vec::new();
        let mut start = 0;
        for &(end, through_bytes) in cuts.iter().chain(&[(x.len(), false)]) {
            d.push_digital(&counts[start..end], adc, &mut beats);
            if through_bytes {
                d = BeatDetector::restore(&d.save()).unwrap();
            }
            start = end;
        }
        d.finish(&mut beats);
        prop_assert_eq!(beats, expected);
    }

    /// Thresholds are relative: scaling by a power of two changes every
    /// value exactly, and no beat.
    #[test]
    fn scaling_by_a_power_of_two_changes_no_beat((x, rate) in lead(), exp in -30i32..30) {
        let scale = 2f64.powi(exp);
        let scaled: Vec<f64> = x.iter().map(|v| v * scale).collect();
        prop_assert_eq!(one_pass::<BeatDetector>(&scaled, rate).0, one_pass::<BeatDetector>(&x, rate).0);
    }

    /// Bytes that are not a saved state are refused, or restore to a
    /// detector that runs; never a panic.
    #[test]
    fn forged_states_never_panic((x, rate) in lead(), flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..4), cut in any::<usize>()) {
        let mut d = BeatDetector::new(rate).unwrap();
        d.push(&x[..x.len() / 2], &mut Vec::new());
        let saved = d.save();
        let mut forged = saved.clone();
        // Half the flips in the fields after the ring (positions, counts,
        // flags), where a wrong value could steer the detector; the ring
        // holds only sample values.
        for (at, bits) in flips {
            let i = if at % 2 == 0 { at % forged.len() } else { forged.len() - 1 - at / 2 % 600.min(forged.len()) };
            forged[i] ^= bits.max(1);
        }
        for bytes in [&forged[..], &saved[..cut % saved.len()]] {
            if let Ok(mut d) = BeatDetector::restore(bytes) {
                let mut out = Vec::new();
                d.push(&x[x.len() / 2..], &mut out);
                d.finish(&mut out);
            }
            let _ = AnyAnalytic::restore(bytes);
        }
    }
}

fn fold(outputs: Vec<ecg_signal::AnyOutput>) -> Vec<ecg_signal::AnyOutput> {
    use ecg_signal::AnyOutput;
    let mut folded: Vec<AnyOutput> = Vec::new();
    for o in outputs {
        match (folded.last_mut(), o) {
            (Some(AnyOutput::ZeroCrossings(a)), AnyOutput::ZeroCrossings(b)) => *a = a.then(b),
            (Some(AnyOutput::Beats(a)), AnyOutput::Beats(b)) => a.extend(b),
            (_, o) => folded.push(o),
        }
    }
    folded
}

#[test]
fn a_state_restores_to_the_detector_saved() {
    let (x, _) = synthetic::ecg(7, 500.0, 10.0, synthetic::Style::CLEAN);
    let mut d = BeatDetector::new(500.0).unwrap();
    for cut in [1, 100, 999, 1000, 4000] {
        d.push(&x[..cut], &mut Vec::new());
        let back = BeatDetector::restore(&d.save()).unwrap();
        assert_eq!(back, d);
    }
}

#[test]
fn states_are_refused_by_the_wrong_analytic_or_version() {
    let d = BeatDetector::new(360.0).unwrap();
    let bytes = d.save();
    assert!(matches!(
        ZeroCrossings::restore(&bytes),
        Err(StateError::Analytic { found: 2, .. })
    ));
    let mut newer = bytes.clone();
    newer[1] = BeatDetector::STATE_VERSION + 1;
    assert!(matches!(
        BeatDetector::restore(&newer),
        Err(StateError::Version { .. })
    ));
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(BeatDetector::restore(&longer), Err(StateError::Trailing(1)));
    assert_eq!(
        AnyAnalytic::restore(&[200, 1]).unwrap_err(),
        StateError::UnknownAnalytic(200)
    );
    assert_eq!(
        AnyAnalytic::restore(&[]).unwrap_err(),
        StateError::Header(0)
    );
}

#[test]
fn the_registry_names_every_analytic() {
    assert_eq!(AnalyticId::from_name("beats"), Some(AnalyticId::Beats));
    assert_eq!(
        AnalyticId::from_u8(ZeroCrossings::ID),
        Some(AnalyticId::ZeroCrossings)
    );
    assert_eq!(AnalyticId::ALL.len(), 2);
    assert_eq!(AnalyticId::Beats.name(), BeatDetector::NAME);
}

#[test]
fn an_adc_gain_must_be_a_positive_number() {
    assert!(Adc::new(1024, 200.0).is_ok());
    for gain in [0.0, -200.0, f64::NAN, f64::INFINITY] {
        assert!(Adc::new(0, gain).is_err(), "{gain}");
    }
}
