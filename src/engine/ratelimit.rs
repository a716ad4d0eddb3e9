//! Rate-limit figures read from a vendor response, normalised to the IETF fields
//! (`ratelimit-limit`, `ratelimit-remaining`, `ratelimit-reset` in seconds, and
//! `ratelimit-policy` listing every window). Each vendor's dialect (several headers, one
//! combined header, a usage fraction, a body field) is JSONata in its provider file; this
//! file only evaluates it. `Retry-After` is read in both its forms (seconds, HTTP date).

use reqwest::header::HeaderMap;
use serde_json::{Map, Value, json};

use crate::config::RateLimitRules;
use crate::mapping::Vars;

/// The figures of the most constrained window of one response, plus every window's policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    /// Seconds until the window resets.
    pub reset: Option<u64>,
    /// Seconds the vendor asked us to wait (`Retry-After`).
    pub retry_after: Option<u64>,
    /// Every window the vendor reported, as (limit, window seconds).
    pub policy: Vec<(u64, u64)>,
    /// The name of the window the figures are from (the provider file's).
    pub window: Option<String>,
    /// Whether `reset` is what the vendor said (a reset figure or `Retry-After`) rather than
    /// the window's length, an upper bound: only a said reset makes an account fail fast.
    pub reset_said: bool,
}

/// The figures of one window in one response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowFigures {
    pub name: String,
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    pub reset: Option<u64>,
    pub window: Option<u64>,
}

impl RateLimit {
    pub fn is_empty(&self) -> bool {
        self.limit.is_none()
            && self.remaining.is_none()
            && self.reset.is_none()
            && self.retry_after.is_none()
    }

    /// The `ratelimit-policy` value, e.g. `110;w=10, 250000;w=86400`.
    pub fn policy_header(&self) -> Option<String> {
        (!self.policy.is_empty()).then(|| {
            self.policy
                .iter()
                .map(|(limit, w)| format!("{limit};w={w}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
    }
}

/// `Retry-After` as seconds from now: delta-seconds, or an HTTP date (past dates are 0).
pub fn retry_after(headers: &HeaderMap, now: chrono::DateTime<chrono::Utc>) -> Option<u64> {
    let text = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let secs = if let Ok(secs) = text.parse::<u64>() {
        secs
    } else if let Ok(secs) = text.parse::<f64>() {
        crate::bounds::secs_from_f64(secs)?
    } else {
        let at = chrono::DateTime::parse_from_rfc2822(text).ok()?;
        (at.with_timezone(&chrono::Utc) - now).num_seconds().max(0) as u64
    };
    Some(crate::bounds::wait_secs(secs))
}

fn figure(expr: Option<&crate::mapping::Expr>, input: &Value) -> Option<u64> {
    let value = expr?.evaluate(Some(input), &Vars::none()).ok()??;
    let n = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    // Decimal seconds (`reset=1.5`) round up: waiting less than asked is throttled again.
    crate::bounds::secs_from_f64(n)
}

/// Whether reading the figures needs the response body (a limit reported in the body).
pub fn needs_body(rules: &RateLimitRules) -> bool {
    rules.windows.iter().any(|w| w.reads_body)
}

/// Every declared window's figures in one response.
pub fn windows(
    rules: &RateLimitRules,
    status: u16,
    headers: &HeaderMap,
    body: Option<&Value>,
) -> Vec<WindowFigures> {
    if rules.windows.is_empty() {
        return Vec::new();
    }
    let header_map: Map<String, Value> = headers
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.as_str().to_string(),
                Value::String(v.to_str().ok()?.to_string()),
            ))
        })
        .collect();
    // The body is copied only for a dialect that reads it.
    let body = if needs_body(rules) {
        body.cloned().unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    let input = json!({"status": status, "headers": header_map, "body": body});
    rules
        .windows
        .iter()
        .map(|w| WindowFigures {
            name: w.name.clone(),
            limit: figure(w.limit.as_ref(), &input),
            remaining: figure(w.remaining.as_ref(), &input),
            reset: figure(w.reset.as_ref(), &input),
            window: figure(w.window.as_ref(), &input),
        })
        .filter(|f| f.limit.is_some() || f.remaining.is_some() || f.reset.is_some())
        .collect()
}

/// The normalised figures of a response: the most constrained window (fewest requests
/// left), every window's policy, and `Retry-After`, which when present is the reset.
pub fn read(
    rules: &RateLimitRules,
    status: u16,
    headers: &HeaderMap,
    body: Option<&Value>,
) -> RateLimit {
    let retry_after = retry_after(headers, chrono::Utc::now());
    let figures = windows(rules, status, headers, body);
    let tightest = figures.iter().min_by_key(|f| {
        (
            f.remaining.unwrap_or(u64::MAX),
            std::cmp::Reverse(f.reset.or(f.window)),
        )
    });
    RateLimit {
        limit: tightest.and_then(|f| f.limit),
        remaining: tightest.and_then(|f| f.remaining),
        // A rolling window resets at most one window from now; Retry-After is more precise.
        reset: retry_after
            .or(tightest.and_then(|f| f.reset.or(f.window)))
            .map(crate::bounds::wait_secs),
        retry_after,
        policy: figures
            .iter()
            .filter_map(|f| Some((f.limit?, f.window?)))
            .collect(),
        window: tightest.map(|f| f.name.clone()),
        reset_said: retry_after.is_some() || tightest.is_some_and(|f| f.reset.is_some()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-29T10:00:00Z")
            .map(|d| d.with_timezone(&chrono::Utc))
            .unwrap_or_default();
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h, now), Some(7));
        h.insert(
            "retry-after",
            HeaderValue::from_static("Sun, 29 Nov 2026 10:00:30 GMT"),
        );
        assert_eq!(retry_after(&h, now), Some(30));
        h.insert(
            "retry-after",
            HeaderValue::from_static("Sun, 29 Nov 2026 09:00:00 GMT"),
        );
        assert_eq!(retry_after(&h, now), Some(0));
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now), None);
        h.insert(
            "retry-after",
            HeaderValue::from_static("18446744073709551615"),
        );
        assert_eq!(retry_after(&h, now), Some(crate::bounds::MAX_WAIT_SECS));
        h.insert("retry-after", HeaderValue::from_static("1e308"));
        assert_eq!(retry_after(&h, now), Some(crate::bounds::MAX_WAIT_SECS));
    }
}
