//! Webhook deliveries over real HTTP: each test runs a sandbox and a small receiver on
//! loopback, subscribes (or configures the app), changes records through the API and
//! through `/_control/webhooks/{provider}/touch`, and checks what the receiver got:
//! bodies, headers and signatures recomputed here. Waits poll a condition with a deadline.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::Mac as _;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use sha2::Digest as _;
use tessera_sandbox::{
    HUBSPOT_CLIENT_SECRET, HUBSPOT_DEMO_TOKEN, MSGRAPH_DEMO_TOKEN, PIPEDRIVE_DEMO_TOKEN, Sandbox,
    ZOHO_DEMO_TOKEN,
};

const DEADLINE: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------
// A receiver that records every request and answers as scripted

#[derive(Clone, Debug)]
struct Hit {
    at: Instant,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Hit {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "non-JSON delivery ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn validation_token(&self) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_deref()?.as_bytes())
            .find(|(k, _)| k == "validationToken")
            .map(|(_, v)| v.into_owned())
    }
}

#[derive(Clone, Copy, Debug, Default)]
enum Validation {
    /// 200 `text/plain` with the decoded token, as Graph requires.
    #[default]
    Echo,
    /// 200 with something else.
    Wrong,
    Status(u16),
}

#[derive(Default)]
struct Script {
    /// Answers for the next notifications, then 200.
    statuses: VecDeque<u16>,
    validation: Validation,
    delay: Option<Duration>,
}

#[derive(Clone)]
struct Receiver {
    base: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    script: Arc<Mutex<Script>>,
}

