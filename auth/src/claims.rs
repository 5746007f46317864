//! The JWT claims set this crate issues and accepts.

use serde::{Deserialize, Serialize};

/// Claims of an ecg-stream access token. Every field is required when
/// verifying: a token missing `tenant` or `jti` is malformed, not anonymous.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer URL of the token service.
    pub iss: String,
    /// The single audience the token is meant for.
    pub aud: String,
    /// Client id the token was issued to.
    pub sub: String,
    /// Tenant of that client.
    pub tenant: String,
    /// Granted scopes, space-separated (RFC 6749 §3.3).
    pub scope: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: u64,
    /// Not valid before, seconds since the Unix epoch.
    pub nbf: u64,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Random token id, so two tokens issued in the same second differ.
    pub jti: String,
}
