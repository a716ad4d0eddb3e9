//! The vendor sandbox over real HTTP: each test spawns its own server on a free loopback
//! port, so tests never share counters, tokens or faults.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use tessera_sandbox::{GOOGLE_DEMO_TOKEN, MSGRAPH_DEMO_TOKEN, PIPEDRIVE_DEMO_TOKEN};
use tessera_sandbox::{HUBSPOT_DEMO_TOKEN, Sandbox, sample_records};

struct Env {
    sandbox: Sandbox,
    http: Client,
}

struct Reply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> Option<i64> {
        self.headers.get(name)?.to_str().ok()?.parse().ok()
    }
}

async fn env() -> Env {
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    Env {
        sandbox: Sandbox::spawn(listen).await.unwrap(),
        http: Client::new(),
    }
}

impl Env {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.base_url())
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        self.send_raw(method, &self.url(path), token, body.map(|b| b.to_string()))
            .await
    }

    async fn send_raw(
        &self,
        method: Method,
        url: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> Reply {
        let mut req = self.http.request(method, url);
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!("non-JSON body ({e}): {}", String::from_utf8_lossy(&bytes))
            })
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn hubspot(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.send(
            method,
            &format!("/hubspot{path}"),
            Some(HUBSPOT_DEMO_TOKEN),
            body,
        )
        .await
    }

    async fn control(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.send(method, &format!("/_control{path}"), None, body)
            .await
    }

    /// Follows `paging.next.link` from `first_path` to the end, returning every id seen
    /// (with repeats) and the number of pages.
    async fn page_all(&self, first_path: &str) -> (Vec<String>, usize) {
        let mut ids = Vec::new();
        let mut pages = 0;
        let mut url = self.url(first_path);
        loop {
            let reply = self
                .send_raw(Method::GET, &url, Some(HUBSPOT_DEMO_TOKEN), None)
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            pages += 1;
            assert!(pages < 100, "paging did not terminate");
            let results = reply.body["results"].as_array().unwrap();
            ids.extend(results.iter().map(|r| r["id"].as_str().unwrap().to_owned()));
            let Some(paging) = reply.body.get("paging") else {
                break;
            };
            let link = paging["next"]["link"].as_str().unwrap();
            let after = paging["next"]["after"].as_str().unwrap();
            assert!(
                link.starts_with("http://127.0.0.1:"),
                "link must be absolute: {link}"
            );
            assert!(
                link.contains(&format!("after={after}")),
                "{link} vs {after}"
            );
            url = link.to_owned();
        }
        (ids, pages)
    }
}

fn assert_hubspot_error(reply: &Reply, status: StatusCode, category: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.body["status"], "error", "{}", reply.body);
    assert_eq!(reply.body["category"], category, "{}", reply.body);
    assert!(
        reply.body["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    let correlation = reply.body["correlationId"].as_str().unwrap();
    assert_eq!(
        correlation.len(),
        36,
        "uuid-shaped correlationId: {correlation}"
    );
}

#[tokio::test]
async fn paging_returns_every_contact_once_for_any_page_size() {
    let env = env().await;
    let mut previous: Option<Vec<String>> = None;
    for limit in [100, 7] {
        let (ids, pages) = env
            .page_all(&format!("/hubspot/crm/v3/objects/contacts?limit={limit}"))
            .await;
        assert!(ids.len() >= 260, "only {} contacts", ids.len());
        let unique: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "duplicate ids with limit={limit}");
        assert_eq!(pages, ids.len().div_ceil(limit));
        let numeric: Vec<u64> = ids.iter().map(|i| i.parse().unwrap()).collect();
        assert!(
            numeric.windows(2).all(|w| w[0] < w[1]),
            "stable order by id"
        );
        if let Some(prev) = &previous {
            assert_eq!(prev, &ids);
        }
        previous = Some(ids);
    }
    // The date-versioned twin serves the same data set.
    let (dated, _) = env
        .page_all("/hubspot/crm/objects/2026-03/contacts?limit=100")
        .await;
    assert_eq!(Some(dated), previous);
}

#[tokio::test]
async fn list_records_have_hubspot_shape() {
    let env = env().await;
    let reply = env
        .hubspot(Method::GET, "/crm/v3/objects/contacts", None)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let results = reply.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 10, "default limit is 10");
    let first = &results[0];
    let props = first["properties"].as_object().unwrap();
    let names: BTreeSet<&str> = props.keys().map(String::as_str).collect();
    let default: BTreeSet<&str> = [
        "createdate",
        "email",
        "firstname",
        "hs_object_id",
        "lastmodifieddate",
        "lastname",
    ]
    .into();
    assert_eq!(names, default);
    assert!(
        props.values().all(Value::is_string),
        "HubSpot sends strings: {first}"
    );
    assert_eq!(props["hs_object_id"], first["id"]);
    assert_eq!(first["archived"], false);
    assert_eq!(first["createdAt"], props["createdate"]);
    assert_eq!(first["updatedAt"], props["lastmodifieddate"]);
    let created = first["createdAt"].as_str().unwrap();
    assert!(
        created.len() == 24 && created.ends_with('Z') && created.as_bytes()[19] == b'.',
        "millisecond ISO-8601: {created}"
    );
    // The cursor is opaque base64, handed out percent-encoded as HubSpot does.
    let after = reply.body["paging"]["next"]["after"].as_str().unwrap();
    assert!(after.ends_with("%3D"), "{after}");

    // Explicit properties: requested ones that exist plus the always-returned ones.
    let reply = env
        .hubspot(
            Method::GET,
            "/crm/v3/objects/contacts?limit=100&properties=email,customer_tier,no_such_prop",
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let results = reply.body["results"].as_array().unwrap();
    let names: BTreeSet<&str> = results[0]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let expected: BTreeSet<&str> = [
        "createdate",
        "customer_tier",
        "email",
        "hs_object_id",
        "lastmodifieddate",
    ]
    .into();
    assert_eq!(names, expected);
    let tiers: BTreeSet<Option<&str>> = results
        .iter()
        .map(|r| r["properties"]["customer_tier"].as_str())
        .collect();
    assert_eq!(
        tiers,
        [None, Some("bronze"), Some("gold"), Some("silver")].into()
    );

    let companies = env
        .hubspot(Method::GET, "/crm/v3/objects/companies?limit=100", None)
        .await;
    assert_eq!(companies.status, StatusCode::OK);
    let list = companies.body["results"].as_array().unwrap();
    assert_eq!(list.len(), 100);
    assert!(
        companies.body["paging"]["next"]["after"].is_string(),
        "more than 100 companies"
    );
    let names: BTreeSet<&str> = list[0]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        names,
        [
            "createdate",
            "domain",
            "hs_lastmodifieddate",
            "hs_object_id",
            "name"
        ]
        .into()
    );
}

#[tokio::test]
async fn seeded_edge_cases_are_present() {
    let env = env().await;
    let no_email = env
        .hubspot(
            Method::GET,
            "/crm/v3/objects/contacts/1013?properties=email,firstname",
            None,
        )
        .await;
    assert_eq!(no_email.status, StatusCode::OK);
    assert_eq!(no_email.body["properties"]["email"], Value::Null);
    let irish = env
        .hubspot(Method::GET, "/crm/v3/objects/contacts/1042", None)
        .await;
    assert_eq!(irish.body["properties"]["firstname"], "Siobhán");
    assert_eq!(irish.body["properties"]["lastname"], "O'Brien");

    let contacts = sample_records("hubspot", "contacts").unwrap();
    assert!(contacts.iter().any(|c| c["properties"]["email"].is_null()));
    assert!(
        contacts
            .iter()
            .any(|c| c["properties"]["associatedcompanyid"].is_null())
    );
    assert!(
        contacts
            .iter()
            .any(|c| c["properties"]["customer_tier"].is_null())
    );
    assert!(
        contacts
            .iter()
            .all(|c| c["properties"]["hs_object_id"] == c["id"])
    );
    assert!(!sample_records("hubspot", "companies").unwrap().is_empty());
    assert!(sample_records("hubspot", "tickets").is_none());
    assert!(sample_records("nope", "contacts").is_none());
}

