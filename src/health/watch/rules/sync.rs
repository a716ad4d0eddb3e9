//! EMPTY_SYNC and RECORD_COUNT_DROP, from the listings Tessera serves and its own probes.
//!
//! EMPTY_SYNC is the seed's postmortem rule: three listings in a row of a resource that
//! return zero records, where earlier listings of it returned records. RECORD_COUNT_DROP:
//! a complete listing (read to the vendor's last page) under half of the resource's usual
//! complete count (a pagination change that stops early, a cursor that expires).

use serde_json::json;

use super::{Subject, Verdict};

/// Empty listings in a row that make an alert.
const EMPTY_IN_A_ROW: u32 = 3;

pub fn empty_sync(s: &Subject<'_>) -> Verdict {
    let empty: Vec<_> = s
        .watch
        .resources
        .iter()
        .filter(|(_, r)| r.nonempty > 0 && r.empty_streak >= EMPTY_IN_A_ROW)
        .map(|(name, r)| json!({"resource": name, "emptyListingsInARow": r.empty_streak}))
        .collect();
    if !empty.is_empty() {
        return Verdict::Active(json!({ "resources": empty, "accountStatus": s.account.status }));
    }
    if s.watch
        .resources
        .values()
        .any(|r| r.nonempty > 0 && r.empty_streak == 0)
    {
        Verdict::Clear
    } else {
        Verdict::Unknown
    }
}

pub fn record_count_drop(s: &Subject<'_>) -> Verdict {
    let dropped: Vec<_> = s
        .watch
        .resources
        .iter()
        .filter_map(|(name, r)| {
            r.dropped_to.map(|n| {
                json!({
                    "resource": name,
                    "records": n,
                    "usually": r.full_baseline.map(|b| b.round() as u64),
                })
            })
        })
        .collect();
    if !dropped.is_empty() {
        return Verdict::Active(json!({ "resources": dropped }));
    }
    if s.watch.resources.values().any(|r| r.full_samples > 0) {
        Verdict::Clear
    } else {
        Verdict::Unknown
    }
}
