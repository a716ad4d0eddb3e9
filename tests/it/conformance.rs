//! One compliance suite for every provider file: each must page every record with no loss
//! or duplicate, fetch one, map a known record as its fixture says, and (where it declares
//! the operations) create, update and delete through GraphQL. A provider passes this or is
//! not done. Fixtures: `tests/fixtures/conformance/<provider>.json`.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::common::{TestGateway, repo_path};

/// The unified type behind a resource, and the fields the suite reads from it.
fn type_of(resource: &str) -> (&'static str, &'static str) {
    match resource {
        "contacts" => (
            "Contact",
            "remoteId firstName lastName title department emails { address type } phones { number type } addresses { street city region postalCode country type } lastActivityAt customFields",
        ),
        "companies" => (
            "Company",
            "remoteId name domain websites industry employees annualRevenue { amount currency } description phones { number type } addresses { street city region postalCode country type } lastActivityAt customFields",
        ),
        "deals" => (
            "Deal",
            "remoteId name description amount { amount currency } status stageId closeDate probability lastActivityAt",
        ),
        "users" => ("User", "remoteId firstName lastName email isActive"),
        "leads" => (
            "Lead",
            "remoteId firstName lastName title companyName emails { address type } phones { number type } addresses { street city region postalCode country type } source status convertedAt",
        ),
        "notes" => ("Note", "remoteId title content remoteCreatedAt"),
        "tasks" => (
            "Task",
            "remoteId subject content status dueDate completedAt",
        ),
        "pipelines" => (
            "Pipeline",
            "remoteId name stages { id name isClosed probability pipelineId }",
        ),
        other => panic!("no conformance query for resource {other}"),
    }
}

async fn all_ids(t: &TestGateway, account: &str, resource: &str, first: usize) -> Vec<String> {
    all_ids_filtered(t, account, resource, first, None).await
}

/// Every remote id of a listing, `first` at a time; `filter` is `(filter type, value)`.
async fn all_ids_filtered(
    t: &TestGateway,
    account: &str,
    resource: &str,
    first: usize,
    filter: Option<(&str, &Value)>,
) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    let (filter_decl, filter_arg) = match filter {
        Some((ty, _)) => (format!(", $flt: {ty}"), ", filter: $flt"),
        None => (String::new(), ""),
    };
    for _ in 0..1000 {
        let q = format!(
            "query($a: ID!, $f: Int, $c: String{filter_decl}) {{ {resource}(accountId: $a, first: $f, after: $c{filter_arg}) {{ edges {{ node {{ remoteId }} }} pageInfo {{ hasNextPage endCursor }} }} }}"
        );
        let r = t
            .gql(
                Some(&t.env_key),
                &q,
                json!({"a": account, "f": first, "c": after, "flt": filter.map(|f| f.1)}),
            )
            .await;
        if r.code() == Some("RATE_LIMITED") {
            // The gateway passes the vendor's 429 through; a polite client waits for the
            // reset it announces and asks again.
            assert_eq!(r.status, 429);
            let wait = r.headers["retry-after"]
                .to_str()
                .unwrap()
                .parse::<u64>()
                .unwrap();
            assert!(wait <= 10, "retry-after {wait}s");
            tokio::time::sleep(std::time::Duration::from_secs(wait.max(1))).await;
            continue;
        }
        assert!(
            r.body["errors"].is_null(),
            "{resource} first={first}: {}",
            r.body
        );
        let conn = &r.body["data"][resource];
        let edges = conn["edges"].as_array().unwrap();
        ids.extend(
            edges
                .iter()
                .map(|e| e["node"]["remoteId"].as_str().unwrap().to_string()),
        );
        if !conn["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            return ids;
        }
        assert_eq!(
            edges.len(),
            first,
            "{resource}: a page before the last must be full"
        );
        after = Some(conn["pageInfo"]["endCursor"].as_str().unwrap().to_string());
    }
    panic!("{resource}: pagination did not end");
}

/// Every key of `expected` has the same value in `actual`.
fn assert_subset(actual: &Value, expected: &Value, context: &str) {
    for (k, v) in expected.as_object().unwrap() {
        assert_eq!(&actual[k], v, "{context}: field `{k}` in {actual}");
    }
}

