//! The upstream allow list: loopback, private and link-local upstreams (cloud metadata
//! included) are refused at connect, at refresh, on every call and through the proxy, after
//! DNS resolution, unless `--allow-upstream` names them; and nothing reaches the address.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tessera::app::{Gateway, GatewayConfig, RunningGateway};
use tessera::upstreams::AllowList;

use crate::common::{TestGateway, copy_dir, repo_path};

const ENV_KEY: &str = "upstream-env-key";

/// A loopback listener that counts the connections it accepts, and answers none.
struct Listener {
    port: u16,
    accepted: Arc<AtomicUsize>,
}

impl Listener {
    async fn start() -> Listener {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = l.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                drop(socket);
            }
        });
        Listener { port, accepted }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// A gateway with `upstreams`, no sandbox, and one environment. Its HubSpot provider also
/// allows the host `localhost`, so a `https://localhost` base URL passes the provider's
/// host check and only the address the name resolves to can refuse it.
struct Bare {
    running: RunningGateway,
    env_id: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Bare {
    async fn start(upstreams: AllowList) -> Bare {
        let dir = tempfile::tempdir().unwrap();
        let providers = dir.path().join("providers");
        copy_dir(&repo_path("providers"), &providers);
        let file = providers.join("hubspot.json");
        let mut hubspot: Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        hubspot["allowedHosts"]
            .as_array_mut()
            .unwrap()
            .push(json!("localhost"));
        std::fs::write(&file, serde_json::to_string_pretty(&hubspot).unwrap()).unwrap();
        let gateway = Gateway::build(GatewayConfig {
            database_url: format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display()),
            providers_dir: providers,
            schema_dir: repo_path("schema"),
            upstreams,
            secret_key: tessera::credentials::SecretKey::generate(),
            playground_key: None,
            introspection: true,
            refresh_every: None,
            public_url: None,
            probe_interval: None,
            watch_interval: Some(Duration::from_secs(86_400)),
        })
        .await
        .unwrap();
        let env = gateway.ensure_environment("e", ENV_KEY).await.unwrap();
        let running = RunningGateway::start(gateway, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        Bare {
            running,
            env_id: env.id,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    async fn gql(&self, query: &str, variables: Value) -> Value {
        gql(&self.http, &self.running.url(), query, variables).await
    }
}

async fn gql(http: &reqwest::Client, gateway: &str, query: &str, variables: Value) -> Value {
    http.post(format!("{gateway}/graphql"))
        .bearer_auth(ENV_KEY)
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

const CONNECT: &str = "mutation($c: JSON!, $s: JSON) { connectAccount(provider: \"hubspot\", credentials: $c, settings: $s) { id } }";
const CONTACTS: &str =
    "query($a: ID!) { contacts(accountId: $a, first: 1) { edges { node { remoteId } } } }";

fn code(r: &Value) -> &str {
    r["errors"][0]["extensions"]["code"].as_str().unwrap_or("")
}

fn message(r: &Value) -> &str {
    r["errors"][0]["message"].as_str().unwrap_or("")
}

/// Writes an account straight into the store, past `connectAccount`'s checks, as a row
/// from before the allow list (or a bug elsewhere) would be.
async fn smuggle(
    running: &RunningGateway,
    env_id: &str,
    settings: Value,
    credentials: Value,
) -> String {
    let services = &running.services;
    let creds = tessera::credentials::Credentials::from_input(&credentials).unwrap();
    let id = format!("smuggled-{}", uuid::Uuid::new_v4());
    services
        .store
        .insert_linked_account(tessera::store::NewLinkedAccount {
            credentials: services.vault.seal(&id, &creds),
            id: id.clone(),
            environment_id: env_id.to_string(),
            provider: "hubspot".into(),
            status: "ACTIVE".into(),
            settings,
            expires_at: creds.expires_at,
        })
        .await
        .unwrap();
    id
}

/// `GET /proxy/{account}/crm/v3/objects/contacts`: the status and the JSON body.
async fn proxy(http: &reqwest::Client, gateway: &str, account: &str, key: &str) -> (u16, Value) {
    let r = http
        .get(format!(
            "{gateway}/proxy/{account}/crm/v3/objects/contacts?limit=1"
        ))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The account is refused on a call and through the proxy, `FORBIDDEN`, with a message
/// naming `names`.
async fn refused_everywhere(
    http: &reqwest::Client,
    gateway: &str,
    key: &str,
    account: &str,
    names: &[&str],
) {
    let r = http
        .post(format!("{gateway}/graphql"))
        .bearer_auth(key)
        .json(&json!({"query": CONTACTS, "variables": {"a": account}}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(code(&r), "FORBIDDEN", "{r}");
    for n in names {
        assert!(message(&r).contains(n), "{n}: {r}");
    }
    let (status, body) = proxy(http, gateway, account, key).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "FORBIDDEN", "{body}");
    for n in names {
        assert!(
            body["error"]["message"].as_str().unwrap().contains(n),
            "{n}: {body}"
        );
    }
}

#[tokio::test]
async fn without_an_allow_list_metadata_and_loopback_upstreams_are_refused_everywhere() {
    let target = Listener::start().await;
    let port = target.port;
    let g = Bare::start(AllowList::none()).await;
    let gateway = g.running.url();
    let token = json!({"accessToken": "t"});
    let mut by_name = None;
    for (base, names) in [
        (
            "http://169.254.169.254/latest/meta-data".to_string(),
            vec![
                "`169.254.169.254` is 169.254.169.254, a link-local address",
                "--allow-upstream",
            ],
        ),
        (
            format!("http://127.0.0.1:{port}/x"),
            vec!["`127.0.0.1` is 127.0.0.1, a loopback address"],
        ),
        (
            format!("http://[::ffff:127.0.0.1]:{port}/x"),
            vec!["is ::ffff:127.0.0.1, an IPv4-mapped loopback address"],
        ),
        // A name of the provider's allowed hosts that resolves to loopback: refused on the
        // address it resolves to, by the resolver the HTTP client uses.
        (
            format!("https://localhost:{port}/x"),
            vec!["`localhost` resolves to", "a loopback address"],
        ),
    ] {
        let r = g
            .gql(CONNECT, json!({"c": token, "s": {"baseUrl": base}}))
            .await;
        assert_eq!(code(&r), "BAD_USER_INPUT", "{base}: {r}");
        for n in &names {
            assert!(message(&r).contains(n), "{base}: {n}: {r}");
        }
        let account = smuggle(
            &g.running,
            &g.env_id,
            json!({"baseUrl": base}),
            token.clone(),
        )
        .await;
        refused_everywhere(&g.http, &gateway, ENV_KEY, &account, &names).await;
        if base.starts_with("https://localhost") {
            by_name = Some(account);
        }
    }
    // The token endpoint of a refresh: refused before anything is sent, as an IP literal
    // and as a name that resolves to loopback.
    let app = g
        .gql(
            "mutation { setOAuthApp(provider: \"hubspot\", clientId: \"c\", clientSecret: \"s\") { clientId } }",
            json!({}),
        )
        .await;
    assert!(app["errors"].is_null(), "{app}");
    let expired =
        json!({"accessToken": "old", "refreshToken": "r", "expiresAt": "2020-01-01T00:00:00Z"});
    for (token_url, names) in [
        (
            format!("http://127.0.0.1:{port}/token"),
            vec!["`127.0.0.1` is 127.0.0.1, a loopback address"],
        ),
        (
            format!("https://localhost:{port}/token"),
            vec!["`localhost` resolves to", "a loopback address"],
        ),
    ] {
        let settings = json!({"tokenUrl": token_url});
        let r = g.gql(CONNECT, json!({"c": expired, "s": settings})).await;
        assert_eq!(code(&r), "BAD_USER_INPUT", "{token_url}: {r}");
        let account = smuggle(&g.running, &g.env_id, settings, expired.clone()).await;
        refused_everywhere(&g.http, &gateway, ENV_KEY, &account, &names).await;
    }
    // Webhook endpoints are the customer's URLs: the same rule.
    for url in [
        "http://169.254.169.254/hook".to_string(),
        format!("http://localhost:{port}/hook"),
        format!("http://[::ffff:127.0.0.1]:{port}/hook"),
    ] {
        let r = g
            .gql(
                "mutation($u: String!) { createWebhookEndpoint(url: $u) { secret } }",
                json!({"u": url}),
            )
            .await;
        assert_eq!(code(&r), "BAD_USER_INPUT", "{url}: {r}");
        assert!(message(&r).contains("address"), "{url}: {r}");
    }
    assert_eq!(target.accepted(), 0, "nothing reached the local listener");
    // The request log has the refused attempts by their own class, not as DNS failures.
    let by_name = by_name.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let classes = loop {
        let r = g
            .gql(
                "{ linkedAccounts { id requestLog { errorClass } } }",
                json!({}),
            )
            .await;
        let mine = r["data"]["linkedAccounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == by_name.as_str())
            .unwrap()["requestLog"]
            .clone();
        if !mine.as_array().unwrap().is_empty() {
            break mine;
        }
        assert!(std::time::Instant::now() < deadline, "{r}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for c in classes.as_array().unwrap() {
        assert_eq!(c["errorClass"], "upstream_refused", "{classes}");
    }
}

#[tokio::test]
async fn an_allow_list_entry_names_the_sandbox_and_nothing_else() {
    let target = Listener::start().await;
    let t = TestGateway::start_allowing(|sandbox| AllowList::parse([sandbox]).unwrap()).await;
    let port = t.sandbox.addr().port();
    // The harness connected the sandbox account through the allow list; it answers.
    let r = t
        .gql(Some(&t.env_key), CONTACTS, json!({"a": t.account_id}))
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    let (status, body) = proxy(&t.http, &t.gateway.url(), &t.account_id, &t.env_key).await;
    assert_eq!(status, 200, "{body}");

    let before = t.sandbox_stats().await["requests"].as_u64().unwrap();
    let token = json!({"accessToken": tessera_sandbox::HUBSPOT_DEMO_TOKEN});
    for base in [
        // The same address in its IPv4-mapped IPv6 form is not the address named.
        format!("http://[::ffff:127.0.0.1]:{port}/hubspot"),
        // Another port of the named address.
        format!("http://127.0.0.1:{}/x", target.port),
        // A name of the address: the entry names the address as URLs write it.
        format!("http://localhost:{port}/hubspot"),
        "http://169.254.169.254/latest/meta-data".to_string(),
    ] {
        let r = t
            .gql(
                Some(&t.env_key),
                CONNECT,
                json!({"c": token, "s": {"baseUrl": base}}),
            )
            .await;
        assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{base}: {}", r.body);
    }
    let env_id = t
        .gateway
        .services
        .store
        .get_linked_account(&t.account_id)
        .await
        .unwrap()
        .unwrap()
        .environment_id;
    for (base, names) in [
        (
            format!("http://[::ffff:127.0.0.1]:{port}/hubspot"),
            "an IPv4-mapped loopback address",
        ),
        (
            format!("http://127.0.0.1:{}/x", target.port),
            "a loopback address",
        ),
    ] {
        let account = smuggle(&t.gateway, &env_id, json!({"baseUrl": base}), token.clone()).await;
        refused_everywhere(
            &t.http,
            &t.gateway.url(),
            &t.env_key,
            &account,
            &[names, "--allow-upstream"],
        )
        .await;
    }
    assert_eq!(
        t.sandbox_stats().await["requests"].as_u64().unwrap(),
        before,
        "no refused request reached the sandbox"
    );
    assert_eq!(target.accepted(), 0);
}

#[tokio::test]
async fn cidr_and_host_name_entries_admit_their_addresses() {
    // A CIDR block names every address in it, written as an IP or resolved from a name.
    let t = TestGateway::start_allowing(|_| AllowList::parse(["127.0.0.0/8"]).unwrap()).await;
    let r = t
        .gql(Some(&t.env_key), CONTACTS, json!({"a": t.account_id}))
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    let r = t
        .gql(
            Some(&t.env_key),
            CONNECT,
            json!({"c": {"accessToken": "t"}, "s": {"baseUrl": "http://169.254.169.254/x"}}),
        )
        .await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("link-local"),
        "{}",
        r.body
    );

    // A host name entry names the host on its port, whatever it resolves to.
    let t = TestGateway::start_allowing(|sandbox| {
        let port = sandbox.rsplit(':').next().unwrap();
        AllowList::parse([sandbox, &format!("localhost:{port}")]).unwrap()
    })
    .await;
    let port = t.sandbox.addr().port();
    let token = json!({"accessToken": tessera_sandbox::HUBSPOT_DEMO_TOKEN});
    let r = t
        .gql(
            Some(&t.env_key),
            CONNECT,
            json!({"c": token, "s": {"baseUrl": format!("http://localhost:{port}/hubspot")}}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    let by_name = r.body["data"]["connectAccount"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = t
        .gql(Some(&t.env_key), CONTACTS, json!({"a": by_name}))
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.body);
    let r = t
        .gql(
            Some(&t.env_key),
            CONNECT,
            json!({"c": token, "s": {"baseUrl": format!("http://localhost:{}/hubspot", port.wrapping_add(1))}}),
        )
        .await;
    assert_eq!(r.code(), Some("BAD_USER_INPUT"), "{}", r.body);
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("allowed only on port {port}")),
        "{}",
        r.body
    );
}

/// `tessera serve` with `args` and `env` exits at once (it must not start), and what it
/// printed on stderr.
fn serve_fails(args: &[&str], env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--database-url", &database])
        .args(args)
        .env_remove("TESSERA_ALLOW_UPSTREAMS")
        .envs(env.iter().copied())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("`tessera serve {args:?}` started instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    stderr
}

#[test]
fn a_bad_allow_upstream_entry_fails_startup_naming_it() {
    for bad in [
        "10.0.0.0/33",
        "http://127.0.0.1:4010",
        "127.0.0.1:0",
        "*.internal",
    ] {
        let stderr = serve_fails(
            &[
                "--allow-upstream",
                "127.0.0.1:4010",
                "--allow-upstream",
                bad,
            ],
            &[],
        );
        assert!(stderr.contains(&format!("`{bad}`")), "{bad}: {stderr}");
        assert!(stderr.contains("HOST[:PORT] or CIDR"), "{bad}: {stderr}");
    }
    let stderr = serve_fails(&[], &[("TESSERA_ALLOW_UPSTREAMS", "127.0.0.1:4010, nope:")]);
    assert!(stderr.contains("`nope:`"), "{stderr}");
}

#[test]
fn the_deprecated_alias_still_starts_and_warns() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &database,
        ])
        .arg("--allow-private-upstreams")
        .env_remove("TESSERA_ALLOW_UPSTREAMS")
        .env("RUST_LOG", "warn")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Ends a server that neither warns nor exits, so the test fails instead of hanging.
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let pid = child.id().to_string();
    let watchdog = std::thread::spawn(move || {
        if finished.recv_timeout(Duration::from_secs(30)).is_err() {
            let _ = std::process::Command::new("kill").arg(&pid).status();
        }
    });
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let listening = std::thread::spawn(move || {
        stdout
            .lines()
            .map_while(Result::ok)
            .any(|l| l.starts_with("Tessera listening on"))
    });
    let warned = stderr
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("--allow-private-upstreams is deprecated and unsafe"));
    let listening = warned && listening.join().unwrap();
    // Before the child is reaped, so its pid cannot have been reused.
    let _ = done.send(());
    watchdog.join().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(warned, "no deprecation warning");
    assert!(listening, "the server did not start");
}
