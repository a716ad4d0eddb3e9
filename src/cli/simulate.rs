//! `tessera simulate`: a scripted day against the sandbox vendors, on a virtual clock, to
//! show how fast each symptom of the diagnostic checklist is caught and what `diagnose`
//! says about it, and that a healthy day with ordinary noise raises nothing.
//!
//! Everything real but the clock: the gateway and the sandbox run in this process and talk
//! HTTP on loopback; a customer's sync job lists contacts through GraphQL, probes and
//! reconciliation run through the engine, the vendor's webhooks arrive at the intake. The
//! watcher and the schedule run on a virtual clock that moves a minute per step, so a day
//! takes seconds to minutes, not a day. The script (which accounts, which faults at which
//! times, through the sandbox's control API) comes from the sandbox, which knows its
//! vendors; this runner knows none. Each symptom gets its own linked account (disabled
//! when its scene ends) so one scene's alerts do not mask another's.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::app::{Gateway, GatewayConfig, RunningGateway};
use crate::credentials::Credentials;
use crate::health::watch::Watcher;
use crate::services::Services;
use crate::store::{NewLinkedAccount, OAuthApp};
use tessera_sandbox::Sandbox;
use tessera_sandbox::simulation::{Action, Cast, Control, Scene, Script};

#[derive(clap::Args, Debug, Clone)]
pub struct SimulateArgs {
    #[arg(long, default_value = "providers")]
    pub providers: std::path::PathBuf,
    #[arg(long, default_value = "schema")]
    pub schema: std::path::PathBuf,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Virtual hours of the healthy day.
    #[arg(long, default_value_t = 24)]
    pub healthy_hours: i64,
}

/// How one injected symptom went.
#[derive(Debug, Clone)]
pub struct SceneResult {
    /// The checklist's symptom.
    pub symptom: &'static str,
    pub expected: &'static str,
    /// The kind that opened first on the scene's account after the fault, if any.
    pub detected: Option<String>,
    /// Virtual time from the fault to the alert.
    pub detected_after: Option<chrono::Duration>,
    /// Alerts of the account opened before the fault (false alarms of the warm-up).
    pub early_alerts: Vec<String>,
    /// The alert's evidence.
    pub evidence: Value,
    /// What `diagnose` said once the alert was open.
    pub diagnosis: String,
    pub first_response: String,
    pub escalate: bool,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub scenes: Vec<SceneResult>,
    /// Alerts opened during the healthy day (each a false alarm), as `KIND (account)`.
    pub healthy_day_alerts: Vec<String>,
    pub healthy_day_hours: i64,
    pub real_time: Duration,
}

impl Report {
    pub fn table(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "{:<44} {:<28} {:<28} {:>9}  {:<28} {}\n",
            "symptom", "expected", "detected", "after", "diagnose", "escalate"
        ));
        for s in &self.scenes {
            out.push_str(&format!(
                "{:<44} {:<28} {:<28} {:>9}  {:<28} {}\n",
                s.symptom,
                s.expected,
                s.detected.as_deref().unwrap_or("NOT DETECTED"),
                s.detected_after
                    .map(|d| format!("{:.1} min", d.num_seconds() as f64 / 60.0))
                    .unwrap_or_else(|| "-".into()),
                s.diagnosis,
                if s.escalate { "yes" } else { "no" },
            ));
        }
        out.push_str(&format!(
            "\nhealthy day ({} h; one 503, one slow answer, a quiet night): {} false alert(s){}\n",
            self.healthy_day_hours,
            self.healthy_day_alerts.len(),
            if self.healthy_day_alerts.is_empty() {
                String::new()
            } else {
                format!(": {}", self.healthy_day_alerts.join(", "))
            }
        ));
        out.push_str(&format!(
            "simulated in {:.1} s of real time\n",
            self.real_time.as_secs_f64()
        ));
        out
    }

    pub fn json(&self) -> Value {
        json!({
            "scenes": self.scenes.iter().map(|s| json!({
                "symptom": s.symptom,
                "expected": s.expected,
                "detected": s.detected,
                "detectedAfterSeconds": s.detected_after.map(|d| d.num_seconds()),
                "earlyAlerts": s.early_alerts,
                "evidence": s.evidence,
                "diagnosis": s.diagnosis,
                "firstResponse": s.first_response,
                "escalate": s.escalate,
            })).collect::<Vec<_>>(),
            "healthyDay": {"hours": self.healthy_day_hours, "falseAlerts": self.healthy_day_alerts},
            "realSeconds": self.real_time.as_secs_f64(),
        })
    }
}

