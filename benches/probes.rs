//! What watching 10,000 linked accounts costs: health probes at the default interval and
//! the watcher's ticks.
//!
//! The target this checks:
//!
//! > Probing 10,000 linked accounts at the default interval costs under 5% of one core and
//! > a fixed number of database queries per tick, whatever the number of accounts.
//!
//! Setup: the sandbox vendors run in a child process (`tessera sandbox`), so the vendor's
//! CPU is not counted as the gateway's. The gateway (`Gateway::build` +
//! `RunningGateway::start`, its own probe loop and watcher a day apart so only this bench
//! drives them) keeps a temporary SQLite file (or `TESSERA_BENCH_PG`'s server, a fresh
//! database). `ACCOUNTS` HubSpot accounts (10,000 unless `TESSERA_BENCH_ACCOUNTS`) are
//! linked straight in the store with the sandbox's demo credentials; the sandbox's rate
//! limit is lifted (they share one demo token, which a real vendor would never see).
//!
//! Then every account is made due and probed through `probe_due` (the probe loop's tick:
//! 200 accounts claimed, read in one query, probed 16 at a time, saved in two statements)
//! until none is left. The process's CPU time (all threads, `/proc/self/stat`) is read
//! around it, and each tick's own statements are counted (`store::counting_statements`;
//! the request log's writer and the other background tasks run apart). At
//! the default interval (300 s) 10,000 accounts are 33.3 probes a second, so the share of
//! one core is CPU seconds per probe x 33.3. Then the watcher ticks over the same accounts
//! (the first tick writes their states; the next ones are the steady cost), and its CPU
//! per tick over its 30 s interval is its share.
//!
//! Run with `cargo bench --bench probes` (a minute or two once built). It prints the
//! figures and a PASS/FAIL verdict per target; it does not fail on a missed target.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use tessera::app::{Gateway, GatewayConfig, RunningGateway};
use tessera::credentials::{Credentials, SecretKey};
use tessera::store::{NewLinkedAccount, counting_statements};

const ACCOUNTS: usize = 10_000;
const DEFAULT_INTERVAL_SECS: f64 = 300.0;
const WATCH_INTERVAL_SECS: f64 = 30.0;
const CORE_SHARE_TARGET: f64 = 0.05;
const SANDBOX_TOKEN: &str = "sandbox-hubspot-token";

