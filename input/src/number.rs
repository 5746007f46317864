//! Decimal text to `f64`, correctly rounded, fast for the short decimals ECG
//! devices send (`-0.12345`, `1.2`, `512`).
//!
//! Guarantee: [`parse_f64`] returns exactly what `str::parse::<f64>` returns,
//! the same bits or the same refusal, for every input; the JSON chunk parser
//! uses the same fast path and is bit-identical to serde_json. Both
//! references are correctly rounded, so the fast path only has to be
//! correctly rounded too. It takes numbers of at most 15 significant digits
//! and at most 8 after the point, so the digits form an integer
//! `m < 10^15 < 2^53` and the scale `10^k` (`k <= 8`) is an exact double;
//! then `m / 10^k` is one IEEE division of exact operands, hence correctly
//! rounded (Clinger's fast path). It must stay a division: multiplying by
//! `10^-k` rounds twice. Everything else goes to a complete parser.
//!
//! The fast path reads the number as little-endian `u64` words and finds
//! its digits, point and end with SWAR bit tricks (no loop over bytes), then
//! converts eight digits with three multiplications (the method of simdjson
//! and fast_float). Safe, portable Rust: no `std::arch`, no `unsafe`.

use std::ops::Range;

/// Parses `field` exactly as `str::parse::<f64>` does (same bits, same
/// refusals: anything that is not UTF-8 or not a float is `None`).
pub fn parse_f64(field: &[u8]) -> Option<f64> {
    let number = unsigned_plus(field);
    if number.len() < WINDOW {
        // A space after the number stops it.
        let mut window = [b' '; WINDOW];
        window[..number.len()].copy_from_slice(number);
        if let Some((value, len)) = decimal(&window)
            && len == number.len()
        {
            return Some(value);
        }
    }
    std::str::from_utf8(field).ok()?.parse().ok()
}

/// `parse_f64(&buf[range])`, without copying the field when [`WINDOW`]
/// bytes of `buf` follow its start: for decoders that hold the whole body
/// and know where each field ends. The bytes after the field are read but
/// never taken as part of the number.
pub fn parse_f64_in(buf: &[u8], range: Range<usize>) -> Option<f64> {
    let field = buf.get(range.clone())?;
    let number = unsigned_plus(field);
    let start = range.end - number.len();
    if let Some(window) = buf.get(start..start + WINDOW)
        && let Some((value, len)) = decimal(window.try_into().unwrap())
        && len == number.len()
    {
        return Some(value);
    }
    parse_f64(field)
}

/// Bytes the fast path reads: the number and the byte after it.
pub const WINDOW: usize = 16;

/// The value and length of the number that `window` starts with, if it has
/// the common shape and ends within the window; `None` otherwise. See
/// [`parts`].
#[inline(always)]
pub(crate) fn decimal(window: &[u8; WINDOW]) -> Option<(f64, usize)> {
    let p = parts(window)?;
    Some((p.value(), p.len))
}

/// A number of the common shape, as its exact parts: the value is
/// `digits / divisor`, one correctly rounded division (IEEE division is
/// symmetric in sign, so the sign can go with the divisor, and "-0" gives
/// `0 / -1 = -0.0`). Kept apart so that a loop can convert and divide in
/// batches: the latency of each number's path from its bytes to its value
/// then overlaps with the next numbers'.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parts {
    /// The digits as an integer, below 10^15 < 2^53: exact as a float.
    pub digits: u64,
    /// `±10^k` for `k` digits after the point (at most 8): exact.
    pub divisor: f64,
    /// Bytes of the number, sign included.
    pub len: usize,
    /// The byte after the number.
    pub after: u8,
}

impl Parts {
    #[inline(always)]
    pub fn value(&self) -> f64 {
        quotient(self.digits, self.divisor)
    }
}

/// `digits / divisor` for [`Parts`]' fields.
#[inline(always)]
pub(crate) fn quotient(digits: u64, divisor: f64) -> f64 {
    // `as i64` first: exact (below 2^53), and the signed conversion is one
    // instruction on x86-64, the unsigned one four.
    (digits as i64) as f64 / divisor
}

/// `±10^scale` (`scale <= 8`), exact.
#[inline(always)]
fn divisor(scale: usize, negative: bool) -> f64 {
    // The mask only tells the compiler that the index is within the table.
    with_sign(POW10[scale & 15], negative)
}

