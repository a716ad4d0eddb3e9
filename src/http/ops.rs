//! Liveness and readiness for load balancers and orchestrators.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;

use super::AppState;

pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Prometheus text: upstream calls, latency, throttles, retries, breaker transitions, and
/// the circuits open now, per provider.
pub async fn metrics(State(state): State<AppState>) -> impl axum::response::IntoResponse {
    let services = &state.services;
    let open: Vec<(String, f64)> = services
        .providers
        .iter()
        .map(|p| {
            (
                format!("provider=\"{}\"", p.name),
                services.engine.open_circuits(&p.name) as f64,
            )
        })
        .collect();
    let refreshes = services
        .tokens
        .refresh_outcomes()
        .into_iter()
        .map(|((provider, outcome), n)| {
            (
                format!("provider=\"{provider}\",outcome=\"{outcome}\""),
                n as f64,
            )
        })
        .collect();
    let text = services.monitor.metrics.render(&[
        crate::monitor::Gauge {
            name: "tessera_circuits_open",
            help: "Linked accounts whose circuit is open now.",
            kind: "gauge",
            samples: open,
        },
        crate::monitor::Gauge {
            name: "tessera_token_refreshes_total",
            help: "Token refreshes done by this replica, by outcome.",
            kind: "counter",
            samples: refreshes,
        },
    ]);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

/// Ready when the database answers and providers are loaded.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let db = state.services.store.ping().await.is_ok();
    let providers = state.services.providers.len();
    let ready = db && providers > 0;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(
            json!({"status": if ready { "ready" } else { "not ready" }, "database": db, "providers": providers}),
        ),
    )
}
