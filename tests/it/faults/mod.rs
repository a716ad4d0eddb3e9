//! The fault suite: every way a vendor, the network, a token endpoint or the database can
//! fail under the gateway, each tried over real HTTP against the sandbox (or a listener of
//! the test's own), and what a caller and an operator see when it does.
//!
//! | scenario | module |
//! | --- | --- |
//! | 5xx bursts retried on reads only, writes sent once; 429 passed through, then fail-fast; partial data; the breaker; slow vendors; a closed port; call ceilings | [`upstream`] |
//! | connection resets and truncated JSON (reads retried, writes not, an HTML page is drift) | [`wire`] |
//! | an unresolvable host; a local TLS server with an expired and with a wrong-host certificate; a port that does not speak TLS | [`network`] |
//! | pagination that repeats a cursor or goes out of range | [`pagination`] |
//! | absurd numbers in every rate-limit header and every token-response field | [`absurd`] |
//! | a grant revoked mid-traffic; 1,000 concurrent requests on an expired single-use refresh token | [`tokens`] |
//! | three `tessera serve` replicas on one PostgreSQL, one killed by SIGKILL every few seconds during refresh-heavy traffic, PostgreSQL restarted once | [`chaos`] |

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::TestGateway;

mod absurd;
mod chaos;
mod network;
mod pagination;
mod tokens;
mod upstream;
mod wire;

pub(crate) async fn fault(t: &TestGateway, spec: Value) {
    let r = t
        .http
        .post(format!("{}/_control/faults", t.sandbox.base_url()))
        .json(&spec)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
}

pub(crate) async fn calls(t: &TestGateway) -> u64 {
    t.sandbox_stats().await["requests"].as_u64().unwrap()
}

pub(crate) async fn request_log(t: &TestGateway, account: &str) -> Vec<Value> {
    // The log is written behind the request: wait for it briefly.
    let q = "query($a: ID!) { linkedAccount(id: $a) { requestLog(last: 20) { method path status errorClass retry rateLimitRemaining } } }";
    for _ in 0..50 {
        let r = t.gql(Some(&t.env_key), q, json!({"a": account})).await;
        // Left out: the call made when the account was linked, which learns the key its
        // webhooks are routed by; these tests are about the calls they make themselves.
        let log: Vec<Value> = r.body["data"]["linkedAccount"]["requestLog"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| {
                !e["path"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("/account-info/")
            })
            .collect();
        if !log.is_empty() {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the request log stayed empty");
}

pub(crate) async fn metrics(t: &TestGateway) -> String {
    t.http
        .get(format!("{}/metrics", t.gateway.url()))
        .bearer_auth(crate::common::ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}
