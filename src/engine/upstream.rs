//! One HTTP exchange with a vendor: URLs, credentials, a capped body read, and the
//! classification of the outcome into an [`EngineError`].

use base64::Engine as _;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::{Value, json};
use url::Url;

use super::AccountHandle;
use super::error::{EngineError, NetworkFailure};
use super::ratelimit::{self, RateLimit};
use crate::config::{Auth, ErrorClass, PathSegment, PathTemplate, ProviderModel};
use crate::mapping::{Expr, Vars};

/// Vendor bodies above this are refused rather than buffered: a list page is kilobytes, so
/// a body this large is a fault, and reading it would put the whole gateway at risk.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// A throttled account whose vendor gives no reset time is tried again after at most this.
const THROTTLE_RECHECK_SECS: u64 = 60;
/// Upstream error messages are summarised to this many characters.
const SUMMARY_CHARS: usize = 160;

/// A request ready to go, before credentials are added.
#[derive(Clone)]
pub struct Target {
    pub method: reqwest::Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<Value>,
}

pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub rate_limit: RateLimit,
}

/// Renders `template` with percent-encoded values, so an id can never add path segments.
pub fn render_path(template: &PathTemplate, vars: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for seg in &template.0.segments {
        match seg {
            PathSegment::Literal(l) => out.push_str(l),
            PathSegment::Var(name) => {
                let value = vars
                    .iter()
                    .find(|(n, _)| *n == name.as_str())
                    .map(|(_, v)| *v)
                    .unwrap_or_default();
                out.extend(
                    url::form_urlencoded::byte_serialize(value.as_bytes())
                        .map(|s| s.replace('+', "%20")),
                );
            }
        }
    }
    out
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// The base URL joined with a rendered path and query parameters.
pub fn url_for(base: &Url, path: &str, query: &[(String, String)]) -> Result<Url, EngineError> {
    let joined = format!("{}{}", base.as_str().trim_end_matches('/'), path);
    let mut url = Url::parse(&joined).map_err(|e| EngineError::UpstreamUrl {
        reason: e.to_string(),
    })?;
    if !same_origin(&url, base) {
        return Err(EngineError::UpstreamUrl {
            reason: "the path leaves the provider's host".into(),
        });
    }
    if !query.is_empty() {
        let mut pairs = url.query_pairs_mut();
        for (k, v) in query {
            pairs.append_pair(k, v);
        }
    }
    Ok(url)
}

/// A next-page URL from a vendor body: absolute, or relative to the base URL's origin. It
/// must stay on the base URL's origin, so a vendor (or a forged body) cannot send the
/// account's credentials elsewhere.
pub fn resolve_next(base: &Url, next: &str) -> Result<Url, EngineError> {
    let url = base.join(next).map_err(|e| EngineError::UpstreamUrl {
        reason: format!("the next-page URL is invalid: {e}"),
    })?;
    if !same_origin(&url, base) {
        return Err(EngineError::UpstreamUrl {
            reason: "the next-page URL points at another host".into(),
        });
    }
    Ok(url)
}

/// The URL of a passthrough request: the base URL plus `path` (and the caller's query),
/// refusing anything that could leave the base URL: dot segments (also percent-encoded),
/// backslashes, schemes and authorities.
pub fn passthrough_url(base: &Url, path: &str, query: Option<&str>) -> Result<Url, EngineError> {
    let refuse = |why: &str| EngineError::UpstreamUrl {
        reason: format!("the proxy path {why}"),
    };
    let decoded = url::form_urlencoded::parse(format!("p={path}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    for text in [path, decoded.as_str()] {
        if text.split('/').any(|seg| seg == ".." || seg == ".") {
            return Err(refuse("contains a dot segment"));
        }
        if text.contains('\\') || text.contains("://") || text.starts_with('/') {
            return Err(refuse("must be relative to the provider's base URL"));
        }
    }
    let mut url = Url::parse(&format!("{}/{}", base.as_str().trim_end_matches('/'), path))
        .map_err(|e| refuse(&format!("is not a valid URL path ({e})")))?;
    if !same_origin(&url, base) || !url.path().starts_with(base.path().trim_end_matches('/')) {
        return Err(refuse("leaves the provider's base URL"));
    }
    url.set_query(query.filter(|q| !q.is_empty()));
    Ok(url)
}

/// Sends a request with the account's credentials and returns the answer unclassified.
pub async fn send_raw(
    http: &reqwest::Client,
    account: &AccountHandle,
    method: reqwest::Method,
    url: Url,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Result<super::Passthrough, EngineError> {
    let mut headers = HeaderMap::new();
    if let Some(ct) = content_type.and_then(|c| HeaderValue::from_str(c).ok()) {
        headers.insert(reqwest::header::CONTENT_TYPE, ct);
    }
    let mut target = Target {
        method,
        url,
        headers,
        body: None,
    };
    apply_auth(account, &mut target)?;
    let mut request = http
        .request(target.method, target.url)
        .headers(target.headers);
    if !body.is_empty() {
        request = request.body(body);
    }
    let response = request.send().await.map_err(transport_error)?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let headers = response.headers().clone();
    let body = read_capped(response).await?;
    let rules = &account.provider.rate_limit;
    let json_body = ratelimit::needs_body(rules)
        .then(|| serde_json::from_slice::<Value>(&body).ok())
        .flatten();
    let rate_limit = ratelimit::read(rules, status, &headers, json_body.as_ref());
    account.spend.note(&rate_limit);
    Ok(super::Passthrough {
        status,
        content_type,
        body,
        rate_limit,
    })
}

/// A JSON value as query-string text.
pub fn query_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Sends a request and classifies the answer. A refusal `expired` matches (a change feed's
/// token the vendor no longer knows) is [`EngineError::FeedExpired`].
pub async fn send(
    http: &reqwest::Client,
    account: &AccountHandle,
    mut target: Target,
    expired: Option<&Expr>,
) -> Result<Reply, EngineError> {
    let provider = &account.provider;
    let token = account.token.expose();
    apply_auth(account, &mut target)?;
    let mut request = http
        .request(target.method, target.url)
        .headers(target.headers)
        .header(reqwest::header::ACCEPT, "application/json");
    if let Some(body) = &target.body {
        let bytes = serde_json::to_vec(body).map_err(|e| EngineError::UpstreamUrl {
            reason: e.to_string(),
        })?;
        request = request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(bytes);
    }
    let response = request.send().await.map_err(transport_error)?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = read_capped(response).await?;
    let (body, ended_early) = if bytes.is_empty() {
        (Some(Value::Null), false)
    } else {
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(v) => (Some(v), false),
            Err(e) => (None, e.is_eof()),
        }
    };
    let rate_limit = ratelimit::read(&provider.rate_limit, status, &headers, body.as_ref());
    account.spend.note(&rate_limit);
    let success = (200..300).contains(&status);
    if !success
        && let Some(expired) = expired
        && matches!(
            expired.evaluate(
                Some(&response_input(status, &headers, body.as_ref())),
                &Vars::none()
            ),
            Ok(Some(Value::Bool(true)))
        )
    {
        return Err(EngineError::FeedExpired {
            status,
            summary: summarise(provider, body.as_ref(), token),
        });
    }
    if let Some(class) = rule_class(provider, status, &headers, body.as_ref(), success) {
        return Err(error_of(
            class,
            status,
            rate_limit,
            summarise(provider, body.as_ref(), token),
        ));
    }
    if success && ended_early {
        // A body that stops inside its JSON document was cut (a proxy or the vendor
        // closed early with a Content-Length to match): an outage, not a new shape.
        return Err(EngineError::CutOff {
            what: "the body ends inside its JSON document",
            write: false,
        });
    }
    if success {
        let body = body.ok_or_else(|| EngineError::Drift {
            what: format!("the HTTP {status} body is not JSON"),
        })?;
        return Ok(Reply {
            status,
            headers,
            body,
            rate_limit,
        });
    }
    let class = if provider.rate_limit.throttle_statuses.contains(&status) {
        ErrorClass::RateLimited
    } else {
        match status {
            401 => ErrorClass::Unauthorized,
            403 => ErrorClass::Forbidden,
            404 | 410 => ErrorClass::NotFound,
            500 | 502..=504 => ErrorClass::Unavailable,
            _ => ErrorClass::Error,
        }
    };
    Err(error_of(
        class,
        status,
        rate_limit,
        summarise(provider, body.as_ref(), token),
    ))
}

/// Puts the account's credentials where the provider's auth says.
fn apply_auth(account: &AccountHandle, target: &mut Target) -> Result<(), EngineError> {
    let provider = &account.provider;
    let token = account.token.expose();
    match &provider.auth {
        Auth::Bearer => {
            target
                .headers
                .insert(AUTHORIZATION, sensitive(&format!("Bearer {token}"))?);
        }
        Auth::ApiKeyHeader { header, prefix } => {
            let value = match prefix {
                Some(p) => format!("{p} {token}"),
                None => token.to_string(),
            };
            target.headers.insert(header.clone(), sensitive(&value)?);
        }
        Auth::ApiKeyQuery { param } => {
            target.url.query_pairs_mut().append_pair(param, token);
        }
        Auth::Basic => {
            let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{token}:"));
            target
                .headers
                .insert(AUTHORIZATION, sensitive(&format!("Basic {encoded}"))?);
        }
        Auth::Headers(headers) => {
            for (name, template) in headers {
                let value = template
                    .render(|var| match var {
                        "token" => Some(token.to_string()),
                        other => provider
                            .setting(&account.settings, other)
                            .map(str::to_string),
                    })
                    .map_err(|missing| EngineError::UpstreamUrl {
                        reason: format!(
                            "the account has no setting `{missing}` for its auth headers"
                        ),
                    })?;
                target.headers.insert(name.clone(), sensitive(&value)?);
            }
        }
    }
    Ok(())
}

/// The first declared rule that matches this response.
fn rule_class(
    provider: &ProviderModel,
    status: u16,
    headers: &HeaderMap,
    body: Option<&Value>,
    success: bool,
) -> Option<ErrorClass> {
    let rules = &provider.errors.rules;
    if rules.is_empty() || (success && !rules.iter().any(|r| r.on_success)) {
        return None;
    }
    let input = response_input(status, headers, body);
    rules
        .iter()
        .filter(|r| !success || r.on_success)
        .find(|r| {
            matches!(
                r.when.evaluate(Some(&input), &Vars::none()),
                Ok(Some(Value::Bool(true)))
            )
        })
        .map(|r| r.class)
}

/// `{status, body, headers}` (header names lower-case), what the provider file's tests of
/// a response read.
fn response_input(status: u16, headers: &HeaderMap, body: Option<&Value>) -> Value {
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.as_str().to_string(),
                Value::String(v.to_str().ok()?.to_string()),
            ))
        })
        .collect();
    json!({"status": status, "body": body.cloned().unwrap_or(Value::Null), "headers": headers})
}

