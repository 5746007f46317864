//! JSON decoding that says where a body is wrong, with a fast path for
//! chunk bodies ([`fast`]).
//!
//! serde_json's own errors give a line and column; clients need the field.
//! `serde_path_to_error` tracks the path while decoding, which we render as a
//! JSON pointer (RFC 6901), e.g. `/samples/V1/17`.

use serde::de::DeserializeOwned;

use ecg_schemas::Invalid;
use ecg_schemas::api::ChunkRequest;
use ecg_schemas::validate::escape;

pub mod fast;

/// Decodes a chunk body: the fast path for the common shape, serde (and its
/// precise errors) for everything else. Both give identical results.
pub fn decode_chunk(body: &[u8]) -> Result<ChunkRequest, Invalid> {
    match fast::chunk(body) {
        Some(chunk) => Ok(chunk),
        None => decode(body),
    }
}

/// Decodes `body` as `T`, or says which field is wrong and why.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, Invalid> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let (mut pointer, exact) = pointer(e.path());
        let inner = e.into_inner();
        if inner.is_syntax()
            && let Some(word) = non_finite_at(body, inner.line(), inner.column())
        {
            return Invalid::new(&pointer, non_finite_message(&pointer, &word));
        }
        let message = inner.to_string();
        // serde_json appends " at line L column C". For a wrong value the
        // pointer says it better; a syntax error is between values, where
        // the pointer is only the nearest enclosing one (`exact` is false
        // inside an object whose key was not read yet), so it keeps both.
        let message = match message.rfind(" at line ") {
            Some(i) if exact && inner.is_data() => message[..i].to_string(),
            _ => message,
        };
        // serde names a missing field in the message only; the pointer
        // should name it too.
        if inner.is_data()
            && let Some(name) = message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.strip_suffix('`'))
        {
            pointer.push('/');
            pointer.push_str(&escape(name));
        }
        Invalid::new(pointer, message)
    })?;
    de.end()
        .map_err(|e| Invalid::new("", format!("trailing data after the JSON body: {e}")))?;
    Ok(value)
}

/// The path as a JSON pointer, and whether it is exact: it stops before
/// the first segment serde could not name (a syntax error before a map
/// key was read), so that it always points at a real place in the body.
fn pointer(path: &serde_path_to_error::Path) -> (String, bool) {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        out.push('/');
        match seg {
            Segment::Seq { index } => out.push_str(&index.to_string()),
            Segment::Map { key } | Segment::Enum { variant: key } => out.push_str(&escape(key)),
            Segment::Unknown => {
                out.pop();
                return (out, false);
            }
        }
    }
    (out, true)
}

/// The word at a syntax error's position when it is one of the spellings
/// of NaN or infinity that JSON does not have (`NaN`, `Infinity`, `-inf`,
/// ...), with its sign. serde_json's column is 1-based in bytes, and points
/// at the offending byte or just after a sign.
fn non_finite_at(body: &[u8], line: usize, column: usize) -> Option<String> {
    let line_start = body
        .split_inclusive(|&b| b == b'\n')
        .take(line.saturating_sub(1))
        .map(<[u8]>::len)
        .sum::<usize>();
    let mut at = (line_start + column.saturating_sub(1)).min(body.len());
    if matches!(body.get(at), Some(b'-' | b'+')) {
        at += 1;
    }
    // Back to the start of the token: letters, then an optional sign.
    let mut start = at;
    while start > line_start && body[start - 1].is_ascii_alphabetic() {
        start -= 1;
    }
    let mut end = start;
    while end < body.len() && body[end].is_ascii_alphabetic() {
        end += 1;
    }
    let word = std::str::from_utf8(&body[start..end]).ok()?;
    let lower = word.to_ascii_lowercase();
    if !matches!(lower.as_str(), "nan" | "inf" | "infinity") {
        return None;
    }
    let sign = match start.checked_sub(1).map(|i| body[i]) {
        Some(b'-') => "-",
        Some(b'+') => "+",
        _ => "",
    };
    Some(format!("{sign}{word}"))
}

