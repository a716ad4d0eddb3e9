//! Reconciliation polling, the seed's hybrid pattern: on a schedule per account, ask the
//! vendor what changed since the last pass. A change no webhook brought becomes an event
//! with `source: POLL`, and is counted as a missed delivery on the account. Vendors that
//! push nothing Tessera can verify are served this way alone. Two ways to ask:
//!
//! - The listing's `updatedSince` filter from a watermark: the vendor's own modification
//!   time of the newest change looked at, read back with an overlap (clocks and commit
//!   order), so nothing between two passes is skipped; the overlap's repeats share a
//!   deduplication key and are stored once.
//! - The vendor's change feed (`changes` in the provider file, e.g. a sync token): the
//!   first pass lists everything and keeps the token of its last page; later passes list
//!   what changed since the token, deletions included. The watermark is then the time of
//!   the last pass. A full listing is a baseline: only records modified since the
//!   watermark become events (on the first pass, since the account was linked, as the
//!   `updatedSince` way does). A token the vendor refuses as expired is dropped, every
//!   record listed again the same way, and an account event `SYNC_TOKEN_EXPIRED` says so;
//!   deletions made while the token was dead are not seen (a full listing shows only what
//!   exists, and Tessera keeps no copy of the vendor's ids).
//!
//! Either way, changes newer than the settling time are not reported yet (a webhook for
//! them may be on its way): the watermark stops before them, and a feed keeps its old token
//! so the next pass reads them again. Each (account, resource) is claimed by one replica at
//! a time.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::events::{Action, VendorEvent};
use crate::access::{Caller, handle_for};
use crate::engine::{AccountHandle, Change, EngineError, RequestSpend};
use crate::services::{Services, SharedServices};
use crate::store::{FeedToken, InboxEvent, LinkedAccount, ReconcileState, StoreError};

/// How far back each pass reads before the watermark.
const OVERLAP: chrono::Duration = chrono::Duration::seconds(120);
/// The most changes one pass reads for one (account, resource); the rest wait for the next.
const MAX_PAGES: usize = 10;
const PAGE: usize = 100;
/// The most pages one walk of a change feed reads. A feed's token comes with its last
/// page, so a walk is read whole in one pass: this bounds the records a full listing can
/// hold (200,000 at 1,000 a page); a longer one fails, and the next pass tries again.
const MAX_FEED_PAGES: usize = 200;
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

