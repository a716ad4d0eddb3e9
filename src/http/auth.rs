//! Who is calling: `Authorization: Bearer KEY`, an environment's key or the admin key,
//! looked up by hash.

use axum::http::HeaderMap;

use crate::graphql::{Caller, Services};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing API key: send `Authorization: Bearer <key>`")]
    Missing,
    #[error("invalid or revoked API key")]
    Invalid,
    #[error("cannot check the API key right now")]
    Store,
}

pub async fn authenticate(services: &Services, headers: &HeaderMap) -> Result<Caller, AuthError> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or(AuthError::Missing)?;
    let text = value.to_str().map_err(|_| AuthError::Invalid)?.trim();
    let key = match text.split_once(' ') {
        Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") => key.trim(),
        _ => return Err(AuthError::Invalid),
    };
    if key.is_empty() {
        return Err(AuthError::Missing);
    }
    let found = services
        .store
        .find_api_key(&crate::apikey::hash(key))
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
