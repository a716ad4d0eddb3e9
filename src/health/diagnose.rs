//! `diagnose(accountId:)`: the on-call playbook, run now and live for one account, step by
//! step in the playbook's order (upstream operational, authentication, rate limits, the
//! latest payloads, connectivity), with the probable cause, the first response and
//! whether to escalate by the playbook's rules: a refresh cycle broken again after a
//! re-authorization, a confirmed schema change (or an endpoint that moved: both need a
//! provider file change), several accounts of one provider failing the same way at once.

use chrono::Utc;
use serde_json::{Value, json};

use super::alerts::AlertKind;
use super::probes::probe_account_now;
use super::watch::state::AccountWatch;
use crate::services::Services;
use crate::store::{AccountHealth, Alert, LinkedAccount, StoreError};

/// One step of the playbook and what it found.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub name: &'static str,
    pub finding: String,
    pub ok: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Diagnosis {
    /// An alert kind, or `HEALTHY`.
    pub kind: String,
    pub probable_cause: String,
    pub first_response: String,
    pub escalate: bool,
    pub steps: Vec<Step>,
    pub evidence: Value,
}

/// Accounts of one provider failing the same way at once (this one included) that make
/// the vendor's problem, not the customer's.
const SEVERAL_ACCOUNTS: usize = 3;

