//! The client-credentials grant: authenticate a client, grant scopes, sign a token.
//!
//! `issue` is synchronous and spends one argon2 verification (tens of
//! milliseconds of CPU) per call, known client or not; async callers run it
//! on a blocking thread (the `/oauth/token` handler does, within the limits
//! of `throttle`).
//!
//! Key rotation: the issuer signs with one key and publishes it together
//! with any `previous_keys`, which only verify. Tokens signed by a previous
//! key stay valid until it is removed from the configuration.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use serde::{Deserialize, Serialize};

use crate::claims::Claims;
use crate::clients::ClientConfig;
use crate::key::SigningKey;
use crate::oauth_error::OAuthError;
use crate::secret::{DUMMY_HASH, SecretHash};
use crate::throttle::{Throttle, TokenLimits};
use crate::verifier::Verifier;

/// What the token service signs and for whom.
#[derive(Debug, Clone)]
pub struct IssuerSettings {
    /// `iss` of every token, usually the service's external base URL.
    pub issuer: String,
    /// `aud` of every token: the API the tokens are for.
    pub audience: String,
    /// Token lifetime; also returned as `expires_in`.
    pub token_ttl: Duration,
    /// Clients allowed to request tokens.
    pub clients: Vec<ClientConfig>,
    /// Keys that signed before the current one: published in the JWKS and
    /// trusted, never used to sign (see the module docs on rotation).
    pub previous_keys: Vec<SigningKey>,
    /// Rate limits and the hashing cap of the token endpoint.
    pub limits: TokenLimits,
}

/// Why the issuer's configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    /// A client's `secret_hash` is not a usable argon2 PHC string.
    #[error("client {client}: secret_hash is not a usable argon2 PHC string: {reason}")]
    BadSecretHash {
        /// Client id.
        client: String,
        /// What was wrong with the hash.
        reason: String,
    },
    /// Two clients share an id.
    #[error("client id {0} is configured twice")]
    DuplicateClient(String),
    /// A client id, tenant or scope is empty or contains whitespace.
    #[error("client {client}: {field} must be non-empty and without spaces")]
    BadField {
        /// Client id.
        client: String,
        /// The offending field.
        field: &'static str,
    },
    /// A zero lifetime would issue tokens that are already expired.
    #[error("token_ttl must be at least one second")]
    ZeroTtl,
    /// A previous key is the signing key or another previous key.
    #[error("key {0} is configured twice (as the signing key or a previous key)")]
    DuplicateKey(String),
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The signed JWT.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
    /// Granted scopes, space-separated.
    pub scope: String,
}

#[derive(Debug)]
struct Client {
    tenant: String,
    scopes: Vec<String>,
    secret: SecretHash,
}

/// Issues access tokens for configured clients.
#[derive(Debug)]
pub struct TokenIssuer {
    key: SigningKey,
    previous: Vec<SigningKey>,
    issuer: String,
    audience: String,
    ttl: Duration,
    clients: HashMap<String, Client>,
    dummy: SecretHash,
    verifier: Verifier,
    throttle: Throttle,
}

impl TokenIssuer {
    /// Checks the configuration (every hash parses, ids unique, no blank
    /// fields) so that a bad config fails at startup, not at first login.
    pub fn new(key: SigningKey, settings: IssuerSettings) -> Result<Self, IssuerError> {
        if settings.token_ttl.as_secs() == 0 {
            return Err(IssuerError::ZeroTtl);
        }
        let mut clients = HashMap::with_capacity(settings.clients.len());
        for c in settings.clients {
            let bad = |field| IssuerError::BadField {
                client: c.id.clone(),
                field,
            };
            if !is_token(&c.id) {
                return Err(bad("id"));
            }
            if !is_token(&c.tenant) {
                return Err(bad("tenant"));
            }
            if !c.scopes.iter().all(|s| is_token(s)) {
                return Err(bad("scopes"));
            }
            let secret =
                SecretHash::parse(&c.secret_hash).map_err(|reason| IssuerError::BadSecretHash {
                    client: c.id.clone(),
                    reason,
                })?;
            let client = Client {
                tenant: c.tenant,
                scopes: c.scopes,
                secret,
            };
            if clients.insert(c.id.clone(), client).is_some() {
                return Err(IssuerError::DuplicateClient(c.id));
            }
        }
        let mut kids = BTreeSet::from([key.kid().to_owned()]);
        for previous in &settings.previous_keys {
            if !kids.insert(previous.kid().to_owned()) {
                return Err(IssuerError::DuplicateKey(previous.kid().to_owned()));
            }
        }
        // A compile-time constant that a test parses.
        let dummy = SecretHash::parse(DUMMY_HASH).expect("DUMMY_HASH is a valid PHC string");
        let tenants: BTreeSet<String> = clients.values().map(|c| c.tenant.clone()).collect();
        let jwks = JwkSet {
            keys: std::iter::once(&key)
                .chain(&settings.previous_keys)
                .map(|k| k.public_jwk().clone())
                .collect(),
        };
        // One issuer with static keys: nothing the builder could refuse.
        let verifier = Verifier::builder()
            .built_in_jwks(settings.issuer.clone(), settings.audience.clone(), jwks)
            .built_in_tenants(tenants)
            .build()
            .expect("a verifier for one built-in issuer");
        Ok(Self {
            key,
            previous: settings.previous_keys,
            issuer: settings.issuer,
            audience: settings.audience,
            ttl: settings.token_ttl,
            clients,
            dummy,
            verifier,
            throttle: Throttle::new(&settings.limits),
        })
    }

