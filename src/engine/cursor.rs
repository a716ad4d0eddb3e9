//! Relay cursors: the pagination state of a listing, signed so a client can neither forge
//! one nor point it at another account or resource.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::EngineError;

/// Where a listing stands: the upstream page (`state`, `None` for the first page), how many
/// records of that page were already returned, and the upstream page size, which stays
/// fixed for the whole walk so page-number vendors see consistent pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    #[serde(rename = "a")]
    pub account: String,
    #[serde(rename = "r")]
    pub resource: String,
    #[serde(rename = "s")]
    pub state: Option<String>,
    #[serde(rename = "o")]
    pub offset: usize,
    #[serde(rename = "l")]
    pub page_size: usize,
    /// A digest of the listing's filters: a cursor only continues the same listing.
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

#[derive(Clone)]
pub struct CursorCodec {
    key: [u8; 32],
}

impl std::fmt::Debug for CursorCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorCodec(***)")
    }
}

/// 128 bits of HMAC-SHA256 are plenty against forgery and keep cursors short.
const TAG_LEN: usize = 16;

impl CursorCodec {
    pub fn new(key: [u8; 32]) -> Self {
        CursorCodec { key }
    }

    fn tag(&self, payload: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!());
        mac.update(payload);
        mac.finalize().into_bytes()[..TAG_LEN].to_vec()
    }

    pub fn encode(&self, position: &Position) -> String {
        let payload = serde_json::to_vec(position).unwrap_or_default();
        let tag = self.tag(&payload);
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// Decodes a cursor issued for this account and resource.
    pub fn decode(
        &self,
        cursor: &str,
        account: &str,
        resource: &str,
        filter: Option<&str>,
    ) -> Result<Position, EngineError> {
        let (payload, tag) = cursor.split_once('.').ok_or(EngineError::BadCursor)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| EngineError::BadCursor)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| EngineError::BadCursor)?;
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.key).map_err(|_| EngineError::BadCursor)?;
        mac.update(&payload);
        // The whole tag, compared in constant time: a shorter tag would be a shorter secret
        // (one byte is guessed in 256 tries).
        if tag.len() != TAG_LEN {
            return Err(EngineError::BadCursor);
        }
        mac.verify_truncated_left(&tag)
            .map_err(|_| EngineError::BadCursor)?;
        let position: Position =
            serde_json::from_slice(&payload).map_err(|_| EngineError::BadCursor)?;
        if position.account != account
            || position.resource != resource
            || position.page_size == 0
            || position.filter.as_deref() != filter
        {
            return Err(EngineError::BadCursor);
        }
        Ok(position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos() -> Position {
        Position {
            account: "a1".into(),
            resource: "contacts".into(),
            state: Some("NTI1".into()),
            offset: 3,
            page_size: 5,
            filter: None,
        }
    }

    #[test]
    fn round_trips_and_rejects_edits_and_other_accounts() {
        let codec = CursorCodec::new([7; 32]);
        let c = codec.encode(&pos());
        assert_eq!(codec.decode(&c, "a1", "contacts", None).unwrap(), pos());
        assert!(matches!(
            codec.decode(&c, "a2", "contacts", None),
            Err(EngineError::BadCursor)
        ));
        assert!(matches!(
            codec.decode(&c, "a1", "companies", None),
            Err(EngineError::BadCursor)
        ));
        let mut edited = pos();
        edited.offset = 0;
        let forged = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&edited).unwrap()),
            c.split_once('.').unwrap().1
        );
        assert!(matches!(
            codec.decode(&forged, "a1", "contacts", None),
            Err(EngineError::BadCursor)
        ));
        assert!(matches!(
            CursorCodec::new([8; 32]).decode(&c, "a1", "contacts", None),
            Err(EngineError::BadCursor)
        ));
        assert!(matches!(
            codec.decode("garbage", "a1", "contacts", None),
            Err(EngineError::BadCursor)
        ));
    }

    #[test]
    fn a_truncated_tag_is_never_accepted() {
        let codec = CursorCodec::new([7; 32]);
        let mut edited = pos();
        edited.offset = 250;
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&edited).unwrap());
        for len in [1usize, 2, 8, 15] {
            let accepted = (0..=255u8)
                .filter(|b| {
                    let mut tag = codec.tag(&serde_json::to_vec(&edited).unwrap());
                    tag.truncate(len);
                    tag[len - 1] = *b;
                    let forged = format!("{payload}.{}", URL_SAFE_NO_PAD.encode(&tag));
                    codec.decode(&forged, "a1", "contacts", None).is_ok()
                })
                .count();
            assert_eq!(accepted, 0, "{len}-byte tags");
        }
    }
}
