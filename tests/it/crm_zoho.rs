//! Zoho CRM's deals, leads, tasks, notes and users, and filters through its search API,
//! through the gateway against the sandbox's `/crm/v8` endpoints.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::TestGateway;
use tessera_sandbox::ZOHO_DEMO_TOKEN;

const SEARCH_ROUTE: &str = "GET /zoho/crm/v8/{module}/search";

async fn zoho() -> (TestGateway, String) {
    let t = TestGateway::start().await;
    let account = t.connect_sandbox(&t.env_key.clone(), "zoho").await;
    (t, account)
}

async fn ok(t: &TestGateway, query: &str, variables: Value) -> Value {
    let r = t.gql(Some(&t.env_key), query, variables).await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    r.body["data"].clone()
}

/// A raw call to the sandbox's Zoho API (`path` under `/zoho/crm/v8`).
async fn sandbox_get(t: &TestGateway, path: &str) -> (StatusCode, String) {
    let resp = t
        .http
        .get(format!("{}/zoho/crm/v8{path}", t.sandbox.base_url()))
        .header(
            "authorization",
            format!("Zoho-oauthtoken {ZOHO_DEMO_TOKEN}"),
        )
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.text().await.unwrap())
}

fn route_count(stats: &Value, route: &str) -> u64 {
    stats["byRoute"][route].as_u64().unwrap_or(0)
}

