//! The isolation suite (#14): every Query and Mutation root field, called by environment B
//! with environment A's ids, and every HTTP route that takes an id (`/proxy`, `/webhooks`,
//! the `events` subscription at `/graphql/ws`), on one gateway with sandbox vendors.
//!
//! The list of fields comes from introspection: a root field without a case in the table
//! fails the suite, so a new field is classified before it ships. Resource fields
//! (listings, lookups, create/update/delete of every type implementing `Node`) are
//! classified by their shape. For each case B must get the documented error code, or data
//! holding none of A's ids or values; an error must read exactly as it does for an id that
//! never existed (the same id with its digits changed), so A's ids cannot be probed. After
//! every mutation attempt A's state, read with A's key, is what it was. Every field also
//! refuses a missing and a wrong key with HTTP 401 and `UNAUTHENTICATED`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::{Reply, TestGateway};
use tessera::health::watch::Watcher;

use crate::webhooks::{hubspot_events, now_ms, portal_id, set_platform_app, wait_events};

const PLATFORM_SECRET: &str = "platform-hubspot-app-secret";
const ACME_SECRET: &str = "acme-own-hubspot-app-secret";
const ACME_CLIENT: &str = "acme-isolation-client";
const ACME_MARKER: &str = "isolation-marker-a";
const ACME_HOOK: &str = "acme-isolation-hook";
const BAD_KEY: &str = "tsk_not-a-key-of-anyone";
/// B's HubSpot portal (A's is the sandbox's own).
const GLOBEX_PORTAL: &str = "777";

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What B must get.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// An error with this `extensions.code`, read exactly as for an id that never existed.
    Code(&'static str),
    /// Data without errors, holding none of A's ids or values.
    Clean,
}

struct Case {
    field: String,
    /// `(id: $id)`, or empty.
    args: String,
    /// `($id: ID!)`, or empty.
    decls: String,
    vars: Value,
    expect: Expect,
}

fn case(field: &str, args: &str, decls: &str, vars: Value, expect: Expect) -> Case {
    Case {
        field: field.to_string(),
        args: args.to_string(),
        decls: decls.to_string(),
        vars,
        expect,
    }
}

/// Environment A: everything that has an id.
struct Acme {
    key: String,
    env_id: String,
    /// HubSpot, OAuth access token.
    hubspot: String,
    /// Pipedrive, connected with an API key.
    pipedrive: String,
    /// A global id per resource (read from A's accounts where the vendor has one).
    records: BTreeMap<String, String>,
    /// A listing cursor of A's HubSpot contacts.
    cursor: Option<String>,
    env_override: String,
    account_override: String,
    endpoint: String,
    event: String,
    alert: String,
    api_key: String,
}

struct Globex {
    key: String,
    hubspot: String,
    salesforce: String,
    endpoint: String,
}

impl Acme {
    /// Every id and value of A that B must never read.
    fn markers(&self) -> Vec<String> {
        let mut m = vec![
            self.env_id.clone(),
            self.hubspot.clone(),
            self.pipedrive.clone(),
            self.env_override.clone(),
            self.account_override.clone(),
            self.endpoint.clone(),
            self.event.clone(),
            self.alert.clone(),
            self.api_key.clone(),
            ACME_CLIENT.to_string(),
            ACME_MARKER.to_string(),
            ACME_HOOK.to_string(),
        ];
        m.extend(self.records.values().cloned());
        m
    }

    /// (A's id, an id of the same shape that never existed), composite ids first.
    fn ghosts(&self) -> Vec<(String, String)> {
        let plain = [
            &self.env_id,
            &self.hubspot,
            &self.pipedrive,
            &self.endpoint,
            &self.event,
            &self.alert,
            &self.api_key,
        ];
        let plain: Vec<(String, String)> =
            plain.iter().map(|s| (s.to_string(), ghost_of(s))).collect();
        let mut out = Vec::new();
        let composite = self
            .records
            .values()
            .chain([&self.env_override, &self.account_override]);
        for id in composite {
            let text = String::from_utf8(URL_SAFE_NO_PAD.decode(id).unwrap()).unwrap();
            let replaced = plain
                .iter()
                .fold(text, |acc, (real, ghost)| acc.replace(real, ghost));
            out.push((id.clone(), URL_SAFE_NO_PAD.encode(replaced)));
        }
        out.extend(plain);
        out
    }
}

/// The same characters with every digit and hex letter changed: the shape of the id, never
/// the id.
fn ghost_of(id: &str) -> String {
    id.chars()
        .map(|c| match c {
            '0'..='8' => char::from(c as u8 + 1),
            '9' => '0',
            'a'..='e' => char::from(c as u8 + 1),
            'f' => 'a',
            other => other,
        })
        .collect()
}

