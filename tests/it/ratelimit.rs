//! Every vendor rate-limit dialect of `vendors.md`, read through the declarations in the
//! provider files (or, for vendors without a file yet, declarations written here the same
//! way) and normalised to the IETF figures: limit, remaining, reset, policy.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};
use tessera::config::RateLimitRules;
use tessera::engine::ratelimit::{RateLimit, read};

use crate::common::repo_path;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn file_rules(provider: &str) -> RateLimitRules {
    let (_, providers) =
        tessera::app::load_configuration(&repo_path("schema"), &repo_path("providers")).unwrap();
    providers.get(provider).unwrap().rate_limit.clone()
}

/// Rules declared the way a provider file would, for a vendor with no file yet.
fn declared(rate_limit: Value) -> RateLimitRules {
    let doc = json!({
        "name": "dialect", "displayName": "dialect", "baseUrl": "https://api.example.com",
        "auth": {"type": "bearer"}, "rateLimit": rate_limit,
        "resources": {"contacts": {"fields": {"firstName": "name"}, "operations": {}}}
    });
    let model = tessera::schema::load_dir(&repo_path("schema")).unwrap();
    let engine = tessera::mapping::default_engine();
    tessera::config::load_file_text(
        std::path::Path::new("dialect.json"),
        &doc.to_string(),
        &model,
        engine.as_ref(),
    )
    .unwrap_or_else(|e| panic!("{e:?}"))
    .rate_limit
}

/// (limit, remaining, reset, policy header)
fn figures(rl: &RateLimit) -> (Option<u64>, Option<u64>, Option<u64>, Option<String>) {
    (rl.limit, rl.remaining, rl.reset, rl.policy_header())
}

#[test]
fn hubspot_interval_secondly_and_daily_windows() {
    let rules = file_rules("hubspot");
    let h = headers(&[
        ("x-hubspot-ratelimit-max", "110"),
        ("x-hubspot-ratelimit-remaining", "3"),
        ("x-hubspot-ratelimit-interval-milliseconds", "10000"),
        ("x-hubspot-ratelimit-secondly", "11"),
        ("x-hubspot-ratelimit-secondly-remaining", "9"),
        ("x-hubspot-ratelimit-daily", "250000"),
        ("x-hubspot-ratelimit-daily-remaining", "249000"),
    ]);
    let rl = read(&rules, 200, &h, None);
    assert_eq!(
        figures(&rl),
        (
            Some(110),
            Some(3),
            Some(10),
            Some("110;w=10, 11;w=1, 250000;w=86400".into())
        )
    );
    assert_eq!(rl.window.as_deref(), Some("burst"));
}

#[test]
fn salesforce_api_usage_fraction_is_a_daily_window() {
    let rules = file_rules("salesforce");
    for value in [
        "api-usage=10018/100000",
        "api-usage=10018/100000; api-bursts=1/750",
    ] {
        let rl = read(&rules, 200, &headers(&[("sforce-limit-info", value)]), None);
        assert_eq!(
            figures(&rl),
            (
                Some(100000),
                Some(89982),
                Some(86400),
                Some("100000;w=86400".into())
            ),
            "{value}"
        );
    }
}

#[test]
fn pipedrive_burst_window_and_daily_token_budget() {
    let rules = file_rules("pipedrive");
    let h = headers(&[
        ("x-ratelimit-limit", "80"),
        ("x-ratelimit-remaining", "79"),
        ("x-ratelimit-reset", "2"),
        ("x-daily-ratelimit-token-limit", "30000"),
        ("x-daily-ratelimit-token-remaining", "12"),
    ]);
    let rl = read(&rules, 200, &h, None);
    // The daily token budget is nearly spent: it is the constraint a caller must see.
    assert_eq!(
        figures(&rl),
        (
            Some(30000),
            Some(12),
            Some(86400),
            Some("80;w=2, 30000;w=86400".into())
        )
    );
}

#[test]
fn graph_retry_after_in_seconds_is_the_reset() {
    let rules = file_rules("msgraph");
    let rl = read(&rules, 429, &headers(&[("retry-after", "17")]), None);
    assert_eq!(figures(&rl), (None, None, Some(17), None));
    assert_eq!(rl.retry_after, Some(17));
}

#[test]
fn attio_retry_after_as_an_http_date() {
    let rules = declared(json!({}));
    let at = (chrono::Utc::now() + chrono::Duration::seconds(42)).to_rfc2822();
    let rl = read(&rules, 429, &headers(&[("retry-after", &at)]), None);
    let reset = rl.reset.unwrap();
    assert!((40..=42).contains(&reset), "{reset}");
}

#[test]
fn close_combined_ratelimit_header_with_decimal_reset() {
    let part = |name: &str| {
        format!(
            "$number($trim($substringBefore($substringAfter(headers.ratelimit, '{name}='), ',')))"
        )
    };
    let rules = declared(json!({"windows": [{
        "name": "endpoint", "limit": part("limit"), "remaining": part("remaining"), "reset": part("reset")
    }]}));
    let rl = read(
        &rules,
        200,
        &headers(&[("ratelimit", "limit=100, remaining=50, reset=1.5")]),
        None,
    );
    assert_eq!(figures(&rl), (Some(100), Some(50), Some(2), None));
}

#[test]
fn a_limit_reported_in_the_body() {
    let rules = declared(json!({"windows": [{
        "name": "quota", "limit": "body.meta.quota.limit", "remaining": "body.meta.quota.left", "window": "3600"
    }]}));
    let body = json!({"data": [], "meta": {"quota": {"limit": 5000, "left": 4999}}});
    let rl = read(&rules, 200, &HeaderMap::new(), Some(&body));
    assert_eq!(
        figures(&rl),
        (
            Some(5000),
            Some(4999),
            Some(3600),
            Some("5000;w=3600".into())
        )
    );
}

#[test]
fn a_vendor_that_sends_nothing_gives_nothing() {
    let rl = read(&file_rules("hubspot"), 200, &HeaderMap::new(), None);
    assert!(rl.is_empty() && rl.policy.is_empty(), "{rl:?}");
}
