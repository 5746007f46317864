//! Property tests: every fast kernel gives exactly the scalar definition's
//! summary, for random data and every slice length in 0..300 (so every
//! remainder of the 64-sample blocks), special values included.

use ecg_signal::{LeadSummary, Sign};
use proptest::prelude::*;

/// The convention from plain integer signs, independently of the crate:
/// crossings between consecutive non-zero signs, first and last non-zero.
fn reference(signs: impl IntoIterator<Item = i128>) -> LeadSummary {
    let mut summary = LeadSummary::EMPTY;
    let mut first = 0;
    let mut last = 0;
    for s in signs {
        summary.samples += 1;
        if s == 0 {
            continue;
        }
        if first == 0 {
            first = s;
        } else if last != s {
            summary.crossings += 1;
        }
        last = s;
    }
    let sign = |s: i128| Sign::from_i8(s as i8);
    LeadSummary {
        first: sign(first),
        last: sign(last),
        ..summary
    }
}

/// One float sample of each kind that could trip a sign test.
fn special_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(-0.0),
        Just(f64::from_bits(1)), // smallest subnormal
        Just(-f64::from_bits(1)),
        Just(f64::MIN_POSITIVE / 3.0), // a subnormal
        Just(-f64::MIN_POSITIVE),
        Just(f64::MAX),
        Just(f64::MIN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::NAN), // counts as zero, as in `Sign::of`
    ]
}

fn special_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        Just(0.0),
        Just(-0.0),
        Just(f32::from_bits(1)),
        Just(-f32::from_bits(1)),
        Just(f32::MIN_POSITIVE / 3.0),
        Just(-f32::MIN_POSITIVE),
        Just(f32::MAX),
        Just(f32::MIN),
        Just(f32::INFINITY),
        Just(f32::NEG_INFINITY),
        Just(f32::NAN),
    ]
}

/// Up to 300 samples: mostly single samples rich in zeros, plus runs of one
/// value long enough to span a block seam (zeros carried across blocks).
fn samples<T: Clone + std::fmt::Debug>(
    one: impl Strategy<Value = T> + Clone,
) -> impl Strategy<Value = Vec<T>> {
    let run = prop_oneof![
        4 => one.clone().prop_map(|x| vec![x]),
        1 => (one, 1usize..100).prop_map(|(x, n)| vec![x; n]),
    ];
    (prop::collection::vec(run, 0..40), 0usize..300).prop_map(|(runs, len)| {
        let mut v = runs.concat();
        v.truncate(len);
        v
    })
}

fn f64_sample() -> impl Strategy<Value = f64> + Clone {
    prop_oneof![3 => Just(0.0), 2 => Just(-0.0), 4 => -5.0f64..5.0, 2 => special_f64()]
}

fn f32_sample() -> impl Strategy<Value = f32> + Clone {
    prop_oneof![3 => Just(0.0), 2 => Just(-0.0), 4 => -5.0f32..5.0, 2 => special_f32()]
}

/// A baseline in or beyond the range of `i16`, often at its edges.
fn baseline_i16() -> impl Strategy<Value = i32> {
    let edges = [
        i32::MIN,
        -32769,
        -32768,
        -32767,
        0,
        2048,
        32766,
        32767,
        32768,
        i32::MAX,
    ];
    prop_oneof![
        3 => -40_000i32..40_000,
        2 => prop::sample::select(edges.to_vec()),
        1 => any::<i32>(),
    ]
}

fn baseline_i32() -> impl Strategy<Value = i64> {
    let (lo, hi) = (i64::from(i32::MIN), i64::from(i32::MAX));
    let edges = [
        i64::MIN,
        lo - 1,
        lo,
        lo + 1,
        0,
        1 << 23,
        hi - 1,
        hi,
        hi + 1,
        i64::MAX,
    ];
    prop_oneof![
        2 => lo - 10..hi + 10,
        2 => prop::sample::select(edges.to_vec()),
        1 => any::<i64>(),
    ]
}

/// Samples near `baseline` (so many zeros and sign flips), at the type's
/// extremes, or anywhere; all saturated into the type's range.
fn digital<T: TryFrom<i128> + Copy + std::fmt::Debug>(
    baseline: i128,
    min: T,
    max: T,
) -> impl Strategy<Value = Vec<T>> {
    let near = (-2i128..=2).prop_map(move |d| saturate(baseline + d, min, max));
    let any_value = any::<i64>().prop_map(move |v| saturate(i128::from(v), min, max));
    samples(prop_oneof![
        6 => near,
        1 => Just(min),
        1 => Just(max),
        2 => any_value,
    ])
}

