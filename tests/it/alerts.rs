//! Alerts from real evidence: calls to the sandbox vendors over HTTP, the request log and
//! listing observations in the database, webhook deliveries. Each test drives the watcher
//! itself on its own clock (a tick after the evidence), so minutes of watching take no
//! time; the gateway's own watcher is off in tests.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::common::TestGateway;
use tessera::health::watch::{TickReport, Watcher};

const CONTACTS: &str = "query($a: ID!, $n: Int) { contacts(accountId: $a, first: $n) { edges { node { remoteId } } pageInfo { hasNextPage } } }";

/// A watcher on a clock of its own.
struct Watch {
    watcher: Watcher,
    now: DateTime<Utc>,
}

impl Watch {
    fn new() -> Watch {
        Watch {
            // The deliveries a test waits for are committed when it sees them.
            watcher: Watcher::new(Duration::from_secs(120)).reading_deliveries_at_once(),
            now: Utc::now(),
        }
    }

    /// Moves the clock on by `secs` and ticks once the evidence so far is written.
    async fn tick(&mut self, t: &TestGateway, secs: i64) -> TickReport {
        self.now += chrono::Duration::seconds(secs);
        t.gateway.services.monitor.flush().await;
        let report = self
            .watcher
            .tick(&t.gateway.services, self.now)
            .await
            .unwrap();
        assert!(report.watched, "the test's watcher holds the lease");
        report
    }
}

fn kinds(alerts: &[tessera::store::Alert], account: &str) -> Vec<String> {
    let mut k: Vec<String> = alerts
        .iter()
        .filter(|a| a.account_id == account)
        .map(|a| a.kind.clone())
        .collect();
    k.sort();
    k
}

async fn read(t: &TestGateway, account: &str, first: i64) -> Value {
    t.gql(
        Some(&t.env_key),
        CONTACTS,
        json!({"a": account, "n": first}),
    )
    .await
    .body
}

async fn fault(t: &TestGateway, spec: Value) {
    let r = t
        .http
        .post(format!("{}/_control/faults", t.sandbox.base_url()))
        .json(&spec)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
}

async fn clear_faults(t: &TestGateway) {
    t.http
        .delete(format!("{}/_control/faults", t.sandbox.base_url()))
        .send()
        .await
        .unwrap();
}