/// User + system CPU seconds of this process, all threads (Linux; 100 ticks a second).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: f64 = fields.next().unwrap().parse().unwrap();
    let stime: f64 = fields.next().unwrap().parse().unwrap();
    (utime + stime) / 100.0
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `tessera sandbox` in a child process, killed when dropped.
struct SandboxProcess {
    child: std::process::Child,
    url: String,
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn sandbox_process(http: &reqwest::Client) -> SandboxProcess {
    let port = free_port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["sandbox", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while http
        .get(format!("{url}/_control/stats"))
        .send()
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "the sandbox never answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    SandboxProcess { child, url }
}

#[tokio::main]
async fn main() {
    let accounts = std::env::var("TESSERA_BENCH_ACCOUNTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ACCOUNTS);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let http = reqwest::Client::new();
    let sandbox = sandbox_process(&http).await;
    http.post(format!("{}/_control/ratelimit", sandbox.url))
        .json(&json!({"provider": "hubspot", "max": 100_000_000, "intervalMs": 1000}))
        .send()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let database_url = match std::env::var("TESSERA_BENCH_PG") {
        Ok(url) if !url.trim().is_empty() => url.trim().to_owned(),
        _ => format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("tessera.db").display()
        ),
    };
    let day = Duration::from_secs(86_400);
    let gateway = Gateway::build(GatewayConfig {
        database_url,
        providers_dir: repo.join("providers"),
        schema_dir: repo.join("schema"),
        // The sandbox is the only non-public upstream.
        upstreams: tessera::upstreams::AllowList::parse([sandbox
            .url
            .trim_start_matches("http://")])
        .unwrap(),
        secret_key: SecretKey::generate(),
        playground_key: None,
        introspection: true,
        refresh_every: None,
        public_url: None,
        probe_interval: Some(day),
        watch_interval: Some(day),
    })
    .await
    .unwrap();
    let env = gateway
        .ensure_environment("bench", "bench-probes-key")
        .await
        .unwrap();
    let gateway = RunningGateway::start(gateway, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let services = gateway.services.clone();

    println!("linking {accounts} accounts...");
    let creds = Credentials::from_input(&json!({"accessToken": SANDBOX_TOKEN})).unwrap();
    let settings = json!({"baseUrl": format!("{}/hubspot", sandbox.url)});
    let mut ids = Vec::with_capacity(accounts);
    for _ in 0..accounts {
        let id = uuid::Uuid::new_v4().to_string();
        services
            .store
            .insert_linked_account(NewLinkedAccount {
                credentials: services.vault.seal(&id, &creds),
                id: id.clone(),
                environment_id: env.id.clone(),
                provider: "hubspot".into(),
                status: "ACTIVE".into(),
                settings: settings.clone(),
                expires_at: None,
            })
            .await
            .unwrap();
        ids.push(id);
    }
    let now = chrono::Utc::now();
    let due: Vec<(String, chrono::DateTime<chrono::Utc>)> =
        ids.iter().map(|id| (id.clone(), now)).collect();
    for chunk in due.chunks(500) {
        services.store.enroll_probes(chunk).await.unwrap();
    }

    // Probes.
    let every = Duration::from_secs_f64(DEFAULT_INTERVAL_SECS);
    let (cpu0, started) = (cpu_seconds(), Instant::now());
    let mut statements = 0;
    let mut ticks = 0u64;
    let mut probed = 0usize;
    let mut per_tick = Vec::new();
    loop {
        let (n, spent) =
            counting_statements(tessera::health::probes::probe_due(&services, every)).await;
        let n = n.unwrap();
        statements += spent;
        if n == 0 {
            break;
        }
        per_tick.push(spent);
        ticks += 1;
        probed += n;
    }
    let (cpu, wall) = (cpu_seconds() - cpu0, started.elapsed());

    let healthy = services.store.failing_probes().await.unwrap().len();
    let per_probe = cpu / probed.max(1) as f64;
    let rate = accounts as f64 / DEFAULT_INTERVAL_SECS;
    let share = per_probe * rate;
    per_tick.sort_unstable();
    println!(
        "probes: {probed} accounts in {ticks} ticks, {:.1} s wall, {cpu:.2} CPU s ({:.3} ms CPU per probe), {} failing",
        wall.as_secs_f64(),
        per_probe * 1000.0,
        healthy
    );
    println!(
        "probes: statements per tick min {} max {} (total {statements}, {:.3} per account)",
        per_tick.first().copied().unwrap_or(0),
        per_tick.last().copied().unwrap_or(0),
        statements as f64 / probed.max(1) as f64
    );
    println!(
        "probes: {accounts} accounts every {DEFAULT_INTERVAL_SECS} s = {rate:.1} probes/s = {:.2}% of one core",
        share * 100.0
    );

    // The watcher.
    let mut watcher = tessera::health::watch::Watcher::new(Duration::from_secs(600));
    let mut clock = chrono::Utc::now();
    let first = Instant::now();
    watcher.tick(&services, clock).await.unwrap();
    let first_tick = first.elapsed();
    let mut cpu_ticks = Vec::new();
    let mut statement_ticks = Vec::new();
    for _ in 0..5 {
        clock += chrono::Duration::seconds(30);
        let c = cpu_seconds();
        let (tick, spent) = counting_statements(watcher.tick(&services, clock)).await;
        tick.unwrap();
        cpu_ticks.push(cpu_seconds() - c);
        statement_ticks.push(spent);
    }
    let watch_cpu = cpu_ticks.iter().sum::<f64>() / cpu_ticks.len() as f64;
    let watch_share = watch_cpu / WATCH_INTERVAL_SECS;
    println!(
        "watcher: first tick (states of {accounts} accounts written) {:.2} s; then {:.3} CPU s a tick, statements a tick {statement_ticks:?} = {:.2}% of one core at one tick per {WATCH_INTERVAL_SECS} s",
        first_tick.as_secs_f64(),
        watch_cpu,
        watch_share * 100.0
    );

    let fixed = per_tick.first() == per_tick.last();
    let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
    println!(
        "{}: probing {accounts} accounts at the default interval costs {:.2}% of one core (target < {:.0}%)",
        verdict(share < CORE_SHARE_TARGET),
        share * 100.0,
        CORE_SHARE_TARGET * 100.0
    );
    println!(
        "{}: a fixed number of statements per probe tick ({} for every tick of 200 accounts)",
        verdict(fixed),
        per_tick.last().copied().unwrap_or(0)
    );
    gateway.stop().await;
}