/// The resources of the account's provider that can be polled for changes: those with a
/// change feed, or a listing that filters by `updatedSince`.
fn pollable(services: &Services, account: &LinkedAccount, schedule: &Schedule) -> Vec<String> {
    let Some(provider) = services.providers.get(&account.provider) else {
        return Vec::new();
    };
    schedule
        .resources
        .iter()
        .filter(|r| {
            provider.resources.get(r.as_str()).is_some_and(|m| {
                m.changes.is_some()
                    || m.search
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

/// One (account, resource): asks what changed since the last pass, queues what no webhook
/// brought, moves the watermark (or the feed's token). Returns how many missed changes it
/// queued.
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
    let has_feed = handle
        .provider
        .resources
        .get(&state.resource)
        .is_some_and(|r| r.changes.is_some());
    let missed = if has_feed {
        poll_feed(services, &handle, state, settle).await?
    } else {
        poll_updated_since(services, &handle, state, settle).await?
    };
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

/// A change reconciliation found, as the inbox holds it.
fn polled(
    resource: &str,
    action: Action,
    remote_id: &str,
    occurred_at: DateTime<Utc>,
    dedup_key: String,
    record: Option<Value>,
) -> InboxEvent {
    let event = VendorEvent {
        resource: resource.to_owned(),
        action,
        remote_id: remote_id.to_owned(),
        occurred_at,
        dedup_key,
        record,
        account_key: None,
        subscription: None,
        secret: None,
    };
    InboxEvent {
        dedup_key: event.dedup_key.clone(),
        event: serde_json::to_string(&event).unwrap_or_default(),
        source: "POLL".into(),
    }
}

/// The `updatedSince` way: lists changes since the watermark and moves it.
async fn poll_updated_since(
    services: &Services,
    handle: &AccountHandle,
    state: &mut ReconcileState,
    settle: chrono::Duration,
) -> Result<Vec<InboxEvent>, String> {
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
            .list(handle, &state.resource, PAGE, after.as_deref(), &filter)
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
                    &handle.id,
                    &state.resource,
                    &record.remote_id,
                    before(updated),
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
            missed.push(polled(
                &state.resource,
                if created {
                    Action::Created
                } else {
                    Action::Updated
                },
                &record.remote_id,
                updated,
                format!("poll:{}:{}", record.remote_id, updated.timestamp_millis()),
                Some(record.raw.clone()),
            ));
        }
        if !page.has_next_page {
            break;
        }
        after = page.edges.last().map(|e| e.cursor.clone());
    }
    // Never past a change still settling: the next pass starts at or before it.
    state.watermark = newest.min(horizon.max(state.watermark));
    Ok(missed)
}

/// The change-feed way: the changes since the stored token (or a full listing without
/// one, when the vendor refuses it as expired, or when it was taken with another request),
/// and the token of the walk's last page.
async fn poll_feed(
    services: &Services,
    handle: &AccountHandle,
    state: &mut ReconcileState,
    settle: chrono::Duration,
) -> Result<Vec<InboxEvent>, String> {
    let request = services
        .engine
        .change_request(handle, &state.resource)
        .map_err(|e| e.to_string())?;
    let started = Utc::now();
    let pass = Pass {
        services,
        handle,
        state,
        horizon: started - settle,
        started,
    };
    let walk = match &state.sync_token {
        None => pass.walk(None).await.map_err(|e| e.to_string())?,
        // Vendors refuse a token sent with other parameters than the call that made it,
        // and would refuse it on every pass: it is not sent again.
        Some(t) if t.request != request => {
            let resync = pass
                .resync(
                    "SYNC_TOKEN_RESET",
                    "was taken with a request that has changed since (the provider file, the account's overrides or its base URL)",
                )
                .await;
            // Unusable whatever the resync did: the next pass must not send it.
            state.sync_token = None;
            resync?
        }
        Some(t) => match pass.walk(Some(&t.token)).await {
            Ok(walk) => walk,
            Err(WalkError::Engine(EngineError::FeedExpired { .. })) => {
                let resync = pass.resync("SYNC_TOKEN_EXPIRED", "expired").await;
                state.sync_token = None;
                resync?
            }
            Err(e) => return Err(e.to_string()),
        },
    };
    // With changes still settling, the token (or its absence) and the watermark stay
    // where they were: the next pass reads those changes again, and the repeats of what
    // is queued now share its deduplication keys.
    if !walk.unsettled {
        state.sync_token = Some(FeedToken {
            token: walk.token,
            request,
        });
        state.watermark = started.max(state.watermark);
    }
    Ok(walk.missed)
}

/// One pass over a change feed.
struct Pass<'a> {
    services: &'a Services,
    handle: &'a AccountHandle,
    state: &'a ReconcileState,
    /// Changes after this vendor time are still settling.
    horizon: DateTime<Utc>,
    started: DateTime<Utc>,
}

/// What one walk of a feed found.
struct Walk {
    missed: Vec<InboxEvent>,
    listed: usize,
    /// Changes still settling were seen: the walk's token must not be kept.
    unsettled: bool,
    token: String,
}

impl Pass<'_> {
    /// A full listing in place of a token that cannot be used (`why` it cannot), told to
    /// the account as an event of `kind`.
    async fn resync(&self, kind: &str, why: &str) -> Result<Walk, String> {
        let resync = self.walk(None).await;
        let resource = &self.state.resource;
        let message = match &resync {
            Ok(w) => format!(
                "the vendor's sync token for {resource} {why}; a full resync listed {} record(s) and found {} changed since the last pass",
                w.listed,
                w.missed.len()
            ),
            Err(e) => format!(
                "the vendor's sync token for {resource} {why}; the full resync failed ({e}), and the next pass lists every record again"
            ),
        };
        tracing::warn!(account = %self.handle.id, resource = %resource, "{message}");
        let _ = self
            .services
            .store
            .insert_account_event(&self.handle.id, kind, &message)
            .await;
        resync.map_err(|e| e.to_string())
    }

    /// Reads every page of the changes since `since` (a full listing without it).
    async fn walk(&self, since: Option<&str>) -> Result<Walk, WalkError> {
        let mut walk = Walk {
            missed: Vec::new(),
            listed: 0,
            unsettled: false,
            token: String::new(),
        };
        let mut page: Option<String> = None;
        let mut pages_seen = std::collections::HashSet::new();
        for _ in 0..MAX_FEED_PAGES {
            // Each page is a request of its own for the call and mapping budgets: a walk
            // is as long as the vendor's data, not as a caller's query.
            let handle = AccountHandle {
                spend: Arc::new(RequestSpend::default()),
                ..self.handle.clone()
            };
            let got = self
                .services
                .engine
                .change_page(&handle, &self.state.resource, since, page.as_deref())
                .await?;
            walk.listed = walk.listed.saturating_add(got.changes.len());
            for change in got.changes {
                match self.event(change, since.is_none()).await? {
                    Found::Missed(e) => walk.missed.push(e),
                    Found::Settling => walk.unsettled = true,
                    Found::Nothing => {}
                }
            }
            match (got.next_page, got.token) {
                (Some(next), _) => {
                    if !pages_seen.insert(next.clone()) {
                        return Err(EngineError::PaginationLoop.into());
                    }
                    page = Some(next);
                }
                (None, Some(token)) => {
                    walk.token = token;
                    return Ok(walk);
                }
                (None, None) => {
                    return Err(EngineError::Drift {
                        what: "the change feed ended without a token".into(),
                    }
                    .into());
                }
            }
        }
        Err(EngineError::PageCap {
            pages: MAX_FEED_PAGES,
        }
        .into())
    }

    /// What one record of a walk means. In a full listing (`full`) only what was modified
    /// since the watermark is a change; in a listing of changes, everything is.
    async fn event(&self, change: Change, full: bool) -> Result<Found, StoreError> {
        let (services, state) = (self.services, self.state);
        let record = change.record;
        let id = record.remote_id.as_str();
        let mapped = record.mapped.as_ref().ok();
        let time = |field: &str| {
            mapped
                .and_then(|m| m.get(field))
                .and_then(super::vendor_time)
        };
        let updated = time("remoteUpdatedAt");
        if change.deleted {
            // A full listing shows what exists: a tombstone there has nothing to say.
            if full
                || services
                    .store
                    .webhook_saw_deletion(&self.handle.id, &state.resource, id)
                    .await?
            {
                return Ok(Found::Nothing);
            }
            return Ok(Found::Missed(polled(
                &state.resource,
                Action::Deleted,
                id,
                updated.unwrap_or(self.started),
                format!("poll:{id}:deleted"),
                None,
            )));
        }
        match updated {
            Some(t) if t > self.horizon => return Ok(Found::Settling),
            // The baseline: unchanged since the last pass, or not dated, so not known to
            // have changed.
            Some(t) if full && t <= state.watermark - OVERLAP => return Ok(Found::Nothing),
            None if full => return Ok(Found::Nothing),
            _ => {}
        }
        let since = match updated {
            Some(t) => before(t),
            None => state.watermark - OVERLAP,
        };
        if services
            .store
            .webhook_saw_change(&self.handle.id, &state.resource, id, since)
            .await?
        {
            return Ok(Found::Nothing);
        }
        let created = time("remoteCreatedAt").is_some_and(|c| c > state.watermark);
        // An undated change is told apart from the next one by its content.
        let version = match updated {
            Some(t) => t.timestamp_millis().to_string(),
            None => digest(&record.raw),
        };
        Ok(Found::Missed(polled(
            &state.resource,
            if created {
                Action::Created
            } else {
                Action::Updated
            },
            id,
            updated.unwrap_or(self.started),
            format!("poll:{id}:{version}"),
            Some(record.raw),
        )))
    }
}

/// Why a walk of a feed stopped.
#[derive(Debug, thiserror::Error)]
enum WalkError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a record of a feed's walk comes to.
enum Found {
    Missed(InboxEvent),
    /// Changed too recently to tell whether a webhook is bringing it.
    Settling,
    Nothing,
}

/// Where to look for a webhook that brought a change the vendor dates `t`: a little
/// before, for the vendor's clock and its event's own time. (A vendor time at the edge of
/// the calendar is taken as it is.)
fn before(t: DateTime<Utc>) -> DateTime<Utc> {
    t.checked_sub_signed(chrono::Duration::seconds(5))
        .unwrap_or(t)
}

/// A short digest of a vendor record.
fn digest(raw: &Value) -> String {
    use sha2::Digest as _;
    crate::signing::hex(&sha2::Sha256::digest(raw.to_string().as_bytes())[..12])
}
