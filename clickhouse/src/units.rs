//! How [`Units`] is stored: its text (`mV`, `uV`) in a `LowCardinality(String)`
//! column (`ecgs.units`, `blocks.units`), exactly what the gateway wrote
//! before the rows were typed. Use as `#[serde(with = "crate::units")]`.
//!
//! Reading a value that is not one of those texts is an error naming it,
//! never a silent default: only `Units::as_str` writes these columns.

use std::fmt;

use ecg_schemas::Units;
use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;

pub fn serialize<S: Serializer>(units: &Units, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(units.as_str())
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Units, D::Error> {
    d.deserialize_str(Text)
}

/// Reads the text without allocating (RowBinary lends the string).
struct Text;

impl Visitor<'_> for Text {
    type Value = Units;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a unit, `mV` or `uV`")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Units, E> {
        Units::parse(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Row {
        #[serde(with = "crate::units")]
        units: Units,
    }

    #[test]
    fn units_are_stored_as_the_text_the_gateway_always_wrote() {
        for (units, text) in [(Units::Millivolts, "mV"), (Units::Microvolts, "uV")] {
            let json = serde_json::to_string(&Row { units }).unwrap();
            assert_eq!(json, format!(r#"{{"units":"{text}"}}"#));
            assert_eq!(serde_json::from_str::<Row>(&json).unwrap(), Row { units });
        }
        let err = serde_json::from_str::<Row>(r#"{"units":"V"}"#).unwrap_err();
        assert!(err.to_string().contains("`mV` or `uV`"), "{err}");
    }
}
