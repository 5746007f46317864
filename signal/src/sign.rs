//! The sign of a sample.
//!
//! `f64::signum(-0.0)` is `-1.0` in Rust (it reports the sign bit), which
//! would turn every negative zero into a negative sample and create crossings
//! that are not there. [`Sign::of`] compares with zero instead, so both zeros
//! are [`Sign::Zero`]. NaN never reaches the kernel (validation rejects it at
//! the gateway and the processor); if it did, it would count as a zero.

use std::cmp::Ordering;

/// The sign of one sample, stored as `-1`, `0` or `1` (ClickHouse `Int8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(i8)]
pub enum Sign {
    Negative = -1,
    #[default]
    Zero = 0,
    Positive = 1,
}

impl Sign {
    /// The sign of `x`; `0.0` and `-0.0` are both [`Sign::Zero`].
    #[inline]
    pub fn of(x: f64) -> Self {
        if x > 0.0 {
            Sign::Positive
        } else if x < 0.0 {
            Sign::Negative
        } else {
            Sign::Zero
        }
    }

    /// The sign as stored: `-1`, `0` or `1`.
    pub fn as_i8(self) -> i8 {
        self as i8
    }

    /// Reads a stored sign; anything outside `-1..=1` is clamped by its sign.
    pub fn from_i8(v: i8) -> Self {
        match v.signum() {
            1 => Sign::Positive,
            -1 => Sign::Negative,
            _ => Sign::Zero,
        }
    }

    pub fn is_zero(self) -> bool {
        self == Sign::Zero
    }
}

/// The sign of `a - b` from `a.cmp(&b)`: exact for integers of any width,
/// where the subtraction itself could overflow.
impl From<Ordering> for Sign {
    fn from(o: Ordering) -> Self {
        match o {
            Ordering::Greater => Sign::Positive,
            Ordering::Less => Sign::Negative,
            Ordering::Equal => Sign::Zero,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_zero_is_zero_not_negative() {
        assert_eq!((-0.0f64).signum(), -1.0, "the trap this module avoids");
        assert_eq!(Sign::of(-0.0), Sign::Zero);
        assert_eq!(Sign::of(0.0), Sign::Zero);
    }

    #[test]
    fn tiny_values_keep_their_sign() {
        assert_eq!(Sign::of(f64::MIN_POSITIVE / 4.0), Sign::Positive);
        assert_eq!(Sign::of(-f64::MIN_POSITIVE / 4.0), Sign::Negative);
    }

    #[test]
    fn ordering_is_the_sign_of_the_difference() {
        assert_eq!(Sign::from(i16::MIN.cmp(&i16::MAX)), Sign::Negative);
        assert_eq!(Sign::from(7.cmp(&7)), Sign::Zero);
        assert_eq!(Sign::from(i64::MAX.cmp(&i64::MIN)), Sign::Positive);
    }

    #[test]
    fn stored_signs_round_trip() {
        for s in [Sign::Negative, Sign::Zero, Sign::Positive] {
            assert_eq!(Sign::from_i8(s.as_i8()), s);
        }
    }
}
