//! `GET /oauth/callback`: the end of the authorization-code flow. The vendor redirects the
//! user here with `code` and `state`; the state (single use, expiring) says which
//! environment and provider the new linked account belongs to.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use crate::error::{ErrorCode, HasCode};

fn answer(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code.as_str(), "message": message}})),
    )
        .into_response()
}

pub async fn callback(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(error) = q.get("error") {
        // The user declined, or the vendor refused the request: nothing to exchange. The
        // state is spent all the same, so it cannot be replayed.
        if let Some(s) = q.get("state") {
            let _ = state.services.store.take_oauth_state(s).await;
        }
        let detail: String = q
            .get("error_description")
            .map(|d| format!(": {d}"))
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect();
        return answer(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadUserInput,
            &format!("the vendor did not authorize the connection ({error}{detail})"),
        );
    }
    let (Some(code), Some(st)) = (q.get("code"), q.get("state")) else {
        return answer(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadUserInput,
            "the callback needs `code` and `state`",
        );
    };
    match state.services.tokens.complete_authorization(st, code).await {
        Ok(account) => {
            crate::webhooks::on_account_linked(&state.services, &account).await;
            (
            StatusCode::OK,
            Json(json!({"accountId": account.id, "provider": account.provider, "status": account.status})),
        )
            .into_response()
        }
        Err(e) => {
            let status = match e.code() {
                ErrorCode::ConfigError => StatusCode::BAD_REQUEST,
                ErrorCode::UpstreamUnavailable => StatusCode::BAD_GATEWAY,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let code = if e.code() == ErrorCode::ConfigError {
                ErrorCode::BadUserInput
            } else {
                e.code()
            };
            answer(status, code, &e.to_string())
        }
    }
}
