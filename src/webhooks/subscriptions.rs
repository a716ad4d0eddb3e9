//! Per-account vendor subscriptions as configuration: created when an account is linked,
//! renewed when half their lifetime has passed (the lifetime comes from the provider file,
//! and may be 45 minutes or a week), created again when the vendor lost them, and shown as
//! `LinkedAccount.webhookSubscriptions`. A vendor's own notices (a reauthorization asked
//! for, a subscription removed) make one due at once.
//!
//! Renewal work is claimed with a token and a lease in the database, so two replicas never
//! renew the same subscription; a replica that dies mid-renewal loses only its lease.
//!
//! States: `ACTIVE` (delivering), `FAILED` (the last renewal or creation failed; retried
//! with backoff while the vendor still delivers), `LAPSED` (it expired, or could not be
//! created: the vendor is not delivering; still retried), `DELETED`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use rand::distributions::Alphanumeric;
use serde_json::{Map, Value, json};

use super::intake::subscription_context;
use crate::access::{Caller, handle_as_stored, handle_for};
use crate::config::webhooks::{RawSecretSource, SubscriptionCall, SubscriptionConfig};
use crate::config::{PathSegment, ProviderModel};
use crate::engine::{AccountHandle, RequestSpend};
use crate::mapping::Vars;
use crate::secret::Secret;
use crate::services::{Services, SharedServices};
use crate::store::{LinkedAccount, StoreError, WebhookSubscription};

/// How long a renewal claim holds: far longer than a vendor call, so only a dead replica's
/// claims are taken over.
const LEASE: chrono::Duration = chrono::Duration::seconds(60);
/// How often due renewals are looked for without being woken.
const POLL: Duration = Duration::from_secs(2);

/// Creates the account's subscription at the vendor, when its provider declares one and
/// the account has none yet. A failure is stored as a `LAPSED` subscription the renewal
/// job retries (the account works; only its webhooks wait).
pub async fn create_on_link(services: &Services, account: &LinkedAccount) -> Result<(), String> {
    let Some(provider) = services.providers.get(&account.provider) else {
        return Ok(());
    };
    let Some(cfg) = provider
        .webhooks
        .as_ref()
        .and_then(|w| w.subscription.as_ref())
    else {
        return Ok(());
    };
    let existing = services
        .store
        .list_webhook_subscriptions(&account.id)
        .await
        .map_err(|e| e.to_string())?;
    if existing.iter().any(|s| s.state != "DELETED") {
        // Linked again (re-authorized in place): the subscriptions the dead grant could
        // not renew are retried now, not at the end of their backoff.
        let stuck: Vec<&WebhookSubscription> = existing
            .iter()
            .filter(|s| matches!(s.state.as_str(), "FAILED" | "LAPSED"))
            .collect();
        renew_now(services, &stuck).await;
        return Ok(());
    }
    let now = Utc::now();
    let mut sub = WebhookSubscription {
        id: uuid::Uuid::new_v4().to_string(),
        account_id: account.id.clone(),
        remote_id: None,
        state: "LAPSED".into(),
        secret: None,
        expires_at: None,
        renew_at: None,
        last_renewed_at: None,
        last_delivery_at: None,
        created_at: now,
        failures: 0,
        last_error: None,
    };
    // The token was just given: use it as stored rather than refreshing on connect.
    let outcome = match handle_as_stored(
        services,
        &Caller::Admin,
        &account.id,
        Arc::new(RequestSpend::default()),
    )
    .await
    {
        Ok(handle) => create(services, cfg, &handle, account, &mut sub).await,
        Err(e) => Err(e.to_string()),
    };
    if let Err(message) = &outcome {
        failed(services, &mut sub, message).await;
    }
    services
        .store
        .insert_webhook_subscription(sub)
        .await
        .map_err(|e| e.to_string())?;
    outcome
}

