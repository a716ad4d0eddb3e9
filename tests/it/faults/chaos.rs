//! Part of the fault suite: three `tessera serve` replicas on one PostgreSQL server of their
//! own, one of them killed with SIGKILL every couple of seconds (and started again) while
//! clients page through every contact of five accounts whose access tokens live two
//! seconds (so nearly every page needs a refresh), and the PostgreSQL server itself
//! restarted once (`pg_ctl restart -m immediate`: a crash and recovery) in the middle.
//!
//! Afterwards: every walk that completed returned each record exactly once (none lost, none
//! twice, though its pages came from replicas that died in between); the vendor never saw
//! two refreshes of one grant at once (no refresh ran twice) nor a refused one (no refresh
//! token burned); every account is ACTIVE and answers.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::{Value, json};
use tessera_sandbox::Sandbox;

use crate::replicas::{Replica, free_port, gql, spawn_serve};

/// A PostgreSQL server started for one test from the machine's binaries, in a temporary
/// directory, on a free port: restarting it does not disturb the tests that share the
/// machine's own server.
struct PrivatePostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    /// As root, the server runs as `postgres` (it refuses to run as root).
    as_postgres: bool,
    _dir: tempfile::TempDir,
}

impl PrivatePostgres {
    fn start() -> PrivatePostgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| {
                versions
                    .filter_map(Result::ok)
                    .map(|v| v.path().join("bin"))
                    .filter(|b| b.join("pg_ctl").exists())
                    .max()
            })
            .expect("the PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql");
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let uid = Command::new("id").arg("-u").output().unwrap();
        let as_postgres = String::from_utf8_lossy(&uid.stdout).trim() == "0";
        if as_postgres {
            let chown = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(chown.success());
        }
        let pg = PrivatePostgres {
            bin,
            data,
            port: free_port(),
            as_postgres,
            _dir: dir,
        };
        pg.run(
            "initdb",
            &[
                "-D",
                pg.data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        pg.ctl(&["start"]);
        pg
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// A crash and a restart: every connection is cut, the server recovers from its log.
    fn crash_and_restart(&self) {
        self.ctl(&["restart", "-m", "immediate"]);
    }

    fn ctl(&self, action: &[&str]) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.data.display()
        );
        let log = self.data.with_file_name("server.log");
        let mut args = vec![
            "-D",
            self.data.to_str().unwrap(),
            "-l",
            log.to_str().unwrap(),
            "-o",
            &options,
            "-w",
        ];
        args.extend_from_slice(action);
        self.run("pg_ctl", &args);
    }

    fn run(&self, program: &str, args: &[&str]) {
        let path = self.bin.join(program);
        let output = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&path)
                .args(args)
                .current_dir("/")
                .output()
        } else {
            Command::new(&path).args(args).output()
        }
        .unwrap();
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let data = self.data.to_str().unwrap_or_default();
        let mut stop = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"])
                .arg(&pg_ctl)
                .current_dir("/");
            c
        } else {
            Command::new(&pg_ctl)
        };
        let _ = stop.args(["-D", data, "-m", "immediate", "stop"]).output();
    }
}

const ACCOUNTS: usize = 5;
const CONTACTS: usize = 260;
const PAGE: &str = "query($a: ID!, $after: String) { contacts(accountId: $a, first: 100, after: $after) { edges { node { remoteId } } pageInfo { hasNextPage endCursor } } }";

async fn start(url: &str, key: &str, dir: &Path, n: usize, sandbox: &str) -> Replica {
    spawn_serve(
        url,
        key,
        dir,
        &format!("chaos-{n}"),
        &[
            ("TESSERA_ALLOW_UPSTREAMS", sandbox),
            // A claim left by a killed replica is taken over after 2 s.
            ("TESSERA_REFRESH_CLAIM_TTL_SECS", "2"),
            ("RUST_LOG", "info"),
        ],
    )
    .await
}

