//! `TokenIssuer` called directly: authentication, scope grants, config checks.

use std::time::Duration;

use ecg_auth::{
    Claims, IssuerError, IssuerSettings, SigningKey, TokenIssuer, default_clients, hash_secret,
};

use crate::support::{self, AUDIENCE, ISSUER, SECRET, TTL, issuer};

#[tokio::test]
async fn issued_token_verifies_and_carries_client_tenant_and_scopes() {
    let issuer = issuer();
    let response = issuer.issue("acme", SECRET, None).unwrap();
    assert_eq!(response.token_type, "Bearer");
    assert_eq!(response.expires_in, TTL.as_secs());
    assert_eq!(response.scope, "ecg:write ecg:read");

    let principal = issuer
        .verifier()
        .verify(&response.access_token)
        .await
        .unwrap();
    assert_eq!(principal.client_id, "acme");
    assert_eq!(principal.tenant, "tenant-a");
    assert_eq!(principal.scopes, ["ecg:write", "ecg:read"]);
    assert!(principal.has_scope("ecg:write"));
    assert!(!principal.has_scope("ecg:admin"));
}

#[test]
fn issued_claims_have_issuer_audience_lifetime_and_random_jti() {
    let issuer = issuer();
    let claims =
        |token: &str| -> Claims { jsonwebtoken::dangerous::insecure_decode_claims(token).unwrap() };
    let first = claims(&issuer.issue("acme", SECRET, None).unwrap().access_token);
    let second = claims(&issuer.issue("acme", SECRET, None).unwrap().access_token);
    assert_eq!(first.iss, ISSUER);
    assert_eq!(first.aud, AUDIENCE);
    assert_eq!(first.nbf, first.iat);
    assert_eq!(first.exp - first.iat, TTL.as_secs());
    assert!(first.iat.abs_diff(support::now()) <= 2);
    assert_ne!(first.jti, second.jti);
    assert!(
        first.jti.len() >= 20,
        "jti {} too short to be random",
        first.jti
    );
}

#[test]
fn token_header_names_the_signing_key() {
    let key = SigningKey::generate();
    let kid = key.kid().to_owned();
    let issuer = support::issuer_with(key);
    let token = issuer.issue("acme", SECRET, None).unwrap().access_token;
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    assert_eq!(header.kid.as_deref(), Some(kid.as_str()));
}

#[test]
fn wrong_secret_and_unknown_client_get_the_same_invalid_client_error() {
    let issuer = issuer();
    let wrong_secret = issuer.issue("acme", "not-the-secret", None).unwrap_err();
    let unknown = issuer.issue("nobody", SECRET, None).unwrap_err();
    assert_eq!(wrong_secret.error, "invalid_client");
    assert_eq!(
        wrong_secret, unknown,
        "responses must not reveal which client ids exist"
    );
}

#[test]
fn unknown_client_takes_as_long_as_a_wrong_secret() {
    // Timing, but with a wide margin: a skipped argon2 run is ~1000x faster,
    // and machine load can only slow the unknown-client path down.
    let issuer = issuer();
    let fastest = |id: &str| {
        (0..5)
            .map(|_| {
                let start = std::time::Instant::now();
                issuer.issue(id, "wrong", None).unwrap_err();
                start.elapsed()
            })
            .min()
            .unwrap()
    };
    let (wrong_secret, unknown) = (fastest("acme"), fastest("nobody"));
    assert!(
        unknown * 4 >= wrong_secret,
        "unknown {unknown:?} vs wrong secret {wrong_secret:?}"
    );
}

#[test]
fn requested_subset_of_scopes_is_granted_deduplicated() {
    let issuer = issuer();
    let response = issuer
        .issue("acme", SECRET, Some("ecg:read ecg:read"))
        .unwrap();
    assert_eq!(response.scope, "ecg:read");
    let response = issuer
        .issue("acme", SECRET, Some("ecg:read ecg:write"))
        .unwrap();
    assert_eq!(response.scope, "ecg:read ecg:write");
}

#[test]
fn blank_scope_request_grants_all_client_scopes() {
    let response = issuer().issue("acme", SECRET, Some(" ")).unwrap();
    assert_eq!(response.scope, "ecg:write ecg:read");
}

#[test]
fn scope_beyond_the_clients_is_invalid_scope() {
    let error = issuer()
        .issue("reader", SECRET, Some("ecg:read ecg:write"))
        .unwrap_err();
    assert_eq!(error.error, "invalid_scope");
    assert!(
        error.description.contains("ecg:write"),
        "{}",
        error.description
    );
}

#[test]
fn scope_is_checked_only_after_authentication() {
    // Otherwise invalid_scope would confirm that a client id exists.
    let error = issuer()
        .issue("reader", "wrong", Some("ecg:write"))
        .unwrap_err();
    assert_eq!(error.error, "invalid_client");
}

fn settings_with_hash(hash: &str) -> IssuerSettings {
    let mut settings = support::settings();
    settings.clients[0].secret_hash = hash.into();
    settings
}

#[test]
fn unparseable_or_non_argon2_secret_hash_is_refused_at_startup() {
    for hash in [
        "demo-secret",
        "$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
    ] {
        let error = TokenIssuer::new(SigningKey::generate(), settings_with_hash(hash)).unwrap_err();
        assert!(
            matches!(&error, IssuerError::BadSecretHash { client, .. } if client == "acme"),
            "{hash}: {error}"
        );
    }
}

#[test]
fn duplicate_client_ids_are_refused() {
    let mut settings = support::settings();
    settings.clients[1].id = "acme".into();
    let error = TokenIssuer::new(SigningKey::generate(), settings).unwrap_err();
    assert!(matches!(error, IssuerError::DuplicateClient(id) if id == "acme"));
}

#[test]
fn scope_with_spaces_and_zero_ttl_are_refused() {
    let mut settings = support::settings();
    settings.clients[0].scopes.push("ecg:read ecg:admin".into());
    let error = TokenIssuer::new(SigningKey::generate(), settings).unwrap_err();
    assert!(
        matches!(
            error,
            IssuerError::BadField {
                field: "scopes",
                ..
            }
        ),
        "{error}"
    );

    let mut settings = support::settings();
    settings.token_ttl = Duration::from_millis(500);
    let error = TokenIssuer::new(SigningKey::generate(), settings).unwrap_err();
    assert!(matches!(error, IssuerError::ZeroTtl), "{error}");
}

#[test]
fn default_clients_accept_their_documented_secrets_only() {
    let settings = IssuerSettings {
        clients: default_clients(),
        ..support::settings()
    };
    let issuer = TokenIssuer::new(SigningKey::generate(), settings).unwrap();
    for (id, secret) in [("demo", "demo-secret"), ("other", "other-secret")] {
        let token = issuer.issue(id, secret, None).unwrap();
        assert_eq!(token.scope, "ecg:write ecg:read");
        let claims: Claims =
            jsonwebtoken::dangerous::insecure_decode_claims(&token.access_token).unwrap();
        assert_eq!(claims.tenant, id);
    }
    assert_eq!(
        issuer
            .issue("demo", "other-secret", None)
            .unwrap_err()
            .error,
        "invalid_client"
    );
}

#[test]
fn default_client_hashes_are_not_the_secrets_and_are_argon2id() {
    for client in default_clients() {
        assert!(
            client
                .secret_hash
                .starts_with("$argon2id$v=19$m=19456,t=2,p=1$")
        );
        assert!(!client.secret_hash.contains("secret"));
    }
    // And hash_secret salts: the same secret never hashes the same twice.
    assert_ne!(hash_secret("demo-secret"), default_clients()[0].secret_hash);
}