/// Makes the account's subscriptions due now (an account enabled again: their renewals
/// were put off while it was disabled).
pub async fn renew_account_now(services: &Services, account: &str) -> Result<(), StoreError> {
    let subs = services.store.list_webhook_subscriptions(account).await?;
    let live: Vec<&WebhookSubscription> = subs.iter().filter(|s| s.state != "DELETED").collect();
    renew_now(services, &live).await;
    Ok(())
}

async fn renew_now(services: &Services, subs: &[&WebhookSubscription]) {
    for sub in subs {
        if let Err(e) = services.store.renew_webhook_subscription_now(&sub.id).await {
            tracing::warn!(subscription = %sub.id, error = %e, "cannot make a webhook subscription due");
        }
    }
    if !subs.is_empty() {
        services.events.subscriptions.notify_one();
    }
}

/// Deletes the account's subscriptions at the vendor (when its provider file says how),
/// before the account itself is deleted: a vendor must not keep delivering to a gateway
/// that forgot the account. Returns how many the vendor deleted, and why the others were
/// not (the account's rows go anyway; the vendor's copy expires on its own at most).
pub async fn delete_for_account(
    services: &Services,
    account: &LinkedAccount,
) -> (usize, Vec<String>) {
    let live: Vec<WebhookSubscription> =
        match services.store.list_webhook_subscriptions(&account.id).await {
            Ok(subs) => subs
                .into_iter()
                .filter(|s| s.state != "DELETED" && s.remote_id.is_some())
                .collect(),
            Err(e) => return (0, vec![e.to_string()]),
        };
    if live.is_empty() {
        return (0, Vec::new());
    }
    let Some(provider) = services.providers.get(&account.provider) else {
        return (0, vec!["the account's provider is not loaded".into()]);
    };
    let Some(call) = provider
        .webhooks
        .as_ref()
        .and_then(|w| w.subscription.as_ref())
        .and_then(|c| c.delete.as_ref())
    else {
        return (
            0,
            vec!["the provider file declares no way to delete a subscription: the vendor's copy lapses at its expiry".into()],
        );
    };
    // The account is disabled on its way out: a handle that still reaches the vendor.
    let handle = match crate::access::handle_for_cleanup(services, account.clone()).await {
        Ok(h) => h,
        Err(e) => {
            return (
                0,
                vec![format!(
                    "the subscriptions could not be deleted at the vendor ({e}): their copies lapse at their expiry"
                )],
            );
        }
    };
    let mut deleted = 0;
    let mut problems = Vec::new();
    for sub in &live {
        let secret = open_secret(services, sub);
        let vars = vars(
            services,
            account,
            provider,
            secret.as_ref(),
            None,
            sub.remote_id.as_deref(),
        );
        match send(services, &handle, call, &vars).await {
            Ok(reply) if reply.ok || reply.gone => deleted += 1,
            Ok(reply) => problems.push(format!(
                "the vendor refused to delete subscription `{}`: HTTP {}{}",
                sub.id, reply.status, reply.summary
            )),
            Err(e) => problems.push(format!("subscription `{}`: {e}", sub.id)),
        }
    }
    (deleted, problems)
}

