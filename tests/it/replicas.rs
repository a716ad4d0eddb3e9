//! Two `tessera serve` processes on one PostgreSQL database, as replicas behind a load
//! balancer: an expired token with a single-use refresh token is refreshed exactly once
//! for requests split between them, and neither process's logs ever hold a token.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tessera_sandbox::Sandbox;

use crate::store::{drop_postgres_database, fresh_postgres_url};

pub(crate) struct Replica {
    child: Child,
    pub(crate) url: String,
    log: std::path::PathBuf,
}

impl Replica {
    /// SIGKILL: the process gets no chance to finish anything.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `tessera serve` on a free port with `extra` environment, logging to
/// `dir/<name>.log`, and waits until it is ready. It may call no loopback or private
/// address but those `TESSERA_ALLOW_UPSTREAMS` in `extra` names.
pub(crate) async fn spawn_serve(
    database_url: &str,
    secret_key: &str,
    dir: &std::path::Path,
    name: &str,
    extra: &[(&str, &str)],
) -> Replica {
    let port = free_port();
    let log = dir.join(format!("{name}.log"));
    let child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env_remove("TESSERA_ALLOW_UPSTREAMS")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DATABASE_URL", database_url)
        .env("TESSERA_SECRET_KEY", secret_key)
        .env("TESSERA_ADMIN_KEY", "replica-admin-key")
        .env("RUST_LOG", "debug")
        .envs(extra.iter().copied())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let replica = Replica {
        child,
        url: format!("http://127.0.0.1:{port}"),
        log,
    };
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(r) = http.get(format!("{}/readyz", replica.url)).send().await
            && r.status().is_success()
        {
            return replica;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{name} did not become ready: {}",
        std::fs::read_to_string(&replica.log).unwrap_or_default()
    );
}

/// A replica that may call only the sandbox at `sandbox` (`127.0.0.1:PORT`).
async fn start_replica(
    database_url: &str,
    secret_key: &str,
    dir: &std::path::Path,
    n: usize,
    sandbox: &str,
) -> Replica {
    let allow = [("TESSERA_ALLOW_UPSTREAMS", sandbox)];
    spawn_serve(
        database_url,
        secret_key,
        dir,
        &format!("replica-{n}"),
        &allow,
    )
    .await
}

pub(crate) async fn gql(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    query: &str,
    variables: Value,
) -> Value {
    http.post(format!("{url}/graphql"))
        .bearer_auth(key)
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_postgres_refresh_an_expired_token_exactly_once() {
    let database_url = fresh_postgres_url().await;
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let base = sandbox.base_url();
    let http = reqwest::Client::new();
    let control = |path: &str, body: Value| {
        http.post(format!("{base}/_control/{path}"))
            .json(&body)
            .send()
    };
    control(
        "oauth",
        json!({"provider": "hubspot", "rotateRefreshTokens": true, "tokenDelayMs": 300}),
    )
    .await
    .unwrap();
    control(
        "ratelimit",
        json!({"provider": "hubspot", "max": 100000, "intervalMs": 10000}),
    )
    .await
    .unwrap();
    let grant: Value = control(
        "oauth/grant",
        json!({"provider": "hubspot", "accessTokenLifetimeSeconds": -60}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();

    let key = tessera::credentials::SecretKey::generate().to_base64();
    let named = base.trim_start_matches("http://");
    let a = start_replica(&database_url, &key, dir.path(), 1, named).await;
    let b = start_replica(&database_url, &key, dir.path(), 2, named).await;

    let created = gql(
        &http,
        &a.url,
        "replica-admin-key",
        "mutation { createEnvironment(name: \"acme\") { apiKey } }",
        json!({}),
    )
    .await;
    let env_key = created["data"]["createEnvironment"]["apiKey"]
        .as_str()
        .unwrap()
        .to_string();
    let app = gql(&http, &b.url, &env_key, "mutation { setOAuthApp(provider: \"hubspot\", clientId: \"sandbox-hubspot-client\", clientSecret: \"sandbox-hubspot-secret\") { clientId } }", json!({})).await;
    assert!(app["errors"].is_null(), "{app}");
    let expired = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let connected = gql(
        &http,
        &a.url,
        &env_key,
        "mutation($c: JSON!, $s: JSON) { connectAccount(provider: \"hubspot\", credentials: $c, settings: $s) { id } }",
        json!({
            "c": {"accessToken": grant["access_token"], "refreshToken": grant["refresh_token"], "expiresAt": expired},
            "s": {"baseUrl": format!("{base}/hubspot"), "tokenUrl": format!("{base}/hubspot/oauth/v1/token")}
        }),
    )
    .await;
    let account = connected["data"]["connectAccount"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let query =
        "query($a: ID!) { contacts(accountId: $a, first: 1) { edges { node { remoteId } } } }";
    let requests = (0..60).map(|i| {
        let url = if i % 2 == 0 {
            a.url.clone()
        } else {
            b.url.clone()
        };
        let (http, env_key, account) = (http.clone(), env_key.clone(), account.clone());
        async move { gql(&http, &url, &env_key, query, json!({"a": account})).await }
    });
    let replies = futures_util::future::join_all(requests).await;
    for r in &replies {
        assert!(r["errors"].is_null(), "{r}");
    }
    let stats: Value = http
        .get(format!("{base}/_control/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        stats["oauth"]["hubspot"]["refresh_token"], 1,
        "one refresh across both replicas: {stats}"
    );

    drop(a);
    drop(b);
    let logs = std::fs::read_to_string(dir.path().join("replica-1.log")).unwrap()
        + &std::fs::read_to_string(dir.path().join("replica-2.log")).unwrap();
    assert!(
        logs.contains("access token refreshed"),
        "the refresh is logged (as an event, without the token)"
    );
    for secret in [
        grant["access_token"].as_str().unwrap(),
        grant["refresh_token"].as_str().unwrap(),
        "sandbox-hubspot-secret",
        &env_key,
        &key,
    ] {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
    drop_postgres_database(&database_url).await;
}

async fn start_sqlite_process(
    database_url: &str,
    secret_key: &str,
    dir: &std::path::Path,
    n: usize,
    sandbox: &str,
) -> Replica {
    spawn_serve(
        database_url,
        secret_key,
        dir,
        &format!("crash-{n}"),
        &[
            ("TESSERA_REFRESH_CLAIM_TTL_SECS", "1"),
            ("RUST_LOG", "info"),
            ("TESSERA_ALLOW_UPSTREAMS", sandbox),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_during_refreshes_never_strands_an_account() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("crash.db").display()
    );
    let sandbox = Sandbox::spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let base = sandbox.base_url();
    let http = reqwest::Client::new();
    let control = |path: &str, body: Value| {
        http.post(format!("{base}/_control/{path}"))
            .json(&body)
            .send()
    };
    // Single-use refresh tokens, slow token responses and 1 s access tokens: every run of
    // the loop below refreshes, and a kill can land before, during or after the vendor
    // rotated the token.
    control("oauth", json!({"provider": "hubspot", "rotateRefreshTokens": true, "tokenDelayMs": 250, "accessTokenLifetimeSeconds": 1})).await.unwrap();
    control(
        "ratelimit",
        json!({"provider": "hubspot", "max": 1000000, "intervalMs": 10000}),
    )
    .await
    .unwrap();
    let grant: Value = control(
        "oauth/grant",
        json!({"provider": "hubspot", "accessTokenLifetimeSeconds": -60}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let key = tessera::credentials::SecretKey::generate().to_base64();

    let first = start_sqlite_process(
        &database_url,
        &key,
        dir.path(),
        0,
        base.trim_start_matches("http://"),
    )
    .await;
    let created = gql(
        &http,
        &first.url,
        "replica-admin-key",
        "mutation { createEnvironment(name: \"acme\") { apiKey } }",
        json!({}),
    )
    .await;
    let env_key = created["data"]["createEnvironment"]["apiKey"]
        .as_str()
        .unwrap()
        .to_string();
    gql(&http, &first.url, &env_key, "mutation { setOAuthApp(provider: \"hubspot\", clientId: \"sandbox-hubspot-client\", clientSecret: \"sandbox-hubspot-secret\") { clientId } }", json!({})).await;
    let expired = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let connected = gql(
        &http,
        &first.url,
        &env_key,
        "mutation($c: JSON!, $s: JSON) { connectAccount(provider: \"hubspot\", credentials: $c, settings: $s) { id } }",
        json!({
            "c": {"accessToken": grant["access_token"], "refreshToken": grant["refresh_token"], "expiresAt": expired},
            "s": {"baseUrl": format!("{base}/hubspot"), "tokenUrl": format!("{base}/hubspot/oauth/v1/token")}
        }),
    )
    .await;
    let account = connected["data"]["connectAccount"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    drop(first);

    let query =
        "query($a: ID!) { contacts(accountId: $a, first: 1) { edges { node { remoteId } } } }";
    // Kill points spread over the refresh (the token endpoint takes 250 ms).
    for (n, kill_after_ms) in [50u64, 150, 260, 320, 500, 900].into_iter().enumerate() {
        let process = start_sqlite_process(
            &database_url,
            &key,
            dir.path(),
            n + 1,
            base.trim_start_matches("http://"),
        )
        .await;
        let in_flight: Vec<_> = (0..4)
            .map(|_| {
                let (http, url, env_key, account) = (
                    http.clone(),
                    process.url.clone(),
                    env_key.clone(),
                    account.clone(),
                );
                tokio::spawn(async move {
                    let _ = http
                        .post(format!("{url}/graphql"))
                        .bearer_auth(&env_key)
                        .json(&json!({"query": query, "variables": {"a": account}}))
                        .send()
                        .await;
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(kill_after_ms)).await;
        drop(process); // SIGKILL
        for task in in_flight {
            let _ = task.await;
        }
    }

    // After the last crash: past the claim TTL, the account is usable or says it is not.
    let last = start_sqlite_process(
        &database_url,
        &key,
        dir.path(),
        99,
        base.trim_start_matches("http://"),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let r = gql(&http, &last.url, &env_key, query, json!({"a": account})).await;
    let status = gql(
        &http,
        &last.url,
        &env_key,
        "query($a: ID!) { linkedAccount(id: $a) { status statusReason } }",
        json!({"a": account}),
    )
    .await;
    let status = status["data"]["linkedAccount"]["status"]
        .as_str()
        .unwrap()
        .to_string();
    match status.as_str() {
        "ACTIVE" => assert!(r["errors"].is_null(), "an ACTIVE account must work: {r}"),
        "NEEDS_REAUTH" => assert_eq!(r["errors"][0]["extensions"]["code"], "NEEDS_REAUTH", "{r}"),
        other => panic!("the account was left {other}: {r}"),
    }
}

/// The request path reads its API key and its linked account through a one-second cache.
/// A key created on one replica works on the other at once (unknown keys are never
/// cached); a key revoked and an account disabled on one replica are refused by the other
/// once its cached read expires, even though that replica served both a moment before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_or_an_account_disabled_on_one_replica_is_refused_by_the_other() {
    let (url, a, b) = crate::common::TestGateway::two_replicas().await;
    let b_url = format!("http://{}", b.addr);
    let http = reqwest::Client::new();
    let contacts = "query($a: ID!) { contacts(accountId: $a, first: 1) { edges { node { id } } } }";
    let vars = json!({"a": a.account_id});

    let r = a
        .gql(
            Some(&a.env_key),
            "mutation { createApiKey { key { id } apiKey } }",
            json!({}),
        )
        .await;
    let key_id = r.body["data"]["createApiKey"]["key"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = r.body["data"]["createApiKey"]["apiKey"]
        .as_str()
        .unwrap()
        .to_owned();
    // Served by the other replica on its first use, and again (now from its cache).
    for _ in 0..2 {
        let r = gql(&http, &b_url, &key, contacts, vars.clone()).await;
        assert!(r["errors"].is_null(), "{r}");
    }

    let r = a
        .gql(
            Some(&a.env_key),
            "mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }",
            json!({"id": key_id}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    crate::common::wait_for("the other replica to refuse the revoked key", || async {
        let r = gql(&http, &b_url, &key, contacts, vars.clone()).await;
        r["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    })
    .await;

    let r = a
        .gql(
            Some(&a.env_key),
            "mutation($a: ID!) { disableAccount(id: $a) { id } }",
            vars.clone(),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    crate::common::wait_for(
        "the other replica to refuse the disabled account",
        || async {
            let r = gql(&http, &b_url, &a.env_key, contacts, vars.clone()).await;
            r["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        },
    )
    .await;
    // And on the replica that wrote it, from the next request.
    let r = a.gql(Some(&a.env_key), contacts, vars.clone()).await;
    assert_eq!(r.code(), Some("FORBIDDEN"), "{}", r.body);
    drop((a, b));
    drop_postgres_database(&url).await;
}
