//! Configured OAuth2 clients and the two local defaults.

use serde::{Deserialize, Serialize};

use crate::scope::{EcgRead, EcgWrite, Scope};

/// One OAuth2 client allowed to use the client-credentials grant.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Client id, sent as `client_id` and put in the token's `sub`.
    pub id: String,
    /// PHC argon2 hash of the secret (see [`crate::hash_secret`]); never the secret itself.
    pub secret_hash: String,
    /// Tenant the client's tokens act for.
    pub tenant: String,
    /// Scopes the client may request; requesting none grants all of them.
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Configs get logged at startup; keep the hash out of the logs.
        f.debug_struct("ClientConfig")
            .field("id", &self.id)
            .field("secret_hash", &"<redacted>")
            .field("tenant", &self.tenant)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// Argon2id hash of `demo-secret`.
const DEMO_SECRET_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$m29mERg1hu48FdKYgqifAw$aarmFatF+s6kv8hQN25K71saj21jNsRuVPj8NfjOUlc";
/// Argon2id hash of `other-secret`.
const OTHER_SECRET_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$o3H0yGbYEN//PRDvMHOxJQ$+OE+onstJ6KNN1YrwZbKO0KPp4K4hF3sfd0GP2tbixk";

/// The two clients of a local setup: `demo` (tenant `demo`) and `other`
/// (tenant `other`), both with `ecg:write` and `ecg:read`. Their secrets are
/// `demo-secret` and `other-secret`; only the hashes are stored here.
pub fn default_clients() -> Vec<ClientConfig> {
    let client = |id: &str, secret_hash: &str| ClientConfig {
        id: id.into(),
        secret_hash: secret_hash.into(),
        tenant: id.into(),
        scopes: vec![EcgWrite::NAME.into(), EcgRead::NAME.into()],
    };
    vec![
        client("demo", DEMO_SECRET_HASH),
        client("other", OTHER_SECRET_HASH),
    ]
}
