//! Pagination that goes wrong at the vendor, on every provider that can go wrong that way:
//! a cursor handed back unchanged (the listing would loop or repeat records) and a next
//! page that is out of range.

use serde_json::json;

use crate::common::TestGateway;

/// Lists everything in one request (several upstream pages) after injecting `kind`.
async fn list_with_fault(provider: &str, kind: &str) -> crate::common::Reply {
    let t = TestGateway::start().await;
    let account = if provider == "hubspot" {
        t.account_id.clone()
    } else {
        t.connect_sandbox(&t.env_key.clone(), provider).await
    };
    let resp = t
        .http
        .post(format!("{}/_control/faults", t.sandbox.base_url()))
        .json(&json!({"provider": provider, "kind": kind, "times": 1}))
        .send()
        .await
        .unwrap();
    assert!(
        resp.status().is_success(),
        "{provider}: the sandbox refused the {kind} fault: {}",
        resp.text().await.unwrap()
    );
    // Salesforce pages are at least 200 records: ask for more than one page of each vendor.
    t.gql(
        Some(&t.env_key),
        "query($a: ID!) { contacts(accountId: $a, first: 1000) { edges { node { remoteId } } } }",
        json!({"a": account}),
    )
    .await
}

#[tokio::test]
async fn a_repeated_cursor_ends_the_listing_with_a_clear_error() {
    for provider in [
        "hubspot",
        "salesforce",
        "zoho",
        "pipedrive",
        "msgraph",
        "google",
    ] {
        let r = list_with_fault(provider, "repeat_cursor").await;
        assert_eq!(r.code(), Some("UPSTREAM_ERROR"), "{provider}: {}", r.body);
        let message = r.body["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.contains("repeated a pagination cursor")
                || message.contains("twice in one listing"),
            "{provider}: {message}"
        );
        assert!(
            r.body["data"].is_null(),
            "{provider}: no partial, duplicated listing"
        );
    }
}

#[tokio::test]
async fn an_out_of_range_page_ends_the_listing_with_a_clear_error() {
    for provider in ["salesforce", "zoho", "msgraph"] {
        let r = list_with_fault(provider, "out_of_range").await;
        assert_eq!(r.code(), Some("UPSTREAM_ERROR"), "{provider}: {}", r.body);
        let message = r.body["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.contains("out-of-range") || message.contains("INVALID_QUERY_LOCATOR"),
            "{provider}: {message}"
        );
    }
}
