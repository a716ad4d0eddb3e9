//! Request bodies, read only after the caller is known, within a size limit and a time
//! limit: a declared length over the limit is refused before a byte is read, and a body
//! trickled in slower than [`BODY_DEADLINE`] allows is cut off instead of holding a worker.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, header};

/// How long the whole body may take to arrive.
pub const BODY_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the request body is larger than {}; send less (this endpoint takes GraphQL documents and API payloads, not uploads)", size(*.0))]
    TooLarge(usize),
    #[error("the request body did not arrive within {} s", BODY_DEADLINE.as_secs())]
    TooSlow,
    #[error("the request body could not be read")]
    Broken,
}

/// `1 MiB`, `10 MiB`, `512 KiB`.
fn size(bytes: usize) -> String {
    if bytes.is_multiple_of(1024 * 1024) {
        format!("{} MiB", bytes / (1024 * 1024))
    } else {
        format!("{} KiB", bytes / 1024)
    }
}

impl BodyError {
    pub fn status(&self) -> StatusCode {
        match self {
            BodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::TooSlow => StatusCode::REQUEST_TIMEOUT,
            BodyError::Broken => StatusCode::BAD_REQUEST,
        }
    }
}

pub async fn read_limited(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, BodyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge(limit));
    }
    match tokio::time::timeout(BODY_DEADLINE, axum::body::to_bytes(body, limit)).await {
        Err(_) => Err(BodyError::TooSlow),
        Ok(Ok(bytes)) => Ok(bytes),
        // `to_bytes` fails the same way for an over-long body and a broken stream; the
        // length tells them apart.
        Ok(Err(_)) if declared.is_none_or(|n| n > limit as u64) => Err(BodyError::TooLarge(limit)),
        Ok(Err(_)) => Err(BodyError::Broken),
    }
}
