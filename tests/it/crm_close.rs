//! Close through the gateway, against the sandbox's REST v1: contacts, leads and
//! opportunities paged with `_skip`/`_limit` until `has_more` is false, the API key as the
//! HTTP Basic user name, `custom.cf_*` fields, Close's error bodies, its combined
//! `RateLimit` header, and webhooks signed over timestamp and body with a hex key.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{TestGateway, wait_for};
use crate::webhooks::{
    connect_with, control, hex, hmac256, outcomes, send, wait_events, wait_subscription,
};

const ADA: &str = "cont_zsX3UwCr3JDvTehGqsYGjwliPiuqP85cUbx7MRkspy4";
const BLUEBIRD: &str = "lead_TAoepA7Z9xexCMcWJJLhNvR7D6fA8L6nPilMWBozXXM";
const CONTACT_ROUTE: &str = "GET /close/api/v1/contact/";

async fn close() -> (TestGateway, String) {
    let t = TestGateway::start().await;
    let account = t.connect_sandbox(&t.env_key.clone(), "close").await;
    (t, account)
}

async fn ok(t: &TestGateway, query: &str, variables: Value) -> Value {
    let r = t.gql(Some(&t.env_key), query, variables).await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    r.body["data"].clone()
}

#[tokio::test]
async fn every_contact_is_listed_by_skip_until_has_more_is_false() {
    let (t, a) = close().await;
    let count = |s: &Value| s["byRoute"][CONTACT_ROUTE].as_u64().unwrap_or(0);
    let before = count(&t.sandbox_stats().await);
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
    assert_eq!(ids.len(), 260);
    assert_eq!(ids[0], ADA);
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 260);
    // 100 + 100 + 60, and the third page says `has_more: false`: no fourth request.
    assert_eq!(count(&t.sandbox_stats().await) - before, 3);
}

