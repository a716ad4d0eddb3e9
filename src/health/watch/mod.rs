//! The watcher: turns what Tessera sees of each linked account (the request log, the
//! listings it serves and probes, webhook deliveries, reconciliation's finds, subscription
//! states, account statuses, probe results) into alerts, opened and resolved by the
//! evidence, one open alert per (account, kind).
//!
//! One replica at a time watches (a cluster-wide lease); it keeps its per-account state in
//! memory and saves it after every tick, so another replica that takes the lease goes on
//! from the same baselines. A tick reads a fixed number of queries whatever the number of
//! accounts (tallies grouped in the database, each read from where the last one stopped).
//! Time is the watcher's clock at each tick ([`Watcher::tick`] takes `now`), so the
//! simulation runs a day of it in seconds.

pub mod rules;
pub mod state;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::health::alerts::AlertKind;
use crate::services::{Services, SharedServices};
use crate::store::{Alert, StoreError, UnifiedEvent};
use rules::{Subject, Verdict};
use state::AccountWatch;

/// The lease's name in `job_leases`.
const LEASE_NAME: &str = "watcher";
/// The key of the read positions in `watch_state` (account ids are UUIDs: no clash).
const CURSOR_KEY: &str = "~cursor";
/// Listing observations read per tick at most (the rest next tick).
const LISTINGS_PER_TICK: u64 = 20_000;
/// Deliveries younger than this are read next tick: a delivery's row commits a moment
/// after its time is taken.
const DELIVERY_SETTLE: chrono::Duration = chrono::Duration::seconds(2);

/// How often the watcher ticks: `TESSERA_WATCH_INTERVAL_SECS` (1 s to 10 min), default 30.
pub fn interval() -> Duration {
    let secs = std::env::var("TESSERA_WATCH_INTERVAL_SECS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| (1..=600).contains(s))
        .unwrap_or(30);
    Duration::from_secs(secs)
}

/// How far each evidence source has been read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Cursor {
    calls: i64,
    listings: i64,
    events: i64,
    deliveries: Option<DateTime<Utc>>,
}

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Whether this replica held the lease (else it did nothing).
    pub watched: bool,
    pub opened: Vec<Alert>,
    pub resolved: Vec<Alert>,
}

pub struct Watcher {
    holder: String,
    lease: chrono::Duration,
    settle: chrono::Duration,
    loaded: bool,
    cursor: Cursor,
    accounts: HashMap<String, AccountWatch>,
}