/// Says that `word` (a NaN or an infinity) is no sample, as the CSV reader
/// says of a NaN it reads.
fn non_finite_message(pointer: &str, word: &str) -> String {
    let what = match pointer.rsplit_once('/') {
        Some((_, index)) if index.parse::<u64>().is_ok() => format!("sample {index}"),
        _ => "the value".to_string(),
    };
    format!(
        "{what} is {word}; samples must be finite numbers (JSON has no NaN or Infinity, and neither has an ECG)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecg_schemas::api::CreateEcg;

    #[test]
    fn wrong_sample_type_points_at_the_sample() {
        let err = decode::<ChunkRequest>(br#"{"seq":0,"samples":{"V1":[1.0,"x"]}}"#).unwrap_err();
        assert_eq!(err.field, "/samples/V1/1");
        assert!(err.message.contains("invalid type"), "{}", err.message);
    }

    #[test]
    fn unknown_field_is_named() {
        let err = decode::<ChunkRequest>(br#"{"seq":0,"samples":{},"sequence":1}"#).unwrap_err();
        assert!(
            err.message.contains("unknown field `sequence`"),
            "{}",
            err.message
        );
    }

    #[test]
    fn missing_field_is_named() {
        let err = decode::<CreateEcg>(br#"{"device_id":"d","leads":["I"]}"#).unwrap_err();
        assert!(err.message.contains("sample_rate_hz"), "{}", err.message);
    }

    #[test]
    fn negative_seq_points_at_seq() {
        let err = decode::<ChunkRequest>(br#"{"seq":-1,"samples":{}}"#).unwrap_err();
        assert_eq!(err.field, "/seq");
    }

    #[test]
    fn missing_field_is_the_pointer() {
        let err = decode::<ChunkRequest>(br#"{"samples":{"I":[1]}}"#).unwrap_err();
        assert_eq!(err.field, "/seq", "{}", err.message);
        let err = decode::<CreateEcg>(br#"{"sample_rate_hz":500,"leads":["I"]}"#).unwrap_err();
        assert_eq!(err.field, "/device_id", "{}", err.message);
    }

    #[test]
    fn a_syntax_error_points_at_a_real_place_and_says_where() {
        let err = decode::<ChunkRequest>(br#"{"seq":0,"samples":{"I":[1,2}}"#).unwrap_err();
        assert!(!err.field.contains('?'), "{err:?}");
        assert!(err.message.contains("column"), "{err:?}");
        let err = decode::<ChunkRequest>(br#"{"seq":0,"samples":{"I" [1]}}"#).unwrap_err();
        assert!(!err.field.contains('?'), "{err:?}");
    }

    #[test]
    fn nan_and_infinity_are_named_as_samples() {
        for (body, field, word) in [
            (r#"{"seq":0,"samples":{"I":[NaN]}}"#, "/samples/I/0", "NaN"),
            (
                r#"{"seq":0,"samples":{"I":[1, Infinity]}}"#,
                "/samples/I/1",
                "Infinity",
            ),
            (
                r#"{"seq":0,"samples":{"I":[1,2,-Infinity]}}"#,
                "/samples/I/2",
                "-Infinity",
            ),
            (
                "{\"seq\":0,\n\"samples\":{\"I\":[\n1,\n  nan]}}",
                "/samples/I/1",
                "nan",
            ),
        ] {
            let err = decode::<ChunkRequest>(body.as_bytes()).unwrap_err();
            assert_eq!(err.field, field, "{body}: {err:?}");
            let index = field.rsplit('/').next().unwrap();
            assert_eq!(
                err.message,
                format!(
                    "sample {index} is {word}; samples must be finite numbers (JSON has no NaN or Infinity, and neither has an ECG)"
                ),
                "{body}"
            );
        }
        // A word that is not a NaN stays serde's own error.
        let err = decode::<ChunkRequest>(br#"{"seq":0,"samples":{"I":[nope]}}"#).unwrap_err();
        assert!(!err.message.contains("finite"), "{err:?}");
    }

    #[test]
    fn syntax_error_is_reported() {
        assert!(decode::<ChunkRequest>(b"{").is_err());
        assert!(decode::<ChunkRequest>(br#"{"seq":0,"samples":{}} x"#).is_err());
    }
}
