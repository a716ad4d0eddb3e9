//! Copper through the gateway, against the sandbox's Developer API v1: records searched
//! with `page_number`/`page_size` in a POST body and answered as bare arrays, Copper's
//! three authentication headers, unix-second timestamps, custom fields by definition id,
//! its error envelope, and a 429 with no rate header at all.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::TestGateway;
use crate::webhooks::{connect_with, control};

const SEARCH_ROUTE: &str = "POST /copper/developer_api/v1/people/search";

async fn copper() -> (TestGateway, String) {
    let t = TestGateway::start().await;
    let account = t.connect_sandbox(&t.env_key.clone(), "copper").await;
    (t, account)
}

async fn ok(t: &TestGateway, query: &str, variables: Value) -> Value {
    let r = t.gql(Some(&t.env_key), query, variables).await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    r.body["data"].clone()
}

#[tokio::test]
async fn every_person_is_searched_page_by_page_until_a_short_page() {
    let (t, a) = copper().await;
    let count = |s: &Value| s["byRoute"][SEARCH_ROUTE].as_u64().unwrap_or(0);
    let before = count(&t.sandbox_stats().await);
    let q = "query($a: ID!, $c: String) { contacts(accountId: $a, first: 200, after: $c) { edges { node { remoteId } } pageInfo { hasNextPage endCursor } } }";
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let data = ok(&t, q, json!({"a": a, "c": after})).await;
        let conn = &data["contacts"];
        ids.extend(
            conn["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"]["remoteId"].as_str().unwrap().to_string()),
        );
        if !conn["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = Some(conn["pageInfo"]["endCursor"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 260);
    assert_eq!(ids[0], "78757050", "the file sorts by creation");
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 260);
    // 200 + 60: the short page is the last.
    assert_eq!(count(&t.sandbox_stats().await) - before, 2);
}

#[tokio::test]
async fn a_person_maps_with_unix_seconds_and_a_custom_field_by_definition_id() {
    let (t, a) = copper().await;
    let q = "query($a: ID!) { contact(accountId: $a, remoteId: \"78757050\") { firstName lastName emails { address type } lastActivityAt remoteCreatedAt customFields company { name industry websites } } }";
    let c = ok(&t, q, json!({"a": a})).await["contact"].clone();
    assert_eq!(c["firstName"], "Ada");
    assert_eq!(
        c["emails"],
        json!([{"address": "ada.lovelace1@acme-corp.example", "type": "WORK"}])
    );
    assert_eq!(c["remoteCreatedAt"], "2024-03-02T11:31:12Z", "{c}");
    assert_eq!(c["lastActivityAt"], "2024-03-07T11:31:12Z");
    assert_eq!(c["customFields"]["customerTier"], "Gold");
    assert_eq!(c["company"]["name"], "Acme Corp");
    assert_eq!(c["company"]["industry"], "Software");

    // A custom field set through GraphQL lands as Copper's {definition id, value}.
    let created = ok(
        &t,
        "mutation($a: ID!) { createContact(accountId: $a, input: {firstName: \"Hedy\", lastName: \"Lamarr\", customFields: {customerTier: \"Silver\"}}) { remoteId customFields remoteData } }",
        json!({"a": a}),
    )
    .await["createContact"]
        .clone();
    assert_eq!(created["customFields"]["customerTier"], "Silver");
    assert_eq!(
        created["remoteData"]["custom_fields"],
        json!([{"custom_field_definition_id": 100_764, "value": "Silver"}])
    );
    assert_eq!(created["remoteData"]["name"], "Hedy Lamarr");

    // An opportunity's M/D/YYYY close date reads as a date-time.
    let d = ok(
        &t,
        "query($a: ID!) { deal(accountId: $a, remoteId: \"4417003\") { closeDate status probability contacts { firstName } } }",
        json!({"a": a}),
    )
    .await["deal"]
        .clone();
    assert_eq!(
        d,
        json!({"closeDate": "2024-04-11T00:00:00Z", "status": "WON", "probability": 0.4, "contacts": [{"firstName": "Grace"}]})
    );
}

#[tokio::test]
async fn copper_errors_map_to_contract_codes() {
    let (t, a) = copper().await;
    let r = ok(
        &t,
        "query($a: ID!) { contact(accountId: $a, remoteId: \"1\") { remoteId } }",
        json!({"a": a}),
    )
    .await;
    assert!(r["contact"].is_null(), "{r}");

    // A company that does not exist: Copper's 422.
    let r = t
        .gql(
            Some(&t.env_key),
            "mutation($a: ID!) { createContact(accountId: $a, input: {firstName: \"Ada\", companyId: \"999\"}) { id } }",
            json!({"a": a}),
        )
        .await;
    let code = r.code().unwrap_or_default().to_string();
    assert!(
        code == "BAD_USER_INPUT" || code == "UPSTREAM_ERROR",
        "{}",
        r.body
    );
    assert!(
        !r.body
            .to_string()
            .contains(tessera_sandbox::COPPER_DEMO_KEY),
        "{}",
        r.body
    );

    // The key is only good with its owner's email: another email is refused like a bad key.
    let other = connect_with(&t, "copper", json!({"userEmail": "someone@else.example"})).await;
    let r = t
        .gql(
            Some(&t.env_key),
            "query($a: ID!) { contacts(accountId: $a, first: 1) { edges { cursor } } }",
            json!({"a": other}),
        )
        .await;
    assert_eq!(r.code(), Some("NEEDS_REAUTH"), "{}", r.body);
}

#[tokio::test]
async fn a_429_without_headers_gets_the_files_window_as_normalised_figures() {
    let (t, a) = copper().await;
    control(
        &t,
        Method::POST,
        "ratelimit",
        json!({"provider": "copper", "max": 1, "intervalMs": 60_000}),
    )
    .await;
    let q = "query($a: ID!) { companies(accountId: $a, first: 1) { edges { cursor } } }";
    ok(&t, q, json!({"a": a})).await;
    let r = t.gql(Some(&t.env_key), q, json!({"a": a})).await;
    assert_eq!(r.code(), Some("RATE_LIMITED"), "{}", r.body);
    assert_eq!(r.status, 429);
    let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "retry-after {wait}");
    assert_eq!(
        r.headers["ratelimit-limit"], "180",
        "Copper's documented budget"
    );
}