pub async fn run(args: SimulateArgs) -> Result<(), Box<dyn std::error::Error>> {
    let report = simulate(
        &args.providers,
        &args.schema,
        args.healthy_hours.clamp(1, 24 * 7),
    )
    .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.json())?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

type Failure = Box<dyn std::error::Error>;

/// Runs the healthy day (`healthy_hours` virtual hours) and then one scene per symptom.
pub async fn simulate(
    providers: &std::path::Path,
    schema: &std::path::Path,
    healthy_hours: i64,
) -> Result<Report, Failure> {
    let started = Instant::now();
    let script = tessera_sandbox::simulation::script();
    let mut sim = Sim::start(providers, schema, &script).await?;
    let healthy_day_alerts = sim.healthy_day(&script, healthy_hours).await?;
    let mut scenes = Vec::new();
    for scene in &script.scenes {
        scenes.push(sim.play(&script, scene).await?);
    }
    sim.stop().await;
    Ok(Report {
        scenes,
        healthy_day_alerts,
        healthy_day_hours: healthy_hours,
        real_time: started.elapsed(),
    })
}

/// A linked account the script keeps busy.
struct Busy {
    id: String,
    provider: &'static str,
    /// Where the vendor is told to change a record (each day-time minute; it sends the
    /// webhook).
    touches: Option<String>,
    /// Webhook deliveries the gateway should have logged so far.
    delivered: usize,
    /// The records changed in turn (a change a second to one record would look like one).
    records: Vec<String>,
}

struct Sim {
    sandbox: Sandbox,
    gateway: RunningGateway,
    http: reqwest::Client,
    env_id: String,
    key: String,
    watcher: Watcher,
    now: DateTime<Utc>,
    minute: i64,
    /// Minutes between the customer's syncs now.
    sync_every: i64,
    busy: Vec<Busy>,
    /// A forwarder in front of the sandbox, for the scene whose network breaks.
    relay: Relay,
    /// The refresh token the revocation scene revokes.
    revoke: Option<String>,
    /// The vendor drops its webhooks: deliveries are not waited for.
    stopped_webhooks: bool,
    _dir: TempDir,
}

/// A directory removed when dropped.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Minutes between the customer's background syncs during a scene (a scene's detection
/// time is bounded by how often something reads)...
const SYNC_EVERY: i64 = 2;
/// ...and during the healthy day (an ordinary sync schedule).
const HEALTHY_SYNC_EVERY: i64 = 5;
/// Minutes between health probes of each account (as `TESSERA_PROBE_INTERVAL_SECS=300`).
const PROBE_EVERY: i64 = 5;
/// Minutes between reconciliation passes of each account with webhooks.
const RECONCILE_EVERY: i64 = 5;
/// Warm-up before a fault: enough listings for the baselines.
const WARM_UP: i64 = 30;
/// How long a scene waits for its alert.
const DETECT_WITHIN: i64 = 30;

