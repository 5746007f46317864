//! Decimal form of physical samples, for compact storage (the `decimal`
//! codec of [`crate::blocks`]).
//!
//! Devices send decimals on an ADC grid (0.05368 mV): the bits of such an
//! `f64` compress badly, the integer 5368 with 5 decimal places compresses
//! well. [`Decimals::encode`] finds, for one lead of one chunk, the smallest
//! scale `d` (0..=9) at which the samples are integers `i` with
//! `i as f64 / 10^d` bit-identical to the sample, and those integers.
//!
//! The guarantee: for every sample, either [`decode`] of its integer is the
//! sample bit for bit, or its integer is 0 and the sample is not `+0.0` (the
//! sample is stored raw). `-0.0`, NaN, infinities, values with more than nine
//! decimals (`0.1 + 0.2`) and tiny values are such samples. Dividing two
//! `f64` that hold integers exactly is correctly rounded, so `i / 10^d` is
//! what parsing the decimal `i`e-`d` gives, and it is the same in ClickHouse
//! (`ints[k] / intExp10(scale)` in the view `samples`). [`crate::blocks`]
//! stores a sample as its integer only where [`Decimals::value`] gives it
//! back bit for bit, and raw otherwise, so a wrong integer here could cost
//! bytes, never exactness.
//!
//! Limits: the scale is per chunk and lead, so a chunk whose samples happen
//! to need fewer decimals than its neighbours gets a smaller scale (still
//! exact; it compresses slightly worse, which matters only for tiny chunks).

/// The largest scale tried: 10^9 and every integer below 2^53 are exact
/// `f64`, and sensors do not resolve more digits than that.
pub const MAX_SCALE: u8 = 9;

/// 10^0 ..= 10^9, each exact in `f64` (and equal to ClickHouse's `intExp10`).
const POW10: [f64; MAX_SCALE as usize + 1] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/// 2^53: integers of smaller magnitude convert to `f64` (and back) exactly.
const EXACT_INT: f64 = 9_007_199_254_740_992.0;

/// One lead of a chunk in decimal form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decimals {
    /// Decimal places: sample `k` is `ints[k] / 10^scale`.
    pub scale: u8,
    /// One integer per sample, 0 where the sample has no decimal form; empty
    /// when (almost) no sample has one, to spare the insert.
    pub ints: Vec<i64>,
}

impl Decimals {
    /// The decimal form of `values`. Deterministic: a retried batch sends the
    /// same integers.
    pub fn encode(values: &[f64]) -> Decimals {
        // A quarter of the samples without a decimal form (and more than a
        // handful) means the lead is not decimal at all (computed floats):
        // stop looking, so such a lead costs at most about three tries per
        // sample instead of ten.
        let give_up = values.len() / 4 + 16;
        let mut scale = 0;
        let mut misses = 0;
        for &v in values {
            // +0.0 is 0 at every scale; -0.0 has a form at none.
            if int_at(v, scale).is_some() {
                continue;
            }
            // A sample that fits a scale mostly fits the larger ones too, so
            // raising the scale keeps the earlier samples; the few that do
            // not fit it (near 2^53) are stored raw.
            match (scale + 1..=MAX_SCALE).find(|&d| int_at(v, d).is_some()) {
                Some(d) => scale = d,
                None => {
                    misses += 1;
                    if misses >= give_up {
                        return Decimals::default();
                    }
                }
            }
        }
        let ints = values
            .iter()
            .map(|&v| int_at(v, scale).unwrap_or(0))
            .collect();
        Decimals { scale, ints }
    }

    /// Sample `k` from its decimal form, or `None` where it has none (it is
    /// stored raw). `Some(x)` is bit-identical to the encoded sample.
    pub fn value(&self, k: usize, sample: f64) -> Option<f64> {
        let int = self.ints.get(k).copied().unwrap_or(0);
        let x = decode(self.scale, int);
        (x.to_bits() == sample.to_bits()).then_some(x)
    }
}

/// `int / 10^scale` as ClickHouse computes `value_int / intExp10(value_scale)`:
/// both operands converted to `f64` (exactly, for `|int| < 2^53`), one
/// correctly rounded division.
pub fn decode(scale: u8, int: i64) -> f64 {
    int as f64 / POW10[usize::from(scale)]
}

