//! The public error codes of CONTRACT.md, and the one trait every boundary error implements.
//!
//! Each module owns its own error enum with typed fields; only `graphql` and `http` decide
//! what of an error reaches a caller. This file holds the shared vocabulary, and the text of
//! a caught panic (the HTTP guard and the task supervisor both report one).

use std::fmt;

/// The `extensions.code` values callers rely on (CONTRACT.md, "Errors").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    Unauthenticated,
    Forbidden,
    NotFound,
    BadUserInput,
    RateLimited,
    NeedsReauth,
    UpstreamUnavailable,
    UpstreamTimeout,
    UpstreamError,
    SchemaDrift,
    ConfigError,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::BadUserInput => "BAD_USER_INPUT",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::NeedsReauth => "NEEDS_REAUTH",
            ErrorCode::UpstreamUnavailable => "UPSTREAM_UNAVAILABLE",
            ErrorCode::UpstreamTimeout => "UPSTREAM_TIMEOUT",
            ErrorCode::UpstreamError => "UPSTREAM_ERROR",
            ErrorCode::SchemaDrift => "SCHEMA_DRIFT",
            ErrorCode::ConfigError => "CONFIG_ERROR",
            ErrorCode::Internal => "INTERNAL",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Implemented by every error that can reach a caller: the code comes from one exhaustive
/// match in the error's own module, so classification happens exactly once.
pub trait HasCode {
    fn code(&self) -> ErrorCode;
}

/// What a caught panic said, shortened: a panic message can quote anything, so only the
/// first 200 characters go to logs and `/readyz`.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text panic".to_string());
    text.chars().take(200).collect()
}
