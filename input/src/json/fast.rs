//! A fast path for the one JSON body that carries bulk data, the chunk:
//! `{"seq": n, "samples": {"lead": [numbers...], ...}, "final": bool}`.
//!
//! serde_json decodes numbers one token at a time through the serde data
//! model; a chunk is almost nothing but numbers, so that costs most of the
//! request. This parser recognises the common shape directly. Numbers of the
//! common shape (`-0.12345,`: up to 15 bytes, at most 8 digits after the
//! point, no exponent) go through [`crate::number`]'s SWAR fast path; all
//! others through a one-pass scanner with Clinger's fast path and
//! `fast-float2` behind it. Every path is correctly rounded, like serde_json
//! with `float_roundtrip`, so the samples are bit-identical to serde's
//! (property-tested in `tests/json_fast.rs`, fuzzed by `fuzz/chunk_json`).
//!
//! It accepts exactly the JSON grammar for what it recognises; anything else
//! (escapes in strings, unknown or repeated fields, invalid numbers, odd
//! nesting) makes it give up with `None`, and the caller decodes with serde,
//! which then either succeeds the slow way or reports the precise error.

use std::collections::BTreeMap;

use ecg_schemas::api::ChunkRequest;

use crate::number::{self, POW10};

/// Parses a chunk body of the common shape, or `None` to use the slow path.
pub fn chunk(body: &[u8]) -> Option<ChunkRequest> {
    let mut p = Parser { s: body, i: 0 };
    let (mut seq, mut samples, mut is_final) = (None, None, None);
    p.ws();
    p.byte(b'{')?;
    p.ws();
    if p.peek()? != b'}' {
        loop {
            let key = p.string()?;
            p.ws();
            p.byte(b':')?;
            p.ws();
            match key {
                b"seq" if seq.is_none() => seq = Some(p.u32()?),
                b"final" if is_final.is_none() => is_final = Some(p.boolean()?),
                b"samples" if samples.is_none() => samples = Some(p.samples()?),
                _ => return None,
            }
            p.ws();
            match p.next()? {
                b',' => p.ws(),
                b'}' => break,
                _ => return None,
            }
        }
    } else {
        p.i += 1;
    }
    p.ws();
    if p.i != body.len() {
        return None;
    }
    Some(ChunkRequest {
        seq: seq?,
        samples: samples?,
        r#final: is_final.unwrap_or(false),
    })
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.i += 1;
        Some(b)
    }

    fn byte(&mut self, expected: u8) -> Option<()> {
        (self.next()? == expected).then_some(())
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.i += 1;
        }
    }

    /// A string without escapes or control characters, as raw bytes.
    fn string(&mut self) -> Option<&'a [u8]> {
        self.byte(b'"')?;
        let start = self.i;
        loop {
            match self.next()? {
                b'"' => return Some(&self.s[start..self.i - 1]),
                b'\\' | 0..=0x1f => return None,
                _ => {}
            }
        }
    }

    fn boolean(&mut self) -> Option<bool> {
        if self.s[self.i..].starts_with(b"true") {
            self.i += 4;
            Some(true)
        } else if self.s[self.i..].starts_with(b"false") {
            self.i += 5;
            Some(false)
        } else {
            None
        }
    }

    /// A non-negative integer that fits in u32, in JSON's integer grammar.
    fn u32(&mut self) -> Option<u32> {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        let digits = &self.s[start..self.i];
        if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') {
            return None;
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        std::str::from_utf8(digits).ok()?.parse().ok()
    }

    /// `{"lead": [numbers], ...}`.
    fn samples(&mut self) -> Option<BTreeMap<String, Vec<f64>>> {
        let mut map = BTreeMap::new();
        self.byte(b'{')?;
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(map);
        }
        // Leads of a valid chunk all have the length of the first: count
        // that one, then reserve as much for the others. A body whose leads
        // differ is refused later, by validation; until then it must not
        // make us hold much more memory than its samples need: never
        // reserve more than the rest of the body could fill, and give back
        // what a short lead left unused.
        let mut first_len = None;
        loop {
            let lead = std::str::from_utf8(self.string()?).ok()?.to_string();
            self.ws();
            self.byte(b':')?;
            self.ws();
            let rest = &self.s[self.i..];
            let capacity = (*first_len.get_or_insert_with(|| array_len(rest))).min(max_len(rest));
            let mut values = self.numbers(capacity)?;
            if values.len() < values.capacity() / 2 {
                values.shrink_to_fit();
            }
            if map.insert(lead, values).is_some() {
                return None;
            }
            self.ws();
            match self.next()? {
                b',' => self.ws(),
                b'}' => return Some(map),
                _ => return None,
            }
        }
    }

    /// `[number, ...]`.
    fn numbers(&mut self, capacity: usize) -> Option<Vec<f64>> {
        let (values, end) = numbers(self.s, self.i, capacity)?;
        self.i = end;
        Some(values)
    }
}