impl Watcher {
    /// A watcher that holds the lease for `lease` after each tick (longer than a tick).
    pub fn new(lease: Duration) -> Watcher {
        Watcher {
            holder: uuid::Uuid::new_v4().to_string(),
            lease: chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(2)),
            settle: DELIVERY_SETTLE,
            loaded: false,
            cursor: Cursor::default(),
            accounts: HashMap::new(),
        }
    }

    /// Reads webhook deliveries as soon as they are logged, not 2 s later (for callers
    /// that know the deliveries they wait for are committed: tests, the simulation).
    pub fn reading_deliveries_at_once(mut self) -> Watcher {
        self.settle = chrono::Duration::zero();
        self
    }

    /// One pass: read the new evidence, judge every account, write what changed. On any
    /// failure the in-memory state is dropped and read again next tick (nothing is half
    /// applied: the read positions are saved only after the alerts).
    pub async fn tick(
        &mut self,
        services: &Services,
        now: DateTime<Utc>,
    ) -> Result<TickReport, StoreError> {
        let result = self.tick_inner(services, now).await;
        if result.is_err() {
            self.loaded = false;
        }
        result
    }

    async fn tick_inner(
        &mut self,
        services: &Services,
        now: DateTime<Utc>,
    ) -> Result<TickReport, StoreError> {
        let store = &services.store;
        if !store
            .take_job_lease(LEASE_NAME, &self.holder, self.lease)
            .await?
        {
            // Another replica watches; what this one had in memory may be stale by now.
            self.loaded = false;
            return Ok(TickReport::default());
        }
        if !self.loaded {
            self.load(services).await?;
        }
        // Evidence, each from where the last tick stopped.
        let (calls, calls_upto) = store.tally_upstream_calls(self.cursor.calls).await?;
        let listings = store
            .listing_observations_after(self.cursor.listings, LISTINGS_PER_TICK)
            .await?;
        let (events, events_upto) = store.tally_unified_events(self.cursor.events).await?;
        let delivered_until = Utc::now() - self.settle;
        let delivered_since = self.cursor.deliveries.unwrap_or(delivered_until);
        let deliveries = store
            .tally_webhook_deliveries(delivered_since, delivered_until)
            .await?;
        // Current states.
        let accounts = store.list_linked_accounts(None).await?;
        let failing = store.failing_probes().await?;
        let lapsed = store.lapsed_subscriptions().await?;
        let open = store.open_alerts().await?;

        let mut changed: HashSet<String> = HashSet::new();
        let mut calls_by: HashMap<&str, Vec<&crate::store::CallTally>> = HashMap::new();
        for c in &calls {
            calls_by.entry(c.account_id.as_str()).or_default().push(c);
        }
        for a in &accounts {
            let w = self.accounts.entry(a.id.clone()).or_default();
            let before = w.calls.len();
            w.fold_calls(
                now,
                calls_by
                    .get(a.id.as_str())
                    .map(Vec::as_slice)
                    .unwrap_or(&[]),
            );
            if w.calls.len() != before || calls_by.contains_key(a.id.as_str()) {
                changed.insert(a.id.clone());
            }
        }
        for o in &listings {
            if let Some(r) = self
                .accounts
                .get_mut(&o.account_id)
                .and_then(|w| w.resource(&o.resource))
            {
                r.fold(o, now);
                changed.insert(o.account_id.clone());
            }
        }
        let mut webhook_news: HashMap<&str, (u64, u64, u64)> = HashMap::new();
        for d in &deliveries {
            let n = u64::try_from(d.deliveries).unwrap_or(0);
            let e = webhook_news.entry(d.account_id.as_str()).or_default();
            match d.outcome.as_str() {
                "ACCEPTED" | "REPLAYED" => e.0 = e.0.saturating_add(n),
                "BAD_SIGNATURE" => e.1 = e.1.saturating_add(n),
                _ => {}
            }
        }
        for t in events.iter().filter(|t| t.source == "POLL") {
            let e = webhook_news.entry(t.account_id.as_str()).or_default();
            e.2 = e.2.saturating_add(u64::try_from(t.events).unwrap_or(0));
        }
        for a in &accounts {
            if let Some(w) = self.accounts.get_mut(&a.id) {
                let (accepted, refused, missed) =
                    webhook_news.get(a.id.as_str()).copied().unwrap_or_default();
                let before = w.webhooks.clone();
                w.webhooks.fold(now, accepted, refused, missed);
                if w.webhooks != before {
                    changed.insert(a.id.clone());
                }
            }
        }

        // Judge.
        let failing: HashMap<&str, _> =
            failing.iter().map(|h| (h.account_id.as_str(), h)).collect();
        let mut open_by: HashMap<(&str, &str), &Alert> = HashMap::new();
        for a in &open {
            open_by.insert((a.account_id.as_str(), a.kind.as_str()), a);
        }
        let mut report = TickReport {
            watched: true,
            ..TickReport::default()
        };
        let mut writes: Vec<Alert> = Vec::new();
        let mut seen_accounts: HashSet<&str> = HashSet::new();
        for a in &accounts {
            seen_accounts.insert(a.id.as_str());
            if a.status == "DISABLED" {
                for kind in AlertKind::ALL {
                    if let Some(alert) = open_by.get(&(a.id.as_str(), kind.name())) {
                        let r = resolve(alert, now, json!({"reason": "the account was disabled"}));
                        report.resolved.push(r);
                    }
                }
                continue;
            }
            let Some(watch) = self.accounts.get(&a.id) else {
                continue;
            };
            let subject = Subject {
                now,
                account: a,
                watch,
                failing_probe: failing.get(a.id.as_str()).copied(),
                lapsed: lapsed.iter().filter(|l| l.account_id == a.id).collect(),
                has_webhooks: services
                    .providers
                    .get(&a.provider)
                    .is_some_and(|p| p.webhooks.is_some()),
                provider: services
                    .overrides
                    .effective(&a.provider, &a.environment_id, &a.id)
                    .ok(),
            };
            for (kind, verdict) in rules::judge(&subject) {
                let current = open_by.get(&(a.id.as_str(), kind.name())).copied();
                match (verdict, current) {
                    (Verdict::Active(evidence), None) => {
                        report.opened.push(Alert {
                            id: uuid::Uuid::new_v4().to_string(),
                            environment_id: a.environment_id.clone(),
                            account_id: a.id.clone(),
                            provider: a.provider.clone(),
                            kind: kind.name().to_owned(),
                            state: "OPEN".into(),
                            opened_at: now,
                            resolved_at: None,
                            probable_cause: kind.probable_cause().to_owned(),
                            first_response: kind.first_response().to_owned(),
                            evidence: evidence.to_string(),
                            updated_at: now,
                        });
                    }
                    (Verdict::Active(evidence), Some(alert)) => {
                        let evidence = evidence.to_string();
                        if evidence != alert.evidence {
                            let mut fresher = alert.clone();
                            fresher.evidence = evidence;
                            fresher.updated_at = now;
                            writes.push(fresher);
                        }
                    }
                    (Verdict::Clear, Some(alert)) => {
                        let last =
                            serde_json::from_str::<Value>(&alert.evidence).unwrap_or(Value::Null);
                        report.resolved.push(resolve(alert, now, last));
                    }
                    _ => {}
                }
            }
        }
        // Alerts of accounts deleted meanwhile.
        for alert in &open {
            if !seen_accounts.contains(alert.account_id.as_str()) {
                report.resolved.push(resolve(
                    alert,
                    now,
                    json!({"reason": "the account was deleted"}),
                ));
            }
        }

        let events: Vec<UnifiedEvent> = report
            .opened
            .iter()
            .map(|a| alert_event(a, "alert.opened", now))
            .chain(
                report
                    .resolved
                    .iter()
                    .map(|a| alert_event(a, "alert.resolved", now)),
            )
            .collect();
        for a in &report.opened {
            tracing::warn!(account = %a.account_id, provider = %a.provider, kind = %a.kind, "alert opened");
        }
        for a in &report.resolved {
            tracing::info!(account = %a.account_id, provider = %a.provider, kind = %a.kind, "alert resolved");
        }
        writes.extend(report.opened.iter().cloned());
        writes.extend(report.resolved.iter().cloned());
        store.record_alerts(writes, events).await?;
        if !report.opened.is_empty() || !report.resolved.is_empty() {
            services.events.outbound.notify_one();
        }

        // Forget accounts that are gone, then save.
        let gone: Vec<String> = self
            .accounts
            .keys()
            .filter(|id| !seen_accounts.contains(id.as_str()))
            .cloned()
            .collect();
        for id in &gone {
            self.accounts.remove(id);
        }
        self.cursor.calls = calls_upto;
        self.cursor.listings = listings.last().map_or(self.cursor.listings, |o| o.id);
        self.cursor.events = events_upto;
        self.cursor.deliveries = Some(delivered_until.max(delivered_since));
        let mut saves: Vec<(String, String)> = changed
            .iter()
            .filter_map(|id| {
                let w = self.accounts.get(id)?;
                Some((id.clone(), serde_json::to_string(w).ok()?))
            })
            .collect();
        saves.push((
            CURSOR_KEY.to_owned(),
            serde_json::to_string(&self.cursor).unwrap_or_default(),
        ));
        store.save_watch_states(saves, gone).await?;
        Ok(report)
    }

    async fn load(&mut self, services: &Services) -> Result<(), StoreError> {
        self.accounts.clear();
        self.cursor = Cursor::default();
        let mut fresh = true;
        for (key, text) in services.store.load_watch_states().await? {
            if key == CURSOR_KEY {
                fresh = false;
                self.cursor = serde_json::from_str(&text).unwrap_or_default();
            } else if let Ok(w) = serde_json::from_str::<AccountWatch>(&text) {
                self.accounts.insert(key, w);
            }
        }
        if fresh {
            // A first watcher starts from now: the log's history before it is not
            // replayed as one burst (its counts would all land in one window).
            self.cursor.calls = services.store.tally_upstream_calls(0).await?.1;
            self.cursor.events = services.store.tally_unified_events(0).await?.1;
        }
        self.loaded = true;
        Ok(())
    }
}

