//! Exact decimal arithmetic for `SampledData`: the numbers of a document
//! as written, `origin + factor × data` rounded once to a double, and the
//! test of whether `factor` is exactly the reciprocal of a double gain.
//!
//! A decimal is held as an `i128` mantissa and an `i32` exponent (38
//! significant digits, any realistic exponent). Every operation is checked:
//! when a result does not fit, the caller falls back to `f64` arithmetic
//! and says so in its documentation. Nothing here panics on any input.

use ecg_schemas::Calibration;

/// A number as a document writes it (JSON and FHIR `decimal` grammar:
/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Decimal {
    /// `mantissa × 10^exponent`, when the significant digits fit an `i128`
    /// (trailing zeros go to the exponent) and the exponent an `i32`.
    pub exact: Option<(i128, i32)>,
    /// A minus sign was written, so `-0` is a negative zero.
    pub negative: bool,
    /// The correctly rounded double (±inf beyond its range, ±0 below it).
    pub value: f64,
    /// Written as an integer: digits only, no point, no exponent.
    pub integer: bool,
}

/// Exponents are read saturating at this magnitude: far beyond any double
/// (10^±400) and any `i32`, and small enough that `10 * exp + 9` fits.
const EXPONENT_CAP: i64 = 1_000_000_000_000;

impl Decimal {
    /// Parses `text`, or `None` if it is not a decimal in the grammar above
    /// (no `+`, no leading zeros, no bare point, no `inf`/`NaN`).
    pub fn parse(text: &str) -> Option<Decimal> {
        let b = text.as_bytes();
        let negative = b.first() == Some(&b'-');
        let mut i = usize::from(negative);
        let digits_from = |i: &mut usize| {
            let start = *i;
            while *i < b.len() && b[*i].is_ascii_digit() {
                *i += 1;
            }
            &b[start..*i]
        };
        let int = digits_from(&mut i);
        if int.is_empty() || (int.len() > 1 && int[0] == b'0') {
            return None;
        }
        let mut frac: &[u8] = &[];
        if b.get(i) == Some(&b'.') {
            i += 1;
            frac = digits_from(&mut i);
            if frac.is_empty() {
                return None;
            }
        }
        let mut exp: i64 = 0;
        let mut has_exp = false;
        if matches!(b.get(i), Some(b'e' | b'E')) {
            has_exp = true;
            i += 1;
            let exp_negative = b.get(i) == Some(&b'-');
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let digits = digits_from(&mut i);
            if digits.is_empty() {
                return None;
            }
            for &d in digits {
                exp = (exp * 10 + i64::from(d - b'0')).min(EXPONENT_CAP);
            }
            if exp_negative {
                exp = -exp;
            }
        }
        if i != b.len() {
            return None;
        }
        // The grammar above is a subset of what `str::parse` reads, and
        // `parse_f64` returns exactly what `str::parse` returns.
        let value = ecg_input::number::parse_f64(b)?;
        Some(Decimal {
            exact: exact_parts(negative, int, frac, exp),
            negative,
            value,
            integer: frac.is_empty() && !has_exp,
        })
    }

    /// The value as an `i32`, when it is an integer written as one and fits.
    pub fn as_i32(&self) -> Option<i32> {
        if !self.integer {
            return None;
        }
        let (m, e) = self.exact?;
        i32::try_from(m.checked_mul(pow10(i64::from(e))?)?).ok()
    }

    /// Whether the value is zero, whatever its sign (a zero always has
    /// exact parts: no significant digit).
    pub fn is_zero(&self) -> bool {
        matches!(self.exact, Some((0, _)))
    }
}

/// The significant digits of `int` and `frac` as an `i128` mantissa, and the
/// exponent, or `None` when they do not fit.
fn exact_parts(negative: bool, int: &[u8], frac: &[u8], exp: i64) -> Option<(i128, i32)> {
    let digits = || int.iter().chain(frac);
    let Some(first) = digits().position(|&d| d != b'0') else {
        return Some((0, 0));
    };
    let total = int.len() + frac.len();
    // There is a non-zero digit, so there is a last one.
    let last = total - 1 - digits().rev().position(|&d| d != b'0')?;
    let significant = last + 1 - first;
    if significant > 38 {
        return None;
    }
    let mut m: i128 = 0;
    for &d in digits().skip(first).take(significant) {
        // At most 38 digits: below 10^38 < i128::MAX.
        m = m * 10 + i128::from(d - b'0');
    }
    let trailing = (total - 1 - last) as i64;
    let exponent = exp - frac.len() as i64 + trailing;
    Some((if negative { -m } else { m }, i32::try_from(exponent).ok()?))
}

