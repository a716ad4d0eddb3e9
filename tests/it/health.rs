//! Health probes against real listeners: a healthy vendor, a closed port, an unresolvable
//! name, a server that does not speak TLS, refused credentials and a vendor answering 503,
//! each classified from the error's type; and two replicas probing an account once. TLS
//! certificate failures are in the fault suite (`faults::network`).

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::TestGateway;

pub(crate) async fn connect_at(t: &TestGateway, base_url: &str) -> String {
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

pub(crate) async fn probe(t: &TestGateway, account: &str) -> tessera::store::AccountHealth {
    tessera::health::probes::probe_account_now(&t.gateway.services, account)
        .await
        .unwrap()
}

async fn health(t: &TestGateway, account: &str) -> Value {
    let r = t
        .gql(
            Some(&t.env_key),
            "query($a: ID!) { linkedAccount(id: $a) { health { state lastProbeAt lastOkAt failure { class message httpStatus } probes { ok class httpStatus latencyMs } } } }",
            json!({"a": account}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    r.body["data"]["linkedAccount"]["health"].clone()
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A server that answers a TLS client hello with plain HTTP, as a misconfigured proxy does.
async fn not_tls() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                    .await;
            });
        }
    });
    port
}

#[tokio::test]
async fn probes_classify_failures_by_the_error_type() {
    // Dead loopback ports, and a name that does not resolve, named so that it is tried.
    let t = TestGateway::start_allowing(|_| {
        tessera::upstreams::AllowList::parse(["127.0.0.0/8", "no-such-host.invalid"]).unwrap()
    })
    .await;

    // Before any probe: UNKNOWN.
    assert_eq!(health(&t, &t.account_id).await["state"], "UNKNOWN");
    let ok = probe(&t, &t.account_id).await;
    assert_eq!(ok.state, "HEALTHY");
    let h = health(&t, &t.account_id).await;
    assert_eq!(h["state"], "HEALTHY");
    assert!(h["lastOkAt"].is_string() && h["failure"].is_null(), "{h}");

    let closed = connect_at(&t, &format!("http://127.0.0.1:{}", closed_port())).await;
    let first = probe(&t, &closed).await;
    assert_eq!(
        first.failure_class.as_deref(),
        Some("TCP_CONNECT"),
        "{first:?}"
    );
    assert_eq!(first.state, "DEGRADED", "one failure is not yet FAILING");
    assert_eq!(probe(&t, &closed).await.state, "FAILING");
    let h = health(&t, &closed).await;
    assert_eq!(h["failure"]["class"], "TCP_CONNECT");
    assert!(h["lastOkAt"].is_null());
    assert_eq!(h["probes"].as_array().unwrap().len(), 2);

    let dns = connect_at(&t, "http://no-such-host.invalid").await;
    assert_eq!(probe(&t, &dns).await.failure_class.as_deref(), Some("DNS"));

    let tls = connect_at(&t, &format!("https://127.0.0.1:{}", not_tls().await)).await;
    let found = probe(&t, &tls).await;
    assert_eq!(found.failure_class.as_deref(), Some("TLS"), "{found:?}");

    // The vendor answers 503 on every listing.
    let down = connect_at(&t, &format!("{}/hubspot", t.sandbox.base_url())).await;
    t.http
        .post(format!("{}/_control/faults", t.sandbox.base_url()))
        .json(&json!({"provider": "hubspot", "status": 503, "times": 100, "pathContains": "/objects/contacts"}))
        .send()
        .await
        .unwrap();
    let found = probe(&t, &down).await;
    assert_eq!(
        found.failure_class.as_deref(),
        Some("HTTP_STATUS"),
        "{found:?}"
    );
    assert_eq!(found.failure_status, Some(503));
    t.http
        .delete(format!("{}/_control/faults", t.sandbox.base_url()))
        .send()
        .await
        .unwrap();

    // Credentials the vendor refuses: AUTH, and FAILING at once.
    t.http
        .delete(format!(
            "{}/_control/tokens/{}",
            t.sandbox.base_url(),
            tessera_sandbox::HUBSPOT_DEMO_TOKEN
        ))
        .send()
        .await
        .unwrap();
    let refused = probe(&t, &t.account_id).await;
    assert_eq!(
        refused.failure_class.as_deref(),
        Some("AUTH"),
        "{refused:?}"
    );
    assert_eq!(refused.state, "FAILING");
    assert!(
        refused.last_ok_at.is_some(),
        "when it last worked stays known"
    );
}

