use crate::error::{ErrorCode, HasCode};
use crate::store::StoreError;

/// Why an override cannot be stored, read or applied.
#[derive(Debug, thiserror::Error)]
pub enum OverrideError {
    /// The override itself is wrong: the message names the field, expression and position.
    #[error("invalid override: {0}")]
    Invalid(String),
    /// The caller may not act at this level or on this account.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// Stored overrides no longer compile together.
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl OverrideError {
    pub fn invalid(message: impl Into<String>) -> OverrideError {
        OverrideError::Invalid(message.into())
    }
}

impl HasCode for OverrideError {
    fn code(&self) -> ErrorCode {
        match self {
            OverrideError::Invalid(_) => ErrorCode::BadUserInput,
            OverrideError::Forbidden(_) => ErrorCode::Forbidden,
            OverrideError::NotFound(_) => ErrorCode::NotFound,
            OverrideError::Config(_) => ErrorCode::ConfigError,
            OverrideError::Store(e) => e.code(),
        }
    }
}