/// One page, asked of the live replicas in turn until one answers it: a replica killed
/// mid-request, or the database restarting, fails the attempt, not the walk.
async fn page(
    http: &reqwest::Client,
    live: &RwLock<Vec<String>>,
    key: &str,
    account: &str,
    after: Option<&str>,
    turn: &AtomicUsize,
) -> Result<Value, String> {
    let mut last = String::new();
    for _ in 0..200 {
        let url = {
            let urls = live.read().unwrap();
            urls[turn.fetch_add(1, Ordering::Relaxed) % urls.len()].clone()
        };
        let sent = http
            .post(format!("{url}/graphql"))
            .bearer_auth(key)
            .json(&json!({"query": PAGE, "variables": {"a": account, "after": after}}))
            .timeout(Duration::from_secs(20))
            .send()
            .await;
        match sent {
            Err(e) => last = e.to_string(),
            Ok(r) => match r.json::<Value>().await {
                Err(e) => last = e.to_string(),
                Ok(body) if body["errors"].is_null() => return Ok(body),
                Ok(body) => {
                    let code = body["errors"][0]["extensions"]["code"].as_str();
                    // A refusal that no retry cures is the answer.
                    if matches!(code, Some("NEEDS_REAUTH" | "BAD_USER_INPUT" | "NOT_FOUND")) {
                        return Err(body.to_string());
                    }
                    last = body.to_string();
                }
            },
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("no replica answered the page: {last}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_killed_and_postgres_restarted_under_refreshing_traffic_lose_nothing() {
    let pg = PrivatePostgres::start();
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let base = sandbox.base_url();
    let address = base.trim_start_matches("http://").to_string();
    let http = reqwest::Client::new();
    let control = |path: &str, body: Value| {
        http.post(format!("{base}/_control/{path}"))
            .json(&body)
            .send()
    };
    // Access tokens of 2 s and a token endpoint taking 150 ms: refreshes all the time, each
    // long enough for a kill to land inside it.
    control(
        "oauth",
        json!({"provider": "hubspot", "accessTokenLifetimeSeconds": 2, "tokenDelayMs": 150}),
    )
    .await
    .unwrap();
    control(
        "ratelimit",
        json!({"provider": "hubspot", "max": 10000000, "intervalMs": 10000}),
    )
    .await
    .unwrap();
    let key = tessera::credentials::SecretKey::generate().to_base64();

    let first = start(&pg.url(), &key, dir.path(), 0, &address).await;
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
    let app = gql(&http, &first.url, &env_key, "mutation { setOAuthApp(provider: \"hubspot\", clientId: \"sandbox-hubspot-client\", clientSecret: \"sandbox-hubspot-secret\") { clientId } }", json!({})).await;
    assert!(app["errors"].is_null(), "{app}");
    let mut accounts = Vec::new();
    for _ in 0..ACCOUNTS {
        let grant: Value = control(
            "oauth/grant",
            json!({"provider": "hubspot", "accessTokenLifetimeSeconds": -60}),
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        let expired = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
        let connected = gql(&http,
            &first.url,
            &env_key,
            "mutation($c: JSON!, $s: JSON) { connectAccount(provider: \"hubspot\", credentials: $c, settings: $s) { id } }",
            json!({
                "c": {"accessToken": grant["access_token"], "refreshToken": grant["refresh_token"], "expiresAt": expired},
                "s": {"baseUrl": format!("{base}/hubspot"), "tokenUrl": format!("{base}/hubspot/oauth/v1/token")}
            }),
        )
        .await;
        assert!(connected["errors"].is_null(), "{connected}");
        accounts.push(
            connected["data"]["connectAccount"]["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let mut replicas = [
        first,
        start(&pg.url(), &key, dir.path(), 1, &address).await,
        start(&pg.url(), &key, dir.path(), 2, &address).await,
    ];
    let live = Arc::new(RwLock::new(
        replicas.iter().map(|r| r.url.clone()).collect::<Vec<_>>(),
    ));

    // Clients: each walks every contact of one account after another, again and again.
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (http, live, stop, env_key, accounts) = (
                http.clone(),
                live.clone(),
                stop.clone(),
                env_key.clone(),
                accounts.clone(),
            );
            tokio::spawn(async move {
                let turn = AtomicUsize::new(c);
                let mut walks: Vec<Result<Vec<String>, String>> = Vec::new();
                let mut n = c;
                while !stop.load(Ordering::Relaxed) {
                    let account = &accounts[n % accounts.len()];
                    n += 1;
                    let mut ids = Vec::new();
                    let mut after: Option<String> = None;
                    let walk = loop {
                        match page(&http, &live, &env_key, account, after.as_deref(), &turn).await {
                            Err(e) => break Err(e),
                            Ok(body) => {
                                let conn = &body["data"]["contacts"];
                                ids.extend(
                                    conn["edges"].as_array().unwrap().iter().map(|e| {
                                        e["node"]["remoteId"].as_str().unwrap().to_string()
                                    }),
                                );
                                if !conn["pageInfo"]["hasNextPage"].as_bool().unwrap() {
                                    break Ok(std::mem::take(&mut ids));
                                }
                                after = conn["pageInfo"]["endCursor"].as_str().map(String::from);
                            }
                        }
                    };
                    walks.push(walk);
                }
                walks
            })
        })
        .collect();

    // Chaos: a replica killed every 2.5 s and another started in its place; the database
    // crashes and restarts once, half way.
    for round in 0..6usize {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        if round == 3 {
            pg.crash_and_restart();
        }
        let victim = round % replicas.len();
        let gone = replicas[victim].url.clone();
        live.write().unwrap().retain(|u| *u != gone);
        replicas[victim].kill();
        let fresh = start(&pg.url(), &key, dir.path(), 10 + round, &address).await;
        live.write().unwrap().push(fresh.url.clone());
        replicas[victim] = fresh;
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop.store(true, Ordering::Relaxed);

    let mut completed = 0;
    for client in clients {
        for walk in client.await.unwrap() {
            let ids = walk.unwrap_or_else(|e| panic!("a walk failed: {e}"));
            let distinct: BTreeSet<&String> = ids.iter().collect();
            assert_eq!(distinct.len(), ids.len(), "a record came twice");
            assert_eq!(ids.len(), CONTACTS, "records were lost");
            completed += 1;
        }
    }
    assert!(completed >= 8, "only {completed} walks completed");

    let stats: Value = http
        .get(format!("{base}/_control/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let oauth = &stats["oauth"]["hubspot"];
    assert!(
        oauth["refresh_token"].as_u64().unwrap() >= ACCOUNTS as u64 * 3,
        "the traffic was meant to refresh often: {oauth}"
    );
    eprintln!(
        "chaos: {completed} walks of {CONTACTS} contacts, 6 replicas killed, 1 database crash; the vendor's token endpoint saw {oauth}"
    );
    assert_eq!(
        oauth["overlapping_refreshes"], 0,
        "a refresh ran twice: {oauth}"
    );
    assert_eq!(oauth["failed"], 0, "a refresh was refused: {oauth}");

    // Every account ends ACTIVE (a claim a killed replica held is taken over) and answers.
    let url = replicas[0].url.clone();
    for account in &accounts {
        let r = gql(
            &http,
            &url,
            &env_key,
            "query($a: ID!) { linkedAccount(id: $a) { status statusReason } }",
            json!({"a": account}),
        )
        .await;
        let status = r["data"]["linkedAccount"]["status"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert!(
            status == "ACTIVE" || status == "REFRESHING",
            "account {account} was left {r}"
        );
        let turn = AtomicUsize::new(0);
        page(&http, &live, &env_key, account, None, &turn)
            .await
            .unwrap_or_else(|e| panic!("account {account} does not answer: {e}"));
        let r = gql(
            &http,
            &url,
            &env_key,
            "query($a: ID!) { linkedAccount(id: $a) { status statusReason } }",
            json!({"a": account}),
        )
        .await;
        assert_eq!(r["data"]["linkedAccount"]["status"], "ACTIVE", "{r}");
    }
}
