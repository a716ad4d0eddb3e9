//! `POST /webhooks/{provider}[/{accountId}]`: vendor deliveries. The handler only gathers
//! the request as the vendor sent it; `webhooks::Intake` verifies, routes and stores it.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::body::read_limited;
use crate::webhooks::{Intake, IntakeReply};

/// The largest delivery taken: a batch of 100 id-only events is about 40 KiB, a batch of
/// full records with custom fields a few hundred.
const MAX_DELIVERY: usize = 2 * 1024 * 1024;

pub async fn receive(
    State(state): State<AppState>,
    Path(path): Path<BTreeMap<String, String>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(provider) = path.get("provider") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let body = match read_limited(&headers, body, MAX_DELIVERY).await {
        Ok(b) => b,
        Err(e) => return (e.status(), Json(json!({"error": e.to_string()}))).into_response(),
    };
    let mut lowered = BTreeMap::new();
    for (name, value) in &headers {
        if let Ok(v) = value.to_str() {
            lowered.insert(name.as_str().to_ascii_lowercase(), v.to_owned());
        }
    }
    let query: Vec<(String, String)> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let intake = Intake {
        provider,
        account_id: path.get("account_id").map(String::as_str),
        method: method.as_str(),
        url: called_url(&state, &headers, &uri),
        headers: lowered,
        query,
        body: &body,
    };
    match intake.receive(&state.services).await {
        IntakeReply::Handshake(token) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            token,
        )
            .into_response(),
        IntakeReply::Accepted { events, replayed } => (
            StatusCode::OK,
            Json(json!({"accepted": events, "replayed": replayed})),
        )
            .into_response(),
        IntakeReply::Refused {
            status,
            outcome,
            reason,
        } => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            Json(json!({"error": reason, "outcome": outcome})),
        )
            .into_response(),
        IntakeReply::Unavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "30")],
            Json(json!({"error": "the gateway cannot store deliveries right now; retry later"})),
        )
            .into_response(),
    }
}

/// The URL as the vendor called it, which is what signatures that cover the URL sign:
/// the public URL when one is configured (behind a proxy the gateway sees another host),
/// else the request's own host.
fn called_url(state: &AppState, headers: &HeaderMap, uri: &axum::http::Uri) -> String {
    let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    match &state.services.public_url {
        Some(base) => format!("{}{path_and_query}", base.as_str().trim_end_matches('/')),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            format!("http://{host}{path_and_query}")
        }
    }
}