/// The integer `i` with `decode(scale, i)` bit-identical to `v`, if any.
/// Always found when `|i| < 2^50`: `v` is within half an ulp of `i / 10^d`,
/// so `v * 10^d` is within `|i| * 2^-53` (plus half an ulp of the product)
/// of `i`, under 1/4. Larger integers may be missed (the sample is then
/// stored raw; sensors give nowhere near 15 significant digits).
fn int_at(v: f64, scale: u8) -> Option<i64> {
    let x = (v * POW10[usize::from(scale)]).round();
    // Also refuses NaN and the infinities.
    if x.is_nan() || x.abs() >= EXACT_INT {
        return None;
    }
    // Exact: x is an integer below 2^53 in magnitude.
    let int = x as i64;
    (decode(scale, int).to_bits() == v.to_bits()).then_some(int)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What the table returns for sample `k`: the decimal form where it
    /// exists, the raw sample otherwise (the view's rule).
    fn stored(d: &Decimals, k: usize, sample: f64) -> f64 {
        d.value(k, sample).unwrap_or(sample)
    }

    fn assert_lossless(values: &[f64]) -> Decimals {
        let d = Decimals::encode(values);
        assert!(d.scale <= MAX_SCALE);
        assert!(d.ints.is_empty() || d.ints.len() == values.len());
        for (k, &v) in values.iter().enumerate() {
            assert_eq!(stored(&d, k, v).to_bits(), v.to_bits(), "sample {k}: {v:?}");
            if d.value(k, v).is_none() {
                // A sample without a decimal form carries integer 0, and is
                // not +0.0 (which 0 would decode to).
                assert_eq!(d.ints.get(k).copied().unwrap_or(0), 0, "{v:?}");
                assert_ne!(v.to_bits(), 0);
            }
        }
        d
    }

    #[test]
    fn ecg_millivolts_are_integers_at_five_places() {
        let values = [-0.0488, -0.05368, 0.0, 0.00488, 1.22, -1.67872];
        let d = assert_lossless(&values);
        assert_eq!(d.scale, 5);
        assert_eq!(d.ints, vec![-4880, -5368, 0, 488, 122_000, -167_872]);
    }

    #[test]
    fn negative_zero_and_computed_floats_have_no_decimal_form() {
        let values = [0.5, -0.0, 0.1 + 0.2, 0.25, f64::MIN_POSITIVE, 1e-310];
        let d = assert_lossless(&values);
        assert_eq!(d.scale, 2);
        assert_eq!(d.ints, vec![50, 0, 0, 25, 0, 0]);
        assert_eq!(d.value(1, -0.0), None);
        assert_eq!(d.value(2, 0.1 + 0.2), None);
    }

    #[test]
    fn integers_large_and_small() {
        let d = assert_lossless(&[0.0, 7.0, -3.0, 9_007_199_254_740_991.0, -1e15]);
        assert_eq!(d.scale, 0);
        assert_eq!(d.ints[3], 9_007_199_254_740_991);
        // 2^53 and beyond, and the extremes, are stored raw.
        let big = [9_007_199_254_740_992.0, f64::MAX, f64::MIN, 1.0];
        let d = assert_lossless(&big);
        assert_eq!(d.value(3, 1.0), Some(1.0));
        assert_eq!(d.value(0, big[0]), None);
    }

    #[test]
    fn a_lead_of_computed_floats_gives_up() {
        let values: Vec<f64> = (1..100).map(|k| f64::from(k) / 3.0).collect();
        assert_eq!(assert_lossless(&values), Decimals::default());
        assert_eq!(assert_lossless(&[]), Decimals::default());
        // Too few samples to judge the lead: they are simply all misses.
        let d = assert_lossless(&[f64::NAN, f64::INFINITY, f64::NEG_INFINITY]);
        assert_eq!(d.ints, vec![0; 3]);
    }

    #[test]
    fn the_real_ecg_is_all_decimal_but_its_negative_zeros() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../data/ecg/ecgplot_12lead.json"
        );
        let ecg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let leads: std::collections::BTreeMap<String, Vec<f64>> =
            serde_json::from_value(ecg["signals"].clone()).unwrap();
        assert_eq!(leads.len(), 12);
        let mut raw = 0;
        for values in leads.values() {
            let d = assert_lossless(values);
            assert_eq!(d.scale, 5);
            raw += (0..values.len())
                .filter(|&k| d.value(k, values[k]).is_none())
                .count();
        }
        // aVR's 37 negative zeros, nothing else.
        assert_eq!(raw, 37);
    }

    /// A decimal with at most `scale` places whose integer at scale 9 is
    /// below 2^50 (so it is found at every larger scale too, see `int_at`),
    /// parsed as the gateway parses JSON and CSV numbers (correctly rounded).
    fn decimal() -> impl Strategy<Value = (f64, u8)> {
        (-(1i64 << 50)..(1i64 << 50), 0..=MAX_SCALE).prop_map(|(m9, d)| {
            let m = m9 / 10i64.pow(u32::from(MAX_SCALE - d));
            (format!("{m}e-{d}").parse::<f64>().unwrap(), d)
        })
    }

    proptest! {
        #[test]
        fn decimals_round_trip_at_the_smallest_scale(samples in prop::collection::vec(decimal(), 0..200)) {
            let values: Vec<f64> = samples.iter().map(|s| s.0).collect();
            let d = assert_lossless(&values);
            let widest = samples.iter().map(|s| s.1).max().unwrap_or(0);
            prop_assert!(d.scale <= widest);
            for (k, &v) in values.iter().enumerate() {
                prop_assert!(d.value(k, v).is_some(), "{:?} at scale {}", v, d.scale);
            }
            // No smaller scale holds them all.
            if d.scale > 0 {
                prop_assert!(values.iter().any(|&v| int_at(v, d.scale - 1).is_none()));
            }
        }

        #[test]
        fn integers_below_2_pow_53_round_trip_at_scale_0(ints in prop::collection::vec(-(1i64 << 53) + 1..(1i64 << 53), 1..200)) {
            let values: Vec<f64> = ints.iter().map(|&i| i as f64).collect();
            let d = assert_lossless(&values);
            prop_assert_eq!(d.scale, 0);
            prop_assert_eq!(d.ints, ints);
        }

        #[test]
        fn any_bits_round_trip(bits in prop::collection::vec(any::<u64>(), 0..200)) {
            let values: Vec<f64> = bits.into_iter().map(f64::from_bits).collect();
            assert_lossless(&values);
        }

        #[test]
        fn decimals_mixed_with_anything_round_trip(
            samples in prop::collection::vec(
                prop_oneof![
                    4 => decimal().prop_map(|s| s.0),
                    1 => any::<u64>().prop_map(f64::from_bits),
                    1 => prop::sample::select(vec![
                        0.0, -0.0, f64::MAX, f64::MIN, f64::MIN_POSITIVE, 5e-324, -5e-324,
                        f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 0.1 + 0.2, 1e300, -1e-300,
                    ]),
                ],
                0..200,
            )
        ) {
            assert_lossless(&samples);
        }
    }
}
