//! What resolvers can reach: the shared services, who is calling, and per-request state.

use std::sync::Arc;

use crate::config::Providers;
use crate::credentials::{TokenManager, Vault};
use crate::engine::{Engine, RateLimitLog};
use crate::schema::UnifiedModel;
use crate::store::Store;

/// Built once at start, shared by every request.
pub struct Services {
    pub store: Store,
    pub engine: Engine,
    pub providers: Providers,
    pub model: UnifiedModel,
    pub vault: Vault,
    /// Fresh access tokens, refreshed single-flight.
    pub tokens: Arc<TokenManager>,
    /// Lets linked accounts point at loopback and private hosts (tests, demo, on-premise).
    pub allow_private_upstreams: bool,
    /// The mapping overrides in force, and each account's merged provider.
    pub overrides: Arc<crate::overrides::OverrideRegistry>,
    /// Metrics of upstream calls (the request log is in the store).
    pub monitor: Arc<crate::monitor::Monitor>,
}

/// The authenticated caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Admin,
    Environment { id: String },
}

impl Caller {
    /// The environment whose data the caller may see; `None` for the admin (all).
    pub fn environment(&self) -> Option<&str> {
        match self {
            Caller::Admin => None,
            Caller::Environment { id } => Some(id),
        }
    }
}

/// Collected while a request executes, read by the HTTP layer afterwards.
#[derive(Debug, Default)]
pub struct RequestState {
    /// Every upstream reply of the request notes its rate-limit figures here.
    pub rate_limits: Arc<RateLimitLog>,
    /// Related records read during this request.
    pub records: super::loader::RecordLoader,
    /// Values the mappings had to drop (custom fields that do not fit their declared type),
    /// returned in the response's `extensions.warnings`.
    pub warnings: std::sync::Mutex<Vec<String>>,
}

impl RequestState {
    pub fn warn(&self, messages: impl IntoIterator<Item = String>) {
        if let Ok(mut w) = self.warnings.lock() {
            for m in messages {
                if !w.contains(&m) {
                    w.push(m);
                }
            }
        }
    }
}

pub type SharedServices = Arc<Services>;

/// The shared services, from a resolver.
pub(super) fn services(
    ctx: &async_graphql::dynamic::ResolverContext<'_>,
) -> Result<SharedServices, async_graphql::Error> {
    ctx.data::<SharedServices>().cloned()
}

/// Who is calling; a request without a key never reaches a resolver, but say so if it does.
pub(super) fn caller(
    ctx: &async_graphql::dynamic::ResolverContext<'_>,
) -> Result<Caller, async_graphql::Error> {
    ctx.data::<Caller>()
        .cloned()
        .map_err(|_| super::errors::coded(crate::error::ErrorCode::Unauthenticated, "no API key"))
}
