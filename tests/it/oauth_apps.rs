//! OAuth apps and browsers: the platform's default app goes only where the admin allows it
//! (the provider file's own endpoints, hosts the admin names; client credentials only when
//! allowed), and a started authorization completes only in the browser that opened its link.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tessera::upstreams::AllowList;

use crate::common::{ADMIN_KEY, TestGateway};

const PLATFORM_SECRET: &str = "platform-secret-7f3a";
const ENV_SECRET: &str = "environment-secret-91c2";
const CONTACTS: &str =
    "query($a: ID!) { contacts(accountId: $a, first: 1) { edges { node { remoteId } } } }";
const CONNECT: &str = "mutation($c: JSON!, $s: JSON) { connectAccount(provider: \"hubspot\", credentials: $c, settings: $s) { id } }";
const START: &str = "mutation($r: String!, $s: JSON) { startOAuth(provider: \"hubspot\", redirectUri: $r, settings: $s) { authorizationUrl state } }";
const SET_PLATFORM: &str = "mutation($i: String!, $s: String!, $h: [String!], $cc: Boolean) { setOAuthApp(provider: \"hubspot\", clientId: $i, clientSecret: $s, allowedHosts: $h, allowClientCredentials: $cc) { clientId allowedHosts allowClientCredentials } }";

/// A browser: no redirects followed, cookies carried by hand as a browser would.
pub(crate) struct Browser {
    http: reqwest::Client,
}

impl Browser {
    pub(crate) fn new() -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    pub(crate) async fn get(&self, url: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut r = self.http.get(url);
        if let Some(c) = cookie {
            r = r.header("cookie", c);
        }
        r.send().await.unwrap()
    }

    /// Opens an authorization link (`/oauth/start`): the vendor's consent URL it redirects
    /// to, and the cookie it set (`name=value`).
    pub(crate) async fn open(&self, link: &str) -> (String, String) {
        let r = self.get(link, None).await;
        assert_eq!(r.status(), 302, "{link}: {}", r.text().await.unwrap());
        let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
        for attribute in ["HttpOnly", "SameSite=Lax", "Path=/oauth", "Max-Age="] {
            assert!(set_cookie.contains(attribute), "{attribute}: {set_cookie}");
        }
        let cookie = set_cookie.split(';').next().unwrap().to_string();
        let vendor = r.headers()["location"].to_str().unwrap().to_string();
        (vendor, cookie)
    }

    /// The sandbox vendor approves at once: where it sends the browser back.
    pub(crate) async fn approve(&self, vendor: &str, callback: &str) -> String {
        let consent = self.get(vendor, None).await;
        assert_eq!(consent.status(), 302, "{vendor}");
        let location = consent.headers()["location"].to_str().unwrap().to_string();
        assert!(location.starts_with(callback), "{location}");
        location
    }
}

