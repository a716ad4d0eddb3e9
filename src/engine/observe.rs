//! What the engine tells the rest of the gateway about each upstream call: the request log
//! and the metrics are built on this, outside the engine (which knows no database).

use std::time::Duration;

use serde_json::Value;

use super::ratelimit::RateLimit;

/// One attempt of one upstream call.
#[derive(Debug, Clone)]
pub struct CallRecord {
    pub account_id: String,
    pub provider: String,
    pub method: String,
    /// The URL path only: query strings can carry credentials (`api_token=`).
    pub path: String,
    /// The vendor's status, when it answered.
    pub status: Option<u16>,
    pub latency: Duration,
    pub rate_limit: RateLimit,
    /// `None` on success; else the class of failure (`timeout`, `connect`, `dns`, ...).
    pub error_class: Option<&'static str>,
    /// 0 for the first attempt, 1 for the first retry, ...
    pub retry: u32,
    /// Whether the vendor throttled this call.
    pub throttled: bool,
}

/// What one listing of a resource returned (after all its pages were read, or failed).
#[derive(Debug, Clone)]
pub struct ListingRecord {
    pub account_id: String,
    pub provider: String,
    pub resource: String,
    pub outcome: ListingOutcome,
    /// From the first page (no cursor) and without a filter: comparable with the account's
    /// other listings of the resource.
    pub counted: bool,
    /// What the observer returned for the listing's first page ([`CallObserver::first_page`]).
    pub shape: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListingOutcome {
    /// `records` returned; `complete` when the vendor's last page was reached.
    Records { records: usize, complete: bool },
    /// The vendor answered 404 to the listing itself.
    NotFound,
    /// Any other failure (reported through [`CallObserver::call`] too).
    Failed,
}

/// Receives every upstream call and breaker change. Must not block: it runs on the
/// request's path.
pub trait CallObserver: Send + Sync {
    fn call(&self, record: &CallRecord);
    fn breaker(&self, _provider: &str, _account: &str, _open: bool) {}
    /// A rate-limit window of `account` is used up for `reset_in` seconds (seen here, to be
    /// shared with the other replicas).
    fn exhausted(&self, _account: &str, _window: &str, _limit: Option<u64>, _reset_in: u64) {}
    /// The first page of a listing that starts from the beginning at the resource's list
    /// endpoint (not its search endpoint), before its records are read: the observer may summarise its shape (for drift detection); what it returns
    /// comes back in the listing's [`ListingRecord::shape`]. Called for every such page:
    /// sample inside.
    fn first_page(
        &self,
        _account: &str,
        _resource: &str,
        _body: &Value,
        _records_pointer: &str,
        _next_cursor: Option<&str>,
    ) -> Option<String> {
        None
    }
    /// A listing ended.
    fn listing(&self, _record: &ListingRecord) {}
}
