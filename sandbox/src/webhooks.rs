//! Webhook deliveries, shared by every vendor that pushes record changes: per-vendor
//! configuration and faults, the subscriptions a vendor keeps (Graph subscriptions,
//! Pipedrive webhooks, Zoho channels), one ordered delivery queue per vendor, and a log of
//! every request sent. Nothing here knows a wire format: a vendor implements
//! [`WebhookDialect`] to say which deliveries a change owes and how one attempt looks on
//! the wire (body, headers, signature), and calls [`Webhooks::changed`] after every create,
//! update or delete.
//!
//! Delivery never blocks the API call that caused it: changes are queued and a worker
//! task per vendor POSTs them in order, retrying a failed attempt (non-2xx or no answer)
//! up to `maxAttempts` times with backoff 200 ms, 400 ms, ... A vendor that batches
//! (HubSpot, Graph) has the events queued within `batchWindowMs` of the first one share one
//! POST per destination (`batchWindowMs: 0`: one POST per event). Retries hold the queue:
//! a later change is never delivered before an earlier one, which is what "in order per
//! vendor" means for a receiver. A reset abandons whatever is still queued.
//!
//! Control routes (under `/_control`, JSON):
//! - `PUT /webhooks/{provider}`: configuration, every field optional (see `ConfigSpec`).
//! - `GET /webhooks/{provider}`: configuration (never the secret), subscriptions as the
//!   vendor lists them plus `expired`, faults and the `sent` log.
//! - `POST /webhooks/{provider}/touch`: a change made in the vendor's own UI, not the API.
//! - `POST|DELETE /webhooks/{provider}/faults`, `POST /webhooks/{provider}/expire`,
//!   `POST /webhooks/{provider}/lifecycle` (vendors with lifecycle events: Graph).

use std::collections::{HashMap, VecDeque};
use std::error::Error as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::control::{Control, Reject, Vendor, control_error, iso_millis, parse_body};

/// Every delivery attempt and validation request gives up after this long, the window
/// Graph allows for its handshake and Pipedrive for a delivery.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// More attempts would only make a test wait for minutes of backoff.
const MAX_ATTEMPTS_LIMIT: u32 = 10;
const DEFAULT_BATCH_WINDOW_MS: u64 = 50;
const MAX_BATCH_WINDOW_MS: u64 = 60_000;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// The log keeps the newest entries, so a long demo session does not grow without bound.
const SENT_LOG_LIMIT: usize = 1000;

// ---------------------------------------------------------------------------------------
// What a vendor reports and decides

/// The unified resource a change is about; each vendor maps it to its own objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resource {
    Contacts,
    Companies,
    Deals,
}

impl Resource {
    pub(crate) fn from_name(name: &str) -> Option<Resource> {
        match name {
            "contacts" => Some(Resource::Contacts),
            "companies" => Some(Resource::Companies),
            "deals" => Some(Resource::Deals),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    Created,
    Updated,
    Deleted,
}

impl Action {
    pub(crate) fn from_name(name: &str) -> Option<Action> {
        match name {
            "created" => Some(Action::Created),
            "updated" => Some(Action::Updated),
            "deleted" => Some(Action::Deleted),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Deleted => "deleted",
        }
    }
}

/// Who made a change: a client through the API, or someone in the vendor's own UI
/// (`/touch`). Vendors that report the origin (HubSpot `changeSource`, Pipedrive
/// `change_source`) tell the two apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    Api,
    Touch,
}

/// One record change, as the vendor's handler saw it.
#[derive(Clone, Debug)]
pub(crate) struct Change {
    pub resource: Resource,
    /// The vendor's record id.
    pub id: String,
    pub action: Action,
    pub source: Source,
    /// Vendor fields whose value changed, with the new value (`Null` when cleared). Empty
    /// for creations and deletions.
    pub fields: Vec<(String, Value)>,
    /// The record as the vendor's API renders it after the change (`None` on delete), for
    /// vendors whose payload carries it.
    pub record: Option<Value>,
    /// The record before the change (`None` on create).
    pub previous: Option<Value>,
    pub at: DateTime<Utc>,
}

/// A subscription a vendor keeps on behalf of a client.
#[derive(Clone, Debug)]
pub(crate) struct Subscription {
    pub id: String,
    /// `None`: never expires (Pipedrive webhooks).
    pub expires_at: Option<DateTime<Utc>>,
    /// The subscription as the vendor lists it.
    pub data: Value,
}

impl Subscription {
    pub(crate) fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|t| t > now)
    }
}

/// Which request of a vendor's webhook traffic this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Notification,
    /// A handshake before a subscription exists (Graph `validationToken`).
    Validation,
    /// A notification about the subscription itself (Graph lifecycle events).
    Lifecycle,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Notification => "notification",
            Kind::Validation => "validation",
            Kind::Lifecycle => "lifecycle",
        }
    }
}

