//! Request plumbing shared by every vendor imitation: what a handler needs to know about
//! the request as the client sent it, query-string helpers, and the [`gate`] middleware
//! (count, injected faults, authentication, rate limit) parameterised by a vendor's
//! [`Dialect`], which alone decides how each outcome looks on the wire.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequestParts, MatchedPath, OriginalUri, Request, State};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::control::{Control, FaultAction, FaultKind, RateDecision, TokenCheck, WireCut};

/// What handlers need to know about the request as the client sent it (before `nest`
/// stripped the vendor prefix).
#[derive(Clone, Debug)]
pub(crate) struct ReqInfo {
    pub method: String,
    /// Full path, vendor prefix included, e.g. `/pipedrive/api/v2/persons`.
    pub path: String,
    pub path_and_query: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    /// The token the gate admitted the request with, for state kept per user (Salesforce's
    /// query cursors); `None` in the gate itself and on routes outside it.
    pub token: Option<String>,
}

impl ReqInfo {
    pub(crate) fn from_parts(
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        extensions: &Extensions,
    ) -> ReqInfo {
        let uri = extensions.get::<OriginalUri>().map_or(uri, |o| &o.0);
        ReqInfo {
            method: method.as_str().to_owned(),
            path: uri.path().to_owned(),
            path_and_query: uri
                .path_and_query()
                .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned()),
            query: uri.query().map(str::to_owned),
            headers: headers.clone(),
            token: extensions.get::<AuthToken>().map(|t| t.0.clone()),
        }
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `http://host:port` as the client addressed the server, for absolute links;
    /// `fallback` (the sandbox base URL) when the request carried no `Host`.
    pub(crate) fn origin(&self, fallback: &str) -> String {
        self.header(header::HOST.as_str())
            .filter(|h| !h.is_empty())
            .map_or_else(|| fallback.to_owned(), |h| format!("http://{h}"))
    }

    pub(crate) fn pairs(&self) -> Vec<(String, String)> {
        query_pairs(self.query.as_deref())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ReqInfo {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ReqInfo::from_parts(
            &parts.method,
            &parts.uri,
            &parts.headers,
            &parts.extensions,
        ))
    }
}

pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

pub(crate) fn last_param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Every value of a repeated parameter, in order.
pub(crate) fn all_params<'a>(pairs: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Comma-separated list, blanks dropped.
pub(crate) fn split_list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<String> {
    scheme_token(
        headers.get(header::AUTHORIZATION)?.to_str().ok()?,
        &["bearer"],
    )
}

/// The token of an `Authorization` value `<scheme> <token>` whose scheme is one of
/// `schemes` (case-insensitive, as RFC 9110 has it); vendors differ only in which they take.
pub(crate) fn scheme_token(value: &str, schemes: &[&str]) -> Option<String> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (schemes.iter().any(|s| scheme.eq_ignore_ascii_case(s)) && !token.is_empty())
        .then(|| token.to_owned())
}

/// The token a request was admitted with, for handlers that charge more requests to the
/// same rate-limit window (Graph's `$batch`) or keep state per user (see
/// [`ReqInfo::token`]).
#[derive(Clone, Debug)]
pub(crate) struct AuthToken(pub String);

#[derive(Clone, Copy, Debug)]
pub(crate) enum AuthFailure {
    /// The request carried no credentials at all.
    Missing,
    /// Credentials this provider never issued, or revoked ones.
    Unknown,
    Expired,
}

/// How one vendor dresses the gate's decisions.
pub(crate) trait Dialect: Send + Sync + 'static {
    const PROVIDER: &'static str;

    fn control(&self) -> &Control;

    /// Full route templates (prefix included), so stats label unrouted paths as one
    /// bucket instead of one entry per raw URL.
    fn route_templates(&self) -> &HashSet<String>;

    /// The credential the request presents; bearer tokens unless the vendor has others.
    fn credentials(&self, info: &ReqInfo) -> Option<String> {
        bearer_token(&info.headers)
    }

    /// An injected fault with a status: `body` verbatim when given, else the vendor's
    /// usual body for that status.
    fn fault_response(&self, info: &ReqInfo, status: StatusCode, body: Option<Value>) -> Response;

    fn auth_failure(&self, info: &ReqInfo, failure: AuthFailure) -> Response;

    /// An expired token, for vendors whose answer says when it expired (HubSpot).
    fn token_expired(
        &self,
        info: &ReqInfo,
        _expired_at: DateTime<Utc>,
        _seconds_ago: i64,
    ) -> Response {
        self.auth_failure(info, AuthFailure::Expired)
    }

    /// The vendor's answer when the token's window is spent.
    fn throttled(&self, info: &ReqInfo, decision: &RateDecision) -> Response;

    /// Rate headers on every response that was charged to a window (429s included).
    fn rate_headers(&self, _headers: &mut HeaderMap, _decision: &RateDecision) {}

    /// Whether this request is charged to the token's window at the gate. Graph's
    /// `$batch` is not: each of its sub-requests is charged instead.
    fn charged_at_gate(&self, _info: &ReqInfo) -> bool {
        true
    }
}

