//! What resolvers can reach: the shared services, who is calling, and per-request state.

use std::sync::Arc;

use crate::access::Caller;
use crate::engine::RequestSpend;
use crate::services::SharedServices;

/// Collected while a request executes, read by the HTTP layer afterwards.
#[derive(Debug, Default)]
pub struct RequestState {
    /// Every upstream reply of the request notes its rate-limit figures here.
    pub spend: Arc<RequestSpend>,
    /// Related records read during this request.
    pub records: super::loader::RecordLoader,
    /// Listings of this request by their arguments: aliases with the same ones share one.
    pub listings: super::resources::Listings,
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