#[tokio::test]
async fn two_replicas_probe_an_account_once_per_interval() {
    let (url, a, b) = TestGateway::two_replicas().await;
    let now = chrono::Utc::now();
    a.gateway
        .services
        .store
        .enroll_probes(&[(a.account_id.clone(), now)])
        .await
        .unwrap();
    // The replicas' own schedulers may have enrolled it already, for later: due now.
    a.gateway
        .services
        .store
        .probe_now(&a.account_id)
        .await
        .unwrap();
    let every = Duration::from_secs(300);
    let (x, y) = tokio::join!(
        tessera::health::probes::probe_due(&a.gateway.services, every),
        tessera::health::probes::probe_due(&b.services, every),
    );
    assert_eq!(x.unwrap() + y.unwrap(), 1, "one replica took the probe");
    let results = a
        .gateway
        .services
        .store
        .list_probe_results(&a.account_id, 10)
        .await
        .unwrap();
    assert_eq!(results.len(), 1);
    // Not due again until the next interval.
    assert_eq!(
        tessera::health::probes::probe_due(&b.services, every)
            .await
            .unwrap(),
        0
    );
    let h = a
        .gateway
        .services
        .store
        .get_account_health(&a.account_id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        h.next_probe_at > now + chrono::Duration::seconds(290),
        "{h:?}"
    );
    b.stop().await;
    a.gateway.stop().await;
    crate::store::drop_postgres_database(&url).await;
}

/// Links `n` more sandbox HubSpot accounts straight in the store (as the demo does).
pub(crate) async fn many_accounts(t: &TestGateway, n: usize) -> Vec<String> {
    let services = &t.gateway.services;
    let env = services.store.list_linked_accounts(None).await.unwrap()[0]
        .environment_id
        .clone();
    let demo = t
        .sandbox
        .demo_accounts()
        .into_iter()
        .find(|a| a.provider == "hubspot")
        .unwrap();
    let creds = tessera::credentials::Credentials::from_input(&demo.credentials).unwrap();
    let mut ids = Vec::new();
    for _ in 0..n {
        let id = uuid::Uuid::new_v4().to_string();
        services
            .store
            .insert_linked_account(tessera::store::NewLinkedAccount {
                credentials: services.vault.seal(&id, &creds),
                id: id.clone(),
                environment_id: env.clone(),
                provider: "hubspot".into(),
                status: "ACTIVE".into(),
                settings: demo.settings.clone(),
                expires_at: None,
            })
            .await
            .unwrap();
        ids.push(id);
    }
    ids
}

#[tokio::test]
async fn a_probe_tick_costs_the_same_statements_for_ten_accounts_or_two_hundred() {
    let t = TestGateway::start().await;
    let services = &t.gateway.services;
    let every = Duration::from_secs(300);
    // The accounts share the sandbox's demo token: lift its rate limit.
    t.http
        .post(format!("{}/_control/ratelimit", t.sandbox.base_url()))
        .json(&json!({"provider": "hubspot", "max": 1_000_000, "intervalMs": 1000}))
        .send()
        .await
        .unwrap();
    let mut cost = Vec::new();
    for n in [10, 200] {
        let ids = many_accounts(&t, n).await;
        let now = chrono::Utc::now();
        let due: Vec<(String, chrono::DateTime<chrono::Utc>)> =
            ids.iter().map(|id| (id.clone(), now)).collect();
        services.store.enroll_probes(&due).await.unwrap();
        let (probed, statements) = tessera::store::counting_statements(
            tessera::health::probes::probe_due(services, every),
        )
        .await;
        let probed = probed.unwrap();
        cost.push(statements);
        assert_eq!(probed, n, "every due account probed in one tick");
        for id in &ids {
            let h = services
                .store
                .get_account_health(id)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(h.state, "HEALTHY", "{h:?}");
        }
    }
    assert_eq!(
        cost[0], cost[1],
        "statements per tick for 10 and 200 accounts: {cost:?}"
    );
    assert!(cost[1] <= 10, "a handful of statements per tick: {cost:?}");
}