/// `10^k` for `0 <= k <= 38`.
pub(crate) fn pow10(k: i64) -> Option<i128> {
    10i128.checked_pow(u32::try_from(k).ok()?)
}

/// Powers of ten that are exact doubles.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// `m × 10^e`, correctly rounded; a zero `m` gives `-0.0` if `negative_zero`.
pub(crate) fn to_f64(m: i128, e: i32, negative_zero: bool) -> f64 {
    if m == 0 {
        return if negative_zero { -0.0 } else { 0.0 };
    }
    // Clinger's fast path: both operands exact doubles, one rounding.
    if m.unsigned_abs() <= 1 << 53 && (-22..=22).contains(&e) {
        let x = m as f64;
        return if e >= 0 {
            x * POW10[e as usize]
        } else {
            x / POW10[e.unsigned_abs() as usize]
        };
    }
    // Rust's float parser rounds correctly; "{m}e{e}" is always a float.
    format!("{m}e{e}").parse().unwrap_or(f64::NAN)
}

/// `origin + factor × d`, computed exactly and rounded once, or `None`
/// when a decimal did not fit or an intermediate overflowed. A zero origin
/// is not added, so the sign of a zero product (IEEE: negative when
/// exactly one of `factor` and `d` is negative) survives: `-0` in the data
/// with factor 1 and origin 0 gives `-0.0`. A non-zero origin cancelled
/// exactly gives `+0.0`.
pub(crate) fn exact_value(origin: &Decimal, factor: &Decimal, d: &Decimal) -> Option<f64> {
    let (fm, fe) = factor.exact?;
    let (dm, de) = d.exact?;
    let (om, oe) = origin.exact?;
    let pm = fm.checked_mul(dm)?;
    let pe = fe.checked_add(de)?;
    if om == 0 {
        return Some(to_f64(pm, pe, factor.negative != d.negative));
    }
    if pm == 0 {
        return Some(to_f64(om, oe, false));
    }
    let e = pe.min(oe);
    let a = pm.checked_mul(pow10(i64::from(pe) - i64::from(e))?)?;
    let b = om.checked_mul(pow10(i64::from(oe) - i64::from(e))?)?;
    Some(to_f64(a.checked_add(b)?, e, false))
}

/// `origin + factor × d` in `f64` arithmetic, for the decimals that
/// [`exact_value`] cannot hold: two roundings instead of one. The zero
/// origin rule is the same.
pub(crate) fn approximate_value(origin: &Decimal, factor: &Decimal, d: &Decimal) -> f64 {
    let product = factor.value * d.value;
    if origin.is_zero() {
        product
    } else {
        origin.value + product
    }
}

/// A positive finite double as `m × 2^e` (`m > 0`), or `None`.
fn binary_parts(g: f64) -> Option<(u64, i32)> {
    if !(g.is_finite() && g > 0.0) {
        return None;
    }
    let bits = g.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1 << 52) - 1);
    if biased == 0 {
        Some((fraction, -1074))
    } else {
        Some((fraction | 1 << 52, biased - 1075))
    }
}

/// Whether `m × 10^e × g == 1` exactly, for a decimal factor `m × 10^e`
/// (`m > 0`) and a double `g`. Integer arithmetic: with the powers of two
/// taken out of both mantissas, the product is `odd × 5^e × 2^twos`,
/// which is 1 only if the powers of two cancel and, for `e < 0`, the odd
/// parts multiply to exactly `5^-e`.
pub(crate) fn reciprocal_is_exact(m: u128, e: i32, g: f64) -> bool {
    let Some((gm, ge)) = binary_parts(g) else {
        return false;
    };
    if m == 0 {
        return false;
    }
    let (m_twos, g_twos) = (m.trailing_zeros(), gm.trailing_zeros());
    let (m_odd, g_odd) = (m >> m_twos, u128::from(gm >> g_twos));
    let twos = i64::from(m_twos) + i64::from(g_twos) + i64::from(e) + i64::from(ge);
    if twos != 0 {
        return false;
    }
    if e >= 0 {
        return e == 0 && m_odd == 1 && g_odd == 1;
    }
    match (
        m_odd.checked_mul(g_odd),
        5u128.checked_pow(e.unsigned_abs()),
    ) {
        (Some(product), Some(power)) => product == power,
        _ => false,
    }
}

