//! Token endpoints under load and under revocation: a grant revoked at the vendor in the
//! middle of traffic, and a thousand concurrent requests on an expired single-use refresh
//! token.

use serde_json::{Value, json};

use crate::common::TestGateway;

const CONTACTS: &str =
    "query($a: ID!) { contacts(accountId: $a, first: 1) { edges { node { remoteId } } } }";

#[tokio::test]
async fn a_thousand_concurrent_requests_on_an_expired_single_use_token_cause_exactly_one_refresh() {
    let t = TestGateway::start().await;
    t.control(
        "oauth",
        json!({"provider": "hubspot", "rotateRefreshTokens": true, "tokenDelayMs": 200}),
    )
    .await;
    t.control(
        "ratelimit",
        json!({"provider": "hubspot", "max": 100000, "intervalMs": 10000}),
    )
    .await;
    let (account, _) = t.oauth_account(-60).await;
    let requests = (0..1000).map(|_| t.gql(Some(&t.env_key), CONTACTS, json!({"a": account})));
    let replies = futures_util::future::join_all(requests).await;
    for r in &replies {
        assert!(r.body["errors"].is_null(), "{}", r.body);
    }
    let stats = t.oauth_stats("hubspot").await;
    assert_eq!(
        stats["refresh_token"], 1,
        "exactly one refresh for 1,000 requests: {stats}"
    );
    let a = t.account(&account).await;
    assert_eq!(a["status"], "ACTIVE");
    assert!(a["lastRefreshedAt"].is_string());
    assert!(
        a["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "TOKEN_REFRESHED")
    );
    let metrics = t
        .http
        .get(format!("{}/metrics", t.gateway.url()))
        .bearer_auth(crate::common::ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "tessera_token_refreshes_total{provider=\"hubspot\",outcome=\"refreshed\"} 1"
        ),
        "{metrics}"
    );
}

/// The customer revokes the grant at the vendor while requests are in flight: every
/// request answers (data before the revocation, `NEEDS_REAUTH` after, nothing else), the
/// account is set to `NEEDS_REAUTH` with the vendor's reason and one event, and the dead
/// refresh token is sent to the vendor once, not once per queued request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_revoked_mid_traffic_parks_the_account_once_and_every_request_answers() {
    let t = TestGateway::start().await;
    t.control(
        "ratelimit",
        json!({"provider": "hubspot", "max": 1000000, "intervalMs": 10000}),
    )
    .await;
    let (account, grant) = t.oauth_account(3600).await;
    let before = t.sandbox_stats().await["requests"].as_u64().unwrap();
    let traffic: Vec<_> = (0..300)
        .map(|_| {
            let (http, url, key, account) =
                (t.http.clone(), t.url(), t.env_key.clone(), account.clone());
            tokio::spawn(async move {
                http.post(url)
                    .bearer_auth(key)
                    .json(&json!({"query": CONTACTS, "variables": {"a": account}}))
                    .send()
                    .await
                    .unwrap()
                    .json::<Value>()
                    .await
                    .unwrap()
            })
        })
        .collect();
    // Revoked once the vendor has answered some of them.
    crate::common::wait_for("the traffic to reach the vendor", || async {
        t.sandbox_stats().await["requests"].as_u64().unwrap() >= before + 20
    })
    .await;
    t.control(
        "oauth/revoke",
        json!({"provider": "hubspot", "refreshToken": grant["refresh_token"]}),
    )
    .await;
    let (mut served, mut refused) = (0, 0);
    for reply in traffic {
        let body = reply.await.unwrap();
        match body["errors"][0]["extensions"]["code"].as_str() {
            None => served += 1,
            Some("NEEDS_REAUTH") => refused += 1,
            Some(other) => panic!("a request answered {other}: {body}"),
        }
    }
    eprintln!("revocation mid-traffic: {served} served, {refused} refused");
    assert!(
        served >= 20 && refused >= 1,
        "{served} served, {refused} refused"
    );
    let a = t.account(&account).await;
    assert_eq!(a["status"], "NEEDS_REAUTH", "{a}");
    assert!(
        a["statusReason"].as_str().is_some_and(|r| !r.is_empty()),
        "{a}"
    );
    let events = a["events"].as_array().unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e["kind"] == "NEEDS_REAUTH")
            .count(),
        1,
        "one event for the account, not one per request: {a}"
    );
    let refreshes = t.oauth_stats("hubspot").await["refresh_token"]
        .as_u64()
        .unwrap();
    assert!(
        refreshes <= 1,
        "the dead refresh token was sent {refreshes} times"
    );
    // And later requests are refused without calling the vendor.
    let calls = t.sandbox_stats().await["requests"].as_u64().unwrap();
    let r = t
        .gql(Some(&t.env_key), CONTACTS, json!({"a": account}))
        .await;
    assert_eq!(r.code(), Some("NEEDS_REAUTH"), "{}", r.body);
    assert_eq!(t.sandbox_stats().await["requests"].as_u64().unwrap(), calls);
}
