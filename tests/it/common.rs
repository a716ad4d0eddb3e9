//! The harness every end-to-end test uses: the sandbox vendors and a gateway on loopback
//! (port 0), a temporary SQLite file, an admin key, one environment and one linked account
//! to the sandbox HubSpot, created through the public GraphQL API. The gateway may call no
//! loopback or private address but the sandbox's (`--allow-upstream 127.0.0.1:PORT`), unless
//! a test asks for every loopback port (`start_on_loopback`); replicas on one database run
//! with the deprecated `--allow-private-upstreams`.

use std::path::{Path, PathBuf};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tessera::app::{Gateway, GatewayConfig, RunningGateway};
use tessera::credentials::SecretKey;
use tessera::upstreams::AllowList;
use tessera_sandbox::Sandbox;

pub const ADMIN_KEY: &str = "admin-test-key";

pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

pub struct TestGateway {
    pub gateway: RunningGateway,
    pub sandbox: Sandbox,
    pub http: reqwest::Client,
    /// The first environment's API key.
    pub env_key: String,
    /// Its linked account to the sandbox HubSpot.
    pub account_id: String,
    /// Holds the SQLite file; dropped with the harness.
    pub _dir: tempfile::TempDir,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The `extensions.code` of the first error.
    pub fn code(&self) -> Option<&str> {
        self.body["errors"][0]["extensions"]["code"].as_str()
    }
}

impl TestGateway {
    pub async fn start() -> TestGateway {
        Self::start_with(&repo_path("schema"), &repo_path("providers")).await
    }

    pub async fn start_with(schema: &Path, providers: &Path) -> TestGateway {
        Self::start_full(schema, providers, None).await
    }

    /// With the proactive refresher running every `refresh_every`.
    pub async fn start_refreshing(refresh_every: std::time::Duration) -> TestGateway {
        Self::start_full(
            &repo_path("schema"),
            &repo_path("providers"),
            Some(refresh_every),
        )
        .await
    }

    /// The gateway may call only the sandbox's address (`--allow-upstream 127.0.0.1:PORT`).
    pub async fn start_full(
        schema: &Path,
        providers: &Path,
        refresh_every: Option<std::time::Duration>,
    ) -> TestGateway {
        let only_sandbox = |address: &str| AllowList::parse([address]).unwrap();
        Self::start_custom(schema, providers, refresh_every, only_sandbox).await
    }

    async fn start_custom(
        schema: &Path,
        providers: &Path,
        refresh_every: Option<std::time::Duration>,
        upstreams: impl FnOnce(&str) -> AllowList,
    ) -> TestGateway {
        let sandbox = Sandbox::spawn("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let address = sandbox.base_url().trim_start_matches("http://").to_string();
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("tessera.db").display()
        );
        let gateway = Self::replica_allowing(
            &url,
            &SecretKey::generate(),
            schema,
            providers,
            refresh_every,
            upstreams(&address),
        )
        .await;
        Self::with_sandbox(gateway, sandbox, dir).await
    }

    /// A gateway on PostgreSQL `url` with `key`: start several on one database and they are
    /// replicas of one deployment.
    pub async fn start_on(url: &str, key: &SecretKey) -> TestGateway {
        let gateway = Self::replica(
            url,
            key,
            &repo_path("schema"),
            &repo_path("providers"),
            None,
        )
        .await;
        Self::around(gateway, tempfile::tempdir().unwrap()).await
    }

    /// Two replicas of one deployment on a fresh PostgreSQL database: the first with the
    /// usual environment and HubSpot account, the second a bare gateway beside it. Returns
    /// the database URL too, to drop it at the end.
    pub async fn two_replicas() -> (String, TestGateway, RunningGateway) {
        let url = crate::store::fresh_postgres_url().await;
        let key = SecretKey::generate();
        let a = Self::start_on(&url, &key).await;
        let b = Self::replica(
            &url,
            &key,
            &repo_path("schema"),
            &repo_path("providers"),
            None,
        )
        .await;
        (url, a, b)
    }

    /// For tests whose vendors or webhook endpoints listen on loopback ports of their own:
    /// every loopback address is allowed (`--allow-upstream 127.0.0.0/8`).
    pub async fn start_on_loopback() -> TestGateway {
        Self::start_allowing(|_| AllowList::parse(["127.0.0.0/8"]).unwrap()).await
    }

    /// With `upstreams(the sandbox's address)` as the upstream allow list.
    pub async fn start_allowing(upstreams: impl FnOnce(&str) -> AllowList) -> TestGateway {
        Self::start_custom(
            &repo_path("schema"),
            &repo_path("providers"),
            None,
            upstreams,
        )
        .await
    }

    /// Another gateway on the same database and key as `self` (its own sandbox, no account).
    /// It may call loopback addresses only (`--allow-upstream 127.0.0.0/8`): the accounts in
    /// the database point at another gateway's sandbox, on a port it cannot know.
    pub async fn replica(
        url: &str,
        key: &SecretKey,
        schema: &Path,
        providers: &Path,
        refresh_every: Option<std::time::Duration>,
    ) -> RunningGateway {
        let upstreams = AllowList::parse(["127.0.0.0/8"]).unwrap();
        Self::replica_allowing(url, key, schema, providers, refresh_every, upstreams).await
    }