fn substitute(text: &str, pairs: &[(String, String)], forward: bool) -> String {
    pairs.iter().fold(text.to_string(), |acc, (real, ghost)| {
        if forward {
            acc.replace(real, ghost)
        } else {
            acc.replace(ghost, real)
        }
    })
}

fn hmac_b64(secret: &str, message: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// A HubSpot v3 delivery to `path` (`/webhooks/hubspot[/{accountId}]`), signed with
/// `secret`, carrying `bearer` as an `Authorization` header (which intake must ignore).
async fn deliver(t: &TestGateway, path: &str, body: &str, secret: &str, bearer: &str) -> u16 {
    let url = format!("{}{path}", t.gateway.url());
    let ts = now_ms();
    let sig = hmac_b64(secret, &format!("POST{url}{body}{ts}"));
    t.http
        .post(&url)
        .bearer_auth(bearer)
        .header("content-type", "application/json")
        .header("X-HubSpot-Signature-v3", sig)
        .header("X-HubSpot-Request-Timestamp", ts.to_string())
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn ok(r: &Reply) -> &Value {
    assert!(r.body["errors"].is_null(), "{}", r.body);
    &r.body["data"]
}

fn text(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not text: {v}"))
        .to_string()
}

/// The introspected schema: root field names and every type's fields.
struct Introspection {
    query: Vec<String>,
    mutation: Vec<String>,
    types: BTreeMap<String, Value>,
}

const INTROSPECT: &str = "{ __schema { queryType { fields { name type { ...T } } } mutationType { fields { name type { ...T } } } types { kind name interfaces { name } fields { name args { name type { kind } } type { ...T } } } } }
fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }";

fn named(ty: &Value) -> (String, String) {
    let mut t = ty;
    while t["kind"] == "NON_NULL" || t["kind"] == "LIST" {
        t = &t["ofType"];
    }
    (text(&t["kind"]), text(&t["name"]))
}

impl Introspection {
    async fn read(t: &TestGateway, key: &str) -> Introspection {
        let r = t.gql(Some(key), INTROSPECT, json!({})).await;
        let schema = &ok(&r)["__schema"];
        let names = |root: &str| -> Vec<String> {
            schema[root]["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| text(&f["name"]))
                .collect()
        };
        let types = schema["types"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (text(&t["name"]), t.clone()))
            .collect();
        Introspection {
            query: names("queryType"),
            mutation: names("mutationType"),
            types,
        }
    }

    fn field(&self, owner: &str, name: &str) -> &Value {
        self.types[owner]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("no field {owner}.{name}"))
    }

    fn is_node(&self, type_name: &str) -> bool {
        self.types.get(type_name).is_some_and(|t| {
            t["interfaces"]
                .as_array()
                .is_some_and(|i| i.iter().any(|i| i["name"] == "Node"))
        })
    }

    /// Every field of `type_name` that takes no required argument, objects `depth` deep;
    /// records (types implementing `Node`) get their scalars only, so no selection fans out
    /// into upstream calls. Empty for a scalar.
    fn selection(&self, type_name: &str, depth: usize) -> String {
        let Some(ty) = self.types.get(type_name) else {
            return String::new();
        };
        match ty["kind"].as_str() {
            Some("INTERFACE") => return "{ __typename id }".into(),
            Some("OBJECT") => {}
            _ => return String::new(),
        }
        let depth = if self.is_node(type_name) { 0 } else { depth };
        let mut parts = Vec::new();
        for f in ty["fields"].as_array().unwrap() {
            let required = f["args"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["type"]["kind"] == "NON_NULL");
            if required {
                continue;
            }
            let name = text(&f["name"]);
            let (kind, inner) = named(&f["type"]);
            match kind.as_str() {
                "OBJECT" | "INTERFACE" => {
                    if depth == 0 {
                        continue;
                    }
                    let sub = self.selection(&inner, depth - 1);
                    if !sub.is_empty() {
                        parts.push(format!("{name} {sub}"));
                    }
                }
                _ => parts.push(name),
            }
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("{{ {} }}", parts.join(" "))
        }
    }

    /// The resources, by type name: (list field, single field).
    fn resources(&self) -> BTreeMap<String, (String, String)> {
        let mut out = BTreeMap::new();
        for f in self.types["Query"]["fields"].as_array().unwrap() {
            let (_, ty) = named(&f["type"]);
            if let Some(record) = ty.strip_suffix("Connection")
                && self.is_node(record)
            {
                let single = self.types["Query"]["fields"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|g| named(&g["type"]).1 == record && g["name"] != "node")
                    .map(|g| text(&g["name"]))
                    .unwrap_or_default();
                out.insert(record.to_string(), (text(&f["name"]), single));
            }
        }
        out
    }

    fn document(&self, c: &Case) -> String {
        let op = if self.mutation.contains(&c.field) {
            ("mutation", "Mutation")
        } else {
            ("query", "Query")
        };
        let (_, ty) = named(&self.field(op.1, &c.field)["type"]);
        format!(
            "{}{} {{ {}{} {} }}",
            op.0,
            c.decls,
            c.field,
            c.args,
            self.selection(&ty, 3)
        )
    }
}

async fn set_override(t: &TestGateway, key: &str, input: Value) -> String {
    let r = t
        .gql(
            Some(key),
            "mutation($i: OverrideInput!) { setOverride(input: $i) { id } }",
            json!({"i": input}),
        )
        .await;
    text(&ok(&r)["setOverride"]["id"])
}

async fn connect(
    t: &TestGateway,
    key: &str,
    provider: &str,
    creds: Value,
    settings: Value,
) -> String {
    let r = t
        .gql(
            Some(key),
            "mutation($p: String!, $c: JSON!, $s: JSON) { connectAccount(provider: $p, credentials: $c, settings: $s) { id } }",
            json!({"p": provider, "c": creds, "s": settings}),
        )
        .await;
    text(&ok(&r)["connectAccount"]["id"])
}

async fn create_endpoint(t: &TestGateway, key: &str, path: &str) -> String {
    let r = t
        .gql(
            Some(key),
            "mutation($u: String!) { createWebhookEndpoint(url: $u) { endpoint { id } } }",
            json!({"u": format!("{}/{path}", t.sandbox.base_url())}),
        )
        .await;
    text(&ok(&r)["createWebhookEndpoint"]["endpoint"]["id"])
}

fn authorize_settings(t: &TestGateway) -> Value {
    json!({"authorizeUrl": format!("{}/hubspot/oauth/authorize", t.sandbox.base_url())})
}

/// Two environments, each with its accounts, and A with one of everything.
async fn setup(t: &TestGateway, schema: &Introspection) -> (Acme, Globex) {
    set_platform_app(t, "hubspot", PLATFORM_SECRET).await;
    let key = t.env_key.clone();
    let r = t
        .gql(Some(&key), "{ environments { id } }", json!({}))
        .await;
    let env_id = text(&ok(&r)["environments"][0]["id"]);
    let demo = |p: &str| {
        t.sandbox
            .demo_accounts()
            .into_iter()
            .find(|a| a.provider == p)
            .unwrap()
    };
    let pd = demo("pipedrive");
    let pipedrive = connect(
        t,
        &key,
        "pipedrive",
        json!({"apiKey": tessera_sandbox::PIPEDRIVE_DEMO_TOKEN}),
        pd.settings,
    )
    .await;
    let r = t
        .gql(
            Some(&key),
            "mutation($s: String!) { setOAuthApp(provider: \"hubspot\", clientId: \"acme-isolation-client\", clientSecret: $s) { clientId } }",
            json!({"s": ACME_SECRET}),
        )
        .await;
    ok(&r);
    let env_override = set_override(
        t,
        &key,
        json!({"level": "ENVIRONMENT", "provider": "hubspot", "resource": "contacts",
               "fields": {"customFields.isolationA": format!("'{ACME_MARKER}-env'")}}),
    )
    .await;
    let account_override = set_override(
        t,
        &key,
        json!({"level": "ACCOUNT", "provider": "hubspot", "resource": "contacts", "accountId": t.account_id,
               "fields": {"customFields.isolationAccountA": format!("'{ACME_MARKER}-account'")}}),
    )
    .await;
    let endpoint = create_endpoint(t, &key, ACME_HOOK).await;

    // One record id per resource, from A's accounts where the vendor has records.
    let mut records = BTreeMap::new();
    let mut cursor = None;
    for (type_name, (list, _)) in schema.resources() {
        let resource = list.clone();
        for account in [&t.account_id, &pipedrive] {
            let r = t
                .gql(
                    Some(&key),
                    &format!("query($a: ID!) {{ {list}(accountId: $a, first: 1) {{ edges {{ node {{ id }} }} pageInfo {{ endCursor }} }} }}"),
                    json!({"a": account}),
                )
                .await;
            if let Some(id) = r.body["data"][&list]["edges"][0]["node"]["id"].as_str() {
                records.insert(type_name.clone(), id.to_string());
                if list == "contacts" && *account == t.account_id {
                    cursor = r.body["data"][&list]["pageInfo"]["endCursor"]
                        .as_str()
                        .map(str::to_string);
                }
                break;
            }
        }
        // A resource neither vendor serves still has ids of A's accounts.
        records
            .entry(type_name)
            .or_insert_with(|| tessera::ids::GlobalId::encode(&t.account_id, &resource, "1"));
    }

    // An event of A's, from a delivery for A's portal signed with A's own app.
    let portal = portal_id(t).await;
    let ids = crate::webhooks::some_contact_ids(t, 1).await;
    let status = deliver(
        t,
        "/webhooks/hubspot",
        &hubspot_events(&portal, &ids, 100),
        ACME_SECRET,
        &key,
    )
    .await;
    assert_eq!(status, 200);
    let events = wait_events(t, &key, &t.account_id, 1).await;
    let event = text(&events[0]["id"]);

    // An alert of A's: refused signatures on A's portal open SIGNATURE_FAILURES.
    let mut watcher = Watcher::new(Duration::from_secs(120)).reading_deliveries_at_once();
    let now = chrono::Utc::now();
    let services = &t.gateway.services;
    services.monitor.flush().await;
    watcher.tick(services, now).await.unwrap();
    for i in 0..3 {
        let body = hubspot_events(&portal, &ids, 900 + i);
        let status = deliver(t, "/webhooks/hubspot", &body, "a-secret-nobody-has", &key).await;
        assert_eq!(status, 401);
    }
    services.monitor.flush().await;
    let report = watcher
        .tick(services, now + chrono::Duration::seconds(30))
        .await
        .unwrap();
    let alert = report
        .opened
        .iter()
        .find(|o| o.account_id == t.account_id)
        .unwrap_or_else(|| panic!("no alert opened: {report:?}"))
        .id
        .clone();

    let r = t.gql(Some(&key), "{ apiKeys { id } }", json!({})).await;
    let api_key = text(&ok(&r)["apiKeys"][0]["id"]);

    let globex_key = t.create_environment("globex").await;
    let hubspot = connect(
        t,
        &globex_key,
        "hubspot",
        json!({"accessToken": tessera_sandbox::HUBSPOT_DEMO_TOKEN}),
        json!({"baseUrl": t.sandbox.base_url() + "/hubspot", "portalId": GLOBEX_PORTAL}),
    )
    .await;
    let salesforce = t.connect_sandbox(&globex_key, "salesforce").await;
    let globex_endpoint = create_endpoint(t, &globex_key, "globex-hook").await;
    (
        Acme {
            key,
            env_id,
            hubspot: t.account_id.clone(),
            pipedrive,
            records,
            cursor,
            env_override,
            account_override,
            endpoint,
            event,
            alert,
            api_key,
        },
        Globex {
            key: globex_key,
            hubspot,
            salesforce,
            endpoint: globex_endpoint,
        },
    )
}

/// What A sees of its own state, read with A's key.
async fn state_of(t: &TestGateway, a: &Acme) -> Value {
    let r = t
        .gql(
            Some(&a.key),
            "query($c: ID!) { environments { id name } linkedAccounts { id provider status statusReason settings } overrides { id version fields } webhookEndpoints { id url types } apiKeys { id revokedAt } events(first: 500) { edges { node { id accountId } } } alerts { id kind state } contact(id: $c) { id remoteId remoteData customFields } }",
            json!({"c": a.records["Contact"]}),
        )
        .await;
    let mut state = ok(&r).clone();
    let r = t
        .gql(
            Some(&a.key),
            "mutation($r: String!, $s: JSON) { startOAuth(provider: \"hubspot\", redirectUri: $r, settings: $s) { authorizationUrl } }",
            json!({"r": format!("{}/oauth/callback", t.gateway.url()), "s": authorize_settings(t)}),
        )
        .await;
    let url = url::Url::parse(&text(&ok(&r)["startOAuth"]["authorizationUrl"])).unwrap();
    let client = url
        .query_pairs()
        .find(|(k, _)| k == "client_id")
        .map(|(_, v)| v.to_string());
    state["oauthClient"] = json!(client);
    state
}

/// The table: how B calls each root field with A's ids, and what B must get.
fn cases(t: &TestGateway, schema: &Introspection, a: &Acme, b: &Globex) -> Vec<Case> {
    use Expect::{Clean, Code};
    const NF: Expect = Code("NOT_FOUND");
    let mut c = Vec::new();
    let accounts = [&a.hubspot, &a.pipedrive];

    // Resource fields, by shape: every type implementing Node with a connection.
    for (type_name, (list, single)) in schema.resources() {
        let gid = &a.records[&type_name];
        for account in accounts {
            c.push(case(
                &list,
                "(accountId: $a)",
                "($a: ID!)",
                json!({"a": account}),
                NF,
            ));
            c.push(case(
                &format!("create{type_name}"),
                "(accountId: $a, input: {})",
                "($a: ID!)",
                json!({"a": account}),
                NF,
            ));
            c.push(case(
                &single,
                "(accountId: $a, remoteId: \"1\")",
                "($a: ID!)",
                json!({"a": account}),
                NF,
            ));
        }
        c.push(case(
            &single,
            "(id: $id)",
            "($id: ID!)",
            json!({"id": gid}),
            NF,
        ));
        c.push(case(
            &format!("update{type_name}"),
            "(id: $id, input: {})",
            "($id: ID!)",
            json!({"id": gid}),
            NF,
        ));
        c.push(case(
            &format!("delete{type_name}"),
            "(id: $id)",
            "($id: ID!)",
            json!({"id": gid}),
            NF,
        ));
        // The same idempotency key as any A write: B's own claim, never A's stored reply.
        c.push(case(
            &format!("update{type_name}"),
            "(id: $id, input: {}, idempotencyKey: \"shared-key\")",
            "($id: ID!)",
            json!({"id": gid}),
            NF,
        ));
        c.push(case(
            "node",
            "(id: $id)",
            "($id: ID!)",
            json!({"id": gid}),
            NF,
        ));
    }
    // A listing cursor of A's account, on B's own account of the same vendor.
    if let Some(cursor) = &a.cursor {
        c.push(case(
            "contacts",
            "(accountId: $a, after: $c)",
            "($a: ID!, $c: String)",
            json!({"a": b.hubspot, "c": cursor}),
            Code("BAD_USER_INPUT"),
        ));
    }
    // `node` with every other kind of A's ids.
    for id in [
        &a.hubspot,
        &a.env_override,
        &a.endpoint,
        &a.event,
        &a.alert,
        &a.env_id,
    ] {
        c.push(case(
            "node",
            "(id: $id)",
            "($id: ID!)",
            json!({"id": id}),
            NF,
        ));
    }

    let none = json!({});
    c.push(case("providers", "", "", none.clone(), Clean));
    c.push(case("linkedAccounts", "", "", none.clone(), Clean));
    for account in accounts {
        let v = json!({"a": account});
        c.push(case(
            "linkedAccount",
            "(id: $a)",
            "($a: ID!)",
            v.clone(),
            NF,
        ));
        c.push(case(
            "explainMapping",
            "(accountId: $a, resource: \"contacts\")",
            "($a: ID!)",
            v.clone(),
            NF,
        ));
        c.push(case("events", "(accountId: $a)", "($a: ID)", v.clone(), NF));
        c.push(case("alerts", "(accountId: $a)", "($a: ID)", v.clone(), NF));
        c.push(case(
            "diagnose",
            "(accountId: $a)",
            "($a: ID!)",
            v.clone(),
            NF,
        ));
        c.push(case("overrides", "(accountId: $a)", "($a: ID)", v, Clean));
    }
    // B's own account of the same vendor: A's environment and account overrides stay A's.
    c.push(case(
        "explainMapping",
        "(accountId: $a, resource: \"contacts\")",
        "($a: ID!)",
        json!({"a": b.hubspot}),
        Clean,
    ));
    c.push(case(
        "linkedAccount",
        "(id: $a)",
        "($a: ID!)",
        json!({"a": b.hubspot}),
        Clean,
    ));
    c.push(case(
        "linkedAccount",
        "(id: $a)",
        "($a: ID!)",
        json!({"a": b.salesforce}),
        Clean,
    ));
    c.push(case("overrides", "", "", none.clone(), Clean));
    c.push(case(
        "overrides",
        "(level: ENVIRONMENT)",
        "",
        none.clone(),
        Clean,
    ));
    c.push(case("environments", "", "", none.clone(), Clean));
    c.push(case("apiKeys", "", "", none.clone(), Clean));
    c.push(case(
        "apiKeys",
        "(environmentId: $e)",
        "($e: ID)",
        json!({"e": a.env_id}),
        NF,
    ));
    c.push(case("events", "(first: 500)", "", none.clone(), Clean));
    c.push(case("alerts", "", "", none.clone(), Clean));
    c.push(case("webhookEndpoints", "", "", none.clone(), Clean));

    // Mutations of the platform and of B's own things.
    c.push(case(
        "createEnvironment",
        "(name: \"initech\")",
        "",
        none.clone(),
        Code("FORBIDDEN"),
    ));
    c.push(case(
        "setOAuthApp",
        "(provider: \"hubspot\", clientId: \"globex-client\", clientSecret: \"globex-secret\")",
        "",
        none.clone(),
        Clean,
    ));
    // B's authorization uses B's app, never A's (the marker check refuses A's client id).
    c.push(case(
        "startOAuth",
        "(provider: \"hubspot\", redirectUri: $r, settings: $s)",
        "($r: String!, $s: JSON)",
        json!({"r": format!("{}/oauth/callback", t.gateway.url()), "s": authorize_settings(t)}),
        Clean,
    ));
    let zoho = t
        .sandbox
        .demo_accounts()
        .into_iter()
        .find(|d| d.provider == "zoho")
        .unwrap();
    c.push(case(
        "connectAccount",
        "(provider: \"zoho\", credentials: $c, settings: $s)",
        "($c: JSON!, $s: JSON)",
        json!({"c": zoho.credentials, "s": zoho.settings}),
        Clean,
    ));
    // A's accounts cannot be disabled, enabled, deleted or re-authorized by B.
    for account in [&a.hubspot, &a.pipedrive] {
        let v = json!({"a": account});
        for field in ["disableAccount", "enableAccount", "deleteLinkedAccount"] {
            c.push(case(field, "(id: $a)", "($a: ID!)", v.clone(), NF));
        }
        c.push(case(
            "previewOverride",
            "(input: $i, accountId: $a)",
            "($i: OverrideInput!, $a: ID!)",
            json!({"a": account, "i": {"level": "ENVIRONMENT", "provider": "hubspot", "resource": "contacts", "fields": {"customFields.globex": "'b'"}}}),
            NF,
        ));
        c.push(case(
            "startOAuth",
            "(provider: \"hubspot\", redirectUri: $r, settings: $s, accountId: $a)",
            "($r: String!, $s: JSON, $a: ID)",
            json!({"r": format!("{}/oauth/callback", t.gateway.url()), "s": authorize_settings(t), "a": account}),
            NF,
        ));
    }
    let input = |extra: Value| {
        let mut i = json!({"provider": "hubspot", "resource": "contacts", "fields": {"customFields.globex": "'b'"}});
        i.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({"i": i})
    };
    let set = |extra: Value, expect| {
        case(
            "setOverride",
            "(input: $i)",
            "($i: OverrideInput!)",
            input(extra),
            expect,
        )
    };
    c.push(set(
        json!({"level": "ENVIRONMENT", "environmentId": a.env_id}),
        NF,
    ));
    c.push(set(json!({"level": "ACCOUNT", "accountId": a.hubspot}), NF));
    c.push(set(json!({"level": "PLATFORM"}), Code("FORBIDDEN")));
    c.push(set(
        json!({"level": "ACCOUNT", "accountId": b.hubspot, "environmentId": a.env_id}),
        Code("BAD_USER_INPUT"),
    ));
    for id in [&a.env_override, &a.account_override] {
        c.push(case(
            "rollbackOverride",
            "(id: $id, version: 1)",
            "($id: ID!)",
            json!({"id": id}),
            NF,
        ));
    }
    let key = json!({"id": a.api_key});
    c.push(case(
        "createApiKey",
        "(environmentId: $e)",
        "($e: ID)",
        json!({"e": a.env_id}),
        NF,
    ));
    c.push(case(
        "rotateApiKey",
        "(id: $id)",
        "($id: ID!)",
        key.clone(),
        NF,
    ));
    c.push(case("revokeApiKey", "(id: $id)", "($id: ID!)", key, NF));
    c.push(case(
        "createWebhookEndpoint",
        "(url: $u)",
        "($u: String!)",
        json!({"u": format!("{}/globex-second-hook", t.sandbox.base_url())}),
        Clean,
    ));
    c.push(case(
        "deleteWebhookEndpoint",
        "(id: $id)",
        "($id: ID!)",
        json!({"id": a.endpoint}),
        NF,
    ));
    for endpoint in [&a.endpoint, &b.endpoint] {
        c.push(case(
            "redeliverWebhook",
            "(eventId: $e, endpointId: $p)",
            "($e: ID!, $p: ID!)",
            json!({"e": a.event, "p": endpoint}),
            NF,
        ));
    }
    c
}

/// What of A's a reply of B's shows, if anything.
fn leaks(value: &Value, markers: &[String]) -> Vec<String> {
    let text = value.to_string();
    markers
        .iter()
        .filter(|m| text.contains(m.as_str()))
        .cloned()
        .collect()
}

#[tokio::test]
async fn another_environments_ids_and_keys_reach_nothing() {
    let started = Instant::now();
    let t = TestGateway::start().await;
    let schema = Introspection::read(&t, &t.env_key).await;
    let (a, b) = setup(&t, &schema).await;
    let markers = a.markers();

    // The HTTP routes first: B has no OAuth app of its own yet, so its HubSpot deliveries
    // are signed with the platform's.
    routes(&t, &a, &b, &markers).await;

    let cases = cases(&t, &schema, &a, &b);
    let classified: BTreeSet<&str> = cases.iter().map(|c| c.field.as_str()).collect();
    let roots: Vec<&String> = schema.query.iter().chain(&schema.mutation).collect();
    let unclassified: Vec<&&String> = roots
        .iter()
        .filter(|f| !classified.contains(f.as_str()))
        .collect();
    assert!(
        unclassified.is_empty(),
        "root fields without an isolation case (add them to `cases`): {unclassified:?}"
    );
    let stale: Vec<&&str> = classified
        .iter()
        .filter(|f| !roots.iter().any(|r| r == *f))
        .collect();
    assert!(
        stale.is_empty(),
        "cases for fields the schema lacks: {stale:?}"
    );

    let ghosts = a.ghosts();
    let baseline = state_of(&t, &a).await;
    let mut failures = Vec::new();
    for c in &cases {
        let doc = schema.document(c);
        let what = format!("{}{}", c.field, c.args);
        for (key, label) in [(None, "no key"), (Some(BAD_KEY), "a wrong key")] {
            let r = t.gql(key, &doc, c.vars.clone()).await;
            if r.status != 401 || r.code() != Some("UNAUTHENTICATED") || !r.body["data"].is_null() {
                failures.push(format!("{what} with {label}: {} {}", r.status, r.body));
            }
        }
        let r = t.gql(Some(&b.key), &doc, c.vars.clone()).await;
        let leaked = leaks(&r.body["data"], &markers);
        if !leaked.is_empty() {
            failures.push(format!("{what}: B read A's {leaked:?}: {}", r.body));
        }
        match c.expect {
            Expect::Clean => {
                if !r.body["errors"].is_null() {
                    failures.push(format!("{what}: expected data, got {}", r.body));
                }
            }
            Expect::Code(code) => {
                if r.code() != Some(code) {
                    failures.push(format!("{what}: expected {code}, got {}", r.body));
                }
                // The same call with ids that never existed reads the same, ids aside.
                let vars = c.vars.to_string();
                let ghost_vars = substitute(&vars, &ghosts, true);
                if ghost_vars != vars {
                    let g = t
                        .gql(
                            Some(&b.key),
                            &doc,
                            serde_json::from_str(&ghost_vars).unwrap(),
                        )
                        .await;
                    let seen = substitute(&g.body.to_string(), &ghosts, false);
                    let real = r.body.to_string();
                    if g.status != r.status || seen != real {
                        failures.push(format!(
                            "{what}: A's ids read unlike missing ones: {} {} / {} {seen}",
                            r.status, r.body, g.status
                        ));
                    }
                }
            }
        }
        if schema.mutation.contains(&c.field) {
            let now = state_of(&t, &a).await;
            if now != baseline {
                failures.push(format!(
                    "{what} by B changed A's state: {baseline} -> {now}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!(
        "isolation: {} root fields, {} cases, {:?}",
        roots.len(),
        cases.len(),
        started.elapsed()
    );
}

/// `/proxy`, `/webhooks` and the `events` subscription with A's ids and B's key.
async fn routes(t: &TestGateway, a: &Acme, b: &Globex, markers: &[String]) {
    // Passthrough: A's account with B's key is missing, exactly like an id that never was.
    let proxy = |account: String, key: Option<String>| {
        let url = format!(
            "{}/proxy/{account}/crm/v3/objects/contacts?limit=1",
            t.gateway.url()
        );
        let mut req = t.http.get(url);
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        async move {
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    let (status, _) = proxy(a.hubspot.clone(), Some(a.key.clone())).await;
    assert_eq!(status, 200, "A's own passthrough");
    let (status, body) = proxy(a.hubspot.clone(), Some(b.key.clone())).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("NOT_FOUND"), "{body}");
    let ghost = ghost_of(&a.hubspot);
    let (gstatus, gbody) = proxy(ghost.clone(), Some(b.key.clone())).await;
    assert_eq!((gstatus, gbody.replace(&ghost, &a.hubspot)), (status, body));
    for key in [None, Some(BAD_KEY.to_string())] {
        let (status, body) = proxy(a.hubspot.clone(), key).await;
        assert_eq!(status, 401, "{body}");
        assert!(body.contains("UNAUTHENTICATED"), "{body}");
    }

    // The events subscription: A's account refused; B's own feed never carries A's events.
    let mut refused = subscribe(
        t,
        &b.key,
        "subscription($a: ID) { events(accountId: $a) { id accountId } }",
        json!({"a": a.hubspot}),
    )
    .await;
    let first = next_json(&mut refused).await;
    // An `error` message, or a `next` whose payload is only errors.
    let errors = match first["type"].as_str() {
        Some("error") => first["payload"].clone(),
        _ => first["payload"]["errors"].clone(),
    };
    assert_eq!(errors[0]["extensions"]["code"], "NOT_FOUND", "{first}");
    assert!(
        first["payload"]["data"].is_null() || first["payload"]["data"]["events"].is_null(),
        "{first}"
    );
    let all = "subscription { events { id accountId remoteId record } }";
    let mut mine = subscribe(t, &a.key, all, json!({})).await;
    let mut theirs = subscribe(t, &b.key, all, json!({})).await;
    wait_subscribers(t, 2).await;

    let portal = portal_id(t).await;
    let ids = crate::webhooks::some_contact_ids(t, 6).await;
    // A's portal at the app URL, signed with A's app and carrying B's key: A's event.
    let body = hubspot_events(&portal, &ids[1..2], 200);
    assert_eq!(
        deliver(t, "/webhooks/hubspot", &body, ACME_SECRET, &b.key).await,
        200
    );
    // At B's URL, signed with the platform app (B's app): A's portal is not B's to vouch
    // for, so nobody gets it.
    let path = format!("/webhooks/hubspot/{}", b.hubspot);
    let body = hubspot_events(&portal, &ids[2..3], 300);
    assert_eq!(deliver(t, &path, &body, PLATFORM_SECRET, &b.key).await, 200);
    // At B's URL signed with A's app: B's account only takes B's app.
    let body = hubspot_events(&portal, &ids[3..4], 400);
    assert_eq!(deliver(t, &path, &body, ACME_SECRET, &b.key).await, 401);
    // At A's URL signed with the platform app: A's account only takes A's own app.
    let path = format!("/webhooks/hubspot/{}", a.hubspot);
    let body = hubspot_events(&portal, &ids[4..5], 500);
    assert_eq!(deliver(t, &path, &body, PLATFORM_SECRET, &b.key).await, 401);

    let got = next_json(&mut mine).await;
    let event = &got["payload"]["data"]["events"];
    assert_eq!(event["accountId"], a.hubspot.as_str(), "{got}");
    assert_eq!(event["remoteId"], ids[1].as_str(), "{got}");
    // Then one of B's own: the first thing B's feed carries is B's event.
    let body = hubspot_events(GLOBEX_PORTAL, &ids[5..6], 600);
    assert_eq!(
        deliver(t, "/webhooks/hubspot", &body, PLATFORM_SECRET, &a.key).await,
        200
    );
    let got = next_json(&mut theirs).await;
    let event = &got["payload"]["data"]["events"];
    assert_eq!(event["accountId"], b.hubspot.as_str(), "{got}");
    assert_eq!(event["remoteId"], ids[5].as_str(), "{got}");
    assert!(leaks(&got, markers).is_empty(), "{got}");
    // B's event came after every delivery above: by now A has exactly its two events, and
    // B's one, its own.
    let events = wait_events(t, &a.key, &a.hubspot, 2).await;
    let remote: Vec<&str> = events
        .iter()
        .map(|e| e["remoteId"].as_str().unwrap())
        .collect();
    assert_eq!(remote, [ids[0].as_str(), ids[1].as_str()], "{events:?}");
    let theirs_now = wait_events(t, &b.key, &b.hubspot, 1).await;
    assert_eq!(theirs_now.len(), 1, "{theirs_now:?}");
    assert!(leaks(&json!(theirs_now), markers).is_empty());
}

async fn subscribe(t: &TestGateway, key: &str, query: &str, variables: Value) -> Ws {
    let mut req = format!("{}/graphql/ws", t.gateway.url().replace("http://", "ws://"))
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let init =
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {key}")}});
    ws.send(Message::Text(init.to_string().into()))
        .await
        .unwrap();
    let ack = next_json(&mut ws).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    let sub = json!({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables}});
    ws.send(Message::Text(sub.to_string().into()))
        .await
        .unwrap();
    ws
}

async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("no message in 20 s")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            if v["type"] != "ping" {
                return v;
            }
        }
    }
}

async fn wait_subscribers(t: &TestGateway, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while t.gateway.services.events.feed.receiver_count() < n {
        assert!(Instant::now() < deadline, "the subscriptions never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
