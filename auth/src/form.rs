//! Strict `application/x-www-form-urlencoded` decoding for the token endpoint
//! and for Basic credentials (RFC 6749 §2.3.1 form-encodes id and secret).
//!
//! Bad percent-escapes and invalid UTF-8 are errors, not replacement
//! characters: a secret that decodes "approximately" must not be compared.

/// Decodes a form body into `(name, value)` pairs, in order, repeats kept.
pub(crate) fn parse(body: &[u8]) -> Result<Vec<(String, String)>, &'static str> {
    body.split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            Ok((decode(name)?, decode(value)?))
        })
        .collect()
}

/// Decodes one form-encoded component: `+` is a space, `%XX` a byte.
pub(crate) fn decode(input: &[u8]) -> Result<String, &'static str> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = input
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .ok_or("bad percent-escape")?;
                out.push(hex_value(hex[0]) << 4 | hex_value(hex[1]));
                i += 2;
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "not UTF-8")
}

/// Value of an ASCII hex digit (already checked to be one).
fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plus_and_percent_escapes_decode() {
        assert_eq!(decode(b"a+b%3Dc%2b%C3%A9").unwrap(), "a b=c+é");
    }

    #[test]
    fn truncated_or_non_hex_escapes_are_errors() {
        for bad in [&b"%"[..], b"%4", b"%G1", b"%+1", b"ab%"] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        assert!(decode(b"%FF").is_err());
    }

    #[test]
    fn pairs_keep_order_repeats_and_missing_values() {
        let pairs = parse(b"a=1&&b&a=2=3").unwrap();
        let expected = [("a", "1"), ("b", ""), ("a", "2=3")];
        assert_eq!(pairs, expected.map(|(n, v)| (n.to_owned(), v.to_owned())));
    }
}
