//! One `POST /graphql` round trip through the whole gateway, in process, on loopback.
//!
//! Starts what the integration tests start (`tests/it/common.rs`): the sandbox vendors and a
//! gateway (`Gateway::build` + `RunningGateway::start`) on 127.0.0.1 port 0 with a temporary
//! SQLite file, then creates an environment and links the sandbox HubSpot account through the
//! GraphQL API. The sandbox's HubSpot rate limit is lifted (`POST /_control/ratelimit`) so
//! the limiter is not what is measured. A reqwest client on the same tokio runtime then sends:
//!
//! - `list100`: `contacts(accountId, first: 100) { edges { node { id firstName lastName emails { address } } } }`
//! - `list100_company`: the same plus `company { name }` in `node`
//! - `single`: `contact(accountId, remoteId) { id firstName }`
//!
//! and, for scale, the upstream calls alone (`sandbox_round_trip`: the list page and the single
//! get the gateway makes, sent straight to the sandbox with the same client).
//!
//! Each request is checked once before it is timed (no `errors`, 100 edges, companies named),
//! and the sandbox's request counter over that one request is printed as "upstream calls".
//! The client, the gateway and the sandbox share the runtime and the machine's cores, so the
//! times are the latency of one request with nothing else in flight, sandbox work included.
//!
//! Run with `cargo bench --bench resolver` (about a minute).

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use tessera::app::{Gateway, GatewayConfig, RunningGateway};
use tessera::credentials::SecretKey;
use tessera_sandbox::Sandbox;

const ADMIN_KEY: &str = "bench-admin-key";

const LIST: &str = "query($a: ID!) { contacts(accountId: $a, first: 100) { edges { node { id firstName lastName emails { address } } } } }";
const LIST_COMPANY: &str = "query($a: ID!) { contacts(accountId: $a, first: 100) { edges { node { id firstName lastName emails { address } company { name } } } } }";
const SINGLE: &str =
    "query($a: ID!, $r: ID!) { contact(accountId: $a, remoteId: $r) { id firstName } }";

/// The sandbox, a gateway over it, and what a caller needs.
struct Bench {
    gateway: RunningGateway,
    sandbox: Sandbox,
    http: reqwest::Client,
    env_key: String,
    account_id: String,
    _dir: tempfile::TempDir,
}

impl Bench {
    async fn start() -> Bench {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let sandbox = Sandbox::spawn("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let gateway = Gateway::build(GatewayConfig {
            database_url: format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("tessera.db").display()
            ),
            providers_dir: repo.join("providers"),
            schema_dir: repo.join("schema"),
            // Only the sandbox, as the demo names it.
            upstreams: tessera::upstreams::AllowList::parse([sandbox
                .base_url()
                .trim_start_matches("http://")])
            .unwrap(),
            secret_key: SecretKey::generate(),
            playground_key: None,
            introspection: true,
            // No proactive token refresher: nothing in the background while timing.
            refresh_every: None,
            public_url: None,
            probe_interval: None,
            watch_interval: None,
        })
        .await
        .unwrap();
        gateway.ensure_admin_key(Some(ADMIN_KEY)).await.unwrap();
        let gateway = RunningGateway::start(gateway, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let mut bench = Bench {
            gateway,
            sandbox,
            http: reqwest::Client::new(),
            env_key: String::new(),
            account_id: String::new(),
            _dir: dir,
        };
        let r = bench
            .gql(
                ADMIN_KEY,
                "mutation { createEnvironment(name: \"bench\") { apiKey } }",
                json!({}),
            )
            .await;
        bench.env_key = r["data"]["createEnvironment"]["apiKey"]
            .as_str()
            .unwrap_or_else(|| panic!("createEnvironment: {r}"))
            .to_string();
        let demo = bench
            .sandbox
            .demo_accounts()
            .into_iter()
            .find(|a| a.provider == "hubspot")
            .unwrap();
        let r = bench
            .gql(
                &bench.env_key.clone(),
                "mutation($c: JSON!, $s: JSON) { connectAccount(provider: \"hubspot\", credentials: $c, settings: $s) { id } }",
                json!({"c": demo.credentials, "s": demo.settings}),
            )
            .await;
        bench.account_id = r["data"]["connectAccount"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("connectAccount: {r}"))
            .to_string();
        let lifted = bench
            .http
            .post(format!("{}/_control/ratelimit", bench.sandbox.base_url()))
            .json(&json!({"provider": "hubspot", "max": 100_000_000, "intervalMs": 1000}))
            .send()
            .await
            .unwrap();
        assert!(
            lifted.status().is_success(),
            "{}",
            lifted.text().await.unwrap()
        );
        bench
    }

    fn url(&self) -> String {
        format!("{}/graphql", self.gateway.url())
    }

    async fn gql(&self, key: &str, query: &str, variables: Value) -> Value {
        self.http
            .post(self.url())
            .bearer_auth(key)
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn upstream_requests(&self) -> u64 {
        let stats: Value = self
            .http
            .get(format!("{}/_control/stats", self.sandbox.base_url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        stats["requests"].as_u64().unwrap()
    }

    /// The request body, serialised once.
    fn body(&self, query: &str, variables: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({"query": query, "variables": variables})).unwrap()
    }

    /// One timed GET to the sandbox HubSpot itself, with its token: the upstream's share.
    async fn upstream(&self, url: &str) -> usize {
        let resp = self
            .http
            .get(url)
            .bearer_auth(tessera_sandbox::HUBSPOT_DEMO_TOKEN)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success());
        resp.bytes().await.unwrap().len()
    }

    /// One timed round trip: send, read the whole body.
    async fn send(&self, url: &str, body: &[u8]) -> usize {
        let resp = self
            .http
            .post(url)
            .bearer_auth(&self.env_key)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success());
        resp.bytes().await.unwrap().len()
    }

    /// Sends `body` once, checks the answer, and says how many upstream calls it took.
    async fn check(&self, name: &str, body: &[u8], check: impl Fn(&Value)) {
        let before = self.upstream_requests().await;
        let resp = self
            .http
            .post(self.url())
            .bearer_auth(&self.env_key)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let bytes = resp.bytes().await.unwrap();
        let after = self.upstream_requests().await;
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        assert!(status.is_success(), "{name}: HTTP {status}: {value}");
        assert!(value["errors"].is_null(), "{name}: {value}");
        check(&value);
        // /_control calls are not counted, only vendor routes.
        eprintln!(
            "{name}: {} response bytes, {} upstream calls",
            bytes.len(),
            after - before
        );
    }
}

