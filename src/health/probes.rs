//! Health probes. Each linked account is probed every `TESSERA_PROBE_INTERVAL_SECS`
//! (default 300, jittered by up to a tenth) with a one-record listing of its provider's
//! probe resource, through the engine like any read (credentials refreshed, rate limits
//! and breakers honoured, the call logged). DISABLED accounts are not probed; accounts that
//! must be reconnected are reported without a call.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::StreamExt;
use serde_json::Map;

use crate::access::handle_for_row;
use crate::engine::{EngineError, NetworkFailure, RequestSpend};
use crate::error::{ErrorCode, HasCode};
use crate::services::{Services, SharedServices};
use crate::store::{AccountHealth, LinkedAccount, ProbeResult, StoreError};

/// How long a probe claim holds: far more than a probe takes.
const LEASE: chrono::Duration = chrono::Duration::minutes(5);
/// Accounts probed at once.
const CONCURRENCY: usize = 16;
/// Accounts claimed per tick.
const BATCH: u64 = 200;

/// The probe interval: `TESSERA_PROBE_INTERVAL_SECS` (1 s to a day), default 300.
pub fn interval() -> Duration {
    let secs = std::env::var("TESSERA_PROBE_INTERVAL_SECS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| (1..=86_400).contains(s))
        .unwrap_or(300);
    Duration::from_secs(secs)
}

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// `None` when the call succeeded.
    pub failure: Option<Failure>,
    pub latency_ms: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `DNS`, `TCP_CONNECT`, `TLS`, `TIMEOUT`, `HTTP_STATUS` or `AUTH`.
    pub class: &'static str,
    pub message: String,
    pub http_status: Option<u16>,
}

