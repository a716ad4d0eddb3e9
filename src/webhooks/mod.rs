//! Inbound webhooks: verify a vendor's delivery as its provider file says, store its events
//! before answering, then turn them into unified events (reading the records the payload
//! only names) and publish them to subscribers.
//!
//! - `intake`: one delivery, from the HTTP handler to the inbox (verified, routed to its
//!   accounts, deduplicated, logged) in one transaction, so the vendor's 2xx means stored;
//! - `events`: the provider's `events` expression output, checked into [`VendorEvent`]s;
//! - `process`: the background processor that claims inbox rows, completes them through the
//!   engine (batch reads, the account's mapping with its overrides) and writes
//!   [`crate::store::UnifiedEvent`]s exactly once;
//! - `feed`: the tail of stored events, fanned out to this replica's subscriptions, fed by
//!   this replica's writes and by the others' (PostgreSQL `LISTEN`, or a short poll);
//! - `subscriptions`: per-account vendor subscriptions created, renewed at half their
//!   lifetime and created again, claimed with leases across replicas;
//! - `outbound`: each event delivered to the customer's endpoints, signed, retried for
//!   24 h, then dead-lettered;
//! - `reconcile`: polling for changes since a watermark, or since the vendor's own
//!   change-feed token; what no webhook brought becomes a `POLL` event, counted as missed;
//! - `linking`: what an account needs when it is linked (its app-level key indexed).
//!
//! Nothing here names a vendor: schemes live in `crate::signing`, everything else in the
//! provider file's `webhooks` section.

mod events;
pub mod feed;
pub mod intake;
pub mod linking;
pub mod outbound;
pub mod process;
pub mod reconcile;
pub mod subscriptions;

pub use events::{Action, VendorEvent};
pub use intake::{Intake, IntakeReply};
pub use linking::on_account_linked;

/// A time as vendors write it in their answers: RFC 3339 text or epoch milliseconds.
fn vendor_time(v: &serde_json::Value) -> Option<chrono::DateTime<chrono::Utc>> {
    match v {
        serde_json::Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc)),
        serde_json::Value::Number(n) => {
            n.as_i64().and_then(chrono::DateTime::from_timestamp_millis)
        }
        _ => None,
    }
}