/// Counting, faults, auth and rate limiting, in the order a real upstream applies them.
pub(crate) async fn gate<D: Dialect>(
    State(d): State<Arc<D>>,
    mut req: Request,
    next: Next,
) -> Response {
    let info = ReqInfo::from_parts(req.method(), req.uri(), req.headers(), req.extensions());
    let unmatched = format!("/{}/{{unmatched}}", D::PROVIDER);
    let template = req
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
        .filter(|m| d.route_templates().contains(*m))
        .unwrap_or(&unmatched);
    d.control()
        .count(D::PROVIDER, format!("{} {template}", info.method));

    if let Some(FaultAction::Respond {
        status,
        body,
        delay,
        headers,
        raw_body,
    }) = d.control().take_fault(
        D::PROVIDER,
        &info.method,
        &info.path_and_query,
        FaultKind::Respond,
    ) {
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        if let Some(status) = status {
            let mut response = match raw_body {
                Some(raw) => (status, [(header::CONTENT_TYPE, "text/html")], raw).into_response(),
                None => d.fault_response(&info, status, body),
            };
            for (name, value) in headers {
                response.headers_mut().insert(name, value);
            }
            return response;
        }
    }

    let Some(token) = d.credentials(&info) else {
        return d.auth_failure(&info, AuthFailure::Missing);
    };
    match d.control().check_token(D::PROVIDER, Some(&token)) {
        TokenCheck::Valid => {}
        TokenCheck::Unknown => return d.auth_failure(&info, AuthFailure::Unknown),
        TokenCheck::Expired {
            expired_at,
            seconds_ago,
        } => return d.token_expired(&info, expired_at, seconds_ago),
    }

    req.extensions_mut().insert(AuthToken(token.clone()));
    let take = |kind| {
        d.control()
            .take_fault(D::PROVIDER, &info.method, &info.path_and_query, kind)
    };
    let reshape = take(FaultKind::Reshape);
    let cut = take(FaultKind::Wire);
    if !d.charged_at_gate(&info) {
        return damaged(reshaped(next.run(req).await, reshape).await, cut).await;
    }
    let decision = d.control().rate_limit(D::PROVIDER, &token);
    let mut response = if decision.allowed {
        reshaped(next.run(req).await, reshape).await
    } else {
        d.throttled(&info, &decision)
    };
    d.rate_headers(response.headers_mut(), &decision);
    damaged(response, cut).await
}

/// Applies a wire fault to an answer: its body cut short, or its connection reset after
/// part of it was sent.
async fn damaged(response: Response, fault: Option<FaultAction>) -> Response {
    let Some(FaultAction::Wire(cut)) = fault else {
        return response;
    };
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 << 20).await else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "wire fault: unreadable body",
        )
            .into_response();
    };
    match cut {
        WireCut::Truncate { keep } => {
            let kept = bytes.slice(..keep.min(bytes.len()));
            parts
                .headers
                .insert(header::CONTENT_LENGTH, kept.len().into());
            Response::from_parts(parts, axum::body::Body::from(kept))
        }
        WireCut::Reset { keep } => {
            // The declared length is the whole body's; the stream fails after `keep`
            // bytes, and the server drops the connection mid-body.
            parts
                .headers
                .insert(header::CONTENT_LENGTH, bytes.len().into());
            let kept = bytes.slice(..keep.min(bytes.len().saturating_sub(1)));
            // The kept part goes out (with the headers) before the failure: the server
            // flushes what it has while the stream is pending, then drops the connection.
            let stream = futures_util::stream::unfold(Some(Some(kept)), |left| async move {
                match left? {
                    Some(kept) => Some((Ok(kept), Some(None))),
                    None => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        let reset = std::io::Error::new(
                            std::io::ErrorKind::ConnectionReset,
                            "wire fault: connection reset mid-body",
                        );
                        Some((Err(reset), None))
                    }
                }
            });
            Response::from_parts(parts, axum::body::Body::from_stream(stream))
        }
    }
}

/// Applies a reshape fault to a JSON answer (anything else passes as it is).
async fn reshaped(response: Response, fault: Option<FaultAction>) -> Response {
    let Some(FaultAction::Reshape {
        drop_keys,
        rename_keys,
    }) = fault
    else {
        return response;
    };
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 << 20).await else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "reshape: unreadable body",
        )
            .into_response();
    };
    let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    };
    if let Value::Object(top) = &mut value {
        for key in &drop_keys {
            top.remove(key);
        }
    }
    rename_everywhere(&mut value, &rename_keys, 0);
    let out = serde_json::to_vec(&value).unwrap_or_default();
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(out))
}

fn rename_everywhere(value: &mut Value, renames: &[(String, String)], depth: usize) {
    if depth > 32 {
        return;
    }
    match value {
        Value::Object(map) => {
            for (from, to) in renames {
                if let Some(v) = map.remove(from) {
                    map.insert(to.clone(), v);
                }
            }
            for v in map.values_mut() {
                rename_everywhere(v, renames, depth + 1);
            }
        }
        Value::Array(items) => {
            for v in items {
                rename_everywhere(v, renames, depth + 1);
            }
        }
        _ => {}
    }
}

/// Whole seconds a client should wait, never 0 (a `Retry-After: 0` invites a hot loop).
pub(crate) fn wait_seconds(decision: &RateDecision) -> u64 {
    decision.retry_after_ms.div_ceil(1000).max(1)
}

/// Percent-decodes `%XX` sequences (path segments arrive undecoded from axum's raw path
/// in some places); `None` on malformed escapes or non-UTF-8 results.
pub(crate) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes.get(i) == Some(&b'%') {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(*bytes.get(i)?);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
