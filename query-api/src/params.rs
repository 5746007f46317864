//! Query-string and path parameters, read strictly: an unknown, repeated or
//! malformed parameter is a 400 naming it, never silently ignored.

use std::ops::RangeInclusive;

use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::error::ApiError;

/// The decoded `key=value` pairs of a query string.
#[derive(Debug, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Decodes `raw`, refusing any key not in `allowed`.
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if let Some((k, _)) = pairs.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
            return Err(ApiError::param(
                k,
                format!("unknown parameter {k:?}; this endpoint reads {allowed:?}"),
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
    pub fn one(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.all(name).as_slice() {
            [] => Ok(None),
            [v] => Ok(Some(v)),
            _ => Err(ApiError::param(
                name,
                format!("{name} is given more than once"),
            )),
        }
    }

    /// An RFC 3339 timestamp.
    pub fn time(&self, name: &str) -> Result<Option<OffsetDateTime>, ApiError> {
        self.one(name)?
            .map(|v| {
                OffsetDateTime::parse(v, &Rfc3339).map_err(|e| {
                    ApiError::param(name, format!("{name} must be an RFC 3339 timestamp: {e}"))
                })
            })
            .transpose()
    }

    /// An integer in `range`.
    pub fn int(&self, name: &str, range: RangeInclusive<u64>) -> Result<Option<u64>, ApiError> {
        let Some(v) = self.one(name)? else {
            return Ok(None);
        };
        let n: u64 = v
            .parse()
            .map_err(|_| ApiError::param(name, format!("{name} must be an integer, not {v:?}")))?;
        if n < *range.start() {
            return Err(ApiError::over(
                name,
                format!("{name} must be at least {}", range.start()),
                *range.start(),
            ));
        }
        if n > *range.end() {
            return Err(ApiError::over(
                name,
                format!("{name} must be at most {}", range.end()),
                *range.end(),
            ));
        }
        Ok(Some(n))
    }

    /// One of `choices` (name and seconds), e.g. a window length.
    pub fn choice(
        &self,
        name: &str,
        choices: &[(&'static str, u64)],
    ) -> Result<Option<(&'static str, u64)>, ApiError> {
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
                ApiError::param(name, format!("{name} must be one of {names:?}, not {v:?}"))
            })
    }
}

/// An ECG id from the path.
pub fn ecg_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw)
        .map_err(|_| ApiError::param("id", format!("id must be a UUID, not {raw:?}")))
}

/// `from` must come before `to` when both are given.
pub fn check_range(
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
) -> Result<(), ApiError> {
    match (from, to) {
        (Some(f), Some(t)) if f >= t => Err(ApiError::param("to", "to must be after from")),
        _ => Ok(()),
    }
}

/// Microseconds since the Unix epoch, how timestamps are bound in SQL (as
/// `fromUnixTimestamp64Micro`), saturating far outside any ECG's life.
pub fn micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

/// The index of the first sample at or after `t` in a lead sampled at
/// `rate_hz` from `started_at` (0 before the start).
pub fn index_at(t: OffsetDateTime, started_at: OffsetDateTime, rate_hz: f64) -> u64 {
    let secs = (t - started_at).as_seconds_f64();
    // `as` saturates: far-future timestamps give u64::MAX, not a wrap.
    (secs * rate_hz).ceil().max(0.0) as u64
}

/// The time of sample `index`, as `samples.ts` has it (to the microsecond).
pub fn time_of(index: u64, started_at: OffsetDateTime, rate_hz: f64) -> OffsetDateTime {
    let micros = (index as f64 * 1e6 / rate_hz).round();
    started_at
        .checked_add(Duration::microseconds(micros as i64))
        .unwrap_or(started_at)
}

/// The names `window` takes, for the OpenAPI document (read by
/// [`Params::choice`]).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub enum WindowName {
    #[serde(rename = "1s")]
    OneSecond,
    #[serde(rename = "10s")]
    TenSeconds,
    #[serde(rename = "1m")]
    OneMinute,
}

/// The names `bucket` takes, for the OpenAPI document.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub enum BucketName {
    #[serde(rename = "1m")]
    Minute,
    #[serde(rename = "1h")]
    Hour,
    #[serde(rename = "1d")]
    Day,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_repeated_parameters_are_refused_by_name() {
        let p = Params::parse(Some("limit=3&limit=4"), &["limit"]).unwrap();
        assert!(
            matches!(p.one("limit"), Err(ApiError::BadParam { field, .. }) if field == "limit")
        );
        let e = Params::parse(Some("limt=3"), &["limit"]).unwrap_err();
        assert!(matches!(e, ApiError::BadParam { field, .. } if field == "limt"));
    }

    #[test]
    fn integers_outside_their_range_name_the_limit() {
        let p = Params::parse(Some("max_points=1"), &["max_points"]).unwrap();
        let e = p.int("max_points", 2..=20_000).unwrap_err();
        assert!(matches!(e, ApiError::BadParam { limit: Some(2), .. }));
        let p = Params::parse(Some("max_points=x"), &["max_points"]).unwrap();
        assert!(p.int("max_points", 2..=20_000).is_err());
    }

    #[test]
    fn sample_indexes_round_up_to_the_first_sample_at_or_after() {
        let t0 = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(index_at(t0 + Duration::seconds(2), t0, 500.0), 1000);
        assert_eq!(index_at(t0 + Duration::microseconds(2_001), t0, 500.0), 2);
        assert_eq!(index_at(t0 - Duration::seconds(2), t0, 500.0), 0);
        assert_eq!(time_of(1000, t0, 500.0), t0 + Duration::seconds(2));
    }
}
