//! Answers damaged on the wire: a connection reset after part of the body (the declared
//! `Content-Length` never arrives), a body that stops inside its JSON with a length to
//! match (a proxy that gave up), and an HTML page where JSON was due (a load balancer's
//! 502 page, a captive portal's 200).
//!
//! A cut answer is an outage (`UPSTREAM_UNAVAILABLE`, `extensions.failure: CUT_OFF`):
//! reads retry it; a write is never sent twice, and its error says the vendor may have
//! applied it. A complete answer that is not JSON is the vendor's shape changing
//! (`SCHEMA_DRIFT`), which no retry heals.

use serde_json::{Value, json};

use super::upstream::LIST;
use super::{calls, fault, request_log};
use crate::common::TestGateway;

const CONTACTS: &str = "/objects/contacts";

/// Lists three contacts of the test account: the answer and the vendor calls it took.
async fn list(t: &TestGateway) -> (crate::common::Reply, u64) {
    let before = calls(t).await;
    let r = t
        .gql(Some(&t.env_key), LIST, json!({"a": t.account_id}))
        .await;
    (r, calls(t).await - before)
}

fn failure(body: &Value) -> &Value {
    &body["errors"][0]["extensions"]["failure"]
}

#[tokio::test]
async fn a_read_whose_connection_resets_mid_body_is_retried_and_answers() {
    let t = TestGateway::start().await;
    fault(
        &t,
        json!({"provider": "hubspot", "kind": "reset", "keepBytes": 40, "times": 1, "method": "GET", "pathContains": CONTACTS}),
    )
    .await;
    let (r, sent) = list(&t).await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    assert_eq!(
        r.body["data"]["contacts"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(sent, 2, "the cut answer and the retry");
    // The log is written behind the request, one entry after the other: wait for both.
    let mut log = request_log(&t, &t.account_id).await;
    for _ in 0..50 {
        if log.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        log = request_log(&t, &t.account_id).await;
    }
    let classes: Vec<&Value> = log.iter().take(2).map(|e| &e["errorClass"]).collect();
    assert_eq!(classes, [&Value::Null, &json!("cut_off")], "{log:?}");
}

#[tokio::test]
async fn truncated_json_on_every_attempt_is_an_outage_not_drift() {
    let t = TestGateway::start().await;
    // A complete HTTP answer (its Content-Length matches) whose JSON stops after 25 bytes.
    fault(
        &t,
        json!({"provider": "hubspot", "kind": "truncate", "keepBytes": 25, "times": 100, "method": "GET", "pathContains": CONTACTS}),
    )
    .await;
    let (r, sent) = list(&t).await;
    assert_eq!(r.code(), Some("UPSTREAM_UNAVAILABLE"), "{}", r.body);
    assert_eq!(failure(&r.body), "CUT_OFF", "{}", r.body);
    let message = r.body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("cut off"), "{message}");
    assert!(
        !message.contains("\"results\""),
        "no vendor body in the message: {message}"
    );
    assert_eq!(
        sent, 4,
        "the first attempt and the 3 retries of the default policy"
    );
}

#[tokio::test]
async fn a_write_whose_answer_is_cut_off_is_sent_once_and_says_it_may_have_landed() {
    let t = TestGateway::start().await;
    let before_ids = t.all_contact_ids(100).await.len();
    fault(
        &t,
        json!({"provider": "hubspot", "kind": "reset", "keepBytes": 10, "times": 1, "method": "POST", "pathContains": CONTACTS}),
    )
    .await;
    let before = calls(&t).await;
    let r = t
        .gql(
            Some(&t.env_key),
            "mutation($a: ID!) { createContact(accountId: $a, input: {firstName: \"Cut\", lastName: \"Short\"}) { remoteId } }",
            json!({"a": t.account_id}),
        )
        .await;
    assert_eq!(r.code(), Some("UPSTREAM_UNAVAILABLE"), "{}", r.body);
    assert_eq!(failure(&r.body), "CUT_OFF", "{}", r.body);
    let message = r.body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("may have been applied"), "{message}");
    assert_eq!(calls(&t).await - before, 1, "a write is sent once");
    // The vendor did apply it: the caller was told to look before sending it again.
    assert_eq!(t.all_contact_ids(100).await.len(), before_ids + 1);

    // With an idempotency key, a retry with the same key does not write a second time.
    fault(
        &t,
        json!({"provider": "hubspot", "kind": "reset", "keepBytes": 10, "times": 1, "method": "POST", "pathContains": CONTACTS}),
    )
    .await;
    let keyed = "mutation($a: ID!) { createContact(accountId: $a, input: {firstName: \"Keyed\"}, idempotencyKey: \"cut-1\") { remoteId } }";
    let r = t
        .gql(Some(&t.env_key), keyed, json!({"a": t.account_id}))
        .await;
    assert_eq!(failure(&r.body), "CUT_OFF", "{}", r.body);
    let before = calls(&t).await;
    let again = t
        .gql(Some(&t.env_key), keyed, json!({"a": t.account_id}))
        .await;
    assert_eq!(again.code(), Some("BAD_USER_INPUT"), "{}", again.body);
    assert_eq!(
        calls(&t).await,
        before,
        "not written again under the same key"
    );
    assert_eq!(t.all_contact_ids(100).await.len(), before_ids + 2);
}

#[tokio::test]
async fn an_html_page_is_drift_on_a_200_and_an_outage_on_a_502() {
    let t = TestGateway::start().await;
    let page = "<html><body><h1>Service unavailable</h1></body></html>";
    fault(
        &t,
        json!({"provider": "hubspot", "status": 200, "rawBody": page, "times": 1, "method": "GET", "pathContains": CONTACTS}),
    )
    .await;
    let (r, sent) = list(&t).await;
    assert_eq!(r.code(), Some("SCHEMA_DRIFT"), "{}", r.body);
    assert_eq!(sent, 1, "drift is not retried");
    assert!(
        !r.body.to_string().contains("Service unavailable"),
        "the page is not echoed: {}",
        r.body
    );

    // A proxy's 502 page: retried like any 502, and the retry answers.
    fault(
        &t,
        json!({"provider": "hubspot", "status": 502, "rawBody": page, "times": 1, "method": "GET", "pathContains": CONTACTS}),
    )
    .await;
    let (r, sent) = list(&t).await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    assert_eq!(sent, 2);
}
