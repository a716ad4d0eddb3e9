//! The address books (Microsoft Graph's Outlook contacts and Google People) through the
//! unified API: departments and typed postal addresses, Graph's `$filter` translation
//! (exactly the contacts the mailbox's own data says, a quote in an email address that
//! cannot break out of its OData string literal) and the filters Google cannot answer.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::common::TestGateway;

const CONTACT_FIELDS: &str = "remoteId department remoteUpdatedAt remoteCreatedAt emails { address } addresses { street city region postalCode country type }";

async fn connect(provider: &str) -> (TestGateway, String) {
    let t = TestGateway::start().await;
    let account = t.connect_sandbox(&t.env_key.clone(), provider).await;
    (t, account)
}

async fn query(t: &TestGateway, q: &str, vars: Value) -> Value {
    let r = t.gql(Some(&t.env_key), q, vars).await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    r.body["data"].clone()
}

async fn contact(t: &TestGateway, account: &str, remote_id: &str) -> Value {
    let q = format!(
        "query($a: ID!, $r: ID!) {{ contact(accountId: $a, remoteId: $r) {{ {CONTACT_FIELDS} }} }}"
    );
    query(t, &q, json!({"a": account, "r": remote_id})).await["contact"].clone()
}

/// Every contact of a (filtered) listing, `first` at a time, as the gateway maps it.
async fn listing(t: &TestGateway, account: &str, first: usize, filter: Value) -> Vec<Value> {
    let q = format!(
        "query($a: ID!, $f: Int, $c: String, $flt: ContactFilter) {{ contacts(accountId: $a, first: $f, after: $c, filter: $flt) {{ edges {{ node {{ {CONTACT_FIELDS} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"
    );
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..200 {
        let data = query(
            t,
            &q,
            json!({"a": account, "f": first, "c": after, "flt": filter}),
        )
        .await;
        let conn = &data["contacts"];
        out.extend(
            conn["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"].clone()),
        );
        if !conn["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            return out;
        }
        after = Some(conn["pageInfo"]["endCursor"].as_str().unwrap().to_string());
    }
    panic!("the listing did not end");
}

fn remote_ids(nodes: &[Value]) -> BTreeSet<String> {
    nodes
        .iter()
        .map(|n| n["remoteId"].as_str().unwrap().to_string())
        .collect()
}

/// The whole mailbox straight from the sandbox Graph, unfiltered: the ground truth.
async fn graph_mailbox(t: &TestGateway) -> Vec<Value> {
    let r: Value = t
        .http
        .get(format!(
            "{}/graph/v1.0/me/contacts?$top=1000",
            t.sandbox.base_url()
        ))
        .bearer_auth(tessera_sandbox::MSGRAPH_DEMO_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        r.get("@odata.nextLink").is_none(),
        "one page holds them all"
    );
    r["value"].as_array().unwrap().clone()
}

