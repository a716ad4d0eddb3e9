//! Outbound delivery: each unified event, POSTed to every endpoint of its environment that
//! wants its type, signed as `tessera-signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
//! "<t>.<raw body>")>`, retried with backoff for a window (24 h), then dead-lettered
//! (visible, and replayable with `redeliverWebhook`).
//!
//! Deliveries are claimed with leases, so replicas share the work and an endpoint gets an
//! event from one of them. Endpoint URLs are the customer's: they may not point at
//! loopback, private or link-local addresses unless the server's upstream allow list names
//! them (checked on the addresses each delivery connects to, see `crate::upstreams`), and
//! redirects are not followed.

use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};

use crate::services::{Services, SharedServices};
use crate::store::{EndpointDelivery, StoreError, UnifiedEvent, WebhookEndpoint};
use crate::upstreams::{AllowList, Refused};

const LEASE: chrono::Duration = chrono::Duration::seconds(60);
const POLL: Duration = Duration::from_secs(1);
/// A customer endpoint has this long to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// How long a delivery is retried and how the waits grow.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// From the first attempt (or a redelivery) to the dead letter.
    pub window: chrono::Duration,
    /// The first wait; each next one doubles, up to an hour.
    pub first_wait: chrono::Duration,
}

impl RetryPolicy {
    /// 24 h with waits from 30 s, unless `TESSERA_OUTBOUND_RETRY_WINDOW_SECS` and
    /// `TESSERA_OUTBOUND_FIRST_RETRY_SECS` say otherwise (tests of the dead letter).
    pub fn from_env() -> RetryPolicy {
        let secs = |name: &str, default: i64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<i64>().ok())
                .filter(|s| (1..=7 * 86_400).contains(s))
                .unwrap_or(default)
        };
        RetryPolicy {
            window: chrono::Duration::seconds(secs("TESSERA_OUTBOUND_RETRY_WINDOW_SECS", 86_400)),
            first_wait: chrono::Duration::seconds(secs("TESSERA_OUTBOUND_FIRST_RETRY_SECS", 30)),
        }
    }

    fn wait(&self, attempt: i32) -> chrono::Duration {
        let doublings = u32::try_from(attempt.saturating_sub(1))
            .unwrap_or(0)
            .min(16);
        (self.first_wait * 2_i32.pow(doublings)).min(chrono::Duration::hours(1))
    }
}

/// The JSON body of an event's delivery.
pub fn body(e: &UnifiedEvent) -> Value {
    let time = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let record = || {
        e.record
            .as_deref()
            .and_then(|r| serde_json::from_str::<Value>(r).ok())
    };
    if e.source == "MONITOR" {
        // `alert.opened` / `alert.resolved`: the alert itself, not a record.
        return json!({
            "id": e.id,
            "type": e.kind,
            "accountId": e.account_id,
            "occurredAt": time(e.occurred_at),
            "alert": record(),
        });
    }
    json!({
        "id": e.id,
        "type": e.kind,
        "accountId": e.account_id,
        "resource": e.resource,
        "remoteId": e.remote_id,
        "recordId": e.record_id,
        "occurredAt": time(e.occurred_at),
        "receivedAt": time(e.received_at),
        "source": e.source,
        "record": record(),
    })
}

/// The vault context of an endpoint's signing secret.
pub fn endpoint_context(endpoint_id: &str) -> String {
    format!("webhook-endpoint:{endpoint_id}")
}

