//! The authenticated caller: an environment's API key or the admin key, looked up by hash.

use super::keys;
use crate::store::Store;

/// The authenticated caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Admin,
    Environment { id: String },
}

impl Caller {
    /// The environment whose data the caller may see; `None` for the admin (all).
    pub fn environment(&self) -> Option<&str> {
        match self {
            Caller::Admin => None,
            Caller::Environment { id } => Some(id),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing API key: send `Authorization: Bearer <key>`")]
    Missing,
    #[error("invalid or revoked API key")]
    Invalid,
    #[error("cannot check the API key right now")]
    Store,
}

/// The caller for an `Authorization` value (`Bearer KEY`), however it arrived: an HTTP
/// header, or a WebSocket `connection_init` payload.
pub async fn caller_for(store: &Store, authorization: Option<&str>) -> Result<Caller, AuthError> {
    caller_for_key(store, bearer_key(authorization)?).await
}

/// The key of an `Authorization` value: `Bearer KEY`, scheme in any case.
pub fn bearer_key(authorization: Option<&str>) -> Result<&str, AuthError> {
    let text = authorization.ok_or(AuthError::Missing)?.trim();
    let key = match text.split_once(' ') {
        Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") => key.trim(),
        _ => return Err(AuthError::Invalid),
    };
    if key.is_empty() {
        return Err(AuthError::Missing);
    }
    Ok(key)
}

/// The caller a key belongs to (a key revoked on another replica is refused within a
/// second; see `Store::recent_api_key`).
pub async fn caller_for_key(store: &Store, key: &str) -> Result<Caller, AuthError> {
    let found = store
        .recent_api_key(&keys::hash(key))
        .await
        .map_err(|_| AuthError::Store)?;
    match found {
        Some(k) => Ok(match k.environment_id {
            Some(id) => Caller::Environment { id },
            None => Caller::Admin,
        }),
        None => Err(AuthError::Invalid),
    }
}
