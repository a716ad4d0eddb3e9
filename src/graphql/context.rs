//! What resolvers can reach: the shared services, who is calling, and per-request state.

use std::sync::{Arc, Mutex};

use crate::config::Providers;
use crate::credentials::Vault;
use crate::engine::{Engine, RateLimit};
use crate::schema::UnifiedModel;
use crate::store::Store;

/// Built once at start, shared by every request.
pub struct Services {
    pub store: Store,
    pub engine: Engine,
    pub providers: Providers,
    pub model: UnifiedModel,
    pub vault: Vault,
    /// Lets linked accounts point at loopback and private hosts (tests, demo, on-premise).
    pub allow_private_upstreams: bool,
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
    rate_limit: Mutex<Option<RateLimit>>,
}

impl RequestState {
    /// Keeps the most constrained figures seen (fewest remaining).
    pub fn note_rate_limit(&self, rl: RateLimit) {
        if let Ok(mut slot) = self.rate_limit.lock() {
            let keep = match slot.as_ref() {
                Some(old) => rl.remaining.unwrap_or(u64::MAX) <= old.remaining.unwrap_or(u64::MAX),
                None => true,
            };
            if keep {
                *slot = Some(rl);
            }
        }
    }

    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.rate_limit.lock().ok().and_then(|s| s.clone())
    }
}

pub type SharedServices = Arc<Services>;
