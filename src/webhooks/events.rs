//! The provider's `events` expression output, checked: each event names its resource,
//! action and record, and how it is routed and deduplicated.

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// What happened to the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Created,
    Updated,
    Deleted,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Deleted => "deleted",
        }
    }
}

/// One event of a delivery, as stored in the inbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VendorEvent {
    pub resource: String,
    pub action: Action,
    pub remote_id: String,
    pub occurred_at: DateTime<Utc>,
    /// The vendor's event id, or a hash of the event.
    pub dedup_key: String,
    /// The vendor's record when the payload carried it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<Value>,
    /// Routing, not stored: the app-level account key.
    #[serde(skip)]
    pub account_key: Option<String>,
    /// Routing, not stored: the vendor subscription it came through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
    /// Verification, never stored: the token the vendor echoed.
    #[serde(skip)]
    pub secret: Option<String>,
}

/// A notice about the subscription itself rather than a record (Graph's lifecycle
/// notifications: `reauthorizationRequired`, `subscriptionRemoved`, `missed`): an event
/// with `lifecycle` set.
#[derive(Debug, Clone, PartialEq)]
pub struct LifecycleNotice {
    pub kind: String,
    pub subscription: Option<String>,
    pub secret: Option<String>,
}

/// One item of a delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Change(VendorEvent),
    Lifecycle(LifecycleNotice),
}

/// The events of one delivery: the expression's output (an array of objects, one object,
/// or nothing) with each event checked. `now` stands in for a missing `occurredAt`.
pub fn read_items(output: Option<Value>, now: DateTime<Utc>) -> Result<Vec<Item>, String> {
    let items = match output {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(v @ Value::Object(_)) => vec![v],
        Some(other) => {
            return Err(format!(
                "the events expression gave {}, not an array of event objects",
                kind(&other)
            ));
        }
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| read_item(item, now).map_err(|m| format!("event {i}: {m}")))
        .collect()
}

/// As [`read_items`], for callers that expect record changes only.
#[cfg(test)]
fn read_events(output: Option<Value>, now: DateTime<Utc>) -> Result<Vec<VendorEvent>, String> {
    Ok(read_items(output, now)?
        .into_iter()
        .filter_map(|i| match i {
            Item::Change(e) => Some(e),
            Item::Lifecycle(_) => None,
        })
        .collect())
}

fn read_item(item: Value, now: DateTime<Utc>) -> Result<Item, String> {
    let Value::Object(mut obj) = item else {
        return Err(format!("{} is not an object", kind(&item)));
    };
    let text =
        |obj: &serde_json::Map<String, Value>, name: &str| -> Result<Option<String>, String> {
            match obj.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(Value::Number(n)) => Ok(Some(n.to_string())),
                Some(other) => Err(format!("`{name}` is {}, not text", kind(other))),
            }
        };
    if let Some(kind) = text(&obj, "lifecycle")? {
        return Ok(Item::Lifecycle(LifecycleNotice {
            kind,
            subscription: text(&obj, "subscription")?,
            secret: text(&obj, "secret")?,
        }));
    }
    let resource = text(&obj, "resource")?.ok_or("`resource` is missing")?;
    let action = match text(&obj, "action")?.as_deref() {
        Some("created") => Action::Created,
        Some("updated") => Action::Updated,
        Some("deleted") => Action::Deleted,
        Some(other) => {
            return Err(format!(
                "`action` is `{other}`; expected created, updated or deleted"
            ));
        }
        None => return Err("`action` is missing".into()),
    };
    let remote_id = text(&obj, "remoteId")?.ok_or("`remoteId` is missing")?;
    let occurred_at = match obj.get("occurredAt") {
        None | Some(Value::Null) => now,
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
            .ok_or_else(|| format!("`occurredAt` {n} is not a time in epoch milliseconds"))?,
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| format!("`occurredAt` `{}` is not an RFC 3339 time", truncate(s)))?,
        Some(other) => return Err(format!("`occurredAt` is {}", kind(other))),
    };
    let account_key = text(&obj, "accountKey")?;
    let subscription = text(&obj, "subscription")?;
    let secret = text(&obj, "secret")?;
    let given_id = text(&obj, "id")?;
    // The echoed token is verification only: it never reaches the store or a hash.
    obj.remove("secret");
    let record = match obj.get("record") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(other) => return Err(format!("`record` is {}, not an object", kind(other))),
    };
    let dedup_key = match given_id {
        Some(id) => format!("id:{id}"),
        None => {
            let canonical = serde_json::to_vec(&obj).unwrap_or_default();
            format!(
                "sha256:{}",
                crate::signing::hex(&Sha256::digest(&canonical))
            )
        }
    };
    Ok(Item::Change(VendorEvent {
        resource,
        action,
        remote_id,
        occurred_at,
        dedup_key,
        record,
        account_key,
        subscription,
        secret,
    }))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_ids_times_and_hashes_events_without_an_id() {
        let now = Utc::now();
        let events = read_events(
            Some(json!([
                {"resource": "contacts", "action": "updated", "remoteId": 12, "id": 7, "occurredAt": 1_700_000_000_000i64, "accountKey": "62515"},
                {"resource": "contacts", "action": "deleted", "remoteId": "a", "occurredAt": "2024-03-02T10:11:12Z", "secret": "s"}
            ])),
            now,
        )
        .unwrap();
        assert_eq!(events[0].remote_id, "12");
        assert_eq!(events[0].dedup_key, "id:7");
        assert_eq!(events[0].occurred_at.timestamp_millis(), 1_700_000_000_000);
        assert_eq!(events[0].account_key.as_deref(), Some("62515"));
        assert!(events[1].dedup_key.starts_with("sha256:"));
        assert_eq!(events[1].secret.as_deref(), Some("s"));
        // The echoed secret is not part of the hash: the same event with another token is
        // the same event.
        let again = read_events(
            Some(json!({"resource": "contacts", "action": "deleted", "remoteId": "a", "occurredAt": "2024-03-02T10:11:12Z", "secret": "t"})),
            now,
        )
        .unwrap();
        assert_eq!(again[0].dedup_key, events[1].dedup_key);
    }

    #[test]
    fn a_bad_event_says_which_and_what() {
        let now = Utc::now();
        for (value, expected) in [
            (
                json!([{"resource": "contacts", "action": "merged", "remoteId": "1"}]),
                "event 0: `action` is `merged`",
            ),
            (
                json!([{"action": "created", "remoteId": "1"}]),
                "event 0: `resource` is missing",
            ),
            (
                json!([{}, {"resource": "contacts", "action": "created"}]),
                "event 0: `resource` is missing",
            ),
            (
                json!([{"resource": "contacts", "action": "created", "remoteId": "1", "occurredAt": 1e300}]),
                "event 0: `occurredAt`",
            ),
            (json!("x"), "gave text"),
        ] {
            let err = read_events(Some(value), now).unwrap_err();
            assert!(err.contains(expected), "{err}");
        }
        assert!(read_events(None, now).unwrap().is_empty());
    }
}
