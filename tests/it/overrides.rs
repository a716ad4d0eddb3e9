//! The override hierarchy end to end: environment and account overrides through
//! `setOverride`, their effect on the next request, provenance, rollback, validation with
//! positions, custom field types, tenant isolation, and propagation between replicas.

use serde_json::{Value, json};

use crate::common::{ADMIN_KEY, Reply, TestGateway};

const SET: &str = "mutation($i: OverrideInput!) { setOverride(input: $i) { id level version action environmentId accountId } }";
const CONTACT: &str = "query($a: ID!, $r: ID!) { contact(accountId: $a, remoteId: $r) { title customFields remoteData } }";
const EXPLAIN: &str = "query($a: ID!, $r: String!) { explainMapping(accountId: $a, resource: $r) { provider fields { field expression level version source } request levels } }";
const CONTACT_PROPERTIES: &str =
    "firstname,lastname,email,phone,jobtitle,associatedcompanyid,customer_tier";

async fn set(t: &TestGateway, key: &str, input: Value) -> Reply {
    t.gql(Some(key), SET, json!({ "i": input })).await
}

async fn contact(t: &TestGateway, key: &str, account: &str, remote_id: &str) -> Value {
    let r = t
        .gql(Some(key), CONTACT, json!({"a": account, "r": remote_id}))
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    r.body["data"]["contact"].clone()
}

fn source_of<'a>(explain: &'a Value, field: &str) -> &'a Value {
    explain["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == field)
        .unwrap_or_else(|| panic!("no `{field}` in {explain}"))
}

async fn explain(t: &TestGateway, key: &str, account: &str) -> Value {
    let r = t
        .gql(Some(key), EXPLAIN, json!({"a": account, "r": "contacts"}))
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    r.body["data"]["explainMapping"].clone()
}