#[tokio::test]
async fn invalid_paging_parameters_are_validation_errors() {
    let env = env().await;
    for query in [
        "limit=101",
        "limit=0",
        "limit=ten",
        "after=%21%21not-a-cursor",
    ] {
        let reply = env
            .hubspot(
                Method::GET,
                &format!("/crm/v3/objects/contacts?{query}"),
                None,
            )
            .await;
        assert_hubspot_error(&reply, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    }
    let ok = env
        .hubspot(Method::GET, "/crm/v3/objects/contacts?limit=100", None)
        .await;
    assert_eq!(ok.body["results"].as_array().unwrap().len(), 100);
}

#[tokio::test]
async fn bad_credentials_get_hubspot_401s() {
    let env = env().await;
    let path = "/hubspot/crm/v3/objects/contacts";
    for token in [None, Some("wrong-token")] {
        let reply = env.send(Method::GET, path, token, None).await;
        assert_hubspot_error(&reply, StatusCode::UNAUTHORIZED, "INVALID_AUTHENTICATION");
        assert!(
            reply.body["message"]
                .as_str()
                .unwrap()
                .starts_with("Authentication credentials not found.")
        );
    }

    // Registered tokens work until revoked; expired ones say so.
    let made = env
        .control(
            Method::POST,
            "/tokens",
            Some(json!({"provider": "hubspot", "token": "fresh"})),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED);
    assert_eq!(
        env.send(Method::GET, path, Some("fresh"), None)
            .await
            .status,
        StatusCode::OK
    );
    let revoked = env.control(Method::DELETE, "/tokens/fresh", None).await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    let reply = env.send(Method::GET, path, Some("fresh"), None).await;
    assert_hubspot_error(&reply, StatusCode::UNAUTHORIZED, "INVALID_AUTHENTICATION");

    env.control(
        Method::POST,
        "/tokens",
        Some(json!({"provider": "hubspot", "token": "stale", "expiresInSeconds": -30})),
    )
    .await;
    let reply = env.send(Method::GET, path, Some("stale"), None).await;
    assert_hubspot_error(&reply, StatusCode::UNAUTHORIZED, "EXPIRED_AUTHENTICATION");
    let message = reply.body["message"].as_str().unwrap();
    assert!(
        message.starts_with("The OAuth token used to make this call expired ")
            && message.ends_with(" second(s) ago."),
        "{message}"
    );
}

#[tokio::test]
async fn get_unknown_id_is_object_not_found() {
    let env = env().await;
    let known = env
        .hubspot(Method::GET, "/crm/v3/objects/contacts/1001", None)
        .await;
    assert_eq!(known.status, StatusCode::OK);
    assert_eq!(known.body["id"], "1001");
    for id in ["999999", "abc"] {
        let reply = env
            .hubspot(Method::GET, &format!("/crm/v3/objects/contacts/{id}"), None)
            .await;
        assert_hubspot_error(&reply, StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND");
        assert_eq!(reply.body["context"]["id"], json!([id]));
        assert_eq!(
            reply.body["message"],
            "Object not found.  objectId are usually numeric."
        );
    }
}

#[tokio::test]
async fn batch_read_reports_missing_ids_with_207() {
    let env = env().await;
    let path = "/crm/v3/objects/contacts/batch/read";
    let all_found = env
        .hubspot(
            Method::POST,
            path,
            Some(json!({"properties": ["email"], "inputs": [{"id": "1001"}, {"id": "1002"}]})),
        )
        .await;
    assert_eq!(all_found.status, StatusCode::OK, "{}", all_found.body);
    assert_eq!(all_found.body["status"], "COMPLETE");
    assert_eq!(all_found.body["results"].as_array().unwrap().len(), 2);
    assert!(all_found.body.get("errors").is_none());

    let partial = env
        .hubspot(
            Method::POST,
            path,
            Some(json!({"properties": ["email"], "inputs": [{"id": "1001"}, {"id": "424242"}]})),
        )
        .await;
    assert_eq!(partial.status, StatusCode::MULTI_STATUS, "{}", partial.body);
    assert_eq!(partial.body["numErrors"], 1);
    let error = &partial.body["errors"][0];
    assert_eq!(error["category"], "OBJECT_NOT_FOUND");
    assert_eq!(error["context"]["ids"], json!(["424242"]));
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("CONTACT objects")
    );
    let results = partial.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["id"], "1001");
    assert!(partial.body["startedAt"].is_string() && partial.body["completedAt"].is_string());

    let too_many: Vec<Value> = (0..101)
        .map(|i| json!({"id": (1001 + i).to_string()}))
        .collect();
    let reply = env
        .hubspot(Method::POST, path, Some(json!({"inputs": too_many})))
        .await;
    assert_hubspot_error(&reply, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
}

#[tokio::test]
async fn create_update_delete_round_trip() {
    let env = env().await;
    let created = env
        .hubspot(
            Method::POST,
            "/crm/v3/objects/contacts",
            Some(json!({"properties": {"email": "grace@navy.example", "firstname": "Grace", "customer_tier": "gold"}})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert!(id.parse::<u64>().unwrap() > 1260, "new id {id}");
    assert_eq!(created.body["properties"]["hs_object_id"], id.as_str());
    assert_eq!(created.body["properties"]["firstname"], "Grace");
    let item = format!("/crm/v3/objects/contacts/{id}");

    let updated = env
        .hubspot(
            Method::PATCH,
            &item,
            Some(json!({"properties": {"lastname": "Hopper"}})),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    let fetched = env
        .hubspot(
            Method::GET,
            &format!("{item}?properties=lastname,firstname,customer_tier"),
            None,
        )
        .await;
    assert_eq!(fetched.body["properties"]["lastname"], "Hopper");
    assert_eq!(fetched.body["properties"]["firstname"], "Grace");
    assert_eq!(fetched.body["properties"]["customer_tier"], "gold");
    assert!(fetched.body["updatedAt"].as_str() >= created.body["updatedAt"].as_str());

    // The new record shows up at the end of the list.
    let (ids, _) = env
        .page_all("/hubspot/crm/v3/objects/contacts?limit=100")
        .await;
    assert_eq!(ids.last(), Some(&id));

    // Writes are validated the HubSpot way.
    let unknown = env
        .hubspot(
            Method::PATCH,
            &item,
            Some(json!({"properties": {"shoe_size": "44"}})),
        )
        .await;
    assert_hubspot_error(&unknown, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert!(
        unknown.body["message"]
            .as_str()
            .unwrap()
            .contains("PROPERTY_DOESNT_EXIST")
    );
    let duplicate = env
        .hubspot(
            Method::POST,
            "/crm/v3/objects/contacts",
            Some(json!({"properties": {"email": "GRACE@navy.example"}})),
        )
        .await;
    assert_hubspot_error(&duplicate, StatusCode::CONFLICT, "CONFLICT");
    for bad in ["{not json", "", "[1,2]"] {
        let reply = env
            .send_raw(
                Method::POST,
                &env.url("/hubspot/crm/v3/objects/contacts"),
                Some(HUBSPOT_DEMO_TOKEN),
                Some(bad.to_owned()),
            )
            .await;
        assert_hubspot_error(&reply, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    }

    let deleted = env.hubspot(Method::DELETE, &item, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = env.hubspot(Method::GET, &item, None).await;
    assert_hubspot_error(&gone, StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND");
    let archived = env
        .hubspot(Method::GET, &format!("{item}?archived=true"), None)
        .await;
    assert_eq!(archived.body["archived"], true);

    // Reset restores the seed: the created record disappears, a deleted seed returns.
    env.hubspot(Method::DELETE, "/crm/v3/objects/contacts/1001", None)
        .await;
    assert_eq!(
        env.control(Method::POST, "/reset", None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        env.hubspot(Method::GET, &item, None).await.status,
        StatusCode::NOT_FOUND
    );
    let restored = env
        .hubspot(Method::GET, "/crm/v3/objects/contacts/1001", None)
        .await;
    assert_eq!(restored.status, StatusCode::OK);
}

#[tokio::test]
async fn stats_count_vendor_requests_by_route_template() {
    let env = env().await;
    env.hubspot(Method::GET, "/crm/v3/objects/contacts", None)
        .await;
    env.hubspot(Method::GET, "/crm/v3/objects/contacts?limit=5", None)
        .await;
    env.hubspot(Method::GET, "/crm/v3/objects/contacts/1001", None)
        .await;
    env.hubspot(Method::GET, "/crm/v3/objects/contacts/1002", None)
        .await;
    env.hubspot(Method::GET, "/crm/objects/2026-03/companies", None)
        .await;
    env.send(Method::GET, "/hubspot/crm/v3/objects/contacts", None, None)
        .await; // 401 still counts
    env.hubspot(Method::GET, "/crm/v3/nowhere/42", None).await;

    let stats = env.control(Method::GET, "/stats", None).await;
    assert_eq!(stats.status, StatusCode::OK);
    assert_eq!(stats.body["requests"], 7, "{}", stats.body);
    assert_eq!(stats.body["byProvider"]["hubspot"], 7);
    let routes = &stats.body["byRoute"];
    assert_eq!(
        routes["GET /hubspot/crm/v3/objects/contacts"], 3,
        "{routes}"
    );
    assert_eq!(
        routes["GET /hubspot/crm/v3/objects/contacts/{contactId}"], 2,
        "{routes}"
    );
    assert_eq!(
        routes["GET /hubspot/crm/objects/2026-03/companies"], 1,
        "{routes}"
    );
    assert_eq!(routes["GET /hubspot/{unmatched}"], 1, "{routes}");
    assert_eq!(routes.as_object().unwrap().len(), 4, "{routes}");

    env.control(Method::POST, "/reset", None).await;
    let stats = env.control(Method::GET, "/stats", None).await;
    assert_eq!(
        stats.body["requests"], 0,
        "control calls are not vendor requests"
    );
    assert_eq!(stats.body["byRoute"], json!({}));
}

#[tokio::test]
async fn injected_fault_fires_exactly_times_times() {
    let env = env().await;
    let added = env
        .control(
            Method::POST,
            "/faults",
            Some(json!({"provider": "hubspot", "status": 503, "times": 2, "pathContains": "/contacts"})),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);

    // A non-matching path is untouched and does not consume the fault.
    let companies = env
        .hubspot(Method::GET, "/crm/v3/objects/companies", None)
        .await;
    assert_eq!(companies.status, StatusCode::OK);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let reply = env
            .hubspot(Method::GET, "/crm/v3/objects/contacts", None)
            .await;
        if reply.status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(reply.body["status"], "error", "vendor-shaped default body");
        }
        statuses.push(reply.status.as_u16());
    }
    assert_eq!(statuses, [503, 503, 200, 200]);

    // A custom body is returned verbatim.
    env.control(
        Method::POST,
        "/faults",
        Some(json!({"provider": "hubspot", "status": 502, "body": {"oops": true}})),
    )
    .await;
    let reply = env
        .hubspot(Method::GET, "/crm/v3/objects/contacts", None)
        .await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert_eq!(reply.body, json!({"oops": true}));
    assert_eq!(
        env.hubspot(Method::GET, "/crm/v3/objects/contacts", None)
            .await
            .status,
        StatusCode::OK
    );

    let rejected = env
        .control(
            Method::POST,
            "/faults",
            Some(json!({"provider": "nobody", "status": 500})),
        )
        .await;
    assert_eq!(rejected.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn repeat_cursor_fault_hands_back_the_same_cursor() {
    let env = env().await;
    let first = env
        .hubspot(Method::GET, "/crm/v3/objects/contacts?limit=5", None)
        .await;
    let cursor = first.body["paging"]["next"]["after"]
        .as_str()
        .unwrap()
        .to_owned();
    env.control(
        Method::POST,
        "/faults",
        Some(json!({"provider": "hubspot", "kind": "repeat_cursor", "times": 2})),
    )
    .await;
    let path = format!("/crm/v3/objects/contacts?limit=5&after={cursor}");
    for _ in 0..2 {
        let reply = env.hubspot(Method::GET, &path, None).await;
        assert_eq!(reply.body["paging"]["next"]["after"], cursor.as_str());
        assert_eq!(reply.body["results"][0]["id"], "1006");
    }
    let healed = env.hubspot(Method::GET, &path, None).await;
    assert_ne!(healed.body["paging"]["next"]["after"], cursor.as_str());
}

#[tokio::test]
async fn reshape_fault_edits_the_vendors_own_answer() {
    let env = env().await;
    let path = "/crm/v3/objects/contacts?limit=5&properties=email,firstname";
    let before = env.hubspot(Method::GET, path, None).await;
    assert!(before.body["paging"].is_object());
    let email = before.body["results"][0]["properties"]["email"].clone();
    assert!(email.is_string(), "{}", before.body);
    let bad = env
        .control(
            Method::POST,
            "/faults",
            Some(json!({"provider": "hubspot", "kind": "reshape"})),
        )
        .await;
    assert_eq!(
        bad.status,
        StatusCode::BAD_REQUEST,
        "a reshape says what to change"
    );
    env.control(
        Method::POST,
        "/faults",
        Some(json!({"provider": "hubspot", "kind": "reshape", "dropKeys": ["paging"], "renameKeys": {"email": "email_address"}, "times": 1})),
    )
    .await;
    let after = env.hubspot(Method::GET, path, None).await;
    assert_eq!(after.status, StatusCode::OK);
    assert!(after.body.get("paging").is_none(), "{}", after.body);
    assert_eq!(
        after.body["results"][0]["properties"]["email_address"],
        email
    );
    assert!(
        after.body["results"][0]["properties"]
            .get("email")
            .is_none()
    );
    assert_eq!(
        after.body["results"].as_array().unwrap().len(),
        5,
        "the same records"
    );
    let healed = env.hubspot(Method::GET, path, None).await;
    assert_eq!(
        healed.body, before.body,
        "once, then the vendor answers as before"
    );
}

#[tokio::test]
async fn wire_faults_cut_the_body_or_reset_the_connection() {
    let env = env().await;
    let path = "/crm/v3/objects/contacts?limit=5";
    let get = || {
        env.http
            .get(env.url(&format!("/hubspot{path}")))
            .bearer_auth(HUBSPOT_DEMO_TOKEN)
            .send()
    };
    for spec in [
        json!({"provider": "hubspot", "kind": "truncate"}),
        json!({"provider": "hubspot", "kind": "reset"}),
        json!({"provider": "hubspot", "status": 200, "rawBody": "<html/>", "body": {}}),
    ] {
        let bad = env
            .control(Method::POST, "/faults", Some(spec.clone()))
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{spec}: {}", bad.body);
    }

    // Truncated: a complete answer, its length matching the 30 bytes it carries.
    env.control(
        Method::POST,
        "/faults",
        Some(json!({"provider": "hubspot", "kind": "truncate", "keepBytes": 30, "times": 1})),
    )
    .await;
    let cut = get().await.unwrap();
    assert_eq!(cut.status(), StatusCode::OK);
    assert_eq!(cut.headers()["content-length"], "30");
    let bytes = cut.bytes().await.unwrap();
    assert_eq!(bytes.len(), 30);
    assert!(
        serde_json::from_slice::<Value>(&bytes)
            .unwrap_err()
            .is_eof()
    );

    // Reset: the headers and 30 bytes arrive, then the body read fails.
    env.control(
        Method::POST,
        "/faults",
        Some(json!({"provider": "hubspot", "kind": "reset", "keepBytes": 30, "times": 1})),
    )
    .await;
    let reset = get().await.unwrap();
    assert_eq!(reset.status(), StatusCode::OK);
    let declared: usize = reset.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(declared > 30, "the whole body's length is declared");
    assert!(reset.bytes().await.is_err(), "the body never completes");

    // A proxy's page where JSON was due.
    env.control(
        Method::POST,
        "/faults",
        Some(json!({"provider": "hubspot", "status": 502, "rawBody": "<html>bad gateway</html>", "times": 1})),
    )
    .await;
    let page = get().await.unwrap();
    assert_eq!(page.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(page.headers()["content-type"], "text/html");
    assert_eq!(page.text().await.unwrap(), "<html>bad gateway</html>");

    // Each fired once: the vendor answers whole again.
    let whole = get().await.unwrap();
    let body: Value = whole.json().await.unwrap();
    assert_eq!(body["results"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn rate_limit_window_runs_out_with_429() {
    let env = env().await;
    let set = env
        .control(
            Method::POST,
            "/ratelimit",
            Some(json!({"provider": "hubspot", "max": 3, "intervalMs": 60000})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);

    let mut remaining = Vec::new();
    for _ in 0..3 {
        let reply = env
            .hubspot(Method::GET, "/crm/v3/objects/contacts/1001", None)
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("x-hubspot-ratelimit-max"), Some(3));
        assert_eq!(
            reply.header("x-hubspot-ratelimit-interval-milliseconds"),
            Some(60000)
        );
        assert!(reply.header("x-hubspot-ratelimit-secondly").is_some());
        assert!(
            reply
                .header("x-hubspot-ratelimit-secondly-remaining")
                .is_some()
        );
        remaining.push(reply.header("x-hubspot-ratelimit-remaining").unwrap());
    }
    assert_eq!(remaining, [2, 1, 0]);

    let limited = env
        .hubspot(Method::GET, "/crm/v3/objects/contacts/1001", None)
        .await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.header("x-hubspot-ratelimit-remaining"), Some(0));
    assert_eq!(limited.body["status"], "error");
    assert_eq!(limited.body["errorType"], "RATE_LIMIT");
    assert_eq!(limited.body["policyName"], "TEN_SECONDLY_ROLLING");
    assert_eq!(
        limited.body["message"],
        "You have reached your ten_secondly_rolling limit."
    );
    assert!(limited.body["correlationId"].is_string() && limited.body["requestId"].is_string());

    // The window is per token: another token still has its full budget.
    env.control(
        Method::POST,
        "/tokens",
        Some(json!({"provider": "hubspot", "token": "other"})),
    )
    .await;
    let other = env
        .send(
            Method::GET,
            "/hubspot/crm/v3/objects/contacts/1001",
            Some("other"),
            None,
        )
        .await;
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(other.header("x-hubspot-ratelimit-remaining"), Some(2));
}

#[tokio::test]
async fn default_headers_and_demo_account() {
    let env = env().await;
    let reply = env
        .hubspot(Method::GET, "/crm/v3/objects/companies/5001", None)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("x-hubspot-ratelimit-max"), Some(110));
    assert_eq!(reply.header("x-hubspot-ratelimit-remaining"), Some(109));
    assert_eq!(
        reply.header("x-hubspot-ratelimit-interval-milliseconds"),
        Some(10000)
    );
    assert_eq!(reply.header("x-hubspot-ratelimit-secondly"), Some(11));

    let accounts = env.sandbox.demo_accounts();
    let hubspot = accounts.iter().find(|a| a.provider == "hubspot").unwrap();
    assert_eq!(hubspot.provider, "hubspot");
    assert_eq!(hubspot.credentials["accessToken"], HUBSPOT_DEMO_TOKEN);
    let base = hubspot.settings["baseUrl"].as_str().unwrap();
    assert_eq!(base, format!("http://{}/hubspot", env.sandbox.addr()));
    let via_account = env
        .send_raw(
            Method::GET,
            &format!("{base}/crm/v3/objects/contacts?limit=1"),
            Some(HUBSPOT_DEMO_TOKEN),
            None,
        )
        .await;
    assert_eq!(via_account.status, StatusCode::OK);

    let addr = env.sandbox.addr();
    env.sandbox.shutdown();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let refused = Client::new()
        .get(format!("http://{addr}/_control/stats"))
        .send()
        .await;
    assert!(refused.is_err(), "server still answering after shutdown");
}

// ---------------------------------------------------------------------------------------
// Salesforce and Zoho CRM, and HubSpot's companies

use tessera_sandbox::{SALESFORCE_DEMO_TOKEN, ZOHO_DEMO_TOKEN};

const SF_API: &str = "/salesforce/services/data/v62.0";
const SF_CONTACT_FIELDS: &str = "Id, FirstName, LastName, Email, Phone, Title, Department, MailingStreet, MailingCity, MailingState, MailingPostalCode, MailingCountry, AccountId, OwnerId, LastActivityDate, Customer_Tier__c, Industry__c, Phone_Primary__c, CreatedDate, LastModifiedDate";
const SF_ACCOUNT_FIELDS: &str = "Id, Name, Website, Industry, NumberOfEmployees, AnnualRevenue, CurrencyIsoCode, Description, Phone, BillingStreet, BillingCity, BillingState, BillingPostalCode, BillingCountry, OwnerId, LastActivityDate, CreatedDate, LastModifiedDate";
const ZOHO_CONTACT_FIELDS: &str =
    "First_Name,Last_Name,Email,Phone,Title,Account_Name,Customer_Tier,Created_Time,Modified_Time";
const ZOHO_ACCOUNT_FIELDS: &str = "Account_Name,Website,Industry,Employees,Annual_Revenue,Phone,Billing_City,Billing_Country,Created_Time,Modified_Time";

impl Env {
    /// A request with a verbatim `Authorization` value (or none) and extra headers; the
    /// raw body comes back too, to tell an empty body from JSON `null`.
    async fn send_authorized(
        &self,
        method: Method,
        url: &str,
        authorization: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (Reply, Vec<u8>) {
        let mut req = self.http.request(method, url);
        if let Some(value) = authorization {
            req = req.header("authorization", value);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap().to_vec();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!("non-JSON body ({e}): {}", String::from_utf8_lossy(&bytes))
            })
        };
        (
            Reply {
                status,
                headers,
                body,
            },
            bytes,
        )
    }

    /// `path` is relative to `/salesforce/services/data/v62.0`.
    async fn salesforce(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.salesforce_with(method, &format!("{SF_API}{path}"), &[], body)
            .await
    }

    /// `path` is host-relative, as Salesforce's `nextRecordsUrl` is.
    async fn salesforce_with(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Reply {
        let auth = format!("Bearer {SALESFORCE_DEMO_TOKEN}");
        self.send_authorized(method, &self.url(path), Some(&auth), headers, body)
            .await
            .0
    }

    async fn soql(&self, query: &str, batch_size: Option<usize>) -> Reply {
        let q: String = url::form_urlencoded::byte_serialize(query.as_bytes()).collect();
        let option = batch_size.map(|n| format!("batchSize={n}"));
        let headers: Vec<(&str, &str)> = option
            .as_deref()
            .map(|o| ("sforce-query-options", o))
            .into_iter()
            .collect();
        self.salesforce_with(
            Method::GET,
            &format!("{SF_API}/query?q={q}"),
            &headers,
            None,
        )
        .await
    }

    /// `path` is relative to `/zoho/crm/v8`; the raw body comes back too.
    async fn zoho(&self, method: Method, path: &str, body: Option<Value>) -> (Reply, Vec<u8>) {
        let auth = format!("Zoho-oauthtoken {ZOHO_DEMO_TOKEN}");
        self.send_authorized(
            method,
            &self.url(&format!("/zoho/crm/v8{path}")),
            Some(&auth),
            &[],
            body,
        )
        .await
    }

    /// Follows `nextRecordsUrl` from a SOQL query; returns every page's records.
    async fn soql_pages(&self, query: &str, batch_size: Option<usize>) -> Vec<Vec<Value>> {
        let mut reply = self.soql(query, batch_size).await;
        let mut pages = Vec::new();
        let option = batch_size.map(|n| format!("batchSize={n}"));
        let headers: Vec<(&str, &str)> = option
            .as_deref()
            .map(|o| ("sforce-query-options", o))
            .into_iter()
            .collect();
        loop {
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            let records = reply.body["records"].as_array().unwrap().clone();
            let total = reply.body["totalSize"].as_u64().unwrap();
            pages.push(records);
            assert!(pages.len() < 50, "paging did not terminate");
            if reply.body["done"] == true {
                assert!(reply.body.get("nextRecordsUrl").is_none(), "{}", reply.body);
                break;
            }
            let next = reply.body["nextRecordsUrl"].as_str().unwrap().to_owned();
            assert!(next.starts_with(&format!("{SF_API}/query/01g")), "{next}");
            reply = self
                .salesforce_with(Method::GET, &next, &headers, None)
                .await;
            assert_eq!(reply.body["totalSize"].as_u64(), Some(total));
        }
        pages
    }

    /// Follows Zoho's `next_page_token` (or page numbers) to the 204 at the end; returns
    /// the ids of every page.
    async fn zoho_pages(
        &self,
        module: &str,
        fields: &str,
        per_page: usize,
        tokens: bool,
    ) -> Vec<Vec<String>> {
        let mut pages: Vec<Vec<String>> = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = pages.len() + 1;
            let cursor = match (&token, tokens) {
                (Some(t), true) => format!("&page_token={t}"),
                _ => format!("&page={page}"),
            };
            let (reply, raw) = self
                .zoho(
                    Method::GET,
                    &format!("/{module}?fields={fields}&per_page={per_page}{cursor}"),
                    None,
                )
                .await;
            if reply.status == StatusCode::NO_CONTENT {
                assert!(raw.is_empty(), "204 carries no body");
                break;
            }
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            assert!(pages.len() < 100, "paging did not terminate");
            let data = reply.body["data"].as_array().unwrap();
            let info = &reply.body["info"];
            assert_eq!(info["count"].as_u64(), Some(data.len() as u64));
            assert_eq!(info["per_page"].as_u64(), Some(per_page as u64));
            assert_eq!(info["page"].as_u64(), Some(page as u64));
            assert_eq!(info["sort_by"], "id");
            assert_eq!(info["sort_order"], "desc");
            let names: Vec<&str> = fields.split(',').chain(["id"]).collect();
            for record in data {
                let keys: BTreeSet<&str> = record
                    .as_object()
                    .unwrap()
                    .keys()
                    .map(String::as_str)
                    .collect();
                assert_eq!(keys, names.iter().copied().collect::<BTreeSet<&str>>());
            }
            pages.push(
                data.iter()
                    .map(|r| r["id"].as_str().unwrap().to_owned())
                    .collect(),
            );
            if info["more_records"] == true {
                token = Some(info["next_page_token"].as_str().unwrap().to_owned());
                assert!(info["page_token_expiry"].is_string());
            } else {
                assert!(info["next_page_token"].is_null());
                token = None;
                if tokens {
                    break;
                }
            }
        }
        pages
    }
}

fn limit_info(reply: &Reply) -> Option<&str> {
    reply.headers.get("sforce-limit-info")?.to_str().ok()
}

fn assert_sf_error(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    let errors = reply
        .body
        .as_array()
        .unwrap_or_else(|| panic!("Salesforce errors are an array: {}", reply.body));
    assert_eq!(errors.len(), 1, "{}", reply.body);
    assert_eq!(errors[0]["errorCode"], code, "{}", reply.body);
    assert!(errors[0]["message"].is_string(), "{}", reply.body);
}

fn assert_zoho_error(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.body["code"], code, "{}", reply.body);
    assert_eq!(reply.body["status"], "error", "{}", reply.body);
    assert!(reply.body["details"].is_object(), "{}", reply.body);
    assert!(reply.body["message"].is_string(), "{}", reply.body);
}

#[tokio::test]
async fn hubspot_companies_page_past_260() {
    let env = env().await;
    let (ids, pages) = env
        .page_all("/hubspot/crm/v3/objects/companies?limit=100")
        .await;
    assert!(ids.len() >= 260, "only {} companies", ids.len());
    assert_eq!(pages, ids.len().div_ceil(100));
    assert_ne!(ids.len() % 100, 0, "the last page is shorter");
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len());
    let first = env
        .hubspot(Method::GET, "/crm/v3/objects/companies/5001", None)
        .await;
    assert_eq!(first.body["properties"]["name"], "Acme Corporation");
    let last = env
        .hubspot(
            Method::GET,
            "/crm/v3/objects/companies/5260?properties=name,domain",
            None,
        )
        .await;
    assert_eq!(last.status, StatusCode::OK, "{}", last.body);
    assert!(last.body["properties"]["name"].is_string());
}

#[tokio::test]
async fn salesforce_query_pages_every_record_once() {
    let env = env().await;
    for (object, fields) in [
        ("Contact", SF_CONTACT_FIELDS),
        ("Account", SF_ACCOUNT_FIELDS),
    ] {
        let query = format!("SELECT {fields} FROM {object} ORDER BY Id");
        let pages = env.soql_pages(&query, Some(200)).await;
        let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
        assert_eq!(sizes.len(), 2, "{object}: {sizes:?}");
        assert_eq!(sizes[0], 200);
        assert!(sizes[1] > 0 && sizes[1] < 200, "{sizes:?}");
        let records: Vec<&Value> = pages.iter().flatten().collect();
        assert!(records.len() >= 260, "{object}: {}", records.len());
        let ids: Vec<&str> = records.iter().map(|r| r["Id"].as_str().unwrap()).collect();
        let unique: BTreeSet<&&str> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "duplicates in {object}");
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ORDER BY Id");
        let expected: BTreeSet<String> = ["attributes"]
            .into_iter()
            .chain(fields.split(", "))
            .map(str::to_owned)
            .collect();
        let prefix = if object == "Contact" { "003" } else { "001" };
        for record in &records {
            let keys: BTreeSet<String> = record.as_object().unwrap().keys().cloned().collect();
            assert_eq!(keys, expected);
            let id = record["Id"].as_str().unwrap();
            assert!(id.len() == 18 && id.starts_with(prefix), "{id}");
            assert_eq!(record["attributes"]["type"], object);
            assert_eq!(
                record["attributes"]["url"],
                format!("{SF_API}/sobjects/{object}/{id}")
            );
            let modified = record["LastModifiedDate"].as_str().unwrap();
            assert!(
                modified.len() == 28 && modified.ends_with("+0000"),
                "{modified}"
            );
            assert_eq!(modified.as_bytes()[19], b'.', "{modified}");
        }

        // Default batch is 2000: everything at once. Below 200 is clamped up to 200.
        let all = env.soql(&query, None).await;
        assert_eq!(all.body["done"], true);
        assert_eq!(all.body["records"].as_array().unwrap().len(), records.len());
        assert_eq!(all.body["totalSize"].as_u64(), Some(records.len() as u64));
        let small = env.soql(&query, Some(5)).await;
        assert_eq!(small.body["records"].as_array().unwrap().len(), 200);
    }

    // A locator can be read again; an unknown one, or one past the end, is refused.
    let first = env.soql("SELECT Id FROM Contact", Some(200)).await;
    let next = first.body["nextRecordsUrl"].as_str().unwrap().to_owned();
    assert!(next.ends_with("-200"), "{next}");
    let again = env.salesforce_with(Method::GET, &next, &[], None).await;
    let twice = env.salesforce_with(Method::GET, &next, &[], None).await;
    assert_eq!(again.body, twice.body);
    let past = next.replace("-200", "-100000");
    for path in [
        past.as_str(),
        &format!("{SF_API}/query/01gSANDBOX99999999-200"),
        &format!("{SF_API}/query/garbage"),
    ] {
        let reply = env.salesforce_with(Method::GET, path, &[], None).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(
            reply.body,
            json!([{"errorCode": "INVALID_QUERY_LOCATOR", "message": "invalid query locator"}])
        );
    }
    // Cursors belong to the user that opened them.
    env.control(
        Method::POST,
        "/tokens",
        Some(json!({"provider": "salesforce", "token": "other-user"})),
    )
    .await;
    let (stranger, _) = env
        .send_authorized(
            Method::GET,
            &env.url(&next),
            Some("Bearer other-user"),
            &[],
            None,
        )
        .await;
    assert_sf_error(&stranger, StatusCode::BAD_REQUEST, "INVALID_QUERY_LOCATOR");
}

#[tokio::test]
async fn salesforce_locators_chain_over_several_batches() {
    let env = env().await;
    for i in 0..150 {
        let created = env
            .salesforce(
                Method::POST,
                "/sobjects/Contact/",
                Some(json!({"LastName": format!("Extra {i:03}")})),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    }
    let pages = env
        .soql_pages("SELECT Id, LastName FROM Contact", Some(200))
        .await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [200, 200, 10]);
    let ids: BTreeSet<&str> = pages
        .iter()
        .flatten()
        .map(|r| r["Id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 410);
    let first = env.soql("SELECT Id FROM Contact", Some(200)).await;
    assert!(
        first.body["nextRecordsUrl"]
            .as_str()
            .unwrap()
            .ends_with("-200")
    );
    let second = env
        .salesforce_with(
            Method::GET,
            first.body["nextRecordsUrl"].as_str().unwrap(),
            &[],
            None,
        )
        .await;
    assert!(
        second.body["nextRecordsUrl"]
            .as_str()
            .unwrap()
            .ends_with("-400"),
        "{}",
        second.body["nextRecordsUrl"]
    );
}

#[tokio::test]
async fn salesforce_soql_filters_relationships_and_errors() {
    let env = env().await;
    let bad = env.soql("SELECT Id, Foo__c FROM Contact", None).await;
    assert_sf_error(&bad, StatusCode::BAD_REQUEST, "INVALID_FIELD");
    let message = bad.body[0]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "\nSELECT Id, Foo__c FROM Contact\n           ^\nERROR at Row:1:Column:12\n"
        ),
        "{message}"
    );
    assert!(
        message.contains("No such column 'Foo__c' on entity 'Contact'."),
        "{message}"
    );
    for (query, code) in [
        ("SELECT Id FROM Contact WHERE", "MALFORMED_QUERY"),
        ("SELEKT Id FROM Contact", "MALFORMED_QUERY"),
        ("SELECT Id FROM Campaign", "INVALID_TYPE"),
        (
            "SELECT Id FROM Contact WHERE Id = '003'",
            "INVALID_QUERY_FILTER_OPERATOR",
        ),
    ] {
        let reply = env.soql(query, None).await;
        assert_sf_error(&reply, StatusCode::BAD_REQUEST, code);
    }
    let no_query = env.salesforce(Method::GET, "/query", None).await;
    assert_sf_error(&no_query, StatusCode::BAD_REQUEST, "MALFORMED_QUERY");

    let all = env
        .soql("SELECT Id, Email, Account.Name FROM Contact", None)
        .await;
    let records = all.body["records"].as_array().unwrap();
    let with_account = records.iter().find(|r| r["Account"].is_object()).unwrap();
    assert_eq!(with_account["Account"]["attributes"]["type"], "Account");
    assert!(with_account["Account"]["Name"].is_string());
    assert!(
        records.iter().any(|r| r["Account"].is_null()),
        "some contacts have no account"
    );
    assert!(
        records.iter().any(|r| r["Email"].is_null()),
        "some contacts have no email"
    );

    // WHERE Id IN takes 15- and 18-character ids; the result is in Id order.
    let a = records[7]["Id"].as_str().unwrap();
    let b = records[3]["Id"].as_str().unwrap();
    let picked = env
        .soql(
            &format!(
                "select id, email from contact where id in ('{a}', '{}')",
                &b[..15]
            ),
            None,
        )
        .await;
    assert_eq!(picked.status, StatusCode::OK, "{}", picked.body);
    let ids: Vec<&str> = picked.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [b, a]);
    assert_eq!(picked.body["totalSize"], 2);

    let gold = env
        .soql(
            "SELECT Id, Customer_Tier__c FROM Contact WHERE Customer_Tier__c = 'gold' LIMIT 10",
            None,
        )
        .await;
    let gold = gold.body["records"].as_array().unwrap();
    assert_eq!(gold.len(), 10);
    assert!(gold.iter().all(|r| r["Customer_Tier__c"] == "Gold"));
}

#[tokio::test]
async fn salesforce_create_update_delete_round_trip() {
    let env = env().await;
    let account = env.soql("SELECT Id, Name FROM Account LIMIT 1", None).await;
    let account_id = account.body["records"][0]["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let created = env
        .salesforce(
            Method::POST,
            "/sobjects/Contact/",
            Some(json!({"FirstName": "Grace", "LastName": "Hopper", "Email": "grace@navy.example", "Customer_Tier__c": "Gold", "AccountId": account_id})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["success"], true);
    assert_eq!(created.body["errors"], json!([]));
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert!(id.len() == 18 && id.starts_with("003"), "{id}");
    let row = format!("/sobjects/Contact/{id}");

    let fetched = env.salesforce(Method::GET, &row, None).await;
    assert_eq!(fetched.status, StatusCode::OK, "{}", fetched.body);
    assert_eq!(fetched.body["Name"], "Grace Hopper");
    assert_eq!(fetched.body["AccountId"], account_id.as_str());
    assert_eq!(fetched.body["attributes"]["url"], format!("{SF_API}{row}"));
    let short = env
        .salesforce(
            Method::GET,
            &format!("/sobjects/Contact/{}?fields=Email,LastName", &id[..15]),
            None,
        )
        .await;
    let keys: BTreeSet<&str> = short
        .body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["Email", "LastName", "attributes"].into());

    // New ids sort last.
    let all = env.soql("SELECT Id FROM Contact", None).await;
    assert_eq!(
        all.body["records"].as_array().unwrap().last().unwrap()["Id"],
        id.as_str()
    );

    let (patched, raw) = env
        .send_authorized(
            Method::PATCH,
            &env.url(&format!("{SF_API}{row}")),
            Some(&format!("Bearer {SALESFORCE_DEMO_TOKEN}")),
            &[],
            Some(json!({"Title": "Rear Admiral", "Customer_Tier__c": null})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::NO_CONTENT);
    assert!(raw.is_empty());
    let fetched = env.salesforce(Method::GET, &row, None).await;
    assert_eq!(fetched.body["Title"], "Rear Admiral");
    assert!(fetched.body["Customer_Tier__c"].is_null());
    assert!(fetched.body["LastModifiedDate"].as_str() >= fetched.body["CreatedDate"].as_str());

    // Writes are validated the Salesforce way.
    let missing = env
        .salesforce(
            Method::POST,
            "/sobjects/Contact",
            Some(json!({"FirstName": "Nobody"})),
        )
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        missing.body,
        json!([{"message": "Required fields are missing: [LastName]", "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["LastName"]}])
    );
    let nameless = env
        .salesforce(
            Method::POST,
            "/sobjects/Account/",
            Some(json!({"Website": "x.example"})),
        )
        .await;
    assert_eq!(nameless.body[0]["fields"], json!(["Name"]));
    let unknown = env
        .salesforce(Method::PATCH, &row, Some(json!({"Shoe_Size__c": 44})))
        .await;
    assert_sf_error(&unknown, StatusCode::BAD_REQUEST, "INVALID_FIELD");
    let read_only = env
        .salesforce(
            Method::PATCH,
            &row,
            Some(json!({"CreatedDate": "2020-01-01T00:00:00.000+0000"})),
        )
        .await;
    assert_sf_error(
        &read_only,
        StatusCode::BAD_REQUEST,
        "INVALID_FIELD_FOR_INSERT_UPDATE",
    );
    let bad_email = env
        .salesforce(Method::PATCH, &row, Some(json!({"Email": "not-an-email"})))
        .await;
    assert_sf_error(&bad_email, StatusCode::BAD_REQUEST, "INVALID_EMAIL_ADDRESS");
    let bad_json = env
        .send_raw(
            Method::POST,
            &env.url(&format!("{SF_API}/sobjects/Contact/")),
            Some(SALESFORCE_DEMO_TOKEN),
            Some("{oops".into()),
        )
        .await;
    assert_sf_error(&bad_json, StatusCode::BAD_REQUEST, "JSON_PARSER_ERROR");

    let deleted = env.salesforce(Method::DELETE, &row, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = env.salesforce(Method::GET, &row, None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(
        gone.body,
        json!([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])
    );
    let again = env.salesforce(Method::DELETE, &row, None).await;
    assert_sf_error(&again, StatusCode::NOT_FOUND, "ENTITY_IS_DELETED");
    let patch_gone = env
        .salesforce(Method::PATCH, &row, Some(json!({"Title": "x"})))
        .await;
    assert_sf_error(&patch_gone, StatusCode::NOT_FOUND, "ENTITY_IS_DELETED");
    let bin = env
        .salesforce(
            Method::GET,
            &format!("/queryAll?q=SELECT+Id,IsDeleted+FROM+Contact+WHERE+Id='{id}'"),
            None,
        )
        .await;
    assert_eq!(bin.body["records"][0]["IsDeleted"], true, "{}", bin.body);
    let not_id = env
        .salesforce(Method::GET, "/sobjects/Contact/xyz", None)
        .await;
    assert_sf_error(&not_id, StatusCode::NOT_FOUND, "NOT_FOUND");

    // Reset restores the seed.
    env.control(Method::POST, "/reset", None).await;
    let after = env.soql("SELECT Id FROM Contact", None).await;
    assert_eq!(after.body["totalSize"], 260);
}

#[tokio::test]
async fn salesforce_composite_retrieve_keeps_order_with_nulls() {
    let env = env().await;
    let some = env.soql("SELECT Id FROM Contact LIMIT 2", None).await;
    let first = some.body["records"][0]["Id"].as_str().unwrap().to_owned();
    let second = some.body["records"][1]["Id"].as_str().unwrap().to_owned();
    let unknown = format!("{}zzzzzz", &first[..9]);
    let body = json!({"ids": [second, unknown, first, "garbage"], "fields": ["Id", "Email"]});
    let reply = env
        .salesforce(Method::POST, "/composite/sobjects/Contact", Some(body))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let rows = reply.body.as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0]["Id"], second.as_str());
    assert!(rows[1].is_null());
    assert_eq!(rows[2]["Id"], first.as_str());
    assert!(rows[3].is_null());
    let keys: BTreeSet<&str> = rows[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["Email", "Id", "attributes"].into());

    let query = format!("/composite/sobjects/Contact?ids={first},{second}&fields=LastName");
    let via_get = env.salesforce(Method::GET, &query, None).await;
    assert_eq!(
        via_get.body.as_array().unwrap().len(),
        2,
        "{}",
        via_get.body
    );

    let bad_field = env
        .salesforce(
            Method::POST,
            "/composite/sobjects/Contact",
            Some(json!({"ids": [first], "fields": ["Nope__c"]})),
        )
        .await;
    assert_sf_error(&bad_field, StatusCode::BAD_REQUEST, "INVALID_FIELD");
    let too_many: Vec<String> = (0..2001).map(|_| first.clone()).collect();
    let reply = env
        .salesforce(
            Method::POST,
            "/composite/sobjects/Contact",
            Some(json!({"ids": too_many, "fields": ["Id"]})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn salesforce_auth_limits_and_faults() {
    let env = env().await;
    let path = format!("{SF_API}/query?q=SELECT+Id+FROM+Account+LIMIT+1");
    let expected =
        json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]);
    env.control(
        Method::POST,
        "/tokens",
        Some(json!({"provider": "salesforce", "token": "stale", "expiresInSeconds": -5})),
    )
    .await;
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Bearer stale"),
        Some(&format!("Zoho-oauthtoken {SALESFORCE_DEMO_TOKEN}") as &str),
        Some(&format!("Bearer {HUBSPOT_DEMO_TOKEN}") as &str),
    ] {
        let (reply, _) = env
            .send_authorized(Method::GET, &env.url(&path), auth, &[], None)
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(reply.body, expected);
        assert_eq!(reply.headers.get("www-authenticate").unwrap(), "Token");
    }

    let first = env.salesforce_with(Method::GET, &path, &[], None).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(limit_info(&first), Some("api-usage=1/15000"));
    let second = env
        .salesforce(Method::GET, "/sobjects/Account/nope", None)
        .await;
    assert_eq!(limit_info(&second), Some("api-usage=2/15000"));

    env.control(
        Method::POST,
        "/ratelimit",
        Some(json!({"provider": "salesforce", "max": 3})),
    )
    .await;
    let mut usage = Vec::new();
    for _ in 0..3 {
        let reply = env.salesforce_with(Method::GET, &path, &[], None).await;
        assert_eq!(reply.status, StatusCode::OK);
        usage.push(limit_info(&reply).unwrap().to_owned());
    }
    assert_eq!(usage, ["api-usage=1/3", "api-usage=2/3", "api-usage=3/3"]);
    let blocked = env.salesforce_with(Method::GET, &path, &[], None).await;
    assert_eq!(blocked.status, StatusCode::FORBIDDEN, "not 429");
    assert_eq!(
        blocked.body,
        json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
    );
    assert_eq!(limit_info(&blocked), Some("api-usage=3/3"));
    assert!(blocked.headers.get("retry-after").is_none());

    env.control(
        Method::POST,
        "/ratelimit",
        Some(json!({"provider": "salesforce", "max": 15000})),
    )
    .await;
    env.control(
        Method::POST,
        "/faults",
        Some(json!({"provider": "salesforce", "status": 503})),
    )
    .await;
    let down = env.salesforce_with(Method::GET, &path, &[], None).await;
    assert_sf_error(&down, StatusCode::SERVICE_UNAVAILABLE, "SERVER_UNAVAILABLE");

    let stats = env.control(Method::GET, "/stats", None).await;
    assert_eq!(
        stats.body["byRoute"]["GET /salesforce/services/data/{version}/query"], 11,
        "{}",
        stats.body
    );
    assert_eq!(
        stats.body["byRoute"]["GET /salesforce/services/data/{version}/sobjects/{sobject}/{id}"],
        1
    );
}

#[tokio::test]
async fn salesforce_cursor_faults() {
    let env = env().await;
    let first = env.soql("SELECT Id FROM Contact", Some(200)).await;
    let next = first.body["nextRecordsUrl"].as_str().unwrap().to_owned();
    let healthy = env.salesforce_with(Method::GET, &next, &[], None).await;
    assert_eq!(healthy.body["done"], true);

    env.control(
        Method::POST,
        "/faults",
        Some(json!({"provider": "salesforce", "kind": "repeat_cursor", "times": 2})),
    )
    .await;
    for _ in 0..2 {
        let reply = env.salesforce_with(Method::GET, &next, &[], None).await;
        assert_eq!(reply.body["done"], false);
        assert_eq!(
            reply.body["nextRecordsUrl"],
            next.as_str(),
            "the locator requested"
        );
        assert_eq!(reply.body["records"][0], healthy.body["records"][0]);
    }
    let healed = env.salesforce_with(Method::GET, &next, &[], None).await;
    assert_eq!(healed.body, healthy.body);

    // out_of_range: "more" on the last page, and the locator it hands out is refused.
    let added = env
        .control(
            Method::POST,
            "/faults",
            Some(json!({"provider": "salesforce", "kind": "out_of_range"})),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    assert_eq!(added.body["kind"], "out_of_range");
    let lying = env.soql("SELECT Id FROM Contact", None).await;
    assert_eq!(lying.body["records"].as_array().unwrap().len(), 260);
    assert_eq!(lying.body["done"], false);
    let beyond = lying.body["nextRecordsUrl"].as_str().unwrap();
    let refused = env.salesforce_with(Method::GET, beyond, &[], None).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        refused.body,
        json!([{"errorCode": "INVALID_QUERY_LOCATOR", "message": "invalid query locator"}])
    );
}

#[tokio::test]
async fn zoho_paging_returns_every_record_once() {
    let env = env().await;
    for (module, fields) in [
        ("Contacts", ZOHO_CONTACT_FIELDS),
        ("Accounts", ZOHO_ACCOUNT_FIELDS),
    ] {
        let by_page = env.zoho_pages(module, fields, 200, false).await;
        let sizes: Vec<usize> = by_page.iter().map(Vec::len).collect();
        assert_eq!(sizes.len(), 2, "{module}: {sizes:?}");
        assert_eq!(sizes[0], 200);
        assert!(sizes[1] > 0 && sizes[1] < 200);
        let ids: Vec<String> = by_page.concat();
        assert!(ids.len() >= 260, "{module}: {}", ids.len());
        let unique: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        let numeric: Vec<u64> = ids.iter().map(|i| i.parse().unwrap()).collect();
        assert!(numeric.windows(2).all(|w| w[0] > w[1]), "id desc");
        assert!(ids.iter().all(|i| i.len() == 19));

        let by_token = env.zoho_pages(module, fields, 200, true).await;
        assert_eq!(by_token.concat(), ids);
        let small = env.zoho_pages(module, fields, 7, true).await;
        assert_eq!(small.len(), ids.len().div_ceil(7));
        assert_eq!(small.concat(), ids);
    }

    let (reply, _) = env
        .zoho(
            Method::GET,
            &format!("/Contacts?fields={ZOHO_CONTACT_FIELDS}&per_page=200"),
            None,
        )
        .await;
    let data = reply.body["data"].as_array().unwrap();
    let with_account = data.iter().find(|r| r["Account_Name"].is_object()).unwrap();
    assert!(with_account["Account_Name"]["name"].is_string());
    assert_eq!(
        with_account["Account_Name"]["id"].as_str().unwrap().len(),
        19
    );
    assert!(data.iter().any(|r| r["Account_Name"].is_null()));
    let created = with_account["Created_Time"].as_str().unwrap();
    assert!(
        created.ends_with("+05:30") && created.len() == 25,
        "{created}"
    );
    let accounts = env
        .zoho(
            Method::GET,
            "/Accounts?fields=Employees,Annual_Revenue",
            None,
        )
        .await
        .0;
    assert!(
        accounts.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["Employees"].is_u64())
    );
}

#[tokio::test]
async fn zoho_list_parameter_errors_and_empty_pages() {
    let env = env().await;
    let (missing, _) = env.zoho(Method::GET, "/Contacts?per_page=10", None).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        missing.body,
        json!({"code": "REQUIRED_PARAM_MISSING", "details": {"param_name": "fields"}, "message": "One of the expected parameter is missing", "status": "error"})
    );
    let (beyond, raw) = env
        .zoho(
            Method::GET,
            "/Contacts?fields=Email&page=3&per_page=200",
            None,
        )
        .await;
    assert_eq!(beyond.status, StatusCode::NO_CONTENT);
    assert!(raw.is_empty());

    for (query, code) in [
        (
            "/Contacts?fields=Email&page=11&per_page=200",
            "DISCRETE_PAGINATION_LIMIT_EXCEEDED",
        ),
        ("/Contacts?fields=Email&per_page=201", "LIMIT_EXCEEDED"),
        ("/Contacts?fields=Email&per_page=0", "INVALID_DATA"),
        ("/Contacts?fields=Email&sort_order=up", "INVALID_DATA"),
        (
            "/Contacts?fields=Email&page_token=c8582e7a9f",
            "TOKEN_BOUND_DATA_MISMATCH",
        ),
        ("/Widgets?fields=Email", "INVALID_MODULE"),
    ] {
        let (reply, _) = env.zoho(Method::GET, query, None).await;
        assert_zoho_error(&reply, StatusCode::BAD_REQUEST, code);
    }
    let (limit, _) = env
        .zoho(
            Method::GET,
            "/Contacts?fields=Email&page=11&per_page=200",
            None,
        )
        .await;
    assert_eq!(limit.body["details"]["limit"], 2000);
    let (page_ten, _) = env
        .zoho(
            Method::GET,
            "/Contacts?fields=Email&page=10&per_page=200",
            None,
        )
        .await;
    assert_eq!(
        page_ten.status,
        StatusCode::NO_CONTENT,
        "page 10 is allowed, and empty"
    );

    // A token is bound to the request that produced it.
    let (first, _) = env
        .zoho(Method::GET, "/Contacts?fields=Email&per_page=50", None)
        .await;
    let token = first.body["info"]["next_page_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (other_fields, _) = env
        .zoho(
            Method::GET,
            &format!("/Contacts?fields=Phone&per_page=50&page_token={token}"),
            None,
        )
        .await;
    assert_zoho_error(
        &other_fields,
        StatusCode::BAD_REQUEST,
        "TOKEN_BOUND_DATA_MISMATCH",
    );
    let (both, _) = env
        .zoho(
            Method::GET,
            &format!("/Contacts?fields=Email&per_page=50&page=2&page_token={token}"),
            None,
        )
        .await;
    assert_zoho_error(
        &both,
        StatusCode::BAD_REQUEST,
        "AMBIGUITY_DURING_PROCESSING",
    );
    let (ok, _) = env
        .zoho(
            Method::GET,
            &format!("/Contacts?fields=Email&per_page=50&page_token={token}"),
            None,
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.body["info"]["page"], 2);
    assert!(ok.body["info"]["previous_page_token"].is_string());

    let (wrong_version, _) = env
        .send_authorized(
            Method::GET,
            &env.url("/zoho/crm/v2/Contacts"),
            Some(&format!("Zoho-oauthtoken {ZOHO_DEMO_TOKEN}")),
            &[],
            None,
        )
        .await;
    assert_zoho_error(&wrong_version, StatusCode::NOT_FOUND, "INVALID_URL_PATTERN");
}

#[tokio::test]
async fn zoho_create_update_delete_round_trip() {
    let env = env().await;
    let (accounts, _) = env
        .zoho(
            Method::GET,
            "/Accounts?fields=Account_Name&per_page=1",
            None,
        )
        .await;
    let account = accounts.body["data"][0].clone();
    let (created, _) = env
        .zoho(
            Method::POST,
            "/Contacts",
            Some(json!({"data": [{"First_Name": "Ada", "Last_Name": "Lovelace", "Email": "ada@example.com", "Customer_Tier": "Gold", "Account_Name": {"id": account["id"]}}]})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let entry = &created.body["data"][0];
    assert_eq!(entry["code"], "SUCCESS");
    assert_eq!(entry["message"], "record added");
    assert_eq!(entry["status"], "success");
    let id = entry["details"]["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 19);
    assert!(
        entry["details"]["Created_Time"]
            .as_str()
            .unwrap()
            .ends_with("+05:30")
    );
    assert!(entry["details"]["Created_By"]["id"].is_string());

    let (fetched, _) = env
        .zoho(Method::GET, &format!("/Contacts/{id}"), None)
        .await;
    assert_eq!(fetched.status, StatusCode::OK);
    let record = &fetched.body["data"][0];
    assert_eq!(record["Full_Name"], "Ada Lovelace");
    assert_eq!(
        record["Account_Name"],
        json!({"name": account["Account_Name"], "id": account["id"]})
    );
    // Newest first under the default sort.
    let (list, _) = env
        .zoho(Method::GET, "/Contacts?fields=Last_Name&per_page=1", None)
        .await;
    assert_eq!(list.body["data"][0]["id"], id.as_str());

    let (updated, _) = env
        .zoho(
            Method::PUT,
            &format!("/Contacts/{id}"),
            Some(json!({"data": [{"Title": "Analyst", "Customer_Tier": null}]})),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["data"][0]["message"], "record updated");
    let (fetched, _) = env
        .zoho(
            Method::GET,
            &format!("/Contacts/{id}?fields=Title,Customer_Tier"),
            None,
        )
        .await;
    assert_eq!(
        fetched.body["data"][0],
        json!({"Title": "Analyst", "Customer_Tier": null, "id": id})
    );

    // Per-record errors: all failed is 400, mixed is 207.
    let (no_name, _) = env
        .zoho(
            Method::POST,
            "/Contacts",
            Some(json!({"data": [{"First_Name": "Anon"}]})),
        )
        .await;
    assert_eq!(no_name.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        no_name.body,
        json!({"data": [{"code": "MANDATORY_NOT_FOUND", "details": {"api_name": "Last_Name", "json_path": "$.data[0].Last_Name"}, "message": "required field not found", "status": "error"}]})
    );
    let (mixed, _) = env
        .zoho(Method::POST, "/Accounts", Some(json!({"data": [{"Account_Name": "Fine Co"}, {"Account_Name": "Bad Co", "Employees": "many"}]})))
        .await;
    assert_eq!(mixed.status, StatusCode::MULTI_STATUS, "{}", mixed.body);
    assert_eq!(mixed.body["data"][0]["code"], "SUCCESS");
    assert_eq!(mixed.body["data"][1]["code"], "INVALID_DATA");
    assert_eq!(
        mixed.body["data"][1]["details"]["expected_data_type"],
        "integer"
    );
    let (bad_lookup, _) = env
        .zoho(
            Method::PUT,
            &format!("/Contacts/{id}"),
            Some(json!({"data": [{"Account_Name": {"id": "1"}}]})),
        )
        .await;
    assert_eq!(bad_lookup.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_lookup.body["data"][0]["code"], "INVALID_DATA");

    let (deleted, _) = env
        .zoho(Method::DELETE, &format!("/Contacts/{id}"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(
        deleted.body,
        json!({"data": [{"code": "SUCCESS", "details": {"id": id}, "message": "record deleted", "status": "success"}]})
    );
    let (gone, raw) = env
        .zoho(Method::GET, &format!("/Contacts/{id}"), None)
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    assert!(raw.is_empty());
    for method in [Method::DELETE, Method::PUT] {
        let body = (method == Method::PUT).then(|| json!({"data": [{"Title": "x"}]}));
        let (again, _) = env.zoho(method, &format!("/Contacts/{id}"), body).await;
        assert_zoho_error(&again, StatusCode::BAD_REQUEST, "INVALID_DATA");
        assert_eq!(again.body["message"], "invalid record id");
    }
    env.control(Method::POST, "/reset", None).await;
    let (count, _) = env
        .zoho(
            Method::GET,
            "/Contacts?fields=Email&page=2&per_page=200",
            None,
        )
        .await;
    assert_eq!(count.body["info"]["count"], 60);
}

#[tokio::test]
async fn zoho_batch_read_by_ids() {
    let env = env().await;
    let (page, _) = env
        .zoho(Method::GET, "/Contacts?fields=Email&per_page=2", None)
        .await;
    let a = page.body["data"][0]["id"].as_str().unwrap().to_owned();
    let b = page.body["data"][1]["id"].as_str().unwrap().to_owned();
    let (reply, _) = env
        .zoho(
            Method::GET,
            &format!("/Contacts?ids={b},5725767000000000001,{a}&fields=Email,Last_Name"),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let ids: Vec<&str> = reply.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [b.as_str(), a.as_str()],
        "found ones, in the order asked"
    );
    assert_eq!(reply.body["info"]["count"], 2);
    let keys: BTreeSet<&str> = reply.body["data"][0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["Email", "Last_Name", "id"].into());

    let (none, raw) = env
        .zoho(
            Method::GET,
            "/Contacts?ids=5725767000000000001&fields=Email",
            None,
        )
        .await;
    assert_eq!(none.status, StatusCode::NO_CONTENT);
    assert!(raw.is_empty());
    let (no_fields, _) = env
        .zoho(Method::GET, &format!("/Contacts?ids={a}"), None)
        .await;
    assert_zoho_error(
        &no_fields,
        StatusCode::BAD_REQUEST,
        "REQUIRED_PARAM_MISSING",
    );
    let many: Vec<String> = (0..101)
        .map(|i| (5_725_767_000_000_412_001u64 + i).to_string())
        .collect();
    let (too_many, _) = env
        .zoho(
            Method::GET,
            &format!("/Contacts?ids={}&fields=Email", many.join(",")),
            None,
        )
        .await;
    assert_zoho_error(&too_many, StatusCode::BAD_REQUEST, "LIMIT_EXCEEDED");
}

#[tokio::test]
async fn zoho_auth_and_rate_limit() {
    let env = env().await;
    let url = env.url("/zoho/crm/v8/Contacts?fields=Email&per_page=1");
    let invalid = json!({"code": "INVALID_TOKEN", "details": {}, "message": "invalid oauth token", "status": "error"});
    env.control(
        Method::POST,
        "/tokens",
        Some(json!({"provider": "zoho", "token": "stale", "expiresInSeconds": -5})),
    )
    .await;
    for auth in [
        format!("Bearer {ZOHO_DEMO_TOKEN}"),
        "Zoho-oauthtoken wrong".to_owned(),
        "Zoho-oauthtoken stale".to_owned(),
        format!("Zoho-oauthtoken {SALESFORCE_DEMO_TOKEN}"),
    ] {
        let (reply, _) = env
            .send_authorized(Method::GET, &url, Some(&auth), &[], None)
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{auth}");
        assert_eq!(reply.body, invalid, "{auth}");
    }
    let (anonymous, _) = env
        .send_authorized(Method::GET, &url, None, &[], None)
        .await;
    assert_zoho_error(
        &anonymous,
        StatusCode::UNAUTHORIZED,
        "AUTHENTICATION_FAILURE",
    );

    env.control(
        Method::POST,
        "/ratelimit",
        Some(json!({"provider": "zoho", "max": 2, "intervalMs": 60000})),
    )
    .await;
    for _ in 0..2 {
        let (ok, _) = env
            .zoho(Method::GET, "/Contacts?fields=Email&per_page=1", None)
            .await;
        assert_eq!(ok.status, StatusCode::OK);
        assert!(
            ok.headers
                .keys()
                .all(|h| !h.as_str().contains("ratelimit") && !h.as_str().contains("rate-limit")),
            "Zoho documents no rate headers: {:?}",
            ok.headers
        );
    }
    let (limited, _) = env
        .zoho(Method::GET, "/Contacts?fields=Email&per_page=1", None)
        .await;
    assert_zoho_error(&limited, StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS");
    assert!(limited.headers.get("retry-after").is_none());
}

#[tokio::test]
async fn zoho_page_faults() {
    let env = env().await;
    let path = "/Contacts?fields=Email&per_page=100";
    let (first, _) = env.zoho(Method::GET, path, None).await;
    let token = first.body["info"]["next_page_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (second, _) = env
        .zoho(Method::GET, &format!("{path}&page_token={token}"), None)
        .await;
    let second_next = second.body["info"]["next_page_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(second_next, token);

    env.control(
        Method::POST,
        "/faults",
        Some(json!({"provider": "zoho", "kind": "repeat_cursor", "times": 2})),
    )
    .await;
    for _ in 0..2 {
        let (reply, _) = env
            .zoho(Method::GET, &format!("{path}&page_token={token}"), None)
            .await;
        assert_eq!(reply.body["info"]["next_page_token"], token.as_str());
        assert_eq!(reply.body["info"]["more_records"], true);
        assert_eq!(reply.body["data"], second.body["data"]);
    }
    let (healed, _) = env
        .zoho(Method::GET, &format!("{path}&page_token={token}"), None)
        .await;
    assert_eq!(
        healed.body["info"]["next_page_token"].as_str(),
        Some(second_next.as_str())
    );

    // out_of_range: the last page claims more, and what it points at is a 204.
    env.control(
        Method::POST,
        "/faults",
        Some(json!({"provider": "zoho", "kind": "out_of_range"})),
    )
    .await;
    let (last, _) = env
        .zoho(
            Method::GET,
            "/Contacts?fields=Email&per_page=200&page=2",
            None,
        )
        .await;
    assert_eq!(last.body["info"]["count"], 60);
    assert_eq!(last.body["info"]["more_records"], true);
    let beyond = last.body["info"]["next_page_token"].as_str().unwrap();
    let (empty, raw) = env
        .zoho(
            Method::GET,
            &format!("/Contacts?fields=Email&per_page=200&page_token={beyond}"),
            None,
        )
        .await;
    assert_eq!(empty.status, StatusCode::NO_CONTENT);
    assert!(raw.is_empty());
    let (by_number, _) = env
        .zoho(
            Method::GET,
            "/Contacts?fields=Email&per_page=200&page=3",
            None,
        )
        .await;
    assert_eq!(by_number.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn salesforce_and_zoho_samples_match_the_list_endpoints() {
    let env = env().await;
    for (resource, object, fields) in [
        ("contacts", "Contact", SF_CONTACT_FIELDS),
        ("companies", "Account", SF_ACCOUNT_FIELDS),
    ] {
        let samples = sample_records("salesforce", resource).unwrap();
        assert!(samples.len() >= 5);
        let ids: Vec<String> = samples
            .iter()
            .map(|s| format!("'{}'", s["Id"].as_str().unwrap()))
            .collect();
        let all_fields = format!(
            "{fields}, IsDeleted{}",
            if object == "Contact" { ", Name" } else { "" }
        );
        let listed = env
            .soql(
                &format!(
                    "SELECT {all_fields} FROM {object} WHERE Id IN ({})",
                    ids.join(",")
                ),
                None,
            )
            .await;
        assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
        let mut listed: Vec<Value> = listed.body["records"].as_array().unwrap().clone();
        let mut samples = samples;
        for list in [&mut listed, &mut samples] {
            for record in list.iter_mut() {
                let sorted: std::collections::BTreeMap<String, Value> =
                    record.as_object().unwrap().clone().into_iter().collect();
                *record = json!(sorted);
            }
        }
        assert_eq!(samples, listed, "salesforce {resource}");
    }
    let contacts = sample_records("salesforce", "contacts").unwrap();
    assert!(contacts.iter().any(|c| c["Email"].is_null()));
    assert!(contacts.iter().any(|c| c["FirstName"].is_null()));
    assert!(contacts.iter().any(|c| c["AccountId"].is_null()));
    assert!(
        contacts
            .iter()
            .any(|c| c["LastName"].as_str().is_some_and(|n| !n.is_ascii()))
    );
    let companies = sample_records("salesforce", "companies").unwrap();
    assert!(companies.iter().any(|c| c["Website"].is_null()));
    assert!(companies.iter().any(|c| c["NumberOfEmployees"].is_null()));

    for (resource, module, fields) in [
        (
            "contacts",
            "Contacts",
            "First_Name,Last_Name,Full_Name,Email,Phone,Title,Account_Name,Customer_Tier,Created_Time,Modified_Time,Department,Mailing_Street,Mailing_City,Mailing_State,Mailing_Zip,Mailing_Country,Owner,Last_Activity_Time,Lead_Source",
        ),
        (
            "companies",
            "Accounts",
            "Account_Name,Website,Industry,Employees,Annual_Revenue,Phone,Billing_City,Billing_Country,Created_Time,Modified_Time,Currency,Description,Billing_Street,Billing_State,Billing_Code,Owner,Last_Activity_Time,Account_Type",
        ),
    ] {
        let samples = sample_records("zoho", resource).unwrap();
        assert!(samples.len() >= 5);
        let ids: Vec<&str> = samples.iter().map(|s| s["id"].as_str().unwrap()).collect();
        let (listed, _) = env
            .zoho(
                Method::GET,
                &format!("/{module}?ids={}&fields={fields}", ids.join(",")),
                None,
            )
            .await;
        assert_eq!(listed.body["data"], json!(samples), "zoho {resource}");
    }
    let contacts = sample_records("zoho", "contacts").unwrap();
    assert!(contacts.iter().any(|c| c["Email"].is_null()));
    assert!(contacts.iter().any(|c| c["First_Name"].is_null()));
    assert!(contacts.iter().any(|c| c["Account_Name"].is_null()));
    assert!(contacts.iter().any(|c| c["Customer_Tier"].is_null()));
    assert!(sample_records("zoho", "pipelines").is_none());
    assert!(sample_records("salesforce", "opportunities").is_none());

    let accounts = env.sandbox.demo_accounts();
    let sf = accounts
        .iter()
        .find(|a| a.provider == "salesforce")
        .unwrap();
    assert_eq!(sf.credentials["accessToken"], SALESFORCE_DEMO_TOKEN);
    let instance = sf.settings["instanceUrl"].as_str().unwrap();
    assert_eq!(
        instance,
        format!("http://{}/salesforce", env.sandbox.addr())
    );
    let (via_sf, _) = env
        .send_authorized(
            Method::GET,
            &format!("{instance}/services/data/v62.0/query?q=SELECT+Id+FROM+Contact+LIMIT+1"),
            Some(&format!("Bearer {SALESFORCE_DEMO_TOKEN}")),
            &[],
            None,
        )
        .await;
    assert_eq!(via_sf.status, StatusCode::OK);
    let zoho = accounts.iter().find(|a| a.provider == "zoho").unwrap();
    assert_eq!(zoho.credentials["accessToken"], ZOHO_DEMO_TOKEN);
    let domain = zoho.settings["apiDomain"].as_str().unwrap();
    assert_eq!(domain, format!("http://{}/zoho", env.sandbox.addr()));
    let (via_zoho, _) = env
        .send_authorized(
            Method::GET,
            &format!("{domain}/crm/v8/Contacts?fields=Email&per_page=1"),
            Some(&format!("Zoho-oauthtoken {ZOHO_DEMO_TOKEN}")),
            &[],
            None,
        )
        .await;
    assert_eq!(via_zoho.status, StatusCode::OK);
}

// ---------------------------------------------------------------------------------------
// Pipedrive, Microsoft Graph and Google People

/// How a test authenticates a request.
#[derive(Clone, Copy)]
enum Auth<'a> {
    None,
    Bearer(&'a str),
    /// Pipedrive's API-token header.
    ApiToken(&'a str),
}

impl Env {
    /// Any method, absolute URL, extra headers; the body is parsed as JSON when it is
    /// JSON, else kept as a string (Google's HTML 404s).
    async fn fetch(
        &self,
        method: Method,
        url: &str,
        auth: Auth<'_>,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.http.request(method, url);
        match auth {
            Auth::None => {}
            Auth::Bearer(token) => req = req.header("authorization", format!("Bearer {token}")),
            Auth::ApiToken(token) => req = req.header("x-api-token", token),
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn pipedrive(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let url = self.url(&format!("/pipedrive/api/v2{path}"));
        self.fetch(method, &url, Auth::Bearer(PIPEDRIVE_DEMO_TOKEN), &[], body)
            .await
    }

    async fn graph(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let url = self.url(&format!("/graph/v1.0{path}"));
        self.fetch(method, &url, Auth::Bearer(MSGRAPH_DEMO_TOKEN), &[], body)
            .await
    }

    async fn google(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let url = self.url(&format!("/google/v1{path}"));
        self.fetch(method, &url, Auth::Bearer(GOOGLE_DEMO_TOKEN), &[], body)
            .await
    }

    /// Follows Pipedrive's `additional_data.next_cursor`, returning every id seen.
    async fn pipedrive_page_all(&self, first: &str) -> (Vec<u64>, usize) {
        let mut ids = Vec::new();
        let mut pages = 0;
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("{first}&cursor={c}"),
                None => first.to_owned(),
            };
            let reply = self.pipedrive(Method::GET, &path, None).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            assert_eq!(reply.body["success"], true);
            pages += 1;
            assert!(pages < 200, "paging did not terminate");
            let data = reply.body["data"].as_array().unwrap();
            ids.extend(data.iter().map(|r| r["id"].as_u64().unwrap()));
            match &reply.body["additional_data"]["next_cursor"] {
                Value::Null => break,
                Value::String(next) => cursor = Some(next.clone()),
                other => panic!("next_cursor must be a string or null: {other}"),
            }
        }
        (ids, pages)
    }

    /// Follows Graph's absolute `@odata.nextLink`, returning every contact seen.
    async fn graph_page_all(&self, first: &str) -> (Vec<Value>, usize) {
        let mut records = Vec::new();
        let mut pages = 0;
        let mut url = self.url(&format!("/graph/v1.0{first}"));
        loop {
            let reply = self
                .fetch(
                    Method::GET,
                    &url,
                    Auth::Bearer(MSGRAPH_DEMO_TOKEN),
                    &[],
                    None,
                )
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            pages += 1;
            assert!(pages < 200, "paging did not terminate");
            records.extend(reply.body["value"].as_array().unwrap().iter().cloned());
            let Some(next) = reply.body.get("@odata.nextLink") else {
                break;
            };
            let next = next.as_str().unwrap();
            assert!(
                next.starts_with(&format!(
                    "http://{}/graph/v1.0/me/contacts?",
                    self.sandbox.addr()
                )),
                "nextLink must be absolute on the same host: {next}"
            );
            assert!(next.contains("$skip=") && next.contains("$top="), "{next}");
            url = next.to_owned();
        }
        (records, pages)
    }

    /// Follows Google's `nextPageToken`, returning every connection seen.
    async fn google_page_all(&self, first: &str) -> (Vec<Value>, usize) {
        let mut records = Vec::new();
        let mut pages = 0;
        let mut token: Option<String> = None;
        loop {
            let path = match &token {
                Some(t) => format!("{first}&pageToken={t}"),
                None => first.to_owned(),
            };
            let reply = self.google(Method::GET, &path, None).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            pages += 1;
            assert!(pages < 200, "paging did not terminate");
            records.extend(
                reply.body["connections"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .cloned(),
            );
            assert!(reply.body["totalItems"].as_u64().unwrap() >= 260);
            match reply.body.get("nextPageToken") {
                None => break,
                Some(t) => token = Some(t.as_str().unwrap().to_owned()),
            }
        }
        (records, pages)
    }
}

const PIPEDRIVE_ERROR_INFO: &str =
    "Please check developers.pipedrive.com for more information about Pipedrive API.";

#[tokio::test]
async fn pipedrive_paging_returns_every_record_once() {
    let env = env().await;
    // Paging 260 records 7 at a time is more than Pipedrive's 80 requests per 2 s.
    env.control(
        Method::POST,
        "/ratelimit",
        Some(json!({"provider": "pipedrive", "max": 1000, "intervalMs": 2000})),
    )
    .await;
    for resource in ["persons", "organizations"] {
        let (ids, pages) = env
            .pipedrive_page_all(&format!("/{resource}?limit=7"))
            .await;
        assert!(ids.len() >= 260, "only {} {resource}", ids.len());
        assert_ne!(
            ids.len() % 7,
            0,
            "pick a page size that leaves a short last page"
        );
        assert_eq!(pages, ids.len().div_ceil(7));
        let unique: BTreeSet<u64> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "duplicate {resource}");
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ascending by id");

        // Default page size 100, max 500 in one page: the same set.
        let (all, pages) = env
            .pipedrive_page_all(&format!("/{resource}?limit=500"))
            .await;
        assert_eq!((all, pages), (ids.clone(), 1));
        let default = env
            .pipedrive(Method::GET, &format!("/{resource}"), None)
            .await;
        assert_eq!(default.body["data"].as_array().unwrap().len(), 100);

        // Another sort order pages through the same records.
        let (by_update, _) = env
            .pipedrive_page_all(&format!(
                "/{resource}?limit=11&sort_by=update_time&sort_direction=desc"
            ))
            .await;
        assert_eq!(by_update.iter().copied().collect::<BTreeSet<u64>>(), unique);
        assert_ne!(by_update, ids);

        let too_big = env
            .pipedrive(Method::GET, &format!("/{resource}?limit=501"), None)
            .await;
        assert_eq!(too_big.status, StatusCode::BAD_REQUEST);
        assert_eq!(too_big.body["success"], false);
        assert_eq!(too_big.body["data"], Value::Null);
        assert!(too_big.body["error"].as_str().unwrap().contains("limit"));
        let garbage = env
            .pipedrive(
                Method::GET,
                &format!("/{resource}?cursor=not-a-cursor"),
                None,
            )
            .await;
        assert_eq!(garbage.status, StatusCode::BAD_REQUEST, "{}", garbage.body);
    }
}

#[tokio::test]
async fn pipedrive_records_have_v2_shape() {
    let env = env().await;
    let person = env.pipedrive(Method::GET, "/persons/42", None).await;
    assert_eq!(person.status, StatusCode::OK);
    let p = &person.body["data"];
    assert_eq!(p["name"], "Siobhán O'Brien");
    assert_eq!(p["first_name"], "Siobhán");
    assert_eq!(p["last_name"], "O'Brien");
    assert!(p["org_id"].is_u64());
    assert_eq!(p["emails"][0]["primary"], true);
    let update_time = p["update_time"].as_str().unwrap();
    assert!(
        update_time.len() == 20 && update_time.ends_with('Z'),
        "RFC 3339 seconds: {update_time}"
    );
    let custom = p["custom_fields"].as_object().unwrap();
    assert_eq!(custom.len(), 1);
    let key = custom.keys().next().unwrap();
    assert!(
        key.len() == 40 && key.chars().all(|c| c.is_ascii_hexdigit()),
        "{key}"
    );

    let org = env
        .pipedrive(Method::GET, "/organizations/1001", None)
        .await;
    let o = &org.body["data"];
    assert!(o["address"]["locality"].is_string() && o["address"]["value"].is_string());
    let custom = o["custom_fields"].as_object().unwrap();
    assert_eq!(custom.len(), 2, "employee count and industry");
    assert!(custom.values().any(Value::is_u64));

    let samples = sample_records("pipedrive", "contacts").unwrap();
    assert!(samples.iter().any(|s| s["emails"] == json!([])));
    assert!(samples.iter().any(|s| s["org_id"].is_null()));
    assert!(samples.iter().any(|s| s["last_name"].is_null()));
    assert!(samples.iter().any(|s| {
        s["custom_fields"]
            .as_object()
            .unwrap()
            .values()
            .any(Value::is_null)
    }));
    assert!(
        samples
            .iter()
            .any(|s| s["emails"][0]["primary"] == false && s["emails"][1]["primary"] == true)
    );
    let companies = sample_records("pipedrive", "companies").unwrap();
    assert!(companies.iter().any(|c| c["address"].is_null()));
    assert!(companies.iter().all(|c| c["id"].as_u64().unwrap() > 1000));
}

#[tokio::test]
async fn pipedrive_create_update_delete_round_trip() {
    let env = env().await;
    let tier = sample_records("pipedrive", "contacts").unwrap()[0]["custom_fields"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    let created = env
        .pipedrive(
            Method::POST,
            "/persons",
            Some(json!({
                "name": "Grace Hopper",
                "org_id": 1002,
                "emails": [{"value": "grace@navy.example", "label": "work"}],
                "custom_fields": {tier.as_str(): "gold"},
            })),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    assert_eq!(created.body["success"], true);
    let data = &created.body["data"];
    let id = data["id"].as_u64().unwrap();
    assert!(id > 260);
    assert_eq!(data["first_name"], "Grace");
    assert_eq!(data["last_name"], "Hopper");
    assert_eq!(data["org_id"], 1002);
    assert_eq!(
        data["emails"],
        json!([{"value": "grace@navy.example", "primary": true, "label": "work"}])
    );
    assert_eq!(data["custom_fields"][tier.as_str()], "gold");

    let updated = env
        .pipedrive(
            Method::PATCH,
            &format!("/persons/{id}"),
            Some(json!({"name": "Grace B. Hopper", "custom_fields": {tier.as_str(): null}})),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    let fetched = env
        .pipedrive(Method::GET, &format!("/persons/{id}"), None)
        .await;
    assert_eq!(fetched.body["data"]["last_name"], "B. Hopper");
    assert_eq!(
        fetched.body["data"]["custom_fields"][tier.as_str()],
        Value::Null
    );
    assert_eq!(
        fetched.body["data"]["org_id"], 1002,
        "PATCH keeps untouched fields"
    );

    let bad = env
        .pipedrive(
            Method::PATCH,
            &format!("/persons/{id}"),
            Some(json!({"shoe_size": 44})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["success"], false);
    let nameless = env
        .pipedrive(Method::POST, "/persons", Some(json!({})))
        .await;
    assert_eq!(nameless.status, StatusCode::BAD_REQUEST);

    let deleted = env
        .pipedrive(Method::DELETE, &format!("/persons/{id}"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(deleted.body, json!({"success": true, "data": {"id": id}}));
    let gone = env
        .pipedrive(Method::GET, &format!("/persons/{id}"), None)
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(
        gone.body,
        json!({
            "success": false,
            "error": "Person not found",
            "error_info": PIPEDRIVE_ERROR_INFO,
            "data": null,
            "additional_data": null,
        })
    );
    let (ids, _) = env.pipedrive_page_all("/persons?limit=500").await;
    assert!(!ids.contains(&id));

    // Organizations: same cycle, with the address object and numeric custom fields.
    let created = env
        .pipedrive(
            Method::POST,
            "/organizations",
            Some(json!({"name": "Navy Yard", "address": {"value": "1 Main St", "locality": "Arlington"}})),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let org = created.body["data"]["id"].as_u64().unwrap();
    assert_eq!(created.body["data"]["address"]["locality"], "Arlington");
    assert_eq!(created.body["data"]["address"]["country"], Value::Null);
    let patched = env
        .pipedrive(
            Method::PATCH,
            &format!("/organizations/{org}"),
            Some(json!({"name": "Navy Yard Inc"})),
        )
        .await;
    assert_eq!(patched.body["data"]["name"], "Navy Yard Inc");
    assert_eq!(patched.body["data"]["address"]["locality"], "Arlington");
    let deleted = env
        .pipedrive(Method::DELETE, &format!("/organizations/{org}"), None)
        .await;
    assert_eq!(deleted.body, json!({"success": true, "data": {"id": org}}));
    let gone = env
        .pipedrive(Method::GET, &format!("/organizations/{org}"), None)
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.body["error"], "Organization not found");
    let again = env
        .pipedrive(Method::DELETE, &format!("/organizations/{org}"), None)
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn pipedrive_batch_read_by_ids_leaves_out_missing_ones() {
    let env = env().await;
    let reply = env
        .pipedrive(Method::GET, "/persons?ids=3,1,999999,2", None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let ids: Vec<u64> = reply.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2, 3]);
    assert_eq!(reply.body["additional_data"]["next_cursor"], Value::Null);

    let orgs = env
        .pipedrive(Method::GET, "/organizations?ids=1005,424242", None)
        .await;
    assert_eq!(orgs.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(orgs.body["data"][0]["id"], 1005);

    let too_many: Vec<String> = (1..=101).map(|i| i.to_string()).collect();
    let reply = env
        .pipedrive(
            Method::GET,
            &format!("/persons?ids={}", too_many.join(",")),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body["success"], false);
}

#[tokio::test]
async fn pipedrive_auth_failures_and_api_token_header() {
    let env = env().await;
    let url = env.url("/pipedrive/api/v2/persons?limit=1");
    let expected = json!({
        "success": false,
        "error": "unauthorized access",
        "errorCode": 401,
        "error_info": "Please check developers.pipedrive.com",
    });
    for auth in [Auth::None, Auth::Bearer("wrong"), Auth::ApiToken("wrong")] {
        let reply = env.fetch(Method::GET, &url, auth, &[], None).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.body, expected);
        assert_eq!(reply.headers["x-401-by-gw"], "true");
        assert!(reply.headers.get("x-ratelimit-limit").is_none());
    }
    let ok = env
        .fetch(
            Method::GET,
            &url,
            Auth::ApiToken(PIPEDRIVE_DEMO_TOKEN),
            &[],
            None,
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    // Another vendor's token is not a Pipedrive token.
    let foreign = env
        .fetch(
            Method::GET,
            &url,
            Auth::Bearer(HUBSPOT_DEMO_TOKEN),
            &[],
            None,
        )
        .await;
    assert_eq!(foreign.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn pipedrive_rate_limit_headers_and_429() {
    let env = env().await;
    let first = env.pipedrive(Method::GET, "/persons/1", None).await;
    assert_eq!(first.header("x-ratelimit-limit"), Some(480));
    assert_eq!(first.header("x-ratelimit-remaining"), Some(479));
    let reset = first.header("x-ratelimit-reset").unwrap();
    assert!((1..=2).contains(&reset), "2 s window: {reset}");
    assert_eq!(first.header("x-daily-requests-left"), Some(9_999));
    let second = env.pipedrive(Method::GET, "/persons/2", None).await;
    assert_eq!(second.header("x-daily-requests-left"), Some(9_998));

    env.control(
        Method::POST,
        "/ratelimit",
        Some(json!({"provider": "pipedrive", "max": 3, "intervalMs": 60000})),
    )
    .await;
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let reply = env.pipedrive(Method::GET, "/persons/1", None).await;
        assert_eq!(reply.status, StatusCode::OK);
        remaining.push(reply.header("x-ratelimit-remaining").unwrap());
    }
    assert_eq!(remaining, [2, 1, 0]);
    let limited = env.pipedrive(Method::GET, "/persons/1", None).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.header("x-ratelimit-limit"), Some(3));
    assert_eq!(limited.header("x-ratelimit-remaining"), Some(0));
    let reset = limited.header("x-ratelimit-reset").unwrap();
    assert!((1..=60).contains(&reset), "{reset}");
    assert!(limited.header("x-daily-requests-left").is_some());
    assert_eq!(limited.body["success"], false);
    assert_eq!(limited.body["errorCode"], 429);
    assert_eq!(limited.body["error_info"], PIPEDRIVE_ERROR_INFO);
    assert_eq!(limited.body["data"], Value::Null);
}

#[tokio::test]
async fn pipedrive_repeat_cursor_fault() {
    let env = env().await;
    let first = env.pipedrive(Method::GET, "/persons?limit=5", None).await;
    let cursor = first.body["additional_data"]["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    env.control(
        Method::POST,
        "/faults",
        Some(json!({"provider": "pipedrive", "kind": "repeat_cursor", "times": 2})),
    )
    .await;
    let path = format!("/persons?limit=5&cursor={cursor}");
    for _ in 0..2 {
        let reply = env.pipedrive(Method::GET, &path, None).await;
        assert_eq!(
            reply.body["additional_data"]["next_cursor"],
            cursor.as_str()
        );
        assert_eq!(reply.body["data"][0]["id"], 6);
    }
    let healed = env.pipedrive(Method::GET, &path, None).await;
    let next = healed.body["additional_data"]["next_cursor"]
        .as_str()
        .unwrap();
    assert_ne!(next, cursor);
    let after = env
        .pipedrive(
            Method::GET,
            &format!("/persons?limit=5&cursor={next}"),
            None,
        )
        .await;
    assert_eq!(after.body["data"][0]["id"], 11);
}

#[tokio::test]
async fn msgraph_paging_follows_absolute_next_links() {
    let env = env().await;
    let (records, pages) = env.graph_page_all("/me/contacts?$top=7").await;
    assert!(records.len() >= 260, "only {}", records.len());
    assert_ne!(records.len() % 7, 0);
    assert_eq!(pages, records.len().div_ceil(7));
    let ids: BTreeSet<&str> = records.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), records.len(), "duplicate contacts");
    assert!(
        ids.iter()
            .all(|id| id.starts_with("AAMk") && id.len() > 100)
    );
    let first = &records[0];
    for key in [
        "@odata.etag",
        "givenName",
        "surname",
        "displayName",
        "emailAddresses",
        "businessPhones",
        "mobilePhone",
        "jobTitle",
        "companyName",
        "department",
        "createdDateTime",
        "lastModifiedDateTime",
    ] {
        assert!(first.get(key).is_some(), "{key} missing: {first}");
    }
    assert_eq!(first["lastModifiedDateTime"].as_str().unwrap().len(), 20);

    // Default page size is 10; $select trims every record to id + the selected fields.
    let default = env.graph(Method::GET, "/me/contacts", None).await;
    assert_eq!(default.body["value"].as_array().unwrap().len(), 10);
    assert!(
        default.body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("/contacts")
    );
    let (selected, _) = env
        .graph_page_all("/me/contacts?$select=givenName,surname&$top=100")
        .await;
    assert_eq!(selected.len(), records.len());
    for r in &selected {
        let keys: BTreeSet<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["@odata.etag", "givenName", "id", "surname"].into());
    }
    let page = env
        .graph(Method::GET, "/me/contacts?$select=givenName&$top=3", None)
        .await;
    assert!(
        page.body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("/contacts(givenName)")
    );
    assert!(
        page.body["@odata.nextLink"]
            .as_str()
            .unwrap()
            .contains("$select=givenName")
    );

    let past_end = env
        .graph(Method::GET, "/me/contacts?$skip=100000", None)
        .await;
    assert_eq!(past_end.status, StatusCode::OK);
    assert_eq!(past_end.body["value"], json!([]));
    assert!(past_end.body.get("@odata.nextLink").is_none());

    let bad_select = env
        .graph(Method::GET, "/me/contacts?$select=shoeSize", None)
        .await;
    assert_eq!(bad_select.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_select.body["error"]["code"], "RequestBroker--ParseUri");
    let too_big = env.graph(Method::GET, "/me/contacts?$top=1001", None).await;
    assert_eq!(too_big.status, StatusCode::BAD_REQUEST);
    assert_eq!(too_big.body["error"]["code"], "BadRequest");

    let samples = sample_records("msgraph", "contacts").unwrap();
    assert!(samples.iter().any(|s| s["emailAddresses"] == json!([])));
    assert!(samples.iter().any(|s| s["givenName"].is_null()));
    assert!(
        samples
            .iter()
            .any(|s| s["tertiaryEmailAddress"].is_object())
    );
    assert!(sample_records("msgraph", "companies").is_none());
}

#[tokio::test]
async fn msgraph_create_update_delete_round_trip() {
    let env = env().await;
    let created = env
        .graph(
            Method::POST,
            "/me/contacts",
            Some(json!({
                "givenName": "Ada",
                "surname": "Lovelace",
                "emailAddresses": [{"address": "ada@example.com", "name": "Ada Lovelace"}],
                "businessPhones": ["+1 425 555 0100"],
                "companyName": "Analytical Engines",
            })),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("AAMk"), "{id}");
    assert_eq!(created.body["displayName"], "Ada Lovelace");
    assert_eq!(created.body["mobilePhone"], Value::Null);
    assert_eq!(created.body["homeAddress"], json!({}));
    let etag = created.body["@odata.etag"].as_str().unwrap().to_owned();
    assert!(etag.starts_with("W/\""), "{etag}");
    let item = format!("/me/contacts/{id}");

    let fetched = env.graph(Method::GET, &item, None).await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.body["companyName"], "Analytical Engines");
    assert!(
        fetched.body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("/contacts/$entity")
    );

    let updated = env
        .graph(
            Method::PATCH,
            &item,
            Some(json!({"surname": "King", "jobTitle": "Countess"})),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["surname"], "King");
    assert_eq!(
        updated.body["displayName"], "Ada King",
        "composed name follows"
    );
    assert_eq!(
        updated.body["emailAddresses"][0]["address"],
        "ada@example.com"
    );
    assert_ne!(updated.body["@odata.etag"], etag.as_str());

    let stale = env
        .fetch(
            Method::PATCH,
            &env.url(&format!("/graph/v1.0{item}")),
            Auth::Bearer(MSGRAPH_DEMO_TOKEN),
            &[("if-match", etag.as_str())],
            Some(json!({"jobTitle": "x"})),
        )
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(stale.body["error"]["code"], "ErrorIrresolvableConflict");
    let unknown_prop = env
        .graph(Method::PATCH, &item, Some(json!({"shoeSize": 38})))
        .await;
    assert_eq!(unknown_prop.status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown_prop.body["error"]["code"], "RequestBodyRead");

    let deleted = env.graph(Method::DELETE, &item, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(deleted.body, Value::Null);
    let gone = env.graph(Method::GET, &item, None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let error = gone.body["error"].as_object().unwrap();
    assert_eq!(error["code"], "ErrorItemNotFound");
    assert_eq!(
        error["message"],
        "The specified object was not found in the store."
    );
    let inner = error["innerError"].as_object().unwrap();
    let keys: BTreeSet<&str> = inner.keys().map(String::as_str).collect();
    assert_eq!(keys, ["client-request-id", "date", "request-id"].into());

    let malformed = env.graph(Method::GET, "/me/contacts/not-an-id", None).await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(malformed.body["error"]["code"], "ErrorInvalidIdMalformed");
    let companies = env.graph(Method::GET, "/me/companies", None).await;
    assert_eq!(companies.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        companies.body["error"]["message"],
        "Resource not found for the segment 'companies'."
    );
}

#[tokio::test]
async fn msgraph_batch_reads_with_a_missing_id() {
    let env = env().await;
    let page = env.graph(Method::GET, "/me/contacts?$top=2", None).await;
    let a = page.body["value"][0]["id"].as_str().unwrap().to_owned();
    let b = page.body["value"][1]["id"].as_str().unwrap().to_owned();
    // A well-formed id that is not in the mailbox: delete a contact first.
    env.graph(Method::DELETE, &format!("/me/contacts/{b}"), None)
        .await;
    let batch = json!({"requests": [
        {"id": "1", "method": "GET", "url": format!("/me/contacts/{a}")},
        {"id": "2", "method": "GET", "url": format!("/me/contacts/{b}")},
        {"id": "3", "method": "GET", "url": format!("me/contacts/{a}?$select=surname")},
    ]});
    let reply = env.graph(Method::POST, "/$batch", Some(batch)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let responses = reply.body["responses"].as_array().unwrap();
    assert_eq!(responses.len(), 3);
    assert_eq!(responses[0]["id"], "1");
    assert_eq!(responses[0]["status"], 200);
    assert_eq!(responses[0]["body"]["id"], a.as_str());
    assert_eq!(responses[1]["status"], 404);
    assert_eq!(responses[1]["body"]["error"]["code"], "ErrorItemNotFound");
    assert_eq!(responses[2]["status"], 200);
    let keys: BTreeSet<&str> = responses[2]["body"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["@odata.context", "@odata.etag", "id", "surname"].into()
    );

    let too_many: Vec<Value> = (0..21)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": format!("/me/contacts/{a}")}))
        .collect();
    let reply = env
        .graph(Method::POST, "/$batch", Some(json!({"requests": too_many})))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body["error"]["code"], "BadRequest");
}

#[tokio::test]
async fn msgraph_auth_failure_body() {
    let env = env().await;
    let url = env.url("/graph/v1.0/me/contacts");
    let reply = env
        .fetch(
            Method::GET,
            &url,
            Auth::Bearer("wrong"),
            &[("client-request-id", "c0ffee00-0000-4000-8000-000000000001")],
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let error = &reply.body["error"];
    assert_eq!(error["code"], "InvalidAuthenticationToken");
    assert_eq!(error["message"], "Access token validation failure.");
    assert_eq!(
        error["innerError"]["client-request-id"],
        "c0ffee00-0000-4000-8000-000000000001"
    );
    assert_eq!(
        error["innerError"]["request-id"].as_str().unwrap().len(),
        36
    );
    let date = error["innerError"]["date"].as_str().unwrap();
    assert_eq!(date.len(), 19, "Graph dates carry no zone: {date}");
    assert!(
        reply.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let missing = env.fetch(Method::GET, &url, Auth::None, &[], None).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.body["error"]["message"], "Access token is empty.");
}

#[tokio::test]
async fn msgraph_throttling_is_429_with_retry_after() {
    let env = env().await;
    env.control(
        Method::POST,
        "/ratelimit",
        Some(json!({"provider": "msgraph", "max": 2, "intervalMs": 30000})),
    )
    .await;
    for _ in 0..2 {
        let ok = env.graph(Method::GET, "/me/contacts?$top=1", None).await;
        assert_eq!(ok.status, StatusCode::OK);
        assert!(ok.headers.get("retry-after").is_none());
        assert!(ok.headers.keys().all(|k| !k.as_str().contains("ratelimit")));
    }
    let limited = env.graph(Method::GET, "/me/contacts?$top=1", None).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    let wait = limited.header("retry-after").unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
    assert_eq!(limited.body["error"]["code"], "TooManyRequests");
    assert_eq!(
        limited.body["error"]["message"],
        "Application is over its MailboxConcurrency limit."
    );

    // Inside $batch each sub-request is charged, and throttled on its own.
    env.control(
        Method::POST,
        "/ratelimit",
        Some(json!({"provider": "msgraph", "max": 2, "intervalMs": 30000})),
    )
    .await;
    let requests: Vec<Value> = (1..=3)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/me/contacts?$top=1"}))
        .collect();
    let reply = env
        .graph(Method::POST, "/$batch", Some(json!({"requests": requests})))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let statuses: Vec<u64> = reply.body["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 200, 429]);
    assert!(reply.body["responses"][2]["headers"]["Retry-After"].is_string());
}

#[tokio::test]
async fn msgraph_cursor_faults() {
    let env = env().await;
    env.control(
        Method::POST,
        "/faults",
        Some(json!({"provider": "msgraph", "kind": "repeat_cursor"})),
    )
    .await;
    let url = env.url("/graph/v1.0/me/contacts?$top=5&$skip=10");
    let reply = env
        .fetch(
            Method::GET,
            &url,
            Auth::Bearer(MSGRAPH_DEMO_TOKEN),
            &[],
            None,
        )
        .await;
    assert_eq!(reply.body["@odata.nextLink"], url.as_str());
    let healed = env
        .fetch(
            Method::GET,
            &url,
            Auth::Bearer(MSGRAPH_DEMO_TOKEN),
            &[],
            None,
        )
        .await;
    let next = healed.body["@odata.nextLink"].as_str().unwrap();
    assert!(next.ends_with("$top=5&$skip=15"), "{next}");

    // out_of_range: the page links on past the end of the mailbox, to an empty page.
    let (all, _) = env.graph_page_all("/me/contacts?$top=100").await;
    env.control(
        Method::POST,
        "/faults",
        Some(json!({"provider": "msgraph", "kind": "out_of_range"})),
    )
    .await;
    let first = env.graph(Method::GET, "/me/contacts?$top=100", None).await;
    assert_eq!(first.body["value"].as_array().unwrap().len(), 100);
    let beyond = first.body["@odata.nextLink"].as_str().unwrap().to_owned();
    let skip: usize = beyond.rsplit("$skip=").next().unwrap().parse().unwrap();
    assert!(skip >= all.len(), "{beyond}");
    let empty = env
        .fetch(
            Method::GET,
            &beyond,
            Auth::Bearer(MSGRAPH_DEMO_TOKEN),
            &[],
            None,
        )
        .await;
    assert_eq!(empty.status, StatusCode::OK);
    assert_eq!(empty.body["value"], json!([]));
    assert!(empty.body.get("@odata.nextLink").is_none());
    // One use only: the next first page links on normally.
    let healed = env.graph(Method::GET, "/me/contacts?$top=100", None).await;
    assert!(
        healed.body["@odata.nextLink"]
            .as_str()
            .unwrap()
            .ends_with("$skip=100")
    );
}

#[tokio::test]
async fn google_paging_returns_every_connection_once() {
    let env = env().await;
    let (records, pages) = env
        .google_page_all(
            "/people/me/connections?personFields=names,emailAddresses,metadata&pageSize=7",
        )
        .await;
    assert!(records.len() >= 260, "only {}", records.len());
    assert_ne!(records.len() % 7, 0);
    assert_eq!(pages, records.len().div_ceil(7));
    let names: BTreeSet<&str> = records
        .iter()
        .map(|r| r["resourceName"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), records.len(), "duplicate connections");
    let allowed: BTreeSet<&str> = [
        "resourceName",
        "etag",
        "names",
        "emailAddresses",
        "metadata",
    ]
    .into();
    for r in &records {
        let keys: BTreeSet<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        assert!(keys.is_subset(&allowed), "{keys:?}");
        let name = r["resourceName"].as_str().unwrap();
        let digits = name.strip_prefix("people/c").unwrap();
        assert!(digits.bytes().all(|b| b.is_ascii_digit()), "{name}");
        assert_eq!(
            r["metadata"]["sources"][0]["id"],
            format!("{:x}", digits.parse::<u64>().unwrap()).as_str()
        );
    }
    // Default order: last modified ascending.
    let times: Vec<&str> = records
        .iter()
        .map(|r| r["metadata"]["sources"][0]["updateTime"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));

    let (by_name, _) = env
        .google_page_all(
            "/people/me/connections?personFields=names&pageSize=50&sortOrder=LAST_NAME_ASCENDING",
        )
        .await;
    let by_name: BTreeSet<&str> = by_name
        .iter()
        .map(|r| r["resourceName"].as_str().unwrap())
        .collect();
    assert_eq!(by_name, names);

    let default = env
        .google(
            Method::GET,
            "/people/me/connections?personFields=names",
            None,
        )
        .await;
    assert_eq!(default.body["connections"].as_array().unwrap().len(), 100);
    assert_eq!(default.body["totalPeople"], default.body["totalItems"]);

    let samples = sample_records("google", "contacts").unwrap();
    assert!(samples.iter().any(|s| s.get("emailAddresses").is_none()));
    assert!(samples.iter().any(|s| s.get("names").is_none()));
    assert!(
        samples
            .iter()
            .any(|s| s["userDefined"][0]["key"] == "customer_tier")
    );
    assert!(sample_records("google", "companies").is_none());
}

#[tokio::test]
async fn google_requires_person_fields() {
    let env = env().await;
    for path in [
        "/people/me/connections",
        "/people/me/connections?pageSize=10",
        "/people:batchGet?resourceNames=people/c1",
    ] {
        let reply = env.google(Method::GET, path, None).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
        let error = reply.body["error"].as_object().unwrap();
        assert_eq!(error["code"], 400);
        assert_eq!(error["status"], "INVALID_ARGUMENT");
        assert!(
            error["message"].as_str().unwrap().starts_with(
                "personFields mask is required. Please specify one or more valid paths."
            ),
            "{}",
            reply.body
        );
    }
    let bad = env
        .google(
            Method::GET,
            "/people/me/connections?personFields=names,shoeSize",
            None,
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("shoeSize")
    );
    let unknown_route = env.google(Method::GET, "/people/me/companies", None).await;
    assert_eq!(unknown_route.status, StatusCode::NOT_FOUND);
    assert!(
        unknown_route
            .body
            .as_str()
            .unwrap()
            .contains("<title>Error 404")
    );
}

#[tokio::test]
async fn google_create_update_delete_round_trip() {
    let env = env().await;
    let created = env
        .google(
            Method::POST,
            "/people:createContact?personFields=names,emailAddresses,userDefined",
            Some(json!({
                "names": [{"givenName": "Ada", "familyName": "Lovelace"}],
                "emailAddresses": [{"value": "ada@example.com", "type": "work"}],
                "userDefined": [{"key": "customer_tier", "value": "gold"}],
            })),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let resource = created.body["resourceName"].as_str().unwrap().to_owned();
    assert!(resource.starts_with("people/c"), "{resource}");
    assert_eq!(created.body["names"][0]["displayName"], "Ada Lovelace");
    assert_eq!(created.body["emailAddresses"][0]["formattedType"], "Work");
    assert_eq!(created.body["names"][0]["metadata"]["primary"], true);
    let etag = created.body["etag"].as_str().unwrap().to_owned();

    let fetched = env
        .google(
            Method::GET,
            &format!("/{resource}?personFields=names,userDefined"),
            None,
        )
        .await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.body["etag"], etag.as_str());
    assert_eq!(fetched.body["userDefined"][0]["value"], "gold");
    assert!(
        fetched.body.get("emailAddresses").is_none(),
        "only requested fields"
    );

    let update = format!(
        "/{resource}:updateContact?updatePersonFields=names&personFields=names,emailAddresses"
    );
    let stale = env
        .google(
            Method::PATCH,
            &update,
            Some(json!({"etag": "%EgUBAj0JPi4aDAECAwQFBgcICQoLDA==", "names": [{"givenName": "Augusta"}]})),
        )
        .await;
    assert_eq!(stale.status, StatusCode::BAD_REQUEST);
    assert_eq!(stale.body["error"]["status"], "FAILED_PRECONDITION");
    let no_etag = env
        .google(
            Method::PATCH,
            &update,
            Some(json!({"names": [{"givenName": "Augusta"}]})),
        )
        .await;
    assert_eq!(no_etag.status, StatusCode::BAD_REQUEST);
    assert_eq!(no_etag.body["error"]["status"], "INVALID_ARGUMENT");

    let updated = env
        .google(
            Method::PATCH,
            &update,
            Some(json!({"etag": etag, "names": [{"givenName": "Augusta", "familyName": "King"}]})),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["names"][0]["displayName"], "Augusta King");
    assert_eq!(
        updated.body["emailAddresses"][0]["value"], "ada@example.com",
        "outside the mask"
    );
    assert_ne!(updated.body["etag"], etag.as_str());
    let reused = env
        .google(
            Method::PATCH,
            &update,
            Some(json!({"etag": etag, "names": []})),
        )
        .await;
    assert_eq!(
        reused.status,
        StatusCode::BAD_REQUEST,
        "the old etag is stale now"
    );

    let deleted = env
        .google(Method::DELETE, &format!("/{resource}:deleteContact"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(deleted.body, json!({}));
    let gone = env
        .google(
            Method::GET,
            &format!("/{resource}?personFields=names"),
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(
        gone.body,
        json!({"error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND"}})
    );
}

#[tokio::test]
async fn google_batch_get_reports_missing_entries() {
    let env = env().await;
    let page = env
        .google(
            Method::GET,
            "/people/me/connections?personFields=names&pageSize=2",
            None,
        )
        .await;
    let a = page.body["connections"][0]["resourceName"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = page.body["connections"][1]["resourceName"]
        .as_str()
        .unwrap()
        .to_owned();
    let missing = "people/c1000000000000000001";
    let reply = env
        .google(
            Method::GET,
            &format!("/people:batchGet?resourceNames={a}&resourceNames={missing}&resourceNames={b}&personFields=names"),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let responses = reply.body["responses"].as_array().unwrap();
    let codes: Vec<u64> = responses
        .iter()
        .map(|r| r["httpStatusCode"].as_u64().unwrap())
        .collect();
    assert_eq!(codes, [200, 404, 200]);
    assert_eq!(responses[0]["requestedResourceName"], a.as_str());
    assert_eq!(responses[0]["person"]["resourceName"], a.as_str());
    assert!(responses[0]["person"]["names"].is_array());
    assert_eq!(responses[1]["requestedResourceName"], missing);
    assert!(responses[1].get("person").is_none());
    assert_eq!(responses[1]["status"]["code"], 5);

    let too_many: Vec<String> = (0..201)
        .map(|i| format!("resourceNames=people/c{}", i + 1))
        .collect();
    let reply = env
        .google(
            Method::GET,
            &format!("/people:batchGet?{}&personFields=names", too_many.join("&")),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body["error"]["status"], "INVALID_ARGUMENT");
}

#[tokio::test]
async fn google_auth_failure_and_quota_exhaustion() {
    let env = env().await;
    let url = env.url("/google/v1/people/me/connections?personFields=names");
    let reply = env
        .fetch(Method::GET, &url, Auth::Bearer("wrong"), &[], None)
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let error = &reply.body["error"];
    assert_eq!(error["code"], 401);
    assert_eq!(error["status"], "UNAUTHENTICATED");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("Request had invalid authentication credentials."),
        "{error}"
    );
    assert_eq!(
        error["details"][0]["@type"],
        "type.googleapis.com/google.rpc.ErrorInfo"
    );
    assert_eq!(
        error["details"][0]["metadata"]["method"],
        "google.people.v1.PeopleService.ListConnections"
    );

    env.control(
        Method::POST,
        "/ratelimit",
        Some(json!({"provider": "google", "max": 2, "intervalMs": 60000})),
    )
    .await;
    for _ in 0..2 {
        let ok = env
            .fetch(
                Method::GET,
                &url,
                Auth::Bearer(GOOGLE_DEMO_TOKEN),
                &[],
                None,
            )
            .await;
        assert_eq!(ok.status, StatusCode::OK);
        assert!(ok.headers.keys().all(|k| !k.as_str().contains("ratelimit")));
    }
    let limited = env
        .fetch(
            Method::GET,
            &url,
            Auth::Bearer(GOOGLE_DEMO_TOKEN),
            &[],
            None,
        )
        .await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers.get("retry-after").is_none());
    let error = &limited.body["error"];
    assert_eq!(error["code"], 429);
    assert_eq!(error["status"], "RESOURCE_EXHAUSTED");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("Quota exceeded for quota metric")
    );
    assert_eq!(error["details"][0]["reason"], "RATE_LIMIT_EXCEEDED");
}

#[tokio::test]
async fn google_repeat_cursor_fault() {
    let env = env().await;
    let base = "/people/me/connections?personFields=names&pageSize=5";
    let first = env.google(Method::GET, base, None).await;
    let token = first.body["nextPageToken"].as_str().unwrap().to_owned();
    env.control(
        Method::POST,
        "/faults",
        Some(json!({"provider": "google", "kind": "repeat_cursor", "times": 2})),
    )
    .await;
    let path = format!("{base}&pageToken={token}");
    let mut first_names = Vec::new();
    for _ in 0..2 {
        let reply = env.google(Method::GET, &path, None).await;
        assert_eq!(reply.body["nextPageToken"], token.as_str());
        first_names.push(reply.body["connections"][0]["resourceName"].clone());
    }
    assert_eq!(first_names[0], first_names[1]);
    let healed = env.google(Method::GET, &path, None).await;
    assert_ne!(healed.body["nextPageToken"], token.as_str());
    assert_eq!(
        healed.body["connections"][0]["resourceName"],
        first_names[0]
    );
}

impl Env {
    /// Walks a Google listing from `first` (a path with its query) to its last page,
    /// checking that only the last page carries `nextSyncToken`: every connection seen,
    /// that token, and the number of pages.
    async fn google_sync_walk(&self, first: &str) -> (Vec<Value>, Option<String>, usize) {
        let mut records = Vec::new();
        let mut pages = 0;
        let mut token: Option<String> = None;
        loop {
            let path = match &token {
                Some(t) => format!("{first}&pageToken={t}"),
                None => first.to_owned(),
            };
            let reply = self.google(Method::GET, &path, None).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            pages += 1;
            assert!(pages < 500, "paging did not terminate");
            if let Some(list) = reply.body.get("connections") {
                records.extend(list.as_array().unwrap().iter().cloned());
            }
            match reply.body.get("nextPageToken") {
                Some(t) => {
                    assert!(
                        reply.body.get("nextSyncToken").is_none(),
                        "a sync token before the last page: {}",
                        reply.body
                    );
                    token = Some(t.as_str().unwrap().to_owned());
                }
                None => {
                    let sync = reply.body.get("nextSyncToken").map(|t| {
                        let t = t.as_str().unwrap();
                        assert!(!t.is_empty());
                        t.to_owned()
                    });
                    return (records, sync, pages);
                }
            }
        }
    }

    /// The etag of a Google contact, for an update.
    async fn google_etag(&self, resource: &str) -> String {
        let reply = self
            .google(
                Method::GET,
                &format!("/{resource}?personFields=names"),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.body["etag"].as_str().unwrap().to_owned()
    }

    async fn google_rename(&self, resource: &str, given: &str) {
        let etag = self.google_etag(resource).await;
        let reply = self
            .google(
                Method::PATCH,
                &format!("/{resource}:updateContact?updatePersonFields=names&personFields=names"),
                Some(
                    json!({"etag": etag, "names": [{"givenName": given, "familyName": "Changed"}]}),
                ),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
}

fn resource_names(records: &[Value]) -> Vec<&str> {
    records
        .iter()
        .map(|r| r["resourceName"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn google_sync_token_lists_what_changed_and_was_deleted_since() {
    let env = env().await;
    // Two contacts a page: the walks below are long.
    env.control(
        Method::POST,
        "/ratelimit",
        Some(json!({"provider": "google", "max": 100000, "intervalMs": 60000})),
    )
    .await;
    let base =
        "/people/me/connections?personFields=names,metadata&pageSize=2&requestSyncToken=true";
    let (everyone, token, pages) = env.google_sync_walk(base).await;
    assert_eq!(everyone.len(), 260);
    assert_eq!(pages, 130);
    let token = token.expect("the last page of a full sync carries nextSyncToken");
    let (_, none, _) = env
        .google_sync_walk("/people/me/connections?personFields=names,metadata&pageSize=100")
        .await;
    assert!(none.is_none(), "no sync token unless asked for");

    let since = format!("{base}&syncToken={token}");
    let (unchanged, quiet_token, _) = env.google_sync_walk(&since).await;
    assert!(unchanged.is_empty(), "{unchanged:?}");
    assert!(quiet_token.is_some());

    let names = resource_names(&everyone);
    let (renamed, deleted) = (names[10].to_owned(), names[20].to_owned());
    env.google_rename(&renamed, "First").await;
    let created = env
        .google(
            Method::POST,
            "/people:createContact?personFields=names",
            Some(json!({"names": [{"givenName": "New", "familyName": "Contact"}]})),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let created = created.body["resourceName"].as_str().unwrap().to_owned();
    let gone = env
        .google(Method::DELETE, &format!("/{deleted}:deleteContact"), None)
        .await;
    assert_eq!(gone.status, StatusCode::OK);
    // Written twice: listed once, where its last write is.
    env.google_rename(&renamed, "Second").await;

    let (changes, next, pages) = env.google_sync_walk(&since).await;
    assert_eq!(pages, 2, "three changes, two a page");
    assert_eq!(
        resource_names(&changes),
        [created.as_str(), deleted.as_str(), renamed.as_str()]
    );
    assert_eq!(changes[0]["names"][0]["givenName"], "New");
    assert_eq!(changes[2]["names"][0]["givenName"], "Second");
    assert!(changes[2]["metadata"].get("deleted").is_none());
    let tombstone = &changes[1];
    assert_eq!(tombstone["metadata"]["deleted"], true);
    assert_eq!(tombstone["metadata"]["objectType"], "PERSON");
    assert!(
        tombstone.get("names").is_none(),
        "only metadata: {tombstone}"
    );
    assert!(tombstone["etag"].as_str().unwrap().starts_with('%'));
    let first_page = env.google(Method::GET, &since, None).await;
    assert_eq!(first_page.body["totalItems"], 3);

    // The newer token lists nothing; the older one, still alive, the same changes again.
    let (after_next, _, _) = env
        .google_sync_walk(&format!("{base}&syncToken={}", next.unwrap()))
        .await;
    assert!(after_next.is_empty(), "{after_next:?}");
    let (again, _, _) = env
        .google_sync_walk(&format!("{base}&syncToken={}", quiet_token.unwrap()))
        .await;
    assert_eq!(resource_names(&again), resource_names(&changes));
    let counts = env.control(Method::GET, "/google/sync-tokens", None).await;
    assert_eq!(counts.status, StatusCode::OK);
    // Every walk to its last page (full or of changes) hands out a token.
    assert_eq!(counts.body["issued"], 5);
    assert_eq!(counts.body["expiredRefusals"], 0);
    assert!(counts.body["changeListings"].as_u64().unwrap() >= 4);
}

#[tokio::test]
async fn google_page_and_sync_tokens_need_the_first_calls_parameters() {
    let env = env().await;
    let base = "/people/me/connections?personFields=names&pageSize=5";
    let first = env.google(Method::GET, base, None).await;
    let page = first.body["nextPageToken"].as_str().unwrap().to_owned();
    let refused = |reply: &Reply| {
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
        assert_eq!(
            reply.body,
            json!({"error": {"code": 400, "message": "Request contains an invalid argument.", "status": "INVALID_ARGUMENT"}})
        );
    };
    for other in [
        format!("/people/me/connections?personFields=names&pageSize=6&pageToken={page}"),
        format!("/people/me/connections?personFields=names,metadata&pageSize=5&pageToken={page}"),
        format!("{base}&sortOrder=LAST_MODIFIED_ASCENDING&pageToken={page}"),
        format!("{base}&requestSyncToken=true&pageToken={page}"),
    ] {
        refused(&env.google(Method::GET, &other, None).await);
    }
    let same = env
        .google(
            Method::GET,
            &format!("{base}&prettyPrint=false&pageToken={page}"),
            None,
        )
        .await;
    assert_eq!(
        same.status,
        StatusCode::OK,
        "system parameters do not count"
    );

    let sync_base = "/people/me/connections?personFields=names&requestSyncToken=true&pageSize=1000";
    let full = env.google(Method::GET, sync_base, None).await;
    let token = full.body["nextSyncToken"].as_str().unwrap().to_owned();
    for other in [
        format!("/people/me/connections?personFields=names&pageSize=1000&syncToken={token}"),
        format!(
            "/people/me/connections?personFields=names&requestSyncToken=true&syncToken={token}"
        ),
        format!("{sync_base}&sortOrder=FIRST_NAME_ASCENDING&syncToken={token}"),
        format!("{sync_base}&syncToken=not-a-token"),
    ] {
        refused(&env.google(Method::GET, &other, None).await);
    }
    let ok = env
        .google(Method::GET, &format!("{sync_base}&syncToken={token}"), None)
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let bad_flag = env
        .google(
            Method::GET,
            "/people/me/connections?personFields=names&requestSyncToken=yes",
            None,
        )
        .await;
    assert_eq!(bad_flag.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_flag.body["error"]["status"], "INVALID_ARGUMENT");
}

#[tokio::test]
async fn google_sync_tokens_expire_with_googles_refusal() {
    let env = env().await;
    let base = "/people/me/connections?personFields=names&requestSyncToken=true&pageSize=1000";
    let token = |reply: &Reply| reply.body["nextSyncToken"].as_str().unwrap().to_owned();
    let first = token(&env.google(Method::GET, base, None).await);
    let expired = |reply: &Reply| {
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
        assert_eq!(
            reply.body,
            json!({"error": {
                "code": 400,
                "message": "Sync token is expired. Clear local cache and retry call without the sync token.",
                "status": "FAILED_PRECONDITION",
                "details": [{
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "EXPIRED_SYNC_TOKEN",
                    "domain": "people.googleapis.com",
                }],
            }})
        );
    };
    let with = |t: &str| format!("{base}&syncToken={t}");
    assert_eq!(
        env.google(Method::GET, &with(&first), None).await.status,
        StatusCode::OK
    );
    let control = env
        .control(Method::POST, "/google/sync-tokens/expire", None)
        .await;
    assert_eq!(control.status, StatusCode::OK, "{}", control.body);
    expired(&env.google(Method::GET, &with(&first), None).await);

    // A full sync gives a token that works again.
    let second = token(&env.google(Method::GET, base, None).await);
    assert_eq!(
        env.google(Method::GET, &with(&second), None).await.status,
        StatusCode::OK
    );
    // A lifetime of 0 s: every token is too old; a longer one revives the recent ones.
    let set = env
        .control(
            Method::PUT,
            "/google/sync-tokens",
            Some(json!({"lifetimeSeconds": 0})),
        )
        .await;
    assert_eq!(set.body["lifetimeSeconds"], 0);
    expired(&env.google(Method::GET, &with(&second), None).await);
    env.control(
        Method::PUT,
        "/google/sync-tokens",
        Some(json!({"lifetimeSeconds": 3600})),
    )
    .await;
    assert_eq!(
        env.google(Method::GET, &with(&second), None).await.status,
        StatusCode::OK
    );
    for bad in [json!({"lifetimeSeconds": -1}), json!({"lifetime": 5})] {
        let reply = env
            .control(Method::PUT, "/google/sync-tokens", Some(bad))
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    }
    let counts = env.control(Method::GET, "/google/sync-tokens", None).await;
    assert_eq!(counts.body["expiredRefusals"], 2);
    // Two full syncs and the three listings of changes that were served.
    assert_eq!(counts.body["issued"], 5);

    // A reset is new data: its tokens are gone too.
    env.control(Method::POST, "/reset", None).await;
    expired(&env.google(Method::GET, &with(&second), None).await);
}

#[tokio::test]
async fn new_vendors_have_demo_accounts_and_stats() {
    let env = env().await;
    let accounts = env.sandbox.demo_accounts();
    let base = env.sandbox.base_url();
    let find = |p: &str| accounts.iter().find(|a| a.provider == p).unwrap();
    let pipedrive = find("pipedrive");
    assert_eq!(
        pipedrive.credentials,
        json!({"accessToken": PIPEDRIVE_DEMO_TOKEN})
    );
    assert_eq!(
        pipedrive.settings,
        json!({"apiDomain": format!("{base}/pipedrive")})
    );
    let graph = find("msgraph");
    assert_eq!(
        graph.credentials,
        json!({"accessToken": MSGRAPH_DEMO_TOKEN})
    );
    assert_eq!(
        graph.settings,
        json!({"baseUrl": format!("{base}/graph/v1.0")})
    );
    let google = find("google");
    assert_eq!(
        google.credentials,
        json!({"accessToken": GOOGLE_DEMO_TOKEN})
    );
    assert_eq!(
        google.settings,
        json!({"baseUrl": format!("{base}/google/v1")})
    );

    // Each base URL works as the gateway will use it.
    let api_domain = pipedrive.settings["apiDomain"].as_str().unwrap();
    let url = format!("{api_domain}/api/v2/organizations?limit=1");
    let reply = env
        .fetch(
            Method::GET,
            &url,
            Auth::Bearer(PIPEDRIVE_DEMO_TOKEN),
            &[],
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let url = format!(
        "{}/me/contacts?$top=1",
        graph.settings["baseUrl"].as_str().unwrap()
    );
    let reply = env
        .fetch(
            Method::GET,
            &url,
            Auth::Bearer(MSGRAPH_DEMO_TOKEN),
            &[],
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let url = format!(
        "{}/people/me/connections?personFields=names&pageSize=1",
        google.settings["baseUrl"].as_str().unwrap()
    );
    let reply = env
        .fetch(
            Method::GET,
            &url,
            Auth::Bearer(GOOGLE_DEMO_TOKEN),
            &[],
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    env.pipedrive(Method::GET, "/nowhere", None).await;

    let stats = env.control(Method::GET, "/stats", None).await;
    let routes = &stats.body["byRoute"];
    assert_eq!(routes["GET /pipedrive/api/v2/organizations"], 1, "{routes}");
    assert_eq!(routes["GET /pipedrive/{unmatched}"], 1, "{routes}");
    assert_eq!(routes["GET /graph/v1.0/me/contacts"], 1, "{routes}");
    assert_eq!(
        routes["GET /google/v1/people/me/connections"], 1,
        "{routes}"
    );
    assert_eq!(stats.body["byProvider"]["msgraph"], 1);

    // Reset restores each seed.
    env.pipedrive(Method::DELETE, "/persons/1", None).await;
    env.control(Method::POST, "/reset", None).await;
    let restored = env.pipedrive(Method::GET, "/persons/1", None).await;
    assert_eq!(restored.status, StatusCode::OK);
    assert_eq!(restored.header("x-daily-requests-left"), Some(9_999));
}

// ---------------------------------------------------------------------------------------
// HubSpot deals, owners and pipelines

/// `associations.<kind>.results[].id` of one HubSpot record, checking each entry's type.
fn hubspot_association_ids(record: &Value, kind: &str, label: &str) -> Vec<String> {
    record["associations"][kind]["results"]
        .as_array()
        .map(|results| {
            results
                .iter()
                .map(|r| {
                    assert_eq!(r["type"], label, "{record}");
                    r["id"].as_str().unwrap().to_owned()
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn hubspot_deals_page_every_deal_once() {
    let env = env().await;
    let (ids, pages) = env.page_all("/hubspot/crm/v3/objects/deals?limit=7").await;
    assert!(ids.len() >= 260, "only {} deals", ids.len());
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "duplicate deal ids");
    assert_eq!(pages, ids.len().div_ceil(7));
    assert_eq!(ids.first().map(String::as_str), Some("7001"));
    let numeric: Vec<u64> = ids.iter().map(|i| i.parse().unwrap()).collect();
    assert!(
        numeric.windows(2).all(|w| w[0] < w[1]),
        "stable order by id"
    );
    let (dated, _) = env
        .page_all("/hubspot/crm/objects/2026-03/deals?limit=100")
        .await;
    assert_eq!(dated, ids, "the date-versioned twin serves the same deals");

    // Default properties are HubSpot's deal set; every value is a string or null.
    let page = env
        .hubspot(Method::GET, "/crm/v3/objects/deals?limit=100", None)
        .await;
    let results = page.body["results"].as_array().unwrap();
    let keys: BTreeSet<&str> = results[0]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let expected: BTreeSet<&str> = [
        "amount",
        "closedate",
        "createdate",
        "dealname",
        "dealstage",
        "hs_lastmodifieddate",
        "hs_object_id",
        "pipeline",
    ]
    .into_iter()
    .collect();
    assert_eq!(keys, expected);
    assert!(results[0].get("associations").is_none(), "only when asked");
    assert!(results.iter().any(|r| r["properties"]["amount"].is_null()));
    for r in results {
        for (name, value) in r["properties"].as_object().unwrap() {
            assert!(value.is_string() || value.is_null(), "{name}: {value}");
        }
    }
}

#[tokio::test]
async fn hubspot_deal_associations_point_at_existing_records() {
    let env = env().await;
    let path = "/crm/v3/objects/deals?limit=100&properties=dealname,amount,deal_currency_code,dealstage,pipeline,closedate,hubspot_owner_id&associations=companies,contacts";
    let mut url = env.url(&format!("/hubspot{path}"));
    let mut companies = BTreeSet::new();
    let mut contacts = BTreeSet::new();
    let mut owners = BTreeSet::new();
    let mut deals = 0;
    let mut pipelines = BTreeSet::new();
    let mut currencies = BTreeSet::new();
    loop {
        let page = env
            .send_raw(Method::GET, &url, Some(HUBSPOT_DEMO_TOKEN), None)
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        for deal in page.body["results"].as_array().unwrap() {
            deals += 1;
            let company = hubspot_association_ids(deal, "companies", "deal_to_company");
            assert_eq!(company.len(), 1, "{deal}");
            let people = hubspot_association_ids(deal, "contacts", "deal_to_contact");
            assert!((1..=3).contains(&people.len()), "{deal}");
            companies.extend(company);
            contacts.extend(people);
            let props = &deal["properties"];
            owners.insert(props["hubspot_owner_id"].as_str().unwrap().to_owned());
            pipelines.insert(props["pipeline"].as_str().unwrap().to_owned());
            currencies.insert(props["deal_currency_code"].as_str().unwrap().to_owned());
            assert!(props["dealstage"].is_string() && props["closedate"].is_string());
            if let Some(amount) = props["amount"].as_str() {
                assert!(amount.parse::<f64>().is_ok(), "{amount}");
            }
        }
        let Some(link) = page.body["paging"]["next"]["link"].as_str() else {
            break;
        };
        url = link.to_owned();
    }
    assert!(deals >= 260);
    assert_eq!(pipelines.len(), 2, "{pipelines:?}");
    assert_eq!(
        currencies,
        ["EUR", "USD"].map(str::to_owned).into_iter().collect()
    );

    // Every association target exists: batch reads answer 200, not 207.
    for (kind, ids) in [("companies", &companies), ("contacts", &contacts)] {
        let ids: Vec<&String> = ids.iter().collect();
        for chunk in ids.chunks(100) {
            let inputs: Vec<Value> = chunk.iter().map(|id| json!({ "id": id })).collect();
            let reply = env
                .hubspot(
                    Method::POST,
                    &format!("/crm/v3/objects/{kind}/batch/read"),
                    Some(json!({ "inputs": inputs })),
                )
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{kind}: {}", reply.body);
            assert_eq!(reply.body["results"].as_array().unwrap().len(), chunk.len());
        }
    }
    // Every owner exists.
    for owner in &owners {
        let reply = env
            .hubspot(Method::GET, &format!("/crm/v3/owners/{owner}"), None)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{owner}: {}", reply.body);
    }

    // The fixture deal, read one at a time.
    let deal = env
        .hubspot(
            Method::GET,
            "/crm/v3/objects/deals/7001?properties=dealname,amount,dealstage,pipeline,hubspot_owner_id,deal_currency_code&associations=companies,contacts",
            None,
        )
        .await;
    assert_eq!(deal.status, StatusCode::OK, "{}", deal.body);
    let props = &deal.body["properties"];
    assert_eq!(props["dealname"], "Acme Corporation - Platform License");
    assert_eq!(props["amount"], "2500.00");
    assert_eq!(props["deal_currency_code"], "USD");
    assert_eq!(props["dealstage"], "appointmentscheduled");
    assert_eq!(props["pipeline"], "default");
    assert_eq!(props["hubspot_owner_id"], "80410001");
    assert_eq!(
        hubspot_association_ids(&deal.body, "companies", "deal_to_company"),
        ["5001"]
    );
    assert_eq!(
        hubspot_association_ids(&deal.body, "contacts", "deal_to_contact"),
        ["1001"]
    );
    // Only the requested associations come back.
    let only_companies = env
        .hubspot(
            Method::GET,
            "/crm/v3/objects/deals/7003?associations=companies",
            None,
        )
        .await;
    let assoc = only_companies.body["associations"].as_object().unwrap();
    assert_eq!(assoc.keys().collect::<Vec<_>>(), ["companies"]);

    // The reverse direction: the contact and the company see the deal.
    let contact = env
        .hubspot(
            Method::GET,
            "/crm/v3/objects/contacts/1001?associations=deals,companies",
            None,
        )
        .await;
    assert!(
        hubspot_association_ids(&contact.body, "deals", "contact_to_deal")
            .contains(&"7001".to_owned()),
        "{}",
        contact.body
    );
    assert_eq!(
        hubspot_association_ids(&contact.body, "companies", "contact_to_company"),
        ["5001"]
    );
    let company = env
        .hubspot(
            Method::GET,
            "/crm/v3/objects/companies?limit=1&associations=deals",
            None,
        )
        .await;
    assert!(
        hubspot_association_ids(&company.body["results"][0], "deals", "company_to_deal")
            .contains(&"7001".to_owned()),
        "{}",
        company.body
    );

    // sample_records("hubspot", "deals") is what this list endpoint returns.
    let samples = sample_records("hubspot", "deals").unwrap();
    assert!(samples.len() >= 5);
    for sample in &samples {
        let id = sample["id"].as_str().unwrap();
        let live = env
            .hubspot(
                Method::GET,
                &format!("/crm/v3/objects/deals/{id}?properties=dealname,description,amount,deal_currency_code,dealstage,pipeline,closedate,hubspot_owner_id,hs_deal_stage_probability,notes_last_updated&associations=companies,contacts"),
                None,
            )
            .await;
        assert_eq!(&live.body, sample);
    }
}

#[tokio::test]
async fn hubspot_owners_page_and_get() {
    let env = env().await;
    let (ids, pages) = env.page_all("/hubspot/crm/v3/owners?limit=5").await;
    assert!(ids.len() >= 12, "only {} owners", ids.len());
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len());
    assert_eq!(pages, ids.len().div_ceil(5));
    let (all, one_page) = env.page_all("/hubspot/crm/v3/owners").await;
    assert_eq!((all, one_page), (ids.clone(), 1), "default limit is 100");

    let first = env
        .hubspot(Method::GET, "/crm/v3/owners?limit=1", None)
        .await;
    let owner = &first.body["results"][0];
    for key in [
        "id",
        "email",
        "firstName",
        "lastName",
        "createdAt",
        "updatedAt",
    ] {
        assert!(owner[key].is_string(), "{key}: {owner}");
    }
    assert!(owner["userId"].is_u64(), "{owner}");
    assert_eq!(owner["archived"], false);
    assert_eq!(owner["id"], "80410001");

    let id = owner["id"].as_str().unwrap();
    let got = env
        .hubspot(Method::GET, &format!("/crm/v3/owners/{id}"), None)
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(&got.body, owner);
    let by_user = env
        .hubspot(
            Method::GET,
            &format!("/crm/v3/owners/{}?idProperty=userId", owner["userId"]),
            None,
        )
        .await;
    assert_eq!(&by_user.body, owner);
    let by_email = env
        .hubspot(
            Method::GET,
            &format!("/crm/v3/owners?email={}", owner["email"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(by_email.body["results"], json!([owner]));

    for unknown in ["424242", "abc"] {
        let missing = env
            .hubspot(Method::GET, &format!("/crm/v3/owners/{unknown}"), None)
            .await;
        assert_hubspot_error(&missing, StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND");
        assert_eq!(missing.body["context"]["id"], json!([unknown]));
    }
    let archived = env
        .hubspot(Method::GET, "/crm/v3/owners?archived=true", None)
        .await;
    let archived = archived.body["results"].as_array().unwrap();
    assert!(!archived.is_empty());
    assert!(archived.iter().all(|o| o["archived"] == true));
    assert!(
        archived
            .iter()
            .all(|o| !ids.contains(&o["id"].as_str().unwrap().to_owned()))
    );
    let too_big = env
        .hubspot(Method::GET, "/crm/v3/owners?limit=501", None)
        .await;
    assert_hubspot_error(&too_big, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    let unauthenticated = env
        .send(Method::GET, "/hubspot/crm/v3/owners", None, None)
        .await;
    assert_hubspot_error(
        &unauthenticated,
        StatusCode::UNAUTHORIZED,
        "INVALID_AUTHENTICATION",
    );
}

#[tokio::test]
async fn hubspot_deal_pipelines_have_closed_stages() {
    let env = env().await;
    let list = env
        .hubspot(Method::GET, "/crm/v3/pipelines/deals", None)
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert!(list.headers.contains_key("x-hubspot-ratelimit-remaining"));
    let pipelines = list.body["results"].as_array().unwrap();
    assert_eq!(pipelines.len(), 2);
    let default = &pipelines[0];
    assert_eq!(default["id"], "default");
    assert_eq!(default["label"], "Sales Pipeline");
    assert_eq!(default["displayOrder"], 0);
    let stages = default["stages"].as_array().unwrap();
    assert_eq!(stages[0]["id"], "appointmentscheduled");
    assert_eq!(stages[0]["label"], "Appointment Scheduled");
    assert_eq!(stages[0]["displayOrder"], 0);
    assert_eq!(
        stages[0]["metadata"],
        json!({ "isClosed": "false", "probability": "0.2" })
    );
    let stage = |id: &str| stages.iter().find(|s| s["id"] == id).unwrap();
    assert_eq!(
        stage("closedwon")["metadata"],
        json!({ "isClosed": "true", "probability": "1.0" })
    );
    assert_eq!(
        stage("closedlost")["metadata"],
        json!({ "isClosed": "true", "probability": "0.0" })
    );
    for pipeline in pipelines {
        let stages = pipeline["stages"].as_array().unwrap();
        assert!(stages.iter().any(|s| s["metadata"]["isClosed"] == "true"));
        let id = pipeline["id"].as_str().unwrap();
        let one = env
            .hubspot(Method::GET, &format!("/crm/v3/pipelines/deals/{id}"), None)
            .await;
        assert_eq!(one.status, StatusCode::OK);
        assert_eq!(&one.body, pipeline);
        let only_stages = env
            .hubspot(
                Method::GET,
                &format!("/crm/v3/pipelines/deals/{id}/stages"),
                None,
            )
            .await;
        assert_eq!(&only_stages.body["results"], &pipeline["stages"]);
    }
    // Every seeded deal's stage is a stage of its pipeline.
    let page = env
        .hubspot(
            Method::GET,
            "/crm/v3/objects/deals?limit=100&properties=pipeline,dealstage",
            None,
        )
        .await;
    for deal in page.body["results"].as_array().unwrap() {
        let pipeline = pipelines
            .iter()
            .find(|p| p["id"] == deal["properties"]["pipeline"])
            .unwrap();
        assert!(
            pipeline["stages"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["id"] == deal["properties"]["dealstage"]),
            "{deal}"
        );
    }
    let missing = env
        .hubspot(Method::GET, "/crm/v3/pipelines/deals/nope", None)
        .await;
    assert_hubspot_error(&missing, StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND");
}

#[tokio::test]
async fn hubspot_deal_create_update_delete_round_trip() {
    let env = env().await;
    let created = env
        .hubspot(
            Method::POST,
            "/crm/v3/objects/deals",
            Some(json!({
                "properties": {
                    "dealname": "Round Trip Deal",
                    "amount": "4200.00",
                    "deal_currency_code": "EUR",
                    "dealstage": "qualifiedtobuy",
                    "hubspot_owner_id": "80410002",
                },
                "associations": [
                    { "to": { "id": "5003" }, "types": [{ "associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5 }] },
                    { "to": { "id": 1002 }, "types": [{ "associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3 }] },
                ],
            })),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert!(id.parse::<u64>().unwrap() > 7260, "new id {id}");
    assert_eq!(created.body["properties"]["pipeline"], "default");
    assert_eq!(created.body["properties"]["hs_object_id"], id.as_str());
    let item = format!("/crm/v3/objects/deals/{id}");

    let fetched = env
        .hubspot(
            Method::GET,
            &format!("{item}?properties=dealname,amount,deal_currency_code&associations=companies,contacts"),
            None,
        )
        .await;
    assert_eq!(fetched.body["properties"]["dealname"], "Round Trip Deal");
    assert_eq!(fetched.body["properties"]["amount"], "4200.00");
    assert_eq!(
        hubspot_association_ids(&fetched.body, "companies", "deal_to_company"),
        ["5003"]
    );
    assert_eq!(
        hubspot_association_ids(&fetched.body, "contacts", "deal_to_contact"),
        ["1002"]
    );
    let contact = env
        .hubspot(
            Method::GET,
            "/crm/v3/objects/contacts/1002?associations=deals",
            None,
        )
        .await;
    assert!(
        hubspot_association_ids(&contact.body, "deals", "contact_to_deal").contains(&id),
        "{}",
        contact.body
    );

    // Stages must belong to the deal's pipeline.
    let wrong_stage = env
        .hubspot(
            Method::PATCH,
            &item,
            Some(json!({"properties": {"dealstage": "39820481"}})),
        )
        .await;
    assert_hubspot_error(&wrong_stage, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert!(
        wrong_stage.body["message"]
            .as_str()
            .unwrap()
            .contains("INVALID_OPTION")
    );
    let moved = env
        .hubspot(
            Method::PATCH,
            &item,
            Some(json!({"properties": {"pipeline": "39820477", "dealstage": "39820481", "amount": null}})),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    assert_eq!(moved.body["properties"]["dealstage"], "39820481");
    assert!(moved.body["properties"].get("amount").is_none(), "cleared");
    let closed = env
        .hubspot(
            Method::PATCH,
            &item,
            Some(json!({"properties": {"pipeline": "default", "dealstage": "closedwon"}})),
        )
        .await;
    assert_eq!(closed.status, StatusCode::OK, "{}", closed.body);
    let fetched = env
        .hubspot(
            Method::GET,
            &format!("{item}?properties=dealstage,pipeline,amount"),
            None,
        )
        .await;
    assert_eq!(fetched.body["properties"]["dealstage"], "closedwon");
    assert_eq!(fetched.body["properties"]["pipeline"], "default");
    assert_eq!(fetched.body["properties"]["amount"], Value::Null);
    assert!(fetched.body["updatedAt"].as_str() >= created.body["updatedAt"].as_str());

    // Creation refuses unknown properties, missing association types and dead targets.
    let unknown = env
        .hubspot(
            Method::POST,
            "/crm/v3/objects/deals",
            Some(json!({"properties": {"dealname": "x", "shoe_size": "44"}})),
        )
        .await;
    assert_hubspot_error(&unknown, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    let untyped = env
        .hubspot(
            Method::POST,
            "/crm/v3/objects/deals",
            Some(
                json!({"properties": {"dealname": "x"}, "associations": [{"to": {"id": "5003"}}]}),
            ),
        )
        .await;
    assert_hubspot_error(&untyped, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    let dead = env
        .hubspot(
            Method::POST,
            "/crm/v3/objects/deals",
            Some(json!({"properties": {"dealname": "x"}, "associations": [{"to": {"id": "999999"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 341}]}]})),
        )
        .await;
    assert_hubspot_error(&dead, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");

    let deleted = env.hubspot(Method::DELETE, &item, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = env.hubspot(Method::GET, &item, None).await;
    assert_hubspot_error(&gone, StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND");
    let archived = env
        .hubspot(Method::GET, &format!("{item}?archived=true"), None)
        .await;
    assert_eq!(archived.body["archived"], true);
    let contact = env
        .hubspot(
            Method::GET,
            "/crm/v3/objects/contacts/1002?associations=deals",
            None,
        )
        .await;
    assert!(
        !hubspot_association_ids(&contact.body, "deals", "contact_to_deal").contains(&id),
        "archived deals drop out of associations"
    );

    // Reset restores the seeded deals and forgets the new one.
    env.hubspot(Method::DELETE, "/crm/v3/objects/deals/7001", None)
        .await;
    assert_eq!(
        env.control(Method::POST, "/reset", None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        env.hubspot(Method::GET, &item, None).await.status,
        StatusCode::NOT_FOUND
    );
    let restored = env
        .hubspot(Method::GET, "/crm/v3/objects/deals/7001", None)
        .await;
    assert_eq!(restored.status, StatusCode::OK);
    assert_eq!(
        restored.body["properties"]["dealname"],
        "Acme Corporation - Platform License"
    );
}

#[tokio::test]
async fn hubspot_deal_batch_read_reports_missing_ids_with_207() {
    let env = env().await;
    let reply = env
        .hubspot(
            Method::POST,
            "/crm/v3/objects/deals/batch/read",
            Some(json!({"properties": ["dealname", "amount"], "inputs": [{"id": "7001"}, {"id": "7999"}, {"id": "7260"}]})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::MULTI_STATUS, "{}", reply.body);
    assert_eq!(reply.body["status"], "COMPLETE");
    assert_eq!(reply.body["numErrors"], 1);
    let error = &reply.body["errors"][0];
    assert_eq!(error["category"], "OBJECT_NOT_FOUND");
    assert_eq!(error["context"]["ids"], json!(["7999"]));
    assert!(error["message"].as_str().unwrap().contains("DEAL objects"));
    let results = reply.body["results"].as_array().unwrap();
    let ids: Vec<&str> = results.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["7001", "7260"]);
    assert_eq!(
        results[0]["properties"]["dealname"],
        "Acme Corporation - Platform License"
    );

    // Stats label the new routes by template.
    env.hubspot(Method::GET, "/crm/v3/objects/deals/7002", None)
        .await;
    env.hubspot(Method::GET, "/crm/v3/owners/80410003", None)
        .await;
    env.hubspot(Method::GET, "/crm/v3/pipelines/deals/default", None)
        .await;
    let stats = env.control(Method::GET, "/stats", None).await;
    let routes = &stats.body["byRoute"];
    assert_eq!(
        routes["POST /hubspot/crm/v3/objects/deals/batch/read"], 1,
        "{routes}"
    );
    assert_eq!(
        routes["GET /hubspot/crm/v3/objects/deals/{dealId}"], 1,
        "{routes}"
    );
    assert_eq!(
        routes["GET /hubspot/crm/v3/owners/{ownerId}"], 1,
        "{routes}"
    );
    assert_eq!(
        routes["GET /hubspot/crm/v3/pipelines/deals/{pipelineId}"], 1,
        "{routes}"
    );
}
