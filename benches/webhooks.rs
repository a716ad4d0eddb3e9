//! A burst of HubSpot webhook deliveries through the whole gateway, in process, on loopback:
//! how fast each delivery is acknowledged, how long until every event is processed, and how
//! many batch reads that took at the vendor.
//!
//! The target this checks:
//!
//! > A burst of 100 HubSpot deliveries of 100 events each is acknowledged with p99 under
//! > 50 ms per delivery, fully processed in under 30 s, with at most 100 batch reads at the
//! > vendor.
//!
//! Setup (as `tests/it/common.rs`): the sandbox vendors and a gateway (`Gateway::build` +
//! `RunningGateway::start`) on 127.0.0.1 port 0 with a temporary SQLite file, an admin key,
//! one environment, the platform HubSpot app (`setOAuthApp`, whose client secret signs the
//! deliveries) and the sandbox HubSpot account linked with its demo credentials, which
//! indexes its portal id for routing. The sandbox's HubSpot rate limit stays as the vendor
//! has it (110 requests per 10 s per account) unless `TESSERA_BENCH_LIFT_RATELIMIT=1`.
//!
//! One warm-up delivery of 100 events is sent and waited for (it checks the routing and the
//! records). Then, `ROUNDS` times:
//!
//! 1. 100 delivery bodies are built and signed (HubSpot v3: base64 HMAC-SHA256 of
//!    `POST` + URL + body + timestamp, keyed by the client secret) before the clock starts.
//!    Each holds 100 `contact.propertyChange` events with event ids never used before; the
//!    object ids walk the sandbox's 260 contacts, so one delivery names 100 distinct
//!    contacts and consecutive deliveries overlap.
//! 2. They are posted `IN_FLIGHT` at a time (16 unless `TESSERA_BENCH_IN_FLIGHT`), one tokio
//!    task each. A delivery's ack latency is from the send until its answer's body is read;
//!    every answer must be 200 `{"accepted": 100, "replayed": false}`.
//! 3. After the last answer, `pending_inbox()` is read every 50 ms until it is 0 (at most
//!    `PROCESS_TIMEOUT`). "processed" is the time from the first send until then.
//! 4. The sandbox's `/_control/stats` before and after give the batch reads of contacts
//!    (`POST /hubspot/crm/v3/objects/contacts/batch/read`), the gateway's metrics the 429s
//!    it met; the events written after the round's first sequence number are counted (with
//!    and without a record) from the store.
//! 5. The process's CPU time (all threads, from `/proc/self/stat`) is read at the first
//!    send, the last answer and the end, to tell waiting from working.
//!
//! Rounds are 11 s apart while the vendor's rate limit is on, so each burst meets the
//! window empty as a lone burst would (`TESSERA_BENCH_PAUSE_SECS` changes that; 0 sends
//! them back to back).
//!
//! After the verdicts, two diagnostic rounds that count for none: the first batch read is
//! held at the sandbox for 15 s (a `/_control/faults` delay, past the gateway's 10 s
//! deadline), so the processor sits on its first claim and the intake runs alone while the
//! deliveries are acknowledged: once at the same concurrency, once one delivery at a time.
//!
//! The client, the gateway, its processor and the sandbox share one runtime and the
//! machine's cores, so the latencies include the vendor's and the processor's work.
//!
//! `TESSERA_BENCH_PG=postgres://user@host:port/db` runs on PostgreSQL instead: a fresh
//! database `tessera_bench_<uuid>` is created on that server (falling back to the database
//! named, if it cannot be created) and dropped at the end (a run that panics leaves it).
//!
//! Run with `cargo bench --bench webhooks` (about two minutes once built). It prints one
//! line per round and a PASS/FAIL verdict per target; it does not fail on a missed target
//! (it is a measurement).

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use sha2::Sha256;
use tessera::app::{Gateway, GatewayConfig, RunningGateway};
use tessera::credentials::SecretKey;
use tessera::store::EventQuery;
use tessera_sandbox::Sandbox;

const ADMIN_KEY: &str = "bench-admin-key";
const CLIENT_SECRET: &str = "bench-hubspot-app-secret";