pub async fn diagnose(
    services: &Services,
    account: &LinkedAccount,
) -> Result<Diagnosis, StoreError> {
    let store = &services.store;
    // Connectivity and credentials, live: one authenticated call now.
    let live: Option<AccountHealth> = if account.status == "DISABLED" {
        None
    } else {
        probe_account_now(services, &account.id).await.ok()
    };
    let open: Vec<Alert> = store
        .list_alerts(None, Some("OPEN"), Some(&account.id), 50)
        .await?;
    let watch: AccountWatch = store
        .get_watch_state(&account.id)
        .await?
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let events = store.list_account_events(&account.id, 50).await?;
    let since = Utc::now() - chrono::Duration::hours(1);
    let throttled: Vec<_> = store
        .list_upstream_calls(&account.id, Some(429), 200)
        .await?
        .into_iter()
        .filter(|c| c.created_at >= since)
        .collect();
    let recent_calls = store.list_upstream_calls(&account.id, None, 200).await?;
    let provider_alerts = store
        .list_alerts(None, Some("OPEN"), None, 1000)
        .await?
        .into_iter()
        .filter(|a| a.provider == account.provider)
        .collect::<Vec<_>>();

    let failure = live.as_ref().and_then(|h| h.failure_class.clone());
    let failure_status = live.as_ref().and_then(|h| h.failure_status);
    let has_open = |k: AlertKind| open.iter().any(|a| a.kind == k.name());
    let mut steps = Vec::new();

    // 1. Is the vendor up?
    let outage = matches!(failure_status, Some(s) if s >= 500) || has_open(AlertKind::UpstreamDown);
    let same_outage: std::collections::BTreeSet<&str> = provider_alerts
        .iter()
        .filter(|a| a.kind == AlertKind::UpstreamDown.name())
        .map(|a| a.account_id.as_str())
        .collect();
    steps.push(Step {
        name: "upstream",
        finding: if outage {
            format!(
                "the vendor answers with server errors ({}); {} account(s) of `{}` see an outage now",
                failure_status.map_or("repeatedly".to_owned(), |s| format!("HTTP {s} just now")),
                same_outage.len().max(1),
                account.provider
            )
        } else {
            format!("`{}` answered without a server error", account.provider)
        },
        ok: !outage,
    });

    // 2. Authentication.
    let auth_failed = failure.as_deref() == Some("AUTH")
        || matches!(account.status.as_str(), "NEEDS_REAUTH" | "REVOKED");
    let refresh_failures = events
        .iter()
        .filter(|e| e.kind == "TOKEN_REFRESH_FAILED" || e.kind == "NEEDS_REAUTH")
        .count();
    steps.push(Step {
        name: "credentials",
        finding: if auth_failed {
            format!(
                "the account is {} ({}); a live authenticated call {}; {} refresh failure(s) on record",
                account.status,
                account
                    .status_reason
                    .as_deref()
                    .unwrap_or("no reason recorded"),
                if failure.as_deref() == Some("AUTH") { "was refused" } else { "was not attempted" },
                refresh_failures
            )
        } else if account.status == "DISABLED" {
            "the account is DISABLED: no call is made for it".to_owned()
        } else {
            format!(
                "the account is {} and a live authenticated call worked",
                account.status
            )
        },
        ok: !auth_failed,
    });

    // 3. Rate limits.
    let budgets = services.engine.budget_of(&account.id);
    let quota = open
        .iter()
        .find(|a| a.kind == AlertKind::RateLimited.name())
        .and_then(|a| serde_json::from_str::<Value>(&a.evidence).ok());
    let limited = !throttled.is_empty() || failure_status == Some(429);
    steps.push(Step {
        name: "rateLimits",
        finding: if limited {
            let spent_by = quota
                .as_ref()
                .and_then(|q| q.get("spentBy").and_then(Value::as_str))
                .unwrap_or("unknown");
            format!(
                "{} throttled call(s) in the last hour; the quota is spent by {}",
                throttled.len(),
                spent_by
            )
        } else {
            "no 429 in the last hour".to_owned()
        },
        ok: !limited,
    });

    // 4. The latest payloads, side by side when their shape moved.
    let drifted: Vec<(&String, &super::watch::state::Drift)> = watch
        .resources
        .iter()
        .filter_map(|(name, r)| r.drift.as_ref().map(|d| (name, d)))
        .collect();
    let gone: Vec<&String> = watch
        .resources
        .iter()
        .filter(|(_, r)| r.answered && r.gone_streak > 0)
        .map(|(n, _)| n)
        .collect();
    let endpoint_gone = failure_status == Some(404) || !gone.is_empty();
    steps.push(Step {
        name: "payload",
        finding: match drifted.first() {
            Some((name, d)) => format!("`{name}` responses changed shape: {}", d.summary),
            None if endpoint_gone => format!(
                "the listing of {} answers 404 where it used to answer",
                if gone.is_empty() {
                    "the probe resource".to_owned()
                } else {
                    gone.iter()
                        .map(|g| format!("`{g}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
            None => "the latest responses match the learned shape".to_owned(),
        },
        ok: drifted.is_empty() && !endpoint_gone,
    });

    // 5. Connectivity.
    let network = matches!(
        failure.as_deref(),
        Some("DNS" | "TLS" | "TCP_CONNECT" | "TIMEOUT")
    );
    steps.push(Step {
        name: "connectivity",
        finding: match (&live, network) {
            (Some(h), true) => format!(
                "the probe failed at the {} level: {}",
                h.failure_class.as_deref().unwrap_or("network"),
                h.failure_message.as_deref().unwrap_or("")
            ),
            (Some(_), false) => "the vendor is reachable (DNS, TCP and TLS worked)".to_owned(),
            (None, _) => "not probed (the account is disabled)".to_owned(),
        },
        ok: !network,
    });

    // The verdict: the live evidence first, then what the watcher holds open.
    let kind = if auth_failed {
        Some(AlertKind::TokenRevoked)
    } else if network {
        Some(AlertKind::NetworkFailure)
    } else if outage {
        Some(AlertKind::UpstreamDown)
    } else if (limited && failure_status == Some(429)) || has_open(AlertKind::RateLimited) {
        Some(AlertKind::RateLimited)
    } else if endpoint_gone {
        Some(AlertKind::EndpointGone)
    } else if !drifted.is_empty() {
        Some(AlertKind::SchemaDrift)
    } else {
        // What the watcher holds open, in the playbook's order (an open circuit keeps
        // the live call from saying more).
        AlertKind::ALL.into_iter().find(|k| has_open(*k))
    };

    // Escalation, by the playbook's rules.
    let reauthorized_then_broke = {
        // Newest first: a NEEDS_REAUTH, then (older) a CONNECTED, then an older NEEDS_REAUTH.
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        let first_break = kinds.iter().position(|k| *k == "NEEDS_REAUTH");
        first_break.is_some_and(|i| {
            kinds[i..]
                .iter()
                .position(|k| *k == "CONNECTED")
                .is_some_and(|j| kinds[i + j..].contains(&"NEEDS_REAUTH"))
        })
    };
    let several = kind.is_some_and(|k| {
        let accounts: std::collections::BTreeSet<&str> = provider_alerts
            .iter()
            .filter(|a| a.kind == k.name())
            .map(|a| a.account_id.as_str())
            .collect();
        accounts.len() >= SEVERAL_ACCOUNTS
    });
    let mut reasons = Vec::new();
    if auth_failed && reauthorized_then_broke {
        reasons.push("the refresh cycle broke again after a re-authorization");
    }
    if kind.is_some_and(AlertKind::needs_engineering) {
        reasons.push("the vendor's API changed: the provider file needs a change");
    }
    if several {
        reasons.push("several accounts of this provider fail the same way at once");
    }

    let evidence = json!({
        "status": account.status,
        "statusReason": account.status_reason,
        "probe": live.as_ref().map(|h| json!({
            "state": h.state,
            "class": h.failure_class,
            "httpStatus": h.failure_status,
            "message": h.failure_message,
        })),
        "openAlerts": open.iter().map(|a| a.kind.clone()).collect::<Vec<_>>(),
        "throttledLastHour": throttled.len(),
        "rateLimitWindows": budgets.iter().map(|b| json!({
            "window": b.window, "limit": b.limit, "remaining": b.remaining,
        })).collect::<Vec<_>>(),
        "quota": quota,
        "recentCalls": recent_calls.iter().take(20).map(|c| json!({
            "method": c.method, "path": c.path, "status": c.status,
            "errorClass": c.error_class, "at": c.created_at,
        })).collect::<Vec<_>>(),
        "payloads": drifted.iter().map(|(name, d)| json!({
            "resource": name,
            "changes": d.changes,
            "lastGood": d.last_good,
            "firstBad": d.first_bad,
        })).collect::<Vec<_>>(),
        "escalationReasons": reasons,
        "refreshFailures": refresh_failures,
    });
    Ok(match kind {
        Some(k) => Diagnosis {
            kind: k.name().to_owned(),
            probable_cause: k.probable_cause().to_owned(),
            first_response: k.first_response().to_owned(),
            escalate: !reasons.is_empty(),
            steps,
            evidence,
        },
        None => Diagnosis {
            kind: "HEALTHY".to_owned(),
            probable_cause: "Nothing wrong was found: the vendor answers, the credentials work, no throttling, the payloads keep their shape.".to_owned(),
            first_response: "No action needed. If the customer still sees a problem, check the mapping overrides of the account and the events it received.".to_owned(),
            escalate: false,
            steps,
            evidence,
        },
    })
}
