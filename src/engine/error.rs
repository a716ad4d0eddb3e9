//! What can go wrong between the engine and a vendor, classified once.

use crate::error::{ErrorCode, HasCode};

use super::ratelimit::RateLimit;

/// How a connection failed, so an operator can tell DNS from TLS at a glance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkFailure {
    Dns,
    Connect,
    Tls,
    /// The name resolved, to an address the upstream allow list does not name: nothing
    /// was sent. The engine reports it as [`EngineError::UpstreamRefused`], not as a
    /// failure of the network.
    Refused,
    /// The vendor started answering and the answer stopped before it ended: the
    /// connection was reset mid-body, or the body ended inside its JSON document.
    CutOff,
    Other,
}

impl NetworkFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkFailure::Dns => "DNS",
            NetworkFailure::Connect => "TCP_CONNECT",
            NetworkFailure::Tls => "TLS",
            NetworkFailure::Refused => "REFUSED",
            NetworkFailure::CutOff => "CUT_OFF",
            NetworkFailure::Other => "NETWORK",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("provider `{provider}` does not support `{operation}` on `{resource}`")]
    Unsupported {
        provider: String,
        resource: String,
        operation: &'static str,
    },
    #[error(
        "provider `{provider}` cannot filter by `{filter}`; drop that filter or filter the results yourself"
    )]
    UnsupportedFilter { provider: String, filter: String },
    #[error(
        "the cursor is invalid: it was not issued by this gateway for this list (with these filters), or it was edited"
    )]
    BadCursor,
    #[error("`first` must be between 0 and {max}")]
    BadPageSize { max: usize },
    #[error("the upstream URL is not allowed: {reason}")]
    UpstreamUrl { reason: String },
    /// The upstream is, or resolves to, an address the allow list does not name (loopback,
    /// private, link-local, ...): refused before anything was sent.
    #[error("{0}")]
    UpstreamRefused(crate::upstreams::Refused),
    #[error("the vendor answered HTTP 404{summary}")]
    NotFound { summary: String },
    #[error(
        "the vendor rejected the linked account's credentials (HTTP {status}{summary}); the account must be reconnected"
    )]
    Unauthorized { status: u16, summary: String },
    #[error("the vendor refused access (HTTP {status}{summary})")]
    Forbidden { status: u16, summary: String },
    #[error("the vendor's rate limit is exhausted (HTTP {status}); retry after the reset")]
    RateLimited { status: u16, rate_limit: RateLimit },
    #[error("the vendor is unavailable (HTTP {status}{summary})")]
    Unavailable {
        status: u16,
        summary: String,
        /// Seconds the vendor asked to wait (`Retry-After` on a 503).
        retry_after: Option<u64>,
    },
    #[error(
        "calls to this account's vendor are failing; the gateway stopped calling it for {retry_in}s (circuit open)"
    )]
    CircuitOpen { retry_in: u64 },
    #[error(
        "the vendor's rate limit for this account is used up until its reset; the request was not sent"
    )]
    BudgetExhausted { rate_limit: RateLimit },
    #[error("the vendor did not answer in time")]
    Timeout,
    #[error("cannot reach the vendor: {} failure{}", kind.as_str(), detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Network {
        kind: NetworkFailure,
        /// What the layer that failed said, where it says something useful (the TLS
        /// layer's reason: an expired certificate, one for another host).
        detail: Option<String>,
    },
    /// The answer stopped before it ended. On a write the vendor may have applied it.
    #[error(
        "the vendor's answer was cut off before it ended ({what}){}",
        if *write { "; the write was sent and may have been applied at the vendor: read the record before sending it again" } else { "" }
    )]
    CutOff { what: &'static str, write: bool },
    #[error("the vendor answered HTTP {status}{summary}")]
    Upstream { status: u16, summary: String },
    /// The vendor no longer knows the change feed's token (the provider file's
    /// `changes.expired` matched its refusal): the feed starts over with a full listing.
    #[error("the vendor no longer knows the change feed's token (HTTP {status}{summary})")]
    FeedExpired { status: u16, summary: String },
    #[error("the vendor refused the data (HTTP {status}{summary})")]
    Rejected { status: u16, summary: String },
    #[error("a request mapping failed: {0}")]
    Mapping(crate::mapping::MappingError),
    /// A request mapping refused the caller's input with `$error(...)` (a vendor rule the
    /// provider file knows, e.g. one person per deal): the caller's to fix.
    #[error("{message}")]
    InputRefused { message: String },
    #[error("the provider file's `{what}` gave {got}, not the JSON object it must give")]
    NotAnObject {
        what: &'static str,
        got: &'static str,
    },
    #[error(
        "the vendor announced another page but returned an empty one (out-of-range page); the listing was stopped"
    )]
    EmptyPage,
    #[error(
        "the vendor returned record `{id}` twice in one listing (a repeated or reset cursor); the listing was stopped instead of returning duplicates"
    )]
    DuplicateRecord { id: String },
    #[error("the vendor's response changed shape: {what}")]
    Drift { what: String },
    #[error("the vendor repeated a pagination cursor; the listing was stopped instead of looping")]
    PaginationLoop,
    #[error(
        "the listing needed more than {pages} upstream pages for one request; ask for a smaller `first`"
    )]
    PageCap { pages: usize },
    /// The request made as many upstream calls as one request may.
    #[error(
        "this request made {limit} upstream calls, the most one request may make (TESSERA_MAX_UPSTREAM_CALLS): ask for fewer records or relations, and page with `after`"
    )]
    CallCeiling { limit: u64 },
    /// The request's mappings took the CPU one request may spend on them.
    #[error(
        "mapping this request's records took more than the {} ms of CPU one request may spend on mappings (TESSERA_MAPPING_BUDGET_MS): the account's overrides are too costly for this many records; ask for fewer records, or simplify the override (explainMapping shows which expression each field uses)",
        budget.as_millis()
    )]
    MappingBudget { budget: std::time::Duration },
    /// The evaluation of a mapping did not finish (its thread panicked, or the pool closed).
    #[error(
        "the mapping of this request's records was interrupted; retry, and report it if it persists"
    )]
    MappingAborted,
}