const DELIVERIES: usize = 100;
const EVENTS_PER_DELIVERY: usize = 100;
const ROUNDS: usize = 3;
const IN_FLIGHT: usize = 16;
/// How long a round may take to process before it is reported as not done.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(180);
const POLL: Duration = Duration::from_millis(50);

/// The targets.
const P99_TARGET: Duration = Duration::from_millis(50);
const PROCESSED_TARGET: Duration = Duration::from_secs(30);
const BATCH_READ_TARGET: u64 = 100;

/// The sandbox, a gateway over it, and what a caller needs.
struct Bench {
    gateway: RunningGateway,
    sandbox: Sandbox,
    http: reqwest::Client,
    env_key: String,
    account_id: String,
    portal: u64,
    contacts: Vec<u64>,
    webhook_url: String,
    /// The database, described for the report.
    backend: String,
    /// A database this run created, dropped at the end.
    created_pg: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

/// One round's figures.
struct Round {
    acks: Vec<Duration>,
    acked: Duration,
    processed: Option<Duration>,
    batch_reads: u64,
    throttled: u64,
    events: usize,
    with_record: usize,
    refused: usize,
    /// CPU seconds the whole process used (all threads) until the last ack, and after it
    /// until processed.
    cpu_acks: Option<f64>,
    cpu_processing: Option<f64>,
}

impl Bench {
    async fn start() -> Bench {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = tempfile::tempdir().unwrap();
        let (database_url, backend, created_pg) = match std::env::var("TESSERA_BENCH_PG") {
            Ok(url) if !url.trim().is_empty() => {
                let url = url.trim().to_owned();
                match fresh_postgres(&url).await {
                    Ok((fresh, name)) => {
                        let backend = format!("PostgreSQL (fresh database {name})");
                        (fresh, backend, Some((url, name)))
                    }
                    Err(e) => {
                        // The URL is not printed: it may hold a password.
                        eprintln!(
                            "cannot create a fresh database on TESSERA_BENCH_PG's server ({e}); \
                             using the database it names as it is"
                        );
                        (
                            url.clone(),
                            "PostgreSQL (the database TESSERA_BENCH_PG names)".to_owned(),
                            None,
                        )
                    }
                }
            }
            _ => (
                format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("tessera.db").display()
                ),
                "SQLite (temporary file)".to_owned(),
                None,
            ),
        };
        let sandbox = Sandbox::spawn("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let gateway = Gateway::build(GatewayConfig {
            database_url,
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
            // No proactive token refresher: nothing in the background but the processor.
            refresh_every: None,
            public_url: None,
            // Health probes a day apart: none during the run (each is a vendor call).
            probe_interval: Some(Duration::from_secs(86_400)),
            watch_interval: Some(Duration::from_secs(86_400)),
        })
        .await
        .unwrap();
        gateway.ensure_admin_key(Some(ADMIN_KEY)).await.unwrap();
        let gateway = RunningGateway::start(gateway, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let webhook_url = format!("{}/webhooks/hubspot", gateway.url());
        let mut bench = Bench {
            gateway,
            sandbox,
            http: reqwest::Client::new(),
            env_key: String::new(),
            account_id: String::new(),
            portal: 0,
            contacts: Vec::new(),
            webhook_url,
            backend,
            created_pg,
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
            .to_owned();
        let r = bench
            .gql(
                ADMIN_KEY,
                "mutation($s: String!) { setOAuthApp(provider: \"hubspot\", clientId: \"x\", clientSecret: $s) { provider } }",
                json!({"s": CLIENT_SECRET}),
            )
            .await;
        assert!(r["errors"].is_null(), "setOAuthApp: {r}");
        let demo = bench
            .sandbox
            .demo_accounts()
            .into_iter()
            .find(|a| a.provider == "hubspot")
            .unwrap();
        let r = bench
            .gql(
                &bench.env_key,
                "mutation($c: JSON!, $s: JSON) { connectAccount(provider: \"hubspot\", credentials: $c, settings: $s) { id } }",
                json!({"c": demo.credentials, "s": demo.settings}),
            )
            .await;
        bench.account_id = r["data"]["connectAccount"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("connectAccount: {r}"))
            .to_owned();

        if std::env::var("TESSERA_BENCH_LIFT_RATELIMIT").is_ok_and(|v| v == "1") {
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
        }

        let details: Value = bench
            .http
            .get(format!(
                "{}/hubspot/account-info/v3/details",
                bench.sandbox.base_url()
            ))
            .bearer_auth(tessera_sandbox::HUBSPOT_DEMO_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        bench.portal = details["portalId"]
            .as_u64()
            .unwrap_or_else(|| panic!("account-info: {details}"));
        bench.contacts = bench.contact_ids().await;
        bench
    }

    async fn gql(&self, key: &str, query: &str, variables: Value) -> Value {
        self.http
            .post(format!("{}/graphql", self.gateway.url()))
            .bearer_auth(key)
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Every contact of the sandbox HubSpot, through the gateway, 100 a page.
    async fn contact_ids(&self) -> Vec<u64> {
        let mut ids = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let r = self
                .gql(
                    &self.env_key,
                    "query($a: ID!, $after: String) { contacts(accountId: $a, first: 100, after: $after) { edges { node { remoteId } } pageInfo { hasNextPage endCursor } } }",
                    json!({"a": self.account_id, "after": after}),
                )
                .await;
            assert!(r["errors"].is_null(), "contacts: {r}");
            let conn = &r["data"]["contacts"];
            for e in conn["edges"].as_array().unwrap() {
                ids.push(
                    e["node"]["remoteId"]
                        .as_str()
                        .unwrap()
                        .parse::<u64>()
                        .unwrap(),
                );
            }
            if !conn["pageInfo"]["hasNextPage"].as_bool().unwrap() {
                return ids;
            }
            after = Some(conn["pageInfo"]["endCursor"].as_str().unwrap().to_owned());
        }
    }

    /// (batch reads of contacts the sandbox HubSpot served, 429s the gateway met there).
    async fn vendor_counts(&self) -> (u64, u64) {
        let stats: Value = self
            .http
            .get(format!("{}/_control/stats", self.sandbox.base_url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let reads = stats["byRoute"]
            .as_object()
            .unwrap_or_else(|| panic!("stats: {stats}"))
            .iter()
            .filter(|(route, _)| route.ends_with("/hubspot/crm/v3/objects/contacts/batch/read"))
            .filter_map(|(_, n)| n.as_u64())
            .sum();
        // The sandbox counts requests by route only; the gateway's metrics say which of its
        // calls were throttled.
        let metrics = self.gateway.services.monitor.metrics.render(&[]);
        let throttled = metrics
            .lines()
            .find_map(|l| l.strip_prefix("tessera_rate_limited_total{provider=\"hubspot\"} "))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or(0);
        (reads, throttled)
    }

    /// A delivery of `events` contact changes, starting at event id `first_event` and at
    /// contact number `first_contact` (wrapping around the sandbox's contacts).
    fn body(&self, first_event: u64, first_contact: usize, events: usize) -> String {
        let now = chrono::Utc::now().timestamp_millis();
        let events: Vec<Value> = (0..events)
            .map(|i| {
                let contact = self.contacts[(first_contact + i) % self.contacts.len()];
                json!({
                    "eventId": first_event + i as u64,
                    "subscriptionId": 1,
                    "portalId": self.portal,
                    "appId": 1,
                    "occurredAt": now,
                    "subscriptionType": "contact.propertyChange",
                    "attemptNumber": 0,
                    "objectId": contact,
                    "propertyName": "firstname",
                    "propertyValue": "x",
                    "changeSource": "CRM",
                })
            })
            .collect();
        serde_json::to_string(&events).unwrap()
    }

    /// `body` with its v3 signature headers, signed now.
    fn signed(&self, body: String) -> Signed {
        let ts = chrono::Utc::now().timestamp_millis().to_string();
        let mut mac = Hmac::<Sha256>::new_from_slice(CLIENT_SECRET.as_bytes()).unwrap();
        mac.update(b"POST");
        mac.update(self.webhook_url.as_bytes());
        mac.update(body.as_bytes());
        mac.update(ts.as_bytes());
        let signature =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        Signed {
            body,
            signature,
            ts,
        }
    }

    /// Waits until the inbox is empty; the time it took from `start`, or `None` on timeout.
    async fn drained(&self, start: Instant) -> Option<Duration> {
        let store = &self.gateway.services.store;
        loop {
            if store.pending_inbox().await.unwrap() == 0 {
                return Some(start.elapsed());
            }
            if start.elapsed() > PROCESS_TIMEOUT {
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The events written after sequence number `after`: (all, with a record).
    async fn events_after(&self, after: i64) -> (usize, usize) {
        let events = self
            .gateway
            .services
            .store
            .list_unified_events(&EventQuery {
                after_seq: Some(after),
                limit: 1_000_000,
                ..EventQuery::default()
            })
            .await
            .unwrap();
        let with_record = events.iter().filter(|e| e.record.is_some()).count();
        (events.len(), with_record)
    }

    /// One burst. With `hold`, the first batch read of the round is held at the vendor
    /// past the gateway's 10 s deadline, so the processor sits on one claim and the intake
    /// runs alone while the deliveries are acknowledged (its processed time and batch reads
    /// then say nothing).
    async fn round(&self, first_event: u64, in_flight: usize, hold: bool) -> Round {
        let store = &self.gateway.services.store;
        let seq_before = store.last_event_seq().await.unwrap();
        let (reads_before, throttled_before) = self.vendor_counts().await;
        if hold {
            let fault = self
                .http
                .post(format!("{}/_control/faults", self.sandbox.base_url()))
                .json(
                    &json!({"provider": "hubspot", "kind": "delay", "delayMs": 15_000,
                              "pathContains": "batch/read", "times": 1}),
                )
                .send()
                .await
                .unwrap();
            assert!(
                fault.status().is_success(),
                "{}",
                fault.text().await.unwrap()
            );
        }
        let deliveries: Vec<Signed> = (0..DELIVERIES)
            .map(|d| {
                self.signed(self.body(
                    first_event + (d * EVENTS_PER_DELIVERY) as u64,
                    d * EVENTS_PER_DELIVERY,
                    EVENTS_PER_DELIVERY,
                ))
            })
            .collect();

        let gate = Arc::new(tokio::sync::Semaphore::new(in_flight));
        let mut tasks = tokio::task::JoinSet::new();
        let cpu_start = cpu_seconds();
        let start = Instant::now();
        for d in deliveries {
            let gate = gate.clone();
            let http = self.http.clone();
            let url = self.webhook_url.clone();
            tasks.spawn(async move {
                let _permit = gate.acquire_owned().await.unwrap();
                let sent = Instant::now();
                let resp = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("X-HubSpot-Signature-v3", d.signature)
                    .header("X-HubSpot-Request-Timestamp", d.ts)
                    .body(d.body)
                    .send()
                    .await
                    .unwrap();
                let status = resp.status().as_u16();
                let bytes = resp.bytes().await.unwrap();
                let latency = sent.elapsed();
                let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                (latency, status, answer)
            });
        }
        let mut acks = Vec::with_capacity(DELIVERIES);
        let mut refused = 0;
        while let Some(done) = tasks.join_next().await {
            let (latency, status, answer) = done.unwrap();
            let ok = status == 200
                && answer["accepted"].as_u64() == Some(EVENTS_PER_DELIVERY as u64)
                && answer["replayed"] == json!(false);
            if !ok {
                refused += 1;
                eprintln!("  a delivery was answered {status}: {answer}");
            }
            acks.push(latency);
        }
        let acked = start.elapsed();
        let cpu_acked = cpu_seconds();
        let processed = self.drained(start).await;
        let cpu_end = cpu_seconds();
        let (reads_after, throttled_after) = self.vendor_counts().await;
        let (events, with_record) = self.events_after(seq_before).await;
        acks.sort();
        Round {
            acks,
            acked,
            processed,
            batch_reads: reads_after - reads_before,
            throttled: throttled_after - throttled_before,
            events,
            with_record,
            refused,
            cpu_acks: cpu_start.zip(cpu_acked).map(|(a, b)| b - a),
            cpu_processing: cpu_acked.zip(cpu_end).map(|(a, b)| b - a),
        }
    }
}

/// User + system CPU seconds of this process, all threads (Linux; 100 ticks a second).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses: utime is the 12th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

const HEADER: &str = "round              ack p50 ms  p95 ms  p99 ms  max ms  all acked s  processed s  batch reads  429s  events  with record  CPU s acks / rest";

fn print_row(label: &str, r: &Round) {
    let cpu = |c: Option<f64>| c.map_or_else(|| "?".to_owned(), |c| format!("{c:.2}"));
    println!(
        "{label:<17}  {:>10}  {:>6}  {:>6}  {:>6}  {:>11.2}  {:>11}  {:>11}  {:>4}  {:>6}  {:>11}  {} / {}",
        ms(percentile(&r.acks, 0.50)),
        ms(percentile(&r.acks, 0.95)),
        ms(percentile(&r.acks, 0.99)),
        ms(percentile(&r.acks, 1.0)),
        r.acked.as_secs_f64(),
        r.processed.map_or_else(
            || format!(">{}", PROCESS_TIMEOUT.as_secs()),
            |d| format!("{:.2}", d.as_secs_f64())
        ),
        r.batch_reads,
        r.throttled,
        r.events,
        r.with_record,
        cpu(r.cpu_acks),
        cpu(r.cpu_processing),
    );
    if r.refused > 0 {
        println!(
            "{:<17}  {} deliveries were not accepted in full",
            "", r.refused
        );
    }
}

struct Signed {
    body: String,
    signature: String,
    ts: String,
}

/// Nearest-rank percentile of sorted `xs`.
fn percentile(xs: &[Duration], q: f64) -> Duration {
    if xs.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * xs.len() as f64).ceil() as usize).clamp(1, xs.len());
    xs[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// Creates `tessera_bench_<uuid>` on the server of `url`; its URL and name.
async fn fresh_postgres(url: &str) -> Result<(String, String), String> {
    let mut options = sea_orm::ConnectOptions::new(url);
    options.acquire_timeout(Duration::from_secs(5));
    let admin = Database::connect(options)
        .await
        .map_err(|e| e.to_string())?;
    let name = format!("tessera_bench_{}", uuid::Uuid::new_v4().simple());
    // Identifiers cannot be bound; the name is ours and only [a-z0-9_].
    let created = admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .map_err(|e| e.to_string());
    let _ = admin.close().await;
    created?;
    Ok((with_database(url, &name), name))
}

/// Drops the database this run created (best effort).
async fn drop_postgres(url: &str, name: &str) {
    if let Ok(admin) = Database::connect(url).await {
        // FORCE ends the sessions the gateway's pool may still hold.
        if let Err(e) = admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
        {
            eprintln!("could not drop {name}: {e}");
        }
        let _ = admin.close().await;
    }
}

/// `url` with its database name replaced by `name`, its query kept.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let server = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

fn verdict(name: &str, pass: bool, detail: String) {
    println!("{}  {name}: {detail}", if pass { "PASS" } else { "FAIL" });
}

fn main() {
    // `cargo bench` passes `--bench`; there is nothing to filter here.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let in_flight = std::env::var("TESSERA_BENCH_IN_FLIGHT")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(IN_FLIGHT);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut bench = Bench::start().await;
        let lifted = std::env::var("TESSERA_BENCH_LIFT_RATELIMIT").is_ok_and(|v| v == "1");
        // Between rounds: long enough for the vendor's 10 s window to empty, so each burst
        // meets the limit as a lone burst would.
        let pause = Duration::from_secs(
            std::env::var("TESSERA_BENCH_PAUSE_SECS")
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(if lifted { 0 } else { 11 }),
        );
        println!(
            "webhooks: {DELIVERIES} HubSpot deliveries x {EVENTS_PER_DELIVERY} events, {in_flight} in flight, \
             {ROUNDS} rounds {} s apart; {}; {} sandbox contacts; vendor rate limit {}; {} cores",
            pause.as_secs(),
            bench.backend,
            bench.contacts.len(),
            if lifted { "lifted" } else { "as the vendor has it (110 per 10 s)" },
            std::thread::available_parallelism().map_or(0, |n| n.get()),
        );

        // Warm-up: one delivery, processed and checked, before anything is timed.
        let seq = bench.gateway.services.store.last_event_seq().await.unwrap();
        let warm = bench.signed(bench.body(1, 0, EVENTS_PER_DELIVERY));
        let resp = bench
            .http
            .post(&bench.webhook_url)
            .header("content-type", "application/json")
            .header("X-HubSpot-Signature-v3", warm.signature)
            .header("X-HubSpot-Request-Timestamp", warm.ts)
            .body(warm.body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let answer: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(
            status == 200 && answer["accepted"] == json!(EVENTS_PER_DELIVERY),
            "warm-up delivery: {status} {answer}"
        );
        bench
            .drained(Instant::now())
            .await
            .expect("the warm-up delivery was not processed");
        let (events, with_record) = bench.events_after(seq).await;
        assert_eq!(events, EVENTS_PER_DELIVERY, "warm-up events");
        assert_eq!(with_record, EVENTS_PER_DELIVERY, "warm-up records");

        println!("{HEADER}");
        let mut rounds = Vec::new();
        for r in 0..ROUNDS {
            if r > 0 && pause > Duration::ZERO {
                tokio::time::sleep(pause).await;
            }
            let first_event = 1_000_000 * (r as u64 + 1);
            let round = bench.round(first_event, in_flight, false).await;
            print_row(&format!("{}", r + 1), &round);
            rounds.push(round);
        }

        let worst_p99 = rounds
            .iter()
            .map(|r| percentile(&r.acks, 0.99))
            .max()
            .unwrap_or_default();
        let worst_processed = rounds.iter().map(|r| r.processed).max_by(|a, b| match (a, b) {
            (None, None) => std::cmp::Ordering::Equal,
            (None, _) => std::cmp::Ordering::Greater,
            (_, None) => std::cmp::Ordering::Less,
            (Some(a), Some(b)) => a.cmp(b),
        });
        let worst_reads = rounds.iter().map(|r| r.batch_reads).max().unwrap_or(0);
        let all_events = rounds
            .iter()
            .all(|r| r.events == DELIVERIES * EVENTS_PER_DELIVERY && r.refused == 0);
        verdict(
            "ack p99 < 50 ms",
            worst_p99 < P99_TARGET,
            format!("worst round {} ms", ms(worst_p99)),
        );
        let processed = worst_processed.flatten();
        verdict(
            "processed < 30 s",
            processed.is_some_and(|d| d < PROCESSED_TARGET),
            match processed {
                Some(d) => format!("worst round {:.2} s", d.as_secs_f64()),
                None => format!("a round was not done after {} s", PROCESS_TIMEOUT.as_secs()),
            },
        );
        verdict(
            "batch reads <= 100",
            worst_reads <= BATCH_READ_TARGET,
            format!("worst round {worst_reads}"),
        );
        verdict(
            "every event stored",
            all_events,
            format!(
                "{} per round",
                rounds
                    .iter()
                    .map(|r| r.events.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );

        // Diagnostics, outside the verdicts: the intake with the processor held back (see
        // `Bench::round`), at the same concurrency and one at a time.
        println!("diagnostics: the intake alone (the processor held on one claim by a 15 s vendor delay)");
        println!("{HEADER}");
        for (i, n) in [in_flight, 1].into_iter().enumerate() {
            tokio::time::sleep(pause).await;
            let first_event = 1_000_000 * (ROUNDS as u64 + 1 + i as u64);
            let round = bench.round(first_event, n, true).await;
            print_row(&format!("alone, {n} in flight"), &round);
        }

        let created = bench.created_pg.take();
        bench.gateway.stop().await;
        drop(bench.sandbox);
        if let Some((url, name)) = created {
            drop_postgres(&url, &name).await;
        }
    });
}
