//! A circuit breaker per (provider, linked account). After `failures` outages in a row the
//! circuit opens: calls fail at once with `UPSTREAM_UNAVAILABLE` instead of piling onto a
//! vendor that is down (and holding the caller for its timeouts). After `cooldown` one call
//! is let through as a probe; its success closes the circuit, its failure opens it again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct BreakerPolicy {
    /// Consecutive outage answers that open the circuit.
    pub failures: u32,
    /// How long an open circuit refuses calls before a probe.
    pub cooldown: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            failures: 5,
            cooldown: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// The cooldown is over and one probe is out.
    HalfOpen,
}

/// What a state change means to an observer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Opened,
    Closed,
}

#[derive(Debug, Default)]
pub struct Breakers {
    policy: BreakerPolicy,
    states: Mutex<HashMap<String, State>>,
}

impl Breakers {
    pub fn new(policy: BreakerPolicy) -> Breakers {
        Breakers {
            policy,
            states: Mutex::default(),
        }
    }

    /// `Err(seconds)` while the circuit is open; otherwise the call may go (as the probe,
    /// if the cooldown just ended).
    pub fn admit(&self, key: &str) -> Result<(), u64> {
        let Ok(mut states) = self.states.lock() else {
            return Ok(());
        };
        let now = Instant::now();
        match states.get(key).copied() {
            Some(State::Open { until }) if now < until => {
                Err((until - now).as_secs_f64().ceil() as u64)
            }
            Some(State::Open { .. }) => {
                states.insert(key.to_string(), State::HalfOpen);
                Ok(())
            }
            // One probe at a time: the others wait out a short cooldown.
            Some(State::HalfOpen) => Err(1),
            _ => Ok(()),
        }
    }

    pub fn success(&self, key: &str) -> Option<Transition> {
        let mut states = self.states.lock().ok()?;
        let was = states.insert(key.to_string(), State::Closed { failures: 0 });
        matches!(was, Some(State::HalfOpen | State::Open { .. })).then_some(Transition::Closed)
    }

    pub fn failure(&self, key: &str) -> Option<Transition> {
        let mut states = self.states.lock().ok()?;
        let open = State::Open {
            until: Instant::now() + self.policy.cooldown,
        };
        let next = match states.get(key).copied() {
            Some(State::HalfOpen) => open,
            Some(State::Closed { failures }) if failures + 1 >= self.policy.failures => open,
            None if self.policy.failures <= 1 => open,
            Some(State::Closed { failures }) => State::Closed {
                failures: failures + 1,
            },
            None => State::Closed { failures: 1 },
            Some(s @ State::Open { .. }) => s,
        };
        let opened = matches!(next, State::Open { .. })
            && !matches!(states.get(key), Some(State::Open { .. }));
        states.insert(key.to_string(), next);
        opened.then_some(Transition::Opened)
    }

    /// How many circuits are open now, per key prefix (the provider).
    pub fn open_count(&self, prefix: &str) -> usize {
        let now = Instant::now();
        self.states
            .lock()
            .map(|s| {
                s.iter()
                    .filter(|(k, st)| {
                        k.starts_with(prefix) && matches!(st, State::Open { until } if *until > now)
                    })
                    .count()
            })
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_probes_after_the_cooldown_and_closes_on_success() {
        let b = Breakers::new(BreakerPolicy {
            failures: 3,
            cooldown: Duration::from_millis(30),
        });
        assert_eq!(b.failure("k"), None);
        assert_eq!(b.failure("k"), None);
        assert!(b.admit("k").is_ok());
        assert_eq!(b.failure("k"), Some(Transition::Opened));
        assert!(b.admit("k").is_err());
        assert!(b.admit("other").is_ok(), "breakers are per key");
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.admit("k").is_ok(), "the probe");
        assert!(b.admit("k").is_err(), "one probe at a time");
        assert_eq!(b.success("k"), Some(Transition::Closed));
        assert!(b.admit("k").is_ok());
        // A failed probe opens it again at once.
        for _ in 0..3 {
            b.failure("k");
        }
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.admit("k").is_ok());
        assert_eq!(b.failure("k"), Some(Transition::Opened));
        assert!(b.admit("k").is_err());
    }
}
