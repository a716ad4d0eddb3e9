//! Reconciliation through a vendor's change feed (`changes` in the provider file), against
//! the sandbox Google People API and its sync tokens: the first pass is a baseline, later
//! passes list only what changed since the stored token, deletions included, and a token
//! the vendor refuses as expired, or one taken with a request that has changed since, is
//! followed by a full resync.

use serde_json::{Value, json};
use tessera_sandbox::GOOGLE_DEMO_TOKEN;

use crate::common::TestGateway;
use crate::webhooks::{control, wait_events};

/// A call to the sandbox Google as the vendor's own apps make it: a change the gateway
/// did not make.
async fn google(
    t: &TestGateway,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let mut req = t
        .http
        .request(method, format!("{}/google/v1{path}", t.sandbox.base_url()))
        .bearer_auth(GOOGLE_DEMO_TOKEN);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

/// The resource names of a few contacts at the vendor.
async fn some_contacts(t: &TestGateway, n: usize) -> Vec<String> {
    let page = google(
        t,
        reqwest::Method::GET,
        &format!("/people/me/connections?personFields=names&pageSize={n}"),
        None,
    )
    .await;
    page["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["resourceName"].as_str().unwrap().to_owned())
        .collect()
}

/// Renames a contact at the vendor (read for its etag, then updated).
async fn rename(t: &TestGateway, resource: &str, family: &str) {
    let current = google(
        t,
        reqwest::Method::GET,
        &format!("/{resource}?personFields=names"),
        None,
    )
    .await;
    google(
        t,
        reqwest::Method::PATCH,
        &format!("/{resource}:updateContact?updatePersonFields=names"),
        Some(json!({"etag": current["etag"], "names": [{"givenName": "Renamed", "familyName": family}]})),
    )
    .await;
}

async fn delete(t: &TestGateway, resource: &str) {
    google(
        t,
        reqwest::Method::DELETE,
        &format!("/{resource}:deleteContact"),
        None,
    )
    .await;
}

/// One reconciliation pass over the account now; how many missed changes it queued.
async fn pass(t: &TestGateway, account: &str) -> usize {
    tessera::webhooks::reconcile::reconcile_account(
        &t.gateway.services,
        account,
        chrono::Duration::zero(),
    )
    .await
    .unwrap()
}

/// What the sandbox did with sync tokens so far.
async fn tokens(t: &TestGateway) -> Value {
    control(t, reqwest::Method::GET, "google/sync-tokens", Value::Null).await
}

async fn account_events(t: &TestGateway, account: &str) -> Vec<Value> {
    let r = t
        .gql(
            Some(&t.env_key),
            "query($a: ID!) { linkedAccount(id: $a) { events { kind message } } }",
            json!({"a": account}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    r.body["data"]["linkedAccount"]["events"]
        .as_array()
        .unwrap()
        .clone()
}

async fn event_count(t: &TestGateway, account: &str) -> usize {
    let r = t
        .gql(
            Some(&t.env_key),
            "query($a: ID) { events(accountId: $a, first: 500) { edges { cursor } } }",
            json!({"a": account}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    r.body["data"]["events"]["edges"].as_array().unwrap().len()
}

fn remote_id(resource: &str) -> &str {
    resource.strip_prefix("people/").unwrap()
}

#[tokio::test]
async fn a_contact_changed_or_deleted_after_the_baseline_is_found_through_the_sync_token() {
    let t = TestGateway::start().await;
    let account = t.connect_sandbox(&t.env_key, "google").await;
    let contacts = some_contacts(&t, 3).await;

    // The baseline lists every contact and reports none: none changed since the link.
    assert_eq!(pass(&t, &account).await, 0);
    let after_baseline = tokens(&t).await;
    assert_eq!(after_baseline["issued"], 1, "{after_baseline}");
    assert_eq!(after_baseline["changeListings"], 0, "{after_baseline}");
    assert_eq!(event_count(&t, &account).await, 0);

    rename(&t, &contacts[0], "Reconciled").await;
    assert_eq!(pass(&t, &account).await, 1);
    let events = wait_events(&t, &t.env_key, &account, 1).await;
    let updated = &events[0];
    assert_eq!(updated["source"], "POLL");
    assert_eq!(updated["type"], "contact.updated");
    assert_eq!(updated["resource"], "contacts");
    assert_eq!(updated["remoteId"], remote_id(&contacts[0]));
    assert_eq!(updated["record"]["firstName"], "Renamed");
    assert_eq!(updated["record"]["lastName"], "Reconciled");
    assert_eq!(updated["record"]["remoteId"], remote_id(&contacts[0]));
    let listed = tokens(&t).await;
    assert_eq!(
        listed["changeListings"], 1,
        "the pass asked for the changes since the stored token: {listed}"
    );

    // A full listing cannot show a deletion; the changes since the token do.
    delete(&t, &contacts[1]).await;
    assert_eq!(pass(&t, &account).await, 1);
    let events = wait_events(&t, &t.env_key, &account, 2).await;
    let deleted: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "contact.deleted")
        .collect();
    assert_eq!(deleted.len(), 1, "{events:?}");
    assert_eq!(deleted[0]["remoteId"], remote_id(&contacts[1]));
    assert_eq!(deleted[0]["source"], "POLL");
    assert!(deleted[0]["record"].is_null(), "{}", deleted[0]);

    // Nothing changed since: nothing more, and the missed changes were counted.
    assert_eq!(pass(&t, &account).await, 0);
    assert_eq!(event_count(&t, &account).await, 2);
    let kinds: Vec<Value> = account_events(&t, &account)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "WEBHOOK_MISSED")
        .collect();
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    assert_eq!(tokens(&t).await["expiredRefusals"], 0);
}

#[tokio::test]
async fn an_expired_sync_token_is_followed_by_a_full_resync_and_the_feed_goes_on() {
    let t = TestGateway::start().await;
    let account = t.connect_sandbox(&t.env_key, "google").await;
    let contacts = some_contacts(&t, 3).await;
    assert_eq!(pass(&t, &account).await, 0);

    rename(&t, &contacts[0], "WhileExpired").await;
    control(
        &t,
        reqwest::Method::POST,
        "google/sync-tokens/expire",
        Value::Null,
    )
    .await;
    // The token is refused; the full resync reports only what changed since the last pass.
    assert_eq!(pass(&t, &account).await, 1);
    let resync = tokens(&t).await;
    assert_eq!(resync["expiredRefusals"], 1, "{resync}");
    assert_eq!(resync["issued"], 2, "a new token from the resync: {resync}");
    let events = wait_events(&t, &t.env_key, &account, 1).await;
    assert_eq!(events[0]["type"], "contact.updated");
    assert_eq!(events[0]["remoteId"], remote_id(&contacts[0]));
    assert_eq!(events[0]["record"]["lastName"], "WhileExpired");
    let expired: Vec<Value> = account_events(&t, &account)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "SYNC_TOKEN_EXPIRED")
        .collect();
    assert_eq!(expired.len(), 1, "{expired:?}");
    let message = expired[0]["message"].as_str().unwrap();
    assert!(
        message.contains("expired; a full resync listed 260 record(s) and found 1 changed"),
        "{message}"
    );

    // The resync's token is the one in use now: a deletion is seen, nothing is refused.
    delete(&t, &contacts[1]).await;
    assert_eq!(pass(&t, &account).await, 1);
    let events = wait_events(&t, &t.env_key, &account, 2).await;
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "contact.deleted" && e["remoteId"] == remote_id(&contacts[1])),
        "{events:?}"
    );
    rename(&t, &contacts[2], "After").await;
    assert_eq!(pass(&t, &account).await, 1);
    let after = tokens(&t).await;
    assert_eq!(after["expiredRefusals"], 1, "{after}");
    assert_eq!(after["changeListings"], 2, "{after}");
    let events = wait_events(&t, &t.env_key, &account, 3).await;
    assert!(
        events
            .iter()
            .any(|e| e["record"]["lastName"] == "After" && e["remoteId"] == remote_id(&contacts[2])),
        "{events:?}"
    );
}

/// Google refuses a token sent with other parameters than the call that made it: after an
/// override changes the listing's parameters, the stored token is not sent again.
#[tokio::test]
async fn a_token_taken_before_an_override_changed_the_request_is_not_sent_again() {
    let t = TestGateway::start().await;
    let account = t.connect_sandbox(&t.env_key, "google").await;
    let contacts = some_contacts(&t, 2).await;
    assert_eq!(pass(&t, &account).await, 0);

    let r = t
        .gql(
            Some(&t.env_key),
            "mutation($i: OverrideInput!) { setOverride(input: $i) { version } }",
            json!({"i": {"level": "ACCOUNT", "provider": "google", "resource": "contacts", "accountId": account,
                   "request": {"list": {"query": {"sources": "READ_SOURCE_TYPE_CONTACT"}}}}}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    rename(&t, &contacts[0], "AfterOverride").await;
    assert_eq!(pass(&t, &account).await, 1, "the resync finds the rename");
    let reset: Vec<Value> = account_events(&t, &account)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "SYNC_TOKEN_RESET")
        .collect();
    assert_eq!(reset.len(), 1, "{reset:?}");
    let sandbox = tokens(&t).await;
    assert_eq!(
        sandbox["changeListings"], 0,
        "the old token was not sent: {sandbox}"
    );
    assert_eq!(sandbox["issued"], 2, "{sandbox}");

    // The new token goes with the new parameters.
    delete(&t, &contacts[1]).await;
    assert_eq!(pass(&t, &account).await, 1);
    let after = tokens(&t).await;
    assert_eq!(after["changeListings"], 1, "{after}");
    let events = wait_events(&t, &t.env_key, &account, 2).await;
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "contact.deleted" && e["remoteId"] == remote_id(&contacts[1])),
        "{events:?}"
    );
}
