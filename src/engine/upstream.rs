//! One HTTP exchange with a vendor: URL building, credentials, a capped body read, and the
//! classification of the outcome into an [`EngineError`].

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::Value;
use url::Url;

use super::AccountHandle;
use super::error::{EngineError, NetworkFailure};
use super::ratelimit;
use crate::config::{Auth, PathSegment, PathTemplate, ProviderModel};

/// Vendor bodies above this are refused rather than buffered: a list page is kilobytes, so
/// a body this large is a fault, and reading it would put the whole gateway at risk.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Upstream error messages are summarised to this many characters.
const SUMMARY_CHARS: usize = 160;

pub struct Reply {
    pub body: Value,
}

/// Renders `template` with percent-encoded values, so an id can never add path segments.
pub fn render_path(template: &PathTemplate, vars: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for seg in &template.segments {
        match seg {
            PathSegment::Literal(l) => out.push_str(l),
            PathSegment::Var(name) => {
                let value = vars
                    .iter()
                    .find(|(n, _)| n == name)
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

pub fn build_url(base: &Url, path: &str, query: &[(String, String)]) -> Result<Url, EngineError> {
    let joined = format!("{}{}", base.as_str().trim_end_matches('/'), path);
    let mut url = Url::parse(&joined).map_err(|e| EngineError::UpstreamUrl {
        reason: e.to_string(),
    })?;
    if url.host_str() != base.host_str()
        || url.port_or_known_default() != base.port_or_known_default()
    {
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

pub async fn send(
    http: &reqwest::Client,
    account: &AccountHandle,
    method: reqwest::Method,
    path: &str,
    mut query: Vec<(String, String)>,
) -> Result<Reply, EngineError> {
    let provider = &account.provider;
    let mut headers = HeaderMap::new();
    let token = account.token.expose();
    match &provider.auth {
        Auth::Bearer => {
            headers.insert(AUTHORIZATION, sensitive(&format!("Bearer {token}"))?);
        }
        Auth::ApiKeyHeader { header, prefix } => {
            let value = match prefix {
                Some(p) => format!("{p} {token}"),
                None => token.to_string(),
            };
            headers.insert(header.clone(), sensitive(&value)?);
        }
        Auth::ApiKeyQuery { param } => query.push((param.clone(), token.to_string())),
    }
    let url = build_url(&account.base_url, path, &query)?;
    let response = http
        .request(method, url)
        .headers(headers)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(transport_error)?;
    let status = response.status().as_u16();
    let response_headers = response.headers().clone();
    let bytes = read_capped(response).await?;
    if (200..300).contains(&status) {
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|e| EngineError::Drift {
                what: format!("the HTTP {status} body is not JSON ({e})"),
            })?
        };
        return Ok(Reply { body });
    }
    Err(classify_failure(
        provider,
        status,
        &response_headers,
        &bytes,
        token,
    ))
}

fn sensitive(value: &str) -> Result<HeaderValue, EngineError> {
    let mut v = HeaderValue::from_str(value).map_err(|_| EngineError::UpstreamUrl {
        reason: "the credential contains characters not allowed in an HTTP header".into(),
    })?;
    v.set_sensitive(true);
    Ok(v)
}

async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, EngineError> {
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        if out.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(EngineError::Drift {
                what: format!("the body exceeds {MAX_BODY_BYTES} bytes"),
            });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn transport_error(err: reqwest::Error) -> EngineError {
    if err.is_timeout() {
        return EngineError::Timeout;
    }
    // reqwest does not type the cause; its source chain names it.
    let mut chain = String::new();
    let mut source: Option<&dyn std::error::Error> = Some(&err);
    while let Some(s) = source {
        chain.push_str(&s.to_string().to_ascii_lowercase());
        chain.push(' ');
        source = s.source();
    }
    let kind = if chain.contains("dns") || chain.contains("lookup") || chain.contains("resolve") {
        NetworkFailure::Dns
    } else if chain.contains("tls") || chain.contains("certificate") || chain.contains("handshake")
    {
        NetworkFailure::Tls
    } else if err.is_connect() {
        NetworkFailure::Connect
    } else {
        NetworkFailure::Other
    };
    EngineError::Network { kind }
}

/// Turns a non-2xx reply into an error. The body is summarised through the provider's
/// declared message path, truncated, and scrubbed of the credential, never echoed whole.
fn classify_failure(
    provider: &ProviderModel,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    token: &str,
) -> EngineError {
    if provider.rate_limit.throttle_statuses.contains(&status) {
        return EngineError::RateLimited {
            status,
            rate_limit: ratelimit::read(&provider.rate_limit, headers),
        };
    }
    let summary = summarise(provider, body, token);
    match status {
        401 => EngineError::Unauthorized { status, summary },
        403 => EngineError::Forbidden { status, summary },
        404 => EngineError::NotFound { summary },
        502..=504 | 500 => EngineError::Unavailable { status, summary },
        _ => EngineError::Upstream { status, summary },
    }
}

fn summarise(provider: &ProviderModel, body: &[u8], token: &str) -> String {
    let Ok(json) = serde_json::from_slice::<Value>(body) else {
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
    if !token.is_empty() {
        text = text.replace(token, "***");
    }
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
        let url = build_url(
            &base,
            &render_path(&t, &[("id", "a b")]),
            &[("q".into(), "1".into())],
        )
        .unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:9/vendor/objects/a%20b?q=1");
    }
}
