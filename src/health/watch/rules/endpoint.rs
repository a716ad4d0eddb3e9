//! ENDPOINT_GONE: a listing that used to answer now answers 404 (a get of a missing record
//! is a legitimate 404 and never counts). Cleared when the listing answers again.

use serde_json::json;

use super::{Subject, Verdict};

pub fn endpoint_gone(s: &Subject<'_>) -> Verdict {
    let gone: Vec<_> = s
        .watch
        .resources
        .iter()
        .filter(|(_, r)| r.answered && r.gone_streak > 0)
        .map(|(name, r)| json!({"resource": name, "notFoundInARow": r.gone_streak}))
        .collect();
    if !gone.is_empty() {
        return Verdict::Active(json!({ "resources": gone }));
    }
    if s.watch.resources.values().any(|r| r.answered) {
        Verdict::Clear
    } else {
        Verdict::Unknown
    }
}