/// Runs until `stop`: renews what is due, every [`POLL`] or when woken.
pub async fn run(services: SharedServices, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        match renew_due(&services).await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "webhook subscription renewal cannot reach the database; will retry")
            }
        }
        tokio::select! {
            _ = services.events.subscriptions.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Renews every subscription that is due now; returns how many it took.
pub async fn renew_due(services: &Services) -> Result<usize, StoreError> {
    let claimed = services.store.claim_due_subscriptions(20, LEASE).await?;
    let n = claimed.len();
    for (mut sub, claim) in claimed {
        renew_one(services, &mut sub).await;
        if !services
            .store
            .save_webhook_subscription(&sub, &claim)
            .await?
        {
            tracing::info!(subscription = %sub.id, "a webhook subscription was taken over by another replica");
        }
    }
    Ok(n)
}

async fn renew_one(services: &Services, sub: &mut WebhookSubscription) {
    let result = async {
        let account = services
            .store
            .get_linked_account(&sub.account_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the account is gone")?;
        if account.status == "DISABLED" {
            // No call for a disabled account: look again in an hour (enabling it does not
            // wait for that: the vendor's copy is renewed or recreated at the next pass).
            sub.renew_at = Some(Utc::now() + chrono::Duration::hours(1));
            return Ok(());
        }
        let provider = services
            .providers
            .get(&account.provider)
            .ok_or("the account's provider is not loaded")?;
        let cfg = provider
            .webhooks
            .as_ref()
            .and_then(|w| w.subscription.as_ref())
            .ok_or("the provider no longer declares subscriptions")?;
        let handle = handle_for(services, &Caller::Admin, &account.id, Arc::new(RequestSpend::default()))
            .await
            .map_err(|e| e.to_string())?;
        match (&sub.remote_id, &cfg.renew) {
            (None, _) => create(services, cfg, &handle, &account, sub).await,
            (Some(_), None) => create(services, cfg, &handle, &account, sub).await,
            (Some(remote), Some(call)) => {
                let remote = remote.clone();
                let secret = open_secret(services, sub);
                let expires = requested_expiry(cfg, &account);
                let vars = vars(services, &account, provider, secret.as_ref(), expires, Some(&remote));
                let reply = send(services, &handle, call, &vars).await?;
                if reply.gone {
                    tracing::info!(subscription = %sub.id, "the vendor lost the webhook subscription; creating it again");
                    return create(services, cfg, &handle, &account, sub).await;
                }
                if !reply.ok {
                    return Err(format!("renewal refused: HTTP {}{}", reply.status, reply.summary));
                }
                settle(sub, call, &reply.body, expires);
                Ok(())
            }
        }
    }
    .await;
    if let Err(message) = result {
        failed(services, sub, &message).await;
    }
}

/// Creates the subscription at the vendor and fills `sub` from the answer.
async fn create(
    services: &Services,
    cfg: &SubscriptionConfig,
    handle: &AccountHandle,
    account: &LinkedAccount,
    sub: &mut WebhookSubscription,
) -> Result<(), String> {
    let provider = &handle.provider;
    let secret = match cfg.secret {
        // Kept across re-creations: the vendor echoes what it was given.
        RawSecretSource::Token | RawSecretSource::Basic => {
            Some(open_secret(services, sub).unwrap_or_else(|| generate(cfg.secret)))
        }
        RawSecretSource::Response => None,
    };
    let expires = requested_expiry(cfg, account);
    let vars = vars(services, account, provider, secret.as_ref(), expires, None);
    let reply = send(services, handle, &cfg.create, &vars).await?;
    if !reply.ok {
        return Err(format!(
            "the vendor refused to create the subscription: HTTP {}{}",
            reply.status, reply.summary
        ));
    }
    let remote = cfg
        .create
        .remote_id_pointer
        .as_ref()
        .and_then(|p| reply.body.pointer(p))
        .and_then(text)
        .ok_or("the create answer has no subscription id where the provider file says")?;
    let secret = match (cfg.secret, &cfg.secret_pointer) {
        (RawSecretSource::Response, Some(p)) => {
            Some(Secret::new(reply.body.pointer(p).and_then(text).ok_or(
                "the create answer has no secret where the provider file says",
            )?))
        }
        _ => secret,
    };
    sub.remote_id = Some(remote);
    sub.secret = secret.map(|s| {
        services
            .vault
            .seal_secret(&subscription_context(&sub.id), &s)
    });
    settle(sub, &cfg.create, &reply.body, expires);
    Ok(())
}

/// A successful create or renewal: the expiry the vendor granted, the next renewal at half
/// of what is left.
fn settle(
    sub: &mut WebhookSubscription,
    call: &SubscriptionCall,
    body: &Value,
    asked: Option<DateTime<Utc>>,
) {
    let now = Utc::now();
    let granted = call
        .expires_at_pointer
        .as_ref()
        .and_then(|p| body.pointer(p))
        .and_then(super::vendor_time)
        .or(asked);
    sub.state = "ACTIVE".into();
    sub.expires_at = granted;
    sub.renew_at = granted.map(|g| now + (g - now) / 2);
    sub.last_renewed_at = Some(now);
    sub.failures = 0;
    sub.last_error = None;
}

/// A failed create or renewal: retried with backoff, before the expiry while there is one.
async fn failed(services: &Services, sub: &mut WebhookSubscription, message: &str) {
    let now = Utc::now();
    sub.failures = sub.failures.saturating_add(1);
    sub.last_error = Some(message.chars().take(500).collect());
    let lapsed = sub.remote_id.is_none() || sub.expires_at.is_some_and(|e| e <= now);
    let state = if lapsed { "LAPSED" } else { "FAILED" };
    let secs = [10, 30, 120, 600, 1800, 3600];
    let mut wait = chrono::Duration::seconds(
        secs[usize::try_from(sub.failures - 1)
            .unwrap_or(0)
            .min(secs.len() - 1)],
    );
    if let Some(e) = sub.expires_at.filter(|e| *e > now) {
        // Try again while the vendor still delivers.
        wait = wait.min((e - now) / 2).max(chrono::Duration::seconds(1));
    }
    sub.renew_at = Some(now + wait);
    if sub.state != state {
        let kind = if lapsed {
            "WEBHOOK_SUBSCRIPTION_LAPSED"
        } else {
            "WEBHOOK_SUBSCRIPTION_FAILED"
        };
        tracing::warn!(account = %sub.account_id, subscription = %sub.id, state, error = message, "webhook subscription not renewed");
        let _ = services
            .store
            .insert_account_event(&sub.account_id, kind, message)
            .await;
    }
    sub.state = state.into();
}

/// The expiry to ask for: the provider's longest, or less when the account asks for less.
fn requested_expiry(cfg: &SubscriptionConfig, account: &LinkedAccount) -> Option<DateTime<Utc>> {
    let max = cfg.max_lifetime?;
    let wanted = account
        .settings
        .get("webhookLifetimeSeconds")
        .and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        })
        .filter(|s| *s > 0)
        .map(Duration::from_secs);
    let lifetime = wanted.map_or(max, |w| w.min(max));
    Some(Utc::now() + chrono::Duration::from_std(lifetime).ok()?)
}