async fn remote_ids(
    t: &TestGateway,
    a: &str,
    resource: &str,
    filter: &str,
    flt: Value,
) -> Vec<String> {
    let q = format!(
        "query($a: ID!, $f: {filter}) {{ {resource}(accountId: $a, first: 100, filter: $f) {{ edges {{ node {{ remoteId }} }} pageInfo {{ hasNextPage }} }} }}"
    );
    let data = ok(t, &q, json!({"a": a, "f": flt})).await;
    assert_eq!(data[resource]["pageInfo"]["hasNextPage"], false);
    data[resource]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["remoteId"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_tasks_what_id_lands_in_company_or_deal_by_its_se_module() {
    let (t, a) = zoho().await;
    let q = "query($a: ID!, $r: ID!) { task(accountId: $a, remoteId: $r) { subject status completedAt contact { remoteId firstName } company { remoteId name } deal { remoteId name } owner { email } remoteData } }";
    // About a deal: What_Id with $se_module Deals.
    let on_deal = ok(&t, q, json!({"a": a, "r": "5725767000000540011"})).await["task"].clone();
    assert_eq!(on_deal["remoteData"]["$se_module"], "Deals");
    assert_eq!(
        on_deal["deal"],
        json!({"remoteId": "5725767000000520003", "name": "Annual licence #1000"})
    );
    assert_eq!(on_deal["company"], Value::Null);
    assert_eq!(on_deal["contact"]["firstName"], "Aarav");
    assert_eq!(on_deal["status"], "COMPLETED");
    assert_eq!(on_deal["completedAt"], "2024-02-12T09:31:00+05:30");
    assert_eq!(on_deal["owner"]["email"], "anjali.desai@zylker.example");
    // About an account: the same What_Id key, $se_module Accounts.
    let on_account = ok(&t, q, json!({"a": a, "r": "5725767000000540016"})).await["task"].clone();
    assert_eq!(on_account["remoteData"]["$se_module"], "Accounts");
    assert_eq!(
        on_account["company"]["remoteId"],
        on_account["remoteData"]["What_Id"]["id"]
    );
    assert!(on_account["company"]["name"].is_string());
    assert_eq!(on_account["deal"], Value::Null);
    assert_eq!(on_account["status"], "OPEN");
    assert_eq!(on_account["completedAt"], Value::Null);
    // About a lead: neither (the unified Task has no lead link).
    let on_lead = ok(&t, q, json!({"a": a, "r": "5725767000000540036"})).await["task"].clone();
    assert_eq!(on_lead["remoteData"]["$se_module"], "Leads");
    assert_eq!(on_lead["company"], Value::Null);
    assert_eq!(on_lead["deal"], Value::Null);

    // Written through GraphQL, a companyId or a dealId becomes What_Id + $se_module.
    let create = "mutation($a: ID!, $i: TaskInput!) { createTask(accountId: $a, input: $i) { id remoteId status completedAt company { remoteId } deal { remoteId } remoteData } }";
    let for_company = ok(
        &t,
        create,
        json!({"a": a, "i": {"subject": "Send the quote", "companyId": "5725767000000498010"}}),
    )
    .await["createTask"]
        .clone();
    assert_eq!(for_company["remoteData"]["$se_module"], "Accounts");
    assert_eq!(for_company["company"]["remoteId"], "5725767000000498010");
    assert_eq!(for_company["deal"], Value::Null);
    assert_eq!(for_company["status"], "OPEN");
    let for_deal = ok(
        &t,
        create,
        json!({"a": a, "i": {"subject": "Chase the signature", "dealId": "5725767000000520018"}}),
    )
    .await["createTask"]
        .clone();
    assert_eq!(for_deal["remoteData"]["$se_module"], "Deals");
    assert_eq!(for_deal["deal"]["remoteId"], "5725767000000520018");
    assert_eq!(for_deal["company"], Value::Null);
    // Completing stamps Closed_Time; reopening keeps an open status and clears it.
    let done = ok(
        &t,
        "mutation($id: ID!) { updateTask(id: $id, input: {status: COMPLETED}) { status completedAt } }",
        json!({"id": for_deal["id"]}),
    )
    .await["updateTask"]
        .clone();
    assert_eq!(done["status"], "COMPLETED");
    assert!(done["completedAt"].is_string(), "{done}");
    let reopened = ok(
        &t,
        "mutation($id: ID!) { updateTask(id: $id, input: {status: OPEN}) { status completedAt remoteData } }",
        json!({"id": for_deal["id"]}),
    )
    .await["updateTask"]
        .clone();
    assert_eq!(reopened["status"], "OPEN");
    assert_eq!(reopened["completedAt"], Value::Null);
    assert_eq!(reopened["remoteData"]["Status"], "Not Started");
    // One What_Id: a task about a company and a deal is refused, not half-written.
    let r = t
        .gql(
            Some(&t.env_key),
            create,
            json!({"a": a, "i": {"subject": "Both", "companyId": "5725767000000498010", "dealId": "5725767000000520018"}}),
        )
        .await;
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("What_Id"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn a_closed_won_deal_reads_won_with_a_string_safe_amount_and_resolves_its_links() {
    let (t, a) = zoho().await;
    let q = "query($a: ID!, $r: ID!) { deal(accountId: $a, remoteId: $r) { name status stageId amount { amount currency } probability closeDate company { name } contacts { remoteId firstName lastName } owner { firstName email isActive } } }";
    let won = ok(&t, q, json!({"a": a, "r": "5725767000000520018"})).await["deal"].clone();
    assert_eq!(won["status"], "WON");
    assert_eq!(won["stageId"], "Closed Won");
    assert_eq!(
        won["amount"],
        json!({"amount": "24257.11", "currency": "GBP"})
    );
    assert_eq!(won["probability"], 1.0);
    assert_eq!(won["closeDate"], "2023-11-15T00:00:00Z");
    assert_eq!(won["company"]["name"], "Qutub Foods");
    assert_eq!(
        won["contacts"],
        json!([{"remoteId": "5725767000000412046", "firstName": "Sofia", "lastName": "Müller"}])
    );
    assert_eq!(
        won["owner"],
        json!({"firstName": "Anjali", "email": "anjali.desai@zylker.example", "isActive": true})
    );
    // Millions and cents keep every digit, and the half is written out.
    let big = ok(&t, q, json!({"a": a, "r": "5725767000000520008"})).await["deal"].clone();
    assert_eq!(big["amount"]["amount"], "1234567.89");
    let half = ok(&t, q, json!({"a": a, "r": "5725767000000520003"})).await["deal"].clone();
    assert_eq!(
        half["amount"],
        json!({"amount": "7350.50", "currency": "USD"})
    );
    assert_eq!(half["status"], "OPEN");
    assert_eq!(half["probability"], 0.1);
    // "Closed-Lost to Competition" is a lost stage too.
    let lost = ok(&t, q, json!({"a": a, "r": "5725767000000520038"})).await["deal"].clone();
    assert_eq!(lost["stageId"], "Closed-Lost to Competition");
    assert_eq!(lost["status"], "LOST");
    assert_eq!(lost["contacts"], json!([]));

    // Written: a status picks the closed stage, a stage its default probability; a closed
    // deal is not reopened without a stage; a deal has one contact.
    let create = "mutation($a: ID!, $i: DealInput!) { createDeal(accountId: $a, input: $i) { id status stageId probability amount { amount currency } contacts { remoteId } company { remoteId } } }";
    let d = ok(
        &t,
        create,
        json!({"a": a, "i": {"name": "Renewal 2027", "amount": {"amount": "12000.10", "currency": "EUR"}, "stageId": "Negotiation/Review", "contactIds": ["5725767000000412001"], "companyId": "5725767000000498010"}}),
    )
    .await["createDeal"]
        .clone();
    assert_eq!(d["status"], "OPEN");
    assert_eq!(d["probability"], 0.9);
    assert_eq!(
        d["amount"],
        json!({"amount": "12000.10", "currency": "EUR"})
    );
    assert_eq!(d["contacts"], json!([{"remoteId": "5725767000000412001"}]));
    let lost = ok(
        &t,
        "mutation($id: ID!) { updateDeal(id: $id, input: {status: LOST}) { status stageId probability } }",
        json!({"id": d["id"]}),
    )
    .await["updateDeal"]
        .clone();
    assert_eq!(
        lost,
        json!({"status": "LOST", "stageId": "Closed Lost", "probability": 0.0})
    );
    let r = t
        .gql(
            Some(&t.env_key),
            "mutation($id: ID!) { updateDeal(id: $id, input: {status: OPEN}) { status } }",
            json!({"id": d["id"]}),
        )
        .await;
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("stageId"),
        "{}",
        r.body
    );
    let r = t
        .gql(
            Some(&t.env_key),
            create,
            json!({"a": a, "i": {"name": "Two people", "contactIds": ["5725767000000412001", "5725767000000412006"]}}),
        )
        .await;
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("one contact"),
        "{}",
        r.body
    );
    let r = t
        .gql(
            Some(&t.env_key),
            create,
            json!({"a": a, "i": {"name": "Bad money", "amount": {"amount": "10", "currency": "JPY"}}}),
        )
        .await;
    assert_eq!(
        r.code(),
        Some("BAD_USER_INPUT"),
        "a currency the org has not enabled: {}",
        r.body
    );
}

#[tokio::test]
async fn a_search_with_no_match_is_an_empty_listing_from_zohos_204() {
    let (t, a) = zoho().await;
    // The vendor's own answer: 204 with no body.
    let (status, body) = sandbox_get(
        &t,
        "/Deals/search?criteria=(Modified_Time:greater_than:2030-01-01T00:00:00%2B00:00)&fields=Deal_Name",
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(body.is_empty());

    for (resource, filter, flt) in [
        (
            "deals",
            "DealFilter",
            json!({"updatedSince": "2030-01-01T00:00:00Z"}),
        ),
        (
            "contacts",
            "ContactFilter",
            json!({"email": "nobody@nowhere.example"}),
        ),
        (
            "leads",
            "LeadFilter",
            json!({"search": "no such word anywhere"}),
        ),
    ] {
        let before = route_count(&t.sandbox_stats().await, SEARCH_ROUTE);
        let ids = remote_ids(&t, &a, resource, filter, flt).await;
        assert_eq!(ids, Vec::<String>::new(), "{resource}");
        let after = route_count(&t.sandbox_stats().await, SEARCH_ROUTE);
        assert_eq!(
            after,
            before + 1,
            "{resource}: one search call, answered 204"
        );
    }
    // Without a filter the listing stays on the plain list endpoint.
    let before = route_count(&t.sandbox_stats().await, SEARCH_ROUTE);
    let q = "query($a: ID!) { deals(accountId: $a, first: 3) { edges { node { remoteId } } } }";
    let data = ok(&t, q, json!({"a": a})).await;
    assert_eq!(data["deals"]["edges"].as_array().unwrap().len(), 3);
    assert_eq!(route_count(&t.sandbox_stats().await, SEARCH_ROUTE), before);
}

#[tokio::test]
async fn a_filter_value_with_commas_parentheses_and_a_backslash_is_escaped_in_the_criteria() {
    let (t, a) = zoho().await;
    let tricky = "ops(emea),desk\\2@zylker-systems.example";
    let created = ok(
        &t,
        "mutation($a: ID!, $i: ContactInput!) { createContact(accountId: $a, input: $i) { remoteId emails { address } } }",
        json!({"a": a, "i": {"lastName": "Desk", "emails": [{"address": tricky}]}}),
    )
    .await["createContact"]
        .clone();
    assert_eq!(created["emails"][0]["address"], tricky);
    let id = created["remoteId"].as_str().unwrap().to_owned();

    // Unescaped, the value breaks Zoho's criteria: the escaping is what makes it work.
    let raw = url::form_urlencoded::byte_serialize(format!("(Email:equals:{tricky})").as_bytes())
        .collect::<String>();
    let (status, body) = sandbox_get(&t, &format!("/Contacts/search?criteria={raw}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("INVALID_QUERY"), "{body}");

    let ids = remote_ids(
        &t,
        &a,
        "contacts",
        "ContactFilter",
        json!({"email": tricky}),
    )
    .await;
    assert_eq!(ids, vec![id.clone()]);
    // Combined with a time filter: `((..)and(..))`.
    let ids = remote_ids(
        &t,
        &a,
        "contacts",
        "ContactFilter",
        json!({"email": tricky, "createdSince": "2020-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(ids, vec![id]);

    // A word search takes the text as it is: a deal named with parentheses and a comma.
    let ids = remote_ids(
        &t,
        &a,
        "deals",
        "DealFilter",
        json!({"search": "(2025), phase 2 \\"}),
    )
    .await;
    assert_eq!(ids, vec!["5725767000000520028".to_owned()]);
}

#[tokio::test]
async fn a_word_search_is_not_combined_with_criteria_and_says_so() {
    let (t, a) = zoho().await;
    let r = t
        .gql(
            Some(&t.env_key),
            "query($a: ID!) { contacts(accountId: $a, first: 5, filter: {search: \"Iyer\", updatedSince: \"2024-01-01T00:00:00Z\"}) { edges { node { remoteId } } } }",
            json!({"a": a}),
        )
        .await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not both"),
        "{}",
        r.body
    );
    // Each alone works; the word search matches any text field, case-insensitively.
    let by_word = remote_ids(
        &t,
        &a,
        "contacts",
        "ContactFilter",
        json!({"search": "iyer"}),
    )
    .await;
    assert!(
        by_word.contains(&"5725767000000412001".to_owned()),
        "{by_word:?}"
    );
    let q = "query($a: ID!) { contacts(accountId: $a, first: 100, filter: {search: \"iyer\"}) { edges { node { lastName emails { address } } } } }";
    let data = ok(&t, q, json!({"a": a})).await;
    for edge in data["contacts"]["edges"].as_array().unwrap() {
        let text = edge["node"].to_string().to_lowercase();
        assert!(text.contains("iyer"), "{text}");
    }
}

#[tokio::test]
async fn leads_list_converted_ones_too_and_map_only_what_a_lead_read_gives() {
    let (t, a) = zoho().await;
    let q = "query($a: ID!, $r: ID!) { lead(accountId: $a, remoteId: $r) { firstName companyName status source convertedAt convertedContact { remoteId } convertedCompany { remoteId } convertedDeal { remoteId } owner { email } remoteData } }";
    let converted = ok(&t, q, json!({"a": a, "r": "5725767000000430027"})).await["lead"].clone();
    assert_eq!(converted["remoteData"]["$converted"], true);
    assert_eq!(converted["companyName"], "Kingsbridge Works");
    assert_eq!(converted["owner"]["email"], "anjali.desai@zylker.example");
    // A lead read says only that it was converted, not when or into what.
    for key in [
        "convertedAt",
        "convertedContact",
        "convertedCompany",
        "convertedDeal",
    ] {
        assert_eq!(converted[key], Value::Null, "{key}");
    }
    // Zoho hides converted leads from a plain list; the provider asks for both.
    let (status, body) = sandbox_get(&t, "/Leads?fields=Last_Name&per_page=200&page=2").await;
    assert_eq!(status, StatusCode::OK);
    let hidden: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(hidden["info"]["count"], 34, "234 unconverted leads");
    let all = t
        .gql(
            Some(&t.env_key),
            "query($a: ID!) { leads(accountId: $a, first: 300) { edges { node { remoteId } } } }",
            json!({"a": a}),
        )
        .await;
    let ids: Vec<&str> = all.body["data"]["leads"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["remoteId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 260);
    assert!(ids.contains(&"5725767000000430027"));
}

#[tokio::test]
async fn users_carry_their_active_flag_and_own_records() {
    let (t, a) = zoho().await;
    let q = "query($a: ID!) { users(accountId: $a, first: 50) { edges { node { remoteId firstName lastName email isActive } } } }";
    let data = ok(&t, q, json!({"a": a})).await;
    let users = data["users"]["edges"].as_array().unwrap();
    assert_eq!(users.len(), 12);
    let inactive: Vec<&str> = users
        .iter()
        .filter(|u| u["node"]["isActive"] == false)
        .map(|u| u["node"]["lastName"].as_str().unwrap())
        .collect();
    assert_eq!(inactive, vec!["Aalto", "Mwangi"]);
    assert!(
        users
            .iter()
            .any(|u| u["node"]["firstName"].is_null() && u["node"]["lastName"] == "Support Desk")
    );
    // A contact's owner resolves to one of them.
    let c = ok(
        &t,
        "query($a: ID!) { contact(accountId: $a, remoteId: \"5725767000000412001\") { owner { remoteId email isActive } } }",
        json!({"a": a}),
    )
    .await;
    assert_eq!(
        c["contact"]["owner"],
        json!({"remoteId": "5725767000000411001", "email": "p.boyle@zylker.example", "isActive": true})
    );
}