/// The exact decimal `1 / gain` as `(mantissa, exponent)`, when it is a
/// finite decimal (the gain's odd mantissa is a power of 5) whose
/// mantissa fits an `i128`.
pub(crate) fn exact_reciprocal(gain: f64) -> Option<(i128, i64)> {
    let (m, e) = binary_parts(gain)?;
    let twos = m.trailing_zeros();
    let (mut odd, e2) = (m >> twos, i64::from(e) + i64::from(twos));
    let mut k: i64 = 0;
    while odd % 5 == 0 {
        odd /= 5;
        k += 1;
    }
    if odd != 1 {
        return None;
    }
    // gain = 5^k × 2^e2, so 1/gain = 2^(k - e2) × 10^-k.
    let t = k - e2;
    if t >= 0 {
        let t = u32::try_from(t).ok().filter(|&t| t < 127)?;
        Some((1i128 << t, -k))
    } else {
        // 2^t = 5^-t × 10^t.
        Some((5i128.checked_pow(u32::try_from(-t).ok()?)?, -e2))
    }
}

/// The calibration that `origin + factor × count` amounts to, when
/// `factor` is exactly `1 / gain` for a double `gain > 0` and
/// `baseline = -origin / factor` is an integer that fits an `i32`.
pub(crate) fn calibration(origin: &Decimal, factor: &Decimal) -> Option<Calibration> {
    let (fm, fe) = factor.exact?;
    if fm <= 0 {
        return None;
    }
    let g = 1.0 / factor.value;
    if !(g.is_finite() && g > 0.0) {
        return None;
    }
    // `1.0 / factor.value` rounds twice (the factor, then the quotient):
    // the exact reciprocal, if it is a double, is it or a neighbour.
    let neighbours = [
        g,
        f64::from_bits(g.to_bits() - 1),
        f64::from_bits(g.to_bits() + 1),
    ];
    let gain = neighbours
        .into_iter()
        .find(|&g| reciprocal_is_exact(fm.unsigned_abs(), fe, g))?;
    let (om, oe) = origin.exact?;
    if om == 0 {
        return Some(Calibration { gain, baseline: 0 });
    }
    // baseline = -(om × 10^oe) / (fm × 10^fe)
    let shift = i64::from(oe) - i64::from(fe);
    let (num, den) = if shift >= 0 {
        (om.checked_mul(pow10(shift)?)?, fm)
    } else {
        (om, fm.checked_mul(pow10(-shift)?)?)
    };
    if num % den != 0 {
        return None;
    }
    let baseline = i32::try_from((num / den).checked_neg()?).ok()?;
    Some(Calibration { gain, baseline })
}

/// `m × 10^e` as plain decimal text, without exponent or trailing zeros
/// after the point: `(5, -3)` is `"0.005"`, `(-512, -2)` is `"-5.12"`.
pub(crate) fn plain(m: i128, e: i64) -> String {
    let (mut m, mut e) = (m, e);
    if m == 0 {
        return "0".to_string();
    }
    while e < 0 && m % 10 == 0 {
        m /= 10;
        e += 1;
    }
    let digits = m.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + e.unsigned_abs() as usize + 3);
    if m < 0 {
        out.push('-');
    }
    if e >= 0 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', e as usize));
    } else {
        let k = e.unsigned_abs() as usize;
        if digits.len() > k {
            let (whole, fraction) = digits.split_at(digits.len() - k);
            out.push_str(whole);
            out.push('.');
            out.push_str(fraction);
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', k - digits.len()));
            out.push_str(&digits);
        }
    }
    out
}