/// The number that `window` starts with, if it has the common shape and
/// ends within the window; `None` otherwise. The common shape is a subset
/// of both JSON's number grammar and `str::parse::<f64>`'s:
///
/// ```text
/// -?(0|[1-9][0-9]*)(\.[0-9]+)?     at most 15 bytes, sign included;
///                                  if longer than 8 after the sign, the
///                                  point within the first 8 bytes and at
///                                  most 8 digits after it
/// ```
///
/// The number ends at the first byte below `'-'` (0x2d: a comma, a space, a
/// control character) or in 0x80..=0xac. Whatever the caller expects there
/// (a comma in a JSON array, the end of a CSV field), it checks itself;
/// such a byte cannot continue a number, so the parts are those of the
/// whole number.
#[inline(always)]
pub(crate) fn parts(window: &[u8; WINDOW]) -> Option<Parts> {
    // In a parsing loop the next number's position depends on this one's
    // length, so the length is found in as few dependent steps as possible
    // (load, three bit operations, count trailing zeros) and everything else
    // is checked off that path. Byte 0 is a sign or a digit (else refused
    // below), so the search starts at byte 1; one word covers numbers of up
    // to 8 bytes, sign included.
    let from_0 = u64::from_le_bytes(window[..8].try_into().unwrap());
    let from_1 = u64::from_le_bytes(window[1..9].try_into().unwrap());
    let stops = below_minus(from_1);
    if stops == 0 {
        return medium(window);
    }
    let len = 1 + (stops.trailing_zeros() / 8) as usize;
    let negative = from_0 as u8 == b'-';
    // The number after the sign, in one word: a select (cmov), not a
    // branch, as signs of samples are unpredictable.
    let w = if negative { from_1 } else { from_0 };
    let digits = len - usize::from(negative);
    let (digits, scale) = short(w, digits)?;
    Some(Parts {
        digits,
        divisor: divisor(scale, negative),
        len,
        after: window[len],
    })
}

/// The digits (as an integer) and scale of the unsigned number in the
/// first `len` bytes of `w` (at most 8, then a non-digit or the end of the
/// word), if it has the common shape.
#[inline(always)]
fn short(w: u64, len: usize) -> Option<(u64, usize)> {
    let t = w ^ (ONES * u64::from(b'0'));
    let non_digits = non_digit_bytes(t);
    // One digit before the point (`0.12345`, `1.2`): every sample below
    // 10 mV, nearly all of them. Its checks and the point's removal are
    // half the general case's instructions; a mispredicted branch on other
    // shapes costs less than that on mixed data.
    if len >= 3 {
        // The non-digits among the number's bytes: only byte 1, a point.
        let in_number = non_digits & (u64::MAX >> (64 - 8 * len));
        if (in_number == 0x80 << 8) & ((w >> 8) as u8 == b'.') {
            // The integer digit moves up onto the point.
            let digits = ((t & 0xff) << 8) | (t & !0xffff);
            return Some((eight_digits(digits << (8 * (8 - len))), len - 2));
        }
    }
    // The first non-digit is the point (at byte `p`) or the end (p == len;
    // the byte at `len` is a non-digit); the second must be the end.
    let first = non_digits.trailing_zeros(); // 8p + 7, or 64 if none
    let p = (first / 8) as usize;
    let second = (non_digits & non_digits.wrapping_sub(1)).trailing_zeros() / 8;
    let has_point = p < len;
    // Branch-free checks (their outcomes vary from sample to sample): a
    // digit before the point and one after it, nothing else, no leading
    // zero.
    let bad_point = has_point
        & (((w >> (first & 56)) as u8 != b'.') | (second as usize != len) | (p + 1 == len));
    let leading_zero = (w as u8 == b'0') & (p > 1);
    if (p == 0) | bad_point | leading_zero {
        return None;
    }
    if has_point {
        // Drop the point: the integer digits move up one byte onto it, so
        // the digits are contiguous in bytes 1..len; then align the last to
        // byte 7 (the bytes after it fall off the top). At most 7 digits.
        let below_point = (1u64 << (first & 56)) - 1;
        let digits = ((t & below_point) << 8) | (t & (!below_point << 8));
        Some((eight_digits(digits << (8 * (8 - len))), len - p - 1))
    } else {
        Some((eight_digits(t << (8 * (8 - len))), 0))
    }
}

