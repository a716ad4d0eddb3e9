//! A linked account's lifecycle as its environment runs it, over real HTTP against the
//! sandbox: disabled (no call, refresh or probe) and enabled again; deleted (the grant
//! revoked at the vendor, its webhook subscriptions deleted there, nothing of it left in
//! the database file); re-authorized in place (same id, same overrides).

use serde_json::{Value, json};

use crate::common::TestGateway;
use crate::oauth_apps::Browser;
use crate::webhooks::{connect_with, control, wait_subscription};

const CONTACTS: &str = "query($a: ID!) { contacts(accountId: $a, first: 1) { edges { node { remoteId customFields } } } }";
const DELETE: &str = "mutation($a: ID!) { deleteLinkedAccount(id: $a) { id tokenRevoked revocation subscriptionsDeleted warnings } }";

async fn toggle(t: &TestGateway, mutation: &str, account: &str) -> Value {
    let r = t
        .gql(
            Some(&t.env_key),
            &format!("mutation($a: ID!) {{ {mutation}(id: $a) {{ id status statusReason }} }}"),
            json!({"a": account}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    r.body["data"][mutation].clone()
}

async fn delete(t: &TestGateway, account: &str) -> Value {
    let r = t.gql(Some(&t.env_key), DELETE, json!({"a": account})).await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    r.body["data"]["deleteLinkedAccount"].clone()
}

async fn stored(t: &TestGateway, account: &str) -> tessera::store::LinkedAccount {
    t.gateway
        .services
        .store
        .get_linked_account(account)
        .await
        .unwrap()
        .unwrap()
}

/// An account-level override: the account's contacts carry `customFields.tier = "gold"`.
async fn gold_tier(t: &TestGateway, account: &str) {
    let r = t
        .gql(
            Some(&t.env_key),
            "mutation($i: OverrideInput!) { setOverride(input: $i) { id } }",
            json!({"i": {"level": "ACCOUNT", "accountId": account, "provider": "hubspot", "resource": "contacts", "fields": {"customFields.tier": "'gold'"}}}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
}

fn kinds(account: &Value) -> Vec<String> {
    account["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_disabled_account_makes_no_call_refresh_or_probe_until_enabled() {
    let t = TestGateway::start().await;
    // Its access token expires in a minute: due for a refresh at once.
    let (account, _) = t.oauth_account(60).await;
    let disabled = toggle(&t, "disableAccount", &account).await;
    assert_eq!(disabled["status"], "DISABLED", "{disabled}");
    assert!(
        disabled["statusReason"]
            .as_str()
            .unwrap()
            .contains("disableAccount")
    );
    assert_eq!(
        toggle(&t, "disableAccount", &account).await["status"],
        "DISABLED",
        "disabling twice is no error"
    );

    let before = t.sandbox_stats().await["requests"].as_u64().unwrap();
    let r = t
        .gql(Some(&t.env_key), CONTACTS, json!({"a": account}))
        .await;
    assert_eq!(r.code(), Some("FORBIDDEN"), "{}", r.body);
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("DISABLED")
    );
    t.gateway.services.tokens.refresh_due().await;
    let probed = tessera::health::probes::probe_account_now(&t.gateway.services, &account)
        .await
        .unwrap();
    assert_ne!(probed.state, "HEALTHY", "{probed:?}");
    assert_eq!(
        t.sandbox_stats().await["requests"].as_u64().unwrap(),
        before,
        "no API call for a disabled account"
    );
    assert_eq!(
        t.oauth_stats("hubspot").await["refresh_token"],
        0,
        "no refresh for a disabled account"
    );

    // A refresh that read the account before it was disabled does not bring it back.
    let row = stored(&t, &account).await;
    assert!(t.gateway.services.tokens.fresh(row).await.is_err());
    assert_eq!(stored(&t, &account).await.status, "DISABLED");
    assert_eq!(t.oauth_stats("hubspot").await["refresh_token"], 0);

    let enabled = toggle(&t, "enableAccount", &account).await;
    assert_eq!(enabled["status"], "ACTIVE", "{enabled}");
    assert!(enabled["statusReason"].is_null());
    let r = t
        .gql(Some(&t.env_key), CONTACTS, json!({"a": account}))
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    let kinds = kinds(&t.account(&account).await);
    assert!(
        kinds.contains(&"DISABLED".to_owned()) && kinds.contains(&"ENABLED".to_owned()),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn deleting_an_account_revokes_its_grant_and_leaves_nothing_of_it_in_the_database() {
    let t = TestGateway::start().await;
    let (account, grant) = t.oauth_account(3600).await;
    gold_tier(&t, &account).await;
    let r = t
        .gql(Some(&t.env_key), CONTACTS, json!({"a": account}))
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    let sealed = stored(&t, &account).await.credentials;

    let deleted = delete(&t, &account).await;
    assert_eq!(deleted["id"], account.as_str());
    assert_eq!(deleted["tokenRevoked"], true, "{deleted}");
    assert_eq!(deleted["warnings"], json!([]), "{deleted}");

    // Gone for the caller, and the grant is dead at the vendor: its refresh token is
    // refused there.
    let r = t
        .gql(
            Some(&t.env_key),
            "query($a: ID!) { linkedAccount(id: $a) { id } }",
            json!({"a": account}),
        )
        .await;
    assert_eq!(r.code(), Some("NOT_FOUND"), "{}", r.body);
    let refused = t
        .http
        .post(format!("{}/hubspot/oauth/v1/token", t.sandbox.base_url()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", grant["refresh_token"].as_str().unwrap()),
            ("client_id", "sandbox-hubspot-client"),
            ("client_secret", "sandbox-hubspot-secret"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400, "the refresh token was revoked");

    // Nothing kept about it: its events, log and override are gone with its row, and
    // its sealed credentials are no longer anywhere in the database's files.
    let store = &t.gateway.services.store;
    assert!(
        store
            .list_account_events(&account, 50)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_webhook_subscriptions(&account)
            .await
            .unwrap()
            .is_empty()
    );
    let overrides = t
        .gql(
            Some(&t.env_key),
            "query { overrides(provider: \"hubspot\") { accountId } }",
            json!({}),
        )
        .await;
    assert!(
        !overrides.body.to_string().contains(&account),
        "{}",
        overrides.body
    );
    crate::common::wait_for("the sealed credentials to leave the database files", || {
        let dir = t._dir.path().to_owned();
        let sealed = sealed.clone();
        async move {
            let mut bytes = Vec::new();
            for entry in std::fs::read_dir(&dir).unwrap() {
                bytes.extend(std::fs::read(entry.unwrap().path()).unwrap_or_default());
            }
            !bytes.windows(sealed.len()).any(|w| w == sealed.as_slice())
        }
    })
    .await;
}

#[tokio::test]
async fn deleting_an_account_deletes_its_webhook_subscriptions_at_the_vendor() {
    let t = TestGateway::start().await;
    let account = connect_with(&t, "pipedrive", json!({})).await;
    wait_subscription(&t, &account, 10, "never ACTIVE", |s| s["state"] == "ACTIVE").await;
    let listed = control(&t, reqwest::Method::GET, "webhooks/pipedrive", Value::Null).await;
    assert_eq!(listed["subscriptions"].as_array().unwrap().len(), 1);

    let deleted = delete(&t, &account).await;
    assert_eq!(deleted["subscriptionsDeleted"], 1, "{deleted}");
    let listed = control(&t, reqwest::Method::GET, "webhooks/pipedrive", Value::Null).await;
    assert_eq!(listed["subscriptions"], json!([]), "{listed}");
    // The demo account has no OAuth app to revoke with: said, not hidden.
    assert_eq!(deleted["tokenRevoked"], false, "{deleted}");
    let warnings = deleted["warnings"].to_string();
    assert!(warnings.contains("could not be revoked"), "{warnings}");
}

#[tokio::test]
async fn another_environment_can_neither_disable_nor_delete_an_account() {
    let t = TestGateway::start().await;
    let other = t.create_environment("other").await;
    for mutation in [
        "mutation($a: ID!) { disableAccount(id: $a) { id } }",
        "mutation($a: ID!) { enableAccount(id: $a) { id } }",
        DELETE,
    ] {
        let r = t
            .gql(Some(&other), mutation, json!({"a": t.account_id}))
            .await;
        assert_eq!(r.code(), Some("NOT_FOUND"), "{mutation}: {}", r.body);
    }
    let r = t
        .gql(Some(&t.env_key), CONTACTS, json!({"a": t.account_id}))
        .await;
    assert!(r.body["errors"].is_null(), "still there: {}", r.body);
}

/// Starts a re-authorization of `account` (or a new link, with `None`) in a browser and
/// follows it to the callback; returns the callback's answer.
async fn authorize(t: &TestGateway, account: Option<&str>) -> (u16, Value) {
    let base = t.sandbox.base_url();
    let settings = json!({"baseUrl": format!("{base}/hubspot"), "authorizeUrl": format!("{base}/hubspot/oauth/authorize"), "tokenUrl": format!("{base}/hubspot/oauth/v1/token"), "revokeUrl": format!("{base}/hubspot/oauth/v1/refresh-tokens/")});
    let callback = format!("{}/oauth/callback", t.gateway.url());
    let r = t
        .gql(
            Some(&t.env_key),
            "mutation($r: String!, $s: JSON, $a: ID) { startOAuth(provider: \"hubspot\", redirectUri: $r, settings: $s, accountId: $a) { authorizationUrl } }",
            json!({"r": callback, "s": settings, "a": account}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    let url = r.body["data"]["startOAuth"]["authorizationUrl"]
        .as_str()
        .unwrap()
        .to_string();
    let browser = Browser::new();
    let (vendor, cookie) = browser.open(&url).await;
    let location = browser.approve(&vendor, &callback).await;
    let done = browser.get(&location, Some(&cookie)).await;
    let status = done.status().as_u16();
    (status, done.json().await.unwrap())
}

#[tokio::test]
async fn a_needs_reauth_account_is_re_authorized_in_place_with_its_id_and_overrides() {
    let t = TestGateway::start().await;
    t.set_app("hubspot").await;
    let (status, done) = authorize(&t, None).await;
    assert_eq!(status, 200, "{done}");
    let account = done["accountId"].as_str().unwrap().to_owned();
    gold_tier(&t, &account).await;

    // The customer's admin revokes the grant (its access tokens die with it): the next
    // read is refused, the refresh too, and the account needs re-authorization.
    let stored = stored(&t, &account).await;
    let creds = t
        .gateway
        .services
        .vault
        .open(&account, &stored.credentials)
        .unwrap();
    t.control(
        "oauth/revoke",
        json!({"provider": "hubspot", "refreshToken": creds.refresh_token.unwrap().expose()}),
    )
    .await;
    let r = t
        .gql(Some(&t.env_key), CONTACTS, json!({"a": account}))
        .await;
    assert_eq!(r.code(), Some("NEEDS_REAUTH"), "{}", r.body);

    // Re-authorized in place: the same id answers again, with its override.
    let (status, done) = authorize(&t, Some(&account)).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["accountId"], account.as_str(), "same id: {done}");
    assert_eq!(done["status"], "ACTIVE");
    let r = t
        .gql(Some(&t.env_key), CONTACTS, json!({"a": account}))
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    assert_eq!(
        r.body["data"]["contacts"]["edges"][0]["node"]["customFields"]["tier"], "gold",
        "the account's override still applies: {}",
        r.body
    );
    let a = t.account(&account).await;
    assert!(kinds(&a).contains(&"REAUTHORIZED".to_owned()), "{a}");
    let listed = t
        .gql(
            Some(&t.env_key),
            "query { linkedAccounts { id } }",
            json!({}),
        )
        .await;
    assert_eq!(
        listed.body["data"]["linkedAccounts"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "no new account (the test's own and this one): {}",
        listed.body
    );
}

#[tokio::test]
async fn a_grant_for_another_vendor_account_is_refused_and_changes_nothing() {
    let t = TestGateway::start().await;
    t.set_app("hubspot").await;
    // An account of portal 1 (its webhooks' routing key); the sandbox's consent is for
    // another portal.
    let grant = t
        .control("oauth/grant", json!({"provider": "hubspot"}))
        .await;
    let base = t.sandbox.base_url();
    let r = t
        .gql(
            Some(&t.env_key),
            "mutation($c: JSON!, $s: JSON) { connectAccount(provider: \"hubspot\", credentials: $c, settings: $s) { id } }",
            json!({
                "c": {"accessToken": grant["access_token"], "refreshToken": grant["refresh_token"]},
                "s": {"baseUrl": format!("{base}/hubspot"), "tokenUrl": format!("{base}/hubspot/oauth/v1/token"), "portalId": "1"}
            }),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    let account = r.body["data"]["connectAccount"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = stored(&t, &account).await;
    let r = t
        .gql(
            Some(&t.env_key),
            "mutation($a: ID!) { startOAuth(provider: \"hubspot\", redirectUri: \"http://x.invalid/cb\", accountId: $a) { authorizationUrl } }",
            json!({"a": "no-such-account"}),
        )
        .await;
    assert_eq!(r.code(), Some("NOT_FOUND"), "{}", r.body);
    let (status, done) = authorize(&t, Some(&account)).await;
    assert_eq!(status, 400, "{done}");
    assert!(
        done["error"]["message"]
            .as_str()
            .unwrap()
            .contains("another hubspot account"),
        "{done}"
    );
    let after = stored(&t, &account).await;
    assert_eq!(after.credentials, before.credentials, "nothing changed");
    assert_eq!(after.settings["portalId"], "1");
}

/// The account's portal was never in its settings: its webhooks were routed by a key the
/// gateway indexed. A grant for another portal is refused all the same.
#[tokio::test]
async fn a_grant_for_another_portal_than_the_indexed_one_is_refused() {
    let t = TestGateway::start().await;
    t.set_app("hubspot").await;
    // The vendor's account-info call fails at link time: no key is learned then.
    crate::faults::fault(
        &t,
        json!({"provider": "hubspot", "status": 500, "times": 10, "pathContains": "/account-info"}),
    )
    .await;
    let (account, _) = t.oauth_account(3600).await;
    let store = &t.gateway.services.store;
    assert!(
        store
            .webhook_keys_of_account(&account)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        stored(&t, &account)
            .await
            .settings
            .get("portalId")
            .is_none()
    );
    store
        .put_webhook_account_key("hubspot", "1", &account)
        .await
        .unwrap();
    let before = stored(&t, &account).await;
    let (status, done) = authorize(&t, Some(&account)).await;
    assert_eq!(status, 400, "{done}");
    assert!(
        done["error"]["message"]
            .as_str()
            .unwrap()
            .contains("another hubspot account"),
        "{done}"
    );
    assert_eq!(stored(&t, &account).await.credentials, before.credentials);
}