#[tokio::test]
async fn a_contact_maps_with_its_custom_field_and_its_lead_as_company() {
    let (t, a) = close().await;
    let q = "query($a: ID!, $r: ID!) { contact(accountId: $a, remoteId: $r) { firstName lastName title emails { address type } phones { number type } customFields company { name domain industry addresses { street city type } } } }";
    let c = ok(&t, q, json!({"a": a, "r": ADA})).await["contact"].clone();
    assert_eq!(c["firstName"], "Ada");
    assert_eq!(c["lastName"], "Lovelace");
    assert_eq!(
        c["emails"],
        json!([{"address": "ada.lovelace1@bluebirdanalytics.example", "type": "WORK"}]),
        "an office email is a work one"
    );
    assert_eq!(c["phones"][0]["number"], "+16503334000");
    assert_eq!(c["customFields"]["customerTier"], "Gold");
    assert_eq!(c["company"]["name"], "Bluebird Analytics");
    assert_eq!(c["company"]["domain"], "www.bluebirdanalytics.example");
    assert_eq!(c["company"]["industry"], "Software");
    assert_eq!(
        c["company"]["addresses"],
        json!([{"street": "100 Market Street", "city": "San Francisco", "type": "BUSINESS"}])
    );

    // A one-word name is a first name only.
    let q = "query($a: ID!) { contacts(accountId: $a, first: 9) { edges { node { firstName lastName } } } }";
    let edges = ok(&t, q, json!({"a": a})).await["contacts"]["edges"].clone();
    assert_eq!(
        edges[8]["node"],
        json!({"firstName": "Ken", "lastName": null})
    );

    // An override surfaces another Close field as a custom field, for this account only.
    let r = t
        .gql(
            Some(&t.env_key),
            "mutation($i: OverrideInput!) { setOverride(input: $i) { id } }",
            json!({"i": {"level": "ACCOUNT", "accountId": a, "provider": "close", "resource": "companies",
                          "fields": {"customFields.leadStatus": "status_label"}}}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    let co = ok(
        &t,
        "query($a: ID!, $r: ID!) { company(accountId: $a, remoteId: $r) { customFields } }",
        json!({"a": a, "r": BLUEBIRD}),
    )
    .await;
    assert_eq!(
        co["company"]["customFields"]["leadStatus"], "Potential",
        "{co}"
    );
}

#[tokio::test]
async fn an_opportunity_reads_cents_as_an_amount_and_its_status_type_as_status() {
    let (t, a) = close().await;
    let q = "query($a: ID!, $r: ID!) { deal(accountId: $a, remoteId: $r) { name status amount { amount currency } probability closeDate company { name } contacts { firstName } } }";
    let d = ok(
        &t,
        q,
        json!({"a": a, "r": "oppo_hGqa4IcGIPfzO5ByKYTquZYc0FpdGLs4pTh1DEznqgN"}),
    )
    .await["deal"]
        .clone();
    assert_eq!(d["status"], "WON");
    assert_eq!(
        d["amount"],
        json!({"amount": "1234567.89", "currency": "USD"}),
        "123456789 cents"
    );
    assert_eq!(d["company"]["name"], "Harbour Bakery");
    assert_eq!(d["contacts"], json!([{"firstName": "Grace"}]));

    // A second contact is refused, not dropped: a Close opportunity has one.
    let r = t
        .gql(
            Some(&t.env_key),
            "mutation($a: ID!, $i: DealInput!) { createDeal(accountId: $a, input: $i) { id } }",
            json!({"a": a, "i": {"name": "Two", "companyId": BLUEBIRD, "contactIds": [ADA, "cont_x"]}}),
        )
        .await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
}

#[tokio::test]
async fn close_errors_map_to_contract_codes() {
    let (t, a) = close().await;
    let r = ok(
        &t,
        "query($a: ID!) { contact(accountId: $a, remoteId: \"cont_doesnotexist\") { remoteId } }",
        json!({"a": a}),
    )
    .await;
    assert!(r["contact"].is_null(), "{r}");

    // Close's 400 with field errors: an opportunity needs a lead.
    let r = t
        .gql(
            Some(&t.env_key),
            "mutation($a: ID!) { createDeal(accountId: $a, input: {name: \"No lead\"}) { id } }",
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
        !r.body.to_string().contains(tessera_sandbox::CLOSE_DEMO_KEY),
        "{}",
        r.body
    );

    control(
        &t,
        Method::POST,
        "faults",
        json!({"provider": "close", "status": 401, "times": 1}),
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
}

#[tokio::test]
async fn a_429_is_passed_through_with_the_ratelimit_header_normalised() {
    let (t, a) = close().await;
    control(
        &t,
        Method::POST,
        "ratelimit",
        json!({"provider": "close", "max": 3, "intervalMs": 20_000}),
    )
    .await;
    let q = "query($a: ID!) { deals(accountId: $a, first: 1) { edges { cursor } } }";
    let first = t.gql(Some(&t.env_key), q, json!({"a": a})).await;
    assert!(first.body["errors"].is_null(), "{}", first.body);
    // Close's `RateLimit: limit=3, remaining=2, reset=...` becomes the IETF trio.
    assert_eq!(first.headers["ratelimit-limit"], "3");
    assert_eq!(first.headers["ratelimit-remaining"], "2");
    let mut last = first;
    for _ in 0..5 {
        last = t.gql(Some(&t.env_key), q, json!({"a": a})).await;
        if last.code().is_some() {
            break;
        }
    }
    assert_eq!(last.code(), Some("RATE_LIMITED"), "{}", last.body);
    assert_eq!(last.status, 429);
    let wait: u64 = last.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=21).contains(&wait), "retry-after {wait}");
    assert_eq!(last.headers["ratelimit-remaining"], "0");
    assert_eq!(
        last.body["errors"][0]["extensions"]["rateLimit"]["limit"],
        3
    );
}

#[tokio::test]
async fn close_webhook_is_created_with_its_signature_key_and_deliveries_are_verified() {
    let t = TestGateway::start().await;
    let account = connect_with(&t, "close", json!({})).await;
    let sub = wait_subscription(&t, &account, 10, "never ACTIVE", |s| s["state"] == "ACTIVE").await;
    let listed = control(&t, Method::GET, "webhooks/close", Value::Null).await;
    let hook = &listed["subscriptions"][0];
    assert_eq!(sub["remoteId"], hook["id"]);
    assert_eq!(hook["events"].as_array().unwrap().len(), 9, "{listed}");

    // A change in Close's UI: the delivery carries the object, mapped as it came.
    control(
        &t,
        Method::POST,
        "webhooks/close/touch",
        json!({"resource": "contacts", "action": "updated", "id": ADA}),
    )
    .await;
    let events = wait_events(&t, &t.env_key, &account, 1).await;
    assert_eq!(events[0]["type"], "contact.updated");
    assert_eq!(events[0]["remoteId"], ADA);
    assert!(
        events[0]["record"]["firstName"]
            .as_str()
            .unwrap()
            .starts_with("Edited"),
        "{events:?}"
    );

    // Signed by hand with the subscription's key: accepted; tampered or stale: refused.
    let key: Vec<u8> = (0..64)
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&hook["signature_key"].as_str().unwrap()[i..i + 2], 16).unwrap()
        })
        .collect();
    let url = format!("{}/webhooks/close/{account}", t.gateway.url());
    let body = json!({"subscription_id": hook["id"], "event": {"id": "ev_manual1", "action": "deleted",
        "object_type": "opportunity", "object_id": "oppo_gone", "date_created": "2026-01-01T00:00:00.000000+00:00",
        "data": {}, "previous_data": {}}})
    .to_string();
    let sign = |ts: i64, body: &str| hex(&hmac256(&key, format!("{ts}{body}").as_bytes()));
    let now = chrono::Utc::now().timestamp();
    let tampered = body.replace("oppo_gone", "oppo_other");
    let refused = send(
        &t,
        &url,
        &tampered,
        &[
            ("close-sig-hash", sign(now, &body)),
            ("close-sig-timestamp", now.to_string()),
        ],
    )
    .await;
    assert_eq!(refused.status, 401);
    let stale = send(
        &t,
        &url,
        &body,
        &[
            ("close-sig-hash", sign(now - 900, &body)),
            ("close-sig-timestamp", (now - 900).to_string()),
        ],
    )
    .await;
    assert_eq!(stale.status, 401, "older than five minutes");
    let accepted = send(
        &t,
        &url,
        &body,
        &[
            ("close-sig-hash", sign(now, &body)),
            ("close-sig-timestamp", now.to_string()),
        ],
    )
    .await;
    assert!(accepted.status < 300, "{}", accepted.status);
    let events = wait_events(&t, &t.env_key, &account, 2).await;
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "deal.deleted" && e["remoteId"] == "oppo_gone"),
        "{events:?}"
    );

    control(
        &t,
        Method::POST,
        "webhooks/close/faults",
        json!({"wrongSignature": true}),
    )
    .await;
    control(
        &t,
        Method::POST,
        "webhooks/close/touch",
        json!({"resource": "deals", "action": "updated"}),
    )
    .await;
    wait_for("a wrongly signed delivery to be refused", || async {
        outcomes(&t, &account)
            .await
            .iter()
            .filter(|o| *o == "BAD_SIGNATURE")
            .count()
            >= 3
    })
    .await;
}
