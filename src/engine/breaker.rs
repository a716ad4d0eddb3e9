//! A circuit breaker per (provider, linked account). After `failures` outages in a row the
//! circuit opens: calls fail at once with `UPSTREAM_UNAVAILABLE` instead of piling onto a
//! vendor that is down (and holding the caller for its timeouts). After `cooldown` one call
//! is let through as a probe; its success closes the circuit, its failure opens it again.
//!
//! Admission is a [`Permit`] that reports the call's outcome. A probe whose permit is
//! dropped unreported (the call was refused by the rate-limit budget, or the caller went
//! away) frees the probe slot in `Drop`, so a circuit can never stay half-open with nobody
//! probing: the stuck state is ruled out by the type, not by every caller remembering.

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

    /// `Err(seconds)` while the circuit is open; otherwise a permit for the call (the
    /// probe, if the cooldown just ended).
    pub fn admit<'a>(&'a self, key: &str) -> Result<Permit<'a>, u64> {
        let permit = |probe| Permit {
            breakers: self,
            key: key.to_string(),
            probe,
            reported: false,
        };
        let Ok(mut states) = self.states.lock() else {
            return Ok(permit(false));
        };
        let now = Instant::now();
        match states.get(key).copied() {
            Some(State::Open { until }) if now < until => {
                Err((until - now).as_secs_f64().ceil() as u64)
            }
            Some(State::Open { .. }) => {
                states.insert(key.to_string(), State::HalfOpen);
                Ok(permit(true))
            }
            // One probe at a time: the others wait out a short cooldown.
            Some(State::HalfOpen) => Err(1),
            _ => Ok(permit(false)),
        }
    }

    /// A probe that never reported: the circuit is open again with its cooldown over, so
    /// the next call becomes the probe.
    fn release_probe(&self, key: &str) {
        if let Ok(mut states) = self.states.lock()
            && matches!(states.get(key), Some(State::HalfOpen))
        {
            states.insert(
                key.to_string(),
                State::Open {
                    until: Instant::now(),
                },
            );
        }
    }

    fn success(&self, key: &str) -> Option<Transition> {
        let mut states = self.states.lock().ok()?;
        let was = states.insert(key.to_string(), State::Closed { failures: 0 });
        matches!(was, Some(State::HalfOpen | State::Open { .. })).then_some(Transition::Closed)
    }

    fn failure(&self, key: &str) -> Option<Transition> {
        let mut states = self.states.lock().ok()?;
        let open = State::Open {
            until: crate::bounds::instant_after(Instant::now(), self.policy.cooldown),
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

    /// How many circuits are not closed now (open, or half-open with a probe out), per key
    /// prefix (the provider).
    pub fn open_count(&self, prefix: &str) -> usize {
        self.states
            .lock()
            .map(|s| {
                s.iter()
                    .filter(|(k, st)| {
                        k.starts_with(prefix) && matches!(st, State::Open { .. } | State::HalfOpen)
                    })
                    .count()
            })
            .unwrap_or(0)
    }
}

/// Leave to make calls through a circuit; reports what became of them.
#[must_use = "a permit reports the call's outcome"]
pub struct Permit<'a> {
    breakers: &'a Breakers,
    key: String,
    probe: bool,
    reported: bool,
}

impl Permit<'_> {
    /// The vendor answered (whatever it thought of the request): it is up.
    pub fn success(&mut self) -> Option<Transition> {
        self.reported = true;
        self.breakers.success(&self.key)
    }

    /// An outage answer (5xx, timeout, connection failure).
    pub fn failure(&mut self) -> Option<Transition> {
        self.reported = true;
        self.breakers.failure(&self.key)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.probe && !self.reported {
            self.breakers.release_probe(&self.key);
        }
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
        let mut probe = b
            .admit("k")
            .map_err(|_| "the probe")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(b.admit("k").is_err(), "one probe at a time");
        assert_eq!(b.open_count("k"), 1, "a half-open circuit is not closed");
        assert_eq!(probe.success(), Some(Transition::Closed));
        drop(probe);
        assert!(b.admit("k").is_ok());
        // A failed probe opens it again at once.
        for _ in 0..3 {
            b.failure("k");
        }
        std::thread::sleep(Duration::from_millis(40));
        let mut probe = b.admit("k").unwrap_or_else(|_| panic!("probe"));
        assert_eq!(probe.failure(), Some(Transition::Opened));
        drop(probe);
        assert!(b.admit("k").is_err());
    }

    #[test]
    fn a_probe_that_never_reports_frees_the_slot() {
        let b = Breakers::new(BreakerPolicy {
            failures: 1,
            cooldown: Duration::from_millis(20),
        });
        assert_eq!(b.failure("k"), Some(Transition::Opened));
        std::thread::sleep(Duration::from_millis(30));
        // Refused by the budget, or the caller went away: dropped unreported.
        drop(b.admit("k").unwrap_or_else(|_| panic!("probe")));
        let mut next = b
            .admit("k")
            .unwrap_or_else(|_| panic!("the circuit must not stay half-open"));
        assert_eq!(next.success(), Some(Transition::Closed));
    }
}