fn resolve(alert: &Alert, now: DateTime<Utc>, evidence: Value) -> Alert {
    let mut r = alert.clone();
    r.state = "RESOLVED".into();
    r.resolved_at = Some(now);
    r.updated_at = now;
    r.evidence = evidence.to_string();
    r
}

/// The JSON of an alert, as its events and the GraphQL `evidence` carry it.
pub fn alert_json(a: &Alert) -> Value {
    json!({
        "id": a.id,
        "kind": a.kind,
        "state": a.state,
        "accountId": a.account_id,
        "provider": a.provider,
        "openedAt": a.opened_at,
        "resolvedAt": a.resolved_at,
        "probableCause": a.probable_cause,
        "firstResponse": a.first_response,
        "evidence": serde_json::from_str::<Value>(&a.evidence).unwrap_or(Value::Null),
    })
}

/// The unified event that announces an alert to the environment's endpoints.
fn alert_event(a: &Alert, kind: &str, now: DateTime<Utc>) -> UnifiedEvent {
    UnifiedEvent {
        seq: 0,
        id: uuid::Uuid::new_v4().to_string(),
        environment_id: a.environment_id.clone(),
        account_id: a.account_id.clone(),
        kind: kind.to_owned(),
        resource: "alert".into(),
        remote_id: a.id.clone(),
        record_id: a.id.clone(),
        occurred_at: now,
        received_at: Utc::now(),
        source: "MONITOR".into(),
        record: Some(alert_json(a).to_string()),
    }
}

/// Runs until `stop`: a tick every [`interval`], on the real clock.
pub async fn run(services: SharedServices, mut stop: tokio::sync::watch::Receiver<bool>) {
    let every = services.watch_interval;
    let mut watcher = Watcher::new(every * 4);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        if let Err(e) = watcher.tick(&services, Utc::now()).await {
            tracing::warn!(error = %e, "the watcher cannot reach the database; will retry");
        }
    }
}