fn error_of(
    class: ErrorClass,
    status: u16,
    mut rate_limit: RateLimit,
    summary: String,
) -> EngineError {
    if class == ErrorClass::RateLimited {
        // Throttled is nothing left; a vendor that does not say for how long is given 1 s,
        // which is what the caller is told to wait and what the account's budget assumes.
        rate_limit.remaining.get_or_insert(0);
        if rate_limit.reset.is_none() && rate_limit.retry_after.is_none() {
            rate_limit.reset = Some(1);
            rate_limit.retry_after = Some(1);
        } else if rate_limit.retry_after.is_none() && !rate_limit.reset_said {
            // The reset is only the window's length (a day for a rolling daily limit): an
            // upper bound, not a time to wait. Ask the caller to look again within a minute.
            rate_limit.retry_after = rate_limit.reset.map(|r| r.min(THROTTLE_RECHECK_SECS));
        }
    }
    match class {
        ErrorClass::RateLimited => EngineError::RateLimited { status, rate_limit },
        ErrorClass::Unauthorized => EngineError::Unauthorized { status, summary },
        ErrorClass::Forbidden => EngineError::Forbidden { status, summary },
        ErrorClass::NotFound => EngineError::NotFound { summary },
        ErrorClass::Unavailable => EngineError::Unavailable {
            status,
            summary,
            retry_after: rate_limit.retry_after,
        },
        ErrorClass::Error => EngineError::Upstream { status, summary },
    }
}