/// One event owed to one destination.
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    pub url: String,
    /// The subscription the event is for: checked again before every attempt, so an
    /// expired or deleted subscription gets nothing more.
    pub subscription: Option<String>,
    pub event: Value,
}

/// What one POST carries: one event, or several from one batch window.
#[derive(Clone, Debug)]
pub(crate) struct Delivery {
    pub kind: Kind,
    pub url: String,
    pub subscription: Option<String>,
    pub events: Vec<Value>,
}

/// What a vendor needs to render one attempt.
pub(crate) struct Attempt<'a> {
    /// 1 for the first try.
    pub number: u32,
    pub config: &'a Config,
    pub wrong_signature: bool,
    /// The delivery's subscription as it is now, when it has one.
    pub subscription: Option<&'a Subscription>,
}

/// One HTTP request, ready to send.
#[derive(Clone, Debug)]
pub(crate) struct Outgoing {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What a vendor sees when deciding what a change owes: its configuration and its live
/// subscriptions.
pub(crate) struct Snapshot {
    pub config: Config,
    pub subscriptions: Vec<Subscription>,
}

/// A vendor's webhook wire format and its changes made outside the API.
///
/// `deliveries`, `request` and `delivered` run while the caller may hold the vendor's
/// store lock or the webhook state lock: they must not take either.
pub(crate) trait WebhookDialect: Send + Sync + 'static {
    /// The events one change owes, one per destination (or several, HubSpot's one per
    /// changed property).
    fn deliveries(&self, change: &Change, snapshot: &Snapshot) -> Vec<Pending>;

    /// `Some(n)`: events for one destination within the batch window share a POST of at
    /// most `n` events. `None`: one POST per event.
    fn batch_limit(&self) -> Option<usize> {
        None
    }

    /// The HTTP request for one attempt of `delivery`.
    fn request(&self, delivery: &Delivery, attempt: &Attempt<'_>) -> Outgoing;

    /// After each attempt of a delivery to `subscription` (Pipedrive records the time and
    /// status on the webhook).
    fn delivered(
        &self,
        _subscription: &mut Subscription,
        _status: Option<u16>,
        _at: DateTime<Utc>,
    ) {
    }

    /// Changes a record as someone in the vendor's UI would, and reports it like the API
    /// change would be reported. Returns the record id.
    fn touch(&self, resource: Resource, id: Option<&str>, action: Action)
    -> Result<String, Reject>;

    /// `POST /_control/webhooks/{provider}/lifecycle`, for vendors with lifecycle events.
    fn lifecycle(&self, _body: &Value) -> Result<Value, Reject> {
        Err(control_error(
            StatusCode::NOT_FOUND,
            "this provider has no lifecycle notifications",
        ))
    }
}

// ---------------------------------------------------------------------------------------
// Configuration and faults

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SignatureVersion {
    V1,
    V2,
    V3,
}

impl SignatureVersion {
    fn parse(raw: &str) -> Option<SignatureVersion> {
        match raw {
            "v1" => Some(SignatureVersion::V1),
            "v2" => Some(SignatureVersion::V2),
            "v3" => Some(SignatureVersion::V3),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            SignatureVersion::V1 => "v1",
            SignatureVersion::V2 => "v2",
            SignatureVersion::V3 => "v3",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// App-level webhooks (HubSpot) post here; per-account subscriptions carry their own.
    pub target_url: Option<String>,
    /// What app-level webhooks are signed with (HubSpot: the app's client secret).
    pub secret: Option<String>,
    pub signature_version: SignatureVersion,
    pub max_attempts: u32,
    pub batch_window_ms: u64,
    /// Subscription lifetime bounds; `None`: the vendor's own.
    pub max_lifetime_seconds: Option<i64>,
    pub min_lifetime_seconds: Option<i64>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            target_url: None,
            secret: None,
            signature_version: SignatureVersion::V3,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            batch_window_ms: DEFAULT_BATCH_WINDOW_MS,
            max_lifetime_seconds: None,
            min_lifetime_seconds: None,
        }
    }
}

impl Config {
    /// `(max, min)` lifetime in seconds, the vendor's defaults unless configured.
    pub(crate) fn lifetime_bounds(&self, default_max: i64, default_min: i64) -> (i64, i64) {
        (
            self.max_lifetime_seconds.unwrap_or(default_max),
            self.min_lifetime_seconds.unwrap_or(default_min),
        )
    }

