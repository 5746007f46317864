//! Why a request was not authorized, and the RFC 6750 response for it
//! ([`AuthError`]); why a verifier could not be built from its
//! configuration ([`VerifierError`]).

use std::io;
use std::path::PathBuf;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

const REALM: &str = r#"Bearer realm="ecg-stream""#;

/// A bearer-token check that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer <token>` header, or one that does not parse.
    #[error("missing bearer token")]
    MissingToken,
    /// The token failed a check; the reason names the check (e.g. "token
    /// expired") and never contains the token.
    #[error("{0}")]
    InvalidToken(String),
    /// The token is valid but lacks the scope the endpoint needs.
    #[error("this endpoint requires scope {0}")]
    InsufficientScope(&'static str),
    /// The key set could not be fetched, so the token could not be checked.
    /// The cause has been logged where the fetch failed.
    #[error("token signing keys are unavailable, retry later")]
    Unavailable,
}

impl AuthError {
    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Self::InvalidToken(reason.into())
    }

    fn code(&self) -> &'static str {
        match self {
            Self::MissingToken => "unauthorized",
            Self::InvalidToken(_) => "invalid_token",
            Self::InsufficientScope(_) => "insufficient_scope",
            Self::Unavailable => "unavailable",
        }
    }

    /// The `WWW-Authenticate` challenge (RFC 6750 §3), if any.
    fn challenge(&self) -> Option<String> {
        match self {
            Self::MissingToken => Some(REALM.to_owned()),
            Self::InvalidToken(reason) => Some(format!(
                r#"{REALM}, error="invalid_token", error_description="{}""#,
                quoted_string_safe(reason)
            )),
            Self::InsufficientScope(scope) => Some(format!(
                r#"{REALM}, error="insufficient_scope", scope="{}""#,
                quoted_string_safe(scope)
            )),
            Self::Unavailable => None,
        }
    }
}

/// Why a verifier could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum VerifierError {
    /// Nothing to trust: every token would be refused.
    #[error("the verifier trusts no issuer")]
    NoIssuer,
    /// Two trusted issuers share an `iss`, so a token could not be routed.
    #[error("issuer {0} is configured twice")]
    DuplicateIssuer(String),
    /// An external issuer's entry is inconsistent.
    #[error("external issuer {issuer}: {reason}")]
    Invalid {
        /// The entry's `issuer`.
        issuer: String,
        /// What is wrong, naming the field.
        reason: String,
    },
    /// The `jwks_ca_file` could not be read.
    #[error("external issuer {issuer}: cannot read jwks_ca_file {path}")]
    CaFile {
        /// The entry's `issuer`.
        issuer: String,
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: io::Error,
    },
    /// The HS256 secret file could not be read.
    #[error("external issuer {issuer}: cannot read hs256_secret_file {path}")]
    SecretFile {
        /// The entry's `issuer`.
        issuer: String,
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: io::Error,
    },
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: String,
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let status = match self {
            Self::MissingToken | Self::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope(_) => StatusCode::FORBIDDEN,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        };
        let challenge = self.challenge();
        let body = Body {
            error: self.code(),
            message: self.to_string(),
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(value) = challenge.and_then(|c| HeaderValue::try_from(c).ok()) {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}

/// RFC 6750 limits `error_description` to printable ASCII without `"` and `\`.
fn quoted_string_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if (' '..='~').contains(&c) && c != '"' && c != '\\' {
                c
            } else {
                '?'
            }
        })
        .collect()
}
