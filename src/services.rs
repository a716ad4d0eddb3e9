//! The shared services: built once at start by `app`, handed to every request by `http`,
//! and reached by `access` and `graphql`. Holding them in one place below both keeps the
//! HTTP surface from reaching into the GraphQL module for them.

use std::sync::Arc;

use crate::config::Providers;
use crate::credentials::{TokenManager, Vault};
use crate::engine::Engine;
use crate::jobs::Supervisor;
use crate::monitor::Monitor;
use crate::overrides::OverrideRegistry;
use crate::schema::UnifiedModel;
use crate::store::{Store, UnifiedEvent};

/// Built once at start, shared by every request.
pub struct Services {
    pub store: Store,
    pub engine: Engine,
    pub providers: Providers,
    pub model: UnifiedModel,
    pub vault: Vault,
    /// Fresh access tokens, refreshed single-flight.
    pub tokens: Arc<TokenManager>,
    /// The loopback, private and link-local upstreams the gateway may call (tests, the
    /// demo's sandbox, on-premise vendors); every other such address is refused.
    pub upstreams: Arc<crate::upstreams::AllowList>,
    /// The mapping overrides in force, and each account's merged provider.
    pub overrides: Arc<OverrideRegistry>,
    /// Metrics of upstream calls (the request log is in the store).
    pub monitor: Arc<Monitor>,
    /// The background tasks and what became of them (`/readyz`, `/metrics`).
    pub tasks: Arc<Supervisor>,
    /// Wake-ups and the fan-out of unified events between intake, processing and
    /// subscriptions.
    pub events: Arc<EventSignals>,
    /// The base URL vendors and browsers reach this gateway at (`TESSERA_PUBLIC_URL`); `None`
    /// means the `Host` a request came with, or the listen address where there is no request.
    pub public_url: Option<url::Url>,
    /// The address the server listens on, once it does.
    pub listen_url: std::sync::OnceLock<String>,
    /// How often each linked account's health is probed.
    pub probe_interval: std::time::Duration,
    /// How often the watcher ticks.
    pub watch_interval: std::time::Duration,
}

impl Services {
    /// Where vendors reach this gateway when no request says: the public URL, else the
    /// listen address.
    pub fn base_url(&self) -> String {
        match &self.public_url {
            Some(u) => u.as_str().trim_end_matches('/').to_owned(),
            None => self
                .listen_url
                .get()
                .cloned()
                .unwrap_or_else(|| "http://127.0.0.1".to_owned()),
        }
    }
}

/// How the webhook pipeline's stages wake each other in one replica. (Other replicas learn
/// of new events through the database: see `webhooks::feed`.)
pub struct EventSignals {
    /// A delivery put events in the inbox.
    pub inbox: tokio::sync::Notify,
    /// This replica wrote unified events.
    pub written: tokio::sync::Notify,
    /// A subscription needs the renewal job now (a new account, a vendor's notice).
    pub subscriptions: tokio::sync::Notify,
    /// Events were offered to customer endpoints.
    pub outbound: tokio::sync::Notify,
    /// Every new unified event, in order, for this replica's subscriptions.
    pub feed: tokio::sync::broadcast::Sender<Arc<UnifiedEvent>>,
    /// Deliveries being taken in right now, which the inbox processor gives way to.
    pub intake: IntakeActivity,
}

/// How many webhook deliveries this replica is taking in. A vendor waits on the answer to
/// each delivery (and retries, or after enough slow answers disables the webhook), while
/// processing is deferred by design: so the processor waits for a quiet moment before it
/// claims more work, for a bounded time, and a burst is acknowledged first and processed
/// right after.
#[derive(Default)]
pub struct IntakeActivity {
    in_flight: std::sync::atomic::AtomicUsize,
    quiet: tokio::sync::Notify,
}

impl IntakeActivity {
    /// Counts a delivery in until the guard is dropped.
    pub fn enter(&self) -> IntakeGuard<'_> {
        self.in_flight
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        IntakeGuard(self)
    }

    /// Returns once no delivery is being taken in, or after `at_most`.
    pub async fn quiet(&self, at_most: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + at_most;
        loop {
            let quiet = self.quiet.notified();
            tokio::pin!(quiet);
            // Registered before the check, so a guard dropped in between still wakes us.
            quiet.as_mut().enable();
            if self.in_flight.load(std::sync::atomic::Ordering::Acquire) == 0 {
                return;
            }
            tokio::select! {
                () = &mut quiet => {}
                () = tokio::time::sleep_until(deadline) => return,
            }
        }
    }
}

/// One delivery being taken in (see [`IntakeActivity`]).
pub struct IntakeGuard<'a>(&'a IntakeActivity);

impl Drop for IntakeGuard<'_> {
    fn drop(&mut self) {
        if self
            .0
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel)
            == 1
        {
            self.0.quiet.notify_waiters();
        }
    }
}

impl Default for EventSignals {
    fn default() -> Self {
        EventSignals {
            inbox: tokio::sync::Notify::new(),
            written: tokio::sync::Notify::new(),
            subscriptions: tokio::sync::Notify::new(),
            outbound: tokio::sync::Notify::new(),
            // A subscriber that falls this far behind is told it lagged and goes on.
            feed: tokio::sync::broadcast::channel(4096).0,
            intake: IntakeActivity::default(),
        }
    }
}

pub type SharedServices = Arc<Services>;
