//! OAuth2 client-credentials issuance and JWT bearer verification shared by
//! the HTTP services.
//!
//! Tokens are EdDSA (Ed25519) JWTs carrying [`Claims`]. The query API issues
//! them ([`TokenIssuer`], [`oauth`]) and the services check them
//! ([`Verifier`], [`Authorized`]).
//!
//! Issuer side:
//! - [`key`]: the Ed25519 signing key, its PEM file and its public JWKS.
//! - [`secret`]: argon2id hashing and constant-time checking of client secrets.
//! - [`clients`]: client configuration and the two local default clients.
//! - [`issuer`]: the client-credentials grant itself.
//! - [`oauth`]: the `/oauth/token` and `/.well-known/jwks.json` handlers.
//! - [`oauth_error`]: RFC 6749 §5.2 error responses.
//! - `form`: strict form-urlencoded decoding for the token endpoint.
//!
//! Verifier side:
//! - [`verifier`]: signature and claim checks, with static or remote keys.
//! - `keyset`: which JWKs are trusted (Ed25519 only), by `kid`.
//! - `remote`: the fetched, rate-limited, refreshed JWKS cache.
//! - [`extractor`]: `Authorized<S>`, the axum extractor requiring scope `S`.
//! - [`error`]: [`AuthError`] and its RFC 6750 responses.
//!
//! Shared: [`claims`], [`principal`], [`scope`].

pub mod claims;
pub mod clients;
pub mod error;
pub mod extractor;
mod form;
pub mod issuer;
pub mod key;
mod keyset;
pub mod oauth;
pub mod oauth_error;
pub mod principal;
mod remote;
pub mod scope;
pub mod secret;
pub mod verifier;

pub use claims::Claims;
pub use clients::{ClientConfig, default_clients};
pub use error::AuthError;
pub use extractor::Authorized;
pub use issuer::{IssuerError, IssuerSettings, TokenIssuer, TokenResponse};
pub use key::{KeyError, SigningKey};
pub use oauth_error::OAuthError;
pub use principal::Principal;
pub use scope::{EcgRead, EcgWrite, Scope};
pub use secret::hash_secret;
pub use verifier::{Verifier, VerifierSettings};
