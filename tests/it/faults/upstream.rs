//! Upstream faults over real HTTP (sandbox fault injection): bounded retries of reads only,
//! a 429 passed through untouched, partial data, the circuit breaker, timeouts and network
//! failures classified, a fail-fast budget, and all of it in the request log and /metrics.

use std::time::Duration;

use serde_json::{Value, json};
use tessera::engine::{BreakerPolicy, Engine, EngineError, EngineOptions, RetryPolicy};

use super::{calls, fault, metrics, request_log};
use crate::common::TestGateway;

pub(super) const LIST: &str =
    "query($a: ID!) { contacts(accountId: $a, first: 3) { edges { node { remoteId } } } }";

#[tokio::test]
async fn a_read_that_gets_503_twice_succeeds_on_the_third_call_and_is_logged() {
    let t = TestGateway::start().await;
    fault(&t, json!({"provider": "hubspot", "status": 503, "times": 2, "method": "GET", "pathContains": "/objects/contacts"})).await;
    let before = calls(&t).await;
    let r = t
        .gql(Some(&t.env_key), LIST, json!({"a": t.account_id}))
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    assert_eq!(
        r.body["data"]["contacts"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(calls(&t).await - before, 3, "two 503s and the success");

    let mut log = Vec::new();
    for _ in 0..50 {
        log = request_log(&t, &t.account_id).await;
        if log.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let attempts: Vec<(Value, Value, Value)> = log
        .iter()
        .take(3)
        .map(|e| {
            (
                e["status"].clone(),
                e["errorClass"].clone(),
                e["retry"].clone(),
            )
        })
        .collect();
    assert_eq!(
        attempts,
        vec![
            (json!(200), Value::Null, json!(2)),
            (json!(503), json!("unavailable"), json!(1)),
            (json!(503), json!("unavailable"), json!(0)),
        ]
    );
    assert!(
        log.iter()
            .all(|e| !e["path"].as_str().unwrap().contains('?'))
    );
    // Only the 503s, when asked for.
    let q = "query($a: ID!) { linkedAccount(id: $a) { requestLog(status: 503) { status } } }";
    let r = t.gql(Some(&t.env_key), q, json!({"a": t.account_id})).await;
    assert_eq!(
        r.body["data"]["linkedAccount"]["requestLog"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let m = metrics(&t).await;
    assert!(
        m.contains("tessera_upstream_calls_total{provider=\"hubspot\",outcome=\"unavailable\"} 2"),
        "{m}"
    );
    assert!(
        m.contains("tessera_upstream_retries_total{provider=\"hubspot\"} 2"),
        "{m}"
    );
    assert!(
        m.contains("tessera_upstream_latency_seconds_count{provider=\"hubspot\"}"),
        "{m}"
    );
    assert!(
        m.contains("tessera_circuits_open{provider=\"hubspot\"} 0"),
        "{m}"
    );
}

#[tokio::test]
async fn a_write_that_gets_a_503_is_not_retried() {
    let t = TestGateway::start().await;
    fault(&t, json!({"provider": "hubspot", "status": 503, "times": 1, "method": "POST", "pathContains": "/objects/contacts"})).await;
    let before = calls(&t).await;
    let r = t
        .gql(
            Some(&t.env_key),
            "mutation($a: ID!) { createContact(accountId: $a, input: {firstName: \"Once\"}) { remoteId } }",
            json!({"a": t.account_id}),
        )
        .await;
    assert_eq!(r.code(), Some("UPSTREAM_UNAVAILABLE"), "{}", r.body);
    assert_eq!(calls(&t).await - before, 1, "a write is sent once");
}

#[tokio::test]
async fn a_429_is_passed_through_once_and_the_account_then_fails_fast_until_retry_after() {
    let t = TestGateway::start().await;
    fault(
        &t,
        json!({"provider": "hubspot", "status": 429, "times": 1, "method": "GET"}),
    )
    .await;
    // (An injected 429 carries no rate-limit headers; the gateway then assumes 1 s.)
    let before = calls(&t).await;
    let r = t
        .gql(Some(&t.env_key), LIST, json!({"a": t.account_id}))
        .await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.code(), Some("RATE_LIMITED"));
    assert_eq!(r.headers["retry-after"], "1", "{:?}", r.headers);
    assert_eq!(
        calls(&t).await - before,
        1,
        "a throttled call is not retried"
    );

    // A real throttle from the sandbox's limiter says to wait ~20 s: within that, the
    // gateway answers for the vendor without calling it.
    let resp = t
        .http
        .post(format!("{}/_control/ratelimit", t.sandbox.base_url()))
        .json(&json!({"provider": "hubspot", "max": 1, "intervalMs": 20000}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    tokio::time::sleep(Duration::from_millis(1100)).await; // past the assumed 1 s
    let ok = t
        .gql(Some(&t.env_key), LIST, json!({"a": t.account_id}))
        .await;
    assert!(ok.body["errors"].is_null(), "{}", ok.body);
    let r = t
        .gql(Some(&t.env_key), LIST, json!({"a": t.account_id}))
        .await;
    assert_eq!(r.status, 429, "{}", r.body);
    let before = calls(&t).await;
    let r = t
        .gql(Some(&t.env_key), LIST, json!({"a": t.account_id}))
        .await;
    assert_eq!(r.code(), Some("RATE_LIMITED"), "{}", r.body);
    assert_eq!(r.status, 429);
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not sent")
    );
    assert_eq!(calls(&t).await, before, "an exhausted budget fails fast");
    let q = "query($a: ID!) { linkedAccount(id: $a) { rateLimit { window remaining reset } } }";
    let r = t.gql(Some(&t.env_key), q, json!({"a": t.account_id})).await;
    let windows = r.body["data"]["linkedAccount"]["rateLimit"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        windows
            .iter()
            .any(|w| w["remaining"] == json!(0.0) && w["reset"].as_f64().is_some()),
        "{windows:?}"
    );
    let m = metrics(&t).await;
    assert!(
        m.contains("tessera_rate_limited_total{provider=\"hubspot\"} 2"),
        "{m}"
    );
}

#[tokio::test]
async fn one_throttled_account_of_two_gives_partial_data_with_200() {
    let t = TestGateway::start().await;
    let other = t.connect_sandbox(&t.env_key, "pipedrive").await;
    fault(
        &t,
        json!({"provider": "pipedrive", "status": 429, "times": 1}),
    )
    .await;
    let q = "query($a: ID!, $b: ID!) { a: contacts(accountId: $a, first: 2) { edges { node { remoteId } } } b: contact(accountId: $b, remoteId: \"1\") { remoteId } }";
    let r = t
        .gql(Some(&t.env_key), q, json!({"a": t.account_id, "b": other}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["data"]["a"]["edges"].as_array().unwrap().len(), 2);
    assert!(r.body["data"]["b"].is_null());
    assert_eq!(r.body["errors"][0]["path"], json!(["b"]), "{}", r.body);
    assert_eq!(r.code(), Some("RATE_LIMITED"));
    assert!(r.headers.contains_key("ratelimit-remaining"));

    // The same with two listings: the failed one is named by its path.
    fault(
        &t,
        json!({"provider": "pipedrive", "status": 429, "times": 1}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // past the assumed 1 s reset
    let q = "query($a: ID!, $b: ID!) { a: contacts(accountId: $a, first: 2) { edges { node { remoteId } } } b: contacts(accountId: $b, first: 2) { edges { node { remoteId } } } }";
    let r = t
        .gql(Some(&t.env_key), q, json!({"a": t.account_id, "b": other}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["data"]["a"]["edges"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["errors"][0]["path"], json!(["b"]), "{}", r.body);
    assert!(
        r.body["errors"][0]["extensions"]
            .get("tesseraPath")
            .is_none()
    );
}

fn engine(options: EngineOptions) -> Engine {
    // The sandbox and the dead ports of these tests are on loopback.
    let upstreams = tessera::upstreams::AllowList::parse(["127.0.0.1/32"]).unwrap();
    Engine::new([7; 32], options, std::sync::Arc::new(upstreams)).unwrap()
}

#[tokio::test]
async fn the_breaker_opens_after_repeated_failures_and_recovers_after_a_probe() {
    let t = TestGateway::start().await;
    let handle = t.sandbox_handle("hubspot", &t.account_id);
    let e = engine(EngineOptions {
        retry: RetryPolicy {
            max_retries: 0,
            ..Default::default()
        },
        breaker: BreakerPolicy {
            failures: 2,
            cooldown: Duration::from_millis(400),
        },
        ..Default::default()
    });
    fault(
        &t,
        json!({"provider": "hubspot", "status": 503, "times": 2}),
    )
    .await;
    for _ in 0..2 {
        let err = e.get(&handle, "contacts", "1001").await.unwrap_err();
        assert!(
            matches!(err, EngineError::Unavailable { status: 503, .. }),
            "{err}"
        );
    }
    assert_eq!(e.open_circuits("hubspot"), 1);
    let before = calls(&t).await;
    let err = e.get(&handle, "contacts", "1001").await.unwrap_err();
    assert!(matches!(err, EngineError::CircuitOpen { .. }), "{err}");
    assert_eq!(
        tessera::error::HasCode::code(&err).as_str(),
        "UPSTREAM_UNAVAILABLE"
    );
    assert_eq!(
        calls(&t).await,
        before,
        "an open circuit does not call the vendor"
    );
    tokio::time::sleep(Duration::from_millis(450)).await;
    let record = e.get(&handle, "contacts", "1001").await.unwrap();
    assert!(
        record.is_some(),
        "the probe succeeds and closes the circuit"
    );
    assert_eq!(e.open_circuits("hubspot"), 0);
    assert!(e.get(&handle, "contacts", "1002").await.is_ok());
}

#[tokio::test]
async fn a_slow_vendor_times_out_and_an_unreachable_port_is_a_connect_failure() {
    let t = TestGateway::start_on_loopback().await;
    let handle = t.sandbox_handle("hubspot", &t.account_id);
    let e = engine(EngineOptions {
        request_timeout: Duration::from_millis(200),
        retry: RetryPolicy {
            max_retries: 1,
            base: Duration::from_millis(10),
            cap: Duration::from_millis(20),
        },
        ..Default::default()
    });
    fault(
        &t,
        json!({"provider": "hubspot", "delayMs": 1500, "times": 2}),
    )
    .await;
    let err = e.get(&handle, "contacts", "1001").await.unwrap_err();
    assert!(matches!(err, EngineError::Timeout), "{err}");
    assert_eq!(
        tessera::error::HasCode::code(&err).as_str(),
        "UPSTREAM_TIMEOUT"
    );

    // Nothing listens on port 1: through GraphQL the error says what failed.
    let r = t
        .gql(
            Some(&t.env_key),
            "mutation { connectAccount(provider: \"hubspot\", credentials: {accessToken: \"x\"}, settings: {baseUrl: \"http://127.0.0.1:1\"}) { id } }",
            json!({}),
        )
        .await;
    let dead = r.body["data"]["connectAccount"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = t.gql(Some(&t.env_key), LIST, json!({"a": dead})).await;
    assert_eq!(r.code(), Some("UPSTREAM_UNAVAILABLE"), "{}", r.body);
    assert_eq!(
        r.body["errors"][0]["extensions"]["failure"], "TCP_CONNECT",
        "{}",
        r.body
    );
    let log = request_log(&t, &dead).await;
    assert_eq!(log[0]["errorClass"], "connect");
    assert!(log[0]["status"].is_null());
}

/// Two replicas on one PostgreSQL database: a throttle one of them saw makes the other fail
/// fast too, without calling the vendor (the quota is the account's, not the replica's).
#[tokio::test]
async fn a_throttle_seen_by_one_replica_makes_the_others_fail_fast() {
    let (url, a, b) = TestGateway::two_replicas().await;
    let resp = a
        .http
        .post(format!("{}/_control/ratelimit", a.sandbox.base_url()))
        .json(&json!({"provider": "hubspot", "max": 1, "intervalMs": 20000}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let first = a
        .gql(Some(&a.env_key), LIST, json!({"a": a.account_id}))
        .await;
    assert!(first.body["errors"].is_null(), "{}", first.body);
    let throttled = a
        .gql(Some(&a.env_key), LIST, json!({"a": a.account_id}))
        .await;
    assert_eq!(throttled.status, 429, "{}", throttled.body);
    // Replica b reads shared windows every second: wait until it knows (its own view).
    let q = "query($a: ID!) { linkedAccount(id: $a) { rateLimit { remaining } } }";
    let started = std::time::Instant::now();
    loop {
        let resp = a
            .http
            .post(format!("{}/graphql", b.url()))
            .bearer_auth(&a.env_key)
            .json(&json!({"query": q, "variables": {"a": a.account_id}}))
            .send()
            .await
            .unwrap();
        let body: Value = resp.json().await.unwrap();
        let windows = body["data"]["linkedAccount"]["rateLimit"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if windows.iter().any(|w| w["remaining"] == json!(0.0)) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "replica b never learnt of the used-up window: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = calls(&a).await;
    let resp = a
        .http
        .post(format!("{}/graphql", b.url()))
        .bearer_auth(&a.env_key)
        .json(&json!({"query": LIST, "variables": {"a": a.account_id}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "RATE_LIMITED",
        "{body}"
    );
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not sent"),
        "{body}"
    );
    assert_eq!(calls(&a).await, before, "replica b did not call the vendor");
    b.stop().await;
    a.gateway.stop().await;
    crate::store::drop_postgres_database(&url).await;
}

#[test]
fn a_bad_upstream_deadline_setting_stops_serve_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg("--database-url")
        .arg(format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("t.db").display()
        ))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("TESSERA_UPSTREAM_DEADLINE_SECS", "ten")
        .env(
            "TESSERA_SECRET_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("TESSERA_UPSTREAM_DEADLINE_SECS") && text.contains("`ten`"),
        "{text}"
    );
}

/// One request's upstream calls stop at the ceiling (retries count), with a clear error;
/// a new request starts afresh.
#[tokio::test]
async fn a_request_stops_at_its_ceiling_of_upstream_calls() {
    let t = TestGateway::start().await;
    let mut handle = t.sandbox_handle("hubspot", &t.account_id);
    let e = engine(EngineOptions {
        max_calls_per_request: 3,
        ..Default::default()
    });
    for id in ["1001", "1002", "1003"] {
        assert!(e.get(&handle, "contacts", id).await.unwrap().is_some());
    }
    let before = calls(&t).await;
    let err = e.get(&handle, "contacts", "1004").await.unwrap_err();
    assert!(
        matches!(err, EngineError::CallCeiling { limit: 3 }),
        "{err}"
    );
    assert_eq!(
        tessera::error::HasCode::code(&err).as_str(),
        "BAD_USER_INPUT"
    );
    assert!(
        err.to_string().contains("TESSERA_MAX_UPSTREAM_CALLS"),
        "{err}"
    );
    assert_eq!(calls(&t).await, before, "the fourth call never left");
    // Another request (its own ledger) may call again.
    handle.spend = std::sync::Arc::new(tessera::engine::RequestSpend::default());
    assert!(e.get(&handle, "contacts", "1004").await.unwrap().is_some());
}

/// An account has at most its ceiling of calls in flight, whatever the number of
/// requests: twelve concurrent reads of one account, each held 200 ms by a vendor that
/// counts how many it holds at once, never find more than four there.
#[tokio::test]
async fn an_account_has_at_most_its_ceiling_of_calls_in_flight() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let t = TestGateway::start().await;
    let (in_flight, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let app = {
        let (in_flight, peak) = (in_flight.clone(), peak.clone());
        axum::Router::new().fallback(move || {
            let (in_flight, peak) = (in_flight.clone(), peak.clone());
            async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(200)).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                axum::Json(json!({"id": "1001", "properties": {"firstname": "Ada"}}))
            }
        })
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let vendor = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut handle = t.sandbox_handle("hubspot", &t.account_id);
    handle.base_url = url::Url::parse(&vendor).unwrap();
    let e = Arc::new(engine(EngineOptions {
        max_concurrent_per_account: 4,
        ..Default::default()
    }));
    let reads = (0..12).map(|_| {
        let (e, handle) = (e.clone(), handle.clone());
        async move { e.get(&handle, "contacts", "1001").await }
    });
    let results = futures_util::future::join_all(reads).await;
    assert!(
        results.iter().all(|r| matches!(r, Ok(Some(_)))),
        "{results:?}"
    );
    let peak = peak.load(Ordering::SeqCst);
    assert!(
        peak <= 4,
        "{peak} calls of one account were in flight at once"
    );
    assert!(peak >= 2, "the reads did run concurrently ({peak})");
}