async fn check_provider(provider: &str) {
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_path(&format!(
            "tests/fixtures/conformance/{provider}.json"
        )))
        .unwrap(),
    )
    .unwrap();
    let t = TestGateway::start().await;
    let account = if provider == "hubspot" {
        t.account_id.clone()
    } else {
        t.connect_sandbox(&t.env_key.clone(), provider).await
    };
    // A vendor whose whole budget is smaller than the suite (Copper: 180 requests a
    // minute, and a 429 that says nothing of when to come back) gets a larger window at
    // the sandbox; its own tests keep the real one.
    if let Some(limit) = fixture.get("sandboxRateLimit") {
        let mut body = limit.clone();
        body["provider"] = json!(provider);
        let resp = t
            .http
            .post(format!("{}/_control/ratelimit", t.sandbox.base_url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success());
    }
    for (resource, spec) in fixture["resources"].as_object().unwrap() {
        let (type_name, fields) = type_of(resource);
        let ctx = format!("{provider}/{resource}");
        // Every record exactly once, whatever the page size (7 divides none of the totals;
        // 250 is above several vendors' page caps).
        let small = all_ids(&t, &account, resource, 7).await;
        let unique: HashSet<&String> = small.iter().collect();
        assert_eq!(
            unique.len(),
            small.len(),
            "{ctx}: a record was returned twice"
        );
        let min = spec
            .get("minRecords")
            .and_then(Value::as_u64)
            .unwrap_or(250) as usize;
        assert!(
            small.len() >= min,
            "{ctx}: the sandbox must hold at least {min} records, got {}",
            small.len()
        );
        let large = all_ids(&t, &account, resource, 250).await;
        assert_eq!(
            large, small,
            "{ctx}: the same listing at another page size differs"
        );

        // A known record, field by field.
        let known = &spec["known"];
        let single = format!("{}{}", &type_name[..1].to_lowercase(), &type_name[1..]);
        let q = format!(
            "query($a: ID!, $r: ID!) {{ {single}(accountId: $a, remoteId: $r) {{ {fields} }} }}"
        );
        let r = t
            .gql(
                Some(&t.env_key),
                &q,
                json!({"a": account, "r": known["remoteId"]}),
            )
            .await;
        assert!(r.body["errors"].is_null(), "{ctx}: {}", r.body);
        assert_subset(&r.body["data"][&single], &known["expect"], &ctx);

        // Filters: each case lists exactly the records the vendor's own search returns,
        // at two page sizes; a filter the provider cannot translate is refused by name.
        for case in spec["filters"].as_array().into_iter().flatten() {
            let filter_type = format!("{type_name}Filter");
            let mut want: Vec<String> = case["expect"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect();
            want.sort();
            for first in [2, 250] {
                let mut got = all_ids_filtered(
                    &t,
                    &account,
                    resource,
                    first,
                    Some((&filter_type, &case["filter"])),
                )
                .await;
                got.sort();
                assert_eq!(got, want, "{ctx} filter {} first={first}", case["filter"]);
            }
        }
        for name in spec["unsupportedFilters"].as_array().into_iter().flatten() {
            let name = name.as_str().unwrap();
            let q = format!(
                "query($a: ID!, $flt: {type_name}Filter) {{ {resource}(accountId: $a, first: 1, filter: $flt) {{ edges {{ node {{ remoteId }} }} }} }}"
            );
            let value = if name.ends_with("Since") {
                json!("2020-01-01T00:00:00Z")
            } else {
                json!("x")
            };
            let r = t
                .gql(
                    Some(&t.env_key),
                    &q,
                    json!({"a": account, "flt": {name: value}}),
                )
                .await;
            assert_eq!(
                r.code(),
                Some("BAD_USER_INPUT"),
                "{ctx} filter {name}: {}",
                r.body
            );
            assert!(
                r.body["errors"][0]["message"]
                    .as_str()
                    .unwrap()
                    .contains(name),
                "{ctx}: the refusal names `{name}`: {}",
                r.body
            );
        }

        // Writes, where the fixture says the provider declares them.
        let Some(create) = spec.get("create") else {
            continue;
        };
        let q = format!(
            "mutation($a: ID!, $i: {type_name}Input!) {{ create{type_name}(accountId: $a, input: $i) {{ id {fields} }} }}"
        );
        let r = t
            .gql(Some(&t.env_key), &q, json!({"a": account, "i": create}))
            .await;
        assert!(r.body["errors"].is_null(), "{ctx} create: {}", r.body);
        let created = &r.body["data"][format!("create{type_name}")];
        let id = created["id"].as_str().unwrap().to_string();
        for (k, v) in create.as_object().unwrap() {
            // Only what the query reads back (link ids are inputs, not outputs).
            if k != "emails" && fields.split_whitespace().any(|f| f == k) {
                assert_eq!(&created[k], v, "{ctx} create: `{k}` in {created}");
            }
        }
        let q = format!(
            "mutation($id: ID!, $i: {type_name}Input!) {{ update{type_name}(id: $id, input: $i) {{ id {fields} }} }}"
        );
        let r = t
            .gql(Some(&t.env_key), &q, json!({"id": id, "i": spec["update"]}))
            .await;
        assert!(r.body["errors"].is_null(), "{ctx} update: {}", r.body);
        assert_subset(
            &r.body["data"][format!("update{type_name}")],
            &spec["expectAfterUpdate"],
            &format!("{ctx} update"),
        );
        let q = format!("query($id: ID!) {{ {single}(id: $id) {{ {fields} }} }}");
        let r = t.gql(Some(&t.env_key), &q, json!({"id": id})).await;
        assert_subset(
            &r.body["data"][&single],
            &spec["expectAfterUpdate"],
            &format!("{ctx} read after update"),
        );
        let q = format!("mutation($id: ID!) {{ delete{type_name}(id: $id) }}");
        let r = t.gql(Some(&t.env_key), &q, json!({"id": id})).await;
        assert_eq!(
            r.body["data"][format!("delete{type_name}")],
            json!(id),
            "{ctx} delete: {}",
            r.body
        );
        let q = format!("query($id: ID!) {{ {single}(id: $id) {{ remoteId }} }}");
        let r = t.gql(Some(&t.env_key), &q, json!({"id": id})).await;
        assert!(
            r.body["data"][&single].is_null(),
            "{ctx}: the deleted record is still readable: {}",
            r.body
        );

        // Batch read: the known record and the deleted one in one call; only the first exists.
        let handle = t.sandbox_handle(provider, &account);
        if handle.provider.resources[resource.as_str()]
            .batch_get
            .is_none()
        {
            continue;
        }
        let deleted = tessera::ids::GlobalId::decode(&id).unwrap().remote_id;
        let known_id = known["remoteId"].as_str().unwrap().to_string();
        let got = t
            .gateway
            .services
            .engine
            .batch_get(&handle, resource, &[known_id.clone(), deleted])
            .await
            .unwrap();
        let got: Vec<&str> = got.iter().map(|r| r.remote_id.as_str()).collect();
        assert_eq!(got, vec![known_id.as_str()], "{ctx} batch_get");
    }
}

#[tokio::test]
async fn hubspot_conforms() {
    check_provider("hubspot").await;
}

#[tokio::test]
async fn batch_get_returns_known_ids_and_skips_unknown_ones() {
    let t = TestGateway::start().await;
    let services = t.gateway.services.clone();
    let demo = t
        .sandbox
        .demo_accounts()
        .into_iter()
        .find(|a| a.provider == "hubspot")
        .unwrap();
    let provider = services.providers.get("hubspot").unwrap().clone();
    let account = tessera::engine::AccountHandle {
        id: t.account_id.clone(),
        base_url: provider
            .resolve_base_url(&demo.settings, &services.upstreams)
            .unwrap(),
        provider,
        token: tessera::secret::Secret::new(demo.credentials["accessToken"].as_str().unwrap()),
        settings: demo.settings.clone(),
        spend: Default::default(),
    };
    let ids: Vec<String> = ["1001", "1002", "999999", "1001"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let records = services
        .engine
        .batch_get(&account, "contacts", &ids)
        .await
        .unwrap();
    let mut got: Vec<&str> = records.iter().map(|r| r.remote_id.as_str()).collect();
    got.sort();
    got.dedup();
    assert_eq!(got, vec!["1001", "1002"]);
    assert_eq!(
        records
            .iter()
            .find(|r| r.remote_id == "1001")
            .unwrap()
            .mapped
            .as_ref()
            .unwrap()["firstName"],
        "Ada"
    );
}

#[tokio::test]
async fn salesforce_conforms() {
    check_provider("salesforce").await;
}

#[tokio::test]
async fn zoho_conforms() {
    check_provider("zoho").await;
}

#[tokio::test]
async fn pipedrive_conforms() {
    check_provider("pipedrive").await;
}

#[tokio::test]
async fn msgraph_conforms() {
    check_provider("msgraph").await;
}

#[tokio::test]
async fn google_conforms() {
    check_provider("google").await;
}

#[tokio::test]
async fn attio_conforms() {
    check_provider("attio").await;
}

#[tokio::test]
async fn close_conforms() {
    check_provider("close").await;
}

#[tokio::test]
async fn copper_conforms() {
    check_provider("copper").await;
}

#[test]
fn every_provider_file_has_a_conformance_fixture_and_test() {
    let source = std::fs::read_to_string(repo_path("tests/it/conformance.rs")).unwrap();
    for entry in std::fs::read_dir(repo_path("providers")).unwrap() {
        let name = entry.unwrap().file_name().to_str().unwrap().to_string();
        let Some(provider) = name
            .strip_suffix(".json")
            .filter(|n| !n.ends_with(".schema"))
        else {
            continue;
        };
        assert!(
            repo_path(&format!("tests/fixtures/conformance/{provider}.json")).exists(),
            "{provider} has no conformance fixture"
        );
        assert!(
            source.contains(&format!("check_provider(\"{provider}\")")),
            "{provider} has no conformance test"
        );
    }
}

#[tokio::test]
async fn salesforce_limit_exceeded_403_is_passed_through_as_rate_limited() {
    let t = TestGateway::start().await;
    let account = t.connect_sandbox(&t.env_key.clone(), "salesforce").await;
    let resp = t
        .http
        .post(format!("{}/_control/ratelimit", t.sandbox.base_url()))
        .json(&json!({"provider": "salesforce", "max": 1, "intervalMs": 86_400_000}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let q = "query($a: ID!) { contacts(accountId: $a, first: 1) { edges { cursor } } }";
    let ok = t.gql(Some(&t.env_key), q, json!({"a": account})).await;
    assert!(ok.body["errors"].is_null(), "{}", ok.body);
    let r = t.gql(Some(&t.env_key), q, json!({"a": account})).await;
    assert_eq!(r.code(), Some("RATE_LIMITED"), "{}", r.body);
    assert_eq!(r.status, 429);
    // Salesforce says how much of the daily budget is used, not when it frees up: the
    // caller is asked to look again within a minute, not to wait out the 24-hour window.
    let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "retry-after {wait}");
}

#[tokio::test]
async fn settings_are_checked_against_the_providers_allowed_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = tessera::app::Gateway::build(tessera::app::GatewayConfig {
        database_url: format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display()),
        providers_dir: repo_path("providers"),
        schema_dir: repo_path("schema"),
        upstreams: tessera::upstreams::AllowList::none(),
        secret_key: tessera::credentials::SecretKey::generate(),
        playground_key: None,
        introspection: true,
        refresh_every: None,
        public_url: None,
        probe_interval: None,
        watch_interval: None,
    })
    .await
    .unwrap();
    gateway.ensure_environment("e", "env-key").await.unwrap();
    let running = tessera::app::RunningGateway::start(gateway, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let connect = |provider: &str, settings: Value| {
        let body = json!({
            "query": "mutation($p: String!, $s: JSON) { connectAccount(provider: $p, credentials: {accessToken: \"t\"}, settings: $s) { id } }",
            "variables": {"p": provider, "s": settings}
        });
        let req = http
            .post(format!("{}/graphql", running.url()))
            .bearer_auth("env-key")
            .json(&body);
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let r = connect(
        "salesforce",
        json!({"instanceUrl": "https://attacker.example"}),
    )
    .await;
    assert_eq!(
        r["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{r}"
    );
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("allowed hosts"),
        "{r}"
    );
    let r = connect(
        "salesforce",
        json!({"instanceUrl": "http://acme.my.salesforce.com"}),
    )
    .await;
    assert_eq!(
        r["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "plain http is refused: {r}"
    );
    let r = connect(
        "salesforce",
        json!({"instanceUrl": "https://acme.my.salesforce.com"}),
    )
    .await;
    assert!(r["errors"].is_null(), "{r}");
    let r = connect("pipedrive", json!({})).await;
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("settings.apiDomain is required"),
        "{r}"
    );
    let r = connect("zoho", json!({})).await;
    assert!(r["errors"].is_null(), "zoho's apiDomain has a default: {r}");
    running.stop().await;
}

#[tokio::test]
async fn a_batch_read_can_be_a_soql_in_query_built_by_the_mapping() {
    let dir = tempfile::tempdir().unwrap();
    let providers = dir.path().join("providers");
    crate::common::copy_dir(&repo_path("providers"), &providers);
    let path = providers.join("salesforce.json");
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    doc["resources"]["contacts"]["operations"]["batchGet"] = json!({
        "path": "/query",
        "query": {"q": "'SELECT Id, FirstName, LastName, Email, AccountId FROM Contact WHERE Id IN (' & $join($ids.(\"'\" & $replace($, \"'\", \"\\\\'\") & \"'\"), ', ') & ')'"},
        "recordsPath": "/records",
        "maxIds": 200
    });
    std::fs::write(&path, doc.to_string()).unwrap();
    let t = TestGateway::start_with(&repo_path("schema"), &providers).await;
    let account = t.connect_sandbox(&t.env_key.clone(), "salesforce").await;
    let handle = t.sandbox_handle("salesforce", &account);
    let ids: Vec<String> = [
        "003Sb00001CRUFUIA5",
        "003Sb00001CRWJDIA5",
        "003Sb00001ZZZZZIA5",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let got = t
        .gateway
        .services
        .engine
        .batch_get(&handle, "contacts", &ids)
        .await
        .unwrap();
    let mut names: Vec<String> = got
        .iter()
        .map(|r| {
            r.mapped.as_ref().unwrap()["firstName"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    names.sort();
    assert_eq!(names, vec!["Mateo", "Olivia"]);
    let stats = t.sandbox_stats().await;
    assert_eq!(
        stats["byRoute"]["GET /salesforce/services/data/{version}/query"], 1,
        "one SOQL query: {stats}"
    );
}

#[tokio::test]
async fn filters_are_translated_by_the_provider_or_refused_by_name() {
    let t = TestGateway::start().await;
    let sf = t.connect_sandbox(&t.env_key.clone(), "salesforce").await;
    // Ground truth straight from the sandbox.
    let soql = |q: &str| {
        let url = format!(
            "{}/salesforce/services/data/v62.0/query?q={}",
            t.sandbox.base_url(),
            url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
        );
        let http = t.http.clone();
        async move {
            let r: Value = http
                .get(url)
                .bearer_auth(tessera_sandbox::SALESFORCE_DEMO_TOKEN)
                .header("Sforce-Query-Options", "batchSize=2000")
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            r["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["Id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    let since = "2024-01-01T00:00:00Z";
    let expected = soql(&format!(
        "SELECT Id FROM Contact WHERE LastModifiedDate > {since} ORDER BY Id"
    ))
    .await;
    assert!(
        !expected.is_empty() && expected.len() < 260,
        "the filter must select a proper subset: {}",
        expected.len()
    );
    let list = "query($a: ID!, $f: ContactFilter, $c: String) { contacts(accountId: $a, first: 100, filter: $f, after: $c) { edges { node { remoteId email: emails { address } } } pageInfo { hasNextPage endCursor } } }";
    let mut got = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let r = t
            .gql(
                Some(&t.env_key),
                list,
                json!({"a": sf, "f": {"updatedSince": since}, "c": after}),
            )
            .await;
        assert!(r.body["errors"].is_null(), "{}", r.body);
        let conn = &r.body["data"]["contacts"];
        got.extend(
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
        // A cursor continues only the listing it came from.
        let other = t
            .gql(
                Some(&t.env_key),
                list,
                json!({"a": sf, "f": {"updatedSince": "2020-01-01T00:00:00Z"}, "c": after}),
            )
            .await;
        assert_eq!(other.code(), Some("BAD_USER_INPUT"), "{}", other.body);
    }
    assert_eq!(
        got, expected,
        "updatedSince returns exactly the records the vendor's own filter does"
    );

    let r = t
        .gql(
            Some(&t.env_key),
            list,
            json!({"a": sf, "f": {"email": "olivia.fischer@northwind-technologies.example"}}),
        )
        .await;
    let edges = r.body["data"]["contacts"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 1, "{}", r.body);
    assert_eq!(edges[0]["node"]["remoteId"], "003Sb00001CRUFUIA5");
    // A quote in the value cannot change the vendor's query.
    let r = t
        .gql(
            Some(&t.env_key),
            list,
            json!({"a": sf, "f": {"email": "x' OR Email != 'y"}}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    assert_eq!(
        r.body["data"]["contacts"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        0
    );

    // Unsupported filters are refused by name, never ignored: Google's people listing
    // declares none.
    let google = t.connect_sandbox(&t.env_key.clone(), "google").await;
    let r = t
        .gql(
            Some(&t.env_key),
            list,
            json!({"a": google, "f": {"updatedSince": since}}),
        )
        .await;
    assert_eq!(
        r.code(),
        Some("BAD_USER_INPUT"),
        "Google's file declares no filters: {}",
        r.body
    );
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("`updatedSince`"),
        "{}",
        r.body
    );
    // Not a timestamp: refused before any provider sees it.
    let r = t
        .gql(
            Some(&t.env_key),
            list,
            json!({"a": sf, "f": {"updatedSince": "2024 OR 1=1"}}),
        )
        .await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
}
