//! `SigningKey`: the key file, the kid, the published JWKS.

use std::path::{Path, PathBuf};

use base64::Engine;
use ecg_auth::{KeyError, SigningKey};

use crate::support::{valid_claims, verifier_for};

/// A directory removed when the test ends, pass or fail.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> Self {
        let suffix: u64 = rand::random();
        let path = std::env::temp_dir().join(format!("ecg-auth-{test}-{suffix:x}"));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The RFC 8037 Appendix A.1 private key as PKCS#8 v1 PEM.
fn rfc8037_pem() -> String {
    let seed = crate::support::b64url_decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A");
    // SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 }, OCTET STRING { OCTET STRING seed } }
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&seed);
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n")
}

#[tokio::test]
async fn load_or_generate_writes_a_key_then_reloads_the_same_one() {
    let dir = TempDir::new("reload");
    let path = dir.path().join("nested/dirs/signing.pem");

    let first = SigningKey::load_or_generate(&path).unwrap();
    let pem = std::fs::read_to_string(&path).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let second = SigningKey::load_or_generate(&path).unwrap();
    assert_eq!(first.kid(), second.kid());
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        pem,
        "the file must not be rewritten"
    );
    // Same private key, not just the same id: tokens survive a restart.
    let token = first.sign(&valid_claims());
    verifier_for(&second).verify(&token).await.unwrap();
}

#[test]
fn load_or_generate_refuses_a_corrupt_file_instead_of_replacing_it() {
    let dir = TempDir::new("corrupt");
    let path = dir.path().join("signing.pem");
    std::fs::write(&path, "not a key").unwrap();
    let error = SigningKey::load_or_generate(&path).unwrap_err();
    assert!(matches!(error, KeyError::Parse { .. }), "{error}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a key");
}

#[test]
fn openssl_style_key_loads_with_the_rfc7638_thumbprint_as_kid() {
    let dir = TempDir::new("rfc8037");
    let path = dir.path().join("signing.pem");
    std::fs::write(&path, rfc8037_pem()).unwrap();
    let key = SigningKey::load_or_generate(&path).unwrap();
    // RFC 8037 Appendix A.3.
    assert_eq!(key.kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    let jwk = serde_json::to_value(&key.jwks().keys[0]).unwrap();
    assert_eq!(jwk["x"], "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
    assert_eq!(
        SigningKey::from_pkcs8_pem(&rfc8037_pem()).unwrap().kid(),
        key.kid()
    );
}

#[test]
fn generated_keys_are_distinct_and_publish_no_private_part() {
    let (a, b) = (SigningKey::generate(), SigningKey::generate());
    assert_ne!(a.kid(), b.kid());
    let json = serde_json::to_value(a.jwks()).unwrap();
    assert!(json["keys"][0].get("d").is_none(), "{json}");
    assert!(
        !format!("{a:?}").contains("content"),
        "Debug must not print key bytes"
    );
}
