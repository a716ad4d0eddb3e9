//! Numbers no vendor should send, in every rate-limit header and every field of a token
//! response: each is clamped to a documented maximum and answered, never a panic, never a
//! dropped connection, never a dead background task.

use serde_json::{Value, json};

use super::fault;
use super::upstream::LIST;
use crate::common::TestGateway;

/// Every header a vendor could send absurd seconds in: the answer is the vendor's 429 with
/// the wait held to 31 days, never a panic and a dropped connection (which is what
/// `Retry-After: 18446744073709551615` did).
#[tokio::test]
async fn absurd_numbers_in_vendor_headers_are_clamped_and_answered() {
    let max = tessera::bounds::MAX_WAIT_SECS;
    let cases = [
        json!({"retry-after": "18446744073709551615"}),
        json!({"retry-after": "1e308"}),
        json!({"retry-after": "Fri, 31 Dec 9999 23:59:59 GMT"}),
        json!({
            "x-hubspot-ratelimit-interval-milliseconds": "99999999999999999999999999",
            "x-hubspot-ratelimit-max": "18446744073709551615",
            "x-hubspot-ratelimit-remaining": "0",
        }),
    ];
    for headers in cases {
        let t = TestGateway::start().await;
        fault(
            &t,
            json!({"provider": "hubspot", "status": 429, "method": "GET",
                   "pathContains": "/objects/contacts", "headers": headers}),
        )
        .await;
        let r = t
            .gql(Some(&t.env_key), LIST, json!({"a": t.account_id}))
            .await;
        assert_eq!(r.status, 429, "{headers}: {}", r.body);
        assert_eq!(r.code(), Some("RATE_LIMITED"), "{headers}: {}", r.body);
        let reset: u64 = r.headers["ratelimit-reset"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(reset <= max, "{headers}: reset {reset}");
        // The account's budget now says "used up"; the next call fails fast and is still
        // answered, and the gateway is alive.
        let again = t
            .gql(Some(&t.env_key), LIST, json!({"a": t.account_id}))
            .await;
        assert_eq!(
            again.code(),
            Some("RATE_LIMITED"),
            "{headers}: {}",
            again.body
        );
        let health = t
            .http
            .get(format!("{}/healthz", t.gateway.url()))
            .send()
            .await
            .unwrap();
        assert!(health.status().is_success());
        let q = "query($a: ID!) { linkedAccount(id: $a) { rateLimit { window remaining reset } } }";
        let r = t.gql(Some(&t.env_key), q, json!({"a": t.account_id})).await;
        assert!(r.body["errors"].is_null(), "{headers}: {}", r.body);
    }
}

/// A token endpoint that answers absurd numbers in every lifetime field, one body per
/// refresh, with the sandbox's demo access token (valid at the sandbox's API).
async fn absurd_token_endpoint(bodies: Vec<Value>) -> u16 {
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let app = axum::Router::new().fallback(move || {
        let (next, bodies) = (next.clone(), bodies.clone());
        async move {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            axum::Json(bodies[i.min(bodies.len() - 1)].clone())
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

/// `expires_in: 1e15` once dropped the request's connection and killed the replica's
/// refresh scheduler. Every absurd lifetime a token endpoint can send (huge, negative,
/// fractional, text, beyond u64) is now an answer: the request gets its data, the account
/// stays ACTIVE, and the lifetime stored is held to 366 days.
#[tokio::test]
async fn absurd_numbers_in_every_token_field_are_clamped_and_the_account_works() {
    let token = tessera_sandbox::HUBSPOT_DEMO_TOKEN;
    let cases = [
        json!({"access_token": token, "refresh_token": "rt", "expires_in": 1e15}),
        json!({"access_token": token, "refresh_token": "rt", "expires_in": 18446744073709551615u64}),
        json!({"access_token": token, "refresh_token": "rt", "expires_in": 1.7e308}),
        json!({"access_token": token, "refresh_token": "rt", "expires_in": -5}),
        json!({"access_token": token, "refresh_token": "rt", "expires_in": "99999999999999999999999"}),
        json!({"access_token": token, "refresh_token": "rt", "expires_in": 0.5,
               "refresh_token_expires_in": 1e300, "x_refresh_token_expires_in": -1e300}),
    ];
    let port = absurd_token_endpoint(cases.to_vec()).await;
    let t = TestGateway::start_allowing(move |sandbox| {
        let own = format!("127.0.0.1:{port}");
        tessera::upstreams::AllowList::parse([sandbox, own.as_str()]).unwrap()
    })
    .await;
    t.set_app("hubspot").await;
    let base = t.sandbox.base_url();
    let year = chrono::Utc::now() + chrono::Duration::days(367);
    for case in &cases {
        let expired = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
        let r = t
            .gql(
                Some(&t.env_key),
                "mutation($c: JSON!, $s: JSON) { connectAccount(provider: \"hubspot\", credentials: $c, settings: $s) { id } }",
                json!({
                    "c": {"accessToken": "expired", "refreshToken": "rt", "expiresAt": expired},
                    "s": {"baseUrl": format!("{base}/hubspot"), "tokenUrl": format!("http://127.0.0.1:{port}/token")}
                }),
            )
            .await;
        assert!(r.body["errors"].is_null(), "{case}: {}", r.body);
        let account = r.body["data"]["connectAccount"]["id"].as_str().unwrap();
        let r = t.gql(Some(&t.env_key), LIST, json!({"a": account})).await;
        assert!(r.body["errors"].is_null(), "{case}: {}", r.body);
        let r = t
            .gql(
                Some(&t.env_key),
                "query($a: ID!) { linkedAccount(id: $a) { status expiresAt lastRefreshedAt } }",
                json!({"a": account}),
            )
            .await;
        let a = &r.body["data"]["linkedAccount"];
        assert_eq!(a["status"], "ACTIVE", "{case}: {a}");
        assert!(a["lastRefreshedAt"].is_string(), "{case}: {a}");
        if let Some(at) = a["expiresAt"].as_str() {
            let at = chrono::DateTime::parse_from_rfc3339(at).unwrap();
            assert!(at <= year, "{case}: expiresAt {at} beyond 366 days");
        }
    }
}
