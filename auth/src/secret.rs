//! Client secrets, stored only as argon2id PHC hashes.
//!
//! Verification goes through argon2's `verify_password`, which compares the
//! derived outputs in constant time. Its cost (tens of milliseconds) is the
//! point: callers run it on a blocking thread, not on the async executor.

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};

/// Hashes `secret` into an argon2id PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`)
/// with a random salt, for client configuration and tests. The parameters are
/// the OWASP minimum: about 20 ms per verification on a server core.
pub fn hash_secret(secret: &str) -> String {
    // Fails only if the OS random generator does, which nothing can recover from.
    Argon2::default()
        .hash_password(secret.as_bytes())
        .expect("argon2 hashing with default parameters")
        .to_string()
}

/// A parsed argon2 PHC hash whose parameters are known to be usable, so a
/// verification failure always means a wrong secret, never a bad config.
#[derive(Clone)]
pub(crate) struct SecretHash(PasswordHash);

impl std::fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A hash is not the secret, but it is what an offline guesser wants.
        write!(f, "SecretHash({}, ..)", self.0.algorithm)
    }
}

impl SecretHash {
    pub(crate) fn parse(phc: &str) -> Result<Self, String> {
        let hash = PasswordHash::new(phc).map_err(|e| format!("not a PHC string: {e}"))?;
        argon2::Algorithm::new(hash.algorithm.as_str())
            .map_err(|_| format!("algorithm {} is not argon2", hash.algorithm))?;
        argon2::Params::try_from(&hash).map_err(|e| format!("bad argon2 parameters: {e}"))?;
        if hash.salt.is_none() || hash.hash.is_none() {
            return Err("salt or hash output missing".into());
        }
        Ok(Self(hash))
    }

    /// Whether `secret` hashes to this value. Takes the full argon2 time
    /// whether or not it matches.
    pub(crate) fn verify(&self, secret: &str) -> bool {
        Argon2::default()
            .verify_password(secret.as_bytes(), &self.0)
            .is_ok()
    }
}

/// Hash of a random string nobody knows, with the same parameters as
/// [`hash_secret`]. Verifying an unknown client's secret against it costs the
/// same time as a known client's, so response timing does not reveal which
/// client ids exist.
pub(crate) const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$7ia+pY221tjYVFF3+ksf6w$vMfLJDFQbtp0+K7AUhJkNhKmH8CblUn2GR87zVCl4Ao";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_secret_verifies_and_others_do_not() {
        let hash = SecretHash::parse(&hash_secret("right")).unwrap();
        assert!(hash.verify("right"));
        assert!(!hash.verify("wrong"));
        assert!(!hash.verify(""));
    }

    #[test]
    fn hashes_use_argon2id_with_owasp_minimum_parameters() {
        assert!(hash_secret("x").starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    }

    #[test]
    fn dummy_hash_parses_and_uses_the_same_parameters() {
        SecretHash::parse(DUMMY_HASH).unwrap();
        assert!(DUMMY_HASH.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    }

    #[test]
    fn non_argon2_and_garbage_hashes_are_refused() {
        for bad in [
            "plain-secret",
            "",
            "$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ",
            "$argon2id$v=19$m=1,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        ] {
            assert!(SecretHash::parse(bad).is_err(), "{bad}");
        }
    }
}
