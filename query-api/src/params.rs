//! Query-string and path parameters, read strictly
//! ([`ecg_runtime::params`]): an unknown, repeated or malformed parameter is
//! a 400 naming it (`limit`: the query API reads no bodies, so a bare name is
//! unambiguous), never silently ignored.

use ecg_runtime::params::ParamError;
pub use ecg_runtime::params::Params;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::error::ApiError;

impl From<ParamError> for ApiError {
    fn from(e: ParamError) -> Self {
        ApiError::BadParam {
            field: e.name,
            message: e.message,
            limit: e.limit,
        }
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
    #[serde(rename = "5m")]
    FiveMinutes,
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
    fn a_parameter_is_named_bare_with_its_limit() {
        let p = Params::parse(Some("max_points=1"), &["max_points"]).unwrap();
        let e = ApiError::from(p.int("max_points", 2..=20_000).unwrap_err());
        assert!(
            matches!(&e, ApiError::BadParam { field, limit: Some(2), .. } if field == "max_points"),
            "{e:?}"
        );
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
