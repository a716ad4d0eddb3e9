//! Watching the vendors: every upstream call the engine reports goes to the Prometheus
//! metrics at once and to the request log (in the database) through a bounded queue and a
//! background writer, so a slow database never slows a request; when the queue is full the
//! entry is dropped and counted.
//!
//! Arrows: `app` wires `monitor` into the engine (as its observer) and the HTTP layer
//! (`/metrics`); `graphql` reads the log through the store.

mod metrics;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

pub use metrics::{Gauge, Metrics};

use crate::engine::{CallObserver, CallRecord, Engine, ListingOutcome, ListingRecord};
use crate::store::{ExhaustedWindow, ListingObservation, Store, StoreError, UpstreamCall};

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
    /// What a listing returned, for the watcher.
    Listing(ListingObservation),
    /// Answered once every entry queued before it is written.
    Flush(tokio::sync::oneshot::Sender<()>),
}

pub struct Monitor {
    pub metrics: Metrics,
    log: mpsc::Sender<Entry>,
    /// Used-up windows written up to here have been read into this replica's engine.
    budgets_seen: std::sync::Mutex<chrono::DateTime<chrono::Utc>>,
    /// One first page in this many has its shape kept (for drift detection).
    shape_every: AtomicU64,
    pages_seen: AtomicU64,
}

/// One first page in this many has its shape summarised, unless
/// `TESSERA_SHAPE_SAMPLE` says otherwise (1 keeps every one).
const SHAPE_SAMPLE: u64 = 10;

impl Monitor {
    /// The monitor and the receiving end of its log queue (give it to [`run_log_writer`]).
    pub fn new() -> (Arc<Monitor>, mpsc::Receiver<Entry>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (
            Arc::new(Monitor {
                metrics: Metrics::default(),
                log: tx,
                budgets_seen: std::sync::Mutex::new(chrono::DateTime::UNIX_EPOCH),
                shape_every: AtomicU64::new(
                    std::env::var("TESSERA_SHAPE_SAMPLE")
                        .ok()
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .filter(|n| (1..=1_000_000).contains(n))
                        .unwrap_or(SHAPE_SAMPLE),
                ),
                pages_seen: AtomicU64::new(0),
            }),
            rx,
        )
    }

    /// Keeps the shape of one first page in `n` (1: every one; tests and the simulation).
    pub fn sample_shapes_every(&self, n: u64) {
        self.shape_every.store(n.max(1), Ordering::Relaxed);
    }

    /// Waits until every entry queued so far is in the database (the watcher's tests and
    /// the simulation read the log right after the calls).
    pub async fn flush(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.log.send(Entry::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
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

    fn first_page(
        &self,
        _account: &str,
        _resource: &str,
        body: &serde_json::Value,
        records_pointer: &str,
        next_cursor: Option<&str>,
    ) -> Option<String> {
        let every = self.shape_every.load(Ordering::Relaxed).max(1);
        if !self
            .pages_seen
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(every)
        {
            return None;
        }
        let sample = serde_json::json!({
            "shape": crate::shape::PageShape::of(body, records_pointer, next_cursor),
            "redacted": crate::shape::redact(body),
        });
        Some(sample.to_string())
    }

    fn listing(&self, r: &ListingRecord) {
        let (outcome, records, complete) = match r.outcome {
            ListingOutcome::Records { records, complete } => (
                "ok",
                Some(i32::try_from(records).unwrap_or(i32::MAX)),
                complete,
            ),
            ListingOutcome::NotFound => ("not_found", None, false),
            ListingOutcome::Failed => ("failed", None, false),
        };
        let entry = ListingObservation {
            id: 0,
            account_id: r.account_id.clone(),
            resource: r.resource.clone(),
            outcome: outcome.to_owned(),
            records,
            complete,
            counted: r.counted,
            shape: r.shape.clone(),
            created_at: chrono::Utc::now(),
        };
        if self.log.try_send(Entry::Listing(entry)).is_err() {
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
                let mut listings = Vec::new();
                let mut flushed = Vec::new();
                let mut next = Some(first);
                while let Some(entry) = next.take() {
                    match entry {
                        Entry::Call(c) => batch.push(c),
                        Entry::Listing(l) => listings.push(l),
                        Entry::Flush(done) => flushed.push(done),
                        Entry::Exhausted(w) => {
                            if let Err(e) = store.put_exhausted_window(w).await {
                                tracing::warn!(error = %e, "a used-up rate-limit window was not shared");
                            }
                        }
                    }
                    if batch.len() + listings.len() < 500 && flushed.is_empty() {
                        next = rx.try_recv().ok();
                    }
                }
                if let Err(e) = store.insert_upstream_calls(batch).await {
                    tracing::warn!(error = %e, "request log batch dropped");
                }
                if let Err(e) = store.insert_listing_observations(listings).await {
                    tracing::warn!(error = %e, "listing observations dropped");
                }
                for done in flushed {
                    let _ = done.send(());
                }
            }
            _ = sweep.tick() => {
                let before = chrono::Utc::now() - LOG_RETENTION;
                if let Err(e) = store.sweep_upstream_calls(before).await {
                    tracing::warn!(error = %e, "request log sweep failed");
                }
                if let Err(e) = store.sweep_listing_observations(before).await {
                    tracing::warn!(error = %e, "listing observation sweep failed");
                }
            }
        }
    }
}