/// Every connection straight from the sandbox People API.
async fn google_connections(t: &TestGateway) -> Vec<Value> {
    let r: Value = t
        .http
        .get(format!(
            "{}/google/v1/people/me/connections?personFields=names,organizations,addresses&pageSize=1000",
            t.sandbox.base_url()
        ))
        .bearer_auth(tessera_sandbox::GOOGLE_DEMO_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(r.get("nextPageToken").is_none(), "one page holds them all");
    r["connections"].as_array().unwrap().clone()
}

fn google_id(person: &Value) -> String {
    person["resourceName"]
        .as_str()
        .unwrap()
        .strip_prefix("people/")
        .unwrap()
        .to_string()
}

fn address_is_set(a: &Value) -> bool {
    a.as_object().is_some_and(|o| !o.is_empty())
}

#[tokio::test]
async fn graph_business_home_and_other_addresses_map_to_work_home_and_other() {
    let (t, account) = connect("msgraph").await;
    let mailbox = graph_mailbox(&t).await;
    let mapped = listing(&t, &account, 250, Value::Null).await;
    assert_eq!(mapped.len(), mailbox.len());
    let mut seen_types = BTreeSet::new();
    for (raw, node) in mailbox.iter().zip(&mapped) {
        assert_eq!(node["remoteId"], raw["id"]);
        assert_eq!(node["department"], raw["department"], "{node}");
        // Each set Outlook address becomes one unified address of its kind, in the order
        // business, home, other.
        let want: Vec<Value> = [
            ("businessAddress", "WORK"),
            ("homeAddress", "HOME"),
            ("otherAddress", "OTHER"),
        ]
        .iter()
        .filter(|(key, _)| address_is_set(&raw[*key]))
        .map(|(key, kind)| {
            let a = &raw[*key];
            json!({
                "street": a["street"], "city": a["city"], "region": a["state"],
                "postalCode": a["postalCode"], "country": a["countryOrRegion"], "type": kind,
            })
        })
        .collect();
        assert_eq!(node["addresses"], json!(want), "{raw}");
        for a in want {
            seen_types.insert(a["type"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(
        seen_types,
        ["HOME", "OTHER", "WORK"].map(String::from).into(),
        "the data exercises every kind"
    );
    assert!(
        mapped.iter().any(|n| n["addresses"] == json!([])),
        "and contacts without any address"
    );
    assert!(
        mapped.iter().any(|n| n["department"].is_null()),
        "and contacts without a department"
    );

    // The first contact has all three; a partial one keeps its nulls.
    let megan = &mapped[0];
    assert_eq!(megan["department"], "Engineering");
    assert_eq!(
        megan["addresses"][2],
        json!({"street": "PO Box 4000", "city": "Seattle", "region": null, "postalCode": null, "country": "United States", "type": "OTHER"})
    );
    let partial = mapped
        .iter()
        .flat_map(|n| n["addresses"].as_array().unwrap())
        .find(|a| a["type"] == "HOME" && a["street"].is_null())
        .expect("a home address with only a city and a country");
    assert!(partial["city"].is_string() && partial["country"].is_string());
}

#[tokio::test]
async fn graph_writes_department_and_typed_addresses_to_the_matching_outlook_address() {
    let (t, account) = connect("msgraph").await;
    let q = format!(
        "mutation($a: ID!, $i: ContactInput!) {{ createContact(accountId: $a, input: $i) {{ id {CONTACT_FIELDS} }} }}"
    );
    let input = json!({
        "firstName": "Grace", "lastName": "Hopper", "department": "Navy",
        "addresses": [
            {"street": "1 Home Rd", "city": "Arlington", "type": "HOME"},
            {"street": "2 Office Way", "city": "Washington", "region": "DC", "type": "WORK"},
            {"city": "Annapolis"}
        ]
    });
    let created = query(&t, &q, json!({"a": account, "i": input})).await["createContact"].clone();
    assert_eq!(created["department"], "Navy");
    let types: Vec<&str> = created["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["WORK", "HOME", "OTHER"], "{created}");
    assert_eq!(created["addresses"][0]["region"], "DC");
    assert_eq!(created["addresses"][2]["city"], "Annapolis");
    // What Outlook itself stores.
    let raw: Value = t
        .http
        .get(format!(
            "{}/graph/v1.0/me/contacts/{}",
            t.sandbox.base_url(),
            created["remoteId"].as_str().unwrap()
        ))
        .bearer_auth(tessera_sandbox::MSGRAPH_DEMO_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(raw["department"], "Navy");
    assert_eq!(raw["homeAddress"]["street"], "1 Home Rd");
    assert_eq!(raw["businessAddress"]["state"], "DC");
    assert_eq!(raw["otherAddress"]["city"], "Annapolis");

    // An update that does not name addresses leaves them; one that does replaces them.
    let q = format!(
        "mutation($id: ID!, $i: ContactInput!) {{ updateContact(id: $id, input: $i) {{ {CONTACT_FIELDS} }} }}"
    );
    let id = created["id"].as_str().unwrap();
    let updated =
        query(&t, &q, json!({"id": id, "i": {"department": "Research"}})).await["updateContact"]
            .clone();
    assert_eq!(updated["department"], "Research");
    assert_eq!(updated["addresses"], created["addresses"]);
    let updated = query(
        &t,
        &q,
        json!({"id": id, "i": {"addresses": [{"city": "Arlington", "type": "HOME"}]}}),
    )
    .await["updateContact"]
        .clone();
    assert_eq!(
        updated["addresses"],
        json!([{"street": null, "city": "Arlington", "region": null, "postalCode": null, "country": null, "type": "HOME"}])
    );
}

#[tokio::test]
async fn graph_date_filters_return_exactly_the_contacts_changed_or_created_after() {
    let (t, account) = connect("msgraph").await;
    let mailbox = graph_mailbox(&t).await;
    // A boundary equal to a contact's own time: "since" means strictly after, so that
    // contact is out (`gt`, not `ge`).
    let mut modified: Vec<&str> = mailbox
        .iter()
        .map(|c| c["lastModifiedDateTime"].as_str().unwrap())
        .collect();
    modified.sort();
    let boundary = modified[modified.len() * 4 / 5];
    let want: BTreeSet<String> = mailbox
        .iter()
        .filter(|c| c["lastModifiedDateTime"].as_str().unwrap() > boundary)
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        want.len() > 10 && want.len() < mailbox.len() / 4,
        "{}",
        want.len()
    );
    let at_boundary: Vec<String> = mailbox
        .iter()
        .filter(|c| c["lastModifiedDateTime"] == boundary)
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert!(!at_boundary.is_empty());
    // Five at a time: the later pages come from Graph's nextLink, which must keep the filter.
    let got = listing(&t, &account, 5, json!({"updatedSince": boundary})).await;
    assert_eq!(remote_ids(&got), want);
    assert!(at_boundary.iter().all(|id| !want.contains(id)));
    let instant = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap();
    for node in &got {
        assert!(
            instant(node["remoteUpdatedAt"].as_str().unwrap()) > instant(boundary),
            "{node}"
        );
    }
    // The same instant written with an offset selects the same contacts.
    let shifted = chrono::DateTime::parse_from_rfc3339(boundary)
        .unwrap()
        .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).unwrap())
        .to_rfc3339();
    let got = listing(&t, &account, 100, json!({"updatedSince": shifted})).await;
    assert_eq!(remote_ids(&got), want);

    let since = "2023-09-15T00:00:00Z";
    let want: BTreeSet<String> = mailbox
        .iter()
        .filter(|c| c["createdDateTime"].as_str().unwrap() > since)
        .filter(|c| c["lastModifiedDateTime"].as_str().unwrap() > boundary)
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert!(!want.is_empty());
    let got = listing(
        &t,
        &account,
        3,
        json!({"createdSince": since, "updatedSince": boundary}),
    )
    .await;
    assert_eq!(remote_ids(&got), want, "both filters apply together");

    // Graph has no honest free-text search over contacts: refused by name.
    let r = t
        .gql(
            Some(&t.env_key),
            "query($a: ID!) { contacts(accountId: $a, first: 5, filter: {search: \"megan\"}) { edges { node { remoteId } } } }",
            json!({"a": account}),
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
async fn graph_email_filter_doubles_quotes_so_the_value_stays_a_string_literal() {
    let (t, account) = connect("msgraph").await;
    let mailbox = graph_mailbox(&t).await;
    let with_quote: Vec<(&Value, &str)> = mailbox
        .iter()
        .flat_map(|c| {
            c["emailAddresses"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(move |e| e["address"].as_str().map(|a| (c, a)))
        })
        .filter(|(_, a)| a.contains('\''))
        .collect();
    assert_eq!(with_quote.len(), 1, "the mailbox holds one such address");
    let (owner, address) = with_quote[0];
    let got = listing(&t, &account, 10, json!({"email": address})).await;
    assert_eq!(
        remote_ids(&got),
        [owner["id"].as_str().unwrap().to_string()].into()
    );

    // Values that would rewrite an unescaped filter are just addresses nobody has.
    for attempt in [
        "x') and createdDateTime gt 2000-01-01T00:00:00Z and emailAddresses/any(b:b/address eq 'y",
        "'",
        "x' or 'a' eq 'a",
    ] {
        let r = t
            .gql(
                Some(&t.env_key),
                "query($a: ID!, $f: ContactFilter) { contacts(accountId: $a, first: 50, filter: $f) { edges { node { remoteId } } pageInfo { hasNextPage } } }",
                json!({"a": account, "f": {"email": attempt}}),
            )
            .await;
        assert!(r.body["errors"].is_null(), "{attempt}: {}", r.body);
        assert_eq!(r.body["data"]["contacts"]["edges"], json!([]), "{attempt}");
    }

    // A secondary address counts, and Exchange compares addresses case-insensitively.
    let (owner, second) = mailbox
        .iter()
        .find_map(|c| {
            c["emailAddresses"][1]["address"]
                .as_str()
                .map(|a| (c, a.to_uppercase()))
        })
        .unwrap();
    let got = listing(&t, &account, 10, json!({"email": second})).await;
    assert_eq!(
        remote_ids(&got),
        [owner["id"].as_str().unwrap().to_string()].into()
    );
}

#[tokio::test]
async fn google_department_and_addresses_come_from_the_primary_organization_and_addresses() {
    let (t, account) = connect("google").await;
    let people = google_connections(&t).await;
    let mapped = listing(&t, &account, 250, Value::Null).await;
    let by_id: std::collections::HashMap<String, &Value> = mapped
        .iter()
        .map(|n| (n["remoteId"].as_str().unwrap().to_string(), n))
        .collect();
    assert_eq!(by_id.len(), people.len());
    let mut labels = BTreeSet::new();
    for person in &people {
        let node = by_id[&google_id(person)];
        assert_eq!(
            node["department"], person["organizations"][0]["department"],
            "{person}"
        );
        let addresses = person["addresses"].as_array().cloned().unwrap_or_default();
        let got = node["addresses"].as_array().unwrap();
        assert_eq!(got.len(), addresses.len(), "{person}");
        for (a, m) in addresses.iter().zip(got) {
            assert_eq!(m["street"], a["streetAddress"]);
            assert_eq!(m["city"], a["city"]);
            assert_eq!(m["region"], a["region"]);
            assert_eq!(m["postalCode"], a["postalCode"]);
            let country = if a["country"].is_string() {
                &a["country"]
            } else {
                &a["countryCode"]
            };
            assert_eq!(&m["country"], country, "{a}");
            match a["type"].as_str() {
                Some(kind) => assert_eq!(m["type"], kind.to_uppercase()),
                None => assert!(m["type"].is_null()),
            }
            labels.insert(m["type"].as_str().unwrap_or("(none)").to_string());
        }
    }
    assert_eq!(
        labels,
        ["(none)", "HOLIDAY HOME", "HOME", "WORK"]
            .map(String::from)
            .into(),
        "work, home, a custom label and no type at all"
    );
    assert!(mapped.iter().any(|n| n["department"].is_string()));
    assert!(mapped.iter().any(|n| n["department"].is_null()));
    // The known first contact.
    let ada = contact(&t, &account, "c1716632666546416052").await;
    assert_eq!(ada["department"], "Engineering");
    assert_eq!(
        ada["addresses"],
        json!([{"street": "1 Elm Street", "city": "London", "region": null, "postalCode": "10000", "country": "United Kingdom", "type": "HOME"}])
    );
}

#[tokio::test]
async fn google_updates_keep_the_organization_and_addresses_they_do_not_name() {
    let (t, account) = connect("google").await;
    let q = format!(
        "mutation($a: ID!, $i: ContactInput!) {{ createContact(accountId: $a, input: $i) {{ id title {CONTACT_FIELDS} }} }}"
    );
    let input = json!({
        "firstName": "Katherine", "lastName": "Johnson", "title": "Mathematician",
        "department": "Flight Research",
        "addresses": [{"street": "1 Langley Blvd", "city": "Hampton", "region": "VA", "country": "United States", "type": "WORK"}]
    });
    let created = query(&t, &q, json!({"a": account, "i": input})).await["createContact"].clone();
    assert_eq!(created["department"], "Flight Research");
    assert_eq!(created["addresses"][0]["type"], "WORK");
    assert_eq!(created["addresses"][0]["street"], "1 Langley Blvd");
    let id = created["id"].as_str().unwrap();
    let q = format!(
        "mutation($id: ID!, $i: ContactInput!) {{ updateContact(id: $id, input: $i) {{ title {CONTACT_FIELDS} }} }}"
    );
    let updated =
        query(&t, &q, json!({"id": id, "i": {"lastName": "Goble"}})).await["updateContact"].clone();
    assert_eq!(updated["title"], "Mathematician");
    assert_eq!(updated["department"], "Flight Research");
    assert_eq!(updated["addresses"], created["addresses"]);
    let updated =
        query(&t, &q, json!({"id": id, "i": {"department": "Analysis"}})).await["updateContact"]
            .clone();
    assert_eq!(updated["title"], "Mathematician", "the title stays");
    assert_eq!(updated["department"], "Analysis");
}

#[tokio::test]
async fn google_refuses_the_filters_its_people_api_cannot_answer() {
    let (t, account) = connect("google").await;
    let before = t.sandbox_stats().await;
    for (name, value) in [
        ("search", json!("ada")),
        ("email", json!("ada.lovelace@umbrella.example")),
        ("updatedSince", json!("2024-01-01T00:00:00Z")),
        ("createdSince", json!("2024-01-01T00:00:00Z")),
    ] {
        let r = t
            .gql(
                Some(&t.env_key),
                "query($a: ID!, $f: ContactFilter) { contacts(accountId: $a, first: 5, filter: $f) { edges { node { remoteId } } } }",
                json!({"a": account, "f": {name: value}}),
            )
            .await;
        assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{name}: {}", r.body);
        assert!(
            r.body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("`{name}`")),
            "{name}: {}",
            r.body
        );
        assert!(r.body["data"].is_null() || r.body["data"]["contacts"].is_null());
    }
    let after = t.sandbox_stats().await;
    assert_eq!(
        after["byRoute"], before["byRoute"],
        "refused before any upstream call"
    );
}
