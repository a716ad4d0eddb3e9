//! `ANY /proxy/{accountId}/{path}`: the linked account's own API, with its credentials.
//! The vendor's status and body come back unchanged; rate-limit figures are added as the
//! IETF `ratelimit-*` headers. For endpoints the unified model does not cover.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::auth::authenticate;
use super::graphql::set_rate_limit_headers;
use crate::access::AuthError;
use crate::access::handle_for;
use crate::engine::RequestSpend;
use crate::error::{ErrorCode, HasCode};

/// Requests through the proxy carry API payloads, not uploads.
const MAX_BODY: usize = 10 * 1024 * 1024;

fn error(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code.as_str(), "message": message}})),
    )
        .into_response()
}

fn status_for(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::BadUserInput => StatusCode::BAD_REQUEST,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::NeedsReauth => StatusCode::CONFLICT,
        ErrorCode::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorCode::UpstreamUnavailable | ErrorCode::UpstreamError | ErrorCode::SchemaDrift => {
            StatusCode::BAD_GATEWAY
        }
        ErrorCode::ConfigError | ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

pub async fn proxy(
    State(state): State<AppState>,
    Path((account_id, path)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Response {
    let caller = match authenticate(&state.services, &headers).await {
        Ok(c) => c,
        Err(AuthError::Store) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Internal,
                &AuthError::Store.to_string(),
            );
        }
        Err(e) => {
            return error(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthenticated,
                &e.to_string(),
            );
        }
    };
    // Read only once the caller is known (see `body.rs`).
    let body = match super::body::read_limited(&headers, body, MAX_BODY).await {
        Ok(body) => body,
        Err(e) => return error(e.status(), ErrorCode::BadUserInput, &e.to_string()),
    };
    let log = Arc::new(RequestSpend::default());
    let account = match handle_for(&state.services, &caller, &account_id, log).await {
        Ok(a) => a,
        Err(e) => return error(status_for(e.code()), e.code(), &e.to_string()),
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let result = state
        .services
        .engine
        .passthrough(
            &account,
            method,
            &path,
            query.as_deref(),
            content_type,
            body.to_vec(),
        )
        .await;
    match result {
        Ok(p) => {
            let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut response = (status, p.body).into_response();
            if let Some(ct) = p.content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
                response.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            set_rate_limit_headers(response.headers_mut(), &p.rate_limit, p.status == 429);
            response
        }
        Err(crate::engine::EngineError::UpstreamUrl { reason }) => {
            error(StatusCode::BAD_REQUEST, ErrorCode::BadUserInput, &reason)
        }
        Err(e) => error(status_for(e.code()), e.code(), &e.to_string()),
    }
}
