//! What one caller request has spent: upstream calls (held under the per-request ceiling),
//! the most constrained rate-limit figures met (passed back to the caller), and the CPU its
//! mappings took (held under the per-request mapping budget).
//!
//! One `RequestSpend` is shared by everything a request does, whichever account and resource
//! it reads; background jobs (probes, webhook processing, reconciliation) take a fresh one per
//! unit of work, so the same ceilings bound them.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::RateLimit;

#[derive(Debug, Default)]
pub struct RequestSpend {
    figures: Mutex<Option<RateLimit>>,
    calls: AtomicU64,
    /// CPU time of the request's mapping evaluations, in nanoseconds.
    mapping_nanos: AtomicU64,
}

impl RequestSpend {
    /// Counts one more upstream call of the request; returns how many it has made.
    pub fn count_call(&self) -> u64 {
        self.calls.fetch_add(1, Ordering::Relaxed).saturating_add(1)
    }

    /// Notes the rate-limit figures of one upstream reply, keeping the most constrained.
    pub fn note(&self, rl: &RateLimit) {
        if rl.is_empty() {
            return;
        }
        if let Ok(mut slot) = self.figures.lock() {
            let keep = match slot.as_ref() {
                Some(old) => rl.remaining.unwrap_or(u64::MAX) <= old.remaining.unwrap_or(u64::MAX),
                None => true,
            };
            if keep {
                *slot = Some(rl.clone());
            }
        }
    }

    pub fn most_constrained(&self) -> Option<RateLimit> {
        self.figures.lock().ok().and_then(|s| s.clone())
    }

    /// Adds CPU time spent mapping; returns the request's total so far.
    pub fn charge_mapping(&self, cpu: Duration) -> Duration {
        let nanos = u64::try_from(cpu.as_nanos()).unwrap_or(u64::MAX);
        let before = self
            .mapping_nanos
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_add(nanos))
            })
            .unwrap_or(u64::MAX);
        Duration::from_nanos(before.saturating_add(nanos))
    }

    /// CPU time the request's mappings have taken so far.
    pub fn mapping_spent(&self) -> Duration {
        Duration::from_nanos(self.mapping_nanos.load(Ordering::Relaxed))
    }
}