impl Sim {
    async fn start(
        providers: &std::path::Path,
        schema: &std::path::Path,
        script: &Script,
    ) -> Result<Sim, Failure> {
        let sandbox = Sandbox::spawn("127.0.0.1:0".parse::<SocketAddr>()?).await?;
        let dir = std::env::temp_dir().join(format!("tessera-simulate-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir)?;
        let dir = TempDir(dir);
        let database_url = format!("sqlite://{}?mode=rwc", dir.0.join("simulate.db").display());
        let day = Duration::from_secs(86_400);
        let relay = Relay::start(sandbox.base_url()).await?;
        // The sandbox and the forwarder in front of it are the only non-public upstreams.
        let sandbox_address = sandbox.base_url().trim_start_matches("http://").to_owned();
        let relay_address = relay.url.trim_start_matches("http://").to_owned();
        let gateway = Gateway::build(GatewayConfig {
            database_url,
            providers_dir: providers.to_path_buf(),
            schema_dir: schema.to_path_buf(),
            upstreams: crate::upstreams::AllowList::parse([
                sandbox_address.as_str(),
                relay_address.as_str(),
            ])?,
            secret_key: crate::credentials::SecretKey::generate(),
            playground_key: None,
            introspection: true,
            refresh_every: None,
            public_url: None,
            // The script probes and watches on its own clock.
            probe_interval: Some(day),
            watch_interval: Some(day),
        })
        .await?;
        let key = format!("simulate-{}", uuid::Uuid::new_v4());
        let env = gateway.ensure_environment("simulation", &key).await?;
        let gateway = RunningGateway::start(gateway, "127.0.0.1:0".parse()?).await?;
        gateway.services.monitor.sample_shapes_every(1);
        let mut sim = Sim {
            http: reqwest::Client::new(),
            env_id: env.id,
            key,
            watcher: Watcher::new(Duration::from_secs(600)).reading_deliveries_at_once(),
            now: Utc::now(),
            minute: 0,
            sync_every: SYNC_EVERY,
            busy: Vec::new(),
            relay,
            revoke: None,
            stopped_webhooks: false,
            sandbox,
            gateway,
            _dir: dir,
        };
        sim.setup_apps(script).await?;
        sim.run_controls(&script.setup).await?;
        Ok(sim)
    }

    async fn run_controls(&self, controls: &[Control]) -> Result<(), Failure> {
        for c in controls {
            let method = reqwest::Method::from_bytes(c.method.as_bytes())?;
            self.control(method, &c.path, c.body.clone()).await?;
        }
        Ok(())
    }

    async fn stop(self) {
        self.gateway.stop().await;
        self.sandbox.shutdown();
    }

    fn services(&self) -> &Services {
        &self.gateway.services
    }

    /// The script's OAuth apps as the environment's.
    async fn setup_apps(&mut self, script: &Script) -> Result<(), Failure> {
        for app in &script.apps {
            let secret = crate::secret::Secret::new(app.client_secret.to_owned());
            let services = self.services();
            services
                .store
                .set_oauth_app(OAuthApp {
                    environment_id: Some(self.env_id.clone()),
                    provider: app.provider.into(),
                    client_id: app.client_id.into(),
                    client_secret: services
                        .vault
                        .seal_secret(&format!("oauth-app:{}", app.provider), &secret),
                    scopes: Vec::new(),
                    allowed_hosts: Vec::new(),
                    allow_client_credentials: false,
                })
                .await?;
        }
        Ok(())
    }

    async fn control(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> Result<Value, Failure> {
        let mut request = self.http.request(
            method,
            format!("{}/_control/{path}", self.sandbox.base_url()),
        );
        if !body.is_null() {
            request = request.json(&body);
        }
        let r = request.send().await?;
        let status = r.status();
        let text = r.text().await?;
        if !status.is_success() {
            return Err(format!("sandbox control {path}: {status} {text}").into());
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Links a sandbox account of `provider` (its demo credentials, or `credentials`).
    async fn link(
        &mut self,
        provider: &'static str,
        credentials: Option<Value>,
        settings: Option<Value>,
        touches: Option<String>,
    ) -> Result<String, Failure> {
        let demo = self
            .sandbox
            .demo_accounts()
            .into_iter()
            .find(|a| a.provider == provider)
            .ok_or("the sandbox has no such provider")?;
        let creds = Credentials::from_input(&credentials.unwrap_or(demo.credentials))?;
        let id = uuid::Uuid::new_v4().to_string();
        let services = self.services();
        let row = services
            .store
            .insert_linked_account(NewLinkedAccount {
                credentials: services.vault.seal(&id, &creds),
                id,
                environment_id: self.env_id.clone(),
                provider: provider.to_owned(),
                status: "ACTIVE".into(),
                settings: settings.unwrap_or(demo.settings),
                expires_at: creds.expires_at,
            })
            .await?;
        crate::webhooks::on_account_linked(services, &row).await;
        let records = if touches.is_some() {
            self.remote_ids(&row.id).await?
        } else {
            Vec::new()
        };
        self.busy.push(Busy {
            id: row.id.clone(),
            provider,
            touches,
            delivered: 0,
            records,
        });
        Ok(row.id)
    }

    /// Ends an account's part: disabled, so it is neither called nor judged any more.
    async fn retire(&mut self, id: &str) -> Result<(), Failure> {
        let store = &self.services().store;
        if let Some(a) = store.get_linked_account(id).await? {
            store
                .update_linked_account_cas(
                    id,
                    a.version,
                    crate::store::LinkedAccountUpdate {
                        status: "DISABLED".into(),
                        status_reason: Some("the simulation's scene ended".into()),
                        credentials: a.credentials.clone(),
                        expires_at: a.expires_at,
                        last_refreshed_at: a.last_refreshed_at,
                    },
                )
                .await?;
        }
        self.busy.retain(|b| b.id != id);
        Ok(())
    }

    /// One virtual minute: the customer's syncs, probes, the vendor's changes (and their
    /// webhooks), reconciliation, and two watcher ticks. Returns the alerts opened.
    async fn step(&mut self, quiet: bool) -> Result<Vec<crate::store::Alert>, Failure> {
        self.minute += 1;
        let minute = self.minute;
        // (account, where to change a record, which record)
        let ids: Vec<(String, Option<(String, String)>)> = self
            .busy
            .iter()
            .map(|b| {
                let record = (!b.records.is_empty())
                    .then(|| b.records[(minute as usize) % b.records.len()].clone());
                (b.id.clone(), b.touches.clone().zip(record))
            })
            .collect();
        for (id, change) in &ids {
            let touches = change.is_some();
            if let Some((path, record)) = change.as_ref().filter(|_| !quiet) {
                let dropped = self.stopped_webhooks;
                self.control(
                    reqwest::Method::POST,
                    path,
                    json!({"resource": "contacts", "id": record, "action": "updated"}),
                )
                .await?;
                if let Some(b) = self.busy.iter_mut().find(|b| b.id == *id)
                    && !dropped
                {
                    b.delivered += 1;
                }
            }
            if minute % self.sync_every == 0 {
                self.sync(id).await?;
            }
            if minute % PROBE_EVERY == 0 {
                let _ = crate::health::probes::probe_account_now(self.services(), id).await;
            }
            if touches && minute % RECONCILE_EVERY == 0 {
                let _ = crate::webhooks::reconcile::reconcile_account(
                    self.services(),
                    id,
                    chrono::Duration::zero(),
                )
                .await;
            }
        }
        self.settle().await?;
        let mut opened = Vec::new();
        for _ in 0..2 {
            self.now += chrono::Duration::seconds(30);
            let services = self.gateway.services.clone();
            opened.extend(self.watcher.tick(&services, self.now).await?.opened);
        }
        Ok(opened)
    }

    /// The account's contacts' vendor ids.
    async fn remote_ids(&self, account: &str) -> Result<Vec<String>, Failure> {
        let body: Value = self.sync_reply(account).await?;
        Ok(body["data"]["contacts"]["edges"]
            .as_array()
            .map(|edges| {
                edges
                    .iter()
                    .filter_map(|e| e["node"]["remoteId"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The customer's background sync: every contact, through GraphQL.
    async fn sync(&self, account: &str) -> Result<(), Failure> {
        self.sync_reply(account).await.map(|_| ())
    }

    async fn sync_reply(&self, account: &str) -> Result<Value, Failure> {
        Ok(self.http
            .post(format!("{}/graphql", self.gateway.url()))
            .bearer_auth(&self.key)
            .json(&json!({
                "query": "query($a: ID!) { contacts(accountId: $a, first: 1000) { edges { node { remoteId } } } }",
                "variables": {"a": account},
            }))
            .send()
            .await?
            .json()
            .await?)
    }

    /// Waits until what this minute did is in the database: the request log written, the
    /// vendor's webhooks logged and turned into events (bounded: a delivery the vendor
    /// dropped never comes).
    async fn settle(&self) -> Result<(), Failure> {
        let services = self.services();
        let deadline = Instant::now() + Duration::from_secs(5);
        for b in self.busy.iter().filter(|b| b.touches.is_some()) {
            loop {
                let logged = services
                    .store
                    .list_webhook_deliveries(&b.id, 10_000)
                    .await?
                    .len();
                if logged >= b.delivered || Instant::now() > deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        while services.store.pending_inbox().await? > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        services.monitor.flush().await;
        Ok(())
    }

    /// A day with ordinary noise: every alert opened is a false alarm.
    async fn healthy_day(&mut self, script: &Script, hours: i64) -> Result<Vec<String>, Failure> {
        let day = &script.healthy;
        let mut cast = Vec::new();
        for c in &day.cast {
            cast.push(self.cast(c).await?);
        }
        let mut alarms = Vec::new();
        self.sync_every = HEALTHY_SYNC_EVERY;
        for m in 0..hours * 60 {
            for (_, noise) in day.noise.iter().filter(|(at, _)| *at == m % (24 * 60)) {
                self.run_controls(std::slice::from_ref(noise)).await?;
            }
            let hour = (m / 60) % 24;
            let (from, to) = day.quiet_hours;
            let quiet = if from <= to {
                (from..to).contains(&hour)
            } else {
                hour >= from || hour < to
            };
            for alert in self.step(quiet).await? {
                alarms.push(format!("{} ({})", alert.kind, alert.provider));
            }
        }
        for id in cast {
            self.retire(&id).await?;
        }
        self.sync_every = SYNC_EVERY;
        Ok(alarms)
    }

    async fn play(&mut self, script: &Script, scene: &Scene) -> Result<SceneResult, Failure> {
        let account = self.cast(&scene.cast).await?;
        let mut early = Vec::new();
        for _ in 0..WARM_UP {
            early.extend(
                self.step(false)
                    .await?
                    .into_iter()
                    .filter(|a| a.account_id == account)
                    .map(|a| a.kind),
            );
        }
        let fault_at = self.now;
        for action in &scene.inject {
            self.act(action, &account).await?;
        }
        let mut detected = None;
        let mut evidence = Value::Null;
        for _ in 0..DETECT_WITHIN {
            let opened = self.step(false).await?;
            if let Some(a) = opened.into_iter().find(|a| a.account_id == account) {
                evidence = serde_json::from_str(&a.evidence).unwrap_or(Value::Null);
                detected = Some((a.kind, a.opened_at - fault_at));
                break;
            }
        }
        let diagnosis = match self.services().store.get_linked_account(&account).await? {
            Some(a) => Some(crate::health::diagnose::diagnose(self.services(), &a).await?),
            None => None,
        };
        for action in &scene.heal {
            self.act(action, &account).await?;
        }
        self.run_controls(&script.setup).await?;
        self.retire(&account).await?;
        Ok(SceneResult {
            symptom: scene.symptom,
            expected: scene.expected,
            detected: detected.as_ref().map(|(k, _)| k.clone()),
            detected_after: detected.map(|(_, d)| d),
            early_alerts: early,
            evidence,
            diagnosis: diagnosis.as_ref().map_or("-".into(), |d| d.kind.clone()),
            first_response: diagnosis
                .as_ref()
                .map_or(String::new(), |d| d.first_response.clone()),
            escalate: diagnosis.is_some_and(|d| d.escalate),
        })
    }

    /// Links the account a cast describes.
    async fn cast(&mut self, cast: &Cast) -> Result<String, Failure> {
        let base = self.sandbox.base_url();
        let demo = self
            .sandbox
            .demo_accounts()
            .into_iter()
            .find(|a| a.provider == cast.provider)
            .ok_or("the sandbox has no such provider")?;
        let mut credentials = demo.credentials.clone();
        let mut settings = demo.settings.clone();
        if let Some(token_path) = cast.grant_token_path {
            let grant = self
                .control(
                    reqwest::Method::POST,
                    "oauth/grant",
                    json!({"provider": cast.provider, "accessTokenLifetimeSeconds": 3600}),
                )
                .await?;
            credentials = json!({
                "accessToken": grant["access_token"],
                "refreshToken": grant["refresh_token"],
                "expiresAt": (Utc::now() + chrono::Duration::hours(1)).to_rfc3339(),
            });
            settings["tokenUrl"] = json!(format!("{base}{token_path}"));
            self.revoke = grant["refresh_token"].as_str().map(str::to_owned);
        }
        if cast.through_relay
            && let Some(url) = settings["baseUrl"].as_str()
        {
            settings["baseUrl"] = json!(url.replacen(&base, &self.relay.url, 1));
        }
        self.link(
            cast.provider,
            Some(credentials),
            Some(settings),
            cast.changes.clone(),
        )
        .await
    }

    async fn act(&mut self, action: &Action, account: &str) -> Result<(), Failure> {
        match action {
            Action::Control(c) => self.run_controls(std::slice::from_ref(c)).await?,
            Action::RevokeGrant => {
                let provider = self.provider_of(account)?;
                let token = self.revoke.take().unwrap_or_default();
                self.control(
                    reqwest::Method::POST,
                    "oauth/revoke",
                    json!({"provider": provider, "refreshToken": token}),
                )
                .await?;
            }
            Action::CutRelay => self.relay.block(),
            Action::Spend { path, token, times } => {
                for _ in 0..*times {
                    self.http
                        .get(format!("{}{path}", self.sandbox.base_url()))
                        .bearer_auth(token)
                        .send()
                        .await?;
                }
            }
            Action::DropWebhooks(drop) => {
                let provider = self.provider_of(account)?;
                self.control(
                    reqwest::Method::POST,
                    &format!("webhooks/{provider}/faults"),
                    json!({"dropNext": if *drop { 1_000_000 } else { 0 }}),
                )
                .await?;
                // Dropped deliveries are never logged: not waited for.
                self.stopped_webhooks = *drop;
            }
        }
        Ok(())
    }

    fn provider_of(&self, account: &str) -> Result<&'static str, Failure> {
        Ok(self
            .busy
            .iter()
            .find(|b| b.id == account)
            .ok_or("the account is not part of the scene")?
            .provider)
    }
}

/// A TCP forwarder to the sandbox that can be cut, as a firewall change cuts a route:
/// open connections are dropped and new ones refused.
struct Relay {
    url: String,
    cut: tokio::sync::watch::Sender<bool>,
}

impl Relay {
    async fn start(target: String) -> Result<Relay, Failure> {
        let to = target
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (cut, mut watch) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = watch.changed() => return,
                };
                let Ok((mut inbound, _)) = accepted else {
                    continue;
                };
                let to = to.clone();
                let mut cut = watch.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&to).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Ok(Relay { url, cut })
    }

    fn block(&self) {
        let _ = self.cut.send(true);
    }
}