fn open_secret(services: &Services, sub: &WebhookSubscription) -> Option<Secret> {
    let sealed = sub.secret.as_ref()?;
    services
        .vault
        .open_secret(&subscription_context(&sub.id), sealed)
        .ok()
}

fn generate(source: RawSecretSource) -> Secret {
    let random: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    match source {
        RawSecretSource::Basic => Secret::new(format!("tessera:{random}")),
        _ => Secret::new(random),
    }
}

/// The variables of the lifecycle's expressions.
fn vars(
    services: &Services,
    account: &LinkedAccount,
    provider: &ProviderModel,
    secret: Option<&Secret>,
    expires: Option<DateTime<Utc>>,
    remote: Option<&str>,
) -> Vars {
    let mut v = Map::new();
    let url = format!(
        "{}/webhooks/{}/{}",
        services.base_url().trim_end_matches('/'),
        provider.name,
        account.id
    );
    v.insert("url".into(), json!(url));
    v.insert("accountId".into(), json!(account.id));
    if let Some(s) = secret {
        v.insert("secret".into(), json!(s.expose()));
        if let Some((user, password)) = s.expose().split_once(':') {
            v.insert("user".into(), json!(user));
            v.insert("password".into(), json!(password));
        }
    }
    if let Some(e) = expires {
        v.insert(
            "expiresAt".into(),
            json!(e.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)),
        );
        v.insert("expiresAtMs".into(), json!(e.timestamp_millis()));
    }
    // A numeric id for vendors whose client names the channel: the remote id once there is
    // one, so a renewal names the same channel.
    // Fifteen digits: exact as a JSON number, which such vendors expect.
    let channel = match remote {
        Some(r) => r.parse::<u64>().map_or_else(|_| json!(r), |n| json!(n)),
        None => json!(rand::thread_rng().gen_range(10_u64.pow(14)..10_u64.pow(15))),
    };
    v.insert("channelId".into(), channel);
    if let Some(r) = remote {
        v.insert("remoteId".into(), json!(r));
    }
    Vars::from_map(v)
}