fn sensitive(value: &str) -> Result<HeaderValue, EngineError> {
    let mut v = HeaderValue::from_str(value).map_err(|_| EngineError::UpstreamUrl {
        reason: "a credential or setting contains characters not allowed in an HTTP header".into(),
    })?;
    v.set_sensitive(true);
    Ok(v)
}

async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, EngineError> {
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(body_error)? {
        if out.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(EngineError::Drift {
                what: format!("the body exceeds {MAX_BODY_BYTES} bytes"),
            });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// A failure while the body streams in: the vendor had started answering, so anything but
/// a timeout is an answer cut off (a reset connection, a body shorter than it declared).
fn body_error(err: reqwest::Error) -> EngineError {
    if err.is_timeout() {
        return EngineError::Timeout;
    }
    EngineError::CutOff {
        what: "the connection closed mid-body",
        write: false,
    }
}

fn transport_error(err: reqwest::Error) -> EngineError {
    if let Some(refused) = crate::upstreams::refusal(&err) {
        return EngineError::UpstreamRefused(refused.clone());
    }
    if err.is_timeout() {
        return EngineError::Timeout;
    }
    let mut kind = super::resolver::classify(&err);
    if kind == NetworkFailure::Other && err.is_connect() {
        kind = NetworkFailure::Connect;
    }
    let detail = super::resolver::tls_reason(&err);
    EngineError::Network { kind, detail }
}

/// The body through the provider's declared message paths, truncated, scrubbed of the
/// credential: never the whole body.
fn summarise(provider: &ProviderModel, body: Option<&Value>, token: &str) -> String {
    let Some(json) = body else {
        return String::new();
    };
    let pick = |pointer: &Option<String>| {
        pointer
            .as_deref()
            .and_then(|p| json.pointer(p))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let parts: Vec<String> = [
        pick(&provider.errors.category_pointer),
        pick(&provider.errors.message_pointer),
    ]
    .into_iter()
    .flatten()
    .collect();
    if parts.is_empty() {
        return String::new();
    }
    let mut text = parts.join(": ");
    text = crate::secret::redact(&text, &[token]);
    if text.chars().count() > SUMMARY_CHARS {
        text = text.chars().take(SUMMARY_CHARS).collect::<String>() + "…";
    }
    format!(", {text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_escape_the_path() {
        let t = PathTemplate::parse("/objects/{id}").unwrap();
        assert_eq!(
            render_path(&t, &[("id", "../../admin?x=1")]),
            "/objects/..%2F..%2Fadmin%3Fx%3D1"
        );
        let base = Url::parse("http://127.0.0.1:9/vendor").unwrap();
        let url = url_for(
            &base,
            &render_path(&t, &[("id", "a b")]),
            &[("q".into(), "1".into())],
        )
        .unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:9/vendor/objects/a%20b?q=1");
    }

    #[test]
    fn next_urls_stay_on_the_providers_origin() {
        let base = Url::parse("http://127.0.0.1:9/sf/services/data/v62.0").unwrap();
        assert_eq!(
            resolve_next(&base, "/sf/services/data/v62.0/query/01g-200")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9/sf/services/data/v62.0/query/01g-200"
        );
        assert_eq!(
            resolve_next(&base, "http://127.0.0.1:9/x?$skip=10")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9/x?$skip=10"
        );
        assert!(resolve_next(&base, "http://evil.example/x").is_err());
        assert!(resolve_next(&base, "//evil.example/x").is_err());
        assert!(resolve_next(&base, "https://127.0.0.1:9/x").is_err());
    }
}
