//! `ExternalIssuerConfig` as the services load it (figment: TOML, env), and
//! the mistakes the builder refuses at startup.

use std::path::PathBuf;

use ecg_auth::{Algorithm, ExternalIssuerConfig, SigningKey, Verifier, VerifierError};
use figment::Figment;
use figment::providers::{Format, Toml};
use serde::Deserialize;

use super::{IDP, TempFile};
use crate::support::{AUDIENCE, ISSUER};

/// The `auth` section of a service config, reduced to the new list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Auth {
    #[serde(default)]
    external: Vec<ExternalIssuerConfig>,
}

#[derive(Debug, Deserialize)]
struct Config {
    auth: Auth,
}

/// The error as text: all the tests look at.
fn from_toml(toml: &str) -> Result<Vec<ExternalIssuerConfig>, String> {
    Figment::from(Toml::string(toml))
        .extract::<Config>()
        .map(|c| c.auth.external)
        .map_err(|e| e.to_string())
}

#[test]
fn toml_list_loads_with_defaults() {
    let external = from_toml(
        r#"
        [[auth.external]]
        issuer = "https://sso.example.com/realms/ecg"
        audience = "ecg-stream"
        jwks_url = "https://sso.example.com/realms/ecg/protocol/openid-connect/certs"

        [[auth.external]]
        issuer = "https://example.eu.auth0.com/"
        audience = "https://api.ecg-stream.example"
        jwks_url = "https://example.eu.auth0.com/.well-known/jwks.json"
        algorithms = ["RS256", "PS256"]
        tenant_claim = "https://ecg-stream.example/tenant"
        scope_claim = "permissions"
        "#,
    )
    .unwrap();
    let keycloak = ExternalIssuerConfig::new(
        "https://sso.example.com/realms/ecg",
        "ecg-stream",
        "https://sso.example.com/realms/ecg/protocol/openid-connect/certs",
    );
    assert_eq!(external[0], keycloak);
    assert_eq!(
        keycloak.algorithms,
        [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA]
    );
    assert_eq!(
        (
            keycloak.tenant_claim.as_str(),
            keycloak.scope_claim.as_str()
        ),
        ("tenant", "scope")
    );
    assert_eq!((keycloak.hs256_secret_file, keycloak.tenant), (None, None));
    assert_eq!(external[1].algorithms, [Algorithm::RS256, Algorithm::PS256]);
    assert_eq!(external[1].scope_claim, "permissions");
}

#[test]
fn tenants_and_jwks_transport_settings_load_with_safe_defaults() {
    let external = from_toml(
        r#"
        [[auth.external]]
        issuer = "https://sso.example.com/realms/ecg"
        audience = "ecg-stream"
        jwks_url = "https://sso.example.com/certs"
        tenants = ["hospital-1", "hospital-2"]

        [[auth.external]]
        issuer = "http://localhost:8180/realms/dev"
        audience = "ecg-stream"
        jwks_url = "http://localhost:8180/realms/dev/certs"
        tenant = "dev"
        allow_insecure_http = true
        jwks_ca_file = "/etc/ecg/dev-ca.pem"
        jwks_max_bytes = 65536
        jwks_refresh_s = 60
        "#,
    )
    .unwrap();
    let production = &external[0];
    assert_eq!(production.tenants, ["hospital-1", "hospital-2"]);
    assert!(!production.allow_insecure_http, "https only by default");
    assert_eq!(production.jwks_ca_file, None);
    assert_eq!(production.jwks_max_bytes, 1 << 20);
    assert_eq!(production.jwks_refresh_s, 300);
    let dev = &external[1];
    assert!(dev.tenants.is_empty());
    assert_eq!(
        dev.allowed_tenants().into_iter().collect::<Vec<_>>(),
        ["dev"]
    );
    assert!(dev.allow_insecure_http);
    assert_eq!(dev.jwks_ca_file, Some(PathBuf::from("/etc/ecg/dev-ca.pem")));
    assert_eq!((dev.jwks_max_bytes, dev.jwks_refresh_s), (65_536, 60));
}

#[test]
fn env_value_form_parses_to_the_same_list() {
    // What `ECG_AUTH__EXTERNAL='[{...}]'` holds: figment parses env values
    // with this TOML-like syntax.
    let value: figment::value::Value = r#"[{issuer="https://sso.example.com/realms/ecg",audience="ecg-stream",jwks_url="https://sso.example.com/certs",tenant="hospital-1"}]"#
        .parse()
        .unwrap();
    let external: Vec<ExternalIssuerConfig> = value.deserialize().unwrap();
    assert_eq!(
        external,
        [ExternalIssuerConfig {
            tenant: Some("hospital-1".into()),
            ..ExternalIssuerConfig::new(
                "https://sso.example.com/realms/ecg",
                "ecg-stream",
                "https://sso.example.com/certs"
            )
        }]
    );
}

