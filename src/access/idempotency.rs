//! `idempotencyKey` on writes: the key is claimed in the database before the vendor is
//! called, and the first result is stored; a retry within 24 hours gets that result back
//! without a second upstream write. Keys belong to the linked account's environment.

use std::future::Future;

use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Caller, visible_account};
use crate::credentials::Vault;
use crate::error::{ErrorCode, HasCode};
use crate::secret::Secret;
use crate::services::Services;
use crate::store::Claim;

/// The longest key accepted (keys are usually UUIDs).
const MAX_KEY_LEN: usize = 200;

/// Why a key could not be claimed; the write did not run.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct IdempotencyError {
    pub code: ErrorCode,
    pub message: String,
}

impl HasCode for IdempotencyError {
    fn code(&self) -> ErrorCode {
        self.code
    }
}

fn refuse(code: ErrorCode, message: impl Into<String>) -> IdempotencyError {
    IdempotencyError {
        code,
        message: message.into(),
    }
}

fn from<E: HasCode + std::fmt::Display>(e: &E) -> IdempotencyError {
    refuse(e.code(), e.to_string())
}

/// Stored results are vendor records: sealed with the secret key like credentials, bound
/// to their environment and key, so the table holds no personal data in clear.
const SEALED_PREFIX: &str = "sealed:v1:";

fn context(environment: &str, key: &str) -> String {
    format!("idempotency\u{0}{environment}\u{0}{key}")
}

/// A result as it is stored.
pub fn seal_result(vault: &Vault, environment: &str, key: &str, response: &str) -> String {
    use base64::Engine as _;
    let blob = vault.seal_secret(&context(environment, key), &Secret::new(response));
    format!("{SEALED_PREFIX}{}", STANDARD.encode(blob))
}

/// The stored response in clear (results stored before sealing began read as they are);
/// `None` when it cannot be opened with this vault's key.
pub fn open_result(vault: &Vault, environment: &str, key: &str, stored: &str) -> Option<String> {
    use base64::Engine as _;
    let Some(b64) = stored.strip_prefix(SEALED_PREFIX) else {
        return Some(stored.to_string());
    };
    let blob = STANDARD.decode(b64).ok()?;
    vault
        .open_secret(&context(environment, key), &blob)
        .ok()
        .map(|s| s.expose().to_string())
}

/// What identifies "the same request": operation, target and input.
pub fn request_hash(
    operation: &str,
    account: &str,
    remote_id: Option<&str>,
    input: &Value,
) -> String {
    let mut h = Sha256::new();
    for part in [operation, account, remote_id.unwrap_or("")] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.update(input.to_string().as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A write's idempotency key (if the caller sent one), its operation and the hash of its
/// input: a key reused for another request is refused.
pub struct Keyed<'a> {
    pub key: Option<String>,
    pub operation: &'a str,
    pub hash: String,
}

/// Runs `write` at most once per key: returns the stored response of an earlier run, or
/// runs it and stores what it returns. Without a key, just runs it. The outer error is a
/// key that could not be claimed (the write did not run); the inner one is the write's.
/// A failure `maybe_applied` says the vendor may have acted on (its answer was cut off)
/// keeps the key claimed, so a retry with it is refused as in progress instead of writing
/// a second time.
pub async fn once<F, E>(
    services: &Services,
    caller: &Caller,
    account_id: &str,
    keyed: Keyed<'_>,
    write: F,
    maybe_applied: fn(&E) -> bool,
) -> Result<Result<Value, E>, IdempotencyError>
where
    F: Future<Output = Result<Value, E>>,
{
    let Keyed {
        key,
        operation,
        hash,
    } = keyed;
    let Some(key) = key else {
        return Ok(write.await);
    };
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(refuse(
            ErrorCode::BadUserInput,
            format!("`idempotencyKey` must be 1 to {MAX_KEY_LEN} characters"),
        ));
    }
    let environment = match caller {
        Caller::Environment { id } => id.clone(),
        Caller::Admin => {
            visible_account(services, caller, account_id)
                .await
                .map_err(|e| from(&e))?
                .environment_id
        }
    };
    let store = &services.store;
    match store
        .claim_idempotency_key(&environment, &key, operation, &hash)
        .await
        .map_err(|e| from(&e))?
    {
        Claim::Done { response } => open_result(&services.vault, &environment, &key, &response)
            .and_then(|text| serde_json::from_str(&text).ok())
            .map(Ok)
            .ok_or_else(|| {
                refuse(
                    ErrorCode::Internal,
                    "a stored idempotent result is unreadable",
                )
            }),
        Claim::InProgress => Err(refuse(
            ErrorCode::BadUserInput,
            format!("a request with idempotencyKey `{key}` is still in progress; retry it shortly"),
        )),
        Claim::Mismatch => Err(refuse(
            ErrorCode::BadUserInput,
            format!("idempotencyKey `{key}` was already used for a different request"),
        )),
        Claim::Fresh => match write.await {
            Ok(response) => {
                let sealed =
                    seal_result(&services.vault, &environment, &key, &response.to_string());
                store
                    .complete_idempotency_key(&environment, &key, &sealed)
                    .await
                    .map_err(|e| from(&e))?;
                Ok(Ok(response))
            }
            Err(e) if maybe_applied(&e) => Ok(Err(e)),
            Err(e) => {
                // The write did not happen: the caller may retry with the same key.
                let _ = store.release_idempotency_key(&environment, &key).await;
                Ok(Err(e))
            }
        },
    }
}
