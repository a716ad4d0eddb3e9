//! The last known rate-limit budget of each linked account, per vendor window. When a
//! window is known to be used up until its reset, a request fails fast with `RATE_LIMITED`
//! instead of spending a call the vendor would refuse (and that counts against the quota
//! other integrations of the customer share).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::ratelimit::RateLimit;
use crate::bounds::instant_after;

/// One window's last known state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowBudget {
    pub window: String,
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    /// When the window resets (at the latest).
    pub resets_at: Option<Instant>,
    /// Whether the vendor said when (else `resets_at` is a bound from the window length).
    pub reset_said: bool,
    pub observed: chrono::DateTime<chrono::Utc>,
}

impl WindowBudget {
    /// Seconds until the reset, from now.
    pub fn reset_in(&self) -> Option<u64> {
        self.resets_at.map(|at| {
            at.saturating_duration_since(Instant::now())
                .as_secs_f64()
                .ceil() as u64
        })
    }

    fn exhausted(&self, now: Instant) -> bool {
        self.remaining == Some(0) && self.reset_said && self.resets_at.is_some_and(|at| at > now)
    }
}

#[derive(Debug, Default)]
pub struct Budgets {
    accounts: Mutex<HashMap<String, Vec<WindowBudget>>>,
}

impl Budgets {
    /// Notes the figures of one reply (or throttle) of `account`; returns the window when
    /// this note makes it used up (for sharing with other replicas).
    pub fn note(&self, account: &str, rl: &RateLimit, throttled: bool) -> Option<WindowBudget> {
        if rl.is_empty() && !throttled {
            return None;
        }
        let window = rl.window.clone().unwrap_or_else(|| "throttle".to_string());
        let remaining = if throttled { Some(0) } else { rl.remaining };
        let reset = if throttled {
            Some(rl.retry_after.or(rl.reset).unwrap_or(1))
        } else {
            rl.reset
        };
        let entry = WindowBudget {
            window,
            limit: rl.limit,
            remaining,
            resets_at: reset.map(|s| instant_after(Instant::now(), Duration::from_secs(s))),
            reset_said: throttled || rl.reset_said,
            observed: chrono::Utc::now(),
        };
        let exhausted = entry.exhausted(Instant::now()).then(|| entry.clone());
        self.put(account, entry);
        exhausted
    }

    fn put(&self, account: &str, entry: WindowBudget) {
        if let Ok(mut all) = self.accounts.lock() {
            let list = all.entry(account.to_string()).or_default();
            match list.iter_mut().find(|w| w.window == entry.window) {
                Some(w) => *w = entry,
                None => list.push(entry),
            }
        }
    }

    /// A window another replica saw used up, until `reset_in` from now.
    pub fn import(&self, account: &str, window: &str, limit: Option<u64>, reset_in: Duration) {
        self.put(
            account,
            WindowBudget {
                window: window.to_string(),
                limit,
                remaining: Some(0),
                resets_at: Some(instant_after(Instant::now(), reset_in)),
                reset_said: true,
                observed: chrono::Utc::now(),
            },
        );
    }

    /// The figures to answer with when a window of `account` is known to be used up.
    pub fn exhausted(&self, account: &str) -> Option<RateLimit> {
        let now = Instant::now();
        let all = self.accounts.lock().ok()?;
        let w = all.get(account)?.iter().find(|w| w.exhausted(now))?;
        let reset = w.reset_in();
        Some(RateLimit {
            limit: w.limit,
            remaining: Some(0),
            reset,
            retry_after: reset,
            policy: Vec::new(),
            window: Some(w.window.clone()),
            reset_said: true,
        })
    }

    /// What is known of `account`'s windows.
    pub fn of(&self, account: &str) -> Vec<WindowBudget> {
        self.accounts
            .lock()
            .ok()
            .and_then(|a| a.get(account).cloned())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_used_up_window_is_exhausted_until_its_reset() {
        let b = Budgets::default();
        let rl = |remaining, reset| RateLimit {
            limit: Some(10),
            remaining: Some(remaining),
            reset: Some(reset),
            window: Some("burst".into()),
            reset_said: true,
            ..Default::default()
        };
        b.note("a", &rl(3, 10), false);
        assert!(b.exhausted("a").is_none());
        b.note("a", &rl(0, 10), false);
        let hit = b.exhausted("a");
        assert_eq!(hit.as_ref().and_then(|r| r.remaining), Some(0));
        assert!(b.exhausted("other").is_none(), "budgets are per account");
        // Reset already passed: the window is open again.
        b.note("a", &rl(0, 0), false);
        assert!(b.exhausted("a").is_none());
        // A window length is only an upper bound on the reset: no failing fast on it.
        b.note(
            "b",
            &RateLimit {
                remaining: Some(0),
                reset: Some(10),
                reset_said: false,
                ..Default::default()
            },
            false,
        );
        assert!(b.exhausted("b").is_none());
        // A throttle without figures still closes the account for Retry-After.
        b.note(
            "a",
            &RateLimit {
                retry_after: Some(5),
                ..Default::default()
            },
            true,
        );
        assert!(b.exhausted("a").is_some());
    }
}