impl HasCode for EngineError {
    fn code(&self) -> ErrorCode {
        match self {
            EngineError::Unsupported { .. }
            | EngineError::BadCursor
            | EngineError::BadPageSize { .. }
            | EngineError::Rejected { .. }
            | EngineError::UnsupportedFilter { .. }
            | EngineError::InputRefused { .. }
            | EngineError::CallCeiling { .. } => ErrorCode::BadUserInput,
            EngineError::UpstreamUrl { .. }
            | EngineError::Mapping(_)
            | EngineError::MappingBudget { .. }
            | EngineError::NotAnObject { .. } => ErrorCode::ConfigError,
            EngineError::NotFound { .. } => ErrorCode::NotFound,
            EngineError::UpstreamRefused(_) => ErrorCode::Forbidden,
            EngineError::Unauthorized { .. } => ErrorCode::NeedsReauth,
            EngineError::Forbidden { .. } => ErrorCode::Forbidden,
            EngineError::RateLimited { .. } | EngineError::BudgetExhausted { .. } => {
                ErrorCode::RateLimited
            }
            EngineError::Unavailable { .. }
            | EngineError::Network { .. }
            | EngineError::CutOff { .. }
            | EngineError::CircuitOpen { .. } => ErrorCode::UpstreamUnavailable,
            EngineError::Timeout => ErrorCode::UpstreamTimeout,
            EngineError::Upstream { .. }
            | EngineError::FeedExpired { .. }
            | EngineError::PaginationLoop
            | EngineError::EmptyPage
            | EngineError::DuplicateRecord { .. }
            | EngineError::PageCap { .. } => ErrorCode::UpstreamError,
            EngineError::Drift { .. } => ErrorCode::SchemaDrift,
            EngineError::MappingAborted => ErrorCode::Internal,
        }
    }
}

impl EngineError {
    pub fn rate_limit(&self) -> Option<&RateLimit> {
        match self {
            EngineError::RateLimited { rate_limit, .. }
            | EngineError::BudgetExhausted { rate_limit } => Some(rate_limit),
            _ => None,
        }
    }

