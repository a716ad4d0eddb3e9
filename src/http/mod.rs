//! The HTTP surface: the axum router, caller authentication, GraphQL over HTTP, GraphiQL
//! and the operational endpoints. Handlers extract, call, map; no business logic here.

mod auth;
mod body;
mod graphql;
mod oauth;
mod ops;
mod proxy;
mod webhooks;
mod ws;

use std::sync::Arc;

use axum::Router;
use axum::routing::{any, get, post};

use crate::services::SharedServices;

pub use auth::authenticate;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub services: SharedServices,
    pub schema: async_graphql::dynamic::Schema,
    /// Answers the queries it covers without async-graphql (see `graphql::plan`).
    pub planner: Arc<crate::graphql::Planner>,
    /// Pre-filled in GraphiQL's Authorization header (the demo's key; never a real one).
    pub playground_key: Option<Arc<str>>,
    /// The hash of `TESSERA_METRICS_TOKEN`: a bearer token that may read `/metrics` (the
    /// admin key may too), so a Prometheus scraper needs no admin power.
    pub metrics_token: Option<Arc<str>>,
}

pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route(
            "/graphql",
            get(graphql::get_graphql).post(graphql::post_graphql),
        )
        .route("/graphql/ws", get(ws::upgrade))
        .route("/proxy/{account_id}/{*path}", any(proxy::proxy))
        .route("/oauth/start", get(oauth::start))
        .route("/oauth/callback", get(oauth::callback))
        .route("/webhooks/{provider}", post(webhooks::receive))
        .route("/webhooks/{provider}/{account_id}", post(webhooks::receive))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .with_state(state);
    with_panic_guard(routes)
}

/// A panic while answering (a bug: nothing from outside is meant to reach one) becomes a
/// 500 with the contract's `INTERNAL` code instead of a dropped connection, and is logged.
/// The process and the client's connection go on.
pub fn with_panic_guard(routes: Router) -> Router {
    routes.layer(tower_http::catch_panic::CatchPanicLayer::custom(
        |panic: Box<dyn std::any::Any + Send>| {
            let text = crate::error::panic_message(&*panic);
            tracing::error!(panic = %text, "a request panicked");
            let body = serde_json::json!({
                "errors": [{
                    "message": "internal error",
                    "extensions": {"code": crate::error::ErrorCode::Internal.as_str()}
                }]
            });
            axum::response::IntoResponse::into_response((
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(body),
            ))
        },
    ))
}
