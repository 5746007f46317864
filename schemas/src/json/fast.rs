//! A fast path for the one JSON body that carries bulk data, the chunk:
//! `{"seq": n, "samples": {"lead": [numbers...], ...}, "final": bool}`.
//!
//! serde_json decodes numbers one token at a time through the serde data
//! model; a chunk is almost nothing but numbers, so that costs most of the
//! request. This parser recognises the common shape directly and parses each
//! number with `fast-float2` (correctly rounded, like serde_json with
//! `float_roundtrip`, so both paths give bit-identical samples). It accepts
//! exactly the JSON grammar for what it recognises; anything else (escapes in
//! strings, unknown or repeated fields, invalid numbers, odd nesting) makes it
//! give up with `None`, and the caller decodes with serde, which then either
//! succeeds the slow way or reports the precise error.

use std::collections::BTreeMap;

use crate::api::ChunkRequest;

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

/// Powers of ten that are exact doubles.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

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
        loop {
            let lead = std::str::from_utf8(self.string()?).ok()?.to_string();
            self.ws();
            self.byte(b':')?;
            self.ws();
            let values = self.numbers()?;
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
    fn numbers(&mut self) -> Option<Vec<f64>> {
        self.byte(b'[')?;
        self.ws();
        // A sample takes at least two bytes ("0,"): reserve for the common
        // case without trusting the body for more than its own size.
        let mut out = Vec::with_capacity((self.s.len() - self.i) / 16);
        if self.peek()? == b']' {
            self.i += 1;
            return Some(out);
        }
        loop {
            out.push(self.number()?);
            // Separators are almost always a bare comma; whitespace is rare.
            match self.next()? {
                b',' => {}
                b']' => return Some(out),
                b' ' | b'\n' | b'\r' | b'\t' => {
                    self.ws();
                    match self.next()? {
                        b',' => {}
                        b']' => return Some(out),
                        _ => return None,
                    }
                }
                _ => return None,
            }
            self.ws();
        }
    }

    /// One number in JSON's grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`,
    /// scanned and converted in one pass.
    ///
    /// Most samples have at most 15 significant digits and a small decimal
    /// exponent: then the digits form an integer `m < 2^53` and `10^|e|`
    /// (|e| <= 22) are both exact doubles, so `m * 10^e` or `m / 10^-e` is one
    /// IEEE operation, correctly rounded (Clinger's fast path). Anything else
    /// is converted by `fast-float2`, also correctly rounded. The grammar is
    /// checked here because `fast-float2` accepts forms JSON does not (`inf`,
    /// `+1`, `.5`, `1.`).
    fn number(&mut self) -> Option<f64> {
        let start = self.i;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.i += 1;
        }
        let mut mantissa: u64 = 0;
        let mut digits = 0u32;
        let mut exponent: i64 = 0;
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => self.accumulate(&mut mantissa, &mut digits),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return None;
            }
            let before = digits;
            self.accumulate(&mut mantissa, &mut digits);
            exponent -= i64::from(digits - before);
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            let sign = match self.peek() {
                Some(b'-') => {
                    self.i += 1;
                    -1
                }
                Some(b'+') => {
                    self.i += 1;
                    1
                }
                _ => 1,
            };
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return None;
            }
            let mut e: i64 = 0;
            while let Some(d @ b'0'..=b'9') = self.peek() {
                e = (e * 10 + i64::from(d - b'0')).min(1 << 32);
                self.i += 1;
            }
            exponent += sign * e;
        }
        if digits <= 15 && (-22..=22).contains(&exponent) {
            // `digits` counts leading zeros of a fraction too, so it only
            // overestimates: the mantissa is below 10^15 < 2^53, exact, and
            // the result (below 1e37) cannot overflow.
            let m = mantissa as f64;
            let scaled = if exponent >= 0 {
                m * POW10[exponent as usize]
            } else {
                m / POW10[(-exponent) as usize]
            };
            return Some(if negative { -scaled } else { scaled });
        }
        let value: f64 = fast_float2::parse(&self.s[start..self.i]).ok()?;
        // JSON has no infinities: serde_json refuses numbers that overflow.
        value.is_finite().then_some(value)
    }

    /// Consumes digits into `mantissa` (wrapping: only used when `digits`
    /// stays small enough for it to be exact).
    fn accumulate(&mut self, mantissa: &mut u64, digits: &mut u32) {
        while let Some(d @ b'0'..=b'9') = self.peek() {
            *mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
            *digits += 1;
            self.i += 1;
        }
    }
}
