//! OAuth2 client-credentials issuance and JWT bearer verification shared by
//! the HTTP services.
//!
//! Tokens are EdDSA (Ed25519) JWTs carrying [`Claims`]. The query API issues
//! them ([`TokenIssuer`], [`oauth`]) and the services check them
//! ([`Verifier`], [`Authorized`]). The services may also accept tokens from
//! external OAuth2/OIDC providers (see below).
//!
//! Issuer side:
//! - [`key`]: the Ed25519 signing key, its PEM file and its public JWKS.
//! - [`secret`]: argon2id hashing and constant-time checking of client secrets.
//! - [`clients`]: client configuration and the two local default clients.
//! - [`issuer`]: the client-credentials grant itself, and key rotation
//!   (previous keys published and trusted, never signing).
//! - [`oauth`]: the `/oauth/token` and `/.well-known/jwks.json` handlers.
//! - [`oauth_error`]: RFC 6749 §5.2 error responses.
//! - [`throttle`]: the token endpoint's rate limits and hashing cap
//!   ([`TokenLimits`]), on `bucket` (bounded keyed token buckets) and
//!   [`source`] (the client's address, trusted proxies).
//! - `form`: strict form-urlencoded decoding for the token endpoint.
//!
//! Verifier side:
//! - [`verifier`]: routes a token to its issuer by `iss`, then checks it.
//! - [`builder`]: how a [`Verifier`] is built: for the built-in issuer, or
//!   trusting several issuers ([`VerifierBuilder`]).
//! - [`external`]: the configuration of an external provider.
//! - `trust`: one trusted issuer's keys, algorithms, claim checks and mapping.
//! - `keyset`: which JWKs are usable, by `kid`, each bound to one algorithm.
//! - `remote`: the fetched, rate-limited, refreshed JWKS cache.
//! - [`extractor`]: `Authorized<S>`, the axum extractor requiring scope `S`.
//! - [`error`]: [`AuthError`] and its RFC 6750 responses; [`VerifierError`],
//!   a verifier's configuration refused.
//!
//! Shared: [`claims`], [`principal`], [`scope`].
//!
//! # External identity providers
//!
//! Besides the built-in issuer, a [`Verifier`] built with
//! [`Verifier::builder`] trusts any number of external providers, each an
//! [`ExternalIssuerConfig`] (a list in the service config, `[[auth.external]]`
//! in TOML):
//!
//! ```toml
//! [[auth.external]]
//! issuer = "https://sso.example.com/realms/ecg"   # exact `iss`
//! audience = "ecg-stream"                         # must be in `aud`
//! jwks_url = "https://sso.example.com/realms/ecg/protocol/openid-connect/certs"
//! tenants = ["hospital-1", "hospital-2"]          # required, unless `tenant`
//! algorithms = ["RS256", "ES256", "EdDSA"]        # the default
//! tenant_claim = "tenant"                         # the default
//! scope_claim = "scope"                           # the default; string or array
//! jwks_refresh_s = 300                            # the default
//! jwks_max_bytes = 1048576                        # the default
//! # jwks_ca_file = "/etc/ecg/idp-ca.pem"          # a private CA for jwks_url
//! # allow_insecure_http = true                    # http jwks_url: development only
//! # tenant = "hospital-1"          # fixed tenant for a single-tenant provider
//! # hs256_secret_file = "/run/secrets/idp-hs256"  # the only way to allow HS256
//! ```
//!
//! A token is routed by its `iss` (unknown → 401 `unknown issuer`) and then
//! checked with that provider's keys and settings only. The key decides the
//! algorithm (the JWK's `alg`, else RS256 for RSA, ES256 for P-256, ES384 for
//! P-384, EdDSA for Ed25519), which must also be in `algorithms`; a header
//! naming another one, `alg: none`, and HS256 without a configured secret
//! are refused. RSA keys under 2048 bits and symmetric JWKs are ignored.
//! Keys are fetched over https only (unless `allow_insecure_http`), at most
//! `jwks_max_bytes` and 100 keys, on first use, every `jwks_refresh_s` (so a
//! removed key stops verifying), and, at most once per 10 s, when a token
//! names an unknown `kid`. `sub` becomes the client id; the tenant comes
//! from `tenant_claim` and must be one of `tenants` (or is the fixed
//! `tenant`): tenants are one namespace, and no provider speaks for another
//! issuer's tenants. Scopes come from `scope_claim`, a space-separated
//! string or an array of strings. Invalid tokens get 401 with
//! `WWW-Authenticate: Bearer error="invalid_token"`, a valid token without
//! the endpoint's scope 403 `insufficient_scope`.

mod bucket;
pub mod builder;
pub mod claims;
pub mod clients;
pub mod error;
pub mod external;
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
pub mod source;
pub mod throttle;
mod trust;
pub mod verifier;

pub use builder::{VerifierBuilder, VerifierSettings};
pub use claims::Claims;
pub use clients::{ClientConfig, default_clients};
pub use error::{AuthError, VerifierError};
pub use external::ExternalIssuerConfig;
pub use extractor::Authorized;
pub use issuer::{IssuerError, IssuerSettings, TokenIssuer, TokenResponse};
pub use key::{KeyError, SigningKey};
pub use oauth_error::OAuthError;
pub use principal::Principal;
pub use scope::{EcgRead, EcgWrite, Scope};
pub use secret::hash_secret;
pub use source::IpNet;
pub use throttle::TokenLimits;
pub use verifier::Verifier;

/// Signature algorithms, as named in [`ExternalIssuerConfig::algorithms`].
pub use jsonwebtoken::Algorithm;