async fn alerts(t: &TestGateway, key: &str, args: &str) -> Vec<Value> {
    let r = t
        .gql(
            Some(key),
            &format!("{{ alerts{args} {{ id kind state accountId provider openedAt resolvedAt probableCause firstResponse evidence }} }}"),
            json!({}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    r.body["data"]["alerts"].as_array().unwrap().clone()
}

async fn diagnose(t: &TestGateway, account: &str) -> Value {
    let r = t
        .gql(
            Some(&t.env_key),
            "query($a: ID!) { diagnose(accountId: $a) { kind probableCause firstResponse escalate steps { name finding ok } evidence } }",
            json!({"a": account}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    r.body["data"]["diagnose"].clone()
}

/// Waits until the account's delivery log has `n` deliveries with `outcome`.
async fn wait_deliveries(t: &TestGateway, account: &str, outcome: &str, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while crate::webhooks::outcomes(t, account)
        .await
        .iter()
        .filter(|o| *o == outcome)
        .count()
        < n
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{n} {outcome} deliveries never arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn step<'a>(d: &'a Value, name: &str) -> &'a Value {
    d["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap()
}

#[tokio::test]
async fn a_revoked_token_opens_one_alert_announced_to_the_endpoint_and_diagnose_says_reauthorize() {
    let t = TestGateway::start_on_loopback().await;
    let hook = crate::webhooks::receiver().await;
    crate::webhooks::create_endpoint(&t, &hook.url, json!(["alert.opened", "alert.resolved"]))
        .await;
    let (account, grant) = t.oauth_account(-60).await;
    let mut watch = Watch::new();
    assert!(
        watch.tick(&t, 0).await.opened.is_empty(),
        "nothing wrong yet"
    );

    // The customer's admin revokes every session: the refresh token and its access tokens.
    t.control(
        "oauth/revoke",
        json!({"provider": "hubspot", "refreshToken": grant["refresh_token"]}),
    )
    .await;
    let r = read(&t, &account, 5).await;
    assert_eq!(r["errors"][0]["extensions"]["code"], "NEEDS_REAUTH", "{r}");
    let report = watch.tick(&t, 30).await;
    assert_eq!(kinds(&report.opened, &account), ["TOKEN_REVOKED"]);
    assert_eq!(
        kinds(&report.opened, &t.account_id),
        Vec::<String>::new(),
        "the healthy account has none"
    );

    let open = alerts(&t, &t.env_key, "(state: OPEN)").await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["kind"], "TOKEN_REVOKED");
    assert_eq!(open[0]["accountId"], account.as_str());
    assert_eq!(open[0]["probableCause"], "Expired or revoked OAuth token");
    assert!(
        open[0]["firstResponse"]
            .as_str()
            .unwrap()
            .contains("re-authorize")
    );
    assert_eq!(open[0]["evidence"]["status"], "NEEDS_REAUTH", "{}", open[0]);
    assert!(
        !open[0]
            .to_string()
            .contains(grant["refresh_token"].as_str().unwrap()),
        "no secret in an alert"
    );

    // More evidence of the same trouble: still one alert.
    let _ = read(&t, &account, 5).await;
    let again = watch.tick(&t, 30).await;
    assert!(
        again.opened.is_empty() && again.resolved.is_empty(),
        "{again:?}"
    );
    assert_eq!(alerts(&t, &t.env_key, "(state: OPEN)").await.len(), 1);

    // Announced to the customer's endpoint, once.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let body = loop {
        let got = hook.got.lock().unwrap().clone();
        if let Some((_, body)) = got.first() {
            assert_eq!(got.len(), 1, "announced once");
            break serde_json::from_slice::<Value>(body).unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the alert never reached the endpoint"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(body["type"], "alert.opened");
    assert_eq!(body["alert"]["kind"], "TOKEN_REVOKED");
    assert_eq!(body["alert"]["accountId"], account.as_str());

    // Another tenant sees none of it.
    let other = t.create_environment("globex").await;
    assert!(alerts(&t, &other, "").await.is_empty());

    // The playbook, live.
    let d = diagnose(&t, &account).await;
    assert_eq!(d["kind"], "TOKEN_REVOKED", "{d}");
    assert!(
        d["firstResponse"]
            .as_str()
            .unwrap()
            .contains("re-authorize"),
        "{d}"
    );
    assert_eq!(step(&d, "credentials")["ok"], false, "{d}");
    assert_eq!(step(&d, "upstream")["ok"], true, "{d}");
    assert_eq!(
        d["escalate"], false,
        "one account, re-authorization not yet tried: {d}"
    );
    let names: Vec<&str> = d["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "upstream",
            "credentials",
            "rateLimits",
            "payload",
            "connectivity"
        ]
    );

    let healthy = diagnose(&t, &t.account_id).await;
    assert_eq!(healthy["kind"], "HEALTHY", "{healthy}");
    assert!(
        healthy["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["ok"] == true),
        "{healthy}"
    );
}

#[tokio::test]
async fn repeated_server_errors_open_upstream_down_one_503_does_not_and_recovery_resolves() {
    let t = TestGateway::start().await;
    let mut watch = Watch::new();
    watch.tick(&t, 0).await;

    // The vendor is down for one read: four attempts (the first and three retries), all
    // 503 (the breaker opens at five).
    fault(&t, json!({"provider": "hubspot", "status": 503, "times": 4, "pathContains": "/objects/contacts"})).await;
    let r = read(&t, &t.account_id, 5).await;
    assert!(!r["errors"].is_null(), "{r}");
    let report = watch.tick(&t, 30).await;
    assert_eq!(kinds(&report.opened, &t.account_id), ["UPSTREAM_DOWN"]);
    let d = diagnose(&t, &t.account_id).await;
    assert_eq!(d["kind"], "UPSTREAM_DOWN", "{d}");
    assert!(
        d["firstResponse"].as_str().unwrap().contains("status page"),
        "{d}"
    );

    // Back up: once the failures are out of the window and calls work, resolved.
    let r = read(&t, &t.account_id, 5).await;
    assert!(r["errors"].is_null(), "{r}");
    let report = watch.tick(&t, 6 * 60).await;
    assert_eq!(
        kinds(&report.resolved, &t.account_id),
        ["UPSTREAM_DOWN"],
        "{report:?}"
    );
    let resolved = alerts(&t, &t.env_key, "(state: RESOLVED)").await;
    assert_eq!(resolved.len(), 1);
    assert!(resolved[0]["resolvedAt"].is_string());
    assert!(alerts(&t, &t.env_key, "(state: OPEN)").await.is_empty());

    // One 503, retried: noise, no alert.
    fault(&t, json!({"provider": "hubspot", "status": 503, "times": 1, "pathContains": "/objects/contacts"})).await;
    assert!(read(&t, &t.account_id, 5).await["errors"].is_null());
    let report = watch.tick(&t, 30).await;
    assert!(report.opened.is_empty(), "{report:?}");
}

#[tokio::test]
async fn a_quota_spent_by_another_integration_opens_rate_limited_naming_who_spends_it() {
    let t = TestGateway::start().await;
    let mut watch = Watch::new();
    watch.tick(&t, 0).await;
    t.control(
        "ratelimit",
        json!({"provider": "hubspot", "max": 10, "intervalMs": 600000}),
    )
    .await;
    // Another integration on the customer's account spends the whole window.
    for _ in 0..10 {
        let r = t
            .http
            .get(format!(
                "{}/hubspot/crm/v3/objects/contacts?limit=1",
                t.sandbox.base_url()
            ))
            .bearer_auth(tessera_sandbox::HUBSPOT_DEMO_TOKEN)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
    let r = read(&t, &t.account_id, 5).await;
    assert_eq!(r["errors"][0]["extensions"]["code"], "RATE_LIMITED", "{r}");
    let report = watch.tick(&t, 30).await;
    assert_eq!(
        kinds(&report.opened, &t.account_id),
        ["RATE_LIMITED"],
        "{report:?}"
    );
    let evidence: Value = serde_json::from_str(&report.opened[0].evidence).unwrap();
    assert_eq!(
        evidence["spentBy"], "other integrations on the customer's account",
        "{evidence}"
    );
    assert_eq!(evidence["tesseraCalls"], 1, "{evidence}");
    let d = diagnose(&t, &t.account_id).await;
    assert_eq!(d["kind"], "RATE_LIMITED", "{d}");
    assert_eq!(step(&d, "rateLimits")["ok"], false);
    assert!(
        step(&d, "rateLimits")["finding"]
            .as_str()
            .unwrap()
            .contains("other integrations"),
        "{d}"
    );
}

#[tokio::test]
async fn a_listing_that_answers_404_where_it_used_to_answer_opens_endpoint_gone_and_escalates() {
    let t = TestGateway::start().await;
    let mut watch = Watch::new();
    assert!(read(&t, &t.account_id, 5).await["errors"].is_null());
    watch.tick(&t, 0).await;
    // A get of a record that does not exist is a legitimate 404: no alert.
    let r = t
        .gql(
            Some(&t.env_key),
            "query($a: ID!) { contact(accountId: $a, remoteId: \"999999999\") { remoteId } }",
            json!({"a": t.account_id}),
        )
        .await;
    assert!(r.body["data"]["contact"].is_null(), "{}", r.body);
    t.gateway.services.monitor.flush().await;
    let not_found = t
        .gateway
        .services
        .store
        .list_upstream_calls(&t.account_id, Some(404), 5)
        .await
        .unwrap();
    assert_eq!(
        not_found.len(),
        1,
        "the vendor was asked and answered 404: {not_found:?}"
    );
    assert!(watch.tick(&t, 30).await.opened.is_empty());

    fault(&t, json!({"provider": "hubspot", "status": 404, "times": 1000, "pathContains": "/objects/contacts", "method": "GET"})).await;
    let r = read(&t, &t.account_id, 5).await;
    assert!(!r["errors"].is_null(), "{r}");
    let report = watch.tick(&t, 30).await;
    assert_eq!(
        kinds(&report.opened, &t.account_id),
        ["ENDPOINT_GONE"],
        "{report:?}"
    );
    let d = diagnose(&t, &t.account_id).await;
    assert_eq!(d["kind"], "ENDPOINT_GONE", "{d}");
    assert_eq!(
        d["escalate"], true,
        "a moved endpoint needs a provider file change: {d}"
    );

    clear_faults(&t).await;
    assert!(read(&t, &t.account_id, 5).await["errors"].is_null());
    assert_eq!(
        kinds(&watch.tick(&t, 30).await.resolved, &t.account_id),
        ["ENDPOINT_GONE"]
    );
}

#[tokio::test]
async fn three_empty_listings_open_empty_sync_and_a_short_complete_listing_record_count_drop() {
    let t = TestGateway::start().await;
    let mut watch = Watch::new();
    // The usual: complete listings of every contact.
    let mut usual = 0;
    for _ in 0..3 {
        let r = read(&t, &t.account_id, 1000).await;
        assert!(r["errors"].is_null(), "{r}");
        assert_eq!(r["data"]["contacts"]["pageInfo"]["hasNextPage"], false);
        usual = r["data"]["contacts"]["edges"].as_array().unwrap().len();
    }
    assert!(
        usual > 150,
        "the sandbox has a few pages of contacts: {usual}"
    );
    assert!(watch.tick(&t, 0).await.opened.is_empty());

    // The vendor stops sending its cursor: a listing ends after the first page.
    let page = t
        .http
        .get(format!(
            "{}/hubspot/crm/v3/objects/contacts?limit=100",
            t.sandbox.base_url()
        ))
        .bearer_auth(tessera_sandbox::HUBSPOT_DEMO_TOKEN)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let mut first_only = page.clone();
    first_only.as_object_mut().unwrap().remove("paging");
    fault(&t, json!({"provider": "hubspot", "status": 200, "times": 1, "pathContains": "/objects/contacts", "body": first_only})).await;
    let r = read(&t, &t.account_id, 1000).await;
    assert_eq!(
        r["data"]["contacts"]["edges"].as_array().unwrap().len(),
        100,
        "{r}"
    );
    let report = watch.tick(&t, 60).await;
    assert_eq!(
        kinds(&report.opened, &t.account_id),
        ["RECORD_COUNT_DROP"],
        "{report:?}"
    );
    let evidence: Value = serde_json::from_str(&report.opened[0].evidence).unwrap();
    assert_eq!(evidence["resources"][0]["records"], 100, "{evidence}");
    assert_eq!(
        evidence["resources"][0]["usually"], usual as u64,
        "{evidence}"
    );

    // Then listings come back empty (a 200 with no records), three times in a row.
    let empty = json!({"results": []});
    for i in 0..3 {
        fault(&t, json!({"provider": "hubspot", "status": 200, "times": 1, "pathContains": "/objects/contacts", "body": empty})).await;
        let r = read(&t, &t.account_id, 10).await;
        assert!(
            r["data"]["contacts"]["edges"]
                .as_array()
                .unwrap()
                .is_empty(),
            "{r}"
        );
        let report = watch.tick(&t, 60).await;
        if i < 2 {
            assert!(
                report.opened.is_empty(),
                "two empty listings are not yet a pattern: {report:?}"
            );
        } else {
            assert_eq!(
                kinds(&report.opened, &t.account_id),
                ["EMPTY_SYNC"],
                "{report:?}"
            );
        }
    }
    // Records again: both resolved.
    assert!(read(&t, &t.account_id, 1000).await["errors"].is_null());
    let report = watch.tick(&t, 60).await;
    assert_eq!(
        kinds(&report.resolved, &t.account_id),
        ["EMPTY_SYNC", "RECORD_COUNT_DROP"],
        "{report:?}"
    );
}

#[tokio::test]
async fn network_failures_and_an_unresolvable_host_open_network_failure() {
    // Dead loopback ports, and a name that does not resolve, named so that it is tried.
    let t = TestGateway::start_allowing(|_| {
        tessera::upstreams::AllowList::parse(["127.0.0.0/8", "no-such-host.invalid"]).unwrap()
    })
    .await;
    let mut watch = Watch::new();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let closed = crate::webhooks::connect_with_base(&t, &format!("http://127.0.0.1:{port}")).await;
    let dns = crate::webhooks::connect_with_base(&t, "http://no-such-host.invalid").await;
    watch.tick(&t, 0).await;
    for _ in 0..2 {
        assert!(!read(&t, &closed, 5).await["errors"].is_null());
    }
    let found = tessera::health::probes::probe_account_now(&t.gateway.services, &dns)
        .await
        .unwrap();
    assert_eq!(found.failure_class.as_deref(), Some("DNS"));
    let report = watch.tick(&t, 30).await;
    assert_eq!(
        kinds(&report.opened, &closed),
        ["NETWORK_FAILURE"],
        "{report:?}"
    );
    assert_eq!(
        kinds(&report.opened, &dns),
        ["NETWORK_FAILURE"],
        "{report:?}"
    );
    let by_dns = report.opened.iter().find(|a| a.account_id == dns).unwrap();
    assert!(by_dns.evidence.contains("\"DNS\""), "{}", by_dns.evidence);
    let d = diagnose(&t, &dns).await;
    assert_eq!(d["kind"], "NETWORK_FAILURE", "{d}");
    assert!(
        step(&d, "connectivity")["finding"]
            .as_str()
            .unwrap()
            .contains("DNS"),
        "{d}"
    );
    assert!(
        d["firstResponse"]
            .as_str()
            .unwrap()
            .contains("DNS resolution"),
        "{d}"
    );
}

#[tokio::test]
async fn refused_signatures_and_a_lapsed_subscription_open_their_alerts() {
    use crate::webhooks::{connect_with, control, wait_subscription};
    let t = TestGateway::start().await;
    let mut watch = Watch::new();
    let account = connect_with(&t, "pipedrive", json!({})).await;
    wait_subscription(&t, &account, 10, "never ACTIVE", |s| s["state"] == "ACTIVE").await;
    watch.tick(&t, 0).await;
    // The vendor signs with credentials Tessera does not have.
    control(
        &t,
        reqwest::Method::POST,
        "webhooks/pipedrive/faults",
        json!({"wrongSignature": true}),
    )
    .await;
    for _ in 0..3 {
        control(
            &t,
            reqwest::Method::POST,
            "webhooks/pipedrive/touch",
            json!({"resource": "contacts", "action": "updated"}),
        )
        .await;
    }
    wait_deliveries(&t, &account, "BAD_SIGNATURE", 3).await;
    let report = watch.tick(&t, 30).await;
    assert_eq!(
        kinds(&report.opened, &account),
        ["SIGNATURE_FAILURES"],
        "{report:?}"
    );

    // A Graph subscription whose renewals and re-creation keep failing lapses.
    control(
        &t,
        reqwest::Method::PUT,
        "webhooks/msgraph",
        json!({"minLifetimeSeconds": 1}),
    )
    .await;
    let graph = connect_with(&t, "msgraph", json!({"webhookLifetimeSeconds": 4})).await;
    wait_subscription(&t, &graph, 10, "never ACTIVE", |s| s["state"] == "ACTIVE").await;
    control(
        &t,
        reqwest::Method::POST,
        "webhooks/msgraph/faults",
        json!({"renewalFails": true, "validationFails": true}),
    )
    .await;
    wait_subscription(&t, &graph, 40, "never LAPSED", |s| s["state"] == "LAPSED").await;
    let report = watch.tick(&t, 30).await;
    assert_eq!(
        kinds(&report.opened, &graph),
        ["WEBHOOK_SUBSCRIPTION_LAPSED"],
        "{report:?}"
    );
    let d = diagnose(&t, &graph).await;
    assert_eq!(d["kind"], "WEBHOOK_SUBSCRIPTION_LAPSED", "{d}");
}

#[tokio::test]
async fn a_replica_that_takes_over_the_watch_keeps_the_baselines() {
    let t = TestGateway::start().await;
    let mut first = Watch {
        watcher: Watcher::new(Duration::from_secs(3)),
        now: Utc::now(),
    };
    for _ in 0..2 {
        assert!(read(&t, &t.account_id, 10).await["errors"].is_null());
    }
    first.tick(&t, 0).await;
    // Another watcher cannot tick while the first holds the lease.
    let mut second = Watcher::new(Duration::from_secs(120));
    let report = second.tick(&t.gateway.services, first.now).await.unwrap();
    assert!(!report.watched);
    // The first dies; the lease runs out; the second takes over with the saved baselines:
    // three empty listings are enough, no new baseline is needed.
    let later = first.now + chrono::Duration::minutes(3);
    let empty = json!({"results": []});
    for _ in 0..3 {
        fault(&t, json!({"provider": "hubspot", "status": 200, "times": 1, "pathContains": "/objects/contacts", "body": empty})).await;
        let _ = read(&t, &t.account_id, 10).await;
    }
    t.gateway.services.monitor.flush().await;
    drop(first);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let report = loop {
        let report = second.tick(&t.gateway.services, later).await.unwrap();
        if report.watched {
            break report;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the lease never ran out"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        kinds(&report.opened, &t.account_id),
        ["EMPTY_SYNC"],
        "{report:?}"
    );
}

#[tokio::test]
async fn webhooks_that_stop_against_the_accounts_rhythm_open_webhooks_silent() {
    use crate::webhooks::{connect_with, control, wait_subscription};
    let t = TestGateway::start().await;
    let mut watch = Watch::new();
    let account = connect_with(&t, "pipedrive", json!({})).await;
    wait_subscription(&t, &account, 10, "never ACTIVE", |s| s["state"] == "ACTIVE").await;
    watch.tick(&t, 0).await;

    // The rhythm: ten changes a minute, delivered.
    let mut delivered = 0;
    for _ in 0..2 {
        for _ in 0..10 {
            control(
                &t,
                reqwest::Method::POST,
                "webhooks/pipedrive/touch",
                json!({"resource": "contacts", "action": "updated"}),
            )
            .await;
        }
        delivered += 10;
        wait_deliveries(&t, &account, "ACCEPTED", delivered).await;
        let report = watch.tick(&t, 60).await;
        assert!(report.opened.is_empty(), "{report:?}");
    }
    // Ten quiet minutes without changes are a quiet hour, not silence.
    assert!(watch.tick(&t, 10 * 60).await.opened.is_empty());
    // Changes the vendor did not deliver (its deliveries are lost), found by polling:
    // silence, against deliveries every 6 s.
    control(
        &t,
        reqwest::Method::POST,
        "webhooks/pipedrive/faults",
        json!({"dropNext": 3}),
    )
    .await;
    let touched = control(
        &t,
        reqwest::Method::POST,
        "webhooks/pipedrive/touch",
        json!({"resource": "contacts", "action": "updated"}),
    )
    .await;
    let listed = read(&t, &account, 10).await;
    let others: Vec<String> = listed["data"]["contacts"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["remoteId"].as_str().unwrap().to_owned())
        .filter(|id| *id != touched["id"].to_string().trim_matches('"'))
        .take(2)
        .collect();
    for id in &others {
        control(
            &t,
            reqwest::Method::POST,
            "webhooks/pipedrive/touch",
            json!({"resource": "contacts", "id": id, "action": "updated"}),
        )
        .await;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let sent = control(&t, reqwest::Method::GET, "webhooks/pipedrive", Value::Null).await;
        if sent["sent"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["dropped"] == true)
            .count()
            == 3
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the vendor never dropped them: {sent}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let found = tessera::webhooks::reconcile::reconcile_account(
        &t.gateway.services,
        &account,
        chrono::Duration::zero(),
    )
    .await
    .unwrap();
    assert!(found >= 1, "reconciliation finds the lost changes");
    let events = crate::webhooks::wait_events(&t, &t.env_key, &account, delivered + found).await;
    assert!(events.iter().any(|e| e["source"] == "POLL"), "{events:?}");
    let report = watch.tick(&t, 60).await;
    assert_eq!(
        kinds(&report.opened, &account),
        ["WEBHOOKS_SILENT"],
        "{report:?}"
    );
    let evidence: Value = serde_json::from_str(&report.opened[0].evidence).unwrap();
    assert_eq!(evidence["usualGapSeconds"], 6.0, "{evidence}");
    assert_eq!(
        report.opened[0].probable_cause,
        "Subscription expired or endpoint unreachable"
    );

    // A delivery again: resolved.
    control(
        &t,
        reqwest::Method::POST,
        "webhooks/pipedrive/touch",
        json!({"resource": "contacts", "action": "updated"}),
    )
    .await;
    wait_deliveries(&t, &account, "ACCEPTED", delivered + 1).await;
    let report = watch.tick(&t, 60).await;
    assert_eq!(
        kinds(&report.resolved, &account),
        ["WEBHOOKS_SILENT"],
        "{report:?}"
    );
}

/// A gateway whose every listing is sampled for its shape, and a baseline learned from a
/// few pages of contacts as the gateway asks for them.
async fn with_shape_baseline() -> (TestGateway, Watch) {
    let t = TestGateway::start().await;
    t.gateway.services.monitor.sample_shapes_every(1);
    let mut watch = Watch::new();
    for _ in 0..3 {
        assert!(read(&t, &t.account_id, 1000).await["errors"].is_null());
    }
    assert!(watch.tick(&t, 0).await.opened.is_empty());
    (t, watch)
}

/// Reconciliation polls with `updatedSince`, which HubSpot serves from its search endpoint
/// in an envelope of its own (`total`, no `paging` on a last page). Those answers are not
/// the list endpoint's shape and must not page anyone as drift.
#[tokio::test]
async fn a_filtered_listing_from_the_search_endpoint_is_not_schema_drift() {
    let (t, mut watch) = with_shape_baseline().await;
    let since = (Utc::now() - chrono::Duration::days(3650)).to_rfc3339();
    for since in [since, Utc::now().to_rfc3339()] {
        let r = t
            .gql(
                Some(&t.env_key),
                "query($a: ID!, $s: DateTime) { contacts(accountId: $a, first: 50, filter: {updatedSince: $s}) { edges { node { id } } } }",
                json!({"a": t.account_id, "s": since}),
            )
            .await;
        assert!(r.body["errors"].is_null(), "{}", r.body);
    }
    let stats = t.sandbox_stats().await;
    assert_eq!(
        stats["byRoute"]["POST /hubspot/crm/v3/objects/contacts/search"], 2,
        "the filtered listings went to the search endpoint: {stats}"
    );
    let report = watch.tick(&t, 60).await;
    assert!(report.opened.is_empty(), "{report:?}");
}

#[tokio::test]
async fn a_renamed_field_opens_schema_drift_with_both_payloads_redacted() {
    let (t, mut watch) = with_shape_baseline().await;

    // The vendor renames `email` in every record, silently (same status, same envelope).
    let properties = "firstname,lastname,email,phone,jobtitle,associatedcompanyid,customer_tier,hubspot_owner_id,address,city,state,zip,country,notes_last_updated";
    let mut page = t
        .http
        .get(format!(
            "{}/hubspot/crm/v3/objects/contacts?limit=100&archived=false&properties={properties}",
            t.sandbox.base_url()
        ))
        .bearer_auth(tessera_sandbox::HUBSPOT_DEMO_TOKEN)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let an_email = page["results"][0]["properties"]["email"]
        .as_str()
        .unwrap()
        .to_owned();
    for r in page["results"].as_array_mut().unwrap() {
        let p = r["properties"].as_object_mut().unwrap();
        let v = p.remove("email").unwrap();
        p.insert("email_address".into(), v);
    }
    page.as_object_mut().unwrap().remove("paging");
    fault(&t, json!({"provider": "hubspot", "status": 200, "times": 1, "pathContains": "/objects/contacts", "body": page})).await;
    let r = read(&t, &t.account_id, 10).await;
    assert!(r["errors"].is_null(), "a drifted page still answers: {r}");
    let report = watch.tick(&t, 60).await;
    assert_eq!(
        kinds(&report.opened, &t.account_id),
        ["SCHEMA_DRIFT"],
        "{report:?}"
    );
    let evidence = &report.opened[0].evidence;
    assert!(evidence.contains("properties.email"), "{evidence}");
    assert!(
        evidence.contains("fieldVanished") && evidence.contains("fieldAppeared"),
        "{evidence}"
    );
    assert!(
        !evidence.contains(&an_email),
        "payloads are redacted to their types"
    );
    let v: Value = serde_json::from_str(evidence).unwrap();
    let drift = &v["resources"][0];
    assert_eq!(
        drift["lastGood"]["results"][0]["properties"]["email"], "email",
        "{drift}"
    );
    assert_eq!(
        drift["firstBad"]["results"][0]["properties"]["email_address"], "email",
        "{drift}"
    );
    // The unified field that now reads nothing is named, not left silently null.
    assert!(
        drift["unreadFields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["field"] == "emails" && f["reads"] == "properties.email"),
        "{drift}"
    );

    let d = diagnose(&t, &t.account_id).await;
    assert_eq!(d["kind"], "SCHEMA_DRIFT", "{d}");
    assert_eq!(
        d["escalate"], true,
        "a confirmed schema change goes to engineering: {d}"
    );
    assert_eq!(step(&d, "payload")["ok"], false);
    assert!(
        d["evidence"]["payloads"][0]["lastGood"].is_object(),
        "side by side: {d}"
    );
    assert!(
        d["evidence"]["payloads"][0]["firstBad"].is_object(),
        "side by side: {d}"
    );

    // The vendor's shape is back: resolved.
    assert!(read(&t, &t.account_id, 10).await["errors"].is_null());
    assert_eq!(
        kinds(&watch.tick(&t, 60).await.resolved, &t.account_id),
        ["SCHEMA_DRIFT"]
    );
}

#[tokio::test]
async fn a_watcher_tick_costs_the_same_statements_for_ten_accounts_or_two_hundred() {
    let t = TestGateway::start().await;
    let services = &t.gateway.services;
    let mut watch = Watch::new();
    watch.tick(&t, 0).await;
    let mut cost = Vec::new();
    for n in [10, 200] {
        crate::health::many_accounts(&t, n).await;
        // A first tick sees the new accounts (their states are written once).
        watch.tick(&t, 30).await;
        watch.now += chrono::Duration::seconds(30);
        services.monitor.flush().await;
        let (report, statements) =
            tessera::store::counting_statements(watch.watcher.tick(services, watch.now)).await;
        assert!(report.unwrap().watched);
        cost.push(statements);
    }
    assert_eq!(
        cost[0], cost[1],
        "statements per tick for 10 and 210 accounts: {cost:?}"
    );
    assert!(cost[1] <= 15, "a fixed handful per tick: {cost:?}");
}

/// Two replicas on one PostgreSQL database: one watches at a time, an outage of the vendor
/// opens one alert (the tallies, listings and leases as PostgreSQL runs them), recovery
/// resolves it, and the other replica's watcher does nothing meanwhile.
#[tokio::test]
async fn on_postgres_two_replicas_watch_once_and_an_outage_opens_and_resolves_one_alert() {
    let (url, t, b) = TestGateway::two_replicas().await;
    let mut watch = Watch::new();
    watch.tick(&t, 0).await;
    let mut other = Watcher::new(Duration::from_secs(120)).reading_deliveries_at_once();
    assert!(!other.tick(&b.services, watch.now).await.unwrap().watched);
    fault(&t, json!({"provider": "hubspot", "status": 503, "times": 4, "pathContains": "/objects/contacts"})).await;
    assert!(!read(&t, &t.account_id, 5).await["errors"].is_null());
    let report = watch.tick(&t, 30).await;
    assert_eq!(
        kinds(&report.opened, &t.account_id),
        ["UPSTREAM_DOWN"],
        "{report:?}"
    );
    assert!(!other.tick(&b.services, watch.now).await.unwrap().watched);
    assert!(read(&t, &t.account_id, 5).await["errors"].is_null());
    let report = watch.tick(&t, 6 * 60).await;
    assert_eq!(
        kinds(&report.resolved, &t.account_id),
        ["UPSTREAM_DOWN"],
        "{report:?}"
    );
    assert_eq!(alerts(&t, &t.env_key, "(state: RESOLVED)").await.len(), 1);
    drop((t, b));
    crate::store::drop_postgres_database(&url).await;
}

/// An app-level vendor (one URL for every account of the app) whose signing secret was
/// rotated: its deliveries fail verification before they name an account, so the log
/// records the account the unverified payload names (nothing is stored or processed), and
/// `SIGNATURE_FAILURES` opens on it.
#[tokio::test]
async fn a_rotated_app_secret_opens_signature_failures_on_the_account_it_stops() {
    use crate::webhooks::{hubspot_events, portal_id, post_v3, set_platform_app, some_contact_ids};
    let t = TestGateway::start().await;
    set_platform_app(&t, "hubspot", "the-secret-tessera-has").await;
    let mut watch = Watch::new();
    watch.tick(&t, 0).await;
    let portal = portal_id(&t).await;
    let ids = some_contact_ids(&t, 2).await;
    let now = crate::webhooks::now_ms();
    for i in 0..3 {
        let body = hubspot_events(&portal, &ids, 9000 + i * 10);
        let posted = post_v3(&t, &body, "the-rotated-secret-the-vendor-signs-with", now).await;
        assert_eq!(posted.status, 401);
    }
    let refused = crate::webhooks::outcomes(&t, &t.account_id).await;
    assert_eq!(
        refused, ["BAD_SIGNATURE"; 3],
        "logged on the account the payload names"
    );
    let report = watch.tick(&t, 30).await;
    assert_eq!(
        kinds(&report.opened, &t.account_id),
        ["SIGNATURE_FAILURES"],
        "{report:?}"
    );
    // Nothing of the refused deliveries was kept.
    assert!(t.gateway.services.store.pending_inbox().await.unwrap() == 0);
}
