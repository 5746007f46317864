//! The stored form of one lead of one chunk (`blocks.codec` and the
//! columns it governs), chosen per chunk and lead: the ADC counts of a
//! digital ECG, decimal integers of physical samples on a decimal grid (the
//! few without such a form, like `-0.0`, kept raw beside them), or the raw
//! `f64` where neither is exact. Pure: no I/O.
//!
//! [`Form::values`] gives every value back bit for bit, with the same
//! arithmetic as the view `samples` in ClickHouse.

use std::borrow::Cow;

use ecg_schemas::{Calibration, Signal};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::decimal::{self, Decimals};

/// How a block's values are stored (`blocks.codec`, an `Enum8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// `(ints[k] - adc_baseline) / adc_gain`.
    Adc = 1,
    /// `ints[k] / 10^scale`, except positions `raw_at`, whose values are in
    /// `raw` (in that order).
    Decimal = 2,
    /// `raw[k]`.
    Raw = 3,
}

impl Serialize for Codec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i8(*self as i8)
    }
}

impl<'de> Deserialize<'de> for Codec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match i8::deserialize(d)? {
            1 => Ok(Codec::Adc),
            2 => Ok(Codec::Decimal),
            3 => Ok(Codec::Raw),
            other => Err(serde::de::Error::custom(format!("unknown codec {other}"))),
        }
    }
}

/// The [`Form`] of a row with the stored-form columns (`codec`, `ints`,
/// `scale`, `adc_gain`, `adc_baseline`, `raw`, `raw_at`), borrowing its
/// arrays: [`super::Block`] and [`super::Stored`] both are such rows.
macro_rules! form_of {
    ($row:expr) => {
        $crate::blocks::Form {
            codec: $row.codec,
            ints: ::std::borrow::Cow::Borrowed(&$row.ints),
            scale: $row.scale,
            adc_gain: $row.adc_gain,
            adc_baseline: $row.adc_baseline,
            raw: ::std::borrow::Cow::Borrowed(&$row.raw),
            raw_at: $row.raw_at.clone(),
        }
    };
}
pub(crate) use form_of;

/// One lead of one chunk in its stored form.
#[derive(Debug, Clone, PartialEq)]
pub struct Form<'a> {
    pub codec: Codec,
    pub ints: Cow<'a, [i32]>,
    pub scale: u8,
    pub adc_gain: f64,
    pub adc_baseline: i32,
    pub raw: Cow<'a, [f64]>,
    pub raw_at: Vec<u32>,
}

