//! Reconciliation polling, the seed's hybrid pattern: on a schedule per account, list what
//! changed since the last watermark (the `updatedSince` filter the provider files already
//! translate). A change no webhook brought becomes an event with `source: POLL`, and is
//! counted as a missed delivery on the account. Vendors that push nothing Tessera can
//! verify are served this way alone.
//!
//! The watermark is the vendor's own modification time of the newest change looked at,
//! read back with an overlap (clocks and commit order), so nothing between two passes is
//! skipped; the overlap's repeats share a deduplication key and are stored once. Each
//! (account, resource) is claimed by one replica at a time.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::{Map, json};

use super::events::{Action, VendorEvent};
use crate::access::{Caller, handle_for};
use crate::engine::RequestSpend;
use crate::services::{Services, SharedServices};
use crate::store::{InboxEvent, LinkedAccount, ReconcileState, StoreError};

/// How far back each pass reads before the watermark.
const OVERLAP: chrono::Duration = chrono::Duration::seconds(120);
/// The most changes one pass reads for one (account, resource); the rest wait for the next.
const MAX_PAGES: usize = 10;
const PAGE: usize = 100;
const LEASE: chrono::Duration = chrono::Duration::minutes(5);

/// The schedule: `TESSERA_RECONCILE_INTERVAL_SECS` (default 300) and the resources polled,
/// `TESSERA_RECONCILE_RESOURCES` (default `contacts,companies,deals`).
#[derive(Debug, Clone)]
pub struct Schedule {
    pub interval: chrono::Duration,
    pub resources: Vec<String>,
}

impl Schedule {
    pub fn from_env() -> Schedule {
        let interval = std::env::var("TESSERA_RECONCILE_INTERVAL_SECS")
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|s| (1..=86_400).contains(s))
            .unwrap_or(300);
        let resources = std::env::var("TESSERA_RECONCILE_RESOURCES")
            .ok()
            .map(|v| {
                v.split(',')
                    .map(|r| r.trim().to_owned())
                    .filter(|r| !r.is_empty())
                    .collect()
            })
            .unwrap_or_else(|| vec!["contacts".into(), "companies".into(), "deals".into()]);
        Schedule {
            interval: chrono::Duration::seconds(interval),
            resources,
        }
    }
}

/// The resources of the account's provider that can be polled for changes.
fn pollable(services: &Services, account: &LinkedAccount, schedule: &Schedule) -> Vec<String> {
    let Some(provider) = services.providers.get(&account.provider) else {
        return Vec::new();
    };
    schedule
        .resources
        .iter()
        .filter(|r| {
            provider.resources.get(r.as_str()).is_some_and(|m| {
                m.search
                    .as_ref()
                    .or(m.list.as_ref())
                    .is_some_and(|op| op.filters.iter().any(|f| f == "updatedSince"))
            })
        })
        .cloned()
        .collect()
}

