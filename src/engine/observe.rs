//! What the engine tells the rest of the gateway about each upstream call: the request log
//! and the metrics are built on this, outside the engine (which knows no database).

use std::time::Duration;

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

/// Receives every upstream call and breaker change. Must not block: it runs on the
/// request's path.
pub trait CallObserver: Send + Sync {
    fn call(&self, record: &CallRecord);
    fn breaker(&self, _provider: &str, _account: &str, _open: bool) {}
    /// A rate-limit window of `account` is used up for `reset_in` seconds (seen here, to be
    /// shared with the other replicas).
    fn exhausted(&self, _account: &str, _window: &str, _limit: Option<u64>, _reset_in: u64) {}
}