    /// The vendor's HTTP status, when the vendor answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            EngineError::Unauthorized { status, .. }
            | EngineError::Forbidden { status, .. }
            | EngineError::RateLimited { status, .. }
            | EngineError::Unavailable { status, .. }
            | EngineError::Upstream { status, .. }
            | EngineError::FeedExpired { status, .. }
            | EngineError::Rejected { status, .. } => Some(*status),
            EngineError::NotFound { .. } => Some(404),
            _ => None,
        }
    }

    /// A short stable name of what went wrong, for the request log and metrics.
    pub fn class(&self) -> &'static str {
        match self {
            EngineError::RateLimited { .. } => "rate_limited",
            EngineError::BudgetExhausted { .. } => "budget_exhausted",
            EngineError::CircuitOpen { .. } => "circuit_open",
            EngineError::Unauthorized { .. } => "unauthorized",
            EngineError::Forbidden { .. } => "forbidden",
            EngineError::NotFound { .. } => "not_found",
            EngineError::Unavailable { .. } => "unavailable",
            EngineError::Timeout => "timeout",
            EngineError::UpstreamRefused(_) => "upstream_refused",
            EngineError::Network { kind, .. } => match kind {
                NetworkFailure::Dns => "dns",
                NetworkFailure::Connect => "connect",
                NetworkFailure::Tls => "tls",
                NetworkFailure::Refused => "upstream_refused",
                NetworkFailure::CutOff => "cut_off",
                NetworkFailure::Other => "network",
            },
            EngineError::CutOff { .. } => "cut_off",
            EngineError::Rejected { .. } => "rejected",
            EngineError::Upstream { .. } => "upstream_error",
            EngineError::FeedExpired { .. } => "feed_expired",
            EngineError::Drift { .. } => "drift",
            EngineError::CallCeiling { .. } => "call_ceiling",
            EngineError::MappingBudget { .. } => "mapping_budget",
            _ => "error",
        }
    }

    /// Whether the request left for the vendor (or the way to it) before it failed: a
    /// refusal of Tessera's own (a bad argument, an open circuit, a spent budget) says
    /// nothing about the vendor.
    pub fn reached_vendor(&self) -> bool {
        matches!(
            self,
            EngineError::NotFound { .. }
                | EngineError::Unauthorized { .. }
                | EngineError::Forbidden { .. }
                | EngineError::RateLimited { .. }
                | EngineError::Unavailable { .. }
                | EngineError::Timeout
                | EngineError::Network { .. }
                | EngineError::CutOff { .. }
                | EngineError::Upstream { .. }
                | EngineError::FeedExpired { .. }
                | EngineError::Rejected { .. }
                | EngineError::EmptyPage
                | EngineError::DuplicateRecord { .. }
                | EngineError::Drift { .. }
                | EngineError::PaginationLoop
                | EngineError::PageCap { .. }
        )
    }

    /// A failure that says the vendor (or the way to it) is unwell, rather than that this
    /// request was wrong: what retries and the circuit breaker act on.
    pub fn is_outage(&self) -> bool {
        matches!(
            self,
            EngineError::Unavailable { .. }
                | EngineError::Timeout
                | EngineError::Network { .. }
                | EngineError::CutOff { .. }
        )
    }

    /// An outage worth retrying on an idempotent read: 502, 503, 504, timeouts, refused or
    /// reset connections, answers cut off mid-body. (A 500 is the vendor's bug; DNS and TLS
    /// failures do not heal in milliseconds.) Writes are never retried, whatever this says.
    pub fn is_retryable(&self) -> bool {
        match self {
            EngineError::Unavailable { status, .. } => matches!(status, 502..=504),
            EngineError::Timeout | EngineError::CutOff { .. } => true,
            EngineError::Network { kind, .. } => {
                matches!(kind, NetworkFailure::Connect | NetworkFailure::Other)
            }
            _ => false,
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            EngineError::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Seconds the vendor asked to wait before the next try, if it said.
    pub fn wait_hint(&self) -> Option<u64> {
        self.retry_after()
    }

    pub fn network_failure(&self) -> Option<NetworkFailure> {
        match self {
            EngineError::Network { kind, .. } => Some(*kind),
            EngineError::CutOff { .. } => Some(NetworkFailure::CutOff),
            _ => None,
        }
    }
}
