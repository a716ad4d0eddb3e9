//! `idempotencyKey` on mutations: the key is claimed in the database before the vendor is
//! called, and the first result is stored; a retry within 24 hours gets that result back
//! without a second upstream write. Keys belong to the linked account's environment.

use std::future::Future;

use async_graphql::Error;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::context::{Caller, Services};
use super::errors::{coded, from_code};
use crate::error::ErrorCode;
use crate::store::Claim;

/// The longest key accepted (keys are usually UUIDs).
const MAX_KEY_LEN: usize = 200;

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

/// Runs `write` at most once per key: returns the stored response of an earlier run, or
/// runs it and stores what it returns. Without a key, just runs it.
pub async fn once<F>(
    services: &Services,
    caller: &Caller,
    account_id: &str,
    key: Option<String>,
    operation: &str,
    hash: String,
    write: F,
) -> Result<Value, Error>
where
    F: Future<Output = Result<Value, Error>>,
{
    let Some(key) = key else { return write.await };
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(coded(
            ErrorCode::BadUserInput,
            format!("`idempotencyKey` must be 1 to {MAX_KEY_LEN} characters"),
        ));
    }
    let environment = match caller {
        Caller::Environment { id } => id.clone(),
        Caller::Admin => {
            super::accounts::visible_account(services, caller, account_id)
                .await
                .map_err(|e| from_code(&e))?
                .environment_id
        }
    };
    let store = &services.store;
    match store
        .claim_idempotency_key(&environment, &key, operation, &hash)
        .await
        .map_err(|e| from_code(&e))?
    {
        Claim::Done { response } => serde_json::from_str(&response).map_err(|_| {
            coded(
                ErrorCode::Internal,
                "a stored idempotent result is unreadable",
            )
        }),
        Claim::InProgress => Err(coded(
            ErrorCode::BadUserInput,
            format!("a request with idempotencyKey `{key}` is still in progress; retry it shortly"),
        )),
        Claim::Mismatch => Err(coded(
            ErrorCode::BadUserInput,
            format!("idempotencyKey `{key}` was already used for a different request"),
        )),
        Claim::Fresh => match write.await {
            Ok(response) => {
                store
                    .complete_idempotency_key(&environment, &key, &response.to_string())
                    .await
                    .map_err(|e| from_code(&e))?;
                Ok(response)
            }
            Err(e) => {
                // A failed write did not happen (or not for sure): the caller may retry.
                let _ = store.release_idempotency_key(&environment, &key).await;
                Err(e)
            }
        },
    }
}
