//! Pipedrive's deals, notes, tasks (activities), users, leads and pipelines through the
//! gateway, against the sandbox's v1 and v2 endpoints.

use serde_json::{Value, json};

use crate::common::TestGateway;

async fn pipedrive() -> (TestGateway, String) {
    let t = TestGateway::start().await;
    let account = t.connect_sandbox(&t.env_key.clone(), "pipedrive").await;
    (t, account)
}

async fn ok(t: &TestGateway, query: &str, variables: Value) -> Value {
    let r = t.gql(Some(&t.env_key), query, variables).await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    r.body["data"].clone()
}

#[tokio::test]
async fn a_won_deal_reads_won_with_a_string_safe_amount_and_resolves_its_links() {
    let (t, a) = pipedrive().await;
    let q = "query($a: ID!, $r: ID!) { deal(accountId: $a, remoteId: $r) { name status amount { amount currency } probability stageId closeDate pipeline { name } company { name } contacts { remoteId firstName } owner { email isActive } } }";
    let d = ok(&t, q, json!({"a": a, "r": "5002"})).await["deal"].clone();
    assert_eq!(d["status"], "WON");
    assert_eq!(d["amount"], json!({"amount": "7350.5", "currency": "EUR"}));
    assert_eq!(
        d["closeDate"], "2023-03-23T07:09:12Z",
        "won: the close time"
    );
    assert_eq!(d["probability"], Value::Null);
    assert_eq!(d["pipeline"]["name"], "Sales pipeline");
    assert_eq!(d["company"]["name"], "Windmill Outfitters");
    assert_eq!(
        d["contacts"],
        json!([{"remoteId": "12", "firstName": "Jonas"}])
    );
    assert_eq!(
        d["owner"],
        json!({"email": "kadri.lepik@sandbox-company.example", "isActive": true})
    );

    // Cents and millions keep every digit; a percent probability reads as a fraction; an
    // open deal's close date is its expected close date.
    let big = ok(&t, q, json!({"a": a, "r": "5006"})).await["deal"].clone();
    assert_eq!(big["amount"]["amount"], "1234567.89");
    let open = ok(&t, q, json!({"a": a, "r": "5003"})).await["deal"].clone();
    assert_eq!(open["status"], "OPEN");
    assert_eq!(open["probability"], 0.75);
    assert!(
        open["closeDate"].as_str().unwrap().ends_with("T00:00:00Z"),
        "{open}"
    );
}

