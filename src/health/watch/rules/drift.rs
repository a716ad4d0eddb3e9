//! SCHEMA_DRIFT: the shape of a resource's responses moved against the baseline learned
//! from this account's earlier responses (a renamed field, a new wrapper object, a type or
//! date format that changed, a cursor of another form), or a response lacked its records
//! array altogether. The evidence has the changes and the last good and first bad
//! payloads, redacted to their types, and the unified fields whose mapping reads a path
//! that vanished (so a null there is named, not silent). Cleared when responses match the
//! shape again.

use serde_json::json;

use super::{Subject, Verdict};
use crate::shape::Change;

pub fn schema_drift(s: &Subject<'_>) -> Verdict {
    let drifted: Vec<_> = s
        .watch
        .resources
        .iter()
        .filter_map(|(name, r)| {
            r.drift.as_ref().map(|d| {
                json!({
                    "resource": name,
                    "unreadFields": unread_fields(s, name, &d.changes),
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

/// The unified fields of `resource` whose mapping reads a vendor path that vanished: each
/// is now null (or its default) for every record, and says so here.
fn unread_fields(s: &Subject<'_>, resource: &str, changes: &[Change]) -> Vec<serde_json::Value> {
    let Some(model) = s.provider.as_ref().and_then(|p| p.resources.get(resource)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for change in changes {
        let Change::FieldVanished { path, .. } = change else {
            continue;
        };
        // A mapping names a vendor field by its last key (`properties.email` is read as
        // `properties.email` or, inside `properties`, as `email`).
        let key = path
            .rsplit('.')
            .next()
            .unwrap_or(path)
            .trim_end_matches("[]");
        if key.is_empty() || key == "*" {
            continue;
        }
        for field in &model.mapping.fields {
            if reads_key(field.expr.source(), key) {
                out.push(json!({"field": field.path, "reads": path}));
            }
        }
    }
    out
}

/// Whether an expression's source names `key` as a whole path step.
fn reads_key(source: &str, key: &str) -> bool {
    let is_name = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    source.match_indices(key).any(|(i, _)| {
        let before = source[..i].chars().next_back();
        let after = source[i + key.len()..].chars().next();
        !before.is_some_and(is_name) && !after.is_some_and(is_name)
    })
}

#[cfg(test)]
mod tests {
    use super::reads_key;

    #[test]
    fn a_key_is_read_as_a_whole_step_only() {
        assert!(reads_key("properties.email", "email"));
        assert!(reads_key("$lowercase(`email`)", "email"));
        assert!(!reads_key("properties.email_address", "email"));
        assert!(!reads_key("properties.hs_email", "email"));
    }
}
