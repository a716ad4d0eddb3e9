//! Attio through the gateway, against the sandbox's REST v2: records listed through
//! `POST .../records/query` by offset, typed value arrays mapped to unified fields, a
//! custom attribute, Attio's error envelope, its 429 with an HTTP-date `Retry-After`, and
//! webhooks signed with a hex HMAC of the body.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{TestGateway, wait_for};
use crate::webhooks::{
    connect_with, control, hex, hmac256, outcomes, send, wait_events, wait_subscription,
};

const ADA: &str = "bf070001-6035-429d-b874-000000001ef0";
const QUERY_ROUTE: &str = "POST /attio/v2/objects/{object}/records/query";

async fn attio() -> (TestGateway, String) {
    let t = TestGateway::start().await;
    let account = t.connect_sandbox(&t.env_key.clone(), "attio").await;
    (t, account)
}

async fn ok(t: &TestGateway, query: &str, variables: Value) -> Value {
    let r = t.gql(Some(&t.env_key), query, variables).await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    r.body["data"].clone()
}

fn route_count(stats: &Value, route: &str) -> u64 {
    stats["byRoute"][route].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn every_person_is_listed_by_offset_and_the_short_page_ends_the_listing() {
    let (t, a) = attio().await;
    let before = route_count(&t.sandbox_stats().await, QUERY_ROUTE);
    let q = "query($a: ID!, $c: String) { contacts(accountId: $a, first: 100, after: $c) { edges { node { remoteId } } pageInfo { hasNextPage endCursor } } }";
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
    assert_eq!(ids.len(), 260, "every seeded person");
    assert_eq!(ids[0], ADA, "creation order");
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 260, "no person twice");
    // 100 + 100 + 60: Attio says nothing about more pages, the short one is the last.
    let after_listing = route_count(&t.sandbox_stats().await, QUERY_ROUTE);
    assert_eq!(after_listing - before, 3, "{}", t.sandbox_stats().await);

    // The vendor's own quirk, seen through the passthrough: a GET on the query path is a
    // 404 in Attio's envelope, not a 405.
    let r = t
        .http
        .get(format!(
            "{}/proxy/{a}/objects/people/records/query",
            t.gateway.url()
        ))
        .bearer_auth(&t.env_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "not_found", "{body}");
}

