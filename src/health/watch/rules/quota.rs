//! RATE_LIMITED: the vendor throttled this account's calls repeatedly within the window.
//! The evidence says who spends the quota: the vendor's own figures (`ratelimit-limit`
//! against the lowest `ratelimit-remaining` it reported) against the calls Tessera made in
//! the same window. A quota spent far faster than Tessera spends it is being spent by
//! other integrations on the customer's account (the seed's shared rate limit).

use serde_json::json;

use super::{Subject, Verdict};

/// Throttled calls within the window that make an alert, or fewer when the vendor says the
/// quota is used up (`ratelimit-remaining: 0`): once it is, Tessera refuses further calls
/// itself until the window resets, so the vendor never gets to answer 429 three times.
const THROTTLED: u64 = 3;

pub fn rate_limited(s: &Subject<'_>) -> Verdict {
    let recent = s.watch.recent_calls();
    if recent.throttled >= THROTTLED || (recent.throttled > 0 && recent.min_remaining == Some(0)) {
        let used = match (recent.max_limit, recent.min_remaining) {
            (Some(limit), Some(remaining)) => Some(limit.saturating_sub(remaining).max(0)),
            _ => None,
        };
        let ours = recent.calls();
        let others = used.map(|u| {
            u.saturating_sub(i64::try_from(ours).unwrap_or(i64::MAX))
                .max(0)
        });
        let share = used
            .filter(|u| *u > 0)
            .map(|u| (ours as f64 / u as f64).min(1.0));
        return Verdict::Active(json!({
            "throttledCalls": recent.throttled,
            "tesseraCalls": ours,
            "quotaLimit": recent.max_limit,
            "lowestRemaining": recent.min_remaining,
            "quotaUsed": used,
            "usedByOthers": others,
            "tesseraShare": share,
            "spentBy": match share {
                Some(x) if x < 0.5 => "other integrations on the customer's account",
                Some(_) => "Tessera's own calls",
                None => "unknown (the vendor sends no quota figures)",
            },
        }));
    }
    if recent.throttled == 0 && recent.ok > 0 {
        Verdict::Clear
    } else {
        Verdict::Unknown
    }
}
