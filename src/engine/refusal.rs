//! What happens when a vendor refuses an account's token (HTTP 401).
//!
//! The engine does not own accounts, so it asks the layer that does, once per call: that
//! layer either hands back a fresh token to retry with (a reactive refresh, single-flight,
//! for a token revoked or expired early), or sets the account to NEEDS_REAUTH with the
//! reason before the caller is told `NEEDS_REAUTH`, so what a caller hears and what the
//! account says are one truth.

use std::future::Future;
use std::pin::Pin;

use crate::secret::Secret;

/// The answer to a refused token.
#[derive(Debug)]
pub enum Refusal {
    /// Retry the call once with this token.
    Retry(Secret),
    /// The account is now NEEDS_REAUTH (already stored, with its reason and an event).
    Parked,
    /// A refresh was due but could not be made now (the token endpoint failed): the account
    /// keeps its state and the caller hears that the vendor is unavailable.
    Unsettled(String),
}

pub trait TokenRefusals: Send + Sync {
    /// `refused` is the token the vendor refused; `retried` says a fresh token was refused
    /// too (the account must be parked, not refreshed again).
    fn refused<'a>(
        &'a self,
        account_id: &'a str,
        refused: &'a Secret,
        reason: &'a str,
        retried: bool,
    ) -> Pin<Box<dyn Future<Output = Refusal> + Send + 'a>>;
}
