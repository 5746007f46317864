//! The opaque cursor of `GET /v1/ecgs`: base64url of the last item's sort key
//! (`started_at` in microseconds, then the ECG id). It only says where to
//! resume within the caller's own list: every page query is filtered by the
//! caller's tenant, so a forged cursor can skip ECGs but never reveal another
//! tenant's. Anything that does not decode to exactly that key is a 400.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use crate::error::ApiError;

/// Where a page ends: the sort key of its last item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub started_at_us: i64,
    pub id: Uuid,
}

impl Cursor {
    pub fn encode(self) -> String {
        let mut bytes = [0u8; 24];
        bytes[..8].copy_from_slice(&self.started_at_us.to_be_bytes());
        bytes[8..].copy_from_slice(self.id.as_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    pub fn decode(s: &str) -> Result<Self, ApiError> {
        let bad = || ApiError::param("cursor", "cursor is not one this API returned");
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
        let bytes: [u8; 24] = bytes.try_into().map_err(|_| bad())?;
        let (time, id) = bytes.split_at(8);
        Ok(Cursor {
            started_at_us: i64::from_be_bytes(time.try_into().map_err(|_| bad())?),
            id: Uuid::from_slice(id).map_err(|_| bad())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_anything_else_is_refused() {
        let c = Cursor {
            started_at_us: 1_795_000_000_000_000,
            id: Uuid::new_v4(),
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        for bad in [
            "",
            "x",
            "not base64!",
            &c.encode()[1..],
            &format!("{}AA", c.encode()),
        ] {
            let e = Cursor::decode(bad).unwrap_err();
            assert!(
                matches!(e, ApiError::BadParam { ref field, .. } if field == "cursor"),
                "{bad}"
            );
        }
    }
}
