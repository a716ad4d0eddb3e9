//! The shared services: built once at start by `app`, handed to every request by `http`,
//! and reached by `access` and `graphql`. Holding them in one place below both keeps the
//! HTTP surface from reaching into the GraphQL module for them.

use std::sync::Arc;

use crate::config::Providers;
use crate::credentials::{TokenManager, Vault};
use crate::engine::Engine;
use crate::jobs::Supervisor;
use crate::monitor::Monitor;
use crate::overrides::OverrideRegistry;
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
    pub overrides: Arc<OverrideRegistry>,
    /// Metrics of upstream calls (the request log is in the store).
    pub monitor: Arc<Monitor>,
    /// The background tasks and what became of them (`/readyz`, `/metrics`).
    pub tasks: Arc<Supervisor>,
}

pub type SharedServices = Arc<Services>;