async fn record(State(r): State<Receiver>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let hit = Hit {
        at: Instant::now(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers,
        body: body.to_vec(),
    };
    let token = hit.validation_token();
    r.hits.lock().unwrap().push(hit);
    let (status, validation, delay) = {
        let mut script = r.script.lock().unwrap();
        let status = if token.is_some() {
            None
        } else {
            script.statuses.pop_front()
        };
        (status, script.validation, script.delay)
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    if let Some(token) = token {
        return match validation {
            Validation::Echo => {
                (AxumStatus::OK, [("content-type", "text/plain")], token).into_response()
            }
            Validation::Wrong => (AxumStatus::OK, "not the token").into_response(),
            Validation::Status(s) => AxumStatus::from_u16(s).unwrap().into_response(),
        };
    }
    AxumStatus::from_u16(status.unwrap_or(200))
        .unwrap()
        .into_response()
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let receiver = Receiver {
            base: format!("http://{addr}"),
            hits: Arc::default(),
            script: Arc::default(),
        };
        let app = Router::new().fallback(record).with_state(receiver.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        receiver
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn hits(&self, path: &str) -> Vec<Hit> {
        let hits = self.hits.lock().unwrap();
        hits.iter().filter(|h| h.path == path).cloned().collect()
    }

    /// Notifications (validation requests left out) received at `path`.
    fn notifications(&self, path: &str) -> Vec<Hit> {
        self.hits(path)
            .into_iter()
            .filter(|h| h.validation_token().is_none())
            .collect()
    }

    fn answer(&self, statuses: &[u16]) {
        self.script.lock().unwrap().statuses = statuses.iter().copied().collect();
    }

    fn validate(&self, mode: Validation) {
        self.script.lock().unwrap().validation = mode;
    }

    fn delay(&self, delay: Duration) {
        self.script.lock().unwrap().delay = Some(delay);
    }

    /// Waits until `path` has received at least `n` notifications and returns them.
    async fn wait_for(&self, path: &str, n: usize) -> Vec<Hit> {
        eventually(&format!("{n} notification(s) at {path}"), || {
            let hits = self.notifications(path);
            (hits.len() >= n).then_some(hits)
        })
        .await
    }
}

async fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------
// The sandbox side

struct Env {
    sandbox: Sandbox,
    http: Client,
}

#[derive(Debug)]
struct Reply {
    status: StatusCode,
    body: Value,
    elapsed: Duration,
}

impl Env {
    async fn new() -> Env {
        let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
        Env {
            sandbox: Sandbox::spawn(listen).await.unwrap(),
            http: Client::new(),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Option<String>,
        body: Option<Value>,
    ) -> Reply {
        let started = Instant::now();
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.sandbox.base_url()));
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
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
            body,
            elapsed: started.elapsed(),
        }
    }

    async fn control(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call(method, &format!("/_control{path}"), None, body)
            .await
    }

    async fn hubspot(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let auth = format!("Bearer {HUBSPOT_DEMO_TOKEN}");
        self.call(method, &format!("/hubspot{path}"), Some(auth), body)
            .await
    }

    async fn graph(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let auth = format!("Bearer {MSGRAPH_DEMO_TOKEN}");
        self.call(method, &format!("/graph/v1.0{path}"), Some(auth), body)
            .await
    }

    async fn pipedrive(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let auth = format!("Bearer {PIPEDRIVE_DEMO_TOKEN}");
        self.call(method, &format!("/pipedrive{path}"), Some(auth), body)
            .await
    }

    async fn zoho(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let auth = format!("Zoho-oauthtoken {ZOHO_DEMO_TOKEN}");
        self.call(method, &format!("/zoho/crm/v8{path}"), Some(auth), body)
            .await
    }

    async fn configure(&self, provider: &str, config: Value) {
        let reply = self
            .control(Method::PUT, &format!("/webhooks/{provider}"), Some(config))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }

    async fn faults(&self, provider: &str, faults: Value) {
        let reply = self
            .control(
                Method::POST,
                &format!("/webhooks/{provider}/faults"),
                Some(faults),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }

    async fn touch(&self, provider: &str, spec: Value) -> String {
        let reply = self
            .control(
                Method::POST,
                &format!("/webhooks/{provider}/touch"),
                Some(spec.clone()),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{spec}: {}", reply.body);
        assert_eq!(reply.body["action"], spec["action"]);
        reply.body["id"].as_str().unwrap().to_owned()
    }

    async fn state(&self, provider: &str) -> Value {
        let reply = self
            .control(Method::GET, &format!("/webhooks/{provider}"), None)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.body
    }

    /// Polls the control plane's log until `done` holds for it.
    async fn sent_until(&self, provider: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let sent = self.state(provider).await["sent"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if done(&sent) {
                return sent;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting on the {provider} log: {sent:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A URL nothing listens on (the port was free a moment ago), for connection errors.
fn closed_url(path: &str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}{path}")
}

fn later(seconds: i64) -> String {
    (Utc::now() + chrono::Duration::seconds(seconds)).to_rfc3339()
}

fn instant(raw: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(raw.as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

// ---------------------------------------------------------------------------------------
// HubSpot

fn sha256_hex(data: &[u8]) -> String {
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn hubspot_v1(secret: &str, body: &[u8]) -> String {
    sha256_hex(&[secret.as_bytes(), body].concat())
}

fn hubspot_v2(secret: &str, url: &str, body: &[u8]) -> String {
    sha256_hex(&[secret.as_bytes(), b"POST", url.as_bytes(), body].concat())
}

fn hubspot_v3(secret: &str, url: &str, body: &[u8], timestamp: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(&[b"POST", url.as_bytes(), body, timestamp.as_bytes()].concat());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Every event of every request, in arrival order.
fn all_events(hits: &[Hit]) -> Vec<Value> {
    hits.iter()
        .flat_map(|h| h.json().as_array().cloned().unwrap())
        .collect()
}

#[tokio::test]
async fn hubspot_api_changes_arrive_signed_v3_in_batches() {
    let env = Env::new().await;
    let receiver = Receiver::start().await;
    let target = receiver.url("/hubspot?app=tessera");

    // Nothing is configured yet: the account details still answer, behind the gate.
    let anonymous = env
        .call(Method::GET, "/hubspot/account-info/v3/details", None, None)
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let account = env
        .hubspot(Method::GET, "/account-info/v3/details", None)
        .await;
    assert_eq!(account.status, StatusCode::OK, "{}", account.body);
    assert_eq!(account.body["timeZone"], "US/Eastern");
    assert_eq!(account.body["utcOffsetMilliseconds"], -18_000_000);
    let portal = account.body["portalId"].as_u64().unwrap();

    env.configure(
        "hubspot",
        json!({ "targetUrl": target, "secret": HUBSPOT_CLIENT_SECRET, "batchWindowMs": 300 }),
    )
    .await;
    let state = env.state("hubspot").await;
    assert_eq!(state["config"]["signatureVersion"], "v3");
    assert!(state["config"].get("secret").is_none(), "{state}");

    let created = env
        .hubspot(
            Method::POST,
            "/crm/v3/objects/contacts",
            Some(json!({ "properties": { "email": "ada@example.com", "firstname": "Ada" } })),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id: u64 = created.body["id"].as_str().unwrap().parse().unwrap();
    let updated = env
        .hubspot(
            Method::PATCH,
            &format!("/crm/v3/objects/contacts/{id}"),
            // `firstname` keeps its value: only `lastname` and `jobtitle` change.
            Some(json!({ "properties": { "firstname": "Ada", "lastname": "Lovelace", "jobtitle": "Analyst" } })),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);

    let hits = eventually("three HubSpot events", || {
        let hits = receiver.notifications("/hubspot");
        (all_events(&hits).len() >= 3).then_some(hits)
    })
    .await;
    for hit in &hits {
        assert_eq!(hit.query.as_deref(), Some("app=tessera"));
        assert_eq!(hit.header("content-type"), Some("application/json"));
        assert_eq!(hit.header("x-hubspot-signature-version"), Some("v1"));
        assert_eq!(
            hit.header("x-hubspot-signature"),
            Some(hubspot_v1(HUBSPOT_CLIENT_SECRET, &hit.body).as_str())
        );
        let timestamp = hit.header("x-hubspot-request-timestamp").unwrap();
        let ms: i64 = timestamp.parse().unwrap();
        assert!((Utc::now().timestamp_millis() - ms).abs() < 300_000);
        assert_eq!(
            hit.header("x-hubspot-signature-v3"),
            Some(hubspot_v3(HUBSPOT_CLIENT_SECRET, &target, &hit.body, timestamp).as_str())
        );
    }
    let events = all_events(&hits);
    assert_eq!(events.len(), 3, "{events:?}");
    let creation = &events[0];
    assert_eq!(creation["subscriptionType"], "contact.creation");
    assert_eq!(creation["changeFlag"], "NEW");
    assert_eq!(creation["objectId"], id);
    assert_eq!(creation["portalId"], portal);
    assert_eq!(creation["changeSource"], "API");
    assert_eq!(creation["attemptNumber"], 0);
    assert!(creation["appId"].is_u64() && creation["subscriptionId"].is_u64());
    let occurred = creation["occurredAt"].as_i64().unwrap();
    assert!((Utc::now().timestamp_millis() - occurred).abs() < 60_000);
    let changes: Vec<(&str, &str)> = events[1..]
        .iter()
        .map(|e| {
            assert_eq!(e["subscriptionType"], "contact.propertyChange");
            assert_eq!(e["objectId"], id);
            assert!(e.get("changeFlag").is_none());
            (
                e["propertyName"].as_str().unwrap(),
                e["propertyValue"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(changes, [("lastname", "Lovelace"), ("jobtitle", "Analyst")]);
    let ids: Vec<u64> = events
        .iter()
        .map(|e| e["eventId"].as_u64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

    // The log has one entry per POST.
    let sent = env.sent_until("hubspot", |s| s.len() == hits.len()).await;
    for entry in &sent {
        assert_eq!(entry["status"], 200);
        assert_eq!(entry["attempt"], 1);
        assert_eq!(entry["kind"], "notification");
        assert_eq!(entry["dropped"], false);
        assert_eq!(entry["url"], target.as_str());
    }
    let counted: u64 = sent.iter().map(|e| e["eventCount"].as_u64().unwrap()).sum();
    assert_eq!(counted, 3);

    // Deletion through the API.
    let deleted = env
        .hubspot(
            Method::DELETE,
            &format!("/crm/v3/objects/contacts/{id}"),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let hits = eventually("the deletion", || {
        let hits = receiver.notifications("/hubspot");
        (all_events(&hits).len() >= 4).then_some(hits)
    })
    .await;
    let last = all_events(&hits).pop().unwrap();
    assert_eq!(last["subscriptionType"], "contact.deletion");
    assert_eq!(last["objectId"], id);
}

#[tokio::test]
async fn hubspot_delivery_never_blocks_the_api_call() {
    let env = Env::new().await;
    let receiver = Receiver::start().await;
    receiver.delay(Duration::from_secs(3));
    env.configure(
        "hubspot",
        json!({ "targetUrl": receiver.url("/slow"), "secret": "s", "batchWindowMs": 0 }),
    )
    .await;
    let created = env
        .hubspot(
            Method::POST,
            "/crm/v3/objects/companies",
            Some(json!({ "properties": { "name": "Slowpoke Ltd" } })),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert!(
        created.elapsed < Duration::from_secs(2),
        "the write waited for the receiver: {:?}",
        created.elapsed
    );
    receiver.wait_for("/slow", 1).await;
}

#[tokio::test]
async fn hubspot_touch_signs_with_each_signature_version() {
    let env = Env::new().await;
    let receiver = Receiver::start().await;
    let secret = "app-secret";

    // v1: the signature header alone.
    let v1 = receiver.url("/v1");
    env.configure(
        "hubspot",
        json!({ "targetUrl": v1, "secret": secret, "signatureVersion": "v1" }),
    )
    .await;
    let id = env
        .touch(
            "hubspot",
            json!({ "resource": "contacts", "id": "1004", "action": "updated" }),
        )
        .await;
    assert_eq!(id, "1004");
    let hit = receiver.wait_for("/v1", 1).await.remove(0);
    assert_eq!(hit.header("x-hubspot-signature-version"), Some("v1"));
    assert_eq!(
        hit.header("x-hubspot-signature"),
        Some(hubspot_v1(secret, &hit.body).as_str())
    );
    assert!(hit.header("x-hubspot-signature-v3").is_none());
    let event = &hit.json()[0];
    assert_eq!(event["subscriptionType"], "contact.propertyChange");
    assert_eq!(event["propertyName"], "jobtitle");
    assert_eq!(event["changeSource"], "CRM");
    assert_eq!(event["objectId"], 1004);
    // The change is visible to a later read.
    let read = env
        .hubspot(
            Method::GET,
            "/crm/v3/objects/contacts/1004?properties=jobtitle,lastmodifieddate",
            None,
        )
        .await;
    assert_eq!(read.body["properties"]["jobtitle"], event["propertyValue"]);
    let modified = instant(&read.body["properties"]["lastmodifieddate"]);
    assert!((Utc::now() - modified).num_seconds() < 60);

    // v2: secret + method + URL + body.
    let v2 = receiver.url("/v2");
    env.configure(
        "hubspot",
        json!({ "targetUrl": v2, "signatureVersion": "v2" }),
    )
    .await;
    let company = env
        .touch(
            "hubspot",
            json!({ "resource": "companies", "action": "created" }),
        )
        .await;
    let hit = receiver.wait_for("/v2", 1).await.remove(0);
    assert_eq!(hit.header("x-hubspot-signature-version"), Some("v2"));
    assert_eq!(
        hit.header("x-hubspot-signature"),
        Some(hubspot_v2(secret, &v2, &hit.body).as_str())
    );
    let event = &hit.json()[0];
    assert_eq!(event["subscriptionType"], "company.creation");
    assert_eq!(event["objectId"].to_string(), company);
    let read = env
        .hubspot(
            Method::GET,
            &format!("/crm/v3/objects/companies/{company}"),
            None,
        )
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);

    // A deletion, and then the wrong secret.
    let v3 = receiver.url("/v3");
    env.configure(
        "hubspot",
        json!({ "targetUrl": v3, "signatureVersion": "v3" }),
    )
    .await;
    env.touch(
        "hubspot",
        json!({ "resource": "deals", "id": 7001, "action": "deleted" }),
    )
    .await;
    let hit = receiver.wait_for("/v3", 1).await.remove(0);
    assert_eq!(hit.json()[0]["subscriptionType"], "deal.deletion");
    let gone = env
        .hubspot(Method::GET, "/crm/v3/objects/deals/7001", None)
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);

    env.faults("hubspot", json!({ "wrongSignature": true }))
        .await;
    env.touch(
        "hubspot",
        json!({ "resource": "deals", "action": "updated" }),
    )
    .await;
    let hit = receiver.wait_for("/v3", 2).await.remove(1);
    let timestamp = hit.header("x-hubspot-request-timestamp").unwrap();
    assert_ne!(
        hit.header("x-hubspot-signature-v3"),
        Some(hubspot_v3(secret, &v3, &hit.body, timestamp).as_str())
    );
    assert_ne!(
        hit.header("x-hubspot-signature"),
        Some(hubspot_v1(secret, &hit.body).as_str())
    );
    let cleared = env
        .control(Method::DELETE, "/webhooks/hubspot/faults", None)
        .await;
    assert_eq!(cleared.status, StatusCode::NO_CONTENT);
    env.touch(
        "hubspot",
        json!({ "resource": "deals", "action": "updated" }),
    )
    .await;
    let hit = receiver.wait_for("/v3", 3).await.remove(2);
    assert_eq!(
        hit.header("x-hubspot-signature"),
        Some(hubspot_v1(secret, &hit.body).as_str())
    );
}

#[tokio::test]
async fn hubspot_retries_failed_posts_and_drop_next_skips_deliveries() {
    let env = Env::new().await;
    let receiver = Receiver::start().await;
    env.configure(
        "hubspot",
        json!({ "targetUrl": receiver.url("/retry"), "secret": "s", "maxAttempts": 3 }),
    )
    .await;

    receiver.answer(&[500, 503]);
    env.touch(
        "hubspot",
        json!({ "resource": "contacts", "action": "updated" }),
    )
    .await;
    let hits = receiver.wait_for("/retry", 3).await;
    let attempts: Vec<u64> = hits
        .iter()
        .map(|h| h.json()[0]["attemptNumber"].as_u64().unwrap())
        .collect();
    assert_eq!(attempts, [0, 1, 2]);
    let first_event = hits[0].json()[0]["eventId"].clone();
    assert!(hits.iter().all(|h| h.json()[0]["eventId"] == first_event));
    // Backoff 200 ms, then 400 ms.
    assert!(hits[1].at - hits[0].at >= Duration::from_millis(190));
    assert!(hits[2].at - hits[1].at >= Duration::from_millis(390));
    let sent = env.sent_until("hubspot", |s| s.len() == 3).await;
    let log: Vec<(u64, u64)> = sent
        .iter()
        .map(|e| {
            (
                e["attempt"].as_u64().unwrap(),
                e["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(log, [(1, 500), (2, 503), (3, 200)]);

    // Out of attempts: the delivery is given up after maxAttempts.
    env.configure("hubspot", json!({ "maxAttempts": 2 })).await;
    receiver.answer(&[500, 500, 500]);
    env.touch(
        "hubspot",
        json!({ "resource": "contacts", "action": "updated" }),
    )
    .await;
    let sent = env.sent_until("hubspot", |s| s.len() == 5).await;
    assert_eq!(sent[3]["status"], 500);
    assert_eq!(sent[4]["status"], 500);
    assert_eq!(sent[4]["attempt"], 2);
    receiver.answer(&[]);

    // dropNext: the change happens, the delivery does not; the next one does. (A dropped
    // delivery is a whole POST: the wait keeps the two changes out of one batch.)
    env.faults("hubspot", json!({ "dropNext": 1 })).await;
    let dropped = env
        .touch(
            "hubspot",
            json!({ "resource": "contacts", "id": "1002", "action": "updated" }),
        )
        .await;
    env.sent_until("hubspot", |s| s.iter().any(|e| e["dropped"] == true))
        .await;
    env.touch(
        "hubspot",
        json!({ "resource": "contacts", "id": "1005", "action": "updated" }),
    )
    .await;
    let before = receiver.notifications("/retry").len();
    let hits = receiver.wait_for("/retry", before.max(6)).await;
    let objects: Vec<u64> = hits
        .iter()
        .flat_map(|h| h.json().as_array().cloned().unwrap())
        .map(|e| e["objectId"].as_u64().unwrap())
        .collect();
    assert!(objects.contains(&1005), "{objects:?}");
    assert!(
        !objects.contains(&1002),
        "a dropped delivery arrived: {objects:?}"
    );
    let read = env
        .hubspot(
            Method::GET,
            &format!("/crm/v3/objects/contacts/{dropped}?properties=jobtitle"),
            None,
        )
        .await;
    assert!(
        read.body["properties"]["jobtitle"]
            .as_str()
            .unwrap()
            .starts_with("Edited in HubSpot")
    );
    let sent = env.state("hubspot").await["sent"].clone();
    let drops: Vec<&Value> = sent
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["dropped"] == true)
        .collect();
    assert_eq!(drops.len(), 1, "{sent}");
    assert!(drops[0]["status"].is_null() && drops[0]["error"].is_null());

    // Connection errors are retried and logged with the error text.
    let closed = closed_url("/closed");
    env.configure("hubspot", json!({ "targetUrl": closed, "maxAttempts": 2 }))
        .await;
    env.touch(
        "hubspot",
        json!({ "resource": "contacts", "action": "updated" }),
    )
    .await;
    let sent = env
        .sent_until("hubspot", |s| {
            s.iter().filter(|e| e["url"] == closed.as_str()).count() == 2
        })
        .await;
    let last = sent.last().unwrap();
    assert!(last["status"].is_null());
    assert!(
        last["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{last}"
    );
}

// ---------------------------------------------------------------------------------------
// Microsoft Graph

async fn graph_subscribe(env: &Env, receiver: &Receiver, path: &str, extra: Value) -> Reply {
    let mut body = json!({
        "changeType": "created,updated,deleted",
        "notificationUrl": receiver.url(path),
        "resource": "me/contacts",
        "expirationDateTime": later(3600),
        "clientState": "secret-state",
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    env.graph(Method::POST, "/subscriptions", Some(body)).await
}

#[tokio::test]
async fn graph_subscriptions_validate_notify_renew_and_expire() {
    let env = Env::new().await;
    let receiver = Receiver::start().await;
    let created = graph_subscribe(
        &env,
        &receiver,
        "/graph",
        json!({ "lifecycleNotificationUrl": receiver.url("/graph-lifecycle") }),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let sub = created.body.clone();
    let id = sub["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 36);
    assert!(
        sub["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#subscriptions/$entity")
    );
    assert_eq!(sub["resource"], "me/contacts");
    assert_eq!(sub["changeType"], "created,updated,deleted");
    assert_eq!(sub["clientState"], "secret-state");
    assert_eq!(sub["notificationUrl"], receiver.url("/graph"));
    assert_eq!(
        sub["lifecycleNotificationUrl"],
        receiver.url("/graph-lifecycle")
    );
    assert_eq!(sub["includeResourceData"], false);
    assert_eq!(sub["latestSupportedTlsVersion"], "v1_2");
    assert!(sub["applicationId"].is_string() && sub["creatorId"].is_string());
    let expires = instant(&sub["expirationDateTime"]);
    assert!((expires - Utc::now()).num_minutes() >= 59);

    // Both URLs were validated before the create answered.
    for path in ["/graph", "/graph-lifecycle"] {
        let probes = receiver.hits(path);
        assert_eq!(probes.len(), 1, "{path}");
        let probe = &probes[0];
        assert!(
            probe
                .validation_token()
                .unwrap()
                .starts_with("Validation: ")
        );
        assert_eq!(
            probe.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert!(probe.body.is_empty());
    }

    // A contact created through the API.
    let contact = env
        .graph(
            Method::POST,
            "/me/contacts",
            Some(json!({ "givenName": "Ada", "surname": "Lovelace" })),
        )
        .await;
    assert_eq!(contact.status, StatusCode::CREATED, "{}", contact.body);
    let contact_id = contact.body["id"].as_str().unwrap().to_owned();
    let hit = receiver.wait_for("/graph", 1).await.remove(0);
    assert_eq!(
        hit.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let value = hit.json()["value"].as_array().unwrap().clone();
    assert_eq!(value.len(), 1);
    let note = &value[0];
    assert_eq!(note["subscriptionId"], id.as_str());
    assert_eq!(note["changeType"], "created");
    assert_eq!(note["clientState"], "secret-state");
    assert!(note["tenantId"].is_string());
    let resource = note["resource"].as_str().unwrap();
    assert!(
        resource.starts_with("Users/") && resource.ends_with(&format!("/Contacts/{contact_id}"))
    );
    assert_eq!(note["resourceData"]["id"], contact_id.as_str());
    assert_eq!(
        note["resourceData"]["@odata.type"],
        "#Microsoft.Graph.Contact"
    );
    assert_eq!(note["resourceData"]["@odata.id"], resource);
    assert_eq!(
        note["resourceData"]["@odata.etag"],
        contact.body["@odata.etag"]
    );
    assert!(
        note["subscriptionExpirationDateTime"]
            .as_str()
            .unwrap()
            .ends_with("+00:00")
    );

    // Touched in Outlook: an update, then a deletion.
    env.touch(
        "msgraph",
        json!({ "resource": "contacts", "id": contact_id, "action": "updated" }),
    )
    .await;
    env.touch(
        "msgraph",
        json!({ "resource": "contacts", "id": contact_id, "action": "deleted" }),
    )
    .await;
    let hits = receiver.wait_for("/graph", 2).await;
    let kinds: Vec<String> = hits
        .iter()
        .flat_map(|h| h.json()["value"].as_array().cloned().unwrap())
        .map(|n| n["changeType"].as_str().unwrap().to_owned())
        .collect();
    eventually("the update and the deletion", || {
        let kinds: Vec<String> = receiver
            .notifications("/graph")
            .iter()
            .flat_map(|h| h.json()["value"].as_array().cloned().unwrap())
            .map(|n| n["changeType"].as_str().unwrap().to_owned())
            .collect();
        (kinds.len() >= 3).then_some(())
    })
    .await;
    assert_eq!(kinds[0], "created");
    let all: Vec<String> = receiver
        .notifications("/graph")
        .iter()
        .flat_map(|h| h.json()["value"].as_array().cloned().unwrap())
        .map(|n| n["changeType"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(all, ["created", "updated", "deleted"]);
    let gone = env
        .graph(Method::GET, &format!("/me/contacts/{contact_id}"), None)
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);

    // Listing and reading.
    let list = env.graph(Method::GET, "/subscriptions", None).await;
    assert_eq!(list.body["value"].as_array().unwrap().len(), 1);
    let one = env
        .graph(Method::GET, &format!("/subscriptions/{id}"), None)
        .await;
    assert_eq!(one.body["id"], id.as_str());

    // Renewal: within bounds, raised to the minimum, refused past the maximum.
    let item = format!("/subscriptions/{id}");
    let renewed = env
        .graph(
            Method::PATCH,
            &item,
            Some(json!({ "expirationDateTime": later(7200) })),
        )
        .await;
    assert_eq!(renewed.status, StatusCode::OK, "{}", renewed.body);
    assert!((instant(&renewed.body["expirationDateTime"]) - Utc::now()).num_minutes() >= 119);
    let short = env
        .graph(
            Method::PATCH,
            &item,
            Some(json!({ "expirationDateTime": later(60) })),
        )
        .await;
    assert_eq!(short.status, StatusCode::OK);
    assert!((instant(&short.body["expirationDateTime"]) - Utc::now()).num_minutes() >= 44);
    let too_far = env
        .graph(
            Method::PATCH,
            &item,
            Some(json!({ "expirationDateTime": later(10_081 * 60) })),
        )
        .await;
    assert_eq!(too_far.status, StatusCode::BAD_REQUEST);
    assert_eq!(too_far.body["error"]["code"], "ExtensionError");
    assert_eq!(
        too_far.body["error"]["message"],
        "Subscription expiration can only be 10080 minutes in the future."
    );

    // renewalFails: as if expired, until the faults are cleared.
    env.faults("msgraph", json!({ "renewalFails": true })).await;
    let refused = env
        .graph(
            Method::PATCH,
            &item,
            Some(json!({ "expirationDateTime": later(3600) })),
        )
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    assert_eq!(refused.body["error"]["code"], "ResourceNotFound");
    assert_eq!(
        refused.body["error"]["message"],
        "The object was not found."
    );
    env.control(Method::DELETE, "/webhooks/msgraph/faults", None)
        .await;
    let again = env
        .graph(
            Method::PATCH,
            &item,
            Some(json!({ "expirationDateTime": later(3600) })),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
    let reauthorized = env
        .graph(Method::POST, &format!("{item}/reauthorize"), None)
        .await;
    assert_eq!(reauthorized.status, StatusCode::OK);

    // A second subscription, then the first expires: only the second hears of changes.
    let second = graph_subscribe(&env, &receiver, "/graph-2", json!({})).await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.body);
    let second_id = second.body["id"].as_str().unwrap().to_owned();
    let expired = env
        .control(
            Method::POST,
            "/webhooks/msgraph/expire",
            Some(json!({ "id": id })),
        )
        .await;
    assert_eq!(expired.status, StatusCode::OK, "{}", expired.body);
    for (method, path) in [
        (Method::GET, item.clone()),
        (Method::POST, format!("{item}/reauthorize")),
    ] {
        let reply = env.graph(method, &path, None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
    }
    let renew = env
        .graph(
            Method::PATCH,
            &item,
            Some(json!({ "expirationDateTime": later(3600) })),
        )
        .await;
    assert_eq!(renew.status, StatusCode::NOT_FOUND);
    let before = receiver.notifications("/graph").len();
    env.touch(
        "msgraph",
        json!({ "resource": "contacts", "action": "created" }),
    )
    .await;
    receiver.wait_for("/graph-2", 1).await;
    assert_eq!(receiver.notifications("/graph").len(), before);
    let state = env.state("msgraph").await;
    let listed: Vec<(String, bool)> = state["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_owned(),
                s["expired"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed, [(id.clone(), true), (second_id.clone(), false)]);
    let kinds: Vec<&str> = state["sent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "validation").count(), 3);

    // Lifecycle notifications go to the notification URL when there is no lifecycle URL.
    let lifecycle = env
        .control(
            Method::POST,
            "/webhooks/msgraph/lifecycle",
            Some(
                json!({ "subscriptionId": second_id, "lifecycleEvent": "reauthorizationRequired" }),
            ),
        )
        .await;
    assert_eq!(lifecycle.status, StatusCode::ACCEPTED, "{}", lifecycle.body);
    let hits = receiver.wait_for("/graph-2", 2).await;
    let event = &hits[1].json()["value"][0];
    assert_eq!(event["lifecycleEvent"], "reauthorizationRequired");
    assert_eq!(event["subscriptionId"], second_id.as_str());
    assert_eq!(event["clientState"], "secret-state");
    assert!(event["tenantId"].is_string());
    assert!(event["subscriptionExpirationDateTime"].is_string());
    env.control(
        Method::POST,
        "/webhooks/msgraph/lifecycle",
        Some(json!({ "subscriptionId": second_id, "lifecycleEvent": "subscriptionRemoved" })),
    )
    .await;
    let hits = receiver.wait_for("/graph-2", 3).await;
    assert_eq!(
        hits[2].json()["value"][0]["lifecycleEvent"],
        "subscriptionRemoved"
    );
    let removed = env
        .graph(Method::GET, &format!("/subscriptions/{second_id}"), None)
        .await;
    assert_eq!(removed.status, StatusCode::NOT_FOUND);

    // A third, deleted by the client.
    let third = graph_subscribe(&env, &receiver, "/graph-3", json!({})).await;
    let third_item = format!("/subscriptions/{}", third.body["id"].as_str().unwrap());
    let deleted = env.graph(Method::DELETE, &third_item, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let deleted = env.graph(Method::DELETE, &third_item, None).await;
    assert_eq!(deleted.status, StatusCode::NOT_FOUND);
    let list = env.graph(Method::GET, "/subscriptions", None).await;
    assert_eq!(list.body["value"], json!([]));
}

#[tokio::test]
async fn graph_create_fails_without_a_proper_handshake() {
    let env = Env::new().await;
    let receiver = Receiver::start().await;
    let assert_validation_error = |reply: &Reply| {
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
        assert_eq!(reply.body["error"]["code"], "ValidationError");
        assert_eq!(
            reply.body["error"]["message"],
            "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request."
        );
        assert!(reply.body["error"]["innerError"]["request-id"].is_string());
    };

    receiver.validate(Validation::Wrong);
    assert_validation_error(&graph_subscribe(&env, &receiver, "/wrong", json!({})).await);
    receiver.validate(Validation::Status(500));
    assert_validation_error(&graph_subscribe(&env, &receiver, "/error", json!({})).await);
    // The lifecycle URL is validated too.
    receiver.validate(Validation::Echo);
    let bad_lifecycle = graph_subscribe(
        &env,
        &receiver,
        "/fine",
        json!({ "lifecycleNotificationUrl": closed_url("/closed") }),
    )
    .await;
    assert_validation_error(&bad_lifecycle);
    // validationFails overrides a correct answer.
    env.faults("msgraph", json!({ "validationFails": true }))
        .await;
    assert_validation_error(&graph_subscribe(&env, &receiver, "/fine", json!({})).await);
    env.control(Method::DELETE, "/webhooks/msgraph/faults", None)
        .await;
    let list = env.graph(Method::GET, "/subscriptions", None).await;
    assert_eq!(list.body["value"], json!([]));

    // Request errors, before any handshake.
    let missing = env
        .graph(
            Method::POST,
            "/subscriptions",
            Some(json!({ "changeType": "created", "notificationUrl": receiver.url("/x"), "resource": "me/contacts" })),
        )
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        missing.body["error"]["message"],
        "expirationDateTime is a required property for subscription creation."
    );
    let far = graph_subscribe(
        &env,
        &receiver,
        "/x",
        json!({ "expirationDateTime": later(10_081 * 60) }),
    )
    .await;
    assert_eq!(far.body["error"]["code"], "ExtensionError");
    for bad in [
        json!({ "changeType": "moved" }),
        json!({ "resource": "me/messages" }),
        json!({ "clientState": "x".repeat(129) }),
        json!({ "includeResourceData": true }),
        json!({ "notificationUrl": "not a url" }),
    ] {
        let reply = graph_subscribe(&env, &receiver, "/x", bad.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            reply.body
        );
    }
    assert!(receiver.hits("/x").is_empty());
    // Behind the API gate.
    let anonymous = env
        .call(Method::GET, "/graph/v1.0/subscriptions", None, None)
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn graph_short_lifetimes_expire_and_wrong_client_state() {
    let env = Env::new().await;
    let receiver = Receiver::start().await;
    env.configure(
        "msgraph",
        json!({ "minLifetimeSeconds": 1, "maxLifetimeSeconds": 3 }),
    )
    .await;
    let far = graph_subscribe(
        &env,
        &receiver,
        "/short",
        json!({ "expirationDateTime": later(60) }),
    )
    .await;
    assert_eq!(far.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        far.body["error"]["message"],
        "Subscription expiration can only be 0.05 minutes in the future."
    );
    let created = graph_subscribe(
        &env,
        &receiver,
        "/short",
        json!({ "expirationDateTime": later(2) }),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let item = format!("/subscriptions/{}", created.body["id"].as_str().unwrap());

    env.faults("msgraph", json!({ "wrongSignature": true }))
        .await;
    env.touch(
        "msgraph",
        json!({ "resource": "contacts", "action": "updated" }),
    )
    .await;
    let hit = receiver.wait_for("/short", 1).await.remove(0);
    assert_ne!(hit.json()["value"][0]["clientState"], "secret-state");

    // It runs out by itself.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let reply = env.graph(Method::GET, &item, None).await;
        if reply.status == StatusCode::NOT_FOUND {
            break;
        }
        assert!(Instant::now() < deadline, "never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let state = env.state("msgraph").await;
    assert_eq!(state["subscriptions"][0]["expired"], true);

    // Graph has no companies or deals.
    let refused = env
        .control(
            Method::POST,
            "/webhooks/msgraph/touch",
            Some(json!({ "resource": "deals", "action": "created" })),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
}

// ---------------------------------------------------------------------------------------
// Pipedrive

async fn pipedrive_webhook(env: &Env, body: Value) -> Reply {
    env.pipedrive(Method::POST, "/api/v1/webhooks", Some(body))
        .await
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[tokio::test]
async fn pipedrive_webhooks_deliver_v2_payloads_with_basic_auth() {
    let env = Env::new().await;
    let receiver = Receiver::start().await;
    let created = pipedrive_webhook(
        &env,
        json!({
            "subscription_url": receiver.url("/persons"),
            "event_action": "*",
            "event_object": "person",
            "name": "Tessera",
            "http_auth_user": "hook",
            "http_auth_password": "pw",
        }),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["status"], "ok");
    assert_eq!(created.body["success"], true);
    let hook = &created.body["data"];
    let hook_id = hook["id"].as_u64().unwrap();
    for (field, expected) in [
        ("event_action", json!("*")),
        ("event_object", json!("person")),
        ("version", json!("2.0")),
        ("is_active", json!(1)),
        ("type", json!("general")),
        ("http_auth_user", json!("hook")),
        ("http_auth_password", json!("pw")),
        ("remove_time", Value::Null),
        ("remove_reason", Value::Null),
        ("last_delivery_time", Value::Null),
        ("last_http_status", Value::Null),
        ("name", json!("Tessera")),
    ] {
        assert_eq!(hook[field], expected, "{field}");
    }
    for field in ["company_id", "owner_id", "user_id", "admin_id"] {
        assert!(hook[field].is_u64(), "{field}");
    }
    assert!(hook["add_time"].is_string());
    let deals = pipedrive_webhook(
        &env,
        json!({ "subscription_url": receiver.url("/deals"), "event_action": "create", "event_object": "deal" }),
    )
    .await;
    assert_eq!(deals.status, StatusCode::CREATED);

    // Through the API: create, then change.
    let person = env
        .pipedrive(
            Method::POST,
            "/api/v2/persons",
            Some(json!({ "name": "Ada Lovelace" })),
        )
        .await;
    assert!(person.status.is_success(), "{}", person.body);
    let person_id = person.body["data"]["id"].as_u64().unwrap();
    let changed = env
        .pipedrive(
            Method::PATCH,
            &format!("/api/v2/persons/{person_id}"),
            Some(json!({ "name": "Ada King" })),
        )
        .await;
    assert!(changed.status.is_success(), "{}", changed.body);
    let hits = receiver.wait_for("/persons", 2).await;
    for hit in &hits {
        assert_eq!(
            hit.header("authorization"),
            Some(basic("hook", "pw").as_str())
        );
        assert_eq!(hit.header("content-type"), Some("application/json"));
    }
    let create = hits[0].json();
    let meta = &create["meta"];
    assert_eq!(meta["action"], "create");
    assert_eq!(meta["entity"], "person");
    assert_eq!(meta["entity_id"], person_id.to_string());
    assert_eq!(meta["version"], "2.0");
    assert_eq!(meta["webhook_id"], hook_id.to_string());
    assert_eq!(meta["attempt"], 1);
    assert_eq!(meta["change_source"], "api");
    assert_eq!(meta["is_bulk_edit"], false);
    assert_eq!(meta["type"], "general");
    assert!(meta["company_id"].is_string() && meta["user_id"].is_string());
    assert_eq!(meta["webhook_owner_id"], meta["user_id"]);
    assert_eq!(meta["permitted_user_ids"], json!([meta["user_id"]]));
    assert!(meta["host"].as_str().unwrap().ends_with(".pipedrive.com"));
    assert_eq!(meta["id"].as_str().unwrap().len(), 36);
    assert_eq!(meta["correlation_id"].as_str().unwrap().len(), 36);
    instant(&meta["timestamp"]);
    assert_eq!(create["data"], person.body["data"]);
    assert!(create["previous"].is_null());
    let change = hits[1].json();
    assert_eq!(change["meta"]["action"], "change");
    assert_eq!(change["data"]["name"], "Ada King");
    assert_eq!(change["previous"]["name"], "Ada Lovelace");
    assert!(
        change["previous"].get("emails").is_none(),
        "{}",
        change["previous"]
    );

    // Deleted in the app.
    env.touch(
        "pipedrive",
        json!({ "resource": "contacts", "id": person_id, "action": "deleted" }),
    )
    .await;
    let delete = receiver.wait_for("/persons", 3).await[2].json();
    assert_eq!(delete["meta"]["action"], "delete");
    assert_eq!(delete["meta"]["change_source"], "app");
    assert!(delete["data"].is_null());
    assert_eq!(delete["previous"]["name"], "Ada King");

    // A deal created in the app reaches the deal webhook only; the person webhook got
    // exactly the three deliveries above (the queue is in order, so they are all in).
    let deal = env
        .touch(
            "pipedrive",
            json!({ "resource": "deals", "action": "created" }),
        )
        .await;
    let deal_hits = receiver.wait_for("/deals", 1).await;
    assert_eq!(deal_hits.len(), 1);
    assert_eq!(deal_hits[0].json()["meta"]["entity_id"], deal.as_str());
    assert!(deal_hits[0].header("authorization").is_none());
    assert_eq!(receiver.notifications("/persons").len(), 3);
    let read = env
        .pipedrive(Method::GET, &format!("/api/v2/deals/{deal}"), None)
        .await;
    assert_eq!(read.status, StatusCode::OK);

    // The webhook remembers its last delivery.
    let list = env.pipedrive(Method::GET, "/api/v1/webhooks", None).await;
    assert_eq!(list.body["success"], true);
    let listed = list.body["data"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["last_http_status"], 200);
    assert!(listed[0]["last_delivery_time"].is_string());

    // Retries count up `meta.attempt`; the wrong password is sent when asked for.
    receiver.answer(&[500]);
    env.faults("pipedrive", json!({ "wrongSignature": true }))
        .await;
    env.touch(
        "pipedrive",
        json!({ "resource": "contacts", "action": "updated" }),
    )
    .await;
    let hits = receiver.wait_for("/persons", 5).await;
    assert_eq!(hits[3].json()["meta"]["attempt"], 1);
    assert_eq!(hits[4].json()["meta"]["attempt"], 2);
    assert_eq!(hits[3].json()["meta"]["id"], hits[4].json()["meta"]["id"]);
    assert_eq!(
        hits[4].header("authorization"),
        Some(basic("hook", "pw-wrong").as_str())
    );

    // Deleting a webhook.
    let item = format!("/api/v1/webhooks/{hook_id}");
    let deleted = env.pipedrive(Method::DELETE, &item, None).await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(deleted.body, json!({ "status": "ok", "success": true }));
    let again = env.pipedrive(Method::DELETE, &item, None).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert_eq!(again.body["success"], false);
}

#[tokio::test]
async fn pipedrive_webhook_validation_limits_v1_and_expiry() {
    let env = Env::new().await;
    let receiver = Receiver::start().await;
    for bad in [
        json!({ "event_action": "*", "event_object": "person" }),
        json!({ "subscription_url": "nope", "event_action": "*", "event_object": "person" }),
        json!({ "subscription_url": receiver.url("/x"), "event_action": "poked", "event_object": "person" }),
        json!({ "subscription_url": receiver.url("/x"), "event_action": "*", "event_object": "planet" }),
        json!({ "subscription_url": receiver.url("/x"), "event_action": "*", "event_object": "person", "version": "3.0" }),
    ] {
        let reply = pipedrive_webhook(&env, bad.clone()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(reply.body["success"], false);
        assert!(reply.body["error"].is_string());
    }

    // A v1 webhook gets the v1 envelope.
    let v1 = pipedrive_webhook(
        &env,
        json!({ "subscription_url": receiver.url("/v1"), "event_action": "added", "event_object": "organization", "version": "1.0" }),
    )
    .await;
    assert_eq!(v1.status, StatusCode::CREATED, "{}", v1.body);
    let org = env
        .touch(
            "pipedrive",
            json!({ "resource": "companies", "action": "created" }),
        )
        .await;
    let body = receiver.wait_for("/v1", 1).await[0].json();
    assert_eq!(body["v"], 1);
    assert_eq!(body["event"], "added.organization");
    assert_eq!(body["retry"], 0);
    assert_eq!(body["meta"]["action"], "added");
    assert_eq!(body["meta"]["object"], "organization");
    assert_eq!(body["meta"]["id"].to_string(), org);
    assert_eq!(body["meta"]["change_source"], "app");
    assert_eq!(body["current"]["id"].to_string(), org);
    assert!(body["previous"].is_null());

    // At most 40 webhooks.
    for _ in 1..40 {
        let reply = pipedrive_webhook(
            &env,
            json!({ "subscription_url": receiver.url("/many"), "event_action": "*", "event_object": "*" }),
        )
        .await;
        assert_eq!(reply.status, StatusCode::CREATED);
    }
    let over = pipedrive_webhook(
        &env,
        json!({ "subscription_url": receiver.url("/many"), "event_action": "*", "event_object": "*" }),
    )
    .await;
    assert_eq!(over.status, StatusCode::BAD_REQUEST, "{}", over.body);

    // Expired (as Pipedrive removes a webhook that keeps failing): gone from the list.
    let id = v1.body["data"]["id"].to_string();
    let expired = env
        .control(
            Method::POST,
            "/webhooks/pipedrive/expire",
            Some(json!({ "id": id })),
        )
        .await;
    assert_eq!(expired.status, StatusCode::OK);
    let list = env.pipedrive(Method::GET, "/api/v1/webhooks", None).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 39);
    let delete = env
        .pipedrive(Method::DELETE, &format!("/api/v1/webhooks/{id}"), None)
        .await;
    assert_eq!(delete.status, StatusCode::NOT_FOUND);
}

// ---------------------------------------------------------------------------------------
// Zoho

fn channel(id: u64, notify_url: &str, extra: Value) -> Value {
    let mut entry = json!({
        "channel_id": id,
        "events": ["Contacts.all", "Deals.create"],
        "notify_url": notify_url,
        "token": "tok-1",
        "return_affected_field_values": true,
    });
    for (k, v) in extra.as_object().unwrap() {
        entry[k] = v.clone();
    }
    entry
}

async fn zoho_watch(env: &Env, method: Method, entries: Vec<Value>) -> Reply {
    env.zoho(method, "/actions/watch", Some(json!({ "watch": entries })))
        .await
}

#[tokio::test]
async fn zoho_channels_notify_with_their_token() {
    let env = Env::new().await;
    let receiver = Receiver::start().await;
    let url = receiver.url("/zoho?key1=val1");
    let enabled = zoho_watch(
        &env,
        Method::POST,
        vec![channel(1_000_000_068_001, &url, json!({}))],
    )
    .await;
    assert_eq!(enabled.status, StatusCode::OK, "{}", enabled.body);
    let entry = &enabled.body["watch"][0];
    assert_eq!(entry["code"], "SUCCESS");
    assert_eq!(entry["status"], "success");
    assert_eq!(
        entry["message"],
        "Successfully subscribed for actions-watch of the given module"
    );
    let events = entry["details"]["events"].as_array().unwrap();
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["resource_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Contacts", "Deals"]);
    assert_eq!(
        events[0]["resource_uri"],
        "https://www.zohoapis.com/crm/v8/Contacts"
    );
    assert_eq!(events[0]["channel_id"], "1000000068001");
    assert!(events[0]["resource_id"].is_string());
    let expiry = instant(&events[0]["channel_expiry"]);
    assert!(
        (expiry - Utc::now()).num_minutes() >= 59,
        "default 1 h: {expiry}"
    );

    let list = env.zoho(Method::GET, "/actions/watch", None).await;
    assert_eq!(list.status, StatusCode::OK);
    let listed = list.body["watch"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(
        listed[0]["events"],
        json!(["Contacts.create", "Contacts.edit", "Contacts.delete"])
    );
    assert_eq!(listed[0]["token"], "tok-1");
    assert_eq!(listed[0]["notify_url"], url.as_str());

    // Through the API: an update reports the affected fields, a create is an insert.
    let contact = env
        .zoho(
            Method::POST,
            "/Contacts",
            Some(json!({ "data": [{ "Last_Name": "Lovelace" }] })),
        )
        .await;
    assert_eq!(contact.status, StatusCode::CREATED, "{}", contact.body);
    let id = contact.body["data"][0]["details"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let updated = env
        .zoho(
            Method::PUT,
            &format!("/Contacts/{id}"),
            Some(json!({ "data": [{ "Email": "ada@example.com", "Last_Name": "Lovelace" }] })),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    let hits = receiver.wait_for("/zoho", 2).await;
    for hit in &hits {
        assert_eq!(hit.header("content-type"), Some("application/json"));
    }
    let insert = hits[0].json();
    assert_eq!(insert["operation"], "insert");
    assert_eq!(insert["module"], "Contacts");
    assert_eq!(insert["ids"], json!([id]));
    assert!(insert.get("affected_fields").is_none());
    let update = hits[1].json();
    let keys: Vec<&str> = update
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "server_time",
            "query_params",
            "module",
            "resource_uri",
            "ids",
            "affected_fields",
            "operation",
            "channel_id",
            "token"
        ]
    );
    assert_eq!(update["operation"], "update");
    assert_eq!(update["query_params"], json!({ "key1": "val1" }));
    assert_eq!(
        update["resource_uri"],
        "https://www.zohoapis.com/crm/v8/Contacts"
    );
    assert_eq!(
        update["affected_fields"],
        json!([{ id.clone(): ["Email"] }])
    );
    assert_eq!(update["channel_id"], "1000000068001");
    assert_eq!(update["token"], "tok-1");
    assert!(
        (Utc::now().timestamp_millis() - update["server_time"].as_i64().unwrap()).abs() < 60_000
    );

    // In the CRM: a deal created is watched, a deal edited is not; a contact deleted is.
    let deal = env
        .touch("zoho", json!({ "resource": "deals", "action": "created" }))
        .await;
    env.touch(
        "zoho",
        json!({ "resource": "deals", "id": deal, "action": "updated" }),
    )
    .await;
    env.touch(
        "zoho",
        json!({ "resource": "contacts", "id": id, "action": "deleted" }),
    )
    .await;
    let hits = receiver.wait_for("/zoho", 4).await;
    let seen: Vec<(String, String)> = hits
        .iter()
        .map(|h| {
            let b = h.json();
            (
                b["module"].as_str().unwrap().to_owned(),
                b["operation"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(seen[2], ("Deals".to_owned(), "insert".to_owned()));
    assert_eq!(seen[3], ("Contacts".to_owned(), "delete".to_owned()));
    assert_eq!(hits.len(), 4);
    let read = env.zoho(Method::GET, &format!("/Deals/{deal}"), None).await;
    assert!(
        read.body["data"][0]["Description"]
            .as_str()
            .unwrap()
            .starts_with("Edited in Zoho CRM")
    );
    let gone = env
        .zoho(Method::GET, &format!("/Contacts/{id}"), None)
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);

    // The wrong token, when asked for.
    env.faults("zoho", json!({ "wrongSignature": true })).await;
    env.touch(
        "zoho",
        json!({ "resource": "contacts", "action": "updated" }),
    )
    .await;
    let hit = receiver.wait_for("/zoho", 5).await.remove(4);
    assert_ne!(hit.json()["token"], "tok-1");
}

#[tokio::test]
async fn zoho_channels_renew_expire_and_refuse_bad_entries() {
    let env = Env::new().await;
    let receiver = Receiver::start().await;
    let url = receiver.url("/zoho");

    let bad = zoho_watch(
        &env,
        Method::POST,
        vec![
            channel(1, &url, json!({ "token": "t".repeat(51) })),
            channel(2, &url, json!({ "channel_expiry": later(8 * 24 * 3600) })),
            channel(3, &url, json!({ "events": ["Contacts.poke"] })),
            json!({ "channel_id": 4, "events": ["Contacts.all"] }),
        ],
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    let entries = bad.body["watch"].as_array().unwrap();
    let codes: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["code"].as_str().unwrap(),
                e["details"]["api_name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        codes,
        [
            ("INVALID_DATA", "token"),
            ("INVALID_DATA", "channel_expiry"),
            ("INVALID_DATA", "events"),
            ("MANDATORY_NOT_FOUND", "notify_url"),
        ]
    );
    assert_eq!(entries[0]["details"]["json_path"], "$.watch[0].token");
    assert_eq!(entries[0]["status"], "error");
    let none = env.zoho(Method::GET, "/actions/watch", None).await;
    assert_eq!(none.status, StatusCode::NO_CONTENT);

    // Renewal is a POST of the same channel; PATCH updates details.
    let first = zoho_watch(
        &env,
        Method::POST,
        vec![channel(10, &url, json!({ "channel_expiry": later(600) }))],
    )
    .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let renewed = zoho_watch(
        &env,
        Method::POST,
        vec![channel(10, &url, json!({ "channel_expiry": later(7200) }))],
    )
    .await;
    assert_eq!(renewed.status, StatusCode::OK, "{}", renewed.body);
    let expiry = instant(&renewed.body["watch"][0]["details"]["events"][0]["channel_expiry"]);
    assert!((expiry - Utc::now()).num_minutes() >= 119);
    let patched = zoho_watch(
        &env,
        Method::PATCH,
        vec![json!({ "channel_id": 10, "token": "tok-2" })],
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    env.touch(
        "zoho",
        json!({ "resource": "contacts", "action": "updated" }),
    )
    .await;
    assert_eq!(
        receiver.wait_for("/zoho", 1).await[0].json()["token"],
        "tok-2"
    );

    // renewalFails: the renewal answers the channel error; mixed results are 207.
    env.faults("zoho", json!({ "renewalFails": true })).await;
    let refused = zoho_watch(
        &env,
        Method::POST,
        vec![channel(10, &url, json!({})), channel(11, &url, json!({}))],
    )
    .await;
    assert_eq!(refused.status, StatusCode::MULTI_STATUS, "{}", refused.body);
    let gone = &refused.body["watch"][0];
    assert_eq!(gone["code"], "INVALID_DATA");
    assert_eq!(gone["details"]["api_name"], "channel_id");
    assert_eq!(refused.body["watch"][1]["code"], "SUCCESS");
    env.control(Method::DELETE, "/webhooks/zoho/faults", None)
        .await;

    // Expired: no more notifications, and renewal answers the channel error.
    let expired = env
        .control(
            Method::POST,
            "/webhooks/zoho/expire",
            Some(json!({ "id": "10" })),
        )
        .await;
    assert_eq!(expired.status, StatusCode::OK);
    for method in [Method::POST, Method::PATCH] {
        let reply = zoho_watch(&env, method.clone(), vec![channel(10, &url, json!({}))]).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{method}: {}",
            reply.body
        );
        assert_eq!(reply.body["watch"][0]["details"]["api_name"], "channel_id");
    }
    let before = receiver.notifications("/zoho").len();
    let other = receiver.url("/zoho-11");
    zoho_watch(
        &env,
        Method::PATCH,
        vec![json!({ "channel_id": 11, "notify_url": other })],
    )
    .await;
    env.touch(
        "zoho",
        json!({ "resource": "contacts", "action": "created" }),
    )
    .await;
    receiver.wait_for("/zoho-11", 1).await;
    assert_eq!(receiver.notifications("/zoho").len(), before);

    // Disabling.
    let disabled = env
        .zoho(Method::DELETE, "/actions/watch?channel_ids=10,11", None)
        .await;
    assert_eq!(disabled.status, StatusCode::OK, "{}", disabled.body);
    assert_eq!(disabled.body["watch"][1]["code"], "SUCCESS");
    let again = env
        .zoho(Method::DELETE, "/actions/watch?channel_ids=11", None)
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);

    // Short lifetimes: a channel of a few seconds runs out by itself.
    env.configure("zoho", json!({ "maxLifetimeSeconds": 2 }))
        .await;
    let short = zoho_watch(&env, Method::POST, vec![channel(20, &url, json!({}))]).await;
    assert_eq!(short.status, StatusCode::OK, "{}", short.body);
    let too_long = zoho_watch(
        &env,
        Method::POST,
        vec![channel(21, &url, json!({ "channel_expiry": later(60) }))],
    )
    .await;
    assert_eq!(too_long.status, StatusCode::BAD_REQUEST);
    let deadline = Instant::now() + DEADLINE;
    loop {
        let list = env.zoho(Method::GET, "/actions/watch", None).await;
        if list.status == StatusCode::NO_CONTENT {
            break;
        }
        assert!(Instant::now() < deadline, "channel 20 never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------
// The control plane itself

#[tokio::test]
async fn control_routes_check_their_input_and_reset_clears_everything() {
    let env = Env::new().await;
    let receiver = Receiver::start().await;

    let unknown = env.control(Method::GET, "/webhooks/nowhere", None).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    let silent = env.control(Method::GET, "/webhooks/salesforce", None).await;
    assert_eq!(silent.status, StatusCode::OK);
    assert_eq!(silent.body["sent"], json!([]));
    for provider in ["salesforce", "google"] {
        let reply = env
            .control(
                Method::POST,
                &format!("/webhooks/{provider}/touch"),
                Some(json!({ "resource": "contacts", "action": "updated" })),
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{provider}");
    }
    for bad in [
        json!({ "targetUrl": "ftp:/x" }),
        json!({ "signatureVersion": "v9" }),
        json!({ "maxAttempts": 0 }),
        json!({ "colour": "blue" }),
    ] {
        let reply = env
            .control(Method::PUT, "/webhooks/hubspot", Some(bad.clone()))
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    for bad in [
        json!({ "resource": "tickets", "action": "updated" }),
        json!({ "resource": "contacts", "action": "merged" }),
    ] {
        let reply = env
            .control(Method::POST, "/webhooks/hubspot/touch", Some(bad.clone()))
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let missing = env
        .control(
            Method::POST,
            "/webhooks/hubspot/touch",
            Some(json!({ "resource": "contacts", "id": "999999", "action": "updated" })),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let no_such = env
        .control(
            Method::POST,
            "/webhooks/msgraph/expire",
            Some(json!({ "id": "nope" })),
        )
        .await;
    assert_eq!(no_such.status, StatusCode::NOT_FOUND);
    let no_lifecycle = env
        .control(
            Method::POST,
            "/webhooks/zoho/lifecycle",
            Some(json!({ "subscriptionId": "1", "lifecycleEvent": "missed" })),
        )
        .await;
    assert_eq!(no_lifecycle.status, StatusCode::NOT_FOUND);

    // Configure, subscribe, deliver; then reset forgets it all.
    env.configure(
        "hubspot",
        json!({ "targetUrl": receiver.url("/h"), "secret": "s" }),
    )
    .await;
    env.faults("hubspot", json!({ "renewalFails": true })).await;
    let sub = graph_subscribe(&env, &receiver, "/g", json!({})).await;
    assert_eq!(sub.status, StatusCode::CREATED);
    env.touch(
        "hubspot",
        json!({ "resource": "contacts", "action": "updated" }),
    )
    .await;
    receiver.wait_for("/h", 1).await;
    let reset = env.control(Method::POST, "/reset", None).await;
    assert_eq!(reset.status, StatusCode::OK);
    let hubspot = env.state("hubspot").await;
    assert!(hubspot["config"]["targetUrl"].is_null());
    assert_eq!(hubspot["config"]["secretSet"], false);
    assert_eq!(hubspot["faults"]["renewalFails"], false);
    assert_eq!(hubspot["sent"], json!([]));
    let graph = env.state("msgraph").await;
    assert_eq!(graph["subscriptions"], json!([]));
    assert_eq!(graph["sent"], json!([]));
    let list = env.graph(Method::GET, "/subscriptions", None).await;
    assert_eq!(list.body["value"], json!([]));
}
