//! Who a verified token speaks for.

/// The caller identified by a verified access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The `iss` of the token: the built-in issuer or an external provider.
    pub issuer: String,
    /// The OAuth2 client id (the token's `sub`).
    pub client_id: String,
    /// The tenant whose data this caller may touch.
    pub tenant: String,
    /// Granted scopes, in the order the token lists them.
    pub scopes: Vec<String>,
}

impl Principal {
    /// Whether the token granted `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}
