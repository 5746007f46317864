//! `Idempotency-Key` on `POST /v1/ecgs`: a create retried with the same key
//! and body opens nothing new. It gets the same ECG id and the same 202
//! (`Idempotent-Replayed: true` tells it apart), and produces nothing once
//! the first create has completed, through any gateway instance and across
//! restarts. A key is 1 to 255 visible ASCII characters, scoped to the
//! tenant and OAuth2 client that send it, and remembered for 24 hours
//! (table `idempotency_keys`, migration 16).
//!
//! How a keyed create runs (the unkeyed one: chunks produced, then the
//! registry row, as before):
//!
//! 1. The ECG id is derived from tenant, client, key and the body's digest
//!    (SHA-256, a version 8 UUID), so two requests with one key and one body
//!    get one id whatever happens between them.
//! 2. The key's first claim is read; without one, this request writes its
//!    own (the id, the digest, the start time, how the signal is cut) and
//!    reads again: the first claim wins. A claim for another body is a 422.
//! 3. If the ECG's registry row exists, the first create completed: the 202
//!    is answered again and nothing is produced.
//! 4. Otherwise (the first attempt failed after its claim, or this is it),
//!    the chunks are produced with the claim's start time and cut, so a
//!    retry produces the very same chunks (which the processor stores
//!    once), then the registry row is written, then the 202.
//!
//! Guarantees. Sequential retries (the normal case: a retry after a 503, a
//! timeout or a lost answer) get one id and at most one set of chunks, and
//! a key reused with another body gets 422 naming the ECG it opened. A
//! claim is written before anything is produced, so ClickHouse being out of
//! reach leaves nothing behind (503). Concurrent duplicates (one key and
//! body sent twice at once, to one gateway or several) get the same id,
//! since it is derived: both may produce the chunks (stored once) and both
//! answer the same 202. If such a body gives no `started_at`, each takes
//! the time of the first claim it reads, and only when both claims commit
//! within the same instant can the two disagree, the chunks of the later
//! one then being the processor's duplicates with another start: send
//! `started_at` with keyed creates. One key sent at once with two different
//! bodies may open two ECGs (the second gets 422 only once the first claim
//! is visible).
//!
//! After 24 hours a key is forgotten and may open another ECG; an identical
//! retry still derives the same id, finds its registry row and gets the
//! 202 again without producing.

use axum::http::{HeaderMap, HeaderName};
use ecg_auth::Principal;
use ecg_clickhouse::idempotency::KeyClaim;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::ApiError;
use crate::registry::{Registry, RegistryError};

/// The request header.
pub const HEADER: HeaderName = HeaderName::from_static("idempotency-key");

/// On a 202 answered again for a retry.
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The longest key.
pub const MAX_LEN: usize = 255;

