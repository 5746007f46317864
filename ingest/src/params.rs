//! Query-string and path parameters, read strictly as the query API reads
//! its own: an unknown, repeated or malformed parameter, or one that
//! contradicts the body, is a 400 naming it (`?seq`, `id`), never silently
//! ignored.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
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
            let reads = if allowed.is_empty() {
                "this endpoint reads no query parameters".to_string()
            } else {
                format!("this endpoint reads {allowed:?}")
            };
            return Err(ApiError::param(
                format!("?{k}"),
                format!("unknown query parameter {k:?}; {reads}"),
            ));
        }
        Ok(Params { pairs })
    }

    /// The value of a parameter given at most once.
    fn one(&self, name: &str) -> Result<Option<&str>, ApiError> {
        let mut values = self.pairs.iter().filter(|(k, _)| k == name);
        let first = values.next().map(|(_, v)| v.as_str());
        if values.next().is_some() {
            return Err(ApiError::param(
                format!("?{name}"),
                format!("{name} is given more than once"),
            ));
        }
        Ok(first)
    }

    /// A whole number of 32 bits (its range is checked by the caller).
    pub fn u32(&self, name: &str) -> Result<Option<u32>, ApiError> {
        self.one(name)?
            .map(|v| {
                v.parse().map_err(|_| {
                    ApiError::param(
                        format!("?{name}"),
                        format!(
                            "{name} must be a whole number from 0 to {}, not {v:?}",
                            u32::MAX
                        ),
                    )
                })
            })
            .transpose()
    }

    /// `true` or `false`.
    pub fn boolean(&self, name: &str) -> Result<Option<bool>, ApiError> {
        self.one(name)?
            .map(|v| match v {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(ApiError::param(
                    format!("?{name}"),
                    format!("{name} must be true or false, not {v:?}"),
                )),
            })
            .transpose()
    }
}

/// The ECG id of a `/v1/ecgs/{id}/...` path; a malformed one is a 400
/// naming `id` (axum's own rejection is plain text).
#[derive(Debug, Clone, Copy)]
pub struct EcgId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for EcgId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::param("id", format!("unreadable ECG id: {}", e.body_text())))?;
        Uuid::parse_str(&raw).map(EcgId).map_err(|_| {
            ApiError::param(
                "id",
                format!("id must be an ECG id (a UUID, as POST /v1/ecgs returns), not {raw:?}"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(e: ApiError) -> String {
        match e {
            ApiError::BadParam { field, .. } => field,
            other => panic!("not a parameter error: {other}"),
        }
    }

    #[test]
    fn unknown_repeated_and_malformed_parameters_are_named() {
        let e = Params::parse(Some("seq=1&sequence=2"), &["seq", "final"]).unwrap_err();
        assert_eq!(field(e), "?sequence");
        let e = Params::parse(Some("x=1"), &[]).unwrap_err();
        assert_eq!(field(e), "?x");
        let p = Params::parse(Some("seq=1&seq=2"), &["seq"]).unwrap();
        assert_eq!(field(p.u32("seq").unwrap_err()), "?seq");
        let p = Params::parse(Some("seq=abc&final=yes"), &["seq", "final"]).unwrap();
        assert_eq!(field(p.u32("seq").unwrap_err()), "?seq");
        assert_eq!(field(p.boolean("final").unwrap_err()), "?final");
        let p = Params::parse(Some("seq=7&final=true"), &["seq", "final"]).unwrap();
        assert_eq!(p.u32("seq").unwrap(), Some(7));
        assert_eq!(p.boolean("final").unwrap(), Some(true));
        let p = Params::parse(None, &["seq"]).unwrap();
        assert_eq!(p.u32("seq").unwrap(), None);
    }
}
