//! One test binary for the crate's behaviour seen from outside.

mod external_idp;
mod extractor;
mod issuer;
mod key_rotation;
mod oauth_endpoint;
mod remote_jwks;
mod signing_key;
mod support;
mod token_limits;
mod verify;
