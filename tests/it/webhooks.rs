//! Inbound webhooks end to end: deliveries signed as each vendor signs them, posted over
//! real HTTP to the gateway, stored, completed through the sandbox vendor and read back as
//! unified events (the `events` query and the `events` subscription over WebSocket).

use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::{ADMIN_KEY, TestGateway, repo_path};

const CLIENT_SECRET: &str = "hubspot-app-secret-for-webhooks";

/// HMAC-SHA256, written here against the `hmac` crate rather than through the gateway's
/// signer, so a bug there cannot hide in both.
pub(crate) fn hmac256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) async fn set_platform_app(t: &TestGateway, provider: &str, secret: &str) {
    let r = t
        .gql(
            Some(ADMIN_KEY),
            "mutation($p: String!, $s: String!) { setOAuthApp(provider: $p, clientId: \"app-1\", clientSecret: $s) { provider } }",
            json!({"p": provider, "s": secret}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
}

/// The sandbox portal's id, as the vendor reports it.
pub(crate) async fn portal_id(t: &TestGateway) -> String {
    let v: Value = t
        .http
        .get(format!(
            "{}/hubspot/account-info/v3/details",
            t.sandbox.base_url()
        ))
        .bearer_auth(tessera_sandbox::HUBSPOT_DEMO_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["portalId"].to_string()
}

/// A few contacts the sandbox HubSpot holds.
pub(crate) async fn some_contact_ids(t: &TestGateway, n: usize) -> Vec<String> {
    let ids = t.all_contact_ids(100).await;
    ids.into_iter().take(n).collect()
}

pub(crate) fn hubspot_events(portal: &str, ids: &[String], first_event_id: u64) -> String {
    let events: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            json!({
                "eventId": first_event_id + i as u64, "subscriptionId": 12345, "portalId": portal.parse::<u64>().unwrap(),
                "appId": 54321, "occurredAt": 1_764_000_000_000u64, "subscriptionType": "contact.propertyChange",
                "attemptNumber": 0, "objectId": id.parse::<u64>().unwrap(), "propertyName": "firstname",
                "propertyValue": "x", "changeSource": "CRM"
            })
        })
        .collect();
    serde_json::to_string(&events).unwrap()
}

pub(crate) struct Posted {
    pub(crate) status: u16,
    body: Value,
}

pub(crate) async fn post_v3(t: &TestGateway, body: &str, secret: &str, ts_ms: i64) -> Posted {
    post_v3_to(&t.http, &t.gateway.url(), body, secret, ts_ms).await
}

/// Posts `body` to `gateway`'s HubSpot webhook URL, signed v3 with `secret` at `ts_ms`.
async fn post_v3_to(
    http: &reqwest::Client,
    gateway: &str,
    body: &str,
    secret: &str,
    ts_ms: i64,
) -> Posted {
    let url = format!("{gateway}/webhooks/hubspot");
    let message = format!("POST{url}{body}{ts_ms}");
    let sig = base64::engine::general_purpose::STANDARD
        .encode(hmac256(secret.as_bytes(), message.as_bytes()));
    let resp = http
        .post(&url)
        .header("content-type", "application/json")
        .header("X-HubSpot-Signature-v3", sig)
        .header("X-HubSpot-Request-Timestamp", ts_ms.to_string())
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(Value::Null);
    Posted { status, body }
}

pub(crate) async fn send(
    t: &TestGateway,
    url: &str,
    body: &str,
    headers: &[(&str, String)],
) -> Posted {
    let mut req = t
        .http
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(Value::Null);
    Posted { status, body }
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Polls `events` until `n` events are there (or fails after 20 s).
pub(crate) async fn wait_events(t: &TestGateway, key: &str, account: &str, n: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = t
            .gql(
                Some(key),
                "query($a: ID) { events(accountId: $a, first: 500) { edges { cursor node { id type accountId resource remoteId recordId source record occurredAt receivedAt } } pageInfo { hasNextPage endCursor } } }",
                json!({"a": account}),
            )
            .await;
        assert!(r.body["errors"].is_null(), "{}", r.body);
        let edges = r.body["data"]["events"]["edges"]
            .as_array()
            .unwrap()
            .clone();
        if edges.len() >= n {
            return edges.into_iter().map(|e| e["node"].clone()).collect();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {} of {n} events: {}",
            edges.len(),
            r.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn deliveries(t: &TestGateway, account: &str) -> Vec<Value> {
    let r = t
        .gql(
            Some(&t.env_key),
            "query($a: ID!) { linkedAccount(id: $a) { webhookDeliveries(last: 50) { outcome reason eventCount receivedAt } } }",
            json!({"a": account}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    r.body["data"]["linkedAccount"]["webhookDeliveries"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn hubspot_v3_delivery_is_stored_completed_and_deduplicated() {
    let t = TestGateway::start().await;
    set_platform_app(&t, "hubspot", CLIENT_SECRET).await;
    let portal = portal_id(&t).await;
    let ids = some_contact_ids(&t, 3).await;
    let body = hubspot_events(&portal, &ids, 1000);

    let ok = post_v3(&t, &body, CLIENT_SECRET, now_ms()).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["accepted"], 3);

    // Completed through the vendor: the ids-only events carry the mapped records.
    let events = wait_events(&t, &t.env_key, &t.account_id, 3).await;
    for (e, id) in events.iter().zip(&ids) {
        assert_eq!(e["type"], "contact.updated");
        assert_eq!(e["source"], "WEBHOOK");
        assert_eq!(e["remoteId"], id.as_str());
        assert_eq!(e["accountId"], t.account_id.as_str());
        assert_eq!(e["record"]["remoteId"], id.as_str());
        assert!(
            e["record"]["lastName"].is_string() || e["record"]["firstName"].is_string(),
            "{e}"
        );
        assert_eq!(e["occurredAt"], "2025-11-24T16:00:00Z");
    }
    // The ids of one delivery were read in one batch call, not one call each.
    let stats: Value = t
        .http
        .get(format!("{}/_control/stats", t.sandbox.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let batch_reads = stats.to_string().matches("batch/read").count();
    assert!(batch_reads >= 1, "{stats}");

    // The same delivery again (a vendor retry): acknowledged, nothing new.
    let again = post_v3(&t, &body, CLIENT_SECRET, now_ms()).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["accepted"], 0);
    assert_eq!(again.body["replayed"], true);

    // Tampered: signed for another body.
    let url = format!("{}/webhooks/hubspot", t.gateway.url());
    let ts = now_ms();
    let sig = base64::engine::general_purpose::STANDARD.encode(hmac256(
        CLIENT_SECRET.as_bytes(),
        format!("POST{url}[]{ts}").as_bytes(),
    ));
    let forged_body = hubspot_events(&portal, &ids, 2000);
    let tampered = send(
        &t,
        &url,
        &forged_body,
        &[
            ("X-HubSpot-Signature-v3", sig),
            ("X-HubSpot-Request-Timestamp", ts.to_string()),
        ],
    )
    .await;
    assert_eq!(tampered.status, 401);
    assert_eq!(tampered.body["outcome"], "BAD_SIGNATURE");

    // Signed with another app's secret (a rotated secret).
    let rotated = post_v3(&t, &forged_body, "old-secret", now_ms()).await;
    assert_eq!(rotated.status, 401);

    // Correctly signed, but six minutes old: a replay.
    let old = post_v3(&t, &forged_body, CLIENT_SECRET, now_ms() - 6 * 60 * 1000).await;
    assert_eq!(old.status, 401);
    assert_eq!(old.body["outcome"], "REPLAYED");

    // No signature at all.
    let unsigned = send(&t, &url, &forged_body, &[]).await;
    assert_eq!(unsigned.status, 401);

    // Nothing refused was stored.
    let events = wait_events(&t, &t.env_key, &t.account_id, 3).await;
    assert_eq!(events.len(), 3);

    // The account's log, newest first: the refused deliveries whose payload names the
    // account's portal are logged on it (so a rotated secret shows where it hurts), the
    // unsigned one names nothing; then the redelivery and the first delivery.
    let log = deliveries(&t, &t.account_id).await;
    let outcomes: Vec<&str> = log.iter().map(|d| d["outcome"].as_str().unwrap()).collect();
    assert_eq!(
        outcomes,
        [
            "REPLAYED",
            "BAD_SIGNATURE",
            "BAD_SIGNATURE",
            "REPLAYED",
            "ACCEPTED"
        ],
        "{log:?}"
    );
    assert!(
        log[0]["reason"].as_str().unwrap().contains("older than"),
        "{log:?}"
    );
    assert_eq!(log[4]["eventCount"], 3);
}

/// The intake keeps its lookups (the apps' secrets, the account a portal routes to, that
/// account) for up to a second; a change made through the gateway is seen by the very next
/// delivery all the same.
#[tokio::test]
async fn a_rotated_app_secret_and_a_disabled_account_hold_from_the_next_delivery() {
    let t = TestGateway::start().await;
    set_platform_app(&t, "hubspot", CLIENT_SECRET).await;
    let portal = portal_id(&t).await;
    let ids = some_contact_ids(&t, 2).await;
    let deliver = |first_event: u64, secret: &'static str| {
        let body = hubspot_events(&portal, &ids, first_event);
        let t = &t;
        async move { post_v3(t, &body, secret, now_ms()).await }
    };
    let first = deliver(5000, CLIENT_SECRET).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["accepted"], 2, "{}", first.body);

    set_platform_app(&t, "hubspot", "rotated-app-secret").await;
    let old = deliver(5100, CLIENT_SECRET).await;
    assert_eq!(
        old.status, 401,
        "the replaced secret still verifies: {}",
        old.body
    );
    let new = deliver(5200, "rotated-app-secret").await;
    assert_eq!(new.status, 200, "{}", new.body);
    assert_eq!(new.body["accepted"], 2, "{}", new.body);

    let r = t
        .gql(
            Some(&t.env_key),
            "mutation($a: ID!) { disableAccount(id: $a) { status } }",
            json!({"a": t.account_id}),
        )
        .await;
    assert_eq!(
        r.body["data"]["disableAccount"]["status"], "DISABLED",
        "{}",
        r.body
    );
    let after = deliver(5300, "rotated-app-secret").await;
    assert_eq!(after.status, 200, "{}", after.body);
    assert_eq!(
        after.body["accepted"], 0,
        "a disabled account took events: {}",
        after.body
    );
}

#[tokio::test]
async fn hubspot_v1_and_v2_signatures_are_checked_for_old_apps() {
    let t = TestGateway::start().await;
    set_platform_app(&t, "hubspot", CLIENT_SECRET).await;
    let portal = portal_id(&t).await;
    let ids = some_contact_ids(&t, 2).await;
    let url = format!("{}/webhooks/hubspot", t.gateway.url());

    let v1_body = hubspot_events(&portal, &ids[..1], 10);
    let v1 = hex(&Sha256::digest(
        format!("{CLIENT_SECRET}{v1_body}").as_bytes(),
    ));
    let ok = send(
        &t,
        &url,
        &v1_body,
        &[
            ("X-HubSpot-Signature", v1.clone()),
            ("X-HubSpot-Signature-Version", "v1".into()),
        ],
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["accepted"], 1);

    let v2_body = hubspot_events(&portal, &ids[1..2], 20);
    let v2 = hex(&Sha256::digest(
        format!("{CLIENT_SECRET}POST{url}{v2_body}").as_bytes(),
    ));
    let ok = send(
        &t,
        &url,
        &v2_body,
        &[
            ("X-HubSpot-Signature", v2.clone()),
            ("X-HubSpot-Signature-Version", "v2".into()),
        ],
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);

    // A v1 digest presented as v2, and a v2 digest over another body, are refused.
    let wrong = send(
        &t,
        &url,
        &v1_body,
        &[
            ("X-HubSpot-Signature", v1),
            ("X-HubSpot-Signature-Version", "v2".into()),
        ],
    )
    .await;
    assert_eq!(wrong.status, 401);
    let wrong = send(
        &t,
        &url,
        &v1_body,
        &[
            ("X-HubSpot-Signature", v2),
            ("X-HubSpot-Signature-Version", "v2".into()),
        ],
    )
    .await;
    assert_eq!(wrong.status, 401);

    let events = wait_events(&t, &t.env_key, &t.account_id, 2).await;
    assert_eq!(events.len(), 2);
}

/// A provider directory with the real providers and two test vendors that sign as Attio
/// (hex HMAC of the body) and Close (hex HMAC of timestamp + body, hex key) do. Their
/// resources are HubSpot's, so events are completed against the sandbox HubSpot.
fn test_vendor_providers() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(repo_path("providers")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    copy_dir(&repo_path("providers/samples"), &dir.path().join("samples"));
    let hubspot: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_path("providers/hubspot.json")).unwrap(),
    )
    .unwrap();
    let events = "[body.events.{ 'id': id, 'resource': 'contacts', 'action': $substringAfter(event_type, 'record.'), 'remoteId': $string(record_id) }]";
    for (name, signature) in [
        (
            "attio",
            json!({"scheme": "hmac", "header": "Attio-Signature", "key": "subscriptionSecret", "message": ["body"]}),
        ),
        (
            "close",
            json!({"scheme": "hmac", "header": "close-sig-hash", "key": "subscriptionSecret", "keyEncoding": "hex",
                         "message": ["header:close-sig-timestamp", "body"],
                         "timestamp": {"header": "close-sig-timestamp", "unit": "seconds", "toleranceSeconds": 300}}),
        ),
    ] {
        // The test vendor replaces the real provider file of that name: its samples are the
        // real vendor's records, not HubSpot's.
        let samples = dir.path().join("samples").join(name);
        if samples.exists() {
            std::fs::remove_dir_all(&samples).unwrap();
        }
        let mut p = hubspot.clone();
        p["name"] = json!(name);
        p["displayName"] = json!(format!("{name} (test vendor)"));
        p["oauth"] = Value::Null;
        p.as_object_mut().unwrap().remove("oauth");
        p["resources"] = json!({"contacts": hubspot["resources"]["contacts"].clone()});
        p["webhooks"] =
            json!({"account": {"by": "url"}, "signatures": [signature], "events": events});
        std::fs::write(
            dir.path().join(format!("{name}.json")),
            serde_json::to_string_pretty(&p).unwrap(),
        )
        .unwrap();
    }
    dir
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            copy_dir(&path, &to.join(path.file_name().unwrap()));
        } else {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
}

/// Connects a test vendor account (the sandbox HubSpot under another provider name) and
/// gives it a subscription with `secret`, as creating the vendor's webhook would.
async fn test_vendor_account(t: &TestGateway, provider: &str, secret: &str) -> String {
    let r = t
        .gql(
            Some(&t.env_key),
            "mutation($p: String!, $c: JSON!, $s: JSON) { connectAccount(provider: $p, credentials: $c, settings: $s) { id } }",
            json!({"p": provider, "c": {"accessToken": tessera_sandbox::HUBSPOT_DEMO_TOKEN},
                   "s": {"baseUrl": format!("{}/hubspot", t.sandbox.base_url())}}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    let account = r.body["data"]["connectAccount"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let services = &t.gateway.services;
    let id = uuid::Uuid::new_v4().to_string();
    services
        .store
        .insert_webhook_subscription(tessera::store::WebhookSubscription {
            secret: Some(services.vault.seal_secret(
                &tessera::webhooks::intake::subscription_context(&id),
                &tessera::secret::Secret::new(secret),
            )),
            id,
            account_id: account.clone(),
            remote_id: Some(format!("whsub_{provider}")),
            state: "ACTIVE".into(),
            expires_at: None,
            renew_at: None,
            last_renewed_at: None,
            last_delivery_at: None,
            created_at: chrono::Utc::now(),
            failures: 0,
            last_error: None,
        })
        .await
        .unwrap();
    account
}

fn attio_body(ids: &[String], event_id: &str) -> String {
    let events: Vec<Value> = ids
        .iter()
        .map(|id| {
            json!({"event_type": "record.updated", "id": event_id, "record_id": id,
                         "actor": {"type": "workspace-member", "id": "m1"}})
        })
        .collect();
    json!({"webhook_id": "wh1", "events": events}).to_string()
}

#[tokio::test]
async fn attio_and_close_schemes_verify_on_test_vendor_files() {
    let providers = test_vendor_providers();
    let t = TestGateway::start_with(&repo_path("schema"), providers.path()).await;
    let ids = some_contact_ids(&t, 2).await;

    // Attio: hex HMAC-SHA256 of the raw body with the webhook's secret.
    let attio = test_vendor_account(&t, "attio", "attio-webhook-secret").await;
    let url = format!("{}/webhooks/attio/{attio}", t.gateway.url());
    let body = attio_body(&ids[..1], "ev-a1");
    let sig = hex(&hmac256(b"attio-webhook-secret", body.as_bytes()));
    let ok = send(&t, &url, &body, &[("Attio-Signature", sig.clone())]).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["accepted"], 1);
    let tampered = send(
        &t,
        &url,
        &attio_body(&ids[1..], "ev-a2"),
        &[("Attio-Signature", sig.clone())],
    )
    .await;
    assert_eq!(tampered.status, 401);
    // Attio has no timestamp: a replay is caught by its event id.
    let replay = send(&t, &url, &body, &[("Attio-Signature", sig)]).await;
    assert_eq!(replay.status, 200);
    assert_eq!(replay.body["replayed"], true);
    // The URL names the account: another account's URL with this account's signature fails.
    let other = format!("{}/webhooks/attio/{}", t.gateway.url(), t.account_id);
    let wrong_account = send(
        &t,
        &other,
        &body,
        &[(
            "Attio-Signature",
            hex(&hmac256(b"attio-webhook-secret", body.as_bytes())),
        )],
    )
    .await;
    assert_eq!(wrong_account.status, 404);

    // Close: hex HMAC-SHA256 of timestamp + body, keyed by the hex-decoded signature key.
    let key_hex = "a1b2c3d4e5f60718293a4b5c6d7e8f90";
    let close = test_vendor_account(&t, "close", key_hex).await;
    let url = format!("{}/webhooks/close/{close}", t.gateway.url());
    let key: Vec<u8> = (0..key_hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&key_hex[i..i + 2], 16).unwrap())
        .collect();
    let signed = |body: &str, ts: i64| {
        vec![
            (
                "close-sig-hash",
                hex(&hmac256(&key, format!("{ts}{body}").as_bytes())),
            ),
            ("close-sig-timestamp", ts.to_string()),
        ]
    };
    let body = attio_body(&ids[1..2], "ev-c1");
    let now = chrono::Utc::now().timestamp();
    let ok = send(&t, &url, &body, &signed(&body, now)).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    // The key's text instead of its bytes: the mistake a hand-written check makes.
    let text_key = hex(&hmac256(
        key_hex.as_bytes(),
        format!("{now}{body}").as_bytes(),
    ));
    let wrong = send(
        &t,
        &url,
        &body,
        &[
            ("close-sig-hash", text_key),
            ("close-sig-timestamp", now.to_string()),
        ],
    )
    .await;
    assert_eq!(wrong.status, 401);
    let stale = send(
        &t,
        &url,
        &attio_body(&ids[..1], "ev-c2"),
        &signed(&attio_body(&ids[..1], "ev-c2"), now - 600),
    )
    .await;
    assert_eq!(stale.status, 401);
    assert_eq!(stale.body["outcome"], "REPLAYED");

    let a = wait_events(&t, &t.env_key, &attio, 1).await;
    assert_eq!(a[0]["type"], "contact.updated");
    assert_eq!(a[0]["record"]["remoteId"], ids[0].as_str());
    let c = wait_events(&t, &t.env_key, &close, 1).await;
    assert_eq!(c[0]["remoteId"], ids[1].as_str());
}

/// A graphql-transport-ws client: connects, authenticates in `connection_init`, and
/// subscribes to `events`.
async fn subscribe(
    gateway_url: &str,
    key: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut req = format!("{}/graphql/ws", gateway_url.replace("http://", "ws://"))
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(
        resp.headers()["sec-websocket-protocol"],
        "graphql-transport-ws"
    );
    ws.send(Message::Text(
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {key}")}})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    let ack = next_json(&mut ws).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    ws.send(Message::Text(json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { events { type accountId remoteId source record } }"}}).to_string().into())).await.unwrap();
    ws
}

async fn next_json(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Value {
    loop {
        // A bound, not a wait: an event can legitimately take the feed's gap wait (10 s,
        // an earlier sequence number still committing) plus processing on a loaded CI
        // machine; 20 s was exceeded once in several clean runs.
        let msg = tokio::time::timeout(Duration::from_secs(45), ws.next())
            .await
            .expect("no message in 45 s")
            .unwrap()
            .unwrap();
        match msg {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["type"] == "ping" {
                    continue;
                }
                return v;
            }
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => continue,
        }
    }
}

/// Waits until the gateway's feed has a subscriber (the subscribe message was handled).
async fn wait_subscribers(t: &TestGateway, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while t.gateway.services.events.feed.receiver_count() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "the subscription never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_subscriber_receives_its_environment_events_and_nothing_of_another() {
    let t = TestGateway::start().await;
    set_platform_app(&t, "hubspot", CLIENT_SECRET).await;
    let portal = portal_id(&t).await;
    // Another environment with its own HubSpot portal.
    let other_key = t.create_environment("globex").await;
    let r = t
        .gql(
            Some(&other_key),
            "mutation($c: JSON!, $s: JSON) { connectAccount(provider: \"hubspot\", credentials: $c, settings: $s) { id } }",
            json!({"c": {"accessToken": tessera_sandbox::HUBSPOT_DEMO_TOKEN},
                   "s": {"baseUrl": t.sandbox.base_url() + "/hubspot", "portalId": "777"}}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    let other_account = r.body["data"]["connectAccount"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let mut mine = subscribe(&t.gateway.url(), &t.env_key).await;
    let mut theirs = subscribe(&t.gateway.url(), &other_key).await;
    wait_subscribers(&t, 2).await;

    let ids = some_contact_ids(&t, 2).await;
    let ok = post_v3(
        &t,
        &hubspot_events(&portal, &ids[..1], 5000),
        CLIENT_SECRET,
        now_ms(),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let got = next_json(&mut mine).await;
    assert_eq!(got["type"], "next", "{got}");
    let event = &got["payload"]["data"]["events"];
    assert_eq!(event["type"], "contact.updated");
    assert_eq!(event["accountId"], t.account_id.as_str());
    assert_eq!(event["remoteId"], ids[0].as_str());

    // Then one for the other environment's portal: the first thing its subscriber sees is
    // its own event, so the first one never reached it.
    let ok = post_v3(
        &t,
        &hubspot_events("777", &ids[1..2], 6000),
        CLIENT_SECRET,
        now_ms(),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let got = next_json(&mut theirs).await;
    assert_eq!(
        got["payload"]["data"]["events"]["accountId"],
        other_account.as_str(),
        "{got}"
    );
    assert_eq!(
        got["payload"]["data"]["events"]["remoteId"],
        ids[1].as_str()
    );
}

#[tokio::test]
async fn a_websocket_without_a_valid_key_is_refused() {
    let t = TestGateway::start().await;
    let mut req = format!("{}/graphql/ws", t.gateway.url().replace("http://", "ws://"))
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws.send(Message::Text(
        json!({"type": "connection_init", "payload": {"authorization": "Bearer nope"}})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap();
    match msg {
        Some(Ok(Message::Close(Some(frame)))) => {
            assert_eq!(u16::from(frame.code), 4403, "{frame:?}")
        }
        other => panic!("expected a close, got {other:?}"),
    }
}

#[tokio::test]
async fn malformed_and_unknown_deliveries_are_logged_not_stored() {
    let t = TestGateway::start().await;
    set_platform_app(&t, "hubspot", CLIENT_SECRET).await;
    // Signed, but not JSON.
    let bad = post_v3(&t, "{not json", CLIENT_SECRET, now_ms()).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["outcome"], "MALFORMED");
    // Signed, for a portal no account links: acknowledged (the vendor must not retry).
    let ids = some_contact_ids(&t, 1).await;
    let unknown = post_v3(
        &t,
        &hubspot_events("424242", &ids, 1),
        CLIENT_SECRET,
        now_ms(),
    )
    .await;
    assert_eq!(unknown.status, 200);
    assert_eq!(unknown.body["accepted"], 0);
    // An unknown provider.
    let none = send(
        &t,
        &format!("{}/webhooks/nosuch", t.gateway.url()),
        "{}",
        &[],
    )
    .await;
    assert_eq!(none.status, 404);
}

async fn gql_at(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    query: &str,
    variables: Value,
) -> Value {
    http.post(format!("{base}/graphql"))
        .bearer_auth(key)
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn count_events_at(http: &reqwest::Client, base: &str, key: &str) -> Vec<Value> {
    let r = gql_at(
        http,
        base,
        key,
        "{ events(first: 500) { nodes { remoteId type record } } }",
        json!({}),
    )
    .await;
    assert!(r["errors"].is_null(), "{r}");
    r["data"]["events"]["nodes"].as_array().unwrap().clone()
}

/// The vendor hears 2xx once the events are stored; processing comes after. A replica
/// killed in between (here: while it waits on the vendor for the records) leaves the
/// events in the inbox, and the next replica processes them exactly once.
#[tokio::test]
async fn a_replica_killed_after_acknowledging_leaves_nothing_lost_or_doubled() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let sandbox = tessera_sandbox::Sandbox::spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let base = sandbox.base_url();
    let http = reqwest::Client::new();
    let key = tessera::credentials::SecretKey::generate().to_base64();
    let lease = [
        ("TESSERA_WEBHOOK_LEASE_SECS", "2"),
        (
            "TESSERA_ALLOW_UPSTREAMS",
            base.trim_start_matches("http://"),
        ),
    ];
    let mut a =
        crate::replicas::spawn_serve(&database_url, &key, dir.path(), "killed", &lease).await;

    let admin = "replica-admin-key";
    let created = gql_at(
        &http,
        &a.url,
        admin,
        "mutation { createEnvironment(name: \"acme\") { apiKey } }",
        json!({}),
    )
    .await;
    let env_key = created["data"]["createEnvironment"]["apiKey"]
        .as_str()
        .unwrap()
        .to_string();
    let app = gql_at(&http, &a.url, admin, "mutation($s: String!) { setOAuthApp(provider: \"hubspot\", clientId: \"c\", clientSecret: $s) { provider } }", json!({"s": CLIENT_SECRET})).await;
    assert!(app["errors"].is_null(), "{app}");
    let connected = gql_at(
        &http,
        &a.url,
        &env_key,
        "mutation($c: JSON!, $s: JSON) { connectAccount(provider: \"hubspot\", credentials: $c, settings: $s) { id } }",
        json!({"c": {"accessToken": tessera_sandbox::HUBSPOT_DEMO_TOKEN}, "s": {"baseUrl": format!("{base}/hubspot")}}),
    )
    .await;
    assert!(connected["errors"].is_null(), "{connected}");
    let contacts = gql_at(
        &http,
        &a.url,
        &env_key,
        "query($a: ID!) { contacts(accountId: $a, first: 2) { edges { node { remoteId } } } }",
        json!({"a": connected["data"]["connectAccount"]["id"]}),
    )
    .await;
    let ids: Vec<String> = contacts["data"]["contacts"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node"]["remoteId"].as_str().unwrap().to_string())
        .collect();
    let portal: Value = http
        .get(format!("{base}/hubspot/account-info/v3/details"))
        .bearer_auth(tessera_sandbox::HUBSPOT_DEMO_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let portal = portal["portalId"].to_string();

    // The vendor's batch read hangs for a minute, once: the processor is stuck in it.
    let fault = http
        .post(format!("{base}/_control/faults"))
        .json(&json!({"provider": "hubspot", "kind": "delay", "delayMs": 60_000, "pathContains": "batch/read", "times": 1}))
        .send()
        .await
        .unwrap();
    assert!(fault.status().is_success());
    let batch_reads = || async {
        let stats: Value = http
            .get(format!("{base}/_control/stats"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        stats.to_string().matches("batch/read").count()
    };
    let before = batch_reads().await;
    let body = hubspot_events(&portal, &ids[..1], 77);
    let ack = post_v3_to(&http, &a.url, &body, CLIENT_SECRET, now_ms()).await;
    assert_eq!(ack.status, 200, "{}", ack.body);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while batch_reads().await == before {
        assert!(
            std::time::Instant::now() < deadline,
            "the processor never read the records"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.kill();

    let b = crate::replicas::spawn_serve(&database_url, &key, dir.path(), "after", &lease).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let first = loop {
        let events = count_events_at(&http, &b.url, &env_key).await;
        if !events.is_empty() {
            break events;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the acknowledged event was never processed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["remoteId"], ids[0].as_str());
    assert!(first[0]["record"].is_object(), "{first:?}");

    // A second delivery, processed after: if the first could be processed twice, it
    // would have been by now.
    let body = hubspot_events(&portal, &ids[1..2], 78);
    let ack = post_v3_to(&http, &b.url, &body, CLIENT_SECRET, now_ms()).await;
    assert_eq!(ack.status, 200, "{}", ack.body);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let events = count_events_at(&http, &b.url, &env_key).await;
        if events.len() >= 2 {
            assert_eq!(events.len(), 2, "{events:?}");
            break;
        }
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// On PostgreSQL, an event taken in by one replica reaches a subscriber connected to
/// another (the other replica's feed is woken by `NOTIFY`).
#[tokio::test]
async fn two_replicas_on_postgres_intake_on_one_subscriber_on_the_other() {
    let (url, a, b) = TestGateway::two_replicas().await;
    set_platform_app(&a, "hubspot", CLIENT_SECRET).await;
    let portal = portal_id(&a).await;
    let ids = some_contact_ids(&a, 1).await;
    let mut ws = subscribe(&b.url(), &a.env_key).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while b.services.events.feed.receiver_count() < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the subscription never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ok = post_v3(
        &a,
        &hubspot_events(&portal, &ids, 9000),
        CLIENT_SECRET,
        now_ms(),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let got = next_json(&mut ws).await;
    assert_eq!(got["type"], "next", "{got}");
    assert_eq!(
        got["payload"]["data"]["events"]["remoteId"],
        ids[0].as_str()
    );
    assert_eq!(
        got["payload"]["data"]["events"]["accountId"],
        a.account_id.as_str()
    );
    b.stop().await;
    a.gateway.stop().await;
    crate::store::drop_postgres_database(&url).await;
}

/// What wakes another replica's feed: a `NOTIFY` reaches a listener on another connection.
#[tokio::test]
async fn postgres_event_notifications_reach_a_listener() {
    let url = crate::store::fresh_postgres_url().await;
    let store = tessera::store::Store::connect(&url).await.unwrap();
    let mut listener = store
        .listen_events()
        .await
        .unwrap()
        .expect("PostgreSQL listens");
    store.notify_events().await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), listener.recv())
        .await
        .expect("no notification")
        .unwrap();
    drop(listener);
    store.close().await.unwrap();
    crate::store::drop_postgres_database(&url).await;
    // SQLite has no notifications: the feed polls instead.
    let sqlite = tessera::store::Store::connect("sqlite::memory:")
        .await
        .unwrap();
    assert!(sqlite.listen_events().await.unwrap().is_none());
}

// ---------------------------------------------------------------------------------------
// Per-account subscriptions: created on connect, renewed at half their lifetime, created
// again when the vendor lost them, LAPSED when nothing works.

pub(crate) async fn control(
    t: &TestGateway,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> Value {
    let resp = t
        .http
        .request(method, format!("{}/_control/{path}", t.sandbox.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Connects the sandbox account of `provider` with extra settings.
pub(crate) async fn connect_with(t: &TestGateway, provider: &str, extra: Value) -> String {
    let demo = t
        .sandbox
        .demo_accounts()
        .into_iter()
        .find(|a| a.provider == provider)
        .unwrap();
    let mut settings = demo.settings.clone();
    for (k, v) in extra.as_object().unwrap() {
        settings[k] = v.clone();
    }
    let r = t
        .gql(
            Some(&t.env_key),
            "mutation($p: String!, $c: JSON!, $s: JSON) { connectAccount(provider: $p, credentials: $c, settings: $s) { id } }",
            json!({"p": provider, "c": demo.credentials, "s": settings}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    r.body["data"]["connectAccount"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

pub(crate) async fn subscriptions(t: &TestGateway, account: &str) -> Vec<Value> {
    let r = t
        .gql(
            Some(&t.env_key),
            "query($a: ID!) { linkedAccount(id: $a) { webhookSubscriptions { id remoteId state expiresAt lastRenewedAt lastDeliveryAt lastError } events { kind message } } }",
            json!({"a": account}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    r.body["data"]["linkedAccount"]["webhookSubscriptions"]
        .as_array()
        .unwrap()
        .clone()
}

/// Polls the account's one subscription until `done` holds (or fails after `secs`).
pub(crate) async fn wait_subscription(
    t: &TestGateway,
    account: &str,
    secs: u64,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let subs = subscriptions(t, account).await;
        if let Some(s) = subs.first()
            && done(s)
        {
            return s.clone();
        }
        assert!(std::time::Instant::now() < deadline, "{what}: {subs:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the account's delivery log shows a delivery refused as `BAD_SIGNATURE`.
async fn wait_refused(t: &TestGateway, account: &str, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !outcomes(t, account)
        .await
        .iter()
        .any(|o| o == "BAD_SIGNATURE")
    {
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) async fn outcomes(t: &TestGateway, account: &str) -> Vec<String> {
    deliveries(t, account)
        .await
        .iter()
        .map(|d| d["outcome"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn graph_subscription_is_validated_renewed_at_half_life_recreated_and_lapses() {
    let t = TestGateway::start().await;
    control(
        &t,
        reqwest::Method::PUT,
        "webhooks/msgraph",
        json!({"minLifetimeSeconds": 1}),
    )
    .await;
    let account = connect_with(&t, "msgraph", json!({"webhookLifetimeSeconds": 10})).await;

    // Created on connect, after Graph's handshake was answered.
    let first =
        wait_subscription(&t, &account, 10, "never ACTIVE", |s| s["state"] == "ACTIVE").await;
    let sent = control(&t, reqwest::Method::GET, "webhooks/msgraph", Value::Null).await;
    let validation = sent["sent"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "validation")
        .cloned()
        .unwrap_or_default();
    assert_eq!(validation["status"], 200, "{sent}");
    let expires =
        chrono::DateTime::parse_from_rfc3339(first["expiresAt"].as_str().unwrap()).unwrap();
    assert!(
        expires < chrono::Utc::now() + chrono::Duration::seconds(10),
        "{first}"
    );

    // Renewed when half of the 10 s has passed (well before the end, even on a loaded
    // machine): the expiry moves on.
    let renewed = wait_subscription(&t, &account, 30, "never renewed", |s| {
        s["state"] == "ACTIVE"
            && s["expiresAt"] != first["expiresAt"]
            && s["remoteId"] == first["remoteId"]
    })
    .await;
    assert_ne!(renewed["lastRenewedAt"], first["lastRenewedAt"]);

    // A change at the vendor arrives as an event, completed with the record.
    let touched = control(
        &t,
        reqwest::Method::POST,
        "webhooks/msgraph/touch",
        json!({"resource": "contacts", "action": "updated"}),
    )
    .await;
    let events = wait_events(&t, &t.env_key, &account, 1).await;
    assert_eq!(events[0]["type"], "contact.updated");
    assert_eq!(events[0]["remoteId"], touched["id"]);
    assert_eq!(events[0]["record"]["remoteId"], touched["id"], "{events:?}");

    // A notification with the wrong clientState is refused and logged.
    control(
        &t,
        reqwest::Method::POST,
        "webhooks/msgraph/faults",
        json!({"wrongSignature": true}),
    )
    .await;
    control(
        &t,
        reqwest::Method::POST,
        "webhooks/msgraph/touch",
        json!({"resource": "contacts", "action": "updated"}),
    )
    .await;
    wait_refused(&t, &account, "the forged notification was not refused").await;
    assert_eq!(wait_events(&t, &t.env_key, &account, 1).await.len(), 1);
    t.http
        .delete(format!(
            "{}/_control/webhooks/msgraph/faults",
            t.sandbox.base_url()
        ))
        .send()
        .await
        .unwrap();

    // The vendor loses the subscription: the next renewal gets 404 and creates it again.
    let before = subscriptions(&t, &account).await[0].clone();
    control(
        &t,
        reqwest::Method::POST,
        "webhooks/msgraph/expire",
        json!({"id": before["remoteId"]}),
    )
    .await;
    let recreated = wait_subscription(&t, &account, 30, "never recreated", |s| {
        s["state"] == "ACTIVE" && s["remoteId"] != before["remoteId"]
    })
    .await;
    assert_eq!(
        recreated["id"], before["id"],
        "the same subscription, with a new vendor id"
    );

    // Renewal and creation both keep failing: LAPSED once the expiry has passed.
    control(
        &t,
        reqwest::Method::POST,
        "webhooks/msgraph/faults",
        json!({"renewalFails": true, "validationFails": true}),
    )
    .await;
    let lapsed =
        wait_subscription(&t, &account, 40, "never LAPSED", |s| s["state"] == "LAPSED").await;
    assert!(lapsed["lastError"].is_string(), "{lapsed}");
    let r = t
        .gql(
            Some(&t.env_key),
            "query($a: ID!) { linkedAccount(id: $a) { events { kind } } }",
            json!({"a": account}),
        )
        .await;
    assert!(
        r.body.to_string().contains("WEBHOOK_SUBSCRIPTION_LAPSED"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn a_graph_lifecycle_notice_renews_at_once() {
    let t = TestGateway::start().await;
    let account = connect_with(&t, "msgraph", json!({"webhookLifetimeSeconds": 3600})).await;
    let first =
        wait_subscription(&t, &account, 10, "never ACTIVE", |s| s["state"] == "ACTIVE").await;
    control(
        &t,
        reqwest::Method::POST,
        "webhooks/msgraph/lifecycle",
        json!({"subscriptionId": first["remoteId"], "lifecycleEvent": "reauthorizationRequired"}),
    )
    .await;
    // Half an hour before it would be due, it is renewed now: the vendor sees a renewal.
    let renewals = || async {
        let stats = control(&t, reqwest::Method::GET, "stats", Value::Null).await;
        stats["byRoute"]
            .as_object()
            .map(|routes| {
                routes
                    .iter()
                    .filter(|(k, _)| k.contains("PATCH") && k.contains("subscriptions"))
                    .filter_map(|(_, v)| v.as_u64())
                    .sum::<u64>()
            })
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while renewals().await == 0 {
        let stats = control(&t, reqwest::Method::GET, "stats", Value::Null).await;
        assert!(
            std::time::Instant::now() < deadline,
            "the notice did not renew it: {}",
            stats["byRoute"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_subscription(&t, &account, 10, "not ACTIVE after the renewal", |s| {
        s["state"] == "ACTIVE"
    })
    .await;
    assert!(
        events_of(&t, &account).await.is_empty(),
        "a notice is not a record change"
    );
}

async fn events_of(t: &TestGateway, account: &str) -> Vec<Value> {
    let r = t
        .gql(
            Some(&t.env_key),
            "query($a: ID) { events(accountId: $a) { nodes { type } } }",
            json!({"a": account}),
        )
        .await;
    r.body["data"]["events"]["nodes"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn pipedrive_webhook_is_created_with_generated_basic_credentials() {
    let t = TestGateway::start().await;
    let account = connect_with(&t, "pipedrive", json!({})).await;
    let sub = wait_subscription(&t, &account, 10, "never ACTIVE", |s| s["state"] == "ACTIVE").await;
    assert!(
        sub["expiresAt"].is_null(),
        "Pipedrive webhooks do not expire: {sub}"
    );
    let listed = control(&t, reqwest::Method::GET, "webhooks/pipedrive", Value::Null).await;
    let hook = &listed["subscriptions"][0];
    assert_eq!(hook["http_auth_user"], "tessera", "{listed}");
    assert!(
        hook["subscription_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/webhooks/pipedrive/{account}"))
    );

    // The v2 payload carries the record: mapped as it came, no read needed.
    let touched = control(
        &t,
        reqwest::Method::POST,
        "webhooks/pipedrive/touch",
        json!({"resource": "contacts", "action": "updated"}),
    )
    .await;
    let events = wait_events(&t, &t.env_key, &account, 1).await;
    assert_eq!(events[0]["type"], "contact.updated");
    assert_eq!(
        events[0]["remoteId"],
        touched["id"].to_string().trim_matches('"')
    );
    assert!(
        events[0]["record"]["lastName"].is_string() || events[0]["record"]["firstName"].is_string(),
        "{events:?}"
    );

    // The wrong password is refused.
    control(
        &t,
        reqwest::Method::POST,
        "webhooks/pipedrive/faults",
        json!({"wrongSignature": true}),
    )
    .await;
    control(
        &t,
        reqwest::Method::POST,
        "webhooks/pipedrive/touch",
        json!({"resource": "contacts", "action": "updated"}),
    )
    .await;
    wait_refused(&t, &account, "the wrong credentials were not refused").await;
}

#[tokio::test]
async fn zoho_channel_is_enabled_again_before_expiry_and_checks_its_token() {
    let t = TestGateway::start().await;
    control(
        &t,
        reqwest::Method::PUT,
        "webhooks/zoho",
        json!({"minLifetimeSeconds": 1}),
    )
    .await;
    let account = connect_with(&t, "zoho", json!({"webhookLifetimeSeconds": 10})).await;
    let first =
        wait_subscription(&t, &account, 10, "never ACTIVE", |s| s["state"] == "ACTIVE").await;
    // Zoho has no renew endpoint: the same channel is enabled again before it expires.
    wait_subscription(&t, &account, 30, "never renewed", |s| {
        s["expiresAt"] != first["expiresAt"]
            && s["remoteId"] == first["remoteId"]
            && s["state"] == "ACTIVE"
    })
    .await;
    let touched = control(
        &t,
        reqwest::Method::POST,
        "webhooks/zoho/touch",
        json!({"resource": "contacts", "action": "updated"}),
    )
    .await;
    let events = wait_events(&t, &t.env_key, &account, 1).await;
    assert_eq!(events[0]["type"], "contact.updated");
    assert_eq!(
        events[0]["remoteId"],
        touched["id"].to_string().trim_matches('"')
    );
    assert!(
        events[0]["record"].is_object(),
        "read through the engine: {events:?}"
    );

    control(
        &t,
        reqwest::Method::POST,
        "webhooks/zoho/faults",
        json!({"wrongSignature": true}),
    )
    .await;
    control(
        &t,
        reqwest::Method::POST,
        "webhooks/zoho/touch",
        json!({"resource": "contacts", "action": "updated"}),
    )
    .await;
    wait_refused(&t, &account, "the wrong token was not refused").await;
}

/// The sandbox HubSpot itself sends the delivery (its real format and signature) when a
/// record changes through its API.
#[tokio::test]
async fn a_change_at_the_sandbox_hubspot_arrives_as_an_event() {
    let t = TestGateway::start().await;
    set_platform_app(&t, "hubspot", CLIENT_SECRET).await;
    control(
        &t,
        reqwest::Method::PUT,
        "webhooks/hubspot",
        json!({"targetUrl": format!("{}/webhooks/hubspot", t.gateway.url()), "secret": CLIENT_SECRET}),
    )
    .await;
    let touched = control(
        &t,
        reqwest::Method::POST,
        "webhooks/hubspot/touch",
        json!({"resource": "contacts", "action": "updated"}),
    )
    .await;
    let events = wait_events(&t, &t.env_key, &t.account_id, 1).await;
    assert_eq!(events[0]["type"], "contact.updated");
    assert_eq!(
        events[0]["remoteId"],
        touched["id"].to_string().trim_matches('"')
    );
    assert_eq!(outcomes(&t, &t.account_id).await, ["ACCEPTED"]);
}

// ---------------------------------------------------------------------------------------
// Outbound: events delivered to the customer's endpoints, signed.

/// What an endpoint received: headers and raw body of each request.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(reqwest::header::HeaderMap, Vec<u8>)>>>;

/// A customer endpoint: records what it receives and answers `status`.
pub(crate) struct Receiver {
    pub(crate) url: String,
    pub(crate) got: Received,
    status: std::sync::Arc<std::sync::atomic::AtomicU16>,
}

pub(crate) async fn receiver() -> Receiver {
    use axum::extract::State;
    type Shared = (Received, std::sync::Arc<std::sync::atomic::AtomicU16>);
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let status = std::sync::Arc::new(std::sync::atomic::AtomicU16::new(200));
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                |State((got, status)): State<Shared>,
                 headers: axum::http::HeaderMap,
                 body: axum::body::Bytes| async move {
                    let mut h = reqwest::header::HeaderMap::new();
                    for (k, v) in &headers {
                        h.insert(
                            reqwest::header::HeaderName::from_bytes(k.as_str().as_bytes()).unwrap(),
                            reqwest::header::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
                        );
                    }
                    got.lock().unwrap().push((h, body.to_vec()));
                    axum::http::StatusCode::from_u16(
                        status.load(std::sync::atomic::Ordering::SeqCst),
                    )
                    .unwrap()
                },
            ),
        )
        .with_state((got.clone(), status.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { url, got, status }
}

/// Tessera's signature, checked by a verifier written in Python, apart from the signer,
/// as a customer would write it.
fn python_verifies(secret: &str, header: &str, body: &[u8]) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body");
    std::fs::write(&file, body).unwrap();
    let script = r#"
import hashlib, hmac, sys
secret, header, body = sys.argv[1], sys.argv[2], open(sys.argv[3], 'rb').read()
parts = dict(p.split('=', 1) for p in header.split(','))
expected = hmac.new(secret.encode(), parts['t'].encode() + b'.' + body, hashlib.sha256).hexdigest()
sys.exit(0 if hmac.compare_digest(expected, parts['v1']) else 1)
"#;
    std::process::Command::new("python3")
        .args(["-c", script, secret, header])
        .arg(&file)
        .status()
        .expect("python3 runs")
        .success()
}

pub(crate) async fn create_endpoint(t: &TestGateway, url: &str, types: Value) -> (String, String) {
    let r = t
        .gql(
            Some(&t.env_key),
            "mutation($u: String!, $t: [String!]) { createWebhookEndpoint(url: $u, types: $t) { endpoint { id url types } secret } }",
            json!({"u": url, "t": types}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    let created = &r.body["data"]["createWebhookEndpoint"];
    (
        created["endpoint"]["id"].as_str().unwrap().to_string(),
        created["secret"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn events_reach_the_customer_endpoint_signed_and_verifiable() {
    let t = TestGateway::start_on_loopback().await;
    set_platform_app(&t, "hubspot", CLIENT_SECRET).await;
    let hook = receiver().await;
    let (endpoint, secret) = create_endpoint(&t, &hook.url, json!(["contact.updated"])).await;
    let other = receiver().await;
    create_endpoint(&t, &other.url, json!(["company.created"])).await;

    let portal = portal_id(&t).await;
    let ids = some_contact_ids(&t, 1).await;
    let ok = post_v3(
        &t,
        &hubspot_events(&portal, &ids, 31_000),
        CLIENT_SECRET,
        now_ms(),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);

    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let (headers, body) = loop {
        if let Some(first) = hook.got.lock().unwrap().first().cloned() {
            break first;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the endpoint got nothing"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let event: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["type"], "contact.updated");
    assert_eq!(event["remoteId"], ids[0].as_str());
    assert_eq!(headers["tessera-event-id"], event["id"].as_str().unwrap());
    let signature = headers["tessera-signature"].to_str().unwrap().to_string();
    // Checked in Rust with the hmac crate...
    let (t_part, v1) = signature.split_once(",v1=").unwrap();
    let ts = t_part.strip_prefix("t=").unwrap();
    let mut signed = format!("{ts}.").into_bytes();
    signed.extend_from_slice(&body);
    assert_eq!(v1, hex(&hmac256(secret.as_bytes(), &signed)));
    let age = chrono::Utc::now().timestamp() - ts.parse::<i64>().unwrap();
    assert!((0..60).contains(&age), "{signature}");
    // ...and in Python, as the README shows a customer.
    assert!(python_verifies(&secret, &signature, &body));
    assert!(!python_verifies("whsec_wrong", &signature, &body));
    let mut tampered = body.clone();
    tampered.push(b' ');
    assert!(!python_verifies(&secret, &signature, &tampered));

    // An endpoint for other types got nothing.
    assert!(other.got.lock().unwrap().is_empty());
    let r = t
        .gql(Some(&t.env_key), "{ webhookEndpoints { id deliveries { eventId attempt status deadLettered nextAttemptAt } } }", json!({}))
        .await;
    let mine = r.body["data"]["webhookEndpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == endpoint.as_str())
        .unwrap()
        .clone();
    let delivery = &mine["deliveries"][0];
    assert_eq!(delivery["status"], "DELIVERED", "{mine}");
    assert_eq!(delivery["attempt"], 1);
    assert_eq!(delivery["eventId"], event["id"]);
}

#[tokio::test]
async fn endpoints_on_private_addresses_are_refused_without_the_flag() {
    // The harness names only the sandbox: a loopback endpoint is refused. (Refusals at
    // delivery: `deliveries_to_addresses_the_allow_list_does_not_name_are_refused_unsent`.)
    // Then the environment and the admin key are checked.
    let t = TestGateway::start().await;
    let r = t
        .gql(
            Some(&t.env_key),
            "mutation { createWebhookEndpoint(url: \"http://127.0.0.1:9/x\") { secret } }",
            json!({}),
        )
        .await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
    let r = t
        .gql(
            Some(ADMIN_KEY),
            "mutation { createWebhookEndpoint(url: \"http://example.com/x\") { secret } }",
            json!({}),
        )
        .await;
    assert_eq!(r.code(), Some("FORBIDDEN"), "{}", r.body);
    let r = t
        .gql(
            Some(&t.env_key),
            "mutation { createWebhookEndpoint(url: \"ftp://example.com/x\") { secret } }",
            json!({}),
        )
        .await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
}

#[tokio::test]
async fn deliveries_to_addresses_the_allow_list_does_not_name_are_refused_unsent() {
    // Only the sandbox is named. The mutation refuses a loopback endpoint; rows written past
    // it (from before the allow list) are refused at each delivery: the IP literal before
    // sending, the name on the address it resolves to.
    let t = TestGateway::start_allowing(|sandbox| {
        tessera::upstreams::AllowList::parse([sandbox]).unwrap()
    })
    .await;
    set_platform_app(&t, "hubspot", CLIENT_SECRET).await;
    let hook = receiver().await;
    let r = t
        .gql(
            Some(&t.env_key),
            "mutation($u: String!) { createWebhookEndpoint(url: $u) { secret } }",
            json!({"u": hook.url}),
        )
        .await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
    let services = &t.gateway.services;
    let env_id = services
        .store
        .get_linked_account(&t.account_id)
        .await
        .unwrap()
        .unwrap()
        .environment_id;
    let by_name = hook.url.replace("127.0.0.1", "localhost");
    for url in [hook.url.clone(), by_name] {
        let id = uuid::Uuid::new_v4().to_string();
        let secret = tessera::secret::Secret::new("whsec_test");
        services
            .store
            .insert_webhook_endpoint(tessera::store::WebhookEndpoint {
                secret: services
                    .vault
                    .seal_secret(&tessera::webhooks::outbound::endpoint_context(&id), &secret),
                id,
                environment_id: env_id.clone(),
                url,
                types: Vec::new(),
                created_at: chrono::Utc::now(),
            })
            .await
            .unwrap();
    }
    let portal = portal_id(&t).await;
    let ids = some_contact_ids(&t, 1).await;
    let ok = post_v3(
        &t,
        &hubspot_events(&portal, &ids, 41_000),
        CLIENT_SECRET,
        now_ms(),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let errors: Vec<String> = loop {
        let r = t
            .gql(
                Some(&t.env_key),
                "{ webhookEndpoints { url deliveries { status lastError } } }",
                json!({}),
            )
            .await;
        let errors: Vec<String> = r.body["data"]["webhookEndpoints"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["deliveries"][0]["lastError"].as_str().map(str::to_string))
            .collect();
        if errors.len() == 2 {
            break errors;
        }
        assert!(std::time::Instant::now() < deadline, "{}", r.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for e in &errors {
        assert!(
            e.contains("a loopback address") && e.contains("--allow-upstream"),
            "{errors:?}"
        );
    }
    assert!(hook.got.lock().unwrap().is_empty(), "nothing was delivered");
}

#[tokio::test]
async fn a_failing_endpoint_is_retried_dead_lettered_and_replayable() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let sandbox = tessera_sandbox::Sandbox::spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let base = sandbox.base_url();
    let http = reqwest::Client::new();
    let key = tessera::credentials::SecretKey::generate().to_base64();
    // A 4 s retry window with waits from 1 s stands in for 24 h with waits from 30 s.
    let policy = [
        ("TESSERA_OUTBOUND_RETRY_WINDOW_SECS", "4"),
        ("TESSERA_OUTBOUND_FIRST_RETRY_SECS", "1"),
        // The sandbox and the endpoints, on loopback ports of their own.
        ("TESSERA_ALLOW_UPSTREAMS", "127.0.0.0/8"),
    ];
    let gw =
        crate::replicas::spawn_serve(&database_url, &key, dir.path(), "outbound", &policy).await;
    let admin = "replica-admin-key";
    let created = gql_at(
        &http,
        &gw.url,
        admin,
        "mutation { createEnvironment(name: \"acme\") { apiKey } }",
        json!({}),
    )
    .await;
    let env_key = created["data"]["createEnvironment"]["apiKey"]
        .as_str()
        .unwrap()
        .to_string();
    gql_at(&http, &gw.url, admin, "mutation($s: String!) { setOAuthApp(provider: \"hubspot\", clientId: \"c\", clientSecret: $s) { provider } }", json!({"s": CLIENT_SECRET})).await;
    let connected = gql_at(
        &http,
        &gw.url,
        &env_key,
        "mutation($c: JSON!, $s: JSON) { connectAccount(provider: \"hubspot\", credentials: $c, settings: $s) { id } }",
        json!({"c": {"accessToken": tessera_sandbox::HUBSPOT_DEMO_TOKEN}, "s": {"baseUrl": format!("{base}/hubspot")}}),
    )
    .await;
    assert!(connected["errors"].is_null(), "{connected}");
    let hook = receiver().await;
    hook.status.store(500, std::sync::atomic::Ordering::SeqCst);
    let made = gql_at(
        &http,
        &gw.url,
        &env_key,
        "mutation($u: String!) { createWebhookEndpoint(url: $u) { endpoint { id } secret } }",
        json!({"u": hook.url}),
    )
    .await;
    let endpoint = made["data"]["createWebhookEndpoint"]["endpoint"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let portal: Value = http
        .get(format!("{base}/hubspot/account-info/v3/details"))
        .bearer_auth(tessera_sandbox::HUBSPOT_DEMO_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let contacts = gql_at(
        &http,
        &gw.url,
        &env_key,
        "query($a: ID!) { contacts(accountId: $a, first: 1) { edges { node { remoteId } } } }",
        json!({"a": connected["data"]["connectAccount"]["id"]}),
    )
    .await;
    let id = contacts["data"]["contacts"]["edges"][0]["node"]["remoteId"]
        .as_str()
        .unwrap()
        .to_string();
    let ack = post_v3_to(
        &http,
        &gw.url,
        &hubspot_events(&portal["portalId"].to_string(), &[id], 41_000),
        CLIENT_SECRET,
        now_ms(),
    )
    .await;
    assert_eq!(ack.status, 200, "{}", ack.body);

    let deliveries = || async {
        let r = gql_at(&http, &gw.url, &env_key, "{ webhookEndpoints { deliveries { eventId attempt status deadLettered lastStatus } } }", json!({})).await;
        r["data"]["webhookEndpoints"][0]["deliveries"][0].clone()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let dead = loop {
        let d = deliveries().await;
        if d["deadLettered"] == true {
            break d;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never dead-lettered: {d}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(dead["status"], "DEAD");
    assert_eq!(dead["lastStatus"], 500);
    let attempts = dead["attempt"].as_i64().unwrap();
    assert!(
        attempts >= 2,
        "retried with backoff before giving up: {dead}"
    );
    assert_eq!(hook.got.lock().unwrap().len() as i64, attempts);

    // The endpoint is fixed; the dead letter is replayed.
    hook.status.store(204, std::sync::atomic::Ordering::SeqCst);
    let replay = gql_at(&http, &gw.url, &env_key, "mutation($e: ID!, $p: ID!) { redeliverWebhook(eventId: $e, endpointId: $p) { status attempt } }", json!({"e": dead["eventId"], "p": endpoint})).await;
    assert_eq!(
        replay["data"]["redeliverWebhook"]["status"], "PENDING",
        "{replay}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let d = deliveries().await;
        if d["status"] == "DELIVERED" {
            assert_eq!(d["attempt"], 1);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the replay was not delivered: {d}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A delivery the vendor drops is found by reconciliation, stored once as a `POLL` event
/// and counted as missed; a change a webhook did deliver is not reported twice.
#[tokio::test]
async fn a_dropped_delivery_is_found_by_reconciliation_and_counted_as_missed() {
    let t = TestGateway::start().await;
    set_platform_app(&t, "hubspot", CLIENT_SECRET).await;
    control(
        &t,
        reqwest::Method::PUT,
        "webhooks/hubspot",
        json!({"targetUrl": format!("{}/webhooks/hubspot", t.gateway.url()), "secret": CLIENT_SECRET}),
    )
    .await;
    // One change arrives by webhook...
    let delivered = control(
        &t,
        reqwest::Method::POST,
        "webhooks/hubspot/touch",
        json!({"resource": "contacts", "action": "updated"}),
    )
    .await;
    let first = wait_events(&t, &t.env_key, &t.account_id, 1).await;
    assert_eq!(first[0]["source"], "WEBHOOK");
    // ...the next one is dropped by the vendor.
    control(
        &t,
        reqwest::Method::POST,
        "webhooks/hubspot/faults",
        json!({"dropNext": 1}),
    )
    .await;
    let contacts = some_contact_ids(&t, 5).await;
    let other = contacts
        .iter()
        .find(|c| **c != delivered["id"].to_string().trim_matches('"'))
        .unwrap();
    control(
        &t,
        reqwest::Method::POST,
        "webhooks/hubspot/touch",
        json!({"resource": "contacts", "id": other, "action": "updated"}),
    )
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let sent = control(&t, reqwest::Method::GET, "webhooks/hubspot", Value::Null).await;
        if sent["sent"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["dropped"] == true)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the vendor never dropped it: {sent}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let services = &t.gateway.services;
    let found = tessera::webhooks::reconcile::reconcile_account(
        services,
        &t.account_id,
        chrono::Duration::zero(),
    )
    .await
    .unwrap();
    assert_eq!(found, 1, "only the dropped change is missed");
    let events = wait_events(&t, &t.env_key, &t.account_id, 2).await;
    let polled: Vec<&Value> = events.iter().filter(|e| e["source"] == "POLL").collect();
    assert_eq!(polled.len(), 1, "{events:?}");
    assert_eq!(polled[0]["remoteId"], other.as_str());
    assert_eq!(polled[0]["type"], "contact.updated");
    assert!(polled[0]["record"].is_object());
    let r = t
        .gql(
            Some(&t.env_key),
            "query($a: ID!) { linkedAccount(id: $a) { events { kind message } } }",
            json!({"a": t.account_id}),
        )
        .await;
    assert!(r.body.to_string().contains("WEBHOOK_MISSED"), "{}", r.body);

    // A second pass over the same window finds nothing new.
    let again = tessera::webhooks::reconcile::reconcile_account(
        services,
        &t.account_id,
        chrono::Duration::zero(),
    )
    .await
    .unwrap();
    assert_eq!(again, 0);
}

/// Connects a HubSpot account whose vendor is at `base_url` (a dead port, a name that
/// does not resolve).
pub(crate) async fn connect_with_base(t: &TestGateway, base_url: &str) -> String {
    let r = t
        .gql(
            Some(&t.env_key),
            "mutation($s: JSON) { connectAccount(provider: \"hubspot\", credentials: {accessToken: \"tok\"}, settings: $s) { id } }",
            json!({"s": {"baseUrl": base_url}}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    r.body["data"]["connectAccount"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}