/// Runs until `stop`.
pub async fn run(services: SharedServices, mut stop: tokio::sync::watch::Receiver<bool>) {
    let policy = RetryPolicy::from_env();
    let http = match crate::upstreams::client(&services.upstreams)
        .timeout(TIMEOUT)
        .user_agent("Tessera-Webhooks/1")
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the outbound webhook client");
            return;
        }
    };
    loop {
        match deliver_due(&services, &http, policy).await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "outbound webhooks cannot reach the database; will retry")
            }
        }
        tokio::select! {
            _ = services.events.outbound.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn deliver_due(
    services: &Services,
    http: &reqwest::Client,
    policy: RetryPolicy,
) -> Result<usize, StoreError> {
    let claimed = services.store.claim_due_deliveries(50, LEASE).await?;
    let n = claimed.len();
    let attempts = claimed.into_iter().map(|(mut d, claim)| async move {
        attempt(services, http, policy, &mut d).await?;
        services.store.save_endpoint_delivery(&d, &claim).await
    });
    for r in futures_util::future::join_all(attempts).await {
        r?;
    }
    Ok(n)
}

async fn attempt(
    services: &Services,
    http: &reqwest::Client,
    policy: RetryPolicy,
    d: &mut EndpointDelivery,
) -> Result<(), StoreError> {
    let now = Utc::now();
    let (Some(endpoint), Some(event)) = (
        services.store.get_webhook_endpoint(&d.endpoint_id).await?,
        services.store.get_unified_event(&d.event_id).await?,
    ) else {
        d.status = "DEAD".into();
        d.next_attempt_at = None;
        d.last_error = Some("the event or the endpoint no longer exists".into());
        return Ok(());
    };
    d.attempt = d.attempt.saturating_add(1);
    match send(services, http, &endpoint, &event).await {
        Ok(status) if (200..300).contains(&status) => {
            d.status = "DELIVERED".into();
            d.last_status = Some(i32::from(status));
            d.last_error = None;
            d.delivered_at = Some(now);
            d.next_attempt_at = None;
            return Ok(());
        }
        Ok(status) => {
            d.last_status = Some(i32::from(status));
            d.last_error = Some(format!("the endpoint answered HTTP {status}"));
        }
        Err(message) => {
            d.last_status = None;
            d.last_error = Some(message);
        }
    }
    let next = now + policy.wait(d.attempt);
    if next > d.created_at + policy.window {
        d.status = "DEAD".into();
        d.next_attempt_at = None;
        tracing::warn!(endpoint = %endpoint.id, event = %event.id, attempts = d.attempt, "webhook delivery dead-lettered");
    } else {
        d.next_attempt_at = Some(next);
    }
    Ok(())
}

/// One POST; the endpoint's status, or why there was none.
async fn send(
    services: &Services,
    http: &reqwest::Client,
    endpoint: &WebhookEndpoint,
    event: &UnifiedEvent,
) -> Result<u16, String> {
    let url =
        url::Url::parse(&endpoint.url).map_err(|_| "the endpoint URL is not a URL".to_string())?;
    check_scheme(&url)?;
    // An IP literal is connected to without the resolver; names are checked by it, on the
    // addresses this delivery connects to.
    services
        .upstreams
        .check_url(&url)
        .map_err(|r| refused_endpoint(&r))?;
    let secret = services
        .vault
        .open_secret(&endpoint_context(&endpoint.id), &endpoint.secret)
        .map_err(|_| {
            "the endpoint's secret cannot be read (was TESSERA_SECRET_KEY changed?)".to_string()
        })?;
    let payload = serde_json::to_vec(&body(event)).unwrap_or_default();
    let signature = crate::signing::outbound::signature_header(
        secret.expose().as_bytes(),
        Utc::now().timestamp(),
        &payload,
    );
    let reply = http
        .post(url)
        .header("content-type", "application/json")
        .header("tessera-signature", signature)
        .header("tessera-event-id", &event.id)
        .body(payload)
        .send()
        .await
        .map_err(|e| {
            if let Some(r) = crate::upstreams::refusal(&e) {
                refused_endpoint(r)
            } else if e.is_timeout() {
                "the endpoint did not answer in time".to_string()
            } else if e.is_connect() {
                "cannot connect to the endpoint".to_string()
            } else {
                "the request to the endpoint failed".to_string()
            }
        })?;
    Ok(reply.status().as_u16())
}

fn check_scheme(url: &url::Url) -> Result<(), String> {
    if !matches!(url.scheme(), "https" | "http") {
        return Err("the endpoint URL must be http or https".into());
    }
    if url.host_str().is_none() {
        return Err("the endpoint URL has no host".into());
    }
    Ok(())
}

fn refused_endpoint(r: &Refused) -> String {
    match r {
        Refused::Address { address, class, .. } => format!(
            "the endpoint resolves to {address}, {} {class} address the server's --allow-upstream does not name",
            class.article()
        ),
        other => other.to_string(),
    }
}

/// Refuses endpoints that are, or resolve to, this host's or a private network's addresses
/// the allow list does not name: a tenant must not make the gateway call its neighbours.
/// For an answer when the endpoint is added; each delivery is checked again.
pub async fn check_destination(url: &url::Url, upstreams: &AllowList) -> Result<(), String> {
    check_scheme(url)?;
    upstreams.check_url(url).map_err(|r| refused_endpoint(&r))?;
    if upstreams.allows_any_private() {
        return Ok(());
    }
    if let Some(url::Host::Domain(host)) = url.host() {
        let addrs = crate::upstreams::lookup(host)
            .await
            .map_err(|_| format!("the endpoint host `{host}` does not resolve"))?;
        upstreams
            .admit(host, addrs)
            .map_err(|r| refused_endpoint(&r))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loopback_endpoints_are_refused_unless_allowed() {
        let url = url::Url::parse("http://127.0.0.1:9/hook").unwrap();
        let err = check_destination(&url, &AllowList::none())
            .await
            .unwrap_err();
        assert!(err.contains("127.0.0.1, a loopback address"), "{err}");
        let localhost = url::Url::parse("http://localhost:9/hook").unwrap();
        assert!(
            check_destination(&localhost, &AllowList::none())
                .await
                .is_err()
        );
        let named = AllowList::parse(["127.0.0.1:9"]).unwrap();
        assert!(check_destination(&url, &named).await.is_ok());
        assert!(check_destination(&localhost, &named).await.is_err());
        assert!(
            check_destination(&url, &AllowList::any_private())
                .await
                .is_ok()
        );
        let ftp = url::Url::parse("ftp://example.com/x").unwrap();
        assert!(
            check_destination(&ftp, &AllowList::any_private())
                .await
                .is_err()
        );
    }

    #[test]
    fn waits_double_up_to_an_hour() {
        let p = RetryPolicy {
            window: chrono::Duration::hours(24),
            first_wait: chrono::Duration::seconds(30),
        };
        assert_eq!(p.wait(1).num_seconds(), 30);
        assert_eq!(p.wait(2).num_seconds(), 60);
        assert_eq!(p.wait(30).num_seconds(), 3600);
    }
}