impl<'a> Form<'a> {
    /// Lead `lead` of `signal`: digital leads as their counts (borrowed),
    /// physical ones through [`Form::physical`].
    pub fn of(signal: &'a Signal, lead: usize) -> Form<'a> {
        match signal {
            Signal::Digital { adc, calibration } => Form::adc(&adc[lead], calibration[lead]),
            Signal::Physical(values) => Form::physical(&values[lead]),
        }
    }

    /// A digital lead: the counts as sent, and the calibration.
    pub fn adc(counts: &'a [i32], calibration: Calibration) -> Form<'a> {
        Form {
            codec: Codec::Adc,
            ints: Cow::Borrowed(counts),
            scale: 0,
            adc_gain: calibration.gain,
            adc_baseline: calibration.baseline,
            raw: Cow::Borrowed(&[]),
            raw_at: Vec::new(),
        }
    }

    /// A physical lead: decimal integers where every sample but a few (at
    /// most a quarter, plus 16) has a decimal form that fits `i32`, those
    /// few raw beside them; otherwise every sample raw (borrowed).
    pub fn physical(values: &'a [f64]) -> Form<'a> {
        let raw_form = || Form {
            codec: Codec::Raw,
            ints: Cow::Borrowed(&[]),
            scale: 0,
            adc_gain: 0.0,
            adc_baseline: 0,
            raw: Cow::Borrowed(values),
            raw_at: Vec::new(),
        };
        let d = Decimals::encode(values);
        if d.ints.is_empty() {
            return raw_form();
        }
        let allowed = values.len() / 4 + 16;
        let mut ints = Vec::with_capacity(values.len());
        let (mut raw, mut raw_at) = (Vec::new(), Vec::new());
        for (k, &v) in values.iter().enumerate() {
            let int = d.value(k, v).and_then(|_| i32::try_from(d.ints[k]).ok());
            match int {
                Some(i) => ints.push(i),
                None => {
                    if raw.len() == allowed {
                        return raw_form();
                    }
                    ints.push(0);
                    raw.push(v);
                    // Validation caps a chunk far below 2^32 samples.
                    raw_at.push(k as u32);
                }
            }
        }
        Form {
            codec: Codec::Decimal,
            ints: Cow::Owned(ints),
            scale: d.scale,
            adc_gain: 0.0,
            adc_baseline: 0,
            raw: Cow::Owned(raw),
            raw_at,
        }
    }

    /// Samples in the block.
    pub fn len(&self) -> usize {
        match self.codec {
            Codec::Raw => self.raw.len(),
            Codec::Adc | Codec::Decimal => self.ints.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every value, bit for bit as sent, computed as the view `samples`
    /// computes it.
    pub fn values(&self) -> Vec<f64> {
        match self.codec {
            Codec::Raw => self.raw.to_vec(),
            Codec::Adc => {
                let c = self.calibration();
                self.ints.iter().map(|&a| c.physical(a)).collect()
            }
            Codec::Decimal => {
                let mut out: Vec<f64> = self
                    .ints
                    .iter()
                    .map(|&i| decimal::decode(self.scale, i64::from(i)))
                    .collect();
                for (&at, &v) in self.raw_at.iter().zip(self.raw.iter()) {
                    if let Some(slot) = out.get_mut(at as usize) {
                        *slot = v;
                    }
                }
                out
            }
        }
    }

    /// The calibration of an `adc` block.
    pub fn calibration(&self) -> Calibration {
        Calibration {
            gain: self.adc_gain,
            baseline: self.adc_baseline,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(values: &[f64]) -> Form<'_> {
        let form = Form::physical(values);
        let back = form.values();
        assert_eq!(back.len(), values.len());
        for (k, (a, b)) in values.iter().zip(&back).enumerate() {
            assert_eq!(
                a.to_bits(),
                b.to_bits(),
                "sample {k}: {a:?} came back as {b:?}"
            );
        }
        form
    }

    #[test]
    fn decimals_with_a_negative_zero_keep_it_raw_beside_them() {
        let form = round_trip(&[0.05368, -0.0, 1.5, 0.0, -2.25]);
        assert_eq!(form.codec, Codec::Decimal);
        assert_eq!(form.scale, 5);
        assert_eq!(form.raw_at, vec![1]);
        assert_eq!(form.raw.len(), 1);
    }

    #[test]
    fn computed_floats_and_huge_decimals_are_raw() {
        let thirds: Vec<f64> = (1..100).map(|k| f64::from(k) / 3.0).collect();
        assert_eq!(round_trip(&thirds).codec, Codec::Raw);
        // Integers beyond i32 have a decimal form but no `ints` slot.
        let big: Vec<f64> = (0..100).map(|k| 3e9 + f64::from(k)).collect();
        assert_eq!(round_trip(&big).codec, Codec::Raw);
        assert_eq!(round_trip(&[]).len(), 0);
    }

    #[test]
    fn adc_counts_come_back_through_the_calibration() {
        let counts = [1024, 1000, -5, i32::MAX, i32::MIN];
        let c = Calibration {
            gain: 200.0,
            baseline: 1024,
        };
        let form = Form::adc(&counts, c);
        let want: Vec<u64> = counts.iter().map(|&a| c.physical(a).to_bits()).collect();
        let got: Vec<u64> = form.values().iter().map(|v| v.to_bits()).collect();
        assert_eq!(got, want);
    }

    proptest! {
        #[test]
        fn any_values_come_back_bit_for_bit(
            values in prop::collection::vec(
                prop_oneof![
                    4 => (-100_000i64..100_000).prop_map(|i| i as f64 / 1e3),
                    1 => any::<u64>().prop_map(f64::from_bits),
                    1 => prop::sample::select(vec![0.0, -0.0, f64::NAN, f64::INFINITY, 0.1 + 0.2, 5e-324]),
                ],
                0..300,
            )
        ) {
            round_trip(&values);
        }
    }
}
