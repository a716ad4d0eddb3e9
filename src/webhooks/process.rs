//! The inbox processor: claims accepted events, completes them into unified events, and
//! writes those exactly once.
//!
//! Payloads that carry ids only are completed by reading the records
//! through the engine, the ids of many events coalesced into one batch read per (account,
//! resource); payloads that carry the record are mapped as they are. Either way
//! the account's mapping with its overrides makes `record`, as a query would.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures_util::StreamExt;
use serde_json::{Map, Value};

use super::events::{Action, VendorEvent};
use crate::access::{Caller, handle_for};
use crate::engine::{AccountHandle, EngineError, Record, RequestSpend};
use crate::error::{ErrorCode, HasCode};
use crate::ids::GlobalId;
use crate::services::{Services, SharedServices};
use crate::store::{InboxItem, StoreError, UnifiedEvent};

/// Rows one claim takes: a burst of 100 deliveries of 100 events is 50 claims.
const CLAIM_BATCH: u64 = 200;
/// How long a claim holds: far more than reading a batch takes, so only a dead replica's
/// rows are taken over. `TESSERA_WEBHOOK_LEASE_SECS` shortens it (tests of a killed
/// replica), within 1 s to 1 h.
const LEASE_SECS: i64 = 60;

fn lease() -> chrono::Duration {
    static LEASE: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    chrono::Duration::seconds(*LEASE.get_or_init(|| {
        std::env::var("TESSERA_WEBHOOK_LEASE_SECS")
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|s| (1..=3600).contains(s))
            .unwrap_or(LEASE_SECS)
    }))
}
/// Accounts completed at once (each makes its own vendor reads).
const ACCOUNTS_AT_ONCE: usize = 4;
/// Tries of a read that failed for a passing reason (throttled, vendor down) before the
/// event is published without its record rather than held back for ever.
const MAX_ATTEMPTS: i32 = 6;

