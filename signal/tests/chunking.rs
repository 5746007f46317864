//! Property tests: however a signal is cut, ordered, combined or replayed,
//! the folded summaries equal one pass over the whole signal.

use ecg_signal::LeadSummary;
use proptest::prelude::*;

/// The convention, written as plainly as possible and independently of the
/// kernel: the reference the kernel is checked against.
fn one_pass_reference(signal: &[f64]) -> u64 {
    let mut last_nonzero: Option<bool> = None;
    let mut crossings = 0;
    for &x in signal {
        if x == 0.0 {
            continue; // 0.0 == -0.0 in IEEE 754
        }
        let positive = x > 0.0;
        if let Some(prev) = last_nonzero {
            if prev != positive {
                crossings += 1;
            }
        }
        last_nonzero = Some(positive);
    }
    crossings
}

/// Samples rich in exact zeros, negative zeros and long zero runs.
fn signal() -> impl Strategy<Value = Vec<f64>> {
    let sample = prop_oneof![
        3 => Just(0.0),
        2 => Just(-0.0),
        3 => -5.0f64..5.0,
        1 => Just(f64::MIN_POSITIVE),
        1 => Just(-f64::MIN_POSITIVE),
    ];
    let run = prop_oneof![
        4 => prop::collection::vec(sample, 1..20),
        1 => (1usize..150).prop_map(|n| vec![0.0; n]),
        1 => (1usize..50).prop_map(|n| vec![-0.0; n]),
    ];
    // Sizes keep 10,000 cases per property to seconds in a debug build while
    // still spanning several 64-sample blocks of the fast kernel.
    prop::collection::vec(run, 0..14).prop_map(|runs| runs.concat())
}

/// Cut points for a signal of length `len`: chunk sizes from 1 up to the whole.
fn chunking(len: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..=len.max(1), 0..40).prop_map(move |mut cuts| {
        cuts.retain(|&c| c < len);
        cuts.sort_unstable();
        cuts.dedup();
        cuts
    })
}

fn chunks<'a>(signal: &'a [f64], cuts: &[usize]) -> Vec<&'a [f64]> {
    let mut out = Vec::new();
    let mut start = 0;
    for &c in cuts.iter().chain(std::iter::once(&signal.len())) {
        out.push(&signal[start..c]);
        start = c;
    }
    out
}

fn fold(parts: impl IntoIterator<Item = LeadSummary>) -> LeadSummary {
    parts
        .into_iter()
        .fold(LeadSummary::EMPTY, LeadSummary::then)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn one_pass_matches_the_reference(signal in signal()) {
        let s = LeadSummary::of(&signal);
        prop_assert_eq!(s.crossings, one_pass_reference(&signal));
        prop_assert_eq!(s.samples, signal.len() as u64);
    }

    #[test]
    fn any_chunking_equals_one_pass(
        (signal, cuts) in signal().prop_flat_map(|s| { let n = s.len(); (Just(s), chunking(n)) })
    ) {
        let whole = LeadSummary::of(&signal);
        let folded = fold(chunks(&signal, &cuts).into_iter().map(LeadSummary::of));
        prop_assert_eq!(folded, whole);
    }

    #[test]
    fn one_sample_chunks_equal_one_pass(signal in signal()) {
        let folded = fold(signal.iter().map(|x| LeadSummary::of(std::slice::from_ref(x))));
        prop_assert_eq!(folded, LeadSummary::of(&signal));
    }

    #[test]
    fn arrival_order_and_duplicates_do_not_matter(
        (signal, cuts, order, dups) in signal().prop_flat_map(|s| {
            let n = s.len();
            (Just(s), chunking(n))
        }).prop_flat_map(|(s, cuts)| {
            let k = cuts.len() + 1;
            (
                Just(s),
                Just(cuts),
                Just((0..k).collect::<Vec<_>>()).prop_shuffle(),
                prop::collection::vec(0..k, 0..10),
            )
        })
    ) {
        // Chunks arrive shuffled and some twice; keeping the first copy of
        // each seq and folding in seq order must equal one pass.
        let parts = chunks(&signal, &cuts);
        let arrivals = order.iter().chain(dups.iter()).copied();
        let mut by_seq = std::collections::BTreeMap::new();
        for seq in arrivals {
            by_seq.entry(seq).or_insert_with(|| LeadSummary::of(parts[seq]));
        }
        prop_assert_eq!(fold(by_seq.into_values()), LeadSummary::of(&signal));
    }

    #[test]
    fn combining_is_associative(a in signal(), b in signal(), c in signal()) {
        let (a, b, c) = (LeadSummary::of(&a), LeadSummary::of(&b), LeadSummary::of(&c));
        prop_assert_eq!(a.then(b).then(c), a.then(b.then(c)));
        prop_assert_eq!(LeadSummary::EMPTY.then(a), a);
        prop_assert_eq!(a.then(LeadSummary::EMPTY), a);
    }
}
