//! The webhook rules: WEBHOOKS_SILENT, WEBHOOK_SUBSCRIPTION_LAPSED, SIGNATURE_FAILURES.
//!
//! Silence is judged against the account's own rhythm: no delivery for several of its
//! usual gaps between deliveries, while reconciliation found changes that no webhook
//! announced (so the vendor had something to say). A quiet night has no such changes and
//! is not silence. Without any change found, only a quiet far beyond the rhythm (and half
//! a day long) counts, in case reconciliation is broken too.

use chrono::Duration;
use serde_json::json;

use super::{Subject, Verdict};

/// Deliveries seen before the rhythm means anything.
const MIN_DELIVERIES: u64 = 10;
/// Usual gaps without a delivery that make silence, with changes found by polling...
const GAPS_WITH_MISSED: f64 = 3.0;
/// ...and without.
const GAPS_ALONE: f64 = 100.0;
/// Never less than this without a delivery, with changes found by polling...
fn min_silence() -> Duration {
    Duration::minutes(2)
}
/// ...and without.
fn min_silence_alone() -> Duration {
    Duration::hours(12)
}
/// Deliveries refused for their signature, with none accepted, that make an alert.
const BAD_SIGNATURES: u64 = 3;

pub fn silent(s: &Subject<'_>) -> Verdict {
    let w = &s.watch.webhooks;
    let (Some(last), Some(gap)) = (w.last_at, w.gap_secs) else {
        return Verdict::Unknown;
    };
    if w.accepted < MIN_DELIVERIES {
        return Verdict::Unknown;
    }
    let quiet = s.now - last;
    let quiet_secs = quiet.num_milliseconds() as f64 / 1000.0;
    let gaps = if gap > 0.0 {
        quiet_secs / gap
    } else {
        f64::MAX
    };
    let silent = (w.missed > 0 && quiet > min_silence() && gaps >= GAPS_WITH_MISSED)
        || (quiet > min_silence_alone() && gaps >= GAPS_ALONE);
    if silent {
        Verdict::Active(json!({
            "lastDeliveryAt": last,
            "quietSeconds": quiet.num_seconds(),
            "usualGapSeconds": gap.round(),
            "changesFoundByPolling": w.missed,
            "subscriptions": s.lapsed.iter().map(|l| json!({"state": l.state, "lastError": l.last_error})).collect::<Vec<_>>(),
        }))
    } else {
        Verdict::Clear
    }
}

pub fn subscription_lapsed(s: &Subject<'_>) -> Verdict {
    if s.lapsed.is_empty() {
        return Verdict::Clear;
    }
    Verdict::Active(json!({
        "subscriptions": s.lapsed.iter().map(|l| json!({
            "state": l.state,
            "lastError": l.last_error,
            "expiresAt": l.expires_at,
        })).collect::<Vec<_>>(),
    }))
}

pub fn signature_failures(s: &Subject<'_>) -> Verdict {
    let (accepted, refused) = s.watch.webhooks.recent_totals();
    if refused >= BAD_SIGNATURES && accepted == 0 {
        return Verdict::Active(json!({
            "refusedForSignature": refused,
            "acceptedMeanwhile": accepted,
        }));
    }
    if accepted > 0 {
        Verdict::Clear
    } else {
        Verdict::Unknown
    }
}
