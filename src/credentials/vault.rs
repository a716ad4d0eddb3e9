//! AES-256-GCM over the serialised credentials: a random 96-bit nonce per write, stored in
//! front of the ciphertext; the account id is the associated data, so a blob copied onto
//! another account's row does not decrypt.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::{Credentials, CredentialsError, SecretKey};
use crate::secret::Secret;

const NONCE_LEN: usize = 12;

#[derive(Clone)]
pub struct Vault {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(***)")
    }
}

/// The plaintext layout; private so nothing else can serialise a token.
#[derive(Serialize, Deserialize)]
struct Stored {
    #[serde(skip_serializing_if = "Option::is_none")]
    access_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    client_credentials: bool,
}

impl Vault {
    pub fn new(key: &SecretKey) -> Vault {
        Vault {
            cipher: Aes256Gcm::new(key.bytes().into()),
        }
    }

    pub fn seal(&self, account_id: &str, creds: &Credentials) -> Vec<u8> {
        let stored = Stored {
            access_token: creds.access_token.as_ref().map(|s| s.expose().to_string()),
            refresh_token: creds.refresh_token.as_ref().map(|s| s.expose().to_string()),
            api_key: creds.api_key.as_ref().map(|s| s.expose().to_string()),
            expires_at: creds.expires_at,
            client_credentials: creds.client_credentials,
        };
        let plaintext = serde_json::to_vec(&stored).unwrap_or_default();
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &plaintext,
                    aad: account_id.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend(sealed);
        out
    }

    /// Seals one secret (an OAuth client secret, a PKCE verifier) bound to `context`.
    pub fn seal_secret(&self, context: &str, secret: &Secret) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret.expose().as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend(sealed);
        out
    }

    pub fn open_secret(&self, context: &str, blob: &[u8]) -> Result<Secret, CredentialsError> {
        if blob.len() <= NONCE_LEN {
            return Err(CredentialsError::Undecryptable);
        }
        let (nonce, sealed) = blob.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| CredentialsError::Undecryptable)?;
        String::from_utf8(plain)
            .map(Secret::new)
            .map_err(|_| CredentialsError::Undecryptable)
    }

    pub fn open(&self, account_id: &str, blob: &[u8]) -> Result<Credentials, CredentialsError> {
        if blob.len() <= NONCE_LEN {
            return Err(CredentialsError::Undecryptable);
        }
        let (nonce, sealed) = blob.split_at(NONCE_LEN);
        let plaintext = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: account_id.as_bytes(),
                },
            )
            .map_err(|_| CredentialsError::Undecryptable)?;
        let stored: Stored =
            serde_json::from_slice(&plaintext).map_err(|_| CredentialsError::Undecryptable)?;
        Ok(Credentials {
            access_token: stored.access_token.map(Secret::new),
            refresh_token: stored.refresh_token.map(Secret::new),
            api_key: stored.api_key.map(Secret::new),
            expires_at: stored.expires_at,
            client_credentials: stored.client_credentials,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_opens_and_binds_to_the_account() {
        let vault = Vault::new(&SecretKey::generate());
        let creds = Credentials {
            access_token: Some(Secret::new("tok-plain")),
            refresh_token: None,
            api_key: None,
            expires_at: None,
            client_credentials: false,
        };
        let blob = vault.seal("acc-1", &creds);
        assert!(!blob.windows(9).any(|w| w == b"tok-plain"));
        assert_eq!(
            vault
                .open("acc-1", &blob)
                .unwrap()
                .access_token
                .unwrap()
                .expose(),
            "tok-plain"
        );
        assert!(vault.open("acc-2", &blob).is_err());
        assert!(
            Vault::new(&SecretKey::generate())
                .open("acc-1", &blob)
                .is_err()
        );
    }
}