/// Runs until `stop`.
pub async fn run(services: SharedServices, mut stop: tokio::sync::watch::Receiver<bool>) {
    let schedule = Schedule::from_env();
    // The first enrollment waits a minute, as probes do.
    let mut last_enrolled = std::time::Instant::now();
    loop {
        if last_enrolled.elapsed() >= Duration::from_secs(60) {
            if let Err(e) = enroll(&services, &schedule).await {
                tracing::warn!(error = %e, "reconciliation cannot list accounts; will retry");
            }
            last_enrolled = std::time::Instant::now();
        }
        match pass(&services, &schedule, None, chrono::Duration::seconds(60)).await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "reconciliation cannot reach the database; will retry")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Starts polling every active account's pollable resources from the moment it was linked.
async fn enroll(services: &Services, schedule: &Schedule) -> Result<(), StoreError> {
    let now = Utc::now();
    for account in services.store.list_linked_accounts(None).await? {
        if account.status != "ACTIVE" {
            continue;
        }
        for resource in pollable(services, &account, schedule) {
            // Spread the first runs over the interval, so a restart does not poll every
            // account at once.
            let spread = chrono::Duration::milliseconds(rand_below(
                schedule.interval.num_milliseconds().max(1),
            ));
            services
                .store
                .ensure_reconcile_state(&account.id, &resource, account.created_at, now + spread)
                .await?;
        }
    }
    Ok(())
}

fn rand_below(n: i64) -> i64 {
    use rand::Rng;
    rand::thread_rng().gen_range(0..n.max(1))
}

/// Polls one account now, whatever its schedule (a vendor's `missed` notice; tests).
/// Changes newer than `settle` ago are left for the next pass, so a webhook still in
/// flight is not mistaken for a missed one. Returns how many missed changes it found.
pub async fn reconcile_account(
    services: &Services,
    account_id: &str,
    settle: chrono::Duration,
) -> Result<usize, String> {
    let schedule = Schedule::from_env();
    let account = services
        .store
        .get_linked_account(account_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no such account")?;
    for resource in pollable(services, &account, &schedule) {
        services
            .store
            .ensure_reconcile_state(&account.id, &resource, account.created_at, Utc::now())
            .await
            .map_err(|e| e.to_string())?;
    }
    services
        .store
        .reconcile_now(account_id)
        .await
        .map_err(|e| e.to_string())?;
    let mut found = 0;
    for (mut state, claim) in services
        .store
        .claim_due_reconciles(Some(account_id), 100, LEASE)
        .await
        .map_err(|e| e.to_string())?
    {
        let result = poll(services, &mut state, settle).await;
        state.next_run_at = Utc::now() + schedule.interval;
        services
            .store
            .save_reconcile_state(&state, &claim)
            .await
            .map_err(|e| e.to_string())?;
        found += result?;
    }
    Ok(found)
}

/// Polls what is due; returns how many (account, resource) pairs it polled.
async fn pass(
    services: &Services,
    schedule: &Schedule,
    account: Option<&str>,
    settle: chrono::Duration,
) -> Result<usize, StoreError> {
    let claimed = services
        .store
        .claim_due_reconciles(account, 10, LEASE)
        .await?;
    let n = claimed.len();
    for (mut state, claim) in claimed {
        if let Err(e) = poll(services, &mut state, settle).await {
            tracing::info!(account = %state.account_id, resource = %state.resource, error = %e, "reconciliation pass failed; next time");
        }
        let jitter = chrono::Duration::milliseconds(rand_below(
            schedule.interval.num_milliseconds() / 10 + 1,
        ));
        state.next_run_at = Utc::now() + schedule.interval + jitter;
        services.store.save_reconcile_state(&state, &claim).await?;
    }
    Ok(n)
}

/// One (account, resource): lists changes since the watermark, queues those no webhook
/// brought, moves the watermark. Returns how many missed changes it queued.
async fn poll(
    services: &Services,
    state: &mut ReconcileState,
    settle: chrono::Duration,
) -> Result<usize, String> {
    let account = services
        .store
        .get_linked_account(&state.account_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the account is gone")?;
    if account.status != "ACTIVE" {
        return Ok(0);
    }
    let handle = handle_for(
        services,
        &Caller::Admin,
        &account.id,
        Arc::new(RequestSpend::default()),
    )
    .await
    .map_err(|e| e.to_string())?;
    let since = state.watermark - OVERLAP;
    let mut filter = Map::new();
    filter.insert(
        "updatedSince".into(),
        json!(since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    );
    let horizon = Utc::now() - settle;
    let mut newest = state.watermark;
    let mut missed = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let page = services
            .engine
            .list(&handle, &state.resource, PAGE, after.as_deref(), &filter)
            .await
            .map_err(|e| e.to_string())?;
        for edge in &page.edges {
            let record = &edge.record;
            let Ok(mapped) = &record.mapped else { continue };
            let Some(updated) = mapped.get("remoteUpdatedAt").and_then(super::vendor_time) else {
                continue;
            };
            if updated > horizon {
                // Not settled: a webhook for it may still be on its way.
                continue;
            }
            if updated > newest {
                newest = updated;
            }
            if updated <= state.watermark - OVERLAP {
                continue;
            }
            let seen = services
                .store
                .webhook_saw_change(
                    &account.id,
                    &state.resource,
                    &record.remote_id,
                    updated - chrono::Duration::seconds(5),
                )
                .await
                .map_err(|e| e.to_string())?;
            if seen {
                continue;
            }
            let created = mapped
                .get("remoteCreatedAt")
                .and_then(super::vendor_time)
                .is_some_and(|c| c > state.watermark);
            let event = VendorEvent {
                resource: state.resource.clone(),
                action: if created {
                    Action::Created
                } else {
                    Action::Updated
                },
                remote_id: record.remote_id.clone(),
                occurred_at: updated,
                dedup_key: format!("poll:{}:{}", record.remote_id, updated.timestamp_millis()),
                record: Some(record.raw.clone()),
                account_key: None,
                subscription: None,
                secret: None,
            };
            missed.push(InboxEvent {
                dedup_key: event.dedup_key.clone(),
                event: serde_json::to_string(&event).unwrap_or_default(),
                source: "POLL".into(),
            });
        }
        if !page.has_next_page {
            break;
        }
        after = page.edges.last().map(|e| e.cursor.clone());
    }
    // Never past a change still settling: the next pass starts at or before it.
    state.watermark = newest.min(horizon.max(state.watermark));
    let fresh = services
        .store
        .enqueue_polled_events(&account.id, missed)
        .await
        .map_err(|e| e.to_string())?;
    if fresh > 0 {
        services.events.inbox.notify_one();
        tracing::warn!(account = %account.id, resource = %state.resource, missed = fresh, "reconciliation found changes no webhook delivered");
        let _ = services
            .store
            .insert_account_event(
                &account.id,
                "WEBHOOK_MISSED",
                &format!("reconciliation found {fresh} {} change(s) the vendor's webhooks did not deliver", state.resource),
            )
            .await;
    }
    Ok(fresh)
}