/// [`parts`] of numbers of 9 to 15 bytes, sign included: two words, more
/// instructions.
#[inline(always)]
fn medium(window: &[u8; WINDOW]) -> Option<Parts> {
    let (lo, hi) = window.split_at(8);
    let a = u64::from_le_bytes(lo.try_into().unwrap());
    let b = u64::from_le_bytes(hi.try_into().unwrap());
    let stops = u128::from(below_minus(a)) | (u128::from(below_minus(b)) << 64);
    let len = (stops.trailing_zeros() / 8) as usize;
    let after = *window.get(len)?; // none within the window: refused
    let negative = a as u8 == b'-';
    let neg = usize::from(negative);
    // Digit values; the sign's byte becomes a leading zero.
    let t = (a ^ (ONES * u64::from(b'0'))) & !(u64::from(negative) * 0xff);
    let dots = bytes_equal(a, b'.');
    let point = dots & dots.wrapping_neg();
    // The first non-digit other than the point must be the end; the point
    // must be in the first word.
    let others = u128::from(non_digit_bytes(t) & !point)
        | (u128::from(non_digit_bytes(b ^ (ONES * u64::from(b'0')))) << 64);
    let point_at = (point.trailing_zeros() / 8) as usize; // 8 if none
    if (others.trailing_zeros() as usize / 8 != len) | (point == 0) | (point_at >= len) {
        return None;
    }
    // Digits in `[neg, point_at)`, the point, then `frac` digits.
    let int_digits = point_at - neg;
    let frac = len - point_at - 1;
    let leading_zero = (a >> (8 * neg)) as u8 == b'0';
    if (int_digits == 0) | (frac == 0) | (frac > 8) | (leading_zero & (int_digits > 1)) {
        return None;
    }
    let integer = eight_digits(t << (8 * (8 - point_at)));
    // `point_at <= 7`: the fraction's eight bytes are in the window.
    let rest = &window[point_at + 1..point_at + 9];
    let rest = u64::from_le_bytes(rest.try_into().unwrap()) ^ (ONES * u64::from(b'0'));
    let fraction = eight_digits(rest << (8 * (8 - frac)));
    // Below 10^7 * 10^8 + 10^8 < 2^53: exact.
    let m = integer * POW10_U64[frac] + fraction;
    Some(Parts {
        digits: m,
        divisor: divisor(frac, negative),
        len,
        after,
    })
}

/// `value` (not negative) negated when `negative`, without a branch: signs
/// of samples are unpredictable.
#[inline(always)]
pub(crate) fn with_sign(value: f64, negative: bool) -> f64 {
    f64::from_bits(value.to_bits() | (u64::from(negative) << 63))
}

