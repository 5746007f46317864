//! `Authorized<S>`: the axum extractor that guards a handler with a scope.

use std::marker::PhantomData;
use std::ops::Deref;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, request::Parts};

use crate::error::AuthError;
use crate::principal::Principal;
use crate::scope::Scope;
use crate::verifier::Verifier;

/// A request that carries a valid bearer token with scope `S`.
///
/// As a handler argument it rejects with [`AuthError`] (401/403/503) before
/// the handler runs; inside, it derefs to the caller's [`Principal`].
pub struct Authorized<S: Scope>(pub Principal, PhantomData<S>);

impl<S: Scope> Authorized<S> {
    /// Who the token speaks for.
    pub fn principal(&self) -> &Principal {
        &self.0
    }

    /// Gives up the scope marker.
    pub fn into_principal(self) -> Principal {
        self.0
    }
}

impl<S: Scope> Deref for Authorized<S> {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl<S: Scope> std::fmt::Debug for Authorized<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Authorized")
            .field(&S::NAME)
            .field(&self.0)
            .finish()
    }
}

impl<S: Scope> Clone for Authorized<S> {
    fn clone(&self) -> Self {
        Self(self.0.clone(), PhantomData)
    }
}

impl<S, St> FromRequestParts<St> for Authorized<S>
where
    S: Scope,
    Verifier: FromRef<St>,
    St: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, AuthError> {
        let token = bearer_token(&parts.headers)?;
        let principal = Verifier::from_ref(state)
            .verify(token)
            .await
            .inspect_err(|e| {
                tracing::debug!(reason = %e, "bearer token rejected");
            })?;
        if !principal.has_scope(S::NAME) {
            tracing::debug!(client_id = %principal.client_id, scope = S::NAME, "token lacks scope");
            return Err(AuthError::InsufficientScope(S::NAME));
        }
        Ok(Self(principal, PhantomData))
    }
}

/// The token of a single `Authorization: Bearer <token>` header (scheme
/// case-insensitive, RFC 7235 §2.1).
fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(AuthError::MissingToken);
    };
    let value = value.to_str().map_err(|_| AuthError::MissingToken)?;
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::MissingToken)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains(' ') {
        return Err(AuthError::MissingToken);
    }
    Ok(token)
}
