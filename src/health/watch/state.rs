//! What the watcher remembers about each linked account between ticks: the last few
//! minutes of call outcomes, per resource how its listings have gone (the baseline counts
//! and shape), and the account's webhook rhythm. Saved as JSON (one row per account), so a
//! replica that takes over the watch goes on from the same baselines.
//!
//! Time here is the watcher's clock at each tick, never the rows' own timestamps: the
//! simulation runs the watcher on a virtual clock.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::shape::{Baseline, Change, PageShape};
use crate::store::{CallTally, ListingObservation};

/// How far back call outcomes and deliveries count.
pub fn window() -> Duration {
    Duration::minutes(5)
}

/// Per-resource listings kept at most (a provider's resources are a handful; the bound
/// stops a state from growing with nonsense names).
const MAX_RESOURCES: usize = 64;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AccountWatch {
    pub calls: VecDeque<CallSlice>,
    pub resources: BTreeMap<String, ResourceWatch>,
    pub webhooks: WebhookWatch,
}

/// The call outcomes of one tick.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CallSlice {
    pub at: Option<DateTime<Utc>>,
    pub ok: u64,
    pub throttled: u64,
    pub server_errors: u64,
    pub network: u64,
    /// The failure class of the latest network failure (`dns`, `tls`, `connect`, `timeout`).
    pub network_class: Option<String>,
    pub unauthorized: u64,
    /// Responses without their records array (the engine's own drift check).
    pub malformed: u64,
    pub min_remaining: Option<i64>,
    pub max_limit: Option<i64>,
}

impl CallSlice {
    fn add(&mut self, t: &CallTally) {
        let n = u64::try_from(t.calls).unwrap_or(0);
        let status = t.status.unwrap_or(0);
        match t.error_class.as_deref() {
            None => self.ok = self.ok.saturating_add(n),
            Some("rate_limited") => self.throttled = self.throttled.saturating_add(n),
            Some("unavailable" | "upstream_error") if status >= 500 => {
                self.server_errors = self.server_errors.saturating_add(n)
            }
            Some(class @ ("timeout" | "connect" | "dns" | "tls" | "network" | "cut_off")) => {
                self.network = self.network.saturating_add(n);
                self.network_class = Some(class.to_owned());
            }
            Some("unauthorized") => self.unauthorized = self.unauthorized.saturating_add(n),
            Some("drift") => self.malformed = self.malformed.saturating_add(n),
            _ => {}
        }
        self.min_remaining = min_some(self.min_remaining, t.min_remaining);
        self.max_limit = self.max_limit.max(t.max_limit);
    }

    fn merge(&mut self, o: &CallSlice) {
        self.ok = self.ok.saturating_add(o.ok);
        self.throttled = self.throttled.saturating_add(o.throttled);
        self.server_errors = self.server_errors.saturating_add(o.server_errors);
        self.network = self.network.saturating_add(o.network);
        if o.network_class.is_some() {
            self.network_class.clone_from(&o.network_class);
        }
        self.unauthorized = self.unauthorized.saturating_add(o.unauthorized);
        self.malformed = self.malformed.saturating_add(o.malformed);
        self.min_remaining = min_some(self.min_remaining, o.min_remaining);
        self.max_limit = self.max_limit.max(o.max_limit);
    }

    pub fn calls(&self) -> u64 {
        [
            self.ok,
            self.throttled,
            self.server_errors,
            self.network,
            self.unauthorized,
            self.malformed,
        ]
        .iter()
        .fold(0u64, |a, b| a.saturating_add(*b))
    }
}

fn min_some(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// How listings of one resource have gone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ResourceWatch {
    /// A listing of it has worked before (so a 404 now means it moved).
    pub answered: bool,
    /// Listings answered 404 in a row.
    pub gone_streak: u32,
    /// Counted listings (first page, no filter) that returned records.
    pub nonempty: u64,
    /// Counted listings in a row that returned none.
    pub empty_streak: u32,
    /// The usual size of a complete listing (a moving average of the ones that were not
    /// anomalies), and how many it is made of.
    pub full_baseline: Option<f64>,
    pub full_samples: u32,
    /// The latest complete count, when it was a sharp drop against the baseline.
    pub dropped_to: Option<u64>,
    /// The learned shape of its responses.
    pub shape: Baseline,
    /// The latest page that matched the shape, redacted.
    pub last_good: Option<Value>,
    /// Set while the responses depart from the shape.
    pub drift: Option<Drift>,
}

