//! Caller API keys: generated here, stored only as SHA-256 hashes. Keys are 256-bit random
//! values, so a fast hash is enough (there is nothing to brute-force as with passwords).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::secret::Secret;

/// A new key, e.g. `tsk_3q2...`.
pub fn generate() -> Secret {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    Secret::new(format!("tsk_{}", URL_SAFE_NO_PAD.encode(bytes)))
}

pub fn hash(key: &str) -> String {
    // Every request hashes its key: written into one buffer, not a string per byte.
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(key.as_bytes());
    let mut out = String::with_capacity(digest.len() * 2);
    for b in digest {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// The first characters, enough to recognise a key in a list without revealing it.
pub fn prefix(key: &str) -> String {
    key.chars().take(8).collect()
}

/// A new admin key that replaces every other one (`tessera admin-key rotate`), returned
/// to be shown once: the new key is stored before the old ones are revoked, so there is no
/// moment without a working admin key.
pub async fn rotate_admin_key(
    store: &crate::store::Store,
) -> Result<Secret, crate::store::StoreError> {
    let key = generate();
    let hash = hash(key.expose());
    store
        .insert_api_key(None, &hash, &prefix(key.expose()))
        .await?;
    store.revoke_admin_keys_except(&hash).await?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_hashes_stable() {
        let (a, b) = (generate(), generate());
        assert_ne!(a.expose(), b.expose());
        assert!(a.expose().starts_with("tsk_"));
        assert_eq!(hash("demo-key"), hash("demo-key"));
        assert_eq!(hash("demo-key").len(), 64);
        // Lowercase hex of SHA-256, as stored by every earlier version.
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(prefix("tsk_abcdefgh"), "tsk_abcd");
    }
}