/// 0x80 in each byte of `w` equal to `byte`, 0 in the others. Exact: no
/// false positives from borrows, unlike the shorter "has zero byte" trick.
#[inline(always)]
pub(crate) fn bytes_equal(w: u64, byte: u8) -> u64 {
    let t = w ^ (ONES * u64::from(byte));
    // Adding 0x7f to a byte's low seven bits sets bit 7 unless they are all
    // zero; no byte carries into the next.
    !(t | ((t & !HIGH) + !HIGH)) & HIGH
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Powers of ten that are exact doubles (Clinger's fast path).
pub(crate) const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

const POW10_U64: [u64; 9] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
];

/// `field` without a leading '+' (which `str::parse` accepts and the fast
/// path does not), unless a '-' follows it: "+-1" must stay refused.
fn unsigned_plus(field: &[u8]) -> &[u8] {
    match field {
        [b'+', rest @ ..] if rest.first() != Some(&b'-') => rest,
        _ => field,
    }
}

/// 0x80 in each byte of `w` below `'-'` (0x2d) or in 0x80..=0xac, 0 in the
/// others. Three operations: it is on the critical path.
#[inline(always)]
fn below_minus(w: u64) -> u64 {
    // Per byte (b | 0x80) - 0x2d: no byte borrows from the next, and bit 7
    // stays set iff b is in 0x2d..0x80 or 0xad..=0xff.
    !((w | HIGH) - ONES * 0x2d) & HIGH
}

/// 0x80 in each byte of `t` that is not a digit's value (0..=9), 0 in the
/// others; `t` is ASCII xor '0'.
#[inline(always)]
fn non_digit_bytes(t: u64) -> u64 {
    // Adding 0x76 to a byte's low seven bits sets bit 7 iff they are 10 or
    // more; bytes at 0x80 or above have it already. No byte carries into
    // the next.
    (t | ((t & !HIGH) + ONES * 0x76)) & HIGH
}

/// The value of eight decimal digits, byte 0 the most significant, given as
/// digit values (ASCII minus '0'); zero bytes at the bottom are leading
/// zeros.
#[inline(always)]
fn eight_digits(v: u64) -> u64 {
    // Pairs of digits into bytes 0, 2, 4, 6 (each at most 99, no carry),
    // then the four pairs into one number with two multiplications whose
    // high halves line the pairs up (simdjson's parse_eight_digits_unrolled).
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    const MASK: u64 = 0x0000_00ff_0000_00ff;
    let v1 = (v & MASK).wrapping_mul(100 + (1_000_000 << 32));
    let v2 = ((v >> 16) & MASK).wrapping_mul(1 + (10_000 << 32));
    (v1.wrapping_add(v2) >> 32) & 0xffff_ffff
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn at(s: &str) -> Option<(f64, usize)> {
        let mut w = [b','; WINDOW];
        w[..s.len()].copy_from_slice(s.as_bytes());
        decimal(&w)
    }

    #[test]
    fn eight_digits_reads_most_significant_first() {
        let ascii = u64::from_le_bytes(*b"12345678") ^ (ONES * u64::from(b'0'));
        assert_eq!(eight_digits(ascii), 12_345_678);
        assert_eq!(eight_digits(ascii << 40), 123);
    }

    #[test]
    fn common_shapes_are_taken_whole() {
        for (s, v) in [
            ("1.07321", 1.07321f64),
            ("-0.04532", -0.04532),
            ("0.5", 0.5),
            ("-0", -0.0),
            ("-0.0", -0.0),
            ("0", 0.0),
            ("12345678", 12345678.0),
            ("-1234567", -1234567.0),
            ("0.1234567", 0.1234567),
            ("-0.12345678", -0.12345678),
            ("1234567.1234567", 1234567.1234567),
            ("123.456789", 123.456789),
            ("9.0", 9.0),
            ("-9.999999", -9.999999),
            ("0.000001", 0.000001),
        ] {
            let (value, len) = at(s).unwrap_or_else(|| panic!("{s}"));
            assert_eq!((value.to_bits(), len), (v.to_bits(), s.len()), "{s}");
        }
    }

    #[test]
    fn other_shapes_are_refused() {
        for refused in [
            "",
            "-",
            "01",
            "-01",
            "00.5",
            ".5",
            "-.5",
            "1.",
            "1.5e3",
            "1.5.3",
            "1.5]",
            "1-2",
            "1..2",
            "-1.2.3",
            "0.5-",
            "1.5e",
            "1.x5",
            "123456789",
            "1.123456789",
            "12345678.5",
            "1234567.12345678",
        ] {
            assert_eq!(at(refused), None, "{refused}");
        }
    }

    /// Texts `str::parse::<f64>` accepts, of every shape, and near misses.
    fn field() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => "[+-]?[0-9]{0,9}(\\.[0-9]{0,10})?",
            2 => "[+-]?[0-9]{0,20}(\\.[0-9]{0,20})?([eE][+-]?[0-9]{0,3})?",
            1 => "[+-]?(inf|infinity|NaN|nan|Inf)",
            1 => "[ +\\-.,0-9eE]{0,18}",
        // Around the one-digit-before-the-point shortcut.
        4 => "[+-]?[0-9][ .,0-9eE]{0,9}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        #[test]
        fn parse_f64_is_str_parse(text in field()) {
            let expected = text.parse::<f64>().ok().map(f64::to_bits);
            prop_assert_eq!(parse_f64(text.as_bytes()).map(f64::to_bits), expected, "{}", text);
        }

        #[test]
        fn parse_f64_in_ignores_the_bytes_around_the_field(
            before in "[0-9,.]{0,3}",
            text in field(),
            after in "[0-9,.e ]{0,20}",
        ) {
            let buf = format!("{before}{text}{after}");
            let range = before.len()..before.len() + text.len();
            prop_assert_eq!(
                parse_f64_in(buf.as_bytes(), range).map(f64::to_bits),
                parse_f64(text.as_bytes()).map(f64::to_bits),
                "{:?} in {:?}", text, buf
            );
        }

        #[test]
        fn parse_f64_refuses_what_is_not_utf8(bytes in prop::collection::vec(any::<u8>(), 0..20)) {
            let expected = std::str::from_utf8(&bytes).ok().and_then(|s| s.parse::<f64>().ok());
            prop_assert_eq!(parse_f64(&bytes).map(f64::to_bits), expected.map(f64::to_bits));
        }
    }
}
