//! Who is calling: the `Authorization` header, handed to [`crate::access`].

use axum::http::HeaderMap;

use crate::access::{AuthError, Caller, caller_for};
use crate::services::Services;

pub async fn authenticate(services: &Services, headers: &HeaderMap) -> Result<Caller, AuthError> {
    let value = match headers.get(axum::http::header::AUTHORIZATION) {
        Some(v) => Some(v.to_str().map_err(|_| AuthError::Invalid)?),
        None => None,
    };
    caller_for(&services.store, value).await
}