struct CallReply {
    status: u16,
    body: Value,
    ok: bool,
    gone: bool,
    /// ` (message)` from the vendor's answer, for errors; never the request's secret.
    summary: String,
}

async fn send(
    services: &Services,
    handle: &AccountHandle,
    call: &SubscriptionCall,
    vars: &Vars,
) -> Result<CallReply, String> {
    let mut path = String::new();
    for seg in &call.path.0.segments {
        match seg {
            PathSegment::Literal(l) => path.push_str(l),
            PathSegment::Var(_) => {
                let remote = vars_text(vars, "remoteId").unwrap_or_default();
                path.extend(
                    url::form_urlencoded::byte_serialize(remote.as_bytes())
                        .map(|s| s.replace('+', "%20")),
                );
            }
        }
    }
    let query = query_string(call, vars)?;
    let body = match &call.body {
        Some(expr) => {
            let value = expr
                .evaluate(None, vars)
                .map_err(|e| format!("the provider's subscription body failed: {e}"))?;
            serde_json::to_vec(&value.unwrap_or(Value::Null)).unwrap_or_default()
        }
        None => Vec::new(),
    };
    let content_type = call.body.as_ref().map(|_| "application/json");
    let reply = services
        .engine
        .passthrough(
            handle,
            call.method.clone(),
            path.trim_start_matches('/'),
            query.as_deref(),
            content_type,
            body,
        )
        .await
        .map_err(|e| e.to_string())?;
    let body: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    let input = json!({"status": reply.status, "body": body});
    let judge = |expr: &Option<crate::mapping::Expr>, default: bool| -> bool {
        match expr {
            Some(e) => matches!(
                e.evaluate(Some(&input), &Vars::default()),
                Ok(Some(Value::Bool(true)))
            ),
            None => default,
        }
    };
    let ok = judge(&call.ok, (200..300).contains(&reply.status));
    let gone = judge(&call.gone, matches!(reply.status, 404 | 410));
    let summary = summary(&body, handle);
    Ok(CallReply {
        status: reply.status,
        body,
        ok,
        gone,
        summary,
    })
}

/// The call's query string, from its expressions (none when all are undefined).
fn query_string(call: &SubscriptionCall, vars: &Vars) -> Result<Option<String>, String> {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (name, expr) in &call.query {
        let value = expr
            .evaluate(None, vars)
            .map_err(|e| format!("the provider's `{name}` query expression failed: {e}"))?;
        if let Some(value) = value {
            let text = match value {
                Value::String(s) => s,
                other => other.to_string(),
            };
            query.append_pair(name, &text);
            any = true;
        }
    }
    Ok(any.then(|| query.finish()))
}

/// A short message from a vendor's error answer, with the account's token masked.
fn summary(body: &Value, handle: &AccountHandle) -> String {
    let message = ["/error/message", "/message", "/error", "/watch/0/message"]
        .iter()
        .find_map(|p| body.pointer(p).and_then(Value::as_str));
    match message {
        Some(m) => {
            let m: String = m.chars().take(200).collect();
            format!(" ({})", crate::secret::redact(&m, &[handle.token.expose()]))
        }
        None => String::new(),
    }
}

fn vars_text(vars: &Vars, name: &str) -> Option<String> {
    vars.get(name).and_then(|v| v.as_str().map(str::to_owned))
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