/// Runs until `stop`.
pub async fn run(services: SharedServices, mut stop: tokio::sync::watch::Receiver<bool>) {
    let every = services.probe_interval;
    let enroll_every = every.min(Duration::from_secs(60));
    let tick = (every / 10).clamp(Duration::from_millis(200), Duration::from_secs(5));
    // The first enrollment waits one period: a replica that just started (a rolling
    // deploy, a test) does not probe accounts it has only just seen linked.
    let mut last_enrolled = Instant::now();
    loop {
        if last_enrolled.elapsed() >= enroll_every {
            if let Err(e) = enroll(&services, every).await {
                tracing::warn!(error = %e, "probes cannot list accounts; will retry");
            }
            last_enrolled = Instant::now();
        }
        match probe_due(&services, every).await {
            Ok(n) if n as u64 == BATCH => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "probes cannot reach the database; will retry"),
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Schedules a first probe, spread over one interval, for accounts that have none.
async fn enroll(services: &Services, every: Duration) -> Result<(), StoreError> {
    let now = Utc::now();
    let accounts: Vec<(String, chrono::DateTime<Utc>)> = services
        .store
        .list_linked_accounts(None)
        .await?
        .into_iter()
        .map(|a| (a.id, now + jitter(every)))
        .collect();
    services.store.enroll_probes(&accounts).await
}

fn jitter(span: Duration) -> chrono::Duration {
    use rand::Rng;
    let ms = u64::try_from(span.as_millis()).unwrap_or(u64::MAX).max(1);
    chrono::Duration::milliseconds(i64::try_from(rand::thread_rng().gen_range(0..ms)).unwrap_or(0))
}

/// Probes every account that is due; returns how many it claimed.
pub async fn probe_due(services: &Services, every: Duration) -> Result<usize, StoreError> {
    let due = services.store.claim_due_probes(BATCH, LEASE).await?;
    let n = due.len();
    // Every claimed account in one query: a tick costs the same statements for 1 account
    // or 200.
    let ids: Vec<String> = due.iter().map(|h| h.account_id.clone()).collect();
    let mut accounts: std::collections::HashMap<String, LinkedAccount> = services
        .store
        .get_linked_accounts(&ids)
        .await?
        .into_iter()
        .map(|a| (a.id.clone(), a))
        .collect();
    let work: Vec<(AccountHealth, Option<LinkedAccount>)> = due
        .into_iter()
        .map(|h| {
            let account = accounts.remove(&h.account_id);
            (h, account)
        })
        .collect();
    let outcomes: Vec<(AccountHealth, Option<ProbeResult>)> = futures_util::stream::iter(work)
        .map(|(h, account)| async move { probe_one(services, h, account, every).await })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let (health, results): (Vec<_>, Vec<_>) = outcomes.into_iter().unzip();
    services
        .store
        .save_probes(health, results.into_iter().flatten().collect())
        .await?;
    Ok(n)
}

/// Probes one account now, whatever its schedule, and stores the outcome (tests,
/// `diagnose`).
pub async fn probe_account_now(
    services: &Services,
    account_id: &str,
) -> Result<AccountHealth, String> {
    let now = Utc::now();
    services
        .store
        .enroll_probes(&[(account_id.to_owned(), now)])
        .await
        .map_err(|e| e.to_string())?;
    let current = services
        .store
        .get_account_health(account_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the account has no health record")?;
    let account = services
        .store
        .get_linked_account(account_id)
        .await
        .map_err(|e| e.to_string())?;
    let (health, result) = probe_one(services, current, account, services.probe_interval).await;
    services
        .store
        .save_probes(vec![health.clone()], result.into_iter().collect())
        .await
        .map_err(|e| e.to_string())?;
    Ok(health)
}

async fn probe_one(
    services: &Services,
    mut h: AccountHealth,
    account: Option<LinkedAccount>,
    every: Duration,
) -> (AccountHealth, Option<ProbeResult>) {
    let now = Utc::now();
    h.next_probe_at = now
        + chrono::Duration::from_std(every).unwrap_or(chrono::Duration::minutes(5))
        + jitter(every / 10);
    // Gone (its health row goes with it): nothing to probe.
    let Some(account) = account else {
        return (h, None);
    };
    if account.status == "DISABLED" {
        return (h, None);
    }
    let finding = probe(services, &account).await;
    h.last_probe_at = Some(now);
    let result = ProbeResult {
        account_id: h.account_id.clone(),
        at: now,
        ok: finding.failure.is_none(),
        class: finding.failure.as_ref().map(|f| f.class.to_owned()),
        http_status: finding
            .failure
            .as_ref()
            .and_then(|f| f.http_status)
            .map(i32::from),
        latency_ms: finding.latency_ms,
    };
    match finding.failure {
        None => {
            h.state = "HEALTHY".into();
            h.last_ok_at = Some(now);
            h.failure_class = None;
            h.failure_message = None;
            h.failure_status = None;
            h.consecutive_failures = 0;
        }
        Some(f) => {
            h.consecutive_failures = h.consecutive_failures.saturating_add(1);
            // Credentials that do not work, or a failure seen twice in a row, is FAILING;
            // one failure, or a spent quota (the account works, others spend it), DEGRADED.
            let throttled = f.http_status == Some(429);
            h.state = if f.class == "AUTH" || (h.consecutive_failures >= 2 && !throttled) {
                "FAILING".into()
            } else {
                "DEGRADED".into()
            };
            h.failure_class = Some(f.class.to_owned());
            h.failure_message = Some(f.message);
            h.failure_status = f.http_status.map(i32::from);
        }
    }
    (h, Some(result))
}

/// One authenticated call for the account, classified.
pub async fn probe(services: &Services, account: &LinkedAccount) -> Finding {
    let started = Instant::now();
    let elapsed = |s: Instant| i32::try_from(s.elapsed().as_millis()).unwrap_or(i32::MAX);
    if matches!(account.status.as_str(), "NEEDS_REAUTH" | "REVOKED") {
        return Finding {
            failure: Some(Failure {
                class: "AUTH",
                message: format!(
                    "the account must be reconnected (status {})",
                    account.status
                ),
                http_status: None,
            }),
            latency_ms: 0,
        };
    }
    let Some(resource) = services
        .providers
        .get(&account.provider)
        .and_then(|p| p.probe_resource.clone())
    else {
        return Finding {
            failure: Some(Failure {
                class: "HTTP_STATUS",
                message: "the provider has no resource to probe with".into(),
                http_status: None,
            }),
            latency_ms: 0,
        };
    };
    let handle =
        match handle_for_row(services, account.clone(), Arc::new(RequestSpend::default())).await {
            Ok(h) => h,
            Err(e) => {
                let class = match e.code() {
                    // Not the credentials: the server refuses to call the account's address.
                    _ if e.upstream_refused => "HTTP_STATUS",
                    ErrorCode::NeedsReauth | ErrorCode::Unauthenticated | ErrorCode::Forbidden => {
                        "AUTH"
                    }
                    ErrorCode::UpstreamTimeout => "TIMEOUT",
                    ErrorCode::UpstreamUnavailable => "TCP_CONNECT",
                    _ => "HTTP_STATUS",
                };
                return Finding {
                    failure: Some(Failure {
                        class,
                        message: e.to_string(),
                        http_status: None,
                    }),
                    latency_ms: elapsed(started),
                };
            }
        };
    let result = services
        .engine
        .list(&handle, &resource, 1, None, &Map::new())
        .await;
    Finding {
        failure: result.err().map(|e| classify(&e)),
        latency_ms: elapsed(started),
    }
}

/// The probe classes of an engine error, from its type.
pub fn classify(e: &EngineError) -> Failure {
    let (class, http_status) = match e {
        EngineError::Network { kind, .. } => (
            match kind {
                NetworkFailure::Dns => "DNS",
                NetworkFailure::Tls => "TLS",
                NetworkFailure::Connect | NetworkFailure::CutOff | NetworkFailure::Other => {
                    "TCP_CONNECT"
                }
                NetworkFailure::Refused => "HTTP_STATUS",
            },
            None,
        ),
        EngineError::Timeout => ("TIMEOUT", None),
        // The connection broke while the answer came in: a network fault, as a reset is.
        EngineError::CutOff { .. } => ("TCP_CONNECT", None),
        EngineError::Unauthorized { status, .. } | EngineError::Forbidden { status, .. } => {
            ("AUTH", Some(*status))
        }
        EngineError::RateLimited { status, .. } => ("HTTP_STATUS", Some(*status)),
        EngineError::BudgetExhausted { .. } => ("HTTP_STATUS", Some(429)),
        EngineError::Unavailable { status, .. }
        | EngineError::Upstream { status, .. }
        | EngineError::Rejected { status, .. } => ("HTTP_STATUS", Some(*status)),
        EngineError::NotFound { .. } => ("HTTP_STATUS", Some(404)),
        _ => ("HTTP_STATUS", None),
    };
    Failure {
        class,
        message: e.to_string(),
        http_status,
    }
}
