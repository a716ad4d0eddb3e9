//! Salesforce's CRM objects through the unified API: leads and their conversion links,
//! tasks' polymorphic Who/What ids, opportunity status and contact roles, and search terms
//! that must reach SOQL escaped.

use serde_json::{Value, json};

use crate::common::TestGateway;

async fn salesforce() -> (TestGateway, String) {
    let t = TestGateway::start().await;
    let account = t.connect_sandbox(&t.env_key.clone(), "salesforce").await;
    (t, account)
}

async fn query(t: &TestGateway, q: &str, vars: Value) -> Value {
    let r = t.gql(Some(&t.env_key), q, vars).await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    r.body["data"].clone()
}

fn remote_ids(connection: &Value) -> Vec<String> {
    let mut ids: Vec<String> = connection["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["remoteId"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_converted_lead_resolves_its_contact_company_and_deal() {
    let (t, account) = salesforce().await;
    let q = "query($a: ID!, $r: ID!) { lead(accountId: $a, remoteId: $r) { status convertedAt
        convertedContact { remoteId lastName company { remoteId } }
        convertedCompany { remoteId name }
        convertedDeal { remoteId status company { remoteId } } } }";
    let data = query(&t, q, json!({"a": account, "r": "00QSb000060DXQbMAO"})).await;
    let lead = &data["lead"];
    assert_eq!(lead["status"], "Closed - Converted");
    assert_eq!(lead["convertedAt"], "2023-06-20T00:00:00.000Z");
    assert_eq!(lead["convertedContact"]["remoteId"], "003Sb00001CRoqkIAD");
    assert_eq!(lead["convertedCompany"]["remoteId"], "001Sb00002OvIhmIAF");
    assert_eq!(lead["convertedDeal"]["remoteId"], "006Sb00003bKnLiIAK");
    // The three records the conversion made belong together.
    assert_eq!(
        lead["convertedContact"]["company"]["remoteId"],
        lead["convertedCompany"]["remoteId"]
    );
    assert_eq!(
        lead["convertedDeal"]["company"]["remoteId"],
        lead["convertedCompany"]["remoteId"]
    );

    // In a listing, open leads have no conversion; converted ones link what they became.
    let q = "query($a: ID!) { leads(accountId: $a, first: 40) { edges { node { remoteId status convertedAt convertedContact { remoteId } convertedDeal { remoteId } } } } }";
    let data = query(&t, q, json!({"a": account})).await;
    let nodes: Vec<&Value> = data["leads"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .collect();
    let converted: Vec<&&Value> = nodes
        .iter()
        .filter(|n| n["status"] == "Closed - Converted")
        .collect();
    assert!(converted.len() >= 3, "{nodes:?}");
    for n in &converted {
        assert!(n["convertedAt"].is_string(), "{n}");
        assert!(n["convertedContact"]["remoteId"].is_string(), "{n}");
    }
    assert!(
        converted.iter().any(|n| n["convertedDeal"].is_null()),
        "a conversion may open no deal"
    );
    for n in nodes.iter().filter(|n| n["status"] != "Closed - Converted") {
        assert!(n["convertedAt"].is_null(), "{n}");
        assert!(n["convertedContact"].is_null(), "{n}");
    }
}