/// The array of numbers at `s[i]` and the index after its `]`.
///
/// A function of its own over a local index, not a `Parser` method inlined
/// into [`chunk`]: inlined, the compiler kept the index and the output's
/// length in memory, a store and a dependent load on every sample (the next
/// number's position depends on the previous one's length).
#[inline(never)]
fn numbers(s: &[u8], mut i: usize, capacity: usize) -> Option<(Vec<f64>, usize)> {
    if s.get(i) != Some(&b'[') {
        return None;
    }
    i = skip_ws(s, i + 1);
    let mut out = Vec::with_capacity(capacity);
    if s.get(i) == Some(&b']') {
        return Some((out, i + 1));
    }
    // The fast path runs in batches, in a loop without calls so that the
    // index stays in a register (`Vec::push` would keep the vector's length
    // in memory, for its out-of-line growth path): numbers of the common
    // shape, each followed by a bare comma, split into exact parts; then
    // the batch's conversions and divisions (see `number::Parts`).
    let mut digits = [0; BATCH];
    let mut divisors = [1.0; BATCH];
    loop {
        let mut k = 0;
        while k < BATCH
            && let Some(window) = s.get(i..i + number::WINDOW)
            && let Some(parts) = number::parts(window.try_into().unwrap())
            && parts.after == b','
        {
            digits[k] = parts.digits;
            divisors[k] = parts.divisor;
            k += 1;
            i += parts.len + 1;
        }
        out.extend(
            digits[..k]
                .iter()
                .zip(&divisors[..k])
                .map(|(&m, &d)| number::quotient(m, d)),
        );
        if k == BATCH {
            continue;
        }
        // Anything else: whitespace, the last number of the array, other
        // shapes, the last bytes of the body.
        let (value, end) = any_number(s, skip_ws(s, i))?;
        out.push(value);
        i = skip_ws(s, end);
        match s.get(i) {
            Some(b',') => i += 1,
            Some(b']') => return Some((out, i + 1)),
            _ => return None,
        }
    }
}

/// Samples parsed between batches of divisions.
const BATCH: usize = 32;

fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = s.get(i) {
        i += 1;
    }
    i
}

/// The number at `s[i]`, of any shape, and the index after it.
#[inline(never)]
fn any_number(s: &[u8], i: usize) -> Option<(f64, usize)> {
    if let Some(window) = s.get(i..i + number::WINDOW)
        && let Some((value, len)) = number::decimal(window.try_into().unwrap())
    {
        return Some((value, i + len));
    }
    long_number(s, i)
}