/// A shape change, with both payloads (redacted: types, never values).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Drift {
    pub changes: Vec<Change>,
    pub summary: String,
    pub last_good: Option<Value>,
    pub first_bad: Option<Value>,
    pub since: DateTime<Utc>,
}

/// A listing's shape sample as the monitor stores it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShapeSample {
    pub shape: PageShape,
    pub redacted: Value,
}

/// Complete listings this much smaller than the baseline are a drop...
const DROP_RATIO: f64 = 0.5;
/// ...and this much of it again a recovery.
const RECOVERED_RATIO: f64 = 0.8;
/// Baselines smaller than this are too small to judge a drop by.
const MIN_BASELINE: f64 = 10.0;

impl ResourceWatch {
    pub fn fold(&mut self, o: &ListingObservation, now: DateTime<Utc>) {
        match o.outcome.as_str() {
            "ok" => {
                self.answered = true;
                self.gone_streak = 0;
                let records = u64::try_from(o.records.unwrap_or(0)).unwrap_or(0);
                if o.counted {
                    if records > 0 {
                        self.nonempty = self.nonempty.saturating_add(1);
                        self.empty_streak = 0;
                    } else {
                        self.empty_streak = self.empty_streak.saturating_add(1);
                    }
                    if o.complete && records > 0 {
                        self.fold_full(records);
                    }
                }
                if let Some(sample) = o
                    .shape
                    .as_deref()
                    .and_then(|s| serde_json::from_str::<ShapeSample>(s).ok())
                {
                    self.fold_shape(sample, now);
                }
            }
            "not_found" => self.gone_streak = self.gone_streak.saturating_add(1),
            _ => {}
        }
    }

    fn fold_full(&mut self, records: u64) {
        let n = records as f64;
        match self.full_baseline {
            Some(b) if self.full_samples >= 2 && b >= MIN_BASELINE && n < b * DROP_RATIO => {
                // An anomaly is not learned: the baseline stays what it was.
                self.dropped_to = Some(records);
            }
            Some(b) => {
                if n >= b * RECOVERED_RATIO || self.dropped_to.is_none() {
                    self.dropped_to = None;
                }
                self.full_baseline = Some(b * 0.8 + n * 0.2);
                self.full_samples = self.full_samples.saturating_add(1);
            }
            None => {
                self.full_baseline = Some(n);
                self.full_samples = 1;
            }
        }
    }

    fn fold_shape(&mut self, sample: ShapeSample, now: DateTime<Utc>) {
        let changes = if self.shape.is_mature() {
            self.shape.compare(&sample.shape)
        } else {
            Vec::new()
        };
        if changes.is_empty() {
            self.shape.learn(&sample.shape);
            if sample.shape.records() > 0 {
                self.last_good = Some(sample.redacted);
                self.drift = None;
            }
        } else if self.drift.is_none() {
            self.drift = Some(Drift {
                summary: crate::shape::describe(&changes),
                changes,
                last_good: self.last_good.clone(),
                first_bad: Some(sample.redacted),
                since: now,
            });
        }
    }
}

/// The rhythm of an account's webhook deliveries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WebhookWatch {
    /// Deliveries accepted, ever.
    pub accepted: u64,
    /// The tick that last saw an accepted delivery.
    pub last_at: Option<DateTime<Utc>>,
    /// A moving average of the time between deliveries, in seconds.
    pub gap_secs: Option<f64>,
    /// Changes reconciliation found that no webhook announced, since the last delivery.
    pub missed: u64,
    /// Deliveries per tick within the window: (tick, accepted, refused for their signature).
    pub recent: VecDeque<(DateTime<Utc>, u64, u64)>,
}

impl WebhookWatch {
    pub fn fold(&mut self, now: DateTime<Utc>, accepted: u64, bad_signatures: u64, missed: u64) {
        if accepted > 0 {
            if let Some(last) = self.last_at {
                let gap = (now - last).num_milliseconds().max(0) as f64 / 1000.0 / accepted as f64;
                self.gap_secs = Some(match self.gap_secs {
                    Some(g) => g * 0.7 + gap * 0.3,
                    None => gap,
                });
            }
            self.accepted = self.accepted.saturating_add(accepted);
            self.last_at = Some(now);
            self.missed = 0;
        } else {
            self.missed = self.missed.saturating_add(missed);
        }
        if accepted > 0 || bad_signatures > 0 {
            self.recent.push_back((now, accepted, bad_signatures));
        }
        while self
            .recent
            .front()
            .is_some_and(|(t, _, _)| now - *t > window())
        {
            self.recent.pop_front();
        }
    }