#[tokio::test]
async fn task_who_and_what_ids_land_in_the_link_their_prefix_names() {
    let (t, account) = salesforce().await;
    let q = "query($a: ID!) { tasks(accountId: $a, first: 60) { edges { node { remoteId status completedAt remoteData
        contact { remoteId } company { remoteId } deal { remoteId } } } } }";
    let data = query(&t, q, json!({"a": account})).await;
    let (mut leads, mut contacts, mut companies, mut deals) = (0, 0, 0, 0);
    for edge in data["tasks"]["edges"].as_array().unwrap() {
        let n = &edge["node"];
        let who = n["remoteData"]["WhoId"].as_str();
        let what = n["remoteData"]["WhatId"].as_str();
        match who {
            Some(w) if w.starts_with("003") => {
                assert_eq!(n["contact"]["remoteId"], w, "{n}");
                contacts += 1;
            }
            Some(w) => {
                assert!(w.starts_with("00Q"), "{n}");
                assert!(n["contact"].is_null(), "a lead is not a contact: {n}");
                leads += 1;
            }
            None => assert!(n["contact"].is_null(), "{n}"),
        }
        match what {
            Some(w) if w.starts_with("001") => {
                assert_eq!(n["company"]["remoteId"], w, "{n}");
                assert!(n["deal"].is_null(), "{n}");
                companies += 1;
            }
            Some(w) => {
                assert!(w.starts_with("006"), "{n}");
                assert_eq!(n["deal"]["remoteId"], w, "{n}");
                assert!(n["company"].is_null(), "{n}");
                deals += 1;
            }
            None => assert!(n["company"].is_null() && n["deal"].is_null(), "{n}"),
        }
        assert_eq!(
            n["status"] == "COMPLETED",
            n["completedAt"].is_string(),
            "{n}"
        );
    }
    assert!(leads > 0 && contacts > 0 && companies > 0 && deals > 0);
}

