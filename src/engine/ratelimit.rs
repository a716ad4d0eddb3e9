//! Rate-limit figures read from a vendor response, normalised to the IETF fields
//! (`ratelimit-limit`, `ratelimit-remaining`, `ratelimit-reset` in seconds). Pure functions.

use reqwest::header::HeaderMap;

use crate::config::RateLimitRules;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    /// Seconds until the window resets.
    pub reset: Option<u64>,
    /// Seconds the vendor asked us to wait (`Retry-After`).
    pub retry_after: Option<u64>,
}

fn number(headers: &HeaderMap, name: Option<&reqwest::header::HeaderName>) -> Option<f64> {
    let value = headers.get(name?)?.to_str().ok()?.trim();
    value
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
}

impl RateLimit {
    pub fn is_empty(&self) -> bool {
        self.limit.is_none()
            && self.remaining.is_none()
            && self.reset.is_none()
            && self.retry_after.is_none()
    }
}

/// The most constrained figures seen during one caller request (fewest remaining), so the
/// caller can slow down before it is throttled.
#[derive(Debug, Default)]
pub struct RateLimitLog(std::sync::Mutex<Option<RateLimit>>);

impl RateLimitLog {
    pub fn note(&self, rl: &RateLimit) {
        if rl.is_empty() {
            return;
        }
        if let Ok(mut slot) = self.0.lock() {
            let keep = match slot.as_ref() {
                Some(old) => rl.remaining.unwrap_or(u64::MAX) <= old.remaining.unwrap_or(u64::MAX),
                None => true,
            };
            if keep {
                *slot = Some(rl.clone());
            }
        }
    }

    pub fn most_constrained(&self) -> Option<RateLimit> {
        self.0.lock().ok().and_then(|s| s.clone())
    }
}

/// Reads the figures the provider file names. `Retry-After` is read in its seconds form.
pub fn read(rules: &RateLimitRules, headers: &HeaderMap) -> RateLimit {
    let retry_after = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let window = number(headers, rules.window_header.as_ref())
        .map(|w| (w * rules.window_unit.as_secs_f64()).ceil() as u64);
    RateLimit {
        limit: number(headers, rules.limit_header.as_ref()).map(|v| v as u64),
        remaining: number(headers, rules.remaining_header.as_ref()).map(|v| v as u64),
        // A rolling window resets at most one window from now; Retry-After is more precise.
        reset: retry_after.or(window),
        retry_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderName, HeaderValue};
    use std::time::Duration;

    #[test]
    fn reads_declared_headers_and_converts_milliseconds() {
        let rules = RateLimitRules {
            limit_header: Some(HeaderName::from_static("x-max")),
            remaining_header: Some(HeaderName::from_static("x-remaining")),
            window_header: Some(HeaderName::from_static("x-interval-ms")),
            window_unit: Duration::from_millis(1),
            throttle_statuses: vec![429],
        };
        let mut h = HeaderMap::new();
        h.insert("x-max", HeaderValue::from_static("110"));
        h.insert("x-remaining", HeaderValue::from_static("0"));
        h.insert("x-interval-ms", HeaderValue::from_static("10000"));
        assert_eq!(
            read(&rules, &h),
            RateLimit {
                limit: Some(110),
                remaining: Some(0),
                reset: Some(10),
                retry_after: None
            }
        );
        h.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(read(&rules, &h).reset, Some(3));
    }
}