/// A valid `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The request's key, if it sent one; 400 naming the header if it is
    /// not 1 to 255 visible ASCII characters, or sent twice.
    pub fn of(headers: &HeaderMap) -> Result<Option<Self>, ApiError> {
        let mut values = headers.get_all(&HEADER).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        let refuse = |why: String| ApiError::param("Idempotency-Key", why);
        if values.next().is_some() {
            return Err(refuse(
                "Idempotency-Key is sent more than once; send one key".into(),
            ));
        }
        let bytes = value.as_bytes();
        if bytes.is_empty() || bytes.len() > MAX_LEN {
            return Err(refuse(format!(
                "Idempotency-Key has {} characters; it must have 1 to {MAX_LEN}",
                bytes.len()
            )));
        }
        if let Some(at) = bytes.iter().position(|b| !b.is_ascii_graphic()) {
            return Err(refuse(format!(
                "Idempotency-Key has byte 0x{:02x} at {at}; it must be visible ASCII characters (0x21 to 0x7e), e.g. a UUID",
                bytes[at]
            )));
        }
        // Visible ASCII is UTF-8.
        Ok(Some(IdempotencyKey(
            String::from_utf8_lossy(bytes).into_owned(),
        )))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The digest of a request body: its format and bytes (XXH3-128, hex). A
/// client could craft two bodies with one digest, but only for its own key.
pub fn digest(format: &str, body: &[u8]) -> String {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(format.as_bytes());
    hasher.update(b"\0");
    hasher.update(body);
    format!("{:032x}", hasher.digest128())
}

/// The ECG id of a keyed create: SHA-256 of tenant, client, key and body
/// digest, as a version 8 UUID. No client can aim at another tenant's id.
pub fn ecg_id(tenant: &str, client: &str, key: &IdempotencyKey, digest: &str) -> Uuid {
    let mut hasher = Sha256::new();
    for part in [tenant, client, key.as_str(), digest] {
        // Length-prefixed, so that no two splits of one string collide.
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    let hash = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// What a keyed create does.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// The create completed before: answer its 202 again.
    Replay { id: Uuid, chunk_samples: usize },
    /// Produce (again) and register, with these.
    Create {
        id: Uuid,
        started_at: OffsetDateTime,
        chunk_samples: usize,
    },
}

/// Steps 1 to 3 of the module's recipe for `caller`'s create with `key`,
/// a body of `digest`, the start time and cut this attempt would use.
pub async fn plan(
    registry: &Registry,
    caller: &Principal,
    key: &IdempotencyKey,
    digest: &str,
    started_at: OffsetDateTime,
    chunk_samples: usize,
) -> Result<Plan, ApiError> {
    let (tenant, client) = (caller.tenant.as_str(), caller.client_id.as_str());
    let id = ecg_id(tenant, client, key, digest);
    let claim = match registry.first_claim(tenant, client, key.as_str()).await? {
        Some(claim) => claim,
        None => {
            registry
                .claim(&KeyClaim {
                    tenant: tenant.to_owned(),
                    client_id: client.to_owned(),
                    idempotency_key: key.as_str().to_owned(),
                    ecg_id: id,
                    request_digest: digest.to_owned(),
                    started_at,
                    chunk_samples: u32::try_from(chunk_samples).unwrap_or(u32::MAX),
                })
                .await?;
            registry
                .first_claim(tenant, client, key.as_str())
                .await?
                .ok_or_else(|| RegistryError::Unavailable {
                    doing: "reading the idempotency key back",
                    cause: "the claim just written is not visible yet".into(),
                })?
        }
    };
    if claim.request_digest != digest {
        return Err(ApiError::KeyReused {
            key: key.as_str().to_owned(),
            ecg_id: claim.ecg_id,
        });
    }
    let chunk_samples = (claim.chunk_samples as usize).max(1);
    if registry.get(tenant, claim.ecg_id).await?.is_some() {
        return Ok(Plan::Replay {
            id: claim.ecg_id,
            chunk_samples,
        });
    }
    Ok(Plan::Create {
        id: claim.ecg_id,
        started_at: claim.started_at,
        chunk_samples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(&HEADER, HeaderValue::from_bytes(v).unwrap());
        }
        headers
    }

    #[test]
    fn keys_are_one_to_255_visible_ascii_characters_sent_once() {
        assert_eq!(IdempotencyKey::of(&HeaderMap::new()).unwrap(), None);
        let key = IdempotencyKey::of(&headers(&[b"a1b2-\x21~"]))
            .unwrap()
            .unwrap();
        assert_eq!(key.as_str(), "a1b2-!~");
        assert!(
            IdempotencyKey::of(&headers(&[&[b'k'; 255]]))
                .unwrap()
                .is_some()
        );
        for (bad, says) in [
            (headers(&[b""]), "0 characters"),
            (headers(&[&[b'k'; 256]]), "256 characters"),
            (headers(&[b"two words"]), "byte 0x20 at 3"),
            (headers(&[b"tab\tkey"]), "byte 0x09 at 3"),
            (headers(&[b"caf\xc3\xa9"]), "byte 0xc3 at 3"),
            (headers(&[b"a", b"b"]), "more than once"),
        ] {
            match IdempotencyKey::of(&bad) {
                Err(ApiError::BadParam { field, message }) => {
                    assert_eq!(field, "Idempotency-Key");
                    assert!(message.contains(says), "{message}");
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn ids_are_derived_from_tenant_client_key_and_body() {
        let key = IdempotencyKey("k".into());
        let body = digest("json", b"{}");
        let id = ecg_id("t", "c", &key, &body);
        assert_eq!(id, ecg_id("t", "c", &key, &body));
        assert_eq!(id.get_version(), Some(uuid::Version::Custom));
        for other in [
            ecg_id("u", "c", &key, &body),
            ecg_id("t", "d", &key, &body),
            ecg_id("t", "c", &IdempotencyKey("l".into()), &body),
            ecg_id("t", "c", &key, &digest("json", b"{ }")),
            ecg_id("t", "c", &key, &digest("fhir", b"{}")),
            // Shifting a boundary between parts changes the id.
            ecg_id("tc", "", &key, &body),
        ] {
            assert_ne!(id, other);
        }
    }
}
