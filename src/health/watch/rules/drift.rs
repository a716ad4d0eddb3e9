//! SCHEMA_DRIFT: the shape of a resource's responses moved against the baseline learned
//! from this account's earlier responses (a renamed field, a new wrapper object, a type or
//! date format that changed, a cursor of another form), or a response lacked its records
//! array altogether. The evidence has the changes and the last good and first bad
//! payloads, redacted to their types. Cleared when responses match the shape again.

use serde_json::json;

use super::{Subject, Verdict};

pub fn schema_drift(s: &Subject<'_>) -> Verdict {
    let drifted: Vec<_> = s
        .watch
        .resources
        .iter()
        .filter_map(|(name, r)| {
            r.drift.as_ref().map(|d| {
                json!({
                    "resource": name,
                    "summary": d.summary,
                    "changes": d.changes,
                    "since": d.since,
                    "lastGood": d.last_good,
                    "firstBad": d.first_bad,
                })
            })
        })
        .collect();
    let malformed = s.watch.recent_calls().malformed;
    if !drifted.is_empty() || malformed > 0 {
        return Verdict::Active(json!({
            "resources": drifted,
            "responsesWithoutRecords": malformed,
        }));
    }
    if s.watch.resources.values().any(|r| r.shape.is_mature()) {
        Verdict::Clear
    } else {
        Verdict::Unknown
    }
}
