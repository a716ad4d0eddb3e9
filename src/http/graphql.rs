//! GraphQL over HTTP: POST JSON, GET `?query=`, and GraphiQL for browsers.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::auth::authenticate;
use crate::access::{AuthError, Caller};
use crate::engine::RateLimit;
use crate::graphql::{Lookup, PATH_EXTENSION, RequestState};

/// The most a request body may be: a GraphQL document and its variables, not an upload.
const MAX_BODY: usize = 1024 * 1024;

fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"errors": [{"message": message, "extensions": {"code": code}}]})),
    )
        .into_response()
}

pub async fn get_graphql(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let query = query.unwrap_or_default();
    if wants_html && !query.contains("query=") {
        return Html(playground(&state)).into_response();
    }
    let request = match async_graphql::http::parse_query_string(&query) {
        Ok(r) => r,
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "BAD_USER_INPUT",
                &format!("invalid GraphQL GET request: {e}"),
            );
        }
    };
    // GET must not change state (GraphQL over HTTP): mutations are refused.
    if has_mutation(&request.query) {
        return error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "BAD_USER_INPUT",
            "mutations must be sent with POST",
        );
    }
    let caller = match caller_of(&state, &headers).await {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    execute(&state, caller, request).await
}

fn has_mutation(query: &str) -> bool {
    use async_graphql::parser::types::OperationType;
    match async_graphql::parser::parse_query(query) {
        Ok(doc) => doc
            .operations
            .iter()
            .any(|(_, op)| op.node.ty == OperationType::Mutation),
        // Unparseable: the executor reports the syntax error.
        Err(_) => false,
    }
}

/// The caller is known before the body is read: a request without a valid key costs the
/// gateway its headers only, whatever body it declares or trickles in.
pub async fn post_graphql(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let caller = match caller_of(&state, &headers).await {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    let body = match super::body::read_limited(&headers, body, MAX_BODY).await {
        Ok(body) => body,
        Err(e) => return error_response(e.status(), "BAD_USER_INPUT", &e.to_string()),
    };
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "BAD_USER_INPUT",
                &format!(
                    "the body must be a JSON object with `query` (and optional `variables`, `operationName`): {e}"
                ),
            );
        }
    };
    execute(&state, caller, request).await
}

/// Who is calling, or the answer that refuses them.
async fn caller_of(state: &AppState, headers: &HeaderMap) -> Result<Caller, Response> {
    match authenticate(&state.services, headers).await {
        Ok(c) => Ok(c),
        Err(AuthError::Store) => Err(error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "INTERNAL",
            &AuthError::Store.to_string(),
        )),
        Err(e) => Err(error_response(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            &e.to_string(),
        )),
    }
}

async fn execute(state: &AppState, caller: Caller, request: async_graphql::Request) -> Response {
    let request_state = Arc::new(RequestState::default());
    let operation = request.operation_name.clone();
    let unseen = match state.planner.lookup(&request.query, operation.as_deref()) {
        Lookup::Plan(plan) => {
            let body = state
                .planner
                .answer(
                    &plan,
                    &state.services,
                    &caller,
                    &request.variables,
                    &request_state,
                )
                .await;
            if let Some(body) = body {
                let mut http = (
                    [(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    )],
                    body,
                )
                    .into_response();
                if let Some(rl) = request_state.spend.most_constrained() {
                    set_rate_limit_headers(http.headers_mut(), &rl, false);
                }
                return http;
            }
            None
        }
        Lookup::Unseen(key) => Some((key, request.query.clone())),
        Lookup::Declined => None,
    };
    state.planner.count_executed();
    let mut response = state
        .schema
        .execute(request.data(caller).data(request_state.clone()))
        .await;
    if let Some((key, query)) = unseen
        && response.errors.is_empty()
    {
        state.planner.learn(key, &query, operation.as_deref());
    }
    let mut rate_limited = false;
    for error in &mut response.errors {
        let ext = error.extensions.get_or_insert_with(Default::default);
        // The field path a resolver recorded (see `graphql::errors::at_path`).
        if let Some(async_graphql::Value::List(path)) = ext.get(PATH_EXTENSION).cloned() {
            ext.unset(PATH_EXTENSION);
            if error.path.is_empty() {
                error.path = path
                    .into_iter()
                    .filter_map(|seg| match seg {
                        async_graphql::Value::Number(n) => n
                            .as_u64()
                            .map(|i| async_graphql::PathSegment::Index(i as usize)),
                        async_graphql::Value::String(s) => {
                            Some(async_graphql::PathSegment::Field(s))
                        }
                        _ => None,
                    })
                    .collect();
            }
        }
        let code = match ext.get("code") {
            Some(async_graphql::Value::String(code)) => code.clone(),
            _ => {
                // Parse and validation errors come from async-graphql itself; they have no
                // path. Anything else without a code is ours and unexpected.
                let code = if error.path.is_empty() {
                    "BAD_USER_INPUT"
                } else {
                    "INTERNAL"
                };
                ext.set("code", code);
                code.to_string()
            }
        };
        rate_limited |= code == "RATE_LIMITED";
    }
    let warnings = request_state
        .warnings
        .lock()
        .map(|w| w.clone())
        .unwrap_or_default();
    if !warnings.is_empty() {
        response.extensions.insert(
            "warnings".into(),
            async_graphql::Value::List(warnings.into_iter().map(Into::into).collect()),
        );
    }
    let no_data = matches!(response.data, async_graphql::Value::Null);
    let status = if rate_limited && no_data {
        StatusCode::TOO_MANY_REQUESTS
    } else {
        StatusCode::OK
    };
    let mut http = (status, Json(&response)).into_response();
    if let Some(rl) = request_state.spend.most_constrained() {
        set_rate_limit_headers(http.headers_mut(), &rl, rate_limited);
    }
    http
}

pub(super) fn set_rate_limit_headers(headers: &mut HeaderMap, rl: &RateLimit, throttled: bool) {
    let mut put = |name: &'static str, v: Option<u64>| {
        if let Some(v) = v {
            headers.insert(name, HeaderValue::from(v));
        }
    };
    put("ratelimit-limit", rl.limit);
    put("ratelimit-remaining", rl.remaining);
    put("ratelimit-reset", rl.reset);
    if throttled {
        put("retry-after", rl.retry_after.or(rl.reset));
    }
    if let Some(policy) = rl
        .policy_header()
        .and_then(|p| HeaderValue::from_str(&p).ok())
    {
        headers.insert("ratelimit-policy", policy);
    }
}

fn playground(state: &AppState) -> String {
    let auth = state.playground_key.as_ref().map(|k| format!("Bearer {k}"));
    let mut source = async_graphql::http::GraphiQLSource::build()
        .endpoint("/graphql")
        .title("Tessera");
    if let Some(auth) = auth.as_deref() {
        source = source.header("Authorization", auth);
    }
    source.finish()
}