/// A token endpoint of the tenant's choosing on loopback: records every request (headers
/// and form) and answers with the sandbox's demo token, so an account refreshed there works.
struct TokenListener {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl TokenListener {
    async fn start() -> TokenListener {
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = seen.clone();
        let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap, body: String| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push(format!("{headers:?} {body}"));
                axum::Json(json!({"access_token": tessera_sandbox::HUBSPOT_DEMO_TOKEN, "refresh_token": "rt-next", "expires_in": 3600}))
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        TokenListener { port, seen }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

async fn gateway_with(listener: &TokenListener) -> TestGateway {
    let port = listener.port;
    TestGateway::start_allowing(move |sandbox| {
        let listener = format!("127.0.0.1:{port}");
        AllowList::parse([sandbox, listener.as_str()]).unwrap()
    })
    .await
}

fn message(r: &crate::common::Reply) -> String {
    r.body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Writes an account straight into the store, as one linked before the platform app was
/// held to its endpoints would be.
async fn linked_before(t: &TestGateway, settings: Value) -> String {
    let services = &t.gateway.services;
    let env = services
        .store
        .list_linked_accounts(None)
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.id == t.account_id)
        .unwrap()
        .environment_id;
    let creds = tessera::credentials::Credentials::from_input(
        &json!({"accessToken": "old", "refreshToken": "rt-1", "expiresAt": "2020-01-01T00:00:00Z"}),
    )
    .unwrap();
    let id = uuid::Uuid::new_v4().to_string();
    services
        .store
        .insert_linked_account(tessera::store::NewLinkedAccount {
            credentials: services.vault.seal(&id, &creds),
            id: id.clone(),
            environment_id: env,
            provider: "hubspot".into(),
            status: "ACTIVE".into(),
            settings,
            expires_at: creds.expires_at,
        })
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn a_token_url_the_tenant_chose_never_receives_the_platform_secret() {
    let listener = TokenListener::start().await;
    let t = gateway_with(&listener).await;
    let set = t
        .gql(
            Some(ADMIN_KEY),
            SET_PLATFORM,
            json!({"i": "platform-client", "s": PLATFORM_SECRET}),
        )
        .await;
    assert!(set.body["errors"].is_null(), "{}", set.body);
    let base = t.sandbox.base_url();
    let settings = json!({"baseUrl": format!("{base}/hubspot"), "tokenUrl": listener.url()});
    let tokens =
        json!({"accessToken": "a", "refreshToken": "r", "expiresAt": "2020-01-01T00:00:00Z"});

    // Connect: refused, saying what and why.
    let r = t
        .gql(
            Some(&t.env_key),
            CONNECT,
            json!({"c": tokens, "s": settings}),
        )
        .await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
    let m = message(&r);
    assert!(
        m.contains("token endpoint") && m.contains(&format!("127.0.0.1:{}", listener.port)),
        "{m}"
    );
    assert!(
        m.contains("platform's OAuth app") && m.contains("setOAuthApp"),
        "{m}"
    );
    assert!(!m.contains(PLATFORM_SECRET), "{m}");
    // startOAuth: neither the token endpoint nor the consent page may be the tenant's.
    let callback = format!("{}/oauth/callback", t.gateway.url());
    for s in [
        json!({"tokenUrl": listener.url()}),
        json!({"authorizeUrl": listener.url()}),
    ] {
        let r = t
            .gql(Some(&t.env_key), START, json!({"r": callback, "s": s}))
            .await;
        assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{s}: {}", r.body);
        assert!(message(&r).contains("platform's OAuth app"), "{}", r.body);
    }

    // An account linked before the rule: its refresh does not send the secret either.
    let old = linked_before(&t, settings.clone()).await;
    let r = t.gql(Some(&t.env_key), CONTACTS, json!({"a": old})).await;
    assert!(!r.body["errors"].is_null(), "{}", r.body);
    assert!(message(&r).contains("platform's OAuth app"), "{}", r.body);
    t.gateway.services.tokens.refresh_due().await;
    let a = t
        .gql(Some(&t.env_key), "query($a: ID!) { linkedAccount(id: $a) { status statusReason events { kind message } } }", json!({"a": old}))
        .await;
    let account = &a.body["data"]["linkedAccount"];
    assert!(
        account["statusReason"]
            .as_str()
            .unwrap_or_default()
            .contains("platform's OAuth app"),
        "{account}"
    );
    assert!(
        account["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "TOKEN_REFRESH_FAILED"
                && e["message"]
                    .as_str()
                    .unwrap()
                    .contains("platform's OAuth app")),
        "{account}"
    );
    assert_eq!(
        listener.requests(),
        Vec::<String>::new(),
        "nothing reached the tenant's token endpoint"
    );

    // With the environment's own app, the same endpoint is the environment's business.
    let own = t
        .gql(Some(&t.env_key), "mutation($s: String!) { setOAuthApp(provider: \"hubspot\", clientId: \"env-client\", clientSecret: $s) { clientId } }", json!({"s": ENV_SECRET}))
        .await;
    assert!(own.body["errors"].is_null(), "{}", own.body);
    let r = t
        .gql(
            Some(&t.env_key),
            CONNECT,
            json!({"c": tokens, "s": settings}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    let new = r.body["data"]["connectAccount"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for account in [&new, &old] {
        let r = t
            .gql(Some(&t.env_key), CONTACTS, json!({"a": account}))
            .await;
        assert!(
            r.body["errors"].is_null(),
            "refreshed with the environment's app: {}",
            r.body
        );
    }
    let seen = listener.requests();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen.iter()
            .all(|r| r.contains(ENV_SECRET) && !r.contains(PLATFORM_SECRET)),
        "{seen:?}"
    );
}

#[tokio::test]
async fn the_admin_names_the_hosts_and_the_grants_of_the_platform_app() {
    let t = TestGateway::start().await;
    let base = t.sandbox.base_url();
    let sandbox_host = base.trim_start_matches("http://").to_string();
    let set = |hosts: Value, cc: Value| {
        t.gql(
            Some(ADMIN_KEY),
            SET_PLATFORM,
            json!({"i": tessera_sandbox::HUBSPOT_CLIENT_ID, "s": tessera_sandbox::HUBSPOT_CLIENT_SECRET, "h": hosts, "cc": cc}),
        )
    };
    let r = set(json!([sandbox_host]), json!(null)).await;
    assert_eq!(
        r.body["data"]["setOAuthApp"]["allowClientCredentials"], false,
        "{}",
        r.body
    );
    let grant = json!({"grant": "client_credentials"});
    let settings = json!({"baseUrl": format!("{base}/hubspot"), "tokenUrl": format!("{base}/hubspot/oauth/v1/token")});
    // Client credentials with the platform app would hand the tenant the platform's
    // identity: refused before the vendor is asked.
    let r = t
        .gql(
            Some(&t.env_key),
            CONNECT,
            json!({"c": grant, "s": settings}),
        )
        .await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
    assert!(message(&r).contains("client-credentials"), "{}", r.body);
    let stats = t.sandbox_stats().await;
    assert_eq!(
        stats["oauth"]["hubspot"]["client_credentials"], 0,
        "{stats}"
    );
    // The host the admin named takes refreshes with the platform app.
    let tokens =
        json!({"accessToken": "a", "refreshToken": "r", "expiresAt": "2020-01-01T00:00:00Z"});
    let r = t
        .gql(
            Some(&t.env_key),
            CONNECT,
            json!({"c": tokens, "s": settings}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "an allowed host: {}", r.body);
    // Once the admin allows the grant, it works.
    let r = set(json!([sandbox_host]), json!(true)).await;
    assert_eq!(
        r.body["data"]["setOAuthApp"]["allowClientCredentials"], true,
        "{}",
        r.body
    );
    let r = t
        .gql(
            Some(&t.env_key),
            CONNECT,
            json!({"c": grant, "s": settings}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    assert_eq!(
        t.sandbox_stats().await["oauth"]["hubspot"]["client_credentials"],
        1
    );
    // The switches are the admin's: an environment cannot give them to its own app.
    let r = t
        .gql(Some(&t.env_key), "mutation { setOAuthApp(provider: \"hubspot\", clientId: \"c\", clientSecret: \"s\", allowedHosts: [\"x.example.com\"]) { clientId } }", json!({}))
        .await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
    let r = set(json!(["https://x.example.com/path"]), json!(null)).await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
    // A code for the platform app goes only to this gateway's own callback.
    let r = t
        .gql(Some(&t.env_key), START, json!({"r": "https://elsewhere.example/oauth/callback", "s": {"authorizeUrl": format!("{base}/hubspot/oauth/authorize"), "tokenUrl": format!("{base}/hubspot/oauth/v1/token")}}))
        .await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
    assert!(message(&r).contains("/oauth/callback"), "{}", r.body);
}

async fn account_count(t: &TestGateway) -> usize {
    let r = t
        .gql(Some(&t.env_key), "{ linkedAccounts { id } }", json!({}))
        .await;
    r.body["data"]["linkedAccounts"].as_array().unwrap().len()
}

#[tokio::test]
async fn a_callback_without_the_starting_browsers_cookie_links_nothing() {
    let t = TestGateway::start().await;
    t.set_app("hubspot").await;
    let base = t.sandbox.base_url();
    let callback = format!("{}/oauth/callback", t.gateway.url());
    let settings = json!({"baseUrl": format!("{base}/hubspot"), "authorizeUrl": format!("{base}/hubspot/oauth/authorize"), "tokenUrl": format!("{base}/hubspot/oauth/v1/token")});
    let r = t
        .gql(
            Some(&t.env_key),
            START,
            json!({"r": callback, "s": settings}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    let link = r.body["data"]["startOAuth"]["authorizationUrl"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        link.starts_with(&format!("{}/oauth/start?", t.gateway.url())),
        "{link}"
    );
    let before = account_count(&t).await;

    let rightful = Browser::new();
    let (vendor, cookie) = rightful.open(&link).await;
    // The link works in one browser only.
    let other = Browser::new();
    let again = other.get(&link, None).await;
    assert_eq!(again.status(), 403);
    assert!(again.headers().get("location").is_none());
    // The rightful browser may come back to it.
    let back = rightful.get(&link, Some(&cookie)).await;
    assert_eq!(back.status(), 302);

    // The consent URL handed to someone else: their browser comes back without the
    // cookie (or with a made-up one) and is refused; nothing is linked or consumed.
    let forwarded = other.approve(&vendor, &callback).await;
    let forged_cookie = format!("{}=forged", cookie.split('=').next().unwrap());
    for presented in [None, Some(forged_cookie.as_str())] {
        let r = other.get(&forwarded, presented).await;
        assert_eq!(r.status(), 403, "{presented:?}");
        let clear = r.headers()["set-cookie"].to_str().unwrap().to_string();
        assert!(clear.contains("Max-Age=0"), "{clear}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "FORBIDDEN", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("not started in this browser"),
            "{body}"
        );
    }
    let state = r.body["data"]["startOAuth"]["state"].as_str().unwrap();
    let declined = other
        .get(
            &format!("{callback}?error=access_denied&state={state}"),
            None,
        )
        .await;
    assert_eq!(declined.status(), 400);
    assert_eq!(account_count(&t).await, before, "nothing linked");

    // The browser that started completes, with the code the other one got (it was never
    // exchanged) or its own.
    let done = rightful.get(&forwarded, Some(&cookie)).await;
    assert_eq!(done.status(), 200);
    assert!(
        done.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let done: Value = done.json().await.unwrap();
    let account = done["accountId"].as_str().unwrap();
    let r = t
        .gql(Some(&t.env_key), CONTACTS, json!({"a": account}))
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    assert_eq!(account_count(&t).await, before + 1);
    // Single use: neither browser gets anything from it again.
    let replay = rightful.get(&forwarded, Some(&cookie)).await;
    assert_eq!(replay.status(), 400);
    assert_eq!(rightful.get(&link, Some(&cookie)).await.status(), 400);
}
