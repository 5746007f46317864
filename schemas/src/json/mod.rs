//! JSON decoding that says where a body is wrong, with a fast path for
//! chunk bodies ([`fast`]).
//!
//! serde_json's own errors give a line and column; clients need the field.
//! `serde_path_to_error` tracks the path while decoding, which we render as a
//! JSON pointer (RFC 6901), e.g. `/samples/V1/17`.

use serde::de::DeserializeOwned;

use crate::Invalid;
use crate::api::ChunkRequest;

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
        let pointer = pointer(e.path());
        let inner = e.into_inner();
        // serde_json appends " at line L column C"; the pointer says it better.
        let message = inner.to_string();
        let message = match message.rfind(" at line ") {
            Some(i) if inner.is_data() || inner.is_syntax() || inner.is_eof() => {
                message[..i].to_string()
            }
            _ => message,
        };
        Invalid::new(pointer, message)
    })?;
    de.end()
        .map_err(|e| Invalid::new("", format!("trailing data after the JSON body: {e}")))?;
    Ok(value)
}

fn pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        out.push('/');
        match seg {
            Segment::Seq { index } => out.push_str(&index.to_string()),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                out.push_str(&key.replace('~', "~0").replace('/', "~1"))
            }
            Segment::Unknown => out.push('?'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ChunkRequest, CreateEcg};

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
    fn syntax_error_is_reported() {
        assert!(decode::<ChunkRequest>(b"{").is_err());
        assert!(decode::<ChunkRequest>(br#"{"seq":0,"samples":{}} x"#).is_err());
    }
}
