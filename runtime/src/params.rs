//! Query strings read strictly, the same way by every service: an unknown,
//! repeated or malformed parameter is a [`ParamError`] naming it, never
//! silently ignored. Each service turns the error into its own 400 and
//! names the field its way (the gateway as `?seq`, beside a body's JSON
//! pointers; the query API, which reads no bodies, as `limit`).

use std::ops::RangeInclusive;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A query parameter that is wrong: which, why, and the limit it passed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParamError {
    /// The parameter's name, as in the query string.
    pub name: String,
    pub message: String,
    pub limit: Option<u64>,
}

impl ParamError {
    fn new(name: &str, message: impl Into<String>) -> Self {
        ParamError {
            name: name.into(),
            message: message.into(),
            limit: None,
        }
    }
}

/// The decoded `key=value` pairs of a query string.
#[derive(Debug, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Decodes `raw`, refusing any key not in `allowed`.
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Self, ParamError> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if let Some((k, _)) = pairs.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
            let reads = if allowed.is_empty() {
                "this endpoint reads no query parameters".to_string()
            } else {
                format!("this endpoint reads {allowed:?}")
            };
            return Err(ParamError::new(
                k,
                format!("unknown query parameter {k:?}; {reads}"),
            ));
        }
        Ok(Params { pairs })
    }

    /// Every value of a repeatable parameter, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The value of a parameter given at most once.
    pub fn one(&self, name: &str) -> Result<Option<&str>, ParamError> {
        match self.all(name).as_slice() {
            [] => Ok(None),
            [v] => Ok(Some(v)),
            _ => Err(ParamError::new(
                name,
                format!("{name} is given more than once"),
            )),
        }
    }

    /// A whole number of 32 bits (its range is checked by the caller).
    pub fn u32(&self, name: &str) -> Result<Option<u32>, ParamError> {
        self.one(name)?
            .map(|v| {
                v.parse().map_err(|_| {
                    ParamError::new(
                        name,
                        format!(
                            "{name} must be a whole number from 0 to {}, not {v:?}",
                            u32::MAX
                        ),
                    )
                })
            })
            .transpose()
    }

    /// An integer in `range`; outside it, the error names the bound passed.
    pub fn int(&self, name: &str, range: RangeInclusive<u64>) -> Result<Option<u64>, ParamError> {
        let Some(v) = self.one(name)? else {
            return Ok(None);
        };
        let n: u64 = v
            .parse()
            .map_err(|_| ParamError::new(name, format!("{name} must be an integer, not {v:?}")))?;
        let (bound, word) = if n < *range.start() {
            (*range.start(), "least")
        } else if n > *range.end() {
            (*range.end(), "most")
        } else {
            return Ok(Some(n));
        };
        Err(ParamError {
            limit: Some(bound),
            ..ParamError::new(name, format!("{name} must be at {word} {bound}"))
        })
    }

    /// `true` or `false`.
    pub fn boolean(&self, name: &str) -> Result<Option<bool>, ParamError> {
        self.one(name)?
            .map(|v| match v {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(ParamError::new(
                    name,
                    format!("{name} must be true or false, not {v:?}"),
                )),
            })
            .transpose()
    }

    /// An RFC 3339 timestamp.
    pub fn time(&self, name: &str) -> Result<Option<OffsetDateTime>, ParamError> {
        self.one(name)?
            .map(|v| {
                OffsetDateTime::parse(v, &Rfc3339).map_err(|e| {
                    ParamError::new(name, format!("{name} must be an RFC 3339 timestamp: {e}"))
                })
            })
            .transpose()
    }

    /// One of `choices` (name and a value, e.g. a window and its seconds).
    pub fn choice<T: Copy>(
        &self,
        name: &str,
        choices: &[(&'static str, T)],
    ) -> Result<Option<(&'static str, T)>, ParamError> {
        let Some(v) = self.one(name)? else {
            return Ok(None);
        };
        choices
            .iter()
            .copied()
            .find(|(c, _)| *c == v)
            .map(Some)
            .ok_or_else(|| {
                let names: Vec<&str> = choices.iter().map(|(c, _)| *c).collect();
                ParamError::new(name, format!("{name} must be one of {names:?}, not {v:?}"))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name<T: std::fmt::Debug>(r: Result<T, ParamError>) -> String {
        r.unwrap_err().name
    }

    #[test]
    fn unknown_repeated_and_malformed_parameters_are_named() {
        assert_eq!(
            name(Params::parse(Some("seq=1&sequence=2"), &["seq"])),
            "sequence"
        );
        let e = Params::parse(Some("x=1"), &[]).unwrap_err();
        assert!(e.message.contains("reads no query parameters"), "{e}");
        let p = Params::parse(Some("seq=1&seq=2"), &["seq"]).unwrap();
        assert_eq!(name(p.u32("seq")), "seq");
        let p = Params::parse(Some("seq=abc&final=yes&at=noon"), &["seq", "final", "at"]).unwrap();
        assert_eq!(name(p.u32("seq")), "seq");
        assert_eq!(name(p.boolean("final")), "final");
        assert_eq!(name(p.time("at")), "at");
        let p = Params::parse(Some("seq=7&final=true&w=10s&w=1s"), &["seq", "final", "w"]).unwrap();
        assert_eq!(p.u32("seq").unwrap(), Some(7));
        assert_eq!(p.boolean("final").unwrap(), Some(true));
        assert_eq!(p.all("w"), ["10s", "1s"]);
        assert_eq!(
            Params::parse(None, &["seq"]).unwrap().u32("seq").unwrap(),
            None
        );
    }

    #[test]
    fn integers_outside_their_range_name_the_bound() {
        let p = Params::parse(Some("a=1&b=20001&c=x&d=7"), &["a", "b", "c", "d"]).unwrap();
        assert_eq!(p.int("a", 2..=20_000).unwrap_err().limit, Some(2));
        assert_eq!(p.int("b", 2..=20_000).unwrap_err().limit, Some(20_000));
        assert_eq!(p.int("c", 2..=20_000).unwrap_err().limit, None);
        assert_eq!(p.int("d", 2..=20_000).unwrap(), Some(7));
    }

    #[test]
    fn a_choice_is_one_of_its_names() {
        let p = Params::parse(Some("w=10s&v=2s"), &["w", "v"]).unwrap();
        let choices = [("1s", 1u64), ("10s", 10)];
        assert_eq!(p.choice("w", &choices).unwrap(), Some(("10s", 10)));
        let e = p.choice("v", &choices).unwrap_err();
        assert!(e.message.contains(r#"["1s", "10s"]"#), "{e}");
    }
}
