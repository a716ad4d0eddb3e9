//! Watching the vendors: every upstream call the engine reports goes to the Prometheus
//! metrics at once and to the request log (in the database) through a bounded queue and a
//! background writer, so a slow database never slows a request; when the queue is full the
//! entry is dropped and counted.
//!
//! Arrows: `app` wires `monitor` into the engine (as its observer) and the HTTP layer
//! (`/metrics`); `graphql` reads the log through the store.

mod metrics;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

pub use metrics::{Gauge, Metrics};

use crate::engine::{CallObserver, CallRecord, Engine};
use crate::store::{ExhaustedWindow, Store, StoreError, UpstreamCall};

/// Entries waiting for the writer, at most.
const QUEUE: usize = 10_000;
/// How long the request log keeps an entry.
pub const LOG_RETENTION: chrono::TimeDelta = chrono::TimeDelta::days(7);

/// What the writer stores.
#[derive(Debug)]
pub enum Entry {
    Call(UpstreamCall),
    /// A used-up rate-limit window, for the other replicas.
    Exhausted(ExhaustedWindow),
}

pub struct Monitor {
    pub metrics: Metrics,
    log: mpsc::Sender<Entry>,
    /// Used-up windows written up to here have been read into this replica's engine.
    budgets_seen: std::sync::Mutex<chrono::DateTime<chrono::Utc>>,
}

impl Monitor {
    /// The monitor and the receiving end of its log queue (give it to [`run_log_writer`]).
    pub fn new() -> (Arc<Monitor>, mpsc::Receiver<Entry>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (
            Arc::new(Monitor {
                metrics: Metrics::default(),
                log: tx,
                budgets_seen: std::sync::Mutex::new(chrono::DateTime::UNIX_EPOCH),
            }),
            rx,
        )
    }

    /// Reads the used-up windows other replicas wrote since the last call into `engine`.
    pub async fn sync_budgets(&self, store: &Store, engine: &Engine) -> Result<usize, StoreError> {
        let since = self.budgets_seen.lock().map(|s| *s).unwrap_or_default();
        let windows = store.exhausted_windows_since(since).await?;
        let now = chrono::Utc::now();
        for w in &windows {
            let left = (w.reset_at - now).to_std().unwrap_or_default();
            engine.import_exhausted(
                &w.account_id,
                &w.window,
                w.limit.and_then(|l| u64::try_from(l).ok()),
                left,
            );
        }
        if let (Some(latest), Ok(mut seen)) = (
            windows.iter().map(|w| w.updated_at).max(),
            self.budgets_seen.lock(),
        ) {
            *seen = (*seen).max(latest);
        }
        Ok(windows.len())
    }
}

fn figure(v: Option<u64>) -> Option<i64> {
    v.and_then(|v| i64::try_from(v).ok())
}

impl CallObserver for Monitor {
    fn call(&self, r: &CallRecord) {
        self.metrics.call(
            &r.provider,
            r.error_class.unwrap_or("ok"),
            r.latency,
            r.retry > 0,
            r.throttled,
        );
        let entry = UpstreamCall {
            id: 0,
            account_id: r.account_id.clone(),
            provider: r.provider.clone(),
            method: r.method.clone(),
            path: r.path.clone(),
            status: r.status.map(i32::from),
            latency_ms: i32::try_from(r.latency.as_millis()).unwrap_or(i32::MAX),
            rate_limit: figure(r.rate_limit.limit),
            rate_remaining: figure(r.rate_limit.remaining),
            rate_reset: figure(r.rate_limit.reset),
            error_class: r.error_class.map(str::to_string),
            retry: i32::try_from(r.retry).unwrap_or(i32::MAX),
            created_at: chrono::Utc::now(),
        };
        if self.log.try_send(Entry::Call(entry)).is_err() {
            self.metrics.log_dropped();
        }
    }

    fn exhausted(&self, account: &str, window: &str, limit: Option<u64>, reset_in: u64) {
        let now = chrono::Utc::now();
        let entry = ExhaustedWindow {
            account_id: account.to_string(),
            window: window.to_string(),
            limit: figure(limit),
            reset_at: crate::bounds::utc_after(now, crate::bounds::wait_secs(reset_in)),
            updated_at: now,
        };
        if self.log.try_send(Entry::Exhausted(entry)).is_err() {
            self.metrics.log_dropped();
        }
    }

    fn breaker(&self, provider: &str, account: &str, open: bool) {
        self.metrics.breaker(provider, open);
        tracing::warn!(provider, account, open, "circuit breaker changed state");
    }
}

/// Writes queued log entries in batches until the queue closes, and sweeps entries older
/// than [`LOG_RETENTION`] every `sweep_every`.
/// The queue is shared so that a writer restarted after a panic takes up the same queue.
pub async fn run_log_writer(
    store: Store,
    queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Entry>>>,
    sweep_every: Duration,
) {
    let mut rx = queue.lock().await;
    let mut sweep = tokio::time::interval(sweep_every);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            first = rx.recv() => {
                let Some(first) = first else { return };
                let mut batch = Vec::new();
                let mut next = Some(first);
                while let Some(entry) = next.take() {
                    match entry {
                        Entry::Call(c) => batch.push(c),
                        Entry::Exhausted(w) => {
                            if let Err(e) = store.put_exhausted_window(w).await {
                                tracing::warn!(error = %e, "a used-up rate-limit window was not shared");
                            }
                        }
                    }
                    if batch.len() < 500 {
                        next = rx.try_recv().ok();
                    }
                }
                if let Err(e) = store.insert_upstream_calls(batch).await {
                    tracing::warn!(error = %e, "request log batch dropped");
                }
            }
            _ = sweep.tick() => {
                if let Err(e) = store.sweep_upstream_calls(chrono::Utc::now() - LOG_RETENTION).await {
                    tracing::warn!(error = %e, "request log sweep failed");
                }
            }
        }
    }
}
