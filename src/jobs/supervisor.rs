//! Restart-with-backoff for long-running tasks, and what became of them.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The first wait before a restart; doubled after each failure up to [`MAX_BACKOFF`], and
/// back to this after a run that lasted [`HEALTHY_RUN`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
const HEALTHY_RUN: Duration = Duration::from_secs(300);

/// One supervised task as `/readyz` and `/metrics` show it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskReport {
    pub name: &'static str,
    /// Running now (false while it waits to be restarted).
    pub up: bool,
    pub restarts: u64,
    pub last_failure: Option<String>,
    pub last_failure_at: Option<DateTime<Utc>>,
}

type TaskFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

#[derive(Default)]
pub struct Supervisor {
    tasks: Mutex<BTreeMap<&'static str, TaskReport>>,
}

impl Supervisor {
    /// Runs `make(stop)` as `name` until `stop` turns true or the task returns (its work is
    /// done, e.g. the request-log writer once every sender is gone). Each time the task
    /// panics, the failure is recorded and a new one is made after a backoff. The task must
    /// return promptly once `stop` changes.
    pub fn spawn<F>(
        self: &Arc<Self>,
        name: &'static str,
        stop: watch::Receiver<bool>,
        mut make: F,
    ) -> JoinHandle<()>
    where
        F: FnMut(watch::Receiver<bool>) -> TaskFuture + Send + 'static,
    {
        let me = self.clone();
        me.update(name, |t| t.up = true);
        tokio::spawn(async move {
            let mut backoff = FIRST_BACKOFF;
            loop {
                if *stop.borrow() {
                    return;
                }
                let started = tokio::time::Instant::now();
                me.update(name, |t| t.up = true);
                let outcome = tokio::spawn(make(stop.clone())).await;
                if *stop.borrow() {
                    me.update(name, |t| t.up = false);
                    return;
                }
                let why = match outcome {
                    Ok(()) => {
                        me.update(name, |t| t.up = false);
                        return;
                    }
                    Err(e) if e.is_panic() => format!(
                        "panicked: {}",
                        crate::error::panic_message(&*e.into_panic())
                    ),
                    Err(e) => format!("was cancelled: {e}"),
                };
                tracing::error!(task = name, failure = %why, "background task died; restarting");
                me.update(name, |t| {
                    t.up = false;
                    t.restarts += 1;
                    t.last_failure = Some(why.clone());
                    t.last_failure_at = Some(Utc::now());
                });
                if started.elapsed() >= HEALTHY_RUN {
                    backoff = FIRST_BACKOFF;
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stopped(stop.clone()) => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        })
    }

    /// Every supervised task, by name.
    pub fn report(&self) -> Vec<TaskReport> {
        self.tasks
            .lock()
            .map(|t| t.values().cloned().collect())
            .unwrap_or_default()
    }

    fn update(&self, name: &'static str, change: impl FnOnce(&mut TaskReport)) {
        if let Ok(mut tasks) = self.tasks.lock() {
            let entry = tasks.entry(name).or_insert_with(|| TaskReport {
                name,
                up: false,
                restarts: 0,
                last_failure: None,
                last_failure_at: None,
            });
            change(entry);
        }
    }
}

/// Resolves when `stop` turns true; never, when nobody can stop it any more.
async fn stopped(mut stop: watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn a_panicking_task_is_restarted_and_its_death_recorded() {
        let sup = Arc::new(Supervisor::default());
        let (stop_tx, stop) = watch::channel(false);
        let runs = Arc::new(AtomicU32::new(0));
        let counter = runs.clone();
        let handle = sup.spawn("flaky", stop, move |mut stop| {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                if n == 0 {
                    panic!("first run fails");
                }
                let _ = stop.wait_for(|s| *s).await;
            })
        });
        while runs.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let report = sup.report();
        assert_eq!(report.len(), 1);
        assert_eq!(report[0].restarts, 1);
        assert!(
            report[0]
                .last_failure
                .as_deref()
                .is_some_and(|f| f.contains("first run fails")),
            "{report:?}"
        );
        let _ = stop_tx.send(true);
        handle.await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }
}