/// Any number in JSON's grammar, `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`,
/// scanned and converted in one pass.
///
/// With at most 15 significant digits and a small decimal exponent, the
/// digits form an integer `m < 2^53` and `10^|e|` (|e| <= 22) are both exact
/// doubles, so `m * 10^e` or `m / 10^-e` is one IEEE operation, correctly
/// rounded (Clinger's fast path). Anything else is converted by
/// `fast-float2`, also correctly rounded. The grammar is checked here
/// because `fast-float2` accepts forms JSON does not (`inf`, `+1`, `.5`,
/// `1.`).
#[inline(never)]
fn long_number(s: &[u8], at: usize) -> Option<(f64, usize)> {
    let mut i = at;
    let negative = s.get(i) == Some(&b'-');
    i += usize::from(negative);
    let mut mantissa: u64 = 0;
    let mut digits = 0u32;
    let mut exponent: i64 = 0;
    match s.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => i = accumulate(s, i, &mut mantissa, &mut digits),
        _ => return None,
    }
    if s.get(i) == Some(&b'.') {
        i += 1;
        if !matches!(s.get(i), Some(b'0'..=b'9')) {
            return None;
        }
        let before = digits;
        i = accumulate(s, i, &mut mantissa, &mut digits);
        exponent -= i64::from(digits - before);
    }
    if let Some(b'e' | b'E') = s.get(i) {
        i += 1;
        let sign = match s.get(i) {
            Some(b'-') => {
                i += 1;
                -1
            }
            Some(b'+') => {
                i += 1;
                1
            }
            _ => 1,
        };
        if !matches!(s.get(i), Some(b'0'..=b'9')) {
            return None;
        }
        let mut e: i64 = 0;
        while let Some(&d @ b'0'..=b'9') = s.get(i) {
            e = (e * 10 + i64::from(d - b'0')).min(1 << 32);
            i += 1;
        }
        exponent += sign * e;
    }
    if digits <= 15 && (-22..=22).contains(&exponent) {
        // `digits` counts leading zeros of a fraction too, so it only
        // overestimates: the mantissa is below 10^15 < 2^53, exact, and the
        // result (below 1e37) cannot overflow.
        let m = mantissa as f64;
        let scaled = if exponent >= 0 {
            m * POW10[exponent as usize]
        } else {
            m / POW10[(-exponent) as usize]
        };
        return Some((number::with_sign(scaled, negative), i));
    }
    let value: f64 = fast_float2::parse(&s[at..i]).ok()?;
    // JSON has no infinities: serde_json refuses numbers that overflow.
    value.is_finite().then_some((value, i))
}

/// Consumes digits from `s[i]` into `mantissa` (wrapping: only used when
/// `digits` stays small enough for it to be exact); the index after them.
fn accumulate(s: &[u8], mut i: usize, mantissa: &mut u64, digits: &mut u32) -> usize {
    while let Some(&d @ b'0'..=b'9') = s.get(i) {
        *mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
        *digits += 1;
        i += 1;
    }
    i
}

/// The number of values in the array of numbers that `s` starts with, to
/// reserve for: commas before the first ']', plus one. Only an estimate on
/// bodies that are not arrays of numbers (then the parser gives up anyway).
fn array_len(s: &[u8]) -> usize {
    count_values(s).min(max_len(s))
}

/// The most numbers `s` can hold (a digit and a comma each).
fn max_len(s: &[u8]) -> usize {
    s.len() / 2 + 1
}

fn count_values(s: &[u8]) -> usize {
    let mut commas = 0;
    let mut words = s.chunks_exact(8);
    for word in &mut words {
        let w = u64::from_le_bytes(word.try_into().unwrap());
        let close = number::bytes_equal(w, b']');
        let comma = number::bytes_equal(w, b',');
        if close != 0 {
            // Commas in the bytes before the first ']'.
            let before = close.trailing_zeros();
            return commas + (comma & ((1u64 << before) - 1)).count_ones() as usize + 1;
        }
        commas += comma.count_ones() as usize;
    }
    for &b in words.remainder() {
        match b {
            b']' => break,
            b',' => commas += 1,
            _ => {}
        }
    }
    commas + 1
}