#[test]
fn unknown_fields_and_algorithms_are_config_errors() {
    let typo = from_toml(
        r#"
        [[auth.external]]
        issuer = "https://idp"
        audience = "ecg-stream"
        jwks_url = "https://idp/certs"
        scopes_claim = "scp"
        "#,
    );
    assert!(
        typo.unwrap_err().contains("scopes_claim"),
        "a misspelt field must not be silently ignored"
    );
    let bad_alg = from_toml(
        r#"
        [[auth.external]]
        issuer = "https://idp"
        audience = "ecg-stream"
        jwks_url = "https://idp/certs"
        algorithms = ["none"]
        "#,
    );
    assert!(bad_alg.unwrap_err().contains("none"));
}

fn build(config: ExternalIssuerConfig) -> Result<Verifier, VerifierError> {
    Verifier::builder()
        .built_in_jwks(ISSUER, AUDIENCE, SigningKey::generate().jwks())
        .external(config)
        .build()
}

fn invalid_reason(result: Result<Verifier, VerifierError>) -> String {
    match result {
        Err(VerifierError::Invalid { issuer, reason }) => {
            assert_eq!(issuer, IDP);
            reason
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn config() -> ExternalIssuerConfig {
    ExternalIssuerConfig {
        tenants: vec!["tenant-x".into()],
        ..ExternalIssuerConfig::new(IDP, AUDIENCE, "https://sso.example.test/certs")
    }
}

#[test]
fn hs256_needs_a_secret_file_of_at_least_32_bytes() {
    let listed = ExternalIssuerConfig {
        algorithms: vec![Algorithm::RS256, Algorithm::HS256],
        ..config()
    };
    assert_eq!(
        invalid_reason(build(listed)),
        "HS256 requires hs256_secret_file"
    );

    let short = TempFile::new("hs256-short", b"31 bytes are not enough, sorry\n");
    let reason = invalid_reason(build(ExternalIssuerConfig {
        hs256_secret_file: Some(short.0.clone()),
        ..config()
    }));
    assert!(reason.contains("is 30 bytes; at least 32"), "{reason}");

    let missing = PathBuf::from("/nonexistent/ecg-auth/hs256");
    let result = build(ExternalIssuerConfig {
        hs256_secret_file: Some(missing.clone()),
        ..config()
    });
    assert!(
        matches!(&result, Err(VerifierError::SecretFile { path, .. }) if *path == missing),
        "{result:?}"
    );
}

#[test]
fn inconsistent_entries_are_refused_at_startup() {
    for (config, expected) in [
        (
            ExternalIssuerConfig {
                algorithms: vec![Algorithm::HS384],
                ..config()
            },
            "algorithm HS384 is not supported",
        ),
        (
            ExternalIssuerConfig {
                algorithms: vec![],
                ..config()
            },
            "algorithms must not be empty",
        ),
        (
            ExternalIssuerConfig {
                jwks_url: None,
                ..config()
            },
            "needs jwks_url or hs256_secret_file",
        ),
        (
            ExternalIssuerConfig {
                jwks_url: Some("sso.example.test/certs".into()),
                ..config()
            },
            "jwks_url sso.example.test/certs is not an https URL",
        ),
        (
            ExternalIssuerConfig {
                audience: " ".into(),
                ..config()
            },
            "audience must not be empty",
        ),
        (
            ExternalIssuerConfig {
                tenant_claim: String::new(),
                ..config()
            },
            "tenant_claim must not be empty",
        ),
        (
            ExternalIssuerConfig {
                tenant: Some("two words".into()),
                tenants: Vec::new(),
                ..config()
            },
            "tenant must be non-empty and without spaces",
        ),
        (
            ExternalIssuerConfig {
                jwks_max_bytes: 0,
                ..config()
            },
            "jwks_max_bytes must be positive",
        ),
        (
            ExternalIssuerConfig {
                jwks_refresh_s: 0,
                ..config()
            },
            "jwks_refresh_s must be at least 1",
        ),
    ] {
        assert_eq!(invalid_reason(build(config)), expected);
    }
}

#[test]
fn an_issuer_can_be_trusted_only_once() {
    let clash = ExternalIssuerConfig {
        issuer: ISSUER.into(),
        jwks_url: Some("https://elsewhere.test/certs".into()),
        ..config()
    };
    let result = build(clash);
    assert!(
        matches!(&result, Err(VerifierError::DuplicateIssuer(iss)) if iss == ISSUER),
        "{result:?}"
    );
    let result = Verifier::builder()
        .external(config())
        .external(config())
        .build();
    assert!(
        matches!(result, Err(VerifierError::DuplicateIssuer(_))),
        "{result:?}"
    );
    let result = Verifier::builder().build();
    assert!(matches!(result, Err(VerifierError::NoIssuer)), "{result:?}");
}
