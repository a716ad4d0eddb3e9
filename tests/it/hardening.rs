//! The hardening suite (issue: no tenant, vendor or request can crash, starve, fan out or
//! trick the gateway): panics that must not drop connections, background tasks whose death
//! is visible, bodies read after authentication, admin keys, query cost, mapping budgets.
//! Absurd vendor numbers are in the fault suite (`faults::absurd`).

use serde_json::{Value, json};

use crate::common::TestGateway;

const LIST: &str =
    "query($a: ID!) { contacts(accountId: $a, first: 3) { edges { node { remoteId } } } }";

/// A panic while answering is a 500 with `INTERNAL`; the connection and the server live on.
#[tokio::test]
async fn a_panicking_handler_answers_internal_and_the_server_goes_on() {
    let routes = axum::Router::new()
        .route(
            "/boom",
            axum::routing::get(|| async {
                let none: Option<String> = None;
                #[allow(clippy::unnecessary_literal_unwrap)]
                none.expect("a bug reached by a request")
            }),
        )
        .route("/fine", axum::routing::get(|| async { "fine" }));
    let app = tessera::http::with_panic_guard(routes);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();
    for _ in 0..3 {
        let r = http
            .get(format!("http://{addr}/boom"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 500);
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "INTERNAL",
            "{body}"
        );
        assert!(!body.to_string().contains("a bug reached"), "{body}");
    }
    let r = http
        .get(format!("http://{addr}/fine"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "fine");
}

/// `/readyz` lists the background tasks, each running.
#[tokio::test]
async fn readyz_reports_the_background_tasks() {
    let t = TestGateway::start_refreshing(std::time::Duration::from_secs(3600)).await;
    let body: Value = t
        .http
        .get(format!("{}/readyz", t.gateway.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = body["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["up"] == true)
        .filter_map(|t| t["name"].as_str())
        .collect();
    for task in [
        "request-log-writer",
        "override-and-budget-poll",
        "token-refresher",
    ] {
        assert!(names.contains(&task), "{task} in {body}");
    }
    assert_eq!(body["status"], "ready", "{body}");
    let metrics = t
        .http
        .get(format!("{}/metrics", t.gateway.url()))
        .bearer_auth(crate::common::ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("tessera_background_task_up{task=\"token-refresher\"} 1"),
        "{metrics}"
    );
}

/// The caller is known before the body is read: a large body without a key is a 401, not a
/// 413 after reading it all, and a body that never finishes arriving gets its 401 at once.
#[tokio::test]
async fn bodies_are_read_only_after_authentication() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = TestGateway::start().await;
    let big = vec![b' '; 3 * 1024 * 1024];
    let url = format!("{}/graphql", t.gateway.url());
    let anonymous = t.http.post(&url).body(big.clone()).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let keyed = t
        .http
        .post(&url)
        .bearer_auth(&t.env_key)
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(keyed.status(), 413);
    let proxied = t
        .http
        .post(format!(
            "{}/proxy/{}/crm/v3/objects/contacts",
            t.gateway.url(),
            t.account_id
        ))
        .body(vec![b'x'; 11 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), 401);

    // Headers declaring 900 KB, then a few bytes, then nothing: the answer comes anyway.
    let mut tcp = tokio::net::TcpStream::connect(t.gateway.addr)
        .await
        .unwrap();
    tcp.write_all(
        b"POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 900000\r\n\r\n{\"query\":",
    )
    .await
    .unwrap();
    let mut answer = vec![0u8; 1024];
    let n = tcp.read(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
}

/// `TESSERA_ADMIN_KEY` is the admin key: changing it and starting again retires the old
/// one; `tessera admin-key rotate` replaces every admin key with a new one shown once, and
/// a running gateway honours it within a second (its cached read of the key expires).
#[tokio::test]
async fn a_changed_or_rotated_admin_key_retires_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/admin.db?mode=rwc", dir.path().display());
    let secret = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    let http = reqwest::Client::new();
    let works = |url: String, key: String| {
        let http = http.clone();
        async move {
            let r: Value = http
                .post(format!("{url}/graphql"))
                .bearer_auth(key)
                .json(&json!({"query": "{ environments { id } }"}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            r["errors"].is_null()
        }
    };
    let first = crate::replicas::spawn_serve(
        &db,
        secret,
        dir.path(),
        "first",
        &[("TESSERA_ADMIN_KEY", "admin-one")],
    )
    .await;
    assert!(works(first.url.clone(), "admin-one".into()).await);
    drop(first);
    let second = crate::replicas::spawn_serve(
        &db,
        secret,
        dir.path(),
        "second",
        &[("TESSERA_ADMIN_KEY", "admin-two")],
    )
    .await;
    assert!(
        !works(second.url.clone(), "admin-one".into()).await,
        "the old admin key still works"
    );
    assert!(works(second.url.clone(), "admin-two".into()).await);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["admin-key", "rotate", "--database-url", &db])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    let new_key = printed.lines().last().unwrap().trim().to_string();
    assert!(new_key.starts_with("tsk_"), "{printed}");
    // Rotated by another process: the server's cached read of the key expires within a
    // second, and a new key is never refused (unknown keys are not cached).
    assert!(works(second.url.clone(), new_key).await);
    crate::common::wait_for("the server to refuse the rotated admin key", || {
        let still_works = works(second.url.clone(), "admin-two".into());
        async move { !still_works.await }
    })
    .await;
}

/// `/metrics` answers the admin key and the metrics token, not whoever reaches the port
/// (an environment's key included).
#[tokio::test]
async fn metrics_need_the_admin_key_or_the_metrics_token() {
    let t = TestGateway::start().await;
    let url = format!("{}/metrics", t.gateway.url());
    assert_eq!(t.http.get(&url).send().await.unwrap().status(), 401);
    let tenant = t
        .http
        .get(&url)
        .bearer_auth(&t.env_key)
        .send()
        .await
        .unwrap();
    assert_eq!(tenant.status(), 401);
    let admin = t
        .http
        .get(&url)
        .bearer_auth(crate::common::ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 200);
    assert!(admin.text().await.unwrap().contains("tessera_"));
}

/// One request of a hundred aliased `contacts(first: 1000)` once made 136 upstream calls
/// before the vendor throttled it. It is now priced before it runs and refused with no
/// upstream call; the same query once is fine.
#[tokio::test]
async fn a_query_that_would_spend_the_vendor_quota_is_refused_before_any_call() {
    let t = TestGateway::start().await;
    let before = t.sandbox_stats().await["requests"].as_u64().unwrap();
    let fields: String = (0..100)
        .map(|i| format!("a{i}: contacts(accountId: $a, first: 1000, filter: {{email: \"x{i}@example.com\"}}) {{ pageInfo {{ hasNextPage }} }}\n"))
        .collect();
    let query = format!("query($a: ID!) {{ {fields} }}");
    let r = t
        .gql(Some(&t.env_key), &query, json!({"a": t.account_id}))
        .await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
    let cost = &r.body["errors"][0]["extensions"]["cost"];
    assert_eq!(cost["estimated"], 1000, "{}", r.body);
    assert_eq!(
        cost["limit"],
        tessera::graphql::cost::DEFAULT_LIMIT,
        "{}",
        r.body
    );
    assert_eq!(
        t.sandbox_stats().await["requests"].as_u64().unwrap(),
        before,
        "no upstream call was made"
    );
    let one =
        "query($a: ID!) { contacts(accountId: $a, first: 1000) { pageInfo { hasNextPage } } }";
    let r = t
        .gql(Some(&t.env_key), one, json!({"a": t.account_id}))
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
}

/// A hundred aliases of one listing with the same arguments are one read at the vendor
/// (and priced as one); an alias with other arguments is a read of its own.
#[tokio::test]
async fn aliases_of_one_listing_with_the_same_arguments_read_the_vendor_once() {
    let t = TestGateway::start().await;
    let fields: String = (0..100)
        .map(|i| format!("a{i}: contacts(accountId: $a, first: 100) {{ edges {{ node {{ remoteId }} }} pageInfo {{ hasNextPage }} }}\n"))
        .collect();
    let query = format!(
        "query($a: ID!) {{ {fields} other: contacts(accountId: $a, first: 5) {{ edges {{ node {{ remoteId }} }} }} }}"
    );
    let before = t.sandbox_stats().await["requests"].as_u64().unwrap();
    let r = t
        .gql(Some(&t.env_key), &query, json!({"a": t.account_id}))
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    let data = &r.body["data"];
    let first = data["a0"].clone();
    assert_eq!(first["edges"].as_array().unwrap().len(), 100);
    for i in 1..100 {
        assert_eq!(
            data[format!("a{i}")],
            first,
            "every alias has the same answer"
        );
    }
    assert_eq!(data["other"]["edges"].as_array().unwrap().len(), 5);
    assert_eq!(
        t.sandbox_stats().await["requests"].as_u64().unwrap() - before,
        2,
        "one page for the hundred aliases, one for the other listing"
    );
}

const SET_OVERRIDE: &str =
    "mutation($i: OverrideInput!) { setOverride(input: $i) { id version environmentId } }";

/// About 65 ms of CPU a record in a test build (it counts a 2-million-item range): far above
/// the 10 ms a record may cost under the default 1 s budget.
const SLOW_FIELD: &str = "$count([1..2000000])";

/// An override whose cost on the provider's samples would not let a request map a usual
/// page within the mapping budget is refused, and the error says why; a cheap one is kept.
#[tokio::test]
async fn an_override_too_costly_for_the_mapping_budget_is_refused_with_its_cost() {
    let t = TestGateway::start().await;
    let slow = json!({"level": "ENVIRONMENT", "provider": "hubspot", "resource": "contacts",
                      "fields": {"customFields.slow": SLOW_FIELD}});
    let r = t
        .gql(Some(&t.env_key), SET_OVERRIDE, json!({"i": slow}))
        .await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
    let message = r.body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("per record") && message.contains("TESSERA_MAPPING_BUDGET_MS"),
        "{message}"
    );
    let cheap = json!({"level": "ENVIRONMENT", "provider": "hubspot", "resource": "contacts",
                       "fields": {"customFields.first": "$uppercase($string(properties.firstname))"}});
    let r = t
        .gql(Some(&t.env_key), SET_OVERRIDE, json!({"i": cheap}))
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
}

/// A costly override that is already stored (by a release that did not price overrides, or
/// a replica with a larger budget) can no longer take a request's time without bound: the
/// request stops mapping at the budget and answers CONFIG_ERROR saying so. Its evaluations
/// run on the mapping pool, so `/healthz` and another tenant's request answer while three
/// such requests are still mapping (they used to take the async workers: `/healthz` waited
/// seconds).
#[tokio::test]
async fn tenant_mappings_run_off_the_workers_within_the_requests_mapping_budget() {
    let t = TestGateway::start().await;
    let services = t.gateway.services.clone();
    // A cheap version through the API, for the scope; the costly one straight into the
    // store, as validation would refuse it today.
    let cheap = json!({"level": "ACCOUNT", "provider": "hubspot", "resource": "contacts",
                       "accountId": t.account_id, "fields": {"customFields.slow": "1"}});
    let r = t
        .gql(Some(&t.env_key), SET_OVERRIDE, json!({"i": cheap}))
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    let current = services
        .overrides
        .all_current()
        .into_iter()
        .find(|c| c.scope.account_id.is_some())
        .unwrap();
    let mut spec = serde_json::to_value(&current.spec).unwrap();
    spec["fields"]["customFields.slow"] = json!(SLOW_FIELD);
    let stored = services
        .store
        .append_override_version(tessera::store::NewOverrideVersion {
            scope_key: current.scope.key(),
            level: "ACCOUNT".into(),
            environment_id: current.scope.environment_id.clone(),
            account_id: current.scope.account_id.clone(),
            provider: "hubspot".into(),
            resource: "contacts".into(),
            spec: spec.to_string(),
            action: "set".into(),
            restored_version: None,
            author: "an earlier release".into(),
        })
        .await
        .unwrap();
    assert!(services.overrides.apply(&stored));

    let list = "query($a: ID!) { contacts(accountId: $a, first: 100) { edges { node { customFields } } } }";
    let before = t.sandbox_stats().await["requests"].as_u64().unwrap();
    let slow: Vec<_> = (0..3)
        .map(|_| {
            let (http, url, key, account) = (
                t.http.clone(),
                t.gateway.url(),
                t.env_key.clone(),
                t.account_id.clone(),
            );
            tokio::spawn(async move {
                let body: Value = http
                    .post(format!("{url}/graphql"))
                    .bearer_auth(key)
                    .json(&json!({"query": list, "variables": {"a": account}}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                body
            })
        })
        .collect();
    // Once the vendor has answered the three listings, their mappings are running.
    crate::common::wait_for("the three listings to reach the vendor", || async {
        t.sandbox_stats().await["requests"].as_u64().unwrap() >= before + 3
    })
    .await;
    for _ in 0..3 {
        let health = t
            .http
            .get(format!("{}/healthz", t.gateway.url()))
            .send()
            .await
            .unwrap();
        assert!(health.status().is_success());
    }
    // Another tenant's account maps on its own (no override of theirs is slow).
    let other_key = t.create_environment("other").await;
    let other_account = t.connect_sandbox(&other_key, "hubspot").await;
    let r = t
        .gql(Some(&other_key), LIST, json!({"a": other_account}))
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    assert!(
        slow.iter().any(|h| !h.is_finished()),
        "the costly requests finished before /healthz and another tenant were answered"
    );
    for handle in slow {
        let body = handle.await.unwrap();
        let error = &body["errors"][0];
        assert_eq!(error["extensions"]["code"], "CONFIG_ERROR", "{body}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains("TESSERA_MAPPING_BUDGET_MS"), "{message}");
    }
}