#[tokio::test]
async fn a_deal_written_through_graphql_lands_in_pipedrive_and_refuses_a_second_person() {
    let (t, a) = pipedrive().await;
    let create = "mutation($a: ID!, $i: DealInput!) { createDeal(accountId: $a, input: $i) { id remoteId name amount { amount currency } status probability stageId pipeline { name } contacts { remoteId } company { remoteId } } }";
    let d = ok(
        &t,
        create,
        json!({"a": a, "i": {"name": "Renewal 2027", "amount": {"amount": "12000.10", "currency": "USD"}, "probability": 0.35, "stageId": "10", "contactIds": ["12"], "companyId": "1078"}}),
    )
    .await["createDeal"]
        .clone();
    assert_eq!(d["name"], "Renewal 2027");
    assert_eq!(d["amount"], json!({"amount": "12000.1", "currency": "USD"}));
    assert_eq!(d["status"], "OPEN");
    assert_eq!(d["probability"], 0.35);
    assert_eq!(d["stageId"], "10");
    assert_eq!(d["pipeline"]["name"], "Renewals", "the stage's pipeline");
    assert_eq!(d["contacts"], json!([{"remoteId": "12"}]));
    assert_eq!(d["company"]["remoteId"], "1078");

    let won = ok(
        &t,
        "mutation($id: ID!) { updateDeal(id: $id, input: {status: WON}) { status closeDate } }",
        json!({"id": d["id"]}),
    )
    .await["updateDeal"]
        .clone();
    assert_eq!(won["status"], "WON");
    assert!(
        won["closeDate"].is_string(),
        "winning stamps the close time"
    );

    // A Pipedrive deal has one person: a second one is refused, not dropped.
    let r = t
        .gql(
            Some(&t.env_key),
            create,
            json!({"a": a, "i": {"name": "Two people", "contactIds": ["1", "2"]}}),
        )
        .await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("one person"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn a_notes_person_deal_and_company_resolve_through_graphql() {
    let (t, a) = pipedrive().await;
    let q = "query($a: ID!) { note(accountId: $a, remoteId: \"1\") { content remoteCreatedAt contact { remoteId firstName lastName } deal { remoteId name status } company { name } owner { email } } }";
    let n = ok(&t, q, json!({"a": a})).await["note"].clone();
    assert_eq!(n["content"], "<p>Called, left a voicemail.</p>");
    assert_eq!(n["remoteCreatedAt"], "2024-02-12T09:00:00Z");
    assert_eq!(
        n["contact"],
        json!({"remoteId": "1", "firstName": "Olivia", "lastName": "Tamm"})
    );
    assert_eq!(n["deal"]["remoteId"], "5001");
    assert_eq!(n["deal"]["name"], "Annual licence — Northwind Analytics");
    assert_eq!(n["company"]["name"], "Northwind Analytics");
    assert_eq!(n["owner"]["email"], "kadri.lepik@sandbox-company.example");
}

#[tokio::test]
async fn a_note_is_created_edited_and_deleted_through_api_v1() {
    let (t, a) = pipedrive().await;
    let n = ok(
        &t,
        "mutation($a: ID!) { createNote(accountId: $a, input: {content: \"<p>Asked for a demo</p>\", contactId: \"42\", dealId: \"5010\"}) { id remoteId content contact { firstName } deal { remoteId } } }",
        json!({"a": a}),
    )
    .await["createNote"]
        .clone();
    assert_eq!(n["content"], "<p>Asked for a demo</p>");
    assert_eq!(n["contact"]["firstName"], "Siobhán");
    assert_eq!(n["deal"]["remoteId"], "5010");
    assert_eq!(n["remoteId"], "261", "v1 note ids continue the seed");

    let edited = ok(
        &t,
        "mutation($id: ID!) { updateNote(id: $id, input: {content: \"<p>Demo booked</p>\"}) { content contact { remoteId } } }",
        json!({"id": n["id"]}),
    )
    .await["updateNote"]
        .clone();
    assert_eq!(
        edited,
        json!({"content": "<p>Demo booked</p>", "contact": {"remoteId": "42"}})
    );

    ok(
        &t,
        "mutation($id: ID!) { deleteNote(id: $id) }",
        json!({"id": n["id"]}),
    )
    .await;
    let gone = ok(
        &t,
        "query($id: ID!) { note(id: $id) { remoteId } }",
        json!({"id": n["id"]}),
    )
    .await;
    assert!(gone["note"].is_null(), "{gone}");

    // Pipedrive refuses a note attached to nothing.
    let r = t
        .gql(
            Some(&t.env_key),
            "mutation($a: ID!) { createNote(accountId: $a, input: {content: \"orphan\"}) { id } }",
            json!({"a": a}),
        )
        .await;
    assert!(!r.body["errors"].is_null(), "{}", r.body);
}

#[tokio::test]
async fn a_task_marked_done_reads_completed() {
    let (t, a) = pipedrive().await;
    let fields = "id remoteId subject content status dueDate completedAt contact { remoteId } deal { remoteId } remoteData";
    let created = ok(
        &t,
        &format!("mutation($a: ID!) {{ createTask(accountId: $a, input: {{subject: \"Send the quote\", content: \"Annual billing\", dueDate: \"2026-12-01T10:30:00Z\", contactId: \"7\", dealId: \"5001\"}}) {{ {fields} }} }}"),
        json!({"a": a}),
    )
    .await["createTask"]
        .clone();
    assert_eq!(created["status"], "OPEN");
    assert_eq!(created["completedAt"], Value::Null);
    assert_eq!(created["dueDate"], "2026-12-01T10:30:00Z");
    assert_eq!(created["contact"]["remoteId"], "7");
    assert_eq!(created["deal"]["remoteId"], "5001");
    assert_eq!(created["remoteData"]["type"], "task");

    let done = ok(
        &t,
        &format!("mutation($id: ID!) {{ updateTask(id: $id, input: {{status: COMPLETED}}) {{ {fields} }} }}"),
        json!({"id": created["id"]}),
    )
    .await["updateTask"]
        .clone();
    assert_eq!(done["status"], "COMPLETED");
    assert_eq!(done["remoteData"]["done"], true);
    assert!(done["completedAt"].is_string(), "{done}");
    assert_eq!(done["subject"], "Send the quote");

    // A seeded activity marked done reads the same way, with Pipedrive's done time.
    let seeded = ok(
        &t,
        "query($a: ID!) { task(accountId: $a, remoteId: \"20002\") { status completedAt } }",
        json!({"a": a}),
    )
    .await["task"]
        .clone();
    assert_eq!(
        seeded,
        json!({"status": "COMPLETED", "completedAt": "2024-02-02T07:55:00Z"})
    );
}

async fn remote_ids(t: &TestGateway, a: &str, resource: &str, filter: Value) -> Vec<String> {
    let ty = match resource {
        "contacts" => "ContactFilter",
        "companies" => "CompanyFilter",
        _ => "DealFilter",
    };
    let q = format!(
        "query($a: ID!, $f: {ty}) {{ {resource}(accountId: $a, first: 500, filter: $f) {{ edges {{ node {{ remoteId }} }} pageInfo {{ hasNextPage }} }} }}"
    );
    let data = ok(t, &q, json!({"a": a, "f": filter})).await;
    assert_eq!(data[resource]["pageInfo"]["hasNextPage"], false);
    let mut ids: Vec<String> = data[resource]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["remoteId"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn updated_since_returns_exactly_the_records_changed_after_the_time() {
    let (t, a) = pipedrive().await;
    // Every seeded record changed before 2026; `since` is after them all.
    let since = chrono::Utc::now() - chrono::Duration::seconds(1);
    let since = since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for resource in ["contacts", "companies", "deals"] {
        assert_eq!(
            remote_ids(&t, &a, resource, json!({"updatedSince": since})).await,
            Vec::<String>::new(),
            "{resource}: nothing changed yet"
        );
    }
    let gid = |resource: &'static str, remote: &'static str| {
        let q = format!(
            "query($a: ID!) {{ {}(accountId: $a, remoteId: \"{remote}\") {{ id }} }}",
            &resource[..resource.len() - 1]
        );
        let t = &t;
        let a = a.clone();
        async move { ok(t, &q, json!({"a": a})).await }
    };
    let person = gid("contacts", "17").await["contact"]["id"].clone();
    ok(
        &t,
        "mutation($id: ID!) { updateContact(id: $id, input: {lastName: \"Moved\"}) { id } }",
        json!({"id": person}),
    )
    .await;
    let deal = gid("deals", "5100").await["deal"]["id"].clone();
    ok(
        &t,
        "mutation($id: ID!) { updateDeal(id: $id, input: {status: LOST}) { id } }",
        json!({"id": deal}),
    )
    .await;
    assert_eq!(
        remote_ids(&t, &a, "contacts", json!({"updatedSince": since})).await,
        vec!["17"]
    );
    assert_eq!(
        remote_ids(&t, &a, "deals", json!({"updatedSince": since})).await,
        vec!["5100"]
    );
    assert_eq!(
        remote_ids(&t, &a, "companies", json!({"updatedSince": since})).await,
        Vec::<String>::new()
    );

    // What Pipedrive cannot filter on is refused by name, never ignored.
    let r = t
        .gql(
            Some(&t.env_key),
            "query($a: ID!) { deals(accountId: $a, first: 5, filter: {createdSince: \"2024-01-01T00:00:00Z\"}) { edges { node { remoteId } } } }",
            json!({"a": a}),
        )
        .await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("createdSince")
    );
}

#[tokio::test]
async fn users_leads_and_pipelines_map_only_what_pipedrive_holds() {
    let (t, a) = pipedrive().await;
    let data = ok(
        &t,
        "query($a: ID!) { users(accountId: $a, first: 10) { edges { node { remoteId firstName lastName email isActive } } } pipelines(accountId: $a, first: 10) { edges { node { remoteId name stages { id } } } } }",
        json!({"a": a}),
    )
    .await;
    let users: Vec<&Value> = data["users"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .collect();
    assert_eq!(users.len(), 4);
    // Pipedrive keeps one `name`: no given or family name is invented from it.
    assert!(
        users
            .iter()
            .all(|u| u["firstName"].is_null() && u["lastName"].is_null())
    );
    assert_eq!(
        users
            .iter()
            .filter(|u| u["isActive"] == false)
            .map(|u| u["remoteId"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["13294004"]
    );
    let pipelines: Vec<&str> = data["pipelines"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(pipelines, ["Sales pipeline", "Partnerships", "Renewals"]);

    let lead = ok(
        &t,
        "query($a: ID!) { lead(accountId: $a, remoteId: \"3b9ecc00-78b1-4c59-841f-9141d97aebb7\") { source status owner { email } firstName companyName convertedDeal { remoteId } remoteData } }",
        json!({"a": a}),
    )
    .await["lead"]
        .clone();
    assert_eq!(lead["source"], "Prospector");
    assert_eq!(lead["status"], "archived");
    assert_eq!(
        lead["owner"]["email"],
        "aiko.tanaka@sandbox-company.example"
    );
    // The lead's person and organization stay in remoteData: the unified Lead has no link
    // for them, and Pipedrive records no conversion on a lead.
    assert_eq!(lead["firstName"], Value::Null);
    assert_eq!(lead["convertedDeal"], Value::Null);
    assert_eq!(lead["remoteData"]["person_id"], 207);
}