#[tokio::test]
async fn a_person_maps_from_typed_value_arrays_and_an_override_surfaces_another_attribute() {
    let (t, a) = attio().await;
    let q = "query($a: ID!, $r: ID!) { contact(accountId: $a, remoteId: $r) { firstName lastName title emails { address } phones { number } addresses { city country } customFields company { name domain websites industry } remoteData } }";
    let c = ok(&t, q, json!({"a": a, "r": ADA})).await["contact"].clone();
    assert_eq!(c["firstName"], "Ada");
    assert_eq!(c["lastName"], "Lovelace");
    assert_eq!(c["title"], "CTO");
    assert_eq!(
        c["emails"],
        json!([{"address": "ada.lovelace1@northwind-analytics.example"}])
    );
    assert_eq!(c["phones"], json!([{"number": "+1 617 555 1000"}]));
    assert_eq!(c["addresses"], json!([{"city": "Boston", "country": "US"}]));
    assert_eq!(
        c["customFields"]["customerTier"], "Gold",
        "a select's title"
    );
    assert_eq!(c["company"]["name"], "Northwind Analytics", "{c}");
    assert_eq!(c["company"]["industry"], "SaaS");
    assert_eq!(c["company"]["websites"].as_array().unwrap().len(), 2);
    // The raw record is Attio's: every value an array of typed objects.
    assert_eq!(
        c["remoteData"]["values"]["name"][0]["attribute_type"],
        "personal-name"
    );

    // A custom field from another attribute, for this account only: the company's
    // second domain.
    let r = t
        .gql(
            Some(&t.env_key),
            "mutation($i: OverrideInput!) { setOverride(input: $i) { id } }",
            json!({"i": {"level": "ACCOUNT", "accountId": a, "provider": "attio", "resource": "companies",
                          "fields": {"customFields.secondDomain": "values.domains[1].domain"}}}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    let q =
        "query($a: ID!, $r: ID!) { company(accountId: $a, remoteId: $r) { name customFields } }";
    let co = ok(
        &t,
        q,
        json!({"a": a, "r": "c0a10001-6035-429d-b874-000000001ef0"}),
    )
    .await["company"]
        .clone();
    assert_eq!(
        co["customFields"]["secondDomain"], "northwindanalytics.example.com",
        "{co}"
    );
}

#[tokio::test]
async fn a_deal_reads_its_stage_and_amount_and_links_its_company_and_people() {
    let (t, a) = attio().await;
    let q = "query($a: ID!, $r: ID!) { deal(accountId: $a, remoteId: $r) { name status stageId amount { amount currency } company { name } contacts { firstName lastName } } }";
    // Deal 3 is at "Won 🎉" (a status title with an emoji), deal 4 is lost.
    let won = ok(
        &t,
        q,
        json!({"a": a, "r": "dea10003-6035-429d-b874-000000005cce"}),
    )
    .await["deal"]
        .clone();
    assert_eq!(won["status"], "WON", "{won}");
    assert_eq!(won["amount"], json!({"amount": "7500", "currency": "USD"}));
    assert_eq!(won["company"]["name"], "Fabrikam Logistics");
    assert_eq!(
        won["contacts"],
        json!([{"firstName": "Alan", "lastName": "Turing"}])
    );
    let lost = ok(
        &t,
        q,
        json!({"a": a, "r": "dea10004-6035-429d-b874-000000007bbd"}),
    )
    .await["deal"]
        .clone();
    assert_eq!(lost["status"], "LOST");
    // Written through GraphQL: the stage follows the unified status.
    let d = ok(
        &t,
        "mutation($a: ID!) { createDeal(accountId: $a, input: {name: \"Expansion 2027\", status: WON, amount: {amount: \"12000.5\", currency: \"EUR\"}, contactIds: [\"bf070002-6035-429d-b874-000000003ddf\"]}) { status amount { amount currency } contacts { firstName } } }",
        json!({"a": a}),
    )
    .await["createDeal"]
        .clone();
    assert_eq!(
        d,
        json!({"status": "WON", "amount": {"amount": "12000.5", "currency": "EUR"}, "contacts": [{"firstName": "Grace"}]})
    );
}

#[tokio::test]
async fn attio_errors_map_to_contract_codes() {
    let (t, a) = attio().await;
    // An unknown record: Attio's 404 is no record, not an error.
    let r = ok(
        &t,
        "query($a: ID!) { contact(accountId: $a, remoteId: \"00000000-0000-4000-8000-000000000000\") { remoteId } }",
        json!({"a": a}),
    )
    .await;
    assert!(r["contact"].is_null(), "{r}");

    // A select option the workspace does not have: Attio's 400 is refused, with its
    // message and without the request's credentials.
    let r = t
        .gql(
            Some(&t.env_key),
            "mutation($a: ID!) { createContact(accountId: $a, input: {firstName: \"Ada\", customFields: {customerTier: \"Platinum\"}}) { id } }",
            json!({"a": a}),
        )
        .await;
    let code = r.code().unwrap_or_default().to_string();
    assert!(
        code == "BAD_USER_INPUT" || code == "UPSTREAM_ERROR",
        "{}",
        r.body
    );
    let text = r.body.to_string();
    assert!(text.contains("Platinum"), "the vendor's message: {text}");
    assert!(!text.contains(tessera_sandbox::ATTIO_DEMO_TOKEN), "{text}");

    // A key Attio no longer accepts: the account needs re-authorization.
    control(
        &t,
        Method::POST,
        "faults",
        json!({"provider": "attio", "status": 401, "times": 1}),
    )
    .await;
    let r = t
        .gql(
            Some(&t.env_key),
            "query($a: ID!) { contacts(accountId: $a, first: 1) { edges { cursor } } }",
            json!({"a": a}),
        )
        .await;
    assert_eq!(r.code(), Some("NEEDS_REAUTH"), "{}", r.body);

    // Attio down: unavailable.
    control(
        &t,
        Method::POST,
        "faults",
        json!({"provider": "attio", "status": 503, "times": 10}),
    )
    .await;
    let r = t
        .gql(
            Some(&t.env_key),
            "query($a: ID!) { companies(accountId: $a, first: 1) { edges { cursor } } }",
            json!({"a": a}),
        )
        .await;
    assert!(
        matches!(
            r.code(),
            Some("UPSTREAM_UNAVAILABLE") | Some("NEEDS_REAUTH")
        ),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn a_429_with_an_http_date_retry_after_is_passed_through_normalised() {
    let (t, a) = attio().await;
    control(
        &t,
        Method::POST,
        "ratelimit",
        json!({"provider": "attio", "max": 2, "intervalMs": 30_000}),
    )
    .await;
    let q = "query($a: ID!) { contacts(accountId: $a, first: 1) { edges { cursor } } }";
    for _ in 0..2 {
        ok(&t, q, json!({"a": a})).await;
    }
    let r = t.gql(Some(&t.env_key), q, json!({"a": a})).await;
    assert_eq!(r.code(), Some("RATE_LIMITED"), "{}", r.body);
    assert_eq!(r.status, 429);
    let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(
        (1..=31).contains(&wait),
        "seconds, from Attio's date: {wait}"
    );
    let reset: u64 = r.headers["ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=31).contains(&reset), "reset {reset}");
    assert!(r.body["errors"][0]["extensions"]["rateLimit"].is_object());
}

#[tokio::test]
async fn attio_webhook_is_created_with_its_secret_and_signed_deliveries_are_verified() {
    let t = TestGateway::start().await;
    let account = connect_with(&t, "attio", json!({})).await;
    let sub = wait_subscription(&t, &account, 10, "never ACTIVE", |s| s["state"] == "ACTIVE").await;
    assert!(sub["expiresAt"].is_null(), "Attio webhooks do not expire");
    let listed = control(&t, Method::GET, "webhooks/attio", Value::Null).await;
    let hook = &listed["subscriptions"][0];
    assert!(
        hook["target_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/webhooks/attio/{account}")),
        "{listed}"
    );
    assert_eq!(sub["remoteId"], hook["id"]["webhook_id"]);

    // A change in Attio's UI arrives with ids only: the record is read back and mapped.
    let touched = control(
        &t,
        Method::POST,
        "webhooks/attio/touch",
        json!({"resource": "contacts", "action": "updated", "id": ADA}),
    )
    .await;
    let events = wait_events(&t, &t.env_key, &account, 1).await;
    assert_eq!(events[0]["type"], "contact.updated");
    assert_eq!(events[0]["remoteId"], ADA);
    assert_eq!(touched["id"], ADA, "{touched}");
    assert_eq!(events[0]["record"]["firstName"], "Touched", "{events:?}");

    // A delivery signed with the webhook's secret is accepted; the same signature on a
    // tampered body is refused.
    let secret = hook["secret"].as_str().unwrap();
    let url = format!("{}/webhooks/attio/{account}", t.gateway.url());
    let body = json!({"webhook_id": hook["id"]["webhook_id"], "events": [{"event_type": "record.deleted",
        "id": {"workspace_id": "w", "object_id": "d7f3e4a5-6b80-4c93-9da4-e5f6a7b8c920", "record_id": "dea10009-6035-429d-b874-000000000000"},
        "actor": {"type": "workspace-member", "id": "m"}}]})
    .to_string();
    let signature = hex(&hmac256(secret.as_bytes(), body.as_bytes()));
    let tampered = body.replace("record.deleted", "record.created");
    let refused = send(
        &t,
        &url,
        &tampered,
        &[
            ("Attio-Signature", signature.clone()),
            ("Idempotency-Key", "k-2".into()),
        ],
    )
    .await;
    assert_eq!(refused.status, 401);
    let accepted = send(
        &t,
        &url,
        &body,
        &[
            ("Attio-Signature", signature),
            ("Idempotency-Key", "k-1".into()),
        ],
    )
    .await;
    assert!(accepted.status < 300, "{}", accepted.status);
    let events = wait_events(&t, &t.env_key, &account, 2).await;
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "deal.deleted" && e["resource"] == "deals"),
        "{events:?}"
    );

    // Deliveries the sandbox signs with a wrong secret are refused too.
    control(
        &t,
        Method::POST,
        "webhooks/attio/faults",
        json!({"wrongSignature": true}),
    )
    .await;
    control(
        &t,
        Method::POST,
        "webhooks/attio/touch",
        json!({"resource": "companies", "action": "updated"}),
    )
    .await;
    wait_for("a wrongly signed delivery to be refused", || async {
        outcomes(&t, &account)
            .await
            .iter()
            .filter(|o| *o == "BAD_SIGNATURE")
            .count()
            >= 2
    })
    .await;
}
