//! The gateway's background work: the proactive token refresher, the override and budget
//! poll, the request-log writer. Each runs under the [`Supervisor`], which restarts a task
//! that panics or ends on its own (with backoff) and says so in `/readyz` and `/metrics`, so
//! a task's death is never silent (a panicking refresher once stopped every refresh of its
//! replica without a word).

mod supervisor;

pub use supervisor::{Supervisor, TaskReport};

/// Runs `work` every `period` (the first time at once; a slow run delays the next rather
/// than piling up) until `stop` changes.
pub async fn run_every<F, Fut>(
    period: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
    mut work: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => work().await,
            _ = stop.changed() => return,
        }
    }
}