    /// Client-credentials grant. Checks `client_secret` against the client's
    /// argon2 hash (unknown ids cost the same time and get the same answer as
    /// a wrong secret), then grants `scope` if every requested scope is one of
    /// the client's (`None` or blank: all of them).
    pub fn issue(
        &self,
        client_id: &str,
        client_secret: &str,
        scope: Option<&str>,
    ) -> Result<TokenResponse, OAuthError> {
        let Some(client) = self.authenticate(client_id, client_secret) else {
            tracing::info!(client_id, "token refused: client authentication failed");
            return Err(OAuthError::invalid_client("client authentication failed"));
        };
        let granted = grant(&client.scopes, scope)?;
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: client_id.to_owned(),
            tenant: client.tenant.clone(),
            scope: granted.clone(),
            iat: now,
            nbf: now,
            exp: now + self.ttl.as_secs(),
            jti: random_id(),
        };
        tracing::info!(client_id, tenant = %client.tenant, scope = %granted, "issued access token");
        Ok(TokenResponse {
            access_token: self.key.sign(&claims),
            token_type: "Bearer".into(),
            expires_in: self.ttl.as_secs(),
            scope: granted,
        })
    }

    /// The public key set to serve at `/.well-known/jwks.json`: the signing
    /// key first, then the previous keys.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: std::iter::once(&self.key)
                .chain(&self.previous)
                .map(|k| k.public_jwk().clone())
                .collect(),
        }
    }

    /// The tenants of the configured clients: the only tenants this
    /// issuer's tokens may name.
    pub fn tenants(&self) -> BTreeSet<String> {
        self.clients.values().map(|c| c.tenant.clone()).collect()
    }

    pub(crate) fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    /// A verifier that trusts exactly this issuer's key, for services that
    /// issue and verify in the same process (no HTTP round trip).
    pub fn verifier(&self) -> Verifier {
        self.verifier.clone()
    }

    fn authenticate(&self, client_id: &str, secret: &str) -> Option<&Client> {
        match self.clients.get(client_id) {
            Some(client) => client.secret.verify(secret).then_some(client),
            None => {
                // Same work as a real check, result ignored: see DUMMY_HASH.
                let _ = self.dummy.verify(secret);
                None
            }
        }
    }
}

/// The granted scope string: all of the client's scopes when none were
/// requested, else the requested ones (deduplicated) if all are allowed.
fn grant(allowed: &[String], requested: Option<&str>) -> Result<String, OAuthError> {
    let requested: Vec<&str> = requested
        .map(|s| s.split(' ').filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    if requested.is_empty() {
        return Ok(allowed.join(" "));
    }
    let mut granted: Vec<&str> = Vec::with_capacity(requested.len());
    for scope in requested {
        if !allowed.iter().any(|a| a == scope) {
            return Err(OAuthError::invalid_scope(format!(
                "scope {scope} is not allowed for this client"
            )));
        }
        if !granted.contains(&scope) {
            granted.push(scope);
        }
    }
    Ok(granted.join(" "))
}

/// Non-empty and free of whitespace and control characters, so it can sit
/// in a space-separated scope string or a header.
fn is_token(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// 128 random bits, base64url: unique enough for `jti`.
fn random_id() -> String {
    let bytes: [u8; 16] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
