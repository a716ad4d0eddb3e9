//! Who may do what: the caller behind an API key, the linked accounts that caller may see,
//! an account's [`AccountHandle`](crate::engine::AccountHandle) with a valid token, and
//! idempotency claims on writes.
//!
//! Every entry point that acts for a caller comes through here (GraphQL resolvers, the REST
//! proxy, and later webhook processing, probes and reconciliation), so the rules are
//! written once: another environment's account looks exactly like a missing one, a
//! disabled or unauthorized account is refused with its contract code, and a token is
//! refreshed single-flight before it is handed out. Nothing here knows GraphQL or HTTP.

mod accounts;
mod caller;
pub mod idempotency;
pub mod keys;

pub use accounts::{
    AccountError, handle_as_stored, handle_for, handle_for_cleanup, handle_for_row, visible_account,
};
pub use caller::{AuthError, Caller, bearer_key, caller_for, caller_for_key};
pub use idempotency::{IdempotencyError, Keyed, once, request_hash};