fn saturate<T: TryFrom<i128> + Copy>(v: i128, min: T, max: T) -> T {
    T::try_from(v).unwrap_or(if v < 0 { min } else { max })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn f64_kernel_equals_the_scalar_definition(x in samples(f64_sample())) {
        let fast = LeadSummary::of(&x);
        prop_assert_eq!(fast, LeadSummary::of_scalar(&x));
        // Partial order: NaN is neither above nor below zero.
        let signs = x.iter().map(|&v| i128::from(v > 0.0) - i128::from(v < 0.0));
        prop_assert_eq!(fast, reference(signs));
    }

    #[test]
    fn f32_kernel_equals_the_scalar_definition(x in samples(f32_sample())) {
        let fast = LeadSummary::of_f32(&x);
        // f32 -> f64 is exact, so the scalar definition sees the same signs.
        let scalar = LeadSummary::from_signs(x.iter().map(|&v| Sign::of(f64::from(v))));
        prop_assert_eq!(fast, scalar);
        let signs = x.iter().map(|&v| i128::from(v > 0.0) - i128::from(v < 0.0));
        prop_assert_eq!(fast, reference(signs));
    }

    #[test]
    fn i16_kernel_is_the_sign_of_adc_minus_baseline(
        (baseline, x) in baseline_i16()
            .prop_flat_map(|b| (Just(b), digital(i128::from(b), i16::MIN, i16::MAX)))
    ) {
        let fast = LeadSummary::of_digital_i16(&x, baseline);
        let scalar = LeadSummary::from_signs(x.iter().map(|&v| Sign::from(i32::from(v).cmp(&baseline))));
        prop_assert_eq!(fast, scalar);
        // The definition itself: the difference, in a type it cannot overflow.
        let signs = x.iter().map(|&v| (i128::from(v) - i128::from(baseline)).signum());
        prop_assert_eq!(fast, reference(signs));
    }

    #[test]
    fn i32_kernel_is_the_sign_of_adc_minus_baseline(
        (baseline, x) in baseline_i32()
            .prop_flat_map(|b| (Just(b), digital(i128::from(b), i32::MIN, i32::MAX)))
    ) {
        let fast = LeadSummary::of_digital_i32(&x, baseline);
        let scalar = LeadSummary::from_signs(x.iter().map(|&v| Sign::from(i64::from(v).cmp(&baseline))));
        prop_assert_eq!(fast, scalar);
        let signs = x.iter().map(|&v| (i128::from(v) - i128::from(baseline)).signum());
        prop_assert_eq!(fast, reference(signs));
    }

    #[test]
    fn any_prefix_and_suffix_fold_to_the_whole(x in samples(f64_sample()), cut in 0usize..300) {
        // The seam at every offset inside or between blocks.
        let cut = cut.min(x.len());
        let (a, b) = x.split_at(cut);
        prop_assert_eq!(LeadSummary::of(a).then(LeadSummary::of(b)), LeadSummary::of(&x));
    }
}

#[test]
fn long_zero_runs_carry_the_sign_across_many_blocks() {
    let mut x = vec![0.0; 1000];
    x[3] = -1.0;
    x[999] = 2.0;
    assert_eq!(LeadSummary::of(&x), LeadSummary::of_scalar(&x));
    assert_eq!(LeadSummary::of(&x).crossings, 1);
    x[999] = -0.0;
    let s = LeadSummary::of(&x);
    assert_eq!(
        (s.first, s.last, s.crossings),
        (Sign::Negative, Sign::Negative, 0)
    );
}

#[test]
fn baselines_beyond_the_sample_type_put_every_sample_on_one_side() {
    let x = [i16::MIN, 0, i16::MAX];
    let above = LeadSummary::of_digital_i16(&x, i32::from(i16::MIN) - 1);
    assert_eq!(
        (above.first, above.last, above.crossings),
        (Sign::Positive, Sign::Positive, 0)
    );
    let below = LeadSummary::of_digital_i32(&[i32::MAX], i64::from(i32::MAX) + 1);
    assert_eq!((below.first, below.crossings), (Sign::Negative, 0));
    assert_eq!(
        LeadSummary::of_digital_i16(&[], i32::MAX),
        LeadSummary::EMPTY
    );
}
