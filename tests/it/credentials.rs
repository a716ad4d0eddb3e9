//! The credential lifecycle over real HTTP: the OAuth code flow, single-flight refresh with
//! single-use refresh tokens, proactive refresh with no traffic, revocation, transient
//! token-endpoint failures, and secrets kept out of the database file.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::TestGateway;
use crate::oauth_apps::Browser;

const CONTACTS: &str =
    "query($a: ID!) { contacts(accountId: $a, first: 1) { edges { node { remoteId } } } }";

impl TestGateway {
    pub(crate) async fn control(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}/_control/{path}", self.sandbox.base_url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap_or(Value::Null)
    }

    pub(crate) async fn oauth_stats(&self, provider: &str) -> Value {
        self.sandbox_stats().await["oauth"][provider].clone()
    }

    /// Sets the environment's OAuth app to the sandbox's demo client.
    pub(crate) async fn set_app(&self, provider: &str) {
        let (id, secret) = (
            format!("sandbox-{provider}-client"),
            format!("sandbox-{provider}-secret"),
        );
        let r = self
            .gql(Some(&self.env_key), "mutation($p: String!, $i: String!, $s: String!) { setOAuthApp(provider: $p, clientId: $i, clientSecret: $s) { clientId } }", json!({"p": provider, "i": id, "s": secret}))
            .await;
        assert!(r.body["errors"].is_null(), "{}", r.body);
    }

    /// A HubSpot account whose token set comes from the sandbox's token endpoint, its
    /// access token expiring at `expires_in_secs` (negative: already expired).
    pub(crate) async fn oauth_account(&self, expires_in_secs: i64) -> (String, Value) {
        self.set_app("hubspot").await;
        let grant = self
            .control(
                "oauth/grant",
                json!({"provider": "hubspot", "accessTokenLifetimeSeconds": expires_in_secs}),
            )
            .await;
        let expires_at =
            (chrono::Utc::now() + chrono::Duration::seconds(expires_in_secs)).to_rfc3339();
        let base = self.sandbox.base_url();
        let r = self
            .gql(
                Some(&self.env_key),
                "mutation($c: JSON!, $s: JSON) { connectAccount(provider: \"hubspot\", credentials: $c, settings: $s) { id } }",
                json!({
                    "c": {"accessToken": grant["access_token"], "refreshToken": grant["refresh_token"], "expiresAt": expires_at},
                    "s": {"baseUrl": format!("{base}/hubspot"), "tokenUrl": format!("{base}/hubspot/oauth/v1/token"), "revokeUrl": format!("{base}/hubspot/oauth/v1/refresh-tokens/")}
                }),
            )
            .await;
        assert!(r.body["errors"].is_null(), "{}", r.body);
        (
            r.body["data"]["connectAccount"]["id"]
                .as_str()
                .unwrap()
                .to_string(),
            grant,
        )
    }

    pub(crate) async fn account(&self, id: &str) -> Value {
        let r = self
            .gql(Some(&self.env_key), "query($a: ID!) { linkedAccount(id: $a) { status statusReason expiresAt lastRefreshedAt events { kind message } } }", json!({"a": id}))
            .await;
        r.body["data"]["linkedAccount"].clone()
    }
}

#[tokio::test]
async fn a_token_about_to_expire_is_refreshed_with_no_requests_at_all() {
    let t = TestGateway::start_refreshing(Duration::from_millis(200)).await;
    // The default buffer is five minutes: due two seconds from now.
    let (account, _) = t.oauth_account(302).await;
    let before = t.sandbox_stats().await["requests"].as_u64().unwrap();
    let mut refreshed = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if t.oauth_stats("hubspot").await["refresh_token"] == 1 {
            refreshed = true;
            break;
        }
    }
    assert!(refreshed, "the scheduler did not refresh the token");
    assert_eq!(
        t.sandbox_stats().await["requests"].as_u64().unwrap(),
        before,
        "no API traffic was needed"
    );
    let a = t.account(&account).await;
    let expires: chrono::DateTime<chrono::Utc> = a["expiresAt"].as_str().unwrap().parse().unwrap();
    assert!(
        expires > chrono::Utc::now() + chrono::Duration::minutes(20),
        "the new token lives 30 minutes: {a}"
    );
    assert_eq!(
        t.oauth_stats("hubspot").await["refresh_token"],
        1,
        "refreshed once, not on every tick"
    );
}

