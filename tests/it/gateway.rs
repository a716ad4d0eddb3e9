//! End to end over real HTTP: GraphQL -> gateway -> sandbox HubSpot, on loopback.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::common::{ADMIN_KEY, TestGateway};

#[tokio::test]
async fn pages_through_every_contact_with_no_loss_or_duplicate() {
    let t = TestGateway::start().await;
    // Ground truth straight from the sandbox, not through the gateway.
    let mut truth = HashSet::new();
    let mut after: Option<String> = None;
    loop {
        let mut url = format!(
            "{}/hubspot/crm/v3/objects/contacts?limit=100",
            t.sandbox.base_url()
        );
        if let Some(a) = &after {
            url.push_str(&format!("&after={a}"));
        }
        let page: Value = t
            .http
            .get(url)
            .bearer_auth(tessera_sandbox::HUBSPOT_DEMO_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        truth.extend(
            page["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string()),
        );
        match page["paging"]["next"]["after"].as_str() {
            Some(a) => after = Some(a.to_string()),
            None => break,
        }
    }
    assert!(
        truth.len() >= 250,
        "the sandbox must hold at least 250 contacts"
    );
    // 7 divides nothing the sandbox does; 150 is above HubSpot's 100 page cap.
    for first in [7, 100, 150] {
        let ids = t.all_contact_ids(first).await;
        let unique: HashSet<String> = ids.iter().cloned().collect();
        assert_eq!(
            unique.len(),
            ids.len(),
            "first={first}: a contact was returned twice"
        );
        assert_eq!(unique, truth, "first={first}: contacts lost or invented");
    }
}

#[tokio::test]
async fn first_larger_than_the_vendor_page_is_served_by_several_pages() {
    let t = TestGateway::start().await;
    let before = t.sandbox_stats().await["requests"].as_u64().unwrap();
    let r = t
        .gql(Some(&t.env_key), "query($a: ID!) { contacts(accountId: $a, first: 250) { edges { node { remoteId } } pageInfo { hasNextPage } } }", json!({"a": t.account_id}))
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    assert_eq!(
        r.body["data"]["contacts"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        250
    );
    let calls = t.sandbox_stats().await["requests"].as_u64().unwrap() - before;
    assert_eq!(calls, 3, "250 records at 100 a page is 3 upstream calls");
}

#[tokio::test]
async fn maps_a_known_record_field_by_field() {
    let t = TestGateway::start().await;
    let raw: Value = t
        .http
        .get(format!("{}/hubspot/crm/v3/objects/contacts?limit=1&properties=firstname,lastname,email,phone,jobtitle,associatedcompanyid,customer_tier", t.sandbox.base_url()))
        .bearer_auth(tessera_sandbox::HUBSPOT_DEMO_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let raw = &raw["results"][0];
    let id = raw["id"].as_str().unwrap();
    let p = &raw["properties"];
    let r = t
        .gql(
            Some(&t.env_key),
            "query($a: ID!, $r: ID!) { contact(accountId: $a, remoteId: $r) { id remoteId firstName lastName title emails { address type } phones { number } customFields remoteCreatedAt remoteUpdatedAt remoteData company { remoteId name } } }",
            json!({"a": t.account_id, "r": id}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    let c = &r.body["data"]["contact"];
    assert_eq!(c["remoteId"], id);
    assert_eq!(c["firstName"], p["firstname"]);
    assert_eq!(c["lastName"], p["lastname"]);
    assert_eq!(c["title"], p["jobtitle"]);
    assert_eq!(
        c["emails"],
        json!([{"address": p["email"], "type": "WORK"}])
    );
    assert_eq!(c["phones"][0]["number"], p["phone"]);
    assert_eq!(
        c["customFields"],
        json!({"customerTier": p["customer_tier"]})
    );
    assert_eq!(c["remoteCreatedAt"], raw["createdAt"]);
    assert_eq!(c["remoteUpdatedAt"], raw["updatedAt"]);
    assert_eq!(c["remoteData"]["properties"]["email"], p["email"]);
    assert_eq!(c["company"]["remoteId"], p["associatedcompanyid"]);
    assert!(c["company"]["name"].as_str().is_some_and(|n| !n.is_empty()));
    // The global id refetches the same record through node(id:).
    let n = t
        .gql(
            Some(&t.env_key),
            "query($id: ID!) { node(id: $id) { id ... on Contact { remoteId firstName } } }",
            json!({"id": c["id"]}),
        )
        .await;
    assert_eq!(n.body["data"]["node"]["remoteId"], id, "{}", n.body);
    assert_eq!(n.body["data"]["node"]["firstName"], p["firstname"]);
}

#[tokio::test]
async fn callers_without_a_valid_key_get_401_unauthenticated() {
    let t = TestGateway::start().await;
    for key in [None, Some("wrong-key")] {
        let r = t.gql(key, "{ linkedAccounts { id } }", json!({})).await;
        assert_eq!(r.status, 401);
        assert_eq!(r.code(), Some("UNAUTHENTICATED"));
    }
}

#[tokio::test]
async fn an_environment_never_sees_another_environments_accounts() {
    let t = TestGateway::start().await;
    let other_key = t.create_environment("globex").await;
    let other_account = t.connect_sandbox(&other_key, "hubspot").await;
    let mine = t
        .gql(
            Some(&t.env_key),
            "{ linkedAccounts { id provider status } }",
            json!({}),
        )
        .await;
    assert_eq!(
        mine.body["data"]["linkedAccounts"],
        json!([{"id": t.account_id, "provider": "hubspot", "status": "ACTIVE"}])
    );
    for query in [
        "query($a: ID!) { contacts(accountId: $a, first: 1) { edges { cursor } } }",
        "query($a: ID!) { linkedAccount(id: $a) { id } }",
        "query($a: ID!) { contact(accountId: $a, remoteId: \"1\") { id } }",
    ] {
        let r = t
            .gql(Some(&t.env_key), query, json!({"a": other_account}))
            .await;
        assert_eq!(r.code(), Some("NOT_FOUND"), "{query}: {}", r.body);
    }
    // The admin sees both.
    let all = t
        .gql(Some(ADMIN_KEY), "{ linkedAccounts { id } }", json!({}))
        .await;
    assert_eq!(
        all.body["data"]["linkedAccounts"].as_array().unwrap().len(),
        2
    );
    // Only the admin creates environments.
    let r = t
        .gql(
            Some(&t.env_key),
            "mutation { createEnvironment(name: \"x\") { apiKey } }",
            json!({}),
        )
        .await;
    assert_eq!(r.code(), Some("FORBIDDEN"));
}

#[tokio::test]
async fn bad_requests_get_the_documented_codes() {
    let t = TestGateway::start().await;
    let r = t
        .gql(Some(&t.env_key), "{ contacts(accountId: ", json!({}))
        .await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
    let r = t.gql(Some(&t.env_key), "{ nope }", json!({})).await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
    let r = t
        .gql(
            Some(&t.env_key),
            "{ contacts(accountId: \"no-such-account\") { edges { cursor } } }",
            json!({}),
        )
        .await;
    assert_eq!(r.code(), Some("NOT_FOUND"), "{}", r.body);
    let r = t
        .gql(Some(&t.env_key), "query($a: ID!) { contacts(accountId: $a, after: \"forged.cursor\") { edges { cursor } } }", json!({"a": t.account_id}))
        .await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
    let r = t
        .gql(
            Some(&t.env_key),
            "mutation { connectAccount(provider: \"nope\", credentials: {apiKey: \"k\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
    let resp = t
        .http
        .post(t.url())
        .bearer_auth(&t.env_key)
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
}

#[tokio::test]
async fn a_cursor_from_another_account_is_refused() {
    let t = TestGateway::start().await;
    let second = t.connect_sandbox(&t.env_key.clone(), "hubspot").await;
    let r = t
        .gql(
            Some(&t.env_key),
            "query($a: ID!) { contacts(accountId: $a, first: 2) { pageInfo { endCursor } } }",
            json!({"a": t.account_id}),
        )
        .await;
    let cursor = r.body["data"]["contacts"]["pageInfo"]["endCursor"]
        .as_str()
        .unwrap()
        .to_string();
    let r = t
        .gql(Some(&t.env_key), "query($a: ID!, $c: String) { contacts(accountId: $a, first: 2, after: $c) { edges { cursor } } }", json!({"a": second, "c": cursor}))
        .await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
}

#[tokio::test]
async fn a_rejected_token_is_needs_reauth_and_never_echoed() {
    let t = TestGateway::start().await;
    let demo = t
        .sandbox
        .demo_accounts()
        .into_iter()
        .find(|a| a.provider == "hubspot")
        .unwrap();
    let r = t
        .gql(
            Some(&t.env_key),
            "mutation($s: JSON) { connectAccount(provider: \"hubspot\", credentials: {accessToken: \"revoked-token-123\"}, settings: $s) { id } }",
            json!({"s": demo.settings}),
        )
        .await;
    let account = r.body["data"]["connectAccount"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = t
        .gql(
            Some(&t.env_key),
            "query($a: ID!) { contacts(accountId: $a) { edges { cursor } } }",
            json!({"a": account}),
        )
        .await;
    assert_eq!(r.code(), Some("NEEDS_REAUTH"), "{}", r.body);
    assert!(!r.body.to_string().contains("revoked-token-123"));
}

#[tokio::test]
async fn a_throttled_upstream_is_passed_through_as_429_with_ietf_headers() {
    let t = TestGateway::start().await;
    let resp = t
        .http
        .post(format!("{}/_control/ratelimit", t.sandbox.base_url()))
        .json(&json!({"provider": "hubspot", "max": 1, "intervalMs": 10000}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let q = "query($a: ID!) { contacts(accountId: $a, first: 1) { edges { cursor } } }";
    let first = t.gql(Some(&t.env_key), q, json!({"a": t.account_id})).await;
    assert!(first.body["errors"].is_null(), "{}", first.body);
    let r = t.gql(Some(&t.env_key), q, json!({"a": t.account_id})).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.code(), Some("RATE_LIMITED"));
    assert_eq!(r.body["errors"][0]["extensions"]["rateLimit"]["limit"], 1);
    assert_eq!(
        r.body["errors"][0]["extensions"]["rateLimit"]["remaining"],
        0
    );
    assert_eq!(r.headers["ratelimit-limit"], "1");
    assert_eq!(r.headers["ratelimit-remaining"], "0");
    assert!(r.headers.contains_key("ratelimit-reset"));
    assert!(r.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn graphiql_health_and_readiness_answer() {
    let t = TestGateway::start().await;
    let html = t
        .http
        .get(t.url())
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(html.status(), 200);
    assert!(
        html.text()
            .await
            .unwrap()
            .to_lowercase()
            .contains("graphiql")
    );
    for path in ["/healthz", "/readyz"] {
        let r = t
            .http
            .get(format!("{}{path}", t.gateway.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let r = t
        .http
        .get(format!("{}?query={{__typename}}", t.url()))
        .bearer_auth(&t.env_key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["data"]["__typename"],
        "Query"
    );
    let r = t
        .http
        .get(format!("{}?query=mutation{{__typename}}", t.url()))
        .bearer_auth(&t.env_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
}

#[tokio::test]
async fn connect_account_refuses_hosts_outside_the_allowed_list_without_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = tessera::app::Gateway::build(tessera::app::GatewayConfig {
        database_url: format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display()),
        providers_dir: crate::common::repo_path("providers"),
        schema_dir: crate::common::repo_path("schema"),
        upstreams: tessera::upstreams::AllowList::none(),
        secret_key: tessera::credentials::SecretKey::generate(),
        playground_key: None,
        introspection: true,
        refresh_every: None,
        public_url: None,
        probe_interval: None,
        watch_interval: None,
    })
    .await
    .unwrap();
    let env = gateway.ensure_environment("e", "env-key").await.unwrap();
    assert_eq!(env.name, "e");
    let running = tessera::app::RunningGateway::start(gateway, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let body = json!({"query": "mutation { connectAccount(provider: \"hubspot\", credentials: {accessToken: \"t\"}, settings: {baseUrl: \"http://127.0.0.1:1/x\"}) { id } }"});
    let r: Value = reqwest::Client::new()
        .post(format!("{}/graphql", running.url()))
        .bearer_auth("env-key")
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        r["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{r}"
    );
    // A loopback address is refused as one, before the provider's hosts are considered.
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("is 127.0.0.1, a loopback address"),
        "{r}"
    );
    running.stop().await;
}

/// Upstream calls the sandbox counted while `query` ran.
async fn calls_for(t: &TestGateway, query: &str) -> (u64, Value) {
    let before = t.sandbox_stats().await["requests"].as_u64().unwrap();
    let r = t
        .gql(Some(&t.env_key), query, json!({"a": t.account_id}))
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    (
        t.sandbox_stats().await["requests"].as_u64().unwrap() - before,
        r.body,
    )
}

#[tokio::test]
async fn relations_are_batched_once_per_list_level() {
    let t = TestGateway::start().await;
    let (n, _) = calls_for(
        &t,
        "query($a: ID!) { contacts(accountId: $a, first: 100) { edges { node { firstName } } } }",
    )
    .await;
    assert_eq!(n, 1, "a list is one upstream call");
    let (n, body) = calls_for(&t, "query($a: ID!) { contacts(accountId: $a, first: 100) { edges { node { firstName company { name } } } } }").await;
    assert_eq!(n, 2, "a list plus its companies is two upstream calls");
    let edges = body["data"]["contacts"]["edges"].as_array().unwrap();
    assert!(
        edges
            .iter()
            .filter(|e| e["node"]["company"]["name"].is_string())
            .count()
            > 50,
        "companies resolved"
    );
    // The same relation selected twice (aliases, fragments) and shared ids: still one batch.
    let (n, _) = calls_for(
        &t,
        "query($a: ID!) { contacts(accountId: $a, first: 100) { edges { node { company { name } again: company { domain } ... on Contact { company { industry } } } } } }",
    )
    .await;
    assert_eq!(n, 2);
    let stats = t.sandbox_stats().await;
    let batches = stats["byRoute"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.contains("batch/read"))
        .map(|(_, v)| v.as_u64().unwrap())
        .sum::<u64>();
    assert_eq!(
        batches, 2,
        "one batch read per list with companies: {stats}"
    );
}

#[tokio::test]
async fn without_a_batch_endpoint_related_records_are_read_in_parallel_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let providers = dir.path().join("providers");
    crate::common::copy_dir(&crate::common::repo_path("providers"), &providers);
    let path = providers.join("hubspot.json");
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    doc["resources"]["companies"]["operations"]
        .as_object_mut()
        .unwrap()
        .remove("batchGet");
    std::fs::write(&path, doc.to_string()).unwrap();
    let t = TestGateway::start_with(&crate::common::repo_path("schema"), &providers).await;
    let (n, body) = calls_for(&t, "query($a: ID!) { contacts(accountId: $a, first: 30) { edges { node { company { remoteId } } } } }").await;
    let distinct: std::collections::HashSet<&str> = body["data"]["contacts"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["node"]["company"]["remoteId"].as_str())
        .collect();
    assert!(distinct.len() > 5);
    assert_eq!(
        n,
        1 + distinct.len() as u64,
        "one get per distinct company, none repeated"
    );
}

#[tokio::test]
async fn global_ids_differ_across_accounts_with_the_same_remote_ids() {
    let t = TestGateway::start().await;
    let second = t.connect_sandbox(&t.env_key.clone(), "hubspot").await;
    let q = "query($a: ID!) { contact(accountId: $a, remoteId: \"1001\") { id remoteId } }";
    let one = t.gql(Some(&t.env_key), q, json!({"a": t.account_id})).await;
    let two = t.gql(Some(&t.env_key), q, json!({"a": second})).await;
    assert_eq!(
        one.body["data"]["contact"]["remoteId"],
        two.body["data"]["contact"]["remoteId"]
    );
    assert_ne!(
        one.body["data"]["contact"]["id"],
        two.body["data"]["contact"]["id"]
    );
    for (id, account) in [
        (&one.body["data"]["contact"]["id"], &t.account_id),
        (&two.body["data"]["contact"]["id"], &second),
    ] {
        let decoded = tessera::ids::GlobalId::decode(id.as_str().unwrap()).unwrap();
        assert_eq!(&decoded.account, account);
    }
}

/// A raw HTTP/1.1 request, so paths reach the gateway exactly as written (clients
/// normalise `..` away before sending).
async fn raw_get(t: &TestGateway, path: &str, key: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(t.gateway.addr)
        .await
        .unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn the_proxy_passes_requests_through_with_the_accounts_credentials() {
    let t = TestGateway::start().await;
    let base = format!("{}/proxy/{}", t.gateway.url(), t.account_id);
    let r = t
        .http
        .get(format!(
            "{base}/crm/v3/objects/contacts?limit=2&properties=firstname"
        ))
        .bearer_auth(&t.env_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // HubSpot reports a 10-second and a 1-second window; the headers describe the one with
    // fewest requests left (the secondly one, 11 per second) and the policy lists both.
    assert_eq!(r.headers()["ratelimit-limit"], "11");
    assert!(r.headers().contains_key("ratelimit-remaining"));
    assert_eq!(r.headers()["ratelimit-policy"], "110;w=10, 11;w=1");
    assert!(!r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["results"].as_array().unwrap().len(), 2, "{body}");
    assert_eq!(body["results"][0]["properties"]["firstname"], "Ada");

    // Writes and vendor errors come back as the vendor sent them.
    let r = t
        .http
        .post(format!("{base}/crm/v3/objects/contacts"))
        .bearer_auth(&t.env_key)
        .json(&json!({"properties": {"firstname": "Via", "lastname": "Proxy"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = t
        .http
        .get(format!("{base}/crm/v3/objects/contacts/999999"))
        .bearer_auth(&t.env_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap()["category"],
        "OBJECT_NOT_FOUND"
    );

    // Paths that would leave the account's base URL are refused before any upstream call.
    let before = t.sandbox_stats().await["requests"].as_u64().unwrap();
    for path in [
        "../_control/stats",
        "crm/../../_control/stats",
        "%2e%2e/_control/stats",
        "/127.0.0.1:1/x",
        "http://127.0.0.1:1/x",
    ] {
        let response = raw_get(&t, &format!("/proxy/{}/{path}", t.account_id), &t.env_key).await;
        assert!(response.starts_with("HTTP/1.1 400"), "{path}: {response}");
        assert!(response.contains("BAD_USER_INPUT"), "{path}: {response}");
    }
    assert_eq!(
        t.sandbox_stats().await["requests"].as_u64().unwrap(),
        before,
        "refused paths never reach the vendor"
    );

    // Another environment's account, and no key.
    let other = t.create_environment("globex").await;
    let r = t
        .http
        .get(format!("{base}/crm/v3/objects/contacts"))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = t
        .http
        .get(format!("{base}/crm/v3/objects/contacts"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn the_proxy_passes_a_429_through_with_normalised_headers() {
    let t = TestGateway::start().await;
    t.http
        .post(format!("{}/_control/ratelimit", t.sandbox.base_url()))
        .json(&json!({"provider": "hubspot", "max": 1, "intervalMs": 10000}))
        .send()
        .await
        .unwrap();
    let url = format!(
        "{}/proxy/{}/crm/v3/objects/contacts",
        t.gateway.url(),
        t.account_id
    );
    assert_eq!(
        t.http
            .get(&url)
            .bearer_auth(&t.env_key)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = t
        .http
        .get(&url)
        .bearer_auth(&t.env_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["ratelimit-remaining"], "0");
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(
        r.json::<Value>().await.unwrap()["errorType"],
        "RATE_LIMIT",
        "the vendor's body is passed through"
    );
}

fn posts_to_contacts(stats: &Value) -> u64 {
    stats["byRoute"]["POST /hubspot/crm/v3/objects/contacts"]
        .as_u64()
        .unwrap_or(0)
}

#[tokio::test]
async fn an_idempotency_key_makes_a_repeated_write_return_the_first_result() {
    let t = TestGateway::start().await;
    let create = "mutation($a: ID!, $i: ContactInput!, $k: String) { createContact(accountId: $a, input: $i, idempotencyKey: $k) { id remoteId firstName } }";
    let input = json!({"firstName": "Once", "lastName": "Only"});
    let first = t
        .gql(
            Some(&t.env_key),
            create,
            json!({"a": t.account_id, "i": input, "k": "key-1"}),
        )
        .await;
    assert!(first.body["errors"].is_null(), "{}", first.body);
    let again = t
        .gql(
            Some(&t.env_key),
            create,
            json!({"a": t.account_id, "i": input, "k": "key-1"}),
        )
        .await;
    assert_eq!(
        again.body["data"], first.body["data"],
        "the same record comes back"
    );
    assert_eq!(
        posts_to_contacts(&t.sandbox_stats().await),
        1,
        "one upstream write"
    );
    // The stored result is a vendor record: sealed, not in clear.
    let stored = t
        .gateway
        .services
        .store
        .list_idempotent_results()
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert!(stored[0].2.starts_with("sealed:v1:"), "{}", stored[0].2);
    assert!(!stored[0].2.contains("Once"), "{}", stored[0].2);

    // Without a key, every call writes.
    let plain = t
        .gql(
            Some(&t.env_key),
            create,
            json!({"a": t.account_id, "i": input}),
        )
        .await;
    assert_ne!(
        plain.body["data"]["createContact"]["remoteId"],
        first.body["data"]["createContact"]["remoteId"]
    );
    assert_eq!(posts_to_contacts(&t.sandbox_stats().await), 2);

    // The same key for another request is refused; another environment has its own keys.
    let other = t
        .gql(
            Some(&t.env_key),
            create,
            json!({"a": t.account_id, "i": {"firstName": "Else"}, "k": "key-1"}),
        )
        .await;
    assert_eq!(other.code(), Some("BAD_USER_INPUT"), "{}", other.body);
    let env2 = t.create_environment("globex").await;
    let account2 = t.connect_sandbox(&env2, "hubspot").await;
    let theirs = t
        .gql(
            Some(&env2),
            create,
            json!({"a": account2, "i": input, "k": "key-1"}),
        )
        .await;
    assert!(theirs.body["errors"].is_null(), "{}", theirs.body);
    assert_eq!(posts_to_contacts(&t.sandbox_stats().await), 3);

    // Update and delete replay too.
    let id = first.body["data"]["createContact"]["id"].clone();
    let update = "mutation($id: ID!, $k: String) { updateContact(id: $id, input: {lastName: \"Twice\"}, idempotencyKey: $k) { lastName } }";
    for _ in 0..2 {
        let r = t
            .gql(Some(&t.env_key), update, json!({"id": id, "k": "key-2"}))
            .await;
        assert_eq!(
            r.body["data"]["updateContact"]["lastName"], "Twice",
            "{}",
            r.body
        );
    }
    let patches = t.sandbox_stats().await["byRoute"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("PATCH"))
        .map(|(_, v)| v.as_u64().unwrap())
        .sum::<u64>();
    assert_eq!(patches, 1);
    let delete = "mutation($id: ID!) { deleteContact(id: $id, idempotencyKey: \"key-3\") }";
    for _ in 0..2 {
        let r = t.gql(Some(&t.env_key), delete, json!({"id": id})).await;
        assert_eq!(r.body["data"]["deleteContact"], id, "{}", r.body);
    }
    let deletes = t.sandbox_stats().await["byRoute"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("DELETE"))
        .map(|(_, v)| v.as_u64().unwrap())
        .sum::<u64>();
    assert_eq!(deletes, 1);
}

#[tokio::test]
async fn a_failed_keyed_write_can_be_retried_with_the_same_key() {
    let t = TestGateway::start().await;
    let fault = json!({"provider": "hubspot", "status": 503, "times": 1, "method": "POST", "pathContains": "/crm/v3/objects/contacts"});
    assert!(
        t.http
            .post(format!("{}/_control/faults", t.sandbox.base_url()))
            .json(&fault)
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let create = "mutation($a: ID!) { createContact(accountId: $a, input: {firstName: \"Retry\"}, idempotencyKey: \"k\") { firstName } }";
    let failed = t
        .gql(Some(&t.env_key), create, json!({"a": t.account_id}))
        .await;
    assert_eq!(
        failed.code(),
        Some("UPSTREAM_UNAVAILABLE"),
        "{}",
        failed.body
    );
    let ok = t
        .gql(Some(&t.env_key), create, json!({"a": t.account_id}))
        .await;
    assert_eq!(
        ok.body["data"]["createContact"]["firstName"], "Retry",
        "{}",
        ok.body
    );
    assert_eq!(posts_to_contacts(&t.sandbox_stats().await), 2);
}

#[tokio::test]
async fn deal_relations_are_batched_per_level_even_two_levels_deep() {
    let t = TestGateway::start().await;
    let (n, body) = calls_for(
        &t,
        "query($a: ID!) { deals(accountId: $a, first: 50) { edges { node { name company { name } contacts { firstName company { name } } owner { email } pipeline { name stages { id isClosed } } } } } }",
    )
    .await;
    let edges = body["data"]["deals"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 50);
    let deal = &edges[0]["node"];
    assert_eq!(deal["company"]["name"], "Acme Corporation", "{deal}");
    assert_eq!(deal["contacts"][0]["firstName"], "Ada", "{deal}");
    assert!(
        deal["contacts"][0]["company"]["name"].is_string(),
        "two levels deep: {deal}"
    );
    assert!(deal["owner"]["email"].is_string(), "{deal}");
    assert_eq!(deal["pipeline"]["name"], "Sales Pipeline");
    let owners: std::collections::HashSet<&str> = edges
        .iter()
        .filter_map(|e| e["node"]["owner"]["email"].as_str())
        .collect();
    let pipelines: std::collections::HashSet<&str> = edges
        .iter()
        .filter_map(|e| e["node"]["pipeline"]["name"].as_str())
        .collect();
    // The list, one batch of companies, one of contacts, one of the contacts' companies (the
    // second level), and one read per distinct owner and pipeline (HubSpot has no batch
    // endpoint for those).
    assert_eq!(
        n,
        4 + owners.len() as u64 + pipelines.len() as u64,
        "owners {} pipelines {}",
        owners.len(),
        pipelines.len()
    );
}

/// A link inside a value object: each stage knows its pipeline, loaded from the same
/// account, once per distinct pipeline however many stages point at it.
#[tokio::test]
async fn a_stage_resolves_its_pipeline_once_per_pipeline() {
    let t = TestGateway::start().await;
    let (calls, body) = calls_for(
        &t,
        "query($a: ID!) { pipelines(accountId: $a, first: 10) { edges { node { remoteId stages { id pipelineId pipeline { remoteId name } } } } } }",
    )
    .await;
    let edges = body["data"]["pipelines"]["edges"].as_array().unwrap();
    assert!(edges.len() >= 2, "{body}");
    let mut stages = 0;
    for e in edges {
        let node = &e["node"];
        for s in node["stages"].as_array().unwrap() {
            stages += 1;
            assert_eq!(s["pipeline"]["remoteId"], node["remoteId"], "{s}");
            assert!(s["pipeline"]["name"].is_string());
        }
    }
    assert!(stages > edges.len(), "several stages per pipeline");
    assert_eq!(
        calls,
        1 + edges.len() as u64,
        "the list, then one read per distinct pipeline"
    );
}
