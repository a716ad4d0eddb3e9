//! Liveness and readiness for load balancers and orchestrators.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;

pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Whether the request may read `/metrics`: the metrics token or the admin key. Metrics
/// name providers, account counts and traffic: not for anyone who can reach the port.
async fn may_read_metrics(state: &AppState, headers: &HeaderMap) -> bool {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let Ok(key) = crate::access::bearer_key(header) else {
        return false;
    };
    if let Some(token) = &state.metrics_token {
        // Hashes of equal length compared whole: no early exit on the first differing byte.
        let given = crate::access::keys::hash(key);
        if given.len() == token.len()
            && given
                .bytes()
                .zip(token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
        {
            return true;
        }
    }
    matches!(
        crate::access::caller_for_key(&state.services.store, key).await,
        Ok(crate::access::Caller::Admin)
    )
}

/// Prometheus text: upstream calls, latency, throttles, retries, breaker transitions, and
/// the circuits open now, per provider.
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !may_read_metrics(&state, &headers).await {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"code": "UNAUTHENTICATED", "message": "send `Authorization: Bearer <TESSERA_METRICS_TOKEN or the admin key>`"}})),
        )
            .into_response();
    }
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
    let tasks = services.tasks.report();
    let task_up = tasks
        .iter()
        .map(|t| (format!("task=\"{}\"", t.name), f64::from(u8::from(t.up))))
        .collect();
    let task_restarts = tasks
        .iter()
        .map(|t| (format!("task=\"{}\"", t.name), t.restarts as f64))
        .collect();
    let text = services.monitor.metrics.render(&[
        crate::monitor::Gauge {
            name: "tessera_background_task_up",
            help: "Whether a background task of this replica is running (0 while it waits to be restarted).",
            kind: "gauge",
            samples: task_up,
        },
        crate::monitor::Gauge {
            name: "tessera_background_task_restarts_total",
            help: "Restarts of a background task of this replica after it panicked.",
            kind: "counter",
            samples: task_restarts,
        },
        crate::monitor::Gauge {
            name: "tessera_circuits_open",
            help: "Linked accounts whose circuit is open now.",
            kind: "gauge",
            samples: open,
        },
        crate::monitor::Gauge {
            name: "tessera_graphql_requests_total",
            help: "GraphQL requests over HTTP by what answered them: the planned path, or async-graphql (everything it does not cover, and every answer with errors).",
            kind: "counter",
            samples: vec![
                ("path=\"planned\"".to_owned(), state.planner.answered() as f64),
                ("path=\"executor\"".to_owned(), state.planner.executed() as f64),
            ],
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
        .into_response()
}

/// Ready when the database answers, providers are loaded and every background task runs
/// (a task waiting to be restarted after a panic makes the replica not ready, with why).
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let db = state.services.store.ping().await.is_ok();
    let providers = state.services.providers.len();
    let tasks: Vec<serde_json::Value> = state
        .services
        .tasks
        .report()
        .into_iter()
        .map(|t| {
            json!({
                "name": t.name,
                "up": t.up,
                "restarts": t.restarts,
                "lastFailure": t.last_failure,
                "lastFailureAt": t.last_failure_at.map(|at| at.to_rfc3339()),
            })
        })
        .collect();
    let tasks_up = tasks.iter().all(|t| t["up"] == true);
    let ready = db && providers > 0 && tasks_up;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(
            json!({"status": if ready { "ready" } else { "not ready" }, "database": db, "providers": providers, "tasks": tasks}),
        ),
    )
}
