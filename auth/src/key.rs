//! The issuer's Ed25519 signing key.
//!
//! Persisted as an unencrypted PKCS#8 PEM file (the format
//! `openssl genpkey -algorithm ed25519` writes), so a restart keeps issued
//! tokens valid. Only the public half ever leaves this module, as a JWKS whose
//! `kid` is the RFC 7638 thumbprint of the public JWK: the same key always gets
//! the same id, on every host.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, KeypairBytes};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse, ThumbprintHash,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::rand_core::UnwrapErr;
use rand::rngs::SysRng;
use serde::Serialize;

/// Why the signing key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file exists but could not be read.
    #[error("cannot read signing key {path}")]
    Read {
        /// The key file.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: io::Error,
    },
    /// A new key could not be written.
    #[error("cannot write signing key {path}")]
    Write {
        /// The key file.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: io::Error,
    },
    /// The file is not an Ed25519 private key in PKCS#8 PEM form.
    #[error("signing key {path} is not an Ed25519 PKCS#8 PEM private key: {reason}")]
    Parse {
        /// The key file.
        path: PathBuf,
        /// What the decoder said.
        reason: String,
    },
}

/// An Ed25519 private key that signs access tokens.
#[derive(Clone)]
pub struct SigningKey {
    encoding: EncodingKey,
    /// Public JWK with `kid`, `alg`, `use` filled in.
    jwk: Jwk,
    kid: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Loads the PKCS#8 PEM private key at `path`, or generates one and writes
    /// it there (mode 0600, parent directories created) if the file does not
    /// exist. An unreadable or malformed file is an error, never replaced: a
    /// silently rotated key would invalidate every token in circulation.
    pub fn load_or_generate(path: &Path) -> Result<Self, KeyError> {
        match fs::read_to_string(path) {
            Ok(pem) => {
                warn_if_readable_by_others(path);
                return Self::from_pem(&pem, path);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(KeyError::Read {
                    path: path.into(),
                    source,
                });
            }
        }
        let key = Self::generate_bytes();
        match write_new_key_file(path, &key) {
            Ok(()) => {
                let key = Self::from_keypair(&key);
                tracing::info!(path = %path.display(), kid = %key.kid, "generated a new token signing key");
                Ok(key)
            }
            // Another process created it between our read and our write:
            // use theirs, so both sign with the same key.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let pem = fs::read_to_string(path).map_err(|source| KeyError::Read {
                    path: path.into(),
                    source,
                })?;
                Self::from_pem(&pem, path)
            }
            Err(source) => Err(KeyError::Write {
                path: path.into(),
                source,
            }),
        }
    }

    /// Loads the PKCS#8 PEM private key at `path`, which must exist: for
    /// keys kept only to verify (`previous_key_files`), where generating a
    /// new one would be a silent no-op rotation.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let pem = fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.into(),
            source,
        })?;
        warn_if_readable_by_others(path);
        Self::from_pem(&pem, path)
    }

    /// A fresh random key that lives only in memory (tests, throwaway setups).
    pub fn generate() -> Self {
        Self::from_keypair(&Self::generate_bytes())
    }

    /// Parses an Ed25519 private key in PKCS#8 PEM form (`BEGIN PRIVATE KEY`).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, KeyError> {
        Self::from_pem(pem, Path::new("<memory>"))
    }

    /// The key id put in every token header: the base64url RFC 7638
    /// SHA-256 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK Set: `kty` OKP, `crv` Ed25519, `x`, `kid`,
    /// `alg` EdDSA, `use` sig. No private material.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: vec![self.jwk.clone()],
        }
    }

    /// The public key alone, as in [`SigningKey::jwks`].
    pub fn public_jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// Signs `claims` as an EdDSA JWT whose header names this key's `kid`.
    /// The issuer uses it for real tokens; tests use it to craft expired or
    /// otherwise odd ones.
    pub fn sign<T: Serialize>(&self, claims: &T) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        // Signing with a valid Ed25519 key cannot fail; serialising can only
        // fail for types that are not JSON objects, which is a caller bug.
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .expect("claims serialise to JSON and the key is a valid Ed25519 key")
    }

    fn generate_bytes() -> KeypairBytes {
        // The OS generator directly: this key may live for years.
        let key = ed25519_dalek::SigningKey::generate(&mut UnwrapErr(SysRng));
        KeypairBytes {
            secret_key: key.to_bytes(),
            public_key: None,
        }
    }

    fn from_pem(pem: &str, path: &Path) -> Result<Self, KeyError> {
        let parse_error = |reason: String| KeyError::Parse {
            path: path.into(),
            reason,
        };
        // Accepts PKCS#8 v1 (seed only) and v2 (seed + public key, checked).
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem.trim())
            .map_err(|e| parse_error(e.to_string()))?;
        Ok(Self::from_keypair(&KeypairBytes {
            secret_key: key.to_bytes(),
            public_key: None,
        }))
    }

    fn from_keypair(key: &KeypairBytes) -> Self {
        let signing = ed25519_dalek::SigningKey::from_bytes(&key.secret_key);
        // jsonwebtoken wants the 48-byte PKCS#8 v1 DER; encoding a 32-byte
        // seed cannot fail.
        let der = key
            .to_pkcs8_der()
            .expect("PKCS#8 encoding of an Ed25519 seed");
        let encoding = EncodingKey::from_ed_der(der.as_bytes());
        let x = b64url(signing.verifying_key().as_bytes());
        let mut jwk = Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::EdDSA),
                ..CommonParameters::default()
            },
            algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x,
            }),
        };
        // The thumbprint of an OKP Ed25519 JWK is always computable.
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .expect("Ed25519 JWK thumbprint");
        jwk.common.key_id = Some(kid.clone());
        Self { encoding, jwk, kid }
    }
}

/// Creates `path` (never overwriting) readable by the owner only. A crash
/// mid-write leaves a truncated file that the next start refuses to load,
/// which is louder and safer than quietly generating another key.
fn write_new_key_file(path: &Path, key: &KeypairBytes) -> io::Result<()> {
    // Zeroized on drop, unlike a plain String.
    let pem = key.to_pkcs8_pem(LineEnding::LF).map_err(io::Error::other)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(pem.as_bytes())?;
    file.sync_all()
}

/// A key others can read is a key others may have copied; say so, but keep
/// running (the operator may have reasons, e.g. a read-only secret mount).
fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)
            .map(|m| m.permissions().mode())
            .unwrap_or(0o600);
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "token signing key is readable by group or others; chmod 600 it");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
