//! Numbers from outside the process, held to what the gateway can represent.
//!
//! Vendors send seconds in `Retry-After`, reset headers and token responses, callers send
//! sizes and counts, and any of them can be absurd (`Retry-After: 18446744073709551615`,
//! `expires_in: 1e15`). `Instant + Duration` and `DateTime + TimeDelta` panic on overflow,
//! so every such number is clamped here to a documented maximum before it meets a clock,
//! and the clock arithmetic itself saturates. Nothing in this file can panic.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};

/// The longest wait a vendor can ask for and be believed: 31 days (a monthly quota).
/// A longer `Retry-After` or reset is read as this.
pub const MAX_WAIT_SECS: u64 = 31 * 24 * 3600;

/// The longest token lifetime taken from a token response: 366 days. A token said to live
/// longer is refreshed after this (a refresh too early is harmless; an overflow is not).
pub const MAX_TOKEN_LIFETIME_SECS: u64 = 366 * 24 * 3600;

/// Seconds a vendor asked to wait, at most [`MAX_WAIT_SECS`].
pub fn wait_secs(secs: u64) -> u64 {
    secs.min(MAX_WAIT_SECS)
}

/// Whole seconds from a number that may be fractional, negative, NaN or infinite: `None`
/// unless finite and not negative; rounded up (waiting less than asked is throttled again).
pub fn secs_from_f64(n: f64) -> Option<u64> {
    // `as` saturates, so 1e300 becomes u64::MAX, not undefined behaviour.
    (n.is_finite() && n >= 0.0).then(|| n.ceil() as u64)
}

/// `now + d`, never panicking: a `d` past what the clock can hold gives the furthest
/// instant [`MAX_WAIT_SECS`] allows.
pub fn instant_after(now: Instant, d: Duration) -> Instant {
    let d = d.min(Duration::from_secs(MAX_WAIT_SECS));
    now.checked_add(d).unwrap_or(now)
}

/// `now + secs` as a wall-clock time, saturating at the latest time chrono can hold.
pub fn utc_after(now: DateTime<Utc>, secs: u64) -> DateTime<Utc> {
    i64::try_from(secs)
        .ok()
        .and_then(TimeDelta::try_seconds)
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_numbers_are_clamped_not_panics() {
        let now = Instant::now();
        assert_eq!(wait_secs(u64::MAX), MAX_WAIT_SECS);
        assert_eq!(wait_secs(7), 7);
        let far = instant_after(now, Duration::from_secs(u64::MAX));
        assert_eq!(far - now, Duration::from_secs(MAX_WAIT_SECS));
        assert_eq!(secs_from_f64(f64::NAN), None);
        assert_eq!(secs_from_f64(-1.0), None);
        assert_eq!(secs_from_f64(f64::INFINITY), None);
        assert_eq!(secs_from_f64(1.2), Some(2));
        assert_eq!(secs_from_f64(1e300), Some(u64::MAX));
        let t = Utc::now();
        assert_eq!(utc_after(t, u64::MAX), DateTime::<Utc>::MAX_UTC);
        assert_eq!(utc_after(t, 1e15 as u64), DateTime::<Utc>::MAX_UTC);
        assert_eq!((utc_after(t, 60) - t).num_seconds(), 60);
    }
}