/// Runs until `stop`: drains the inbox whenever a delivery arrives (once the deliveries
/// arriving with it are acknowledged, or a second later), and every second for rows left
/// by a replica that died or a retry that came due.
pub async fn run(services: SharedServices, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        // Each claim and completion is CPU and a turn at the database's write lock that a
        // delivery waiting for its acknowledgement would otherwise queue behind: a burst of
        // deliveries is acknowledged first. Once per drain, not per claim, so a steady
        // stream of deliveries delays processing by at most this, never slows it.
        services.events.intake.quiet(YIELD_TO_INTAKE).await;
        loop {
            match process_once(&services).await {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "webhook processing cannot reach the database; will retry");
                    break;
                }
            }
        }
        tokio::select! {
            _ = services.events.inbox.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// The longest the processor gives way to deliveries being taken in before it drains the
/// inbox anyway (see `run`).
const YIELD_TO_INTAKE: Duration = Duration::from_secs(1);

/// Claims one batch and completes it; returns how many rows it claimed.
pub async fn process_once(services: &Services) -> Result<usize, StoreError> {
    let items = services.store.claim_inbox(CLAIM_BATCH, lease()).await?;
    let claimed = items.len();
    let mut by_account: BTreeMap<String, Vec<InboxItem>> = BTreeMap::new();
    for item in items {
        by_account
            .entry(item.account_id.clone())
            .or_default()
            .push(item);
    }
    let results: Vec<Result<(), StoreError>> = futures_util::stream::iter(by_account)
        .map(|(account, items)| complete_account(services, account, items))
        .buffer_unordered(ACCOUNTS_AT_ONCE)
        .collect()
        .await;
    for r in results {
        r?;
    }
    Ok(claimed)
}

async fn complete_account(
    services: &Services,
    account_id: String,
    items: Vec<InboxItem>,
) -> Result<(), StoreError> {
    let Some(account) = services.store.get_linked_account(&account_id).await? else {
        // Deleted meanwhile: its inbox rows go with it.
        return Ok(());
    };
    let mut parsed = Vec::with_capacity(items.len());
    for item in &items {
        match serde_json::from_str::<VendorEvent>(&item.event) {
            Ok(e) => parsed.push((item, e)),
            Err(e) => {
                tracing::warn!(inbox = %item.id, error = %e, "an inbox row does not read as an event; dropped")
            }
        }
    }
    let handle = match handle_for(
        services,
        &Caller::Admin,
        &account_id,
        Arc::new(RequestSpend::default()),
    )
    .await
    {
        Ok(h) => Some(h),
        Err(e) => {
            // A disabled or disconnected account: its events still say what changed.
            tracing::info!(account = %account_id, error = %e, "webhook events published without records: the account cannot be read");
            None
        }
    };
    let attempts = items.iter().map(|i| i.attempts).max().unwrap_or(0);
    let records = match &handle {
        Some(h) => match read_records(services, h, &parsed).await {
            Ok(r) => r,
            Err(e) if passing(&e) && attempts + 1 < MAX_ATTEMPTS => {
                let wait = wait_for(&e, attempts);
                tracing::info!(account = %account_id, error = %e, retry_in_secs = wait.num_seconds(), "webhook events wait for their records");
                let ids: Vec<String> = items.iter().map(|i| i.id.clone()).collect();
                let claim = items.first().map(|i| i.claim.as_str()).unwrap_or_default();
                services
                    .store
                    .retry_inbox(&ids, claim, &e.to_string(), Utc::now() + wait)
                    .await?;
                return Ok(());
            }
            Err(e) => {
                tracing::warn!(account = %account_id, error = %e, "webhook events published without records: reading them failed");
                HashMap::new()
            }
        },
        None => HashMap::new(),
    };
    let events: Vec<UnifiedEvent> = parsed
        .iter()
        .map(|(item, e)| {
            let record = records
                .get(&(e.resource.clone(), e.remote_id.clone()))
                .and_then(|r| record_json(&account_id, &e.resource, r));
            UnifiedEvent {
                seq: 0,
                id: crate::store::new_ordered_id(),
                environment_id: account.environment_id.clone(),
                account_id: account_id.clone(),
                kind: format!("{}.{}", singular(services, &e.resource), e.action.as_str()),
                resource: e.resource.clone(),
                remote_id: e.remote_id.clone(),
                record_id: GlobalId::encode(&account_id, &e.resource, &e.remote_id),
                occurred_at: e.occurred_at,
                received_at: item.received_at,
                source: item.source.clone(),
                record: record.map(|r| r.to_string()),
            }
        })
        .collect();
    let ids: Vec<String> = items.iter().map(|i| i.id.clone()).collect();
    let claim = items.first().map(|i| i.claim.clone()).unwrap_or_default();
    if services.store.complete_inbox(&claim, &ids, events).await? {
        services.events.written.notify_one();
        services.events.outbound.notify_one();
        crate::webhooks::feed::announce(services).await;
    } else {
        tracing::info!(account = %account_id, "webhook events were taken over by another processor");
    }
    Ok(())
}

/// The records the events need, read in as few calls as the provider allows.
async fn read_records(
    services: &Services,
    handle: &AccountHandle,
    events: &[(&InboxItem, VendorEvent)],
) -> Result<HashMap<(String, String), Record>, EngineError> {
    let mut out = HashMap::new();
    let mut wanted: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (_, e) in events {
        match (&e.record, e.action) {
            (Some(raw), _) => {
                if let Ok(r) = services
                    .engine
                    .record_from_raw(handle, &e.resource, raw.clone())
                    .await
                {
                    out.insert((e.resource.clone(), e.remote_id.clone()), r);
                }
            }
            (None, Action::Deleted) => {}
            (None, _) => {
                let ids = wanted.entry(e.resource.as_str()).or_default();
                if !ids.contains(&e.remote_id) {
                    ids.push(e.remote_id.clone());
                }
            }
        }
    }
    for (resource, ids) in wanted {
        let batch = handle
            .provider
            .resources
            .get(resource)
            .is_some_and(|r| r.batch_get.is_some());
        if batch {
            for r in services.engine.batch_get(handle, resource, &ids).await? {
                out.insert((resource.to_owned(), r.remote_id.clone()), r);
            }
        } else {
            for id in &ids {
                match services.engine.get(handle, resource, id).await {
                    Ok(Some(r)) => {
                        out.insert((resource.to_owned(), id.clone()), r);
                    }
                    // Deleted since the event: the event stands, without its record.
                    Ok(None) | Err(EngineError::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(out)
}

/// The record as a query returns it: global id, remote id and the mapped fields.
fn record_json(account_id: &str, resource: &str, r: &Record) -> Option<Value> {
    let mapped = r.mapped.as_ref().ok()?;
    let mut obj = Map::with_capacity(mapped.len() + 2);
    obj.insert(
        "id".into(),
        Value::String(GlobalId::encode(account_id, resource, &r.remote_id)),
    );
    obj.insert("remoteId".into(), Value::String(r.remote_id.clone()));
    for (k, v) in mapped {
        obj.insert(k.clone(), v.clone());
    }
    Some(Value::Object(obj))
}

/// `contact` for `contacts`: the SDL type name with a lower-case first letter.
fn singular(services: &Services, resource: &str) -> String {
    let name = services
        .model
        .resource(resource)
        .map(|r| r.type_name.as_str())
        .unwrap_or(resource);
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Failures that pass: worth waiting for rather than publishing without the record.
fn passing(e: &EngineError) -> bool {
    matches!(
        e.code(),
        ErrorCode::RateLimited | ErrorCode::UpstreamUnavailable | ErrorCode::UpstreamTimeout
    )
}

/// How long to hold events back after `e`: a throttled vendor's own reset (its window, at
/// most a minute here; the budget is shared with the account's other callers), else the
/// backoff.
fn wait_for(e: &EngineError, attempts: i32) -> chrono::Duration {
    let said = match e {
        EngineError::RateLimited { rate_limit, .. }
        | EngineError::BudgetExhausted { rate_limit } => {
            rate_limit.retry_after.or(rate_limit.reset)
        }
        _ => None,
    };
    match said {
        Some(secs) => chrono::Duration::seconds(i64::try_from(secs.clamp(1, 60)).unwrap_or(60)),
        None => backoff(attempts),
    }
}

/// 5 s, 30 s, 2 min, 10 min, 30 min.
fn backoff(attempts: i32) -> chrono::Duration {
    let secs = [5, 30, 120, 600, 1800];
    chrono::Duration::seconds(secs[usize::try_from(attempts).unwrap_or(0).min(secs.len() - 1)])
}