#[tokio::test]
async fn a_revoked_refresh_token_parks_the_account_in_needs_reauth_after_one_attempt() {
    let t = TestGateway::start().await;
    let (account, grant) = t.oauth_account(-60).await;
    t.control(
        "oauth/revoke",
        json!({"provider": "hubspot", "refreshToken": grant["refresh_token"]}),
    )
    .await;
    for _ in 0..3 {
        let r = t
            .gql(Some(&t.env_key), CONTACTS, json!({"a": account}))
            .await;
        assert_eq!(r.code(), Some("NEEDS_REAUTH"), "{}", r.body);
        assert!(
            !r.body
                .to_string()
                .contains(grant["refresh_token"].as_str().unwrap()),
            "the refresh token never appears in errors"
        );
    }
    assert_eq!(
        t.oauth_stats("hubspot").await["refresh_token"],
        1,
        "a dead refresh token is sent once, never again"
    );
    let a = t.account(&account).await;
    assert_eq!(a["status"], "NEEDS_REAUTH");
    assert!(
        a["statusReason"].as_str().unwrap().contains("reconnect"),
        "{a}"
    );
    assert!(
        a["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "NEEDS_REAUTH"),
        "{a}"
    );
}

#[tokio::test]
async fn a_failing_token_endpoint_keeps_serving_with_the_still_valid_token() {
    let t = TestGateway::start().await;
    // Inside the refresh buffer but not expired: due, and still usable.
    let (account, _) = t.oauth_account(120).await;
    t.control(
        "oauth",
        json!({"provider": "hubspot", "tokenFailures": {"status": 503, "times": 10}}),
    )
    .await;
    let r = t
        .gql(Some(&t.env_key), CONTACTS, json!({"a": account}))
        .await;
    assert!(
        r.body["errors"].is_null(),
        "the old access token still works: {}",
        r.body
    );
    let stats = t.oauth_stats("hubspot").await;
    assert_eq!(stats["refresh_token"], 3, "bounded retries: {stats}");
    let a = t.account(&account).await;
    assert_eq!(a["status"], "ACTIVE");
    assert!(
        a["statusReason"]
            .as_str()
            .unwrap()
            .contains("refresh failed"),
        "{a}"
    );
}

#[tokio::test]
async fn the_authorization_code_flow_creates_a_working_account_and_refuses_replays() {
    let t = TestGateway::start().await;
    for (provider, base_settings) in [
        (
            "hubspot",
            json!({"baseUrl": "{base}/hubspot", "authorizeUrl": "{base}/hubspot/oauth/authorize", "tokenUrl": "{base}/hubspot/oauth/v1/token"}),
        ),
        (
            "salesforce",
            json!({"authorizeUrl": "{base}/salesforce/services/oauth2/authorize", "tokenUrl": "{base}/salesforce/services/oauth2/token"}),
        ),
    ] {
        t.set_app(provider).await;
        let settings: Value = serde_json::from_str(
            &base_settings
                .to_string()
                .replace("{base}", &t.sandbox.base_url()),
        )
        .unwrap();
        let callback = format!("{}/oauth/callback", t.gateway.url());
        let r = t
            .gql(Some(&t.env_key), "mutation($p: String!, $r: String!, $s: JSON) { startOAuth(provider: $p, redirectUri: $r, settings: $s) { authorizationUrl state } }", json!({"p": provider, "r": callback, "s": settings}))
            .await;
        assert!(r.body["errors"].is_null(), "{}", r.body);
        let url = r.body["data"]["startOAuth"]["authorizationUrl"]
            .as_str()
            .unwrap()
            .to_string();
        // The browser opens the link: the gateway binds the flow to it (a cookie) and
        // sends it to the vendor, who approves and redirects it to Tessera's callback.
        let browser = Browser::new();
        let (vendor, cookie) = browser.open(&url).await;
        if provider == "salesforce" {
            assert!(
                vendor.contains("code_challenge_method=S256"),
                "PKCE for Salesforce: {vendor}"
            );
        }
        let location = browser.approve(&vendor, &callback).await;
        let done = browser.get(&location, Some(&cookie)).await;
        assert_eq!(done.status(), 200, "{provider}");
        let done: Value = done.json().await.unwrap();
        let account = done["accountId"].as_str().unwrap().to_string();
        let r = t
            .gql(Some(&t.env_key), CONTACTS, json!({"a": account}))
            .await;
        assert!(
            r.body["errors"].is_null(),
            "{provider}: the new account works: {}",
            r.body
        );
        if provider == "salesforce" {
            let a = t
                .gql(
                    Some(&t.env_key),
                    "query($a: ID!) { linkedAccount(id: $a) { settings } }",
                    json!({"a": account}),
                )
                .await;
            let instance = a.body["data"]["linkedAccount"]["settings"]["instanceUrl"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            assert_eq!(
                instance,
                format!("{}/salesforce", t.sandbox.base_url()),
                "instance_url from the token response is kept"
            );
        }
        // The same callback again, from the same browser: the state is spent.
        let replay = browser.get(&location, Some(&cookie)).await;
        assert_eq!(replay.status(), 400);
        assert_eq!(
            replay.json::<Value>().await.unwrap()["error"]["code"],
            "BAD_USER_INPUT"
        );
    }
    // A forged state.
    let forged = t
        .http
        .get(format!(
            "{}/oauth/callback?code=abc&state=forged",
            t.gateway.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
}

#[tokio::test]
async fn tokens_never_reach_the_database_file_in_plaintext() {
    let t = TestGateway::start().await;
    let (account, grant) = t.oauth_account(-60).await;
    let r = t
        .gql(Some(&t.env_key), CONTACTS, json!({"a": account}))
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(t._dir.path()).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let text = String::from_utf8_lossy(&bytes);
    for secret in [
        grant["access_token"].as_str().unwrap(),
        grant["refresh_token"].as_str().unwrap(),
        "sandbox-hubspot-secret",
        &t.env_key,
    ] {
        assert!(!text.contains(secret), "a secret is stored in plaintext");
    }
    assert!(
        !text.contains(tessera_sandbox::HUBSPOT_DEMO_TOKEN),
        "the connected account's token is encrypted"
    );
}

#[tokio::test]
async fn rotating_the_secret_key_re_encrypts_every_stored_secret() {
    use tessera::credentials::{Credentials, SecretKey, Vault};
    use tessera::secret::Secret;
    let dir = tempfile::tempdir().unwrap();
    let store = tessera::store::Store::connect(&format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("t.db").display()
    ))
    .await
    .unwrap();
    let (old, new) = (SecretKey::generate(), SecretKey::generate());
    let (old_vault, new_vault) = (Vault::new(&old), Vault::new(&new));
    let env = store.create_environment("acme").await.unwrap();
    let creds = Credentials {
        access_token: Some(Secret::new("at-1")),
        refresh_token: Some(Secret::new("rt-1")),
        api_key: None,
        expires_at: None,
        client_credentials: false,
    };
    let id = uuid::Uuid::new_v4().to_string();
    store
        .insert_linked_account(tessera::store::NewLinkedAccount {
            credentials: old_vault.seal(&id, &creds),
            id: id.clone(),
            environment_id: env.id.clone(),
            provider: "hubspot".into(),
            status: "ACTIVE".into(),
            settings: json!({}),
            expires_at: None,
        })
        .await
        .unwrap();
    store
        .set_oauth_app(tessera::store::OAuthApp {
            environment_id: Some(env.id.clone()),
            provider: "hubspot".into(),
            client_id: "cid".into(),
            client_secret: old_vault.seal_secret("oauth-app:hubspot", &Secret::new("cs-1")),
            scopes: vec![],
            allowed_hosts: vec![],
            allow_client_credentials: false,
        })
        .await
        .unwrap();
    let done = tessera::cli::rotate::rotate(&store, &old, &new)
        .await
        .unwrap();
    assert_eq!((done.accounts, done.apps), (1, 1));
    let row = store.get_linked_account(&id).await.unwrap().unwrap();
    assert!(old_vault.open(&id, &row.credentials).is_err());
    assert_eq!(
        new_vault
            .open(&id, &row.credentials)
            .unwrap()
            .refresh_token
            .unwrap()
            .expose(),
        "rt-1"
    );
    let app = store
        .find_oauth_app(&env.id, "hubspot")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        new_vault
            .open_secret("oauth-app:hubspot", &app.client_secret)
            .unwrap()
            .expose(),
        "cs-1"
    );
    // A rerun (after an interruption) changes nothing and fails on nothing.
    let again = tessera::cli::rotate::rotate(&store, &old, &new)
        .await
        .unwrap();
    assert_eq!((again.accounts, again.apps), (0, 0));
}

#[tokio::test]
async fn the_client_credentials_grant_links_an_account_and_renews_its_token() {
    let t = TestGateway::start().await;
    t.set_app("hubspot").await;
    // 1 s tokens: the next request finds the token due and asks again.
    t.control(
        "oauth",
        json!({"provider": "hubspot", "accessTokenLifetimeSeconds": 1}),
    )
    .await;
    let base = t.sandbox.base_url();
    let r = t
        .gql(
            Some(&t.env_key),
            "mutation($s: JSON) { connectAccount(provider: \"hubspot\", credentials: {grant: \"client_credentials\"}, settings: $s) { id status } }",
            json!({"s": {"baseUrl": format!("{base}/hubspot"), "tokenUrl": format!("{base}/hubspot/oauth/v1/token")}}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    let account = r.body["data"]["connectAccount"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let first = t
        .gql(Some(&t.env_key), CONTACTS, json!({"a": account}))
        .await;
    assert!(first.body["errors"].is_null(), "{}", first.body);
    assert_eq!(
        t.oauth_stats("hubspot").await["client_credentials"],
        2,
        "the connect, then a renewal because the token is within the buffer"
    );
}

#[tokio::test]
async fn an_environment_without_its_own_app_uses_the_platform_default() {
    let t = TestGateway::start().await;
    let start = "mutation($r: String!, $s: JSON) { startOAuth(provider: \"hubspot\", redirectUri: $r, settings: $s) { authorizationUrl } }";
    let vars = json!({"r": format!("{}/oauth/callback", t.gateway.url()), "s": {"authorizeUrl": format!("{}/hubspot/oauth/authorize", t.sandbox.base_url())}});
    let none = t.gql(Some(&t.env_key), start, vars.clone()).await;
    assert_eq!(
        none.code(),
        Some("BAD_USER_INPUT"),
        "no app anywhere: {}",
        none.body
    );
    assert!(
        none.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("setOAuthApp"),
        "{}",
        none.body
    );
    let set_platform = "mutation($h: [String!]) { setOAuthApp(provider: \"hubspot\", clientId: \"platform-client\", clientSecret: \"platform-secret\", allowedHosts: $h) { clientId allowedHosts } }";
    let set = t
        .gql(
            Some(crate::common::ADMIN_KEY),
            set_platform,
            json!({"h": null}),
        )
        .await;
    assert!(set.body["errors"].is_null(), "{}", set.body);
    // The sandbox's consent page is not the provider file's own host: not with the
    // platform app until the admin names it.
    let r = t.gql(Some(&t.env_key), start, vars.clone()).await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
    let sandbox_host = t
        .sandbox
        .base_url()
        .trim_start_matches("http://")
        .to_string();
    let set = t
        .gql(
            Some(crate::common::ADMIN_KEY),
            set_platform,
            json!({"h": [sandbox_host]}),
        )
        .await;
    assert_eq!(
        set.body["data"]["setOAuthApp"]["allowedHosts"],
        json!([sandbox_host]),
        "{}",
        set.body
    );
    let r = t.gql(Some(&t.env_key), start, vars.clone()).await;
    let link = r.body["data"]["startOAuth"]["authorizationUrl"]
        .as_str()
        .unwrap_or_else(|| panic!("{}", r.body))
        .to_string();
    let (vendor, _) = Browser::new().open(&link).await;
    assert!(vendor.contains("client_id=platform-client"), "{vendor}");
    t.set_app("hubspot").await;
    let r = t.gql(Some(&t.env_key), start, vars).await;
    let link = r.body["data"]["startOAuth"]["authorizationUrl"]
        .as_str()
        .unwrap_or_else(|| panic!("{}", r.body))
        .to_string();
    let (vendor, _) = Browser::new().open(&link).await;
    assert!(
        vendor.contains("client_id=sandbox-hubspot-client"),
        "the environment's own app wins: {vendor}"
    );
}

#[tokio::test]
async fn zoho_token_errors_sent_with_http_200_are_still_invalid_grants() {
    let t = TestGateway::start().await;
    t.set_app("zoho").await;
    let grant = t
        .control(
            "oauth/grant",
            json!({"provider": "zoho", "accessTokenLifetimeSeconds": -60}),
        )
        .await;
    t.control(
        "oauth/revoke",
        json!({"provider": "zoho", "refreshToken": grant["refresh_token"]}),
    )
    .await;
    let base = t.sandbox.base_url();
    let expired = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let r = t
        .gql(
            Some(&t.env_key),
            "mutation($c: JSON!, $s: JSON) { connectAccount(provider: \"zoho\", credentials: $c, settings: $s) { id } }",
            json!({
                "c": {"accessToken": grant["access_token"], "refreshToken": grant["refresh_token"], "expiresAt": expired},
                "s": {"apiDomain": format!("{base}/zoho"), "tokenUrl": format!("{base}/zoho/oauth/v2/token")}
            }),
        )
        .await;
    let account = r.body["data"]["connectAccount"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let q = t
        .gql(Some(&t.env_key), CONTACTS, json!({"a": account}))
        .await;
    assert_eq!(q.code(), Some("NEEDS_REAUTH"), "{}", q.body);
    assert_eq!(t.account(&account).await["status"], "NEEDS_REAUTH");
    assert_eq!(t.oauth_stats("zoho").await["refresh_token"], 1);
}

/// Accounts that can never refresh (an expired token and no refresh token) once filled the
/// refresher's one page of 500 forever, so another tenant's account behind them was never
/// refreshed. Now the refresher walks every page and parks such accounts in NEEDS_REAUTH
/// with a reason, out of its way.
#[tokio::test]
async fn accounts_that_cannot_refresh_are_parked_and_never_starve_the_others() {
    let t = TestGateway::start().await;
    let stuck_env = t.create_environment("stuck").await;
    let expired = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let base = t.sandbox.base_url();
    let connect = "mutation($c: JSON!, $s: JSON) { connectAccount(provider: \"hubspot\", credentials: $c, settings: $s) { id } }";
    let mut stuck = Vec::new();
    for i in 0..520 {
        let r = t
            .gql(
                Some(&stuck_env),
                connect,
                json!({"c": {"accessToken": format!("dead-{i}"), "expiresAt": expired},
                       "s": {"baseUrl": format!("{base}/hubspot")}}),
            )
            .await;
        assert!(r.body["errors"].is_null(), "{}", r.body);
        stuck.push(
            r.body["data"]["connectAccount"]["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    // Expires an hour later than the stuck ones, so it sorts behind all of them.
    let (account, _) = t.oauth_account(-60).await;
    t.gateway.services.tokens.refresh_due().await;
    assert_eq!(
        t.oauth_stats("hubspot").await["refresh_token"],
        1,
        "the refreshable account behind 520 stuck ones was refreshed"
    );
    assert_eq!(t.account(&account).await["status"], "ACTIVE");
    for id in [&stuck[0], &stuck[519]] {
        let r = t
            .gql(
                Some(&stuck_env),
                "query($a: ID!) { linkedAccount(id: $a) { status statusReason events { kind } } }",
                json!({"a": id}),
            )
            .await;
        let a = &r.body["data"]["linkedAccount"];
        assert_eq!(a["status"], "NEEDS_REAUTH", "{a}");
        assert!(
            a["statusReason"]
                .as_str()
                .unwrap()
                .contains("no refresh token"),
            "{a}"
        );
        assert!(
            a["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["kind"] == "NEEDS_REAUTH"),
            "{a}"
        );
    }
}

/// A token the vendor stops accepting before its expiry (revoked, rotated elsewhere) is
/// refreshed on the vendor's 401, once for all the requests that met it, and each of them
/// is retried once: the callers never see the 401.
#[tokio::test]
async fn a_token_refused_early_is_refreshed_once_and_the_requests_retried() {
    let t = TestGateway::start().await;
    t.control(
        "ratelimit",
        json!({"provider": "hubspot", "max": 100000, "intervalMs": 10000}),
    )
    .await;
    let (account, grant) = t.oauth_account(3600).await;
    let r = t
        .http
        .delete(format!(
            "{}/_control/tokens/{}",
            t.sandbox.base_url(),
            grant["access_token"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let requests = (0..50).map(|_| t.gql(Some(&t.env_key), CONTACTS, json!({"a": account})));
    for r in futures_util::future::join_all(requests).await {
        assert!(r.body["errors"].is_null(), "{}", r.body);
    }
    assert_eq!(
        t.oauth_stats("hubspot").await["refresh_token"],
        1,
        "one refresh for 50 refused requests"
    );
    assert_eq!(t.account(&account).await["status"], "ACTIVE");
}

/// Whatever tells a caller NEEDS_REAUTH has set the account to it: a key the vendor refuses
/// (no refresh token to try) parks the account with the reason and an event.
#[tokio::test]
async fn a_refused_token_that_cannot_be_refreshed_parks_the_account_before_answering() {
    let t = TestGateway::start().await;
    let base = t.sandbox.base_url();
    let r = t
        .gql(
            Some(&t.env_key),
            "mutation($c: JSON!, $s: JSON) { connectAccount(provider: \"hubspot\", credentials: $c, settings: $s) { id } }",
            json!({"c": {"accessToken": "pat-revoked-by-the-customer"}, "s": {"baseUrl": format!("{base}/hubspot")}}),
        )
        .await;
    let account = r.body["data"]["connectAccount"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = t
        .gql(Some(&t.env_key), CONTACTS, json!({"a": account}))
        .await;
    assert_eq!(r.code(), Some("NEEDS_REAUTH"), "{}", r.body);
    let a = t.account(&account).await;
    assert_eq!(a["status"], "NEEDS_REAUTH", "{a}");
    assert!(
        a["statusReason"]
            .as_str()
            .unwrap()
            .contains("refused the access token"),
        "{a}"
    );
    assert!(
        a["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "NEEDS_REAUTH"),
        "{a}"
    );
    assert!(
        !a.to_string().contains("pat-revoked-by-the-customer"),
        "{a}"
    );
}

/// One refresh sequence per account at a time, whatever the queue: twenty requests that
/// meet a failing token endpoint share one sequence of attempts (it used to be one
/// sequence per queued request), and serve with the still-valid token.
#[tokio::test]
async fn requests_queued_behind_a_failed_refresh_share_its_outcome() {
    let t = TestGateway::start().await;
    let (account, _) = t.oauth_account(120).await;
    t.control(
        "oauth",
        json!({"provider": "hubspot", "tokenFailures": {"status": 503, "times": 100}}),
    )
    .await;
    let requests = (0..20).map(|_| t.gql(Some(&t.env_key), CONTACTS, json!({"a": account})));
    for r in futures_util::future::join_all(requests).await {
        assert!(r.body["errors"].is_null(), "{}", r.body);
    }
    let stats = t.oauth_stats("hubspot").await;
    assert_eq!(
        stats["refresh_token"], 3,
        "one bounded sequence for 20 requests: {stats}"
    );
}