    async fn replica_allowing(
        url: &str,
        key: &SecretKey,
        schema: &Path,
        providers: &Path,
        refresh_every: Option<std::time::Duration>,
        upstreams: AllowList,
    ) -> RunningGateway {
        let gateway = Gateway::build(GatewayConfig {
            database_url: url.to_string(),
            providers_dir: providers.to_path_buf(),
            schema_dir: schema.to_path_buf(),
            upstreams,
            secret_key: key.clone(),
            playground_key: None,
            introspection: true,
            refresh_every,
            public_url: None,
            probe_interval: None,
            // Tests tick the watcher themselves, on their own clock.
            watch_interval: Some(std::time::Duration::from_secs(86_400)),
        })
        .await
        .unwrap();
        gateway.ensure_admin_key(Some(ADMIN_KEY)).await.unwrap();
        RunningGateway::start(gateway, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap()
    }

    async fn around(gateway: RunningGateway, dir: tempfile::TempDir) -> TestGateway {
        let sandbox = Sandbox::spawn("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        Self::with_sandbox(gateway, sandbox, dir).await
    }

    async fn with_sandbox(
        gateway: RunningGateway,
        sandbox: Sandbox,
        dir: tempfile::TempDir,
    ) -> TestGateway {
        let mut t = TestGateway {
            gateway,
            sandbox,
            http: reqwest::Client::new(),
            env_key: String::new(),
            account_id: String::new(),
            _dir: dir,
        };
        t.env_key = t.create_environment("acme").await;
        t.account_id = t.connect_sandbox(&t.env_key.clone(), "hubspot").await;
        t
    }

    pub async fn create_environment(&self, name: &str) -> String {
        let r = self
            .gql(Some(ADMIN_KEY), "mutation($n: String!) { createEnvironment(name: $n) { environment { id name } apiKey } }", json!({"n": name}))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["data"]["createEnvironment"]["apiKey"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Connects the sandbox account of `provider` to the environment of `key`.
    pub async fn connect_sandbox(&self, key: &str, provider: &str) -> String {
        let demo = self
            .sandbox
            .demo_accounts()
            .into_iter()
            .find(|a| a.provider == provider)
            .unwrap();
        let r = self
            .gql(
                Some(key),
                "mutation($p: String!, $c: JSON!, $s: JSON) { connectAccount(provider: $p, credentials: $c, settings: $s) { id provider status } }",
                json!({"p": provider, "c": demo.credentials, "s": demo.settings}),
            )
            .await;
        assert!(r.body["errors"].is_null(), "{}", r.body);
        r.body["data"]["connectAccount"]["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// What the engine needs to call the sandbox `provider` directly, as `account_id`.
    pub fn sandbox_handle(
        &self,
        provider: &str,
        account_id: &str,
    ) -> tessera::engine::AccountHandle {
        let demo = self
            .sandbox
            .demo_accounts()
            .into_iter()
            .find(|a| a.provider == provider)
            .unwrap();
        let model = self
            .gateway
            .services
            .providers
            .get(provider)
            .unwrap()
            .clone();
        tessera::engine::AccountHandle {
            id: account_id.to_string(),
            base_url: model
                .resolve_base_url(&demo.settings, &self.gateway.services.upstreams)
                .unwrap(),
            provider: model,
            token: tessera::secret::Secret::new(
                demo.credentials["accessToken"]
                    .as_str()
                    .or(demo.credentials["apiKey"].as_str())
                    .unwrap(),
            ),
            settings: demo.settings.clone(),
            spend: Default::default(),
        }
    }

    pub fn url(&self) -> String {
        format!("{}/graphql", self.gateway.url())
    }

    pub async fn gql(&self, key: Option<&str>, query: &str, variables: Value) -> Reply {
        let mut req = self
            .http
            .post(self.url())
            .json(&json!({"query": query, "variables": variables}));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)));
        Reply {
            status,
            headers,
            body,
        }
    }

    /// Every contact of the account, walking `after` cursors `first` at a time.
    pub async fn all_contact_ids(&self, first: usize) -> Vec<String> {
        let mut ids = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..1000 {
            let r = self
                .gql(
                    Some(&self.env_key),
                    "query($a: ID!, $f: Int, $after: String) { contacts(accountId: $a, first: $f, after: $after) { edges { cursor node { remoteId } } pageInfo { hasNextPage endCursor } } }",
                    json!({"a": self.account_id, "f": first, "after": after}),
                )
                .await;
            assert!(r.body["errors"].is_null(), "{}", r.body);
            let conn = &r.body["data"]["contacts"];
            let edges = conn["edges"].as_array().unwrap();
            assert!(edges.len() <= first);
            ids.extend(
                edges
                    .iter()
                    .map(|e| e["node"]["remoteId"].as_str().unwrap().to_string()),
            );
            if !conn["pageInfo"]["hasNextPage"].as_bool().unwrap() {
                return ids;
            }
            assert_eq!(
                edges.len(),
                first,
                "a page before the last one must be full"
            );
            after = Some(conn["pageInfo"]["endCursor"].as_str().unwrap().to_string());
        }
        panic!("pagination did not end");
    }

    pub async fn sandbox_stats(&self) -> Value {
        self.http
            .get(format!("{}/_control/stats", self.sandbox.base_url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// Runs the `tessera` binary built for these tests.
pub fn tessera(args: &[&str], stdin: Option<&str>) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

/// Copies a directory (flat) into `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        } else if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        }
    }
}

/// Polls `condition` every 20 ms until it holds; fails the test after 30 s naming `what`.
pub async fn wait_for<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !condition().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