fn resolver(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let bench = rt.block_on(Bench::start());
    let url = bench.url();
    let account = bench.account_id.clone();

    let list = bench.body(LIST, json!({"a": account}));
    let list_company = bench.body(LIST_COMPANY, json!({"a": account}));
    let first_id = rt.block_on(async {
        let r = bench
            .gql(
                &bench.env_key,
                "query($a: ID!) { contacts(accountId: $a, first: 1) { edges { node { remoteId } } } }",
                json!({"a": account}),
            )
            .await;
        r["data"]["contacts"]["edges"][0]["node"]["remoteId"]
            .as_str()
            .unwrap_or_else(|| panic!("{r}"))
            .to_string()
    });
    let single = bench.body(SINGLE, json!({"a": account, "r": first_id}));

    rt.block_on(async {
        let edges = |v: &Value| v["data"]["contacts"]["edges"].as_array().unwrap().clone();
        bench
            .check("list100", &list, |v| assert_eq!(edges(v).len(), 100))
            .await;
        bench
            .check("list100_company", &list_company, |v| {
                let edges = edges(v);
                assert_eq!(edges.len(), 100);
                let named = edges
                    .iter()
                    .filter(|e| e["node"]["company"]["name"].is_string())
                    .count();
                assert!(named > 0, "no contact has a company: {v}");
                eprintln!("list100_company: {named} of 100 contacts have a company");
            })
            .await;
        bench
            .check("single", &single, |v| {
                assert!(v["data"]["contact"]["firstName"].is_string(), "{v}")
            })
            .await;
    });

    let mut group = c.benchmark_group("graphql_round_trip");
    for (name, body) in [
        ("list100", &list),
        ("list100_company", &list_company),
        ("single", &single),
    ] {
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| bench.send(&url, body));
        });
    }
    group.finish();

    // The upstream calls alone, as the gateway makes them for `list100` and `single`.
    let props = "firstname,lastname,email,phone,jobtitle,associatedcompanyid,customer_tier";
    let base = format!(
        "{}/hubspot/crm/v3/objects/contacts",
        bench.sandbox.base_url()
    );
    let upstream_list = format!("{base}?limit=100&properties={props}&archived=false");
    let upstream_get = format!("{base}/{first_id}?properties={props}");
    let mut group = c.benchmark_group("sandbox_round_trip");
    group.bench_function("list100", |b| {
        b.to_async(&rt).iter(|| bench.upstream(&upstream_list));
    });
    group.bench_function("get", |b| {
        b.to_async(&rt).iter(|| bench.upstream(&upstream_get));
    });
    group.finish();

    rt.block_on(async {
        bench.gateway.stop().await;
    });
    drop(bench.sandbox);
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5))
}

criterion_group! {
    name = benches;
    config = config();
    targets = resolver
}
criterion_main!(benches);
