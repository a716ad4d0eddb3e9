//! HubSpot's notes, tasks and leads, the new contact/company/deal fields, and filtered
//! listings through HubSpot's search endpoint, end to end: GraphQL in, the sandbox
//! HubSpot out.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::common::TestGateway;

/// How many requests the sandbox HubSpot saw on `route` (e.g. `POST /hubspot/...`).
fn route_count(stats: &Value, route: &str) -> u64 {
    stats["byRoute"][route].as_u64().unwrap_or(0)
}

/// A direct call to the sandbox HubSpot, as a client of HubSpot's API would make it.
async fn hubspot_post(t: &TestGateway, path: &str, body: Value) -> (u16, Value) {
    let resp = t
        .http
        .post(format!("{}/hubspot{path}", t.sandbox.base_url()))
        .bearer_auth(tessera_sandbox::HUBSPOT_DEMO_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

fn ids(results: &Value) -> BTreeSet<String> {
    results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_task_list_maps_each_hubspot_status_to_open_or_completed() {
    let t = TestGateway::start().await;
    let r = t
        .gql(
            Some(&t.env_key),
            "query($a: ID!) { tasks(accountId: $a, first: 20) { edges { node { remoteId subject status dueDate completedAt customFields } } } }",
            json!({"a": t.account_id}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    let edges = r.body["data"]["tasks"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 20);
    let mut seen = BTreeSet::new();
    for edge in edges {
        let node = &edge["node"];
        let hubspot = node["customFields"]["hubspotStatus"].as_str().unwrap();
        seen.insert(hubspot.to_string());
        if hubspot == "COMPLETED" {
            assert_eq!(node["status"], "COMPLETED", "{node}");
            assert!(node["completedAt"].is_string(), "{node}");
        } else {
            // NOT_STARTED, IN_PROGRESS, WAITING and DEFERRED are all still to do.
            assert_eq!(node["status"], "OPEN", "{node}");
            assert!(node["completedAt"].is_null(), "{node}");
        }
        assert!(node["dueDate"].is_string(), "{node}");
    }
    let all: BTreeSet<String> = [
        "COMPLETED",
        "DEFERRED",
        "IN_PROGRESS",
        "NOT_STARTED",
        "WAITING",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(seen, all, "every HubSpot task status is in the first page");
}

#[tokio::test]
async fn completing_a_task_stamps_its_completion_and_reopening_clears_it() {
    let t = TestGateway::start().await;
    let fields = "id status completedAt dueDate contact { firstName }";
    let r = t
        .gql(
            Some(&t.env_key),
            &format!("mutation($a: ID!, $i: TaskInput!) {{ createTask(accountId: $a, input: $i) {{ {fields} }} }}"),
            json!({"a": t.account_id, "i": {"subject": "Call back", "status": "OPEN", "dueDate": "2026-03-02T15:30:00Z", "contactId": "1002"}}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    let task = &r.body["data"]["createTask"];
    assert_eq!(task["status"], "OPEN");
    assert!(task["completedAt"].is_null());
    // HubSpot answers with its own datetime format, milliseconds included.
    assert_eq!(task["dueDate"], "2026-03-02T15:30:00.000Z");
    assert_eq!(task["contact"]["firstName"], "Grace");
    let id = task["id"].as_str().unwrap().to_string();

    let update = format!(
        "mutation($id: ID!, $i: TaskInput!) {{ updateTask(id: $id, input: $i) {{ {fields} }} }}"
    );
    let done = t
        .gql(
            Some(&t.env_key),
            &update,
            json!({"id": id, "i": {"status": "COMPLETED"}}),
        )
        .await;
    assert!(done.body["errors"].is_null(), "{}", done.body);
    assert_eq!(done.body["data"]["updateTask"]["status"], "COMPLETED");
    let completed_at = done.body["data"]["updateTask"]["completedAt"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        chrono::DateTime::parse_from_rfc3339(&completed_at).is_ok(),
        "{completed_at}"
    );

    let reopened = t
        .gql(
            Some(&t.env_key),
            &update,
            json!({"id": id, "i": {"status": "OPEN"}}),
        )
        .await;
    assert!(reopened.body["errors"].is_null(), "{}", reopened.body);
    assert_eq!(reopened.body["data"]["updateTask"]["status"], "OPEN");
    assert!(reopened.body["data"]["updateTask"]["completedAt"].is_null());

    // A task needs a due date in HubSpot: the vendor's refusal reaches the caller.
    let r = t
        .gql(
            Some(&t.env_key),
            "mutation($a: ID!, $i: TaskInput!) { createTask(accountId: $a, input: $i) { id } }",
            json!({"a": t.account_id, "i": {"subject": "No due date"}}),
        )
        .await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
    assert!(r.body.to_string().contains("hs_timestamp"), "{}", r.body);
}

#[tokio::test]
async fn a_notes_contact_and_deal_resolve_with_one_batch_read_each() {
    let t = TestGateway::start().await;
    let before = t.sandbox_stats().await;
    let r = t
        .gql(
            Some(&t.env_key),
            "query($a: ID!) { notes(accountId: $a, first: 30) { edges { node { remoteId content owner { firstName } contact { firstName lastName } company { name } deal { name } } } } }",
            json!({"a": t.account_id}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    let after = t.sandbox_stats().await;
    let edges = r.body["data"]["notes"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 30);
    let first = &edges[0]["node"];
    assert_eq!(first["remoteId"], "20001");
    assert_eq!(
        first["content"],
        "<p>Discussed the renewal timeline with Ada Lovelace.</p>"
    );
    assert_eq!(first["contact"]["firstName"], "Ada");
    assert_eq!(first["contact"]["lastName"], "Lovelace");
    assert_eq!(first["company"]["name"], "Acme Corporation");
    assert_eq!(first["deal"]["name"], "Acme Corporation - Platform License");
    assert_eq!(first["owner"]["firstName"], "Morgan");
    // Every ninth note is about a company only; some notes have no deal.
    let no_contact = edges
        .iter()
        .find(|e| e["node"]["remoteId"] == "20009")
        .unwrap();
    assert!(no_contact["node"]["contact"].is_null(), "{no_contact}");
    assert!(edges.iter().any(|e| e["node"]["deal"].is_null()));
    assert!(
        edges
            .iter()
            .filter(|e| e["node"]["deal"].is_object())
            .count()
            >= 5
    );

    let calls = after["requests"].as_u64().unwrap() - before["requests"].as_u64().unwrap();
    let delta = |route: &str| route_count(&after, route) - route_count(&before, route);
    assert_eq!(delta("GET /hubspot/crm/v3/objects/notes"), 1, "{after}");
    assert_eq!(
        delta("POST /hubspot/crm/v3/objects/contacts/batch/read"),
        1,
        "{after}"
    );
    assert_eq!(
        delta("POST /hubspot/crm/v3/objects/deals/batch/read"),
        1,
        "{after}"
    );
    assert_eq!(
        delta("POST /hubspot/crm/v3/objects/companies/batch/read"),
        1,
        "{after}"
    );
    // The owners endpoint has no batch read: owners come one by one or from its listing.
    let owner_calls =
        delta("GET /hubspot/crm/v3/owners/{ownerId}") + delta("GET /hubspot/crm/v3/owners");
    assert_eq!(
        calls,
        4 + owner_calls,
        "one list, one batch per linked type, and the owners: {after}"
    );
}

#[tokio::test]
async fn two_filters_go_in_one_search_request_and_must_both_hold() {
    let t = TestGateway::start().await;
    let query = "query($a: ID!, $f: ContactFilter) { contacts(accountId: $a, first: 50, filter: $f) { edges { node { remoteId emails { address } } } } }";
    let search_route = "POST /hubspot/crm/v3/objects/contacts/search";
    let list_route = "GET /hubspot/crm/v3/objects/contacts";
    // Contact 1259 changed in 2024; contact 1001 last changed in February 2023.
    let cases = [
        ("ivan.engelbart@prestige-worldwide.example", vec!["1259"]),
        ("ada.lovelace@acme.example", vec![]),
    ];
    for (email, want) in cases {
        let before = t.sandbox_stats().await;
        let r = t
            .gql(
                Some(&t.env_key),
                query,
                json!({"a": t.account_id, "f": {"updatedSince": "2023-06-01T00:00:00Z", "email": email}}),
            )
            .await;
        assert!(r.body["errors"].is_null(), "{}", r.body);
        let after = t.sandbox_stats().await;
        let got: Vec<&str> = r.body["data"]["contacts"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["remoteId"].as_str().unwrap())
            .collect();
        // Were the two filters in separate (ORed) groups, 1001 would match by its email.
        assert_eq!(got, want, "{email}: {}", r.body);
        assert_eq!(
            route_count(&after, search_route) - route_count(&before, search_route),
            1,
            "one search request: {after}"
        );
        assert_eq!(
            route_count(&after, list_route),
            route_count(&before, list_route),
            "a filtered listing does not use the plain listing"
        );
        assert_eq!(
            after["requests"].as_u64().unwrap() - before["requests"].as_u64().unwrap(),
            1
        );
    }
}

#[tokio::test]
async fn the_sandbox_search_ors_groups_ands_filters_and_takes_both_date_forms() {
    let t = TestGateway::start().await;
    let path = "/crm/v3/objects/contacts/search";
    let group = |filters: Value| json!({ "filters": filters });
    let email = |e: &str| json!({"propertyName": "email", "operator": "EQ", "value": e});
    let since =
        |v: Value| json!({"propertyName": "lastmodifieddate", "operator": "GT", "value": v});
    let ada = "ada.lovelace@acme.example";
    let ivan = "IVAN.ENGELBART@prestige-worldwide.example";

    let (status, body) = hubspot_post(
        &t,
        path,
        json!({"filterGroups": [group(json!([email(ada)])), group(json!([email(ivan)]))], "limit": 10}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total"], 2);
    assert_eq!(
        ids(&body["results"]),
        ["1001", "1259"].map(String::from).into()
    );

    let (_, body) = hubspot_post(
        &t,
        path,
        json!({"filterGroups": [group(json!([email(ada), email(ivan)]))]}),
    )
    .await;
    assert_eq!(body["total"], 0, "filters in one group all hold: {body}");

    // Epoch milliseconds and ISO-8601 select the same records.
    let iso = "2024-01-26T01:09:06.140Z";
    let millis = chrono::DateTime::parse_from_rfc3339(iso)
        .unwrap()
        .timestamp_millis();
    let (_, by_iso) = hubspot_post(
        &t,
        path,
        json!({"filterGroups": [group(json!([since(json!(iso))]))], "limit": 200}),
    )
    .await;
    let (_, by_millis) = hubspot_post(
        &t,
        path,
        json!({"filterGroups": [group(json!([since(json!(millis.to_string()))]))], "limit": 200}),
    )
    .await;
    assert_eq!(by_iso["total"], 11, "{by_iso}");
    assert_eq!(ids(&by_iso["results"]), ids(&by_millis["results"]));

    // Paging is an offset in `after`; HubSpot's limit is 200 and a bad filter is a 400.
    let (_, page) = hubspot_post(&t, path, json!({"query": "lovelace", "limit": 2})).await;
    assert_eq!(page["total"], 5);
    assert_eq!(page["paging"]["next"]["after"], "2");
    let (_, rest) = hubspot_post(
        &t,
        path,
        json!({"query": "lovelace", "limit": 2, "after": "4"}),
    )
    .await;
    assert_eq!(ids(&rest["results"]), ["1213"].map(String::from).into());
    assert!(rest["paging"].is_null(), "{rest}");
    for bad in [
        json!({"limit": 201}),
        json!({"filterGroups": [group(json!([{"propertyName": "no_such", "operator": "EQ", "value": "x"}]))]}),
        json!({"filterGroups": [group(json!([since(json!("last tuesday"))]))]}),
        json!({"filterGroups": [group(json!([{"propertyName": "email", "operator": "LIKE", "value": "x"}]))]}),
    ] {
        let (status, body) = hubspot_post(&t, path, bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["category"], "VALIDATION_ERROR", "{body}");
        assert_eq!(body["status"], "error");
    }
}

#[tokio::test]
async fn a_lead_reads_its_contact_and_stage_and_needs_a_contact_to_be_created() {
    let t = TestGateway::start().await;
    let r = t
        .gql(
            Some(&t.env_key),
            "query($a: ID!) { lead(accountId: $a, remoteId: \"40001\") { firstName lastName emails { address } companyName status convertedContact { id } owner { lastName } customFields } }",
            json!({"a": t.account_id}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    let lead = &r.body["data"]["lead"];
    assert_eq!(lead["firstName"], "Ada");
    assert_eq!(lead["lastName"], "Lovelace");
    assert_eq!(lead["emails"][0]["address"], "ada.lovelace@acme.example");
    assert_eq!(lead["companyName"], "Acme Corporation");
    assert_eq!(lead["status"], "New");
    assert_eq!(lead["customFields"]["contactId"], "1001");
    // HubSpot's lead-to-contact association is not a conversion.
    assert!(lead["convertedContact"].is_null());

    // HubSpot refuses a lead without an existing contact; the refusal reaches the caller.
    let r = t
        .gql(
            Some(&t.env_key),
            "mutation($a: ID!, $i: LeadInput!) { createLead(accountId: $a, input: $i) { id } }",
            json!({"a": t.account_id, "i": {"firstName": "No", "lastName": "Contact"}}),
        )
        .await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
    assert!(r.body.to_string().contains("contact"), "{}", r.body);

    // A free-text search over leads is refused by name, never ignored.
    let r = t
        .gql(
            Some(&t.env_key),
            "query($a: ID!) { leads(accountId: $a, first: 5, filter: {search: \"ada\"}) { edges { node { remoteId } } } }",
            json!({"a": t.account_id}),
        )
        .await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("search")
    );
}

#[tokio::test]
async fn a_deals_probability_follows_its_stage() {
    let t = TestGateway::start().await;
    let fields = "id probability status description lastActivityAt";
    let r = t
        .gql(
            Some(&t.env_key),
            &format!("mutation($a: ID!, $i: DealInput!) {{ createDeal(accountId: $a, input: $i) {{ {fields} }} }}"),
            json!({"a": t.account_id, "i": {"name": "Probability", "stageId": "qualifiedtobuy", "pipelineId": "default", "companyId": "5001", "description": "Two seats"}}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    let deal = &r.body["data"]["createDeal"];
    assert_eq!(deal["probability"], 0.4);
    assert_eq!(deal["description"], "Two seats");
    let id = deal["id"].as_str().unwrap().to_string();
    let r = t
        .gql(
            Some(&t.env_key),
            &format!("mutation($id: ID!, $i: DealInput!) {{ updateDeal(id: $id, input: $i) {{ {fields} }} }}"),
            json!({"id": id, "i": {"stageId": "contractsent"}}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    assert_eq!(r.body["data"]["updateDeal"]["probability"], 0.9);
}