    fn to_json(&self) -> Value {
        json!({
            "targetUrl": self.target_url,
            "secretSet": self.secret.is_some(),
            "signatureVersion": self.signature_version.name(),
            "maxAttempts": self.max_attempts,
            "batchWindowMs": self.batch_window_ms,
            "maxLifetimeSeconds": self.max_lifetime_seconds,
            "minLifetimeSeconds": self.min_lifetime_seconds,
        })
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Faults {
    /// Sign, or authenticate, every delivery with the wrong secret (HubSpot signature,
    /// Graph `clientState`, Zoho `token`, Pipedrive Basic password).
    pub wrong_signature: bool,
    /// Skip this many deliveries (the change still happens; the log says `dropped`).
    pub drop_next: u32,
    /// Renewing a subscription answers as if it had expired.
    pub renewal_fails: bool,
    /// Graph's subscription create fails its validation whatever the endpoint answers.
    pub validation_fails: bool,
}

impl Faults {
    fn to_json(&self) -> Value {
        json!({
            "wrongSignature": self.wrong_signature,
            "dropNext": self.drop_next,
            "renewalFails": self.renewal_fails,
            "validationFails": self.validation_fails,
        })
    }
}

/// One request the sandbox sent (or dropped on purpose).
#[derive(Clone, Debug)]
struct Sent {
    at: DateTime<Utc>,
    url: String,
    attempt: u32,
    status: Option<u16>,
    error: Option<String>,
    event_count: usize,
    dropped: bool,
    kind: Kind,
}

impl Sent {
    fn to_json(&self) -> Value {
        json!({
            "at": iso_millis(self.at),
            "url": self.url,
            "attempt": self.attempt,
            "status": self.status,
            "error": self.error,
            "eventCount": self.event_count,
            "dropped": self.dropped,
            "kind": self.kind.name(),
        })
    }
}

// ---------------------------------------------------------------------------------------
// State and queue

struct Job {
    generation: u64,
    kind: Kind,
    pending: Pending,
}

#[derive(Default)]
struct Hooks {
    config: Config,
    faults: Faults,
    subscriptions: Vec<Subscription>,
    sent: VecDeque<Sent>,
    /// Restarts at 0 on reset, so subscription ids are reproducible per test.
    serial: u64,
    queue: Option<mpsc::UnboundedSender<Job>>,
}

impl Hooks {
    fn log(&mut self, entry: Sent) {
        if self.sent.len() >= SENT_LOG_LIMIT {
            self.sent.pop_front();
        }
        self.sent.push_back(entry);
    }

    fn live(&self, id: &str, now: DateTime<Utc>) -> Option<&Subscription> {
        self.subscriptions
            .iter()
            .find(|s| s.id == id && s.is_live(now))
    }
}

#[derive(Default)]
struct HookState {
    /// Bumped by reset: queued jobs of an older generation are never sent.
    generation: u64,
    vendors: HashMap<String, Hooks>,
}

impl HookState {
    fn hooks(&mut self, provider: &str) -> &mut Hooks {
        self.vendors.entry(provider.to_owned()).or_default()
    }
}

#[derive(Default)]
struct Shared {
    state: Mutex<HookState>,
    /// Weak: the vendors own the control plane, which must not keep them alive in turn.
    dialects: Mutex<HashMap<String, Weak<dyn WebhookDialect>>>,
    client: OnceLock<Option<reqwest::Client>>,
    /// Never reset, so ids handed to receivers stay unique for the server's lifetime.
    unique: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, HookState> {
        // A panic elsewhere must not turn every later request into a 500 cascade.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn dialect(&self, provider: &str) -> Option<Arc<dyn WebhookDialect>> {
        self.dialects
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(provider)
            .and_then(Weak::upgrade)
    }

    /// `None` when no HTTP client could be built (no TLS backend): every request then
    /// fails with an error in the log instead of a panic.
    fn client(&self) -> Option<&reqwest::Client> {
        self.client
            .get_or_init(|| {
                reqwest::Client::builder()
                    .timeout(REQUEST_TIMEOUT)
                    // Receivers are test servers on loopback: an HTTP_PROXY in the
                    // environment must not intercept them, and vendors do not follow
                    // redirects with a webhook.
                    .no_proxy()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .ok()
            })
            .as_ref()
    }
}

/// The webhook machinery of one sandbox (held by [`Control`]).
#[derive(Default)]
pub(crate) struct Webhooks {
    shared: Arc<Shared>,
}

impl Webhooks {
    pub(crate) fn register(&self, provider: &str, dialect: &Arc<dyn WebhookDialect>) {
        self.shared
            .dialects
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(provider.to_owned(), Arc::downgrade(dialect));
    }

    /// Forgets configuration, subscriptions, faults and the log; queued deliveries are
    /// abandoned.
    pub(crate) fn reset(&self) {
        let mut state = self.shared.lock();
        state.generation += 1;
        for hooks in state.vendors.values_mut() {
            let queue = hooks.queue.take();
            *hooks = Hooks {
                queue,
                ..Hooks::default()
            };
        }
    }

    pub(crate) fn config(&self, provider: &str) -> Config {
        self.shared.lock().hooks(provider).config.clone()
    }

    pub(crate) fn faults(&self, provider: &str) -> Faults {
        self.shared.lock().hooks(provider).faults.clone()
    }

    /// A number unique for this server's lifetime (HubSpot event ids, generated names).
    pub(crate) fn unique(&self) -> u64 {
        self.shared.unique.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The next of this vendor's subscription numbers (1, 2, ... after each reset).
    pub(crate) fn next_serial(&self, provider: &str) -> u64 {
        let mut state = self.shared.lock();
        let hooks = state.hooks(provider);
        hooks.serial += 1;
        hooks.serial
    }

    pub(crate) fn live_subscriptions(&self, provider: &str) -> Vec<Subscription> {
        let now = Utc::now();
        let mut state = self.shared.lock();
        state
            .hooks(provider)
            .subscriptions
            .iter()
            .filter(|s| s.is_live(now))
            .cloned()
            .collect()
    }

    pub(crate) fn subscription(&self, provider: &str, id: &str) -> Option<Subscription> {
        let mut state = self.shared.lock();
        let hooks = state.hooks(provider);
        hooks.subscriptions.iter().find(|s| s.id == id).cloned()
    }

    pub(crate) fn live_subscription(&self, provider: &str, id: &str) -> Option<Subscription> {
        let mut state = self.shared.lock();
        state.hooks(provider).live(id, Utc::now()).cloned()
    }

    /// Adds a subscription, replacing one with the same id.
    pub(crate) fn put_subscription(&self, provider: &str, subscription: Subscription) {
        let mut state = self.shared.lock();
        let subs = &mut state.hooks(provider).subscriptions;
        match subs.iter_mut().find(|s| s.id == subscription.id) {
            Some(existing) => *existing = subscription,
            None => subs.push(subscription),
        }
    }

    pub(crate) fn remove_subscription(&self, provider: &str, id: &str) -> Option<Subscription> {
        let mut state = self.shared.lock();
        let subs = &mut state.hooks(provider).subscriptions;
        let pos = subs.iter().position(|s| s.id == id)?;
        Some(subs.remove(pos))
    }

    /// Reports a record change: the vendor's dialect decides what it owes, and the
    /// deliveries join the vendor's queue. Returns at once.
    pub(crate) fn changed(&self, provider: &str, change: &Change) {
        let Some(dialect) = self.shared.dialect(provider) else {
            return;
        };
        let snapshot = Snapshot {
            config: self.config(provider),
            subscriptions: self.live_subscriptions(provider),
        };
        let pending = dialect.deliveries(change, &snapshot);
        self.enqueue(provider, Kind::Notification, pending);
    }

    /// Queues deliveries behind everything already queued for `provider`.
    pub(crate) fn enqueue(&self, provider: &str, kind: Kind, pending: Vec<Pending>) {
        if pending.is_empty() {
            return;
        }
        let weak = Arc::downgrade(&self.shared);
        let mut state = self.shared.lock();
        let generation = state.generation;
        let hooks = state.hooks(provider);
        for pending in pending {
            let job = Job {
                generation,
                kind,
                pending,
            };
            let job = match &hooks.queue {
                Some(queue) => match queue.send(job) {
                    Ok(()) => continue,
                    Err(mpsc::error::SendError(job)) => job,
                },
                None => job,
            };
            // No worker yet, or it stopped: start one.
            let Some(queue) = spawn_worker(weak.clone(), provider) else {
                tracing::warn!(provider, "no async runtime: webhook delivery skipped");
                return;
            };
            // A fresh channel whose receiver the new worker holds: this cannot fail.
            let _ = queue.send(job);
            hooks.queue = Some(queue);
        }
    }

    /// Sends one request now (a handshake), logs it and returns `(status, body)` or the
    /// transport error.
    pub(crate) async fn probe(
        &self,
        provider: &str,
        kind: Kind,
        out: &Outgoing,
    ) -> Result<(u16, String), String> {
        let at = Utc::now();
        let result = send_request(self.shared.client(), out).await;
        let (status, error) = outcome(&result);
        self.shared.lock().hooks(provider).log(Sent {
            at,
            url: out.url.clone(),
            attempt: 1,
            status,
            error,
            event_count: 0,
            dropped: false,
            kind,
        });
        result
    }
}

fn spawn_worker(shared: Weak<Shared>, provider: &str) -> Option<mpsc::UnboundedSender<Job>> {
    let runtime = tokio::runtime::Handle::try_current().ok()?;
    let (queue, jobs) = mpsc::unbounded_channel();
    runtime.spawn(run_queue(shared, provider.to_owned(), jobs));
    Some(queue)
}

/// One vendor's queue: deliveries strictly one after another. Ends when the sandbox is
/// gone (its sender is dropped with the shared state).
async fn run_queue(shared: Weak<Shared>, provider: String, mut jobs: mpsc::UnboundedReceiver<Job>) {
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        let (limit, window_ms) = {
            let Some(strong) = shared.upgrade() else {
                return;
            };
            let window = strong.lock().hooks(&provider).config.batch_window_ms;
            // A window of 0 turns batching off: one POST per event.
            let limit = strong
                .dialect(&provider)
                .and_then(|d| d.batch_limit())
                .filter(|_| window > 0);
            (limit, window)
        };
        if limit.is_some() {
            let deadline = tokio::time::Instant::now() + Duration::from_millis(window_ms);
            while let Ok(Some(job)) = tokio::time::timeout_at(deadline, jobs.recv()).await {
                batch.push(job);
            }
        } else {
            while let Ok(job) = jobs.try_recv() {
                batch.push(job);
            }
        }
        for (generation, delivery) in group(batch, limit) {
            let Some(strong) = shared.upgrade() else {
                return;
            };
            deliver(&strong, &provider, generation, delivery).await;
        }
    }
}

/// Jobs in queue order, notifications for the same destination merged (when the vendor
/// batches) into deliveries of at most `limit` events.
fn group(jobs: Vec<Job>, limit: Option<usize>) -> Vec<(u64, Delivery)> {
    let mut out: Vec<(u64, Delivery)> = Vec::new();
    for job in jobs {
        if let Some(limit) = limit
            && job.kind == Kind::Notification
            && let Some((_, open)) = out.iter_mut().find(|(generation, d)| {
                *generation == job.generation
                    && d.kind == Kind::Notification
                    && d.url == job.pending.url
                    && d.subscription == job.pending.subscription
                    && d.events.len() < limit
            })
        {
            open.events.push(job.pending.event);
            continue;
        }
        out.push((
            job.generation,
            Delivery {
                kind: job.kind,
                url: job.pending.url,
                subscription: job.pending.subscription,
                events: vec![job.pending.event],
            },
        ));
    }
    out
}

/// The wait before attempt `attempt + 1`: 200 ms, 400 ms, 800 ms, ...
fn backoff(attempt: u32) -> Duration {
    FIRST_BACKOFF.saturating_mul(1 << attempt.saturating_sub(1).min(10))
}

async fn deliver(shared: &Shared, provider: &str, generation: u64, delivery: Delivery) {
    let max_attempts = {
        let mut state = shared.lock();
        if state.generation != generation {
            return;
        }
        let hooks = state.hooks(provider);
        if delivery.kind == Kind::Notification && hooks.faults.drop_next > 0 {
            hooks.faults.drop_next -= 1;
            hooks.log(Sent {
                at: Utc::now(),
                url: delivery.url.clone(),
                attempt: 1,
                status: None,
                error: None,
                event_count: delivery.events.len(),
                dropped: true,
                kind: delivery.kind,
            });
            return;
        }
        hooks.config.max_attempts.max(1)
    };
    let mut number = 1;
    loop {
        let Some(dialect) = shared.dialect(provider) else {
            return;
        };
        let (config, wrong_signature, subscription) = {
            let mut state = shared.lock();
            if state.generation != generation {
                return;
            }
            let hooks = state.hooks(provider);
            let subscription = delivery
                .subscription
                .as_deref()
                .and_then(|id| hooks.live(id, Utc::now()))
                .cloned();
            (
                hooks.config.clone(),
                hooks.faults.wrong_signature,
                subscription,
            )
        };
        if delivery.kind == Kind::Notification
            && delivery.subscription.is_some()
            && subscription.is_none()
        {
            // Expired or deleted since the change: nothing more goes to it.
            return;
        }
        let out = dialect.request(
            &delivery,
            &Attempt {
                number,
                config: &config,
                wrong_signature,
                subscription: subscription.as_ref(),
            },
        );
        let at = Utc::now();
        let result = send_request(shared.client(), &out).await;
        let (status, error) = outcome(&result);
        {
            let mut state = shared.lock();
            if state.generation != generation {
                return;
            }
            let hooks = state.hooks(provider);
            hooks.log(Sent {
                at,
                url: out.url.clone(),
                attempt: number,
                status,
                error,
                event_count: delivery.events.len(),
                dropped: false,
                kind: delivery.kind,
            });
            if let Some(id) = delivery.subscription.as_deref()
                && let Some(sub) = hooks.subscriptions.iter_mut().find(|s| s.id == id)
            {
                dialect.delivered(sub, status, at);
            }
        }
        if status.is_some_and(|s| (200..300).contains(&s)) || number >= max_attempts {
            return;
        }
        tokio::time::sleep(backoff(number)).await;
        number += 1;
    }
}

fn outcome(result: &Result<(u16, String), String>) -> (Option<u16>, Option<String>) {
    match result {
        Ok((status, _)) => (Some(*status), None),
        Err(error) => (None, Some(error.clone())),
    }
}

async fn send_request(
    client: Option<&reqwest::Client>,
    out: &Outgoing,
) -> Result<(u16, String), String> {
    let Some(client) = client else {
        return Err("no HTTP client available".to_owned());
    };
    let mut request = client.post(&out.url).body(out.body.clone());
    for (name, value) in &out.headers {
        request = request.header(name, value);
    }
    let response = request.send().await.map_err(|e| describe(&e))?;
    let status = response.status().as_u16();
    // A body that breaks off midway is still an answer with a status.
    let body = response.text().await.unwrap_or_default();
    Ok((status, body))
}

/// reqwest's top-level message ("error sending request") hides the cause; keep the chain.
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

// ---------------------------------------------------------------------------------------
// Helpers for the vendors' formats

/// Hex SHA-256 of `parts` concatenated.
pub(crate) fn sha256_hex(parts: &[&[u8]]) -> String {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hex(&hasher.finalize())
}

/// HMAC-SHA256 of `parts` concatenated under `key`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    use hmac::Mac as _;
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(key) else {
        return Vec::new();
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// An absolute http(s) URL, as every vendor requires of a notification endpoint.
pub(crate) fn is_web_url(raw: &str) -> bool {
    url::Url::parse(raw).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
}

/// A string, or a number written as one (ids arrive both ways).
pub(crate) fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The top-level fields whose value differs between two renderings, with their value in
/// `before` (Pipedrive's `previous`).
pub(crate) fn changed_fields(before: &Value, after: &Value) -> Map<String, Value> {
    let (Some(before), Some(after)) = (before.as_object(), after.as_object()) else {
        return Map::new();
    };
    before
        .iter()
        .filter(|(key, value)| after.get(key.as_str()) != Some(value))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

// ---------------------------------------------------------------------------------------
// /_control/webhooks routes

#[derive(Clone)]
struct HooksApi {
    control: Arc<Control>,
    vendors: Vec<Arc<dyn Vendor>>,
}

impl HooksApi {
    fn webhooks(&self) -> &Webhooks {
        &self.control.webhooks
    }

    fn require_provider(&self, provider: &str) -> Result<(), Reject> {
        if self.vendors.iter().any(|v| v.provider() == provider) {
            Ok(())
        } else {
            Err(bad(format!("unknown provider {provider:?}")))
        }
    }

    /// The provider must exist and push webhooks (Salesforce and Google push nothing a
    /// receiver could verify, so the sandbox sends nothing for them).
    fn emitting(&self, provider: &str) -> Result<Arc<dyn WebhookDialect>, Reject> {
        self.require_provider(provider)?;
        self.webhooks()
            .shared
            .dialect(provider)
            .ok_or_else(|| bad(format!("{provider} sends no webhooks")))
    }
}

pub(crate) fn control_router(control: Arc<Control>, vendors: Vec<Arc<dyn Vendor>>) -> Router {
    Router::new()
        .route("/webhooks/{provider}", get(show).put(configure))
        .route("/webhooks/{provider}/touch", post(touch))
        .route(
            "/webhooks/{provider}/faults",
            post(set_faults).delete(clear_faults),
        )
        .route("/webhooks/{provider}/expire", post(expire))
        .route("/webhooks/{provider}/lifecycle", post(lifecycle))
        .with_state(HooksApi { control, vendors })
}

fn bad(message: impl Into<String>) -> Reject {
    control_error(StatusCode::BAD_REQUEST, message)
}

/// `PUT /_control/webhooks/{provider}`: every field optional; given ones replace the
/// current value.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConfigSpec {
    target_url: Option<String>,
    secret: Option<String>,
    signature_version: Option<String>,
    max_attempts: Option<u32>,
    batch_window_ms: Option<u64>,
    max_lifetime_seconds: Option<i64>,
    min_lifetime_seconds: Option<i64>,
}

/// Checks `spec` and applies it to `config`.
fn apply_config(config: &mut Config, spec: ConfigSpec) -> Result<(), Reject> {
    let mut next = config.clone();
    if let Some(url) = spec.target_url {
        if !is_web_url(&url) {
            return Err(bad("targetUrl must be an absolute http(s) URL"));
        }
        next.target_url = Some(url);
    }
    if let Some(secret) = spec.secret {
        if secret.is_empty() {
            return Err(bad("secret must not be empty"));
        }
        next.secret = Some(secret);
    }
    if let Some(raw) = spec.signature_version {
        next.signature_version = SignatureVersion::parse(&raw)
            .ok_or_else(|| bad("signatureVersion must be v1, v2 or v3"))?;
    }
    if let Some(n) = spec.max_attempts {
        if !(1..=MAX_ATTEMPTS_LIMIT).contains(&n) {
            return Err(bad(format!(
                "maxAttempts must be between 1 and {MAX_ATTEMPTS_LIMIT}"
            )));
        }
        next.max_attempts = n;
    }
    if let Some(ms) = spec.batch_window_ms {
        if ms > MAX_BATCH_WINDOW_MS {
            return Err(bad(format!(
                "batchWindowMs must be at most {MAX_BATCH_WINDOW_MS}"
            )));
        }
        next.batch_window_ms = ms;
    }
    if let Some(secs) = spec.max_lifetime_seconds {
        if secs < 1 {
            return Err(bad("maxLifetimeSeconds must be at least 1"));
        }
        next.max_lifetime_seconds = Some(secs);
    }
    if let Some(secs) = spec.min_lifetime_seconds {
        if secs < 1 {
            return Err(bad("minLifetimeSeconds must be at least 1"));
        }
        next.min_lifetime_seconds = Some(secs);
    }
    if let (Some(max), Some(min)) = (next.max_lifetime_seconds, next.min_lifetime_seconds)
        && min > max
    {
        return Err(bad("minLifetimeSeconds must not exceed maxLifetimeSeconds"));
    }
    *config = next;
    Ok(())
}

async fn configure(
    State(api): State<HooksApi>,
    Path(provider): Path<String>,
    body: Bytes,
) -> Result<Response, Reject> {
    api.emitting(&provider)?;
    let spec: ConfigSpec = parse_body(&body)?;
    let mut state = api.webhooks().shared.lock();
    let config = &mut state.hooks(&provider).config;
    apply_config(config, spec)?;
    Ok(axum::Json(json!({ "config": config.to_json() })).into_response())
}

async fn show(
    State(api): State<HooksApi>,
    Path(provider): Path<String>,
) -> Result<Response, Reject> {
    api.require_provider(&provider)?;
    let now = Utc::now();
    let mut state = api.webhooks().shared.lock();
    let hooks = state.hooks(&provider);
    let subscriptions: Vec<Value> = hooks
        .subscriptions
        .iter()
        .map(|s| {
            let mut listed = s.data.clone();
            if let Value::Object(fields) = &mut listed {
                fields.insert("expired".into(), json!(!s.is_live(now)));
            }
            listed
        })
        .collect();
    let body = json!({
        "config": hooks.config.to_json(),
        "faults": hooks.faults.to_json(),
        "subscriptions": subscriptions,
        "sent": hooks.sent.iter().map(Sent::to_json).collect::<Vec<_>>(),
    });
    Ok(axum::Json(body).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TouchSpec {
    resource: String,
    #[serde(default)]
    id: Option<Value>,
    action: String,
}

async fn touch(
    State(api): State<HooksApi>,
    Path(provider): Path<String>,
    body: Bytes,
) -> Result<Response, Reject> {
    let dialect = api.emitting(&provider)?;
    let spec: TouchSpec = parse_body(&body)?;
    let resource = Resource::from_name(&spec.resource)
        .ok_or_else(|| bad("resource must be contacts, companies or deals"))?;
    let action = Action::from_name(&spec.action)
        .ok_or_else(|| bad("action must be created, updated or deleted"))?;
    let id = match spec.id.as_ref().filter(|v| !v.is_null()) {
        None => None,
        Some(v) => Some(id_text(v).ok_or_else(|| bad("id must be a string or a number"))?),
    };
    let id = dialect.touch(resource, id.as_deref(), action)?;
    Ok(axum::Json(json!({ "id": id, "action": action.name() })).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FaultSpec {
    wrong_signature: Option<bool>,
    drop_next: Option<u32>,
    renewal_fails: Option<bool>,
    validation_fails: Option<bool>,
}

async fn set_faults(
    State(api): State<HooksApi>,
    Path(provider): Path<String>,
    body: Bytes,
) -> Result<Response, Reject> {
    api.emitting(&provider)?;
    let spec: FaultSpec = parse_body(&body)?;
    let mut state = api.webhooks().shared.lock();
    let faults = &mut state.hooks(&provider).faults;
    if let Some(v) = spec.wrong_signature {
        faults.wrong_signature = v;
    }
    if let Some(n) = spec.drop_next {
        faults.drop_next = n;
    }
    if let Some(v) = spec.renewal_fails {
        faults.renewal_fails = v;
    }
    if let Some(v) = spec.validation_fails {
        faults.validation_fails = v;
    }
    Ok(axum::Json(json!({ "faults": faults.to_json() })).into_response())
}

async fn clear_faults(
    State(api): State<HooksApi>,
    Path(provider): Path<String>,
) -> Result<Response, Reject> {
    api.emitting(&provider)?;
    api.webhooks().shared.lock().hooks(&provider).faults = Faults::default();
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpireSpec {
    id: Value,
}

async fn expire(
    State(api): State<HooksApi>,
    Path(provider): Path<String>,
    body: Bytes,
) -> Result<Response, Reject> {
    api.emitting(&provider)?;
    let spec: ExpireSpec = parse_body(&body)?;
    let id = id_text(&spec.id).ok_or_else(|| bad("id must be a string or a number"))?;
    let now = Utc::now();
    let mut state = api.webhooks().shared.lock();
    let sub = state
        .hooks(&provider)
        .subscriptions
        .iter_mut()
        .find(|s| s.id == id)
        .ok_or_else(|| control_error(StatusCode::NOT_FOUND, "unknown subscription"))?;
    // Kept (listed as expired) so the control plane can show it; every vendor route
    // treats it as gone.
    sub.expires_at = Some(sub.expires_at.map_or(now, |t| t.min(now)));
    Ok(axum::Json(json!({ "id": id, "expired": true })).into_response())
}

async fn lifecycle(
    State(api): State<HooksApi>,
    Path(provider): Path<String>,
    body: Bytes,
) -> Result<Response, Reject> {
    let dialect = api.emitting(&provider)?;
    let spec: Value = parse_body(&body)?;
    let out = dialect.lifecycle(&spec)?;
    Ok((StatusCode::ACCEPTED, axum::Json(out)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(url: &str, sub: Option<&str>, n: u64, kind: Kind) -> Job {
        Job {
            generation: 1,
            kind,
            pending: Pending {
                url: url.to_owned(),
                subscription: sub.map(str::to_owned),
                event: json!(n),
            },
        }
    }

    fn events(d: &Delivery) -> Vec<u64> {
        d.events.iter().filter_map(Value::as_u64).collect()
    }

    #[test]
    fn batching_merges_per_destination_in_order_and_caps_each_post() {
        let jobs = vec![
            job("a", None, 1, Kind::Notification),
            job("b", Some("s"), 2, Kind::Notification),
            job("a", None, 3, Kind::Notification),
            job("a", None, 4, Kind::Notification),
            job("a", None, 5, Kind::Lifecycle),
            job("a", None, 6, Kind::Notification),
        ];
        let out = group(jobs, Some(2));
        let shape: Vec<(&str, Vec<u64>)> = out
            .iter()
            .map(|(_, d)| (d.url.as_str(), events(d)))
            .collect();
        assert_eq!(
            shape,
            vec![
                ("a", vec![1, 3]),
                ("b", vec![2]),
                ("a", vec![4, 6]),
                ("a", vec![5]),
            ]
        );
        assert_eq!(out[3].1.kind, Kind::Lifecycle);
    }

    #[test]
    fn without_batching_every_event_is_its_own_post() {
        let jobs = vec![
            job("a", None, 1, Kind::Notification),
            job("a", None, 2, Kind::Notification),
        ];
        let out = group(jobs, None);
        assert_eq!(out.len(), 2);
        assert_eq!(events(&out[0].1), vec![1]);
    }

    #[test]
    fn events_of_an_older_generation_are_not_merged_into_newer_ones() {
        let mut old = job("a", None, 1, Kind::Notification);
        old.generation = 0;
        let out = group(vec![old, job("a", None, 2, Kind::Notification)], Some(10));
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn backoff_doubles_from_200_ms() {
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(2), Duration::from_millis(400));
        assert_eq!(backoff(3), Duration::from_millis(800));
        assert!(backoff(u32::MAX) >= backoff(11));
    }

    #[test]
    fn config_updates_are_checked_and_atomic() {
        let mut config = Config::default();
        let spec = |v: Value| serde_json::from_value::<ConfigSpec>(v).unwrap();
        apply_config(
            &mut config,
            spec(
                json!({ "targetUrl": "http://127.0.0.1:9/hook", "secret": "s", "maxAttempts": 5 }),
            ),
        )
        .unwrap_or_else(|_| panic!("a valid update was refused"));
        assert_eq!(config.max_attempts, 5);
        assert_eq!(config.signature_version, SignatureVersion::V3);
        for refused in [
            json!({ "targetUrl": "not a url" }),
            json!({ "signatureVersion": "v4" }),
            json!({ "maxAttempts": 0 }),
            json!({ "minLifetimeSeconds": 10, "maxLifetimeSeconds": 5 }),
            json!({ "maxAttempts": 2, "batchWindowMs": 600_000 }),
        ] {
            assert!(apply_config(&mut config, spec(refused)).is_err());
        }
        // A refused update changes nothing, not even its valid fields.
        assert_eq!(config.max_attempts, 5);
        assert!(config.to_json().get("secret").is_none());
    }

    #[test]
    fn digests_match_known_vectors() {
        assert_eq!(
            sha256_hex(&[b"abc"]),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // RFC 4231 test case 2.
        assert_eq!(
            hex(&hmac_sha256(
                b"Jefe",
                &[b"what do ya want ", b"for nothing?"]
            )),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn changed_fields_keeps_the_old_values_of_what_differs() {
        let before = json!({ "name": "a", "x": 1, "gone": true });
        let after = json!({ "name": "b", "x": 1 });
        let diff = changed_fields(&before, &after);
        assert_eq!(Value::Object(diff), json!({ "name": "a", "gone": true }));
    }
}
