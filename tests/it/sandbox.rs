//! The vendor sandbox over real HTTP: each test spawns its own server on a free loopback
//! port, so tests never share counters, tokens or faults.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use tessera::sandbox::{HUBSPOT_DEMO_TOKEN, Sandbox, sample_records};

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
    assert!(list.len() >= 40);
    assert!(companies.body.get("paging").is_none());
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
    assert_eq!(accounts.len(), 1);
    let hubspot = &accounts[0];
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
