//! The HTTP surface: the axum router, caller authentication, GraphQL over HTTP, GraphiQL
//! and the operational endpoints. Handlers extract, call, map; no business logic here.

mod auth;
mod graphql;
mod oauth;
mod ops;
mod proxy;

use std::sync::Arc;

use axum::Router;
use axum::routing::{any, get};

use crate::services::SharedServices;

pub use auth::authenticate;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub services: SharedServices,
    pub schema: async_graphql::dynamic::Schema,
    /// Pre-filled in GraphiQL's Authorization header (the demo's key; never a real one).
    pub playground_key: Option<Arc<str>>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/graphql",
            get(graphql::get_graphql).post(graphql::post_graphql),
        )
        .route("/proxy/{account_id}/{*path}", any(proxy::proxy))
        .route("/oauth/callback", get(oauth::callback))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .with_state(state)
}