#[tokio::test]
async fn opportunity_stage_gives_the_status_and_contact_roles_give_the_contacts() {
    let (t, account) = salesforce().await;
    let q = "query($a: ID!) { deals(accountId: $a, first: 250) { edges { node { remoteId status stageId probability amount { amount currency } contacts { remoteId } company { remoteId } } } } }";
    let data = query(&t, q, json!({"a": account})).await;
    let nodes: Vec<&Value> = data["deals"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .collect();
    let won = nodes
        .iter()
        .find(|n| n["remoteId"] == "006Sb00003bKazMIAS")
        .unwrap();
    assert_eq!(won["status"], "WON");
    assert_eq!(won["stageId"], "Closed Won");
    assert_eq!(won["probability"], 1.0);
    assert_eq!(
        won["amount"],
        json!({"amount": "117900.00", "currency": "AUD"})
    );
    assert_eq!(won["contacts"], json!([{"remoteId": "003Sb00001CVwIkIAL"}]));
    // A contact role is played by someone at the deal's company.
    let q =
        "query($a: ID!, $r: ID!) { contact(accountId: $a, remoteId: $r) { company { remoteId } } }";
    let data = query(&t, q, json!({"a": account, "r": "003Sb00001CVwIkIAL"})).await;
    assert_eq!(
        data["contact"]["company"]["remoteId"],
        won["company"]["remoteId"]
    );
    for n in &nodes {
        let expected = match n["stageId"].as_str().unwrap() {
            "Closed Won" => "WON",
            "Closed Lost" => "LOST",
            _ => "OPEN",
        };
        assert_eq!(n["status"], expected, "{n}");
    }
    assert!(nodes.iter().any(|n| n["status"] == "LOST"));
    assert!(nodes.iter().any(|n| n["contacts"] == json!([])));

    // Moving a deal to a closed stage through the API closes it, with the stage's
    // probability, as Salesforce does.
    let q = "mutation($a: ID!, $i: DealInput!) { createDeal(accountId: $a, input: $i) { id status probability } }";
    let input = json!({"name": "Status check", "stageId": "Negotiation/Review", "closeDate": "2026-05-01T00:00:00.000Z"});
    let data = query(&t, q, json!({"a": account, "i": input})).await;
    assert_eq!(data["createDeal"]["status"], "OPEN");
    assert_eq!(data["createDeal"]["probability"], 0.9);
    let id = data["createDeal"]["id"].as_str().unwrap().to_string();
    let q = "mutation($id: ID!, $i: DealInput!) { updateDeal(id: $id, input: $i) { status probability } }";
    let data = query(&t, q, json!({"id": id, "i": {"stageId": "Closed Lost"}})).await;
    assert_eq!(
        data["updateDeal"],
        json!({"status": "LOST", "probability": 0.0})
    );
}

#[tokio::test]
async fn search_terms_with_quotes_and_wildcards_are_escaped_not_injected() {
    let (t, account) = salesforce().await;
    let deals = "query($a: ID!, $f: DealFilter) { deals(accountId: $a, first: 250, filter: $f) { edges { node { remoteId name } } } }";
    let search = |term: &str| json!({"a": account, "f": {"search": term}});

    // A quote and a `%`: the `%` is a character of the name, not a wildcard, so the deal
    // named "... 20 seats uplift" does not match.
    let data = query(&t, deals, search("o'brien renewal - 20% UP")).await;
    assert_eq!(remote_ids(&data["deals"]), ["006Sb00003bLrGwIAK"]);
    assert_eq!(
        data["deals"]["edges"][0]["node"]["name"],
        "O'Brien Renewal - 20% uplift"
    );
    // Without the `%` both O'Brien deals match: the search itself works.
    let data = query(&t, deals, search("O'Brien Renewal - 20")).await;
    assert_eq!(remote_ids(&data["deals"]).len(), 2);
    // `_` is a character too, and a backslash stays a backslash.
    let data = query(&t, deals, search("Phase_2")).await;
    assert_eq!(remote_ids(&data["deals"]), ["006Sb00003bLvOOIA0"]);
    let data = query(&t, deals, search("Dev\\Ops")).await;
    assert_eq!(remote_ids(&data["deals"]), ["006Sb00003bLzVqIAK"]);

    // An attempt to break out of the string literal finds nothing and breaks nothing.
    for term in [
        "' OR Name != '",
        "%' OR Name LIKE '%",
        "\\' OR Id != null OR Name = '",
    ] {
        let data = query(&t, deals, search(term)).await;
        assert_eq!(remote_ids(&data["deals"]), Vec::<String>::new(), "{term}");
    }

    // The same escaping on contacts, leads and companies.
    let q = "query($a: ID!, $f: ContactFilter) { contacts(accountId: $a, first: 10, filter: $f) { edges { node { remoteId firstName } } } }";
    let data = query(&t, q, json!({"a": account, "f": {"search": "D'Arcy O'C"}})).await;
    assert_eq!(remote_ids(&data["contacts"]), ["003Sb00001CVTSaIAP"]);
    let q = "query($a: ID!, $f: LeadFilter) { leads(accountId: $a, first: 10, filter: $f) { edges { node { remoteId lastName } } } }";
    let data = query(&t, q, json!({"a": account, "f": {"search": "O'Neil"}})).await;
    assert_eq!(remote_ids(&data["leads"]), ["00QSb000060DffVMAS"]);
    let data = query(
        &t,
        q,
        json!({"a": account, "f": {"search": "x' OR LastName != '", "email": "x'@y.example"}}),
    )
    .await;
    assert_eq!(remote_ids(&data["leads"]), Vec::<String>::new());
    let q = "query($a: ID!, $f: CompanyFilter) { companies(accountId: $a, first: 10, filter: $f) { edges { node { remoteId } } } }";
    let data = query(&t, q, json!({"a": account, "f": {"search": "100%"}})).await;
    assert_eq!(remote_ids(&data["companies"]), Vec::<String>::new());
}

#[tokio::test]
async fn users_are_read_only_and_carry_their_active_flag() {
    let (t, account) = salesforce().await;
    let q = "query($a: ID!) { users(accountId: $a, first: 100) { edges { node { remoteId email isActive } } } }";
    let data = query(&t, q, json!({"a": account})).await;
    let users = data["users"]["edges"].as_array().unwrap();
    assert_eq!(users.len(), 24);
    assert!(users.iter().any(|u| u["node"]["isActive"] == false));
    // Contacts are owned by active users, reached through the owner link.
    let q = "query($a: ID!) { contacts(accountId: $a, first: 5) { edges { node { owner { isActive email } } } } }";
    let data = query(&t, q, json!({"a": account})).await;
    for e in data["contacts"]["edges"].as_array().unwrap() {
        assert_eq!(e["node"]["owner"]["isActive"], true, "{e}");
    }
    let r = t
        .gql(
            Some(&t.env_key),
            "mutation($a: ID!) { createUser(accountId: $a, input: {lastName: \"New\"}) { id } }",
            json!({"a": account}),
        )
        .await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
}