#[tokio::test]
async fn an_environment_override_adds_a_custom_field_with_its_request_patch_and_type() {
    let t = TestGateway::start().await;
    let properties = format!("{CONTACT_PROPERTIES},hubspot_owner_id");
    let r = set(
        &t,
        &t.env_key,
        json!({
            "level": "ENVIRONMENT", "provider": "hubspot", "resource": "contacts",
            "fields": {"customFields.ownerRef": "properties.hubspot_owner_id"},
            "customFieldTypes": {"ownerRef": "Int"},
            "request": {"list": {"query": {"properties": properties}}, "get": {"query": {"properties": properties}}}
        }),
    )
    .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    assert_eq!(r.body["data"]["setOverride"]["version"], 1);

    // The next request lists every contact with the new custom field, typed as declared,
    // and the file's own custom field still there.
    let r = t
        .gql(
            Some(&t.env_key),
            "query($a: ID!) { contacts(accountId: $a, first: 40) { edges { node { customFields remoteData } } } }",
            json!({"a": t.account_id}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    let edges = r.body["data"]["contacts"]["edges"].as_array().unwrap();
    let mut with_owner = 0;
    for e in edges {
        let node = &e["node"];
        let raw = &node["remoteData"]["properties"]["hubspot_owner_id"];
        match raw.as_str() {
            Some(text) => {
                with_owner += 1;
                assert_eq!(
                    node["customFields"]["ownerRef"],
                    json!(text.parse::<i64>().unwrap()),
                    "{node}"
                );
            }
            None => assert!(node["customFields"]["ownerRef"].is_null(), "{node}"),
        }
        assert!(node["customFields"].get("customerTier").is_some(), "{node}");
    }
    assert!(
        with_owner > 20,
        "the sandbox sets an owner on most contacts"
    );

    // Provenance: the custom field from the environment's v1, the rest from the file.
    let ex = explain(&t, &t.env_key, &t.account_id).await;
    let owner = source_of(&ex, "customFields.ownerRef");
    assert_eq!(
        (&owner["level"], &owner["version"], &owner["expression"]),
        (
            &json!("ENVIRONMENT"),
            &json!(1),
            &json!("properties.hubspot_owner_id")
        )
    );
    let first = source_of(&ex, "firstName");
    assert_eq!(
        (&first["level"], &first["version"], &first["source"]),
        (&json!("PLATFORM"), &Value::Null, &json!("provider file"))
    );
    assert_eq!(
        ex["request"]["list"]["query"]["properties"],
        json!(properties)
    );
    assert_eq!(ex["levels"], json!(["ENVIRONMENT v1"]));
}

#[tokio::test]
async fn an_account_override_changes_one_account_and_rolls_back() {
    let t = TestGateway::start().await;
    let other = t.connect_sandbox(&t.env_key, "hubspot").await;
    let before = contact(&t, &t.env_key, &t.account_id, "1001").await["title"].clone();
    let title = before.as_str().unwrap().to_string();

    let upper = set(
        &t,
        &t.env_key,
        json!({"level": "ACCOUNT", "provider": "hubspot", "resource": "contacts", "accountId": t.account_id,
               "fields": {"title": "properties.jobtitle ? $uppercase(properties.jobtitle)"}}),
    )
    .await;
    assert!(upper.body["errors"].is_null(), "{}", upper.body);
    let id = upper.body["data"]["setOverride"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        contact(&t, &t.env_key, &t.account_id, "1001").await["title"],
        json!(title.to_uppercase())
    );
    // The other account of the same environment is unchanged.
    assert_eq!(
        contact(&t, &t.env_key, &other, "1001").await["title"],
        before
    );
    let ex = explain(&t, &t.env_key, &t.account_id).await;
    assert_eq!(source_of(&ex, "title")["level"], "ACCOUNT");
    let ex = explain(&t, &t.env_key, &other).await;
    assert_eq!(source_of(&ex, "title")["source"], "provider file");

    // v2, then back to v1: a rollback is a new version that restores the old spec.
    let lower = set(
        &t,
        &t.env_key,
        json!({"level": "ACCOUNT", "provider": "hubspot", "resource": "contacts", "accountId": t.account_id,
               "fields": {"title": "properties.jobtitle ? $lowercase(properties.jobtitle)"}}),
    )
    .await;
    assert_eq!(
        lower.body["data"]["setOverride"]["version"], 2,
        "{}",
        lower.body
    );
    assert_eq!(
        contact(&t, &t.env_key, &t.account_id, "1001").await["title"],
        json!(title.to_lowercase())
    );
    let r = t
        .gql(
            Some(&t.env_key),
            "mutation($id: ID!) { rollbackOverride(id: $id, version: 1) { version action restoredVersion history { version action } } }",
            json!({"id": id}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    let rolled = &r.body["data"]["rollbackOverride"];
    assert_eq!(
        (
            &rolled["version"],
            &rolled["action"],
            &rolled["restoredVersion"]
        ),
        (&json!(3), &json!("rollback"), &json!(1))
    );
    assert_eq!(
        rolled["history"],
        json!([{"version": 3, "action": "rollback"}, {"version": 2, "action": "set"}, {"version": 1, "action": "set"}])
    );
    assert_eq!(
        contact(&t, &t.env_key, &t.account_id, "1001").await["title"],
        json!(title.to_uppercase())
    );
    // Rolling back to a version that does not exist is not found.
    let r = t
        .gql(
            Some(&t.env_key),
            "mutation($id: ID!) { rollbackOverride(id: $id, version: 9) { version } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(r.code(), Some("NOT_FOUND"), "{}", r.body);
}

#[tokio::test]
async fn invalid_overrides_are_refused_with_the_field_expression_and_position() {
    let t = TestGateway::start().await;
    let base = json!({"level": "ENVIRONMENT", "provider": "hubspot", "resource": "contacts"});
    let with = |extra: Value| {
        let mut input = base.clone();
        input
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        input
    };
    let cases = [
        (
            json!({"fields": {"title": "$uppercase(properties.jobtitle"}}),
            vec!["field `title`", "position"],
        ),
        (
            json!({"fields": {"title": "{'a': properties.jobtitle}"}}),
            vec!["field `title`", "{'a': properties.jobtitle}", "`String`"],
        ),
        (
            json!({"fields": {"phones": "properties.phone"}}),
            vec!["field `phones`", "properties.phone", "PhoneNumber"],
        ),
        (
            json!({"fields": {"nickname": "properties.firstname"}}),
            vec!["field `nickname`", "not an output field"],
        ),
        (json!({"remove": ["nickname"]}), vec!["`nickname`"]),
        // Valid JSONata that fails on a real record (a contact without a job title).
        (
            json!({"fields": {"title": "$uppercase(properties.jobtitle)"}}),
            vec!["field `title`", "sample record", "position 11"],
        ),
        (
            json!({"request": {"list": {"pathh": "/x"}}}),
            vec!["request `list", "pathh"],
        ),
        (
            json!({"customFieldTypes": {"tier": "Integer"}}),
            vec!["customFieldTypes"],
        ),
        (
            json!({"fields": {"title": "$string(properties.jobtitle) & $error('boom')"}}),
            vec!["field `title`", "boom"],
        ),
    ];
    for (extra, needles) in cases {
        let r = set(&t, &t.env_key, with(extra.clone())).await;
        assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{extra}: {}", r.body);
        let message = r.body["errors"][0]["message"].as_str().unwrap();
        for n in needles {
            assert!(message.contains(n), "{extra}: `{n}` not in: {message}");
        }
    }
    // Nothing was stored, and requests map as before.
    let r = t
        .gql(Some(&t.env_key), "{ overrides { id } }", json!({}))
        .await;
    assert_eq!(r.body["data"]["overrides"], json!([]), "{}", r.body);
    // A caller's own sample record is what the mapping is tried on when given.
    let r = set(
        &t,
        &t.env_key,
        with(json!({"fields": {"title": "properties.jobtitle"}, "sample": {"id": "1", "properties": {"jobtitle": {"a": 1}}}})),
    )
    .await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
}

#[tokio::test]
async fn a_custom_field_that_does_not_fit_its_type_is_null_with_a_warning() {
    let t = TestGateway::start().await;
    let r = set(
        &t,
        &t.env_key,
        json!({"level": "ENVIRONMENT", "provider": "hubspot", "resource": "contacts",
               "customFieldTypes": {"customerTier": "Int"}}),
    )
    .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    let r = t
        .gql(
            Some(&t.env_key),
            CONTACT,
            json!({"a": t.account_id, "r": "1001"}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body["errors"].is_null(), "{}", r.body);
    let node = &r.body["data"]["contact"];
    assert!(node["remoteData"]["properties"]["customer_tier"].is_string());
    assert!(node["customFields"]["customerTier"].is_null(), "{node}");
    let warnings = r.body["extensions"]["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("customFields.customerTier")),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn an_environment_never_reads_or_changes_another_environments_overrides() {
    let t = TestGateway::start().await;
    let r = set(
        &t,
        &t.env_key,
        json!({"level": "ACCOUNT", "provider": "hubspot", "resource": "contacts", "accountId": t.account_id,
               "fields": {"title": "properties.jobtitle ? $uppercase(properties.jobtitle)"}}),
    )
    .await;
    let theirs = r.body["data"]["setOverride"].clone();
    let r = set(
        &t,
        &t.env_key,
        json!({"level": "ENVIRONMENT", "provider": "hubspot", "resource": "contacts",
               "fields": {"customFields.x": "properties.email"}}),
    )
    .await;
    let env_a = r.body["data"]["setOverride"]["environmentId"]
        .as_str()
        .unwrap()
        .to_string();

    let other = t.create_environment("globex").await;
    let attempts = [
        (
            json!({"level": "ACCOUNT", "provider": "hubspot", "resource": "contacts", "accountId": t.account_id, "fields": {"title": "'pwned'"}}),
            "NOT_FOUND",
        ),
        (
            json!({"level": "ENVIRONMENT", "provider": "hubspot", "resource": "contacts", "environmentId": env_a, "fields": {"title": "'pwned'"}}),
            "NOT_FOUND",
        ),
        (
            json!({"level": "PLATFORM", "provider": "hubspot", "resource": "contacts", "fields": {"title": "'pwned'"}}),
            "FORBIDDEN",
        ),
    ];
    for (input, code) in attempts {
        let r = set(&t, &other, input.clone()).await;
        assert_eq!(r.code(), Some(code), "{input}: {}", r.body);
    }
    let r = t.gql(Some(&other), "{ overrides { id } }", json!({})).await;
    assert_eq!(r.body["data"]["overrides"], json!([]));
    let r = t
        .gql(
            Some(&other),
            EXPLAIN,
            json!({"a": t.account_id, "r": "contacts"}),
        )
        .await;
    assert_eq!(r.code(), Some("NOT_FOUND"), "{}", r.body);
    let r = t
        .gql(
            Some(&other),
            "mutation($id: ID!) { rollbackOverride(id: $id, version: 1) { version } }",
            json!({"id": theirs["id"]}),
        )
        .await;
    assert_eq!(r.code(), Some("NOT_FOUND"), "{}", r.body);
    // The owner still sees both, unchanged; the admin sees them too.
    let q = "{ overrides { level version } }";
    let mine = t.gql(Some(&t.env_key), q, json!({})).await;
    assert_eq!(mine.body["data"]["overrides"].as_array().unwrap().len(), 2);
    let admin = t.gql(Some(ADMIN_KEY), q, json!({})).await;
    assert_eq!(admin.body["data"]["overrides"].as_array().unwrap().len(), 2);
    assert_eq!(
        contact(&t, &t.env_key, &t.account_id, "1001").await["customFields"]["x"],
        json!("ada.lovelace@acme.example")
    );
}

#[tokio::test]
async fn a_platform_override_from_the_admin_applies_to_every_environment() {
    let t = TestGateway::start().await;
    let r = set(
        &t,
        &t.env_key,
        json!({"level": "PLATFORM", "provider": "hubspot", "resource": "contacts", "fields": {"title": "'x'"}}),
    )
    .await;
    assert_eq!(r.code(), Some("FORBIDDEN"), "{}", r.body);
    let r = set(
        &t,
        ADMIN_KEY,
        json!({"level": "PLATFORM", "provider": "hubspot", "resource": "contacts",
               "fields": {"customFields.source": "'hubspot:' & id"}}),
    )
    .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    let other = t.create_environment("initech").await;
    let account = t.connect_sandbox(&other, "hubspot").await;
    for (key, acc) in [(&t.env_key, &t.account_id), (&other, &account)] {
        assert_eq!(
            contact(&t, key, acc, "1001").await["customFields"]["source"],
            json!("hubspot:1001")
        );
    }
    let ex = explain(&t, &other, &account).await;
    let s = source_of(&ex, "customFields.source");
    assert_eq!(
        (&s["level"], &s["version"]),
        (&json!("PLATFORM"), &json!(1))
    );
}

/// Two gateways on one PostgreSQL database: an override set through one applies on the
/// other within a few seconds (it polls the store for new versions every second).
#[tokio::test]
async fn an_override_reaches_another_replica_within_seconds() {
    let (url, a, b) = TestGateway::two_replicas().await;
    let read_on_b = || async {
        let resp = a
            .http
            .post(format!("{}/graphql", b.url()))
            .bearer_auth(&a.env_key)
            .json(&json!({"query": CONTACT, "variables": {"a": a.account_id, "r": "1001"}}))
            .send()
            .await
            .unwrap();
        let body: Value = resp.json().await.unwrap();
        assert!(body["errors"].is_null(), "{body}");
        body["data"]["contact"]["title"].clone()
    };
    let before = read_on_b().await;
    let r = set(
        &a,
        &a.env_key,
        json!({"level": "ACCOUNT", "provider": "hubspot", "resource": "contacts", "accountId": a.account_id,
               "fields": {"title": "'replicated'"}}),
    )
    .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    assert_ne!(before, json!("replicated"));
    let started = std::time::Instant::now();
    loop {
        if read_on_b().await == json!("replicated") {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "replica b did not see the override within 5 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    b.stop().await;
    a.gateway.stop().await;
    crate::store::drop_postgres_database(&url).await;
}

/// Merged providers are compiled once and reused; a change recompiles only the accounts it
/// takes part in.
#[tokio::test]
async fn a_change_recompiles_only_what_it_touches() {
    let t = TestGateway::start().await;
    let other = t.create_environment("umbrella").await;
    let other_account = t.connect_sandbox(&other, "hubspot").await;
    let env_override = |value: &str| {
        json!({"level": "ENVIRONMENT", "provider": "hubspot", "resource": "contacts",
               "fields": {"customFields.tag": format!("'{value}'")}})
    };
    let r = set(&t, &t.env_key, env_override("a1")).await;
    let env_a = r.body["data"]["setOverride"]["environmentId"]
        .as_str()
        .unwrap()
        .to_string();
    let r = set(&t, &other, env_override("b1")).await;
    let env_b = r.body["data"]["setOverride"]["environmentId"]
        .as_str()
        .unwrap()
        .to_string();
    let registry = &t.gateway.services.overrides;
    let effective = |env: &str, account: &str| registry.effective("hubspot", env, account).unwrap();
    let a1 = effective(&env_a, &t.account_id);
    let b1 = effective(&env_b, &other_account);
    assert!(
        std::sync::Arc::ptr_eq(&a1, &effective(&env_a, &t.account_id)),
        "compiled again without a change"
    );
    // Without any override the loaded file itself serves.
    let base = t.gateway.services.providers.get("hubspot").unwrap();
    assert!(std::sync::Arc::ptr_eq(
        base,
        &effective("no-such-env", "no-such-account")
    ));

    set(&t, &other, env_override("b2")).await;
    assert!(
        std::sync::Arc::ptr_eq(&a1, &effective(&env_a, &t.account_id)),
        "another environment's change recompiled this one"
    );
    assert!(!std::sync::Arc::ptr_eq(
        &b1,
        &effective(&env_b, &other_account)
    ));
    assert_eq!(
        contact(&t, &other, &other_account, "1001").await["customFields"]["tag"],
        json!("b2")
    );
    assert_eq!(
        contact(&t, &t.env_key, &t.account_id, "1001").await["customFields"]["tag"],
        json!("a1")
    );
}

/// The seed's three enterprise examples against the Salesforce sandbox: an environment adds
/// `Industry__c` to every contact, one org maps its `Phone_Primary__c` to the phones, and
/// the same org surfaces its custom object `Deal_Registration__c` through `customFields`.
#[tokio::test]
async fn the_seed_examples_industry_phone_primary_and_a_custom_object_on_salesforce() {
    let t = TestGateway::start().await;
    let org_a = t.connect_sandbox(&t.env_key, "salesforce").await;
    let org_b = t.connect_sandbox(&t.env_key, "salesforce").await;
    let ex = {
        let r = t
            .gql(
                Some(&t.env_key),
                EXPLAIN,
                json!({"a": org_a, "r": "contacts"}),
            )
            .await;
        r.body["data"]["explainMapping"].clone()
    };
    let soql = ex["request"]["list"]["query"]["q"]
        .as_str()
        .unwrap()
        .to_string();
    let with_industry = soql.replace(" FROM Contact", ", Industry__c FROM Contact");
    assert_ne!(with_industry, soql);

    // 1. Environment: Industry__c in every contact's customFields.
    let r = set(
        &t,
        &t.env_key,
        json!({"level": "ENVIRONMENT", "provider": "salesforce", "resource": "contacts",
               "fields": {"customFields.industry": "Industry__c"},
               "request": {"list": {"query": {"q": with_industry}}}}),
    )
    .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);

    // A mapping that would give a phone without a number is refused before it is stored.
    let r = set(
        &t,
        &t.env_key,
        json!({"level": "ACCOUNT", "provider": "salesforce", "resource": "contacts", "accountId": org_a,
               "fields": {"phones": "[{'number': Phone_Primary__c, 'type': 'WORK'}]"}}),
    )
    .await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("`phones`"),
        "{}",
        r.body
    );

    // 2 and 3. Org A: Phone_Primary__c is the phone, and its deal registrations show.
    let with_registrations = with_industry.replace(
        " FROM Contact",
        ", Phone_Primary__c, (SELECT Name, Status__c FROM Deal_Registrations__r) FROM Contact",
    );
    let r = set(
        &t,
        &t.env_key,
        json!({"level": "ACCOUNT", "provider": "salesforce", "resource": "contacts", "accountId": org_a,
               "fields": {
                   "phones": "Phone_Primary__c ? [{'number': Phone_Primary__c, 'type': 'WORK'}] : []",
                   "customFields.dealRegistrations": "[Deal_Registrations__r.records.{'name': Name, 'status': Status__c}]"
               },
               "request": {"list": {"query": {"q": with_registrations}}}}),
    )
    .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);

    let q = "query($a: ID!) { contacts(accountId: $a, first: 30) { edges { node { remoteId phones { number } customFields remoteData } } } }";
    let list = |account: String| {
        let t = &t;
        async move {
            let r = t.gql(Some(&t.env_key), q, json!({"a": account})).await;
            assert!(r.body["errors"].is_null(), "{}", r.body);
            r.body["data"]["contacts"]["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"].clone())
                .collect::<Vec<Value>>()
        }
    };
    let (a, b) = (list(org_a.clone()).await, list(org_b.clone()).await);
    let mut registrations = 0;
    for (na, nb) in a.iter().zip(&b) {
        assert_eq!(na["remoteId"], nb["remoteId"]);
        let raw = &na["remoteData"];
        // Environment level: both orgs.
        for n in [na, nb] {
            assert_eq!(
                n["customFields"]["industry"], n["remoteData"]["Industry__c"],
                "{n}"
            );
        }
        // Account level: org A only.
        let primary = raw["Phone_Primary__c"].clone();
        let want_a = if primary.is_null() {
            json!([])
        } else {
            json!([{"number": primary}])
        };
        assert_eq!(na["phones"], want_a, "{na}");
        let phone_b = &nb["remoteData"]["Phone"];
        let want_b = if phone_b.is_null() {
            json!([])
        } else {
            json!([{"number": phone_b}])
        };
        assert_eq!(nb["phones"], want_b, "{nb}");
        let regs = &raw["Deal_Registrations__r"];
        if regs.is_null() {
            assert_eq!(na["customFields"]["dealRegistrations"], json!([]), "{na}");
        } else {
            registrations += 1;
            let first = &na["customFields"]["dealRegistrations"][0];
            assert_eq!(first["name"], regs["records"][0]["Name"]);
            assert!(first["name"].as_str().unwrap().starts_with("DR-"));
        }
        assert!(
            nb["customFields"].get("dealRegistrations").is_none(),
            "{nb}"
        );
    }
    assert!(
        registrations >= 5,
        "the sandbox links registrations to every third contact"
    );
    assert!(a.iter().any(|n| n["customFields"]["industry"].is_string()));
    let primary = a
        .iter()
        .filter(|n| n["remoteData"]["Phone_Primary__c"].is_string())
        .count();
    assert!(
        primary > 10,
        "org A's contacts carry Phone_Primary__c: {primary}"
    );

    // Provenance, field by field.
    let ex = explain(&t, &t.env_key, &org_a).await;
    assert_eq!(source_of(&ex, "phones")["level"], "ACCOUNT");
    assert_eq!(
        source_of(&ex, "customFields.dealRegistrations")["level"],
        "ACCOUNT"
    );
    assert_eq!(
        source_of(&ex, "customFields.industry")["level"],
        "ENVIRONMENT"
    );
    assert_eq!(source_of(&ex, "firstName")["source"], "provider file");
    assert_eq!(ex["levels"], json!(["ENVIRONMENT v1", "ACCOUNT v1"]));
    let ex = explain(&t, &t.env_key, &org_b).await;
    assert_eq!(source_of(&ex, "phones")["source"], "provider file");
    assert_eq!(ex["levels"], json!(["ENVIRONMENT v1"]));
}

/// The write side is patched like the read side: an account whose org wants job titles
/// upper-cased on the way in gets a different request body, and only that account.
#[tokio::test]
async fn an_override_patches_the_request_body_of_writes() {
    let t = TestGateway::start().await;
    let other = t.connect_sandbox(&t.env_key, "hubspot").await;
    let r = set(
        &t,
        &t.env_key,
        json!({"level": "ACCOUNT", "provider": "hubspot", "resource": "contacts", "accountId": t.account_id,
               "request": {"create": {"body": "{ 'properties': { 'firstname': firstName, 'lastname': lastName, 'jobtitle': $uppercase(title) } }"}}}),
    )
    .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    let create = "mutation($a: ID!) { createContact(accountId: $a, input: {firstName: \"Body\", lastName: \"Patch\", title: \"Head of Ops\"}) { title } }";
    let r = t
        .gql(Some(&t.env_key), create, json!({"a": t.account_id}))
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    assert_eq!(r.body["data"]["createContact"]["title"], "HEAD OF OPS");
    let r = t.gql(Some(&t.env_key), create, json!({"a": other})).await;
    assert_eq!(
        r.body["data"]["createContact"]["title"], "Head of Ops",
        "{}",
        r.body
    );
    // A body that is not valid JSONata is refused with its place.
    let r = set(
        &t,
        &t.env_key,
        json!({"level": "ACCOUNT", "provider": "hubspot", "resource": "contacts", "accountId": t.account_id,
               "request": {"create": {"body": "{ 'properties': "}}}),
    )
    .await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("request `create/body`"),
        "{}",
        r.body
    );
}

const PREVIEW: &str = "mutation($i: OverrideInput!, $a: ID!) { previewOverride(input: $i, accountId: $a, first: 3) { accountId resource valid errors records { remoteId error warnings changes { field before after } } } }";

#[tokio::test]
async fn a_preview_shows_each_changed_field_on_the_accounts_records_and_stores_nothing() {
    let t = TestGateway::start().await;
    let input = json!({
        "level": "ACCOUNT", "accountId": t.account_id, "provider": "hubspot", "resource": "contacts",
        "fields": {"customFields.tier": "'gold'", "firstName": "properties.firstname ? $uppercase(properties.firstname)"}
    });
    let r = t
        .gql(
            Some(&t.env_key),
            PREVIEW,
            json!({"i": input, "a": t.account_id}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    let preview = &r.body["data"]["previewOverride"];
    assert_eq!(preview["valid"], true, "{preview}");
    let records = preview["records"].as_array().unwrap();
    assert_eq!(records.len(), 3, "{preview}");
    let mut uppercased = 0;
    for record in records {
        let changes = record["changes"].as_array().unwrap();
        let tier = changes
            .iter()
            .find(|c| c["field"] == "customFields.tier")
            .unwrap_or_else(|| panic!("{record}"));
        assert_eq!(
            (&tier["before"], &tier["after"]),
            (&Value::Null, &json!("gold"))
        );
        if let Some(first) = changes.iter().find(|c| c["field"] == "firstName") {
            let before = first["before"].as_str().unwrap();
            assert_eq!(first["after"], before.to_uppercase(), "{first}");
            uppercased += 1;
        }
        assert!(
            changes.iter().all(|c| c["before"] != c["after"]),
            "only changed fields: {record}"
        );
    }
    assert!(uppercased > 0, "{preview}");

    // Nothing was stored: no override, and the account maps as before.
    let r = t
        .gql(
            Some(&t.env_key),
            "query($a: ID!) { overrides(accountId: $a) { id } contacts(accountId: $a, first: 3) { edges { node { firstName customFields } } } }",
            json!({"a": t.account_id}),
        )
        .await;
    assert_eq!(r.body["data"]["overrides"], json!([]), "{}", r.body);
    for edge in r.body["data"]["contacts"]["edges"].as_array().unwrap() {
        assert!(edge["node"]["customFields"].get("tier").is_none(), "{edge}");
    }

    // One setOverride would refuse: said, with no record read.
    let bad = json!({"level": "ACCOUNT", "accountId": t.account_id, "provider": "hubspot", "resource": "contacts", "fields": {"firstName": "$$$("}});
    let r = t
        .gql(
            Some(&t.env_key),
            PREVIEW,
            json!({"i": bad, "a": t.account_id}),
        )
        .await;
    let preview = &r.body["data"]["previewOverride"];
    assert_eq!(preview["valid"], false, "{}", r.body);
    assert!(
        preview["errors"][0].as_str().unwrap().contains("firstName"),
        "{preview}"
    );
    assert_eq!(preview["records"], json!([]));

    // An override of another provider changes nothing of this account.
    let other = json!({"level": "ENVIRONMENT", "provider": "pipedrive", "resource": "contacts", "fields": {"customFields.x": "'y'"}});
    let r = t
        .gql(
            Some(&t.env_key),
            PREVIEW,
            json!({"i": other, "a": t.account_id}),
        )
        .await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
}

#[tokio::test]
async fn a_request_patch_can_append_to_the_providers_property_list() {
    let t = TestGateway::start().await;
    let r = set(
        &t,
        &t.env_key,
        json!({
            "level": "ENVIRONMENT", "provider": "hubspot", "resource": "contacts",
            "fields": {"customFields.owner": "properties.hubspot_owner_id", "customFields.stage": "properties.lifecyclestage"},
            "request": {"list": {"query": {"properties": {"$append": ["hubspot_owner_id", "lifecyclestage"]}}}}
        }),
    )
    .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    // The provider file's own list is kept, each name once, the new ones after it.
    let explained = explain(&t, &t.env_key, &t.account_id).await;
    let properties = explained["request"]["list"]["query"]["properties"]
        .as_str()
        .unwrap_or_else(|| panic!("{explained}"))
        .to_string();
    assert!(
        properties.starts_with("firstname,lastname,email"),
        "{properties}"
    );
    assert_eq!(
        properties.matches("hubspot_owner_id").count(),
        1,
        "{properties}"
    );
    assert!(properties.ends_with(",lifecyclestage"), "{properties}");
    let r = t
        .gql(
            Some(&t.env_key),
            "query($a: ID!) { contacts(accountId: $a, first: 20) { edges { node { firstName customFields } } } }",
            json!({"a": t.account_id}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    let edges = r.body["data"]["contacts"]["edges"].as_array().unwrap();
    assert!(
        edges
            .iter()
            .any(|e| e["node"]["customFields"]["stage"].is_string()),
        "the appended property (not in the file's list) was asked for and came back: {}",
        r.body
    );
    assert!(
        edges.iter().any(|e| e["node"]["firstName"].is_string()),
        "the file's own properties still come: {}",
        r.body
    );
}