    /// Accepted and refused-for-signature deliveries within the window.
    pub fn recent_totals(&self) -> (u64, u64) {
        self.recent.iter().fold((0, 0), |(a, b), (_, x, y)| {
            (a.saturating_add(*x), b.saturating_add(*y))
        })
    }
}

impl AccountWatch {
    /// Adds one tick's call outcomes and forgets those older than the window.
    pub fn fold_calls(&mut self, now: DateTime<Utc>, tallies: &[&CallTally]) {
        if !tallies.is_empty() {
            let mut slice = CallSlice {
                at: Some(now),
                ..CallSlice::default()
            };
            for t in tallies {
                slice.add(t);
            }
            self.calls.push_back(slice);
        }
        while self
            .calls
            .front()
            .is_some_and(|s| s.at.is_none_or(|t| now - t > window()))
        {
            self.calls.pop_front();
        }
    }

    /// The call outcomes within the window, summed.
    pub fn recent_calls(&self) -> CallSlice {
        let mut total = CallSlice::default();
        for s in &self.calls {
            total.merge(s);
        }
        total
    }

    /// The call outcomes since the last tick that had a success (all of the window when
    /// none had): a vendor that just went down is judged by its failures since, not
    /// outvoted by the successes of the minutes before.
    pub fn since_last_success(&self) -> CallSlice {
        let start = self
            .calls
            .iter()
            .rposition(|s| s.ok > 0)
            .map_or(0, |i| i + 1);
        let mut total = CallSlice::default();
        for s in self.calls.iter().skip(start) {
            total.merge(s);
        }
        total
    }

    pub fn resource(&mut self, name: &str) -> Option<&mut ResourceWatch> {
        if !self.resources.contains_key(name) && self.resources.len() >= MAX_RESOURCES {
            return None;
        }
        Some(self.resources.entry(name.to_owned()).or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(records: i32, complete: bool) -> ListingObservation {
        ListingObservation {
            id: 0,
            account_id: "a".into(),
            resource: "contacts".into(),
            outcome: "ok".into(),
            records: Some(records),
            complete,
            counted: true,
            shape: None,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn a_sharp_drop_is_kept_out_of_the_baseline_and_a_recovery_clears_it() {
        let now = Utc::now();
        let mut r = ResourceWatch::default();
        for _ in 0..3 {
            r.fold(&listing(260, true), now);
        }
        r.fold(&listing(100, true), now);
        assert_eq!(r.dropped_to, Some(100));
        assert!(r.full_baseline.is_some_and(|b| (b - 260.0).abs() < 0.01));
        r.fold(&listing(255, true), now);
        assert_eq!(r.dropped_to, None);
        // Ordinary ups and downs are no drop.
        r.fold(&listing(200, true), now);
        assert_eq!(r.dropped_to, None);
    }

    #[test]
    fn empty_listings_count_in_a_row_and_reset_on_records() {
        let now = Utc::now();
        let mut r = ResourceWatch::default();
        r.fold(&listing(5, false), now);
        r.fold(&listing(0, true), now);
        r.fold(&listing(0, true), now);
        assert_eq!((r.nonempty, r.empty_streak), (1, 2));
        r.fold(&listing(1, false), now);
        assert_eq!(r.empty_streak, 0);
    }

    #[test]
    fn answers_cut_off_mid_body_count_as_network_failures() {
        let tally = |class: &str, calls| crate::store::CallTally {
            account_id: "a".into(),
            status: None,
            error_class: Some(class.into()),
            calls,
            min_remaining: None,
            max_limit: None,
        };
        let mut slice = CallSlice::default();
        slice.add(&tally("connect", 2));
        slice.add(&tally("cut_off", 3));
        assert_eq!(slice.network, 5);
        assert_eq!(slice.network_class.as_deref(), Some("cut_off"));
    }

    #[test]
    fn webhook_gaps_average_and_the_window_forgets() {
        let t0 = Utc::now();
        let mut w = WebhookWatch::default();
        w.fold(t0, 1, 0, 0);
        w.fold(t0 + Duration::seconds(60), 2, 0, 0);
        assert!(w.gap_secs.is_some_and(|g| (g - 30.0).abs() < 0.01));
        w.fold(t0 + Duration::minutes(20), 0, 3, 4);
        assert_eq!(w.recent_totals(), (0, 3));
        assert_eq!(w.missed, 4);
    }
}
