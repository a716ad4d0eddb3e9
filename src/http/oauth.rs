//! The authorization-code flow's two browser legs.
//!
//! `GET /oauth/start?state=...` (startOAuth's `authorizationUrl`) binds the started
//! authorization to the browser that opens it first: it sets a cookie holding a fresh secret
//! (the state keeps only its hash) and redirects to the vendor's consent page. Another
//! browser opening the same link is refused, and the vendor's URL is revealed only with the
//! cookie.
//!
//! `GET /oauth/callback`: the vendor redirects the user here with `code` and `state`; the
//! state (single use, expiring) says which environment and provider the new linked account
//! belongs to, and is accepted only with the cookie of the browser that started it. A
//! callback without it consumes nothing, so it can neither link nor spend the rightful
//! browser's flow. The cookie is cleared either way.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use crate::credentials::refresh::{browser_cookie_name, browser_hash, new_browser_secret};
use crate::error::{ErrorCode, HasCode};
use crate::store::StateClaim;

/// A refusal: JSON, or a small page for a browser that asks for HTML.
fn answer(headers: &HeaderMap, status: StatusCode, code: ErrorCode, message: &str) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if wants_html {
        let escaped = message
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;");
        let page = format!(
            "<!doctype html><meta charset=\"utf-8\"><title>Connection not completed</title><h1>Connection not completed</h1><p>{escaped}</p><p><code>{}</code></p>",
            code.as_str()
        );
        return (status, axum::response::Html(page)).into_response();
    }
    (
        status,
        Json(json!({"error": {"code": code.as_str(), "message": message}})),
    )
        .into_response()
}

/// The value of cookie `name` in the request, if it carries one.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
}

/// `Set-Cookie` for a state's browser secret (`None`: clear it). Secure when the gateway's
/// public URL is https; Lax so that the vendor's top-level redirect back carries it.
fn set_cookie(state: &AppState, st: &str, value: Option<(&str, i64)>) -> Option<HeaderValue> {
    let secure = state
        .services
        .public_url
        .as_ref()
        .is_some_and(|u| u.scheme() == "https");
    let (value, max_age) = value.unwrap_or(("", 0));
    let text = format!(
        "{}={value}; Path=/oauth; Max-Age={}; HttpOnly; SameSite=Lax{}",
        browser_cookie_name(st),
        max_age.max(0),
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&text).ok()
}

fn with_headers(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    let h = response.headers_mut();
    if let Some(c) = cookie {
        h.append(header::SET_COOKIE, c);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

pub async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(st) = q.get("state").filter(|s| !s.is_empty() && s.len() <= 200) else {
        return answer(
            &headers,
            StatusCode::BAD_REQUEST,
            ErrorCode::BadUserInput,
            "the authorization link needs its `state` (use startOAuth's authorizationUrl as it is)",
        );
    };
    let name = browser_cookie_name(st);
    let presented = cookie(&headers, &name).map(|c| browser_hash(&c));
    let (secret, hash) = new_browser_secret();
    let claim = state
        .services
        .store
        .claim_oauth_state(st, &hash, presented.as_deref())
        .await;
    match claim {
        Ok(StateClaim::Claimed {
            authorize_url,
            expires_at,
            fresh,
        }) => {
            let Ok(location) = HeaderValue::from_str(&authorize_url) else {
                return answer(
                    &headers,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::Internal,
                    "the stored authorization URL cannot be sent",
                );
            };
            let mut response = StatusCode::FOUND.into_response();
            response.headers_mut().insert(header::LOCATION, location);
            // A browser coming back keeps the cookie it has; a new claim gets its secret.
            let cookie = if fresh {
                let ttl = (expires_at - chrono::Utc::now()).num_seconds();
                set_cookie(&state, st, Some((secret.expose(), ttl)))
            } else {
                None
            };
            with_headers(response, cookie)
        }
        Ok(StateClaim::Unknown) => with_headers(
            answer(
                &headers,
                StatusCode::BAD_REQUEST,
                ErrorCode::BadUserInput,
                "this authorization link is unknown, expired or already used; start again (startOAuth)",
            ),
            None,
        ),
        Ok(StateClaim::OtherBrowser) => with_headers(
            answer(
                &headers,
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden,
                "this authorization link was already opened in another browser, and works only there; start again (startOAuth)",
            ),
            None,
        ),
        Err(e) => with_headers(
            answer(
                &headers,
                StatusCode::SERVICE_UNAVAILABLE,
                e.code(),
                &e.to_string(),
            ),
            None,
        ),
    }
}

pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let st = q.get("state").filter(|s| !s.is_empty() && s.len() <= 200);
    let presented = st
        .and_then(|s| cookie(&headers, &browser_cookie_name(s)))
        .map(|c| browser_hash(&c));
    let clear = st.and_then(|s| set_cookie(&state, s, None));
    if let Some(error) = q.get("error") {
        // The user declined, or the vendor refused the request: nothing to exchange. The
        // state is spent all the same (by its own browser only), so it cannot be replayed.
        if let Some(s) = st {
            let _ = state
                .services
                .store
                .take_oauth_state(s, presented.as_deref())
                .await;
        }
        let detail: String = q
            .get("error_description")
            .map(|d| format!(": {d}"))
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect();
        let error: String = error.chars().take(100).collect();
        return with_headers(
            answer(
                &headers,
                StatusCode::BAD_REQUEST,
                ErrorCode::BadUserInput,
                &format!("the vendor did not authorize the connection ({error}{detail})"),
            ),
            clear,
        );
    }
    let (Some(code), Some(st)) = (q.get("code"), st) else {
        return with_headers(
            answer(
                &headers,
                StatusCode::BAD_REQUEST,
                ErrorCode::BadUserInput,
                "the callback needs `code` and `state`",
            ),
            clear,
        );
    };
    let outcome = state
        .services
        .tokens
        .complete_authorization(st, code, presented.as_deref())
        .await;
    let response = match outcome {
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
                ErrorCode::Forbidden => StatusCode::FORBIDDEN,
                ErrorCode::UpstreamUnavailable => StatusCode::BAD_GATEWAY,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let code = if e.code() == ErrorCode::ConfigError {
                ErrorCode::BadUserInput
            } else {
                e.code()
            };
            answer(&headers, status, code, &e.to_string())
        }
    };
    with_headers(response, clear)
}
