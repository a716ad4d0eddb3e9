//! What an override is: its scope (level, environment, account, provider, resource) and its
//! content, as stored (JSON) and as users write it (`OverrideInput`).

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::raw::RawCustomFieldType;

/// Where an override sits in the hierarchy; later levels win.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    /// On top of the provider file, for every customer (admin only).
    Platform,
    /// One customer's workspace.
    Environment,
    /// One linked account.
    Account,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Platform => "PLATFORM",
            Level::Environment => "ENVIRONMENT",
            Level::Account => "ACCOUNT",
        }
    }

    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "PLATFORM" => Some(Level::Platform),
            "ENVIRONMENT" => Some(Level::Environment),
            "ACCOUNT" => Some(Level::Account),
            _ => None,
        }
    }
}

/// The place one override applies to. Exactly one override (its latest version) is current
/// per scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub level: Level,
    /// Set for environment and account levels.
    pub environment_id: Option<String>,
    /// Set for the account level.
    pub account_id: Option<String>,
    pub provider: String,
    pub resource: String,
}

impl Scope {
    /// The stable text the store indexes versions by.
    pub fn key(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}",
            self.level.as_str(),
            self.environment_id.as_deref().unwrap_or(""),
            self.account_id.as_deref().unwrap_or(""),
            self.provider,
            self.resource
        )
    }

    /// Whether this override takes part in the mapping of `account` (of `environment`).
    pub fn applies_to(&self, provider: &str, environment: &str, account: &str) -> bool {
        self.provider == provider
            && match self.level {
                Level::Platform => true,
                Level::Environment => self.environment_id.as_deref() == Some(environment),
                Level::Account => self.account_id.as_deref() == Some(account),
            }
    }
}

/// The content of an override. Every part is optional; together they patch the provider
/// file's resource at this level.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OverrideSpec {
    /// Output field path -> JSONata on the upstream record: added, or replacing the field.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub fields: IndexMap<String, String>,
    /// Output fields to drop.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
    /// Replaces the whole response mapping (fields of lower levels are dropped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_mapping: Option<String>,
    /// Merged (RFC 7386) into the resource's `operations`: query parameters, requested
    /// property lists, page size, a renamed path, write bodies; `{"$append": [...]}` adds
    /// to a list parameter (see [`merge_patch`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Value>,
    /// Declared types of custom fields: values are coerced, misfits become null + warning.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub custom_field_types: IndexMap<String, RawCustomFieldType>,
}

impl OverrideSpec {
    pub fn is_empty(&self) -> bool {
        *self == OverrideSpec::default()
    }
}

/// RFC 7386 JSON merge patch: objects merge key by key, `null` deletes, anything else
/// replaces; with one addition, `{"$append": ["a", "b"]}`, which adds items to a list
/// parameter instead of restating it: to a comma-separated string (`properties=`,
/// `$select=`, `fields=`) or an array, each item once, keeping what is there. A provider
/// file that later adds an item of its own keeps it under such a patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    if let Some(items) = append_items(patch) {
        append(target, &items);
        return;
    }
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    if let Value::Object(map) = target {
        for (k, v) in patch {
            if v.is_null() {
                map.shift_remove(k);
            } else {
                merge_patch(map.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// The items of an `{"$append": [...]}` patch (its only key; text items).
fn append_items(patch: &Value) -> Option<Vec<String>> {
    let map = patch.as_object().filter(|m| m.len() == 1)?;
    let items = map.get("$append")?.as_array()?;
    items
        .iter()
        .map(|i| i.as_str().map(|s| s.trim().to_owned()))
        .collect::<Option<Vec<String>>>()
}

fn append(target: &mut Value, items: &[String]) {
    match target {
        Value::Array(list) => {
            for item in items {
                if !list.iter().any(|v| v.as_str() == Some(item)) {
                    list.push(Value::String(item.clone()));
                }
            }
        }
        Value::String(text) => {
            let mut parts: Vec<String> = text
                .split(',')
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
                .collect();
            for item in items {
                if !item.is_empty() && !parts.contains(item) {
                    parts.push(item.clone());
                }
            }
            *text = parts.join(",");
        }
        // Nothing there yet: the items are the list.
        other => *other = Value::String(items.join(",")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn append_adds_list_items_once_and_keeps_the_rest() {
        let mut doc = json!({"query": {"properties": "a, b", "tags": ["x"], "keep": "k"}});
        merge_patch(
            &mut doc,
            &json!({"query": {"properties": {"$append": ["c", "a"]}, "tags": {"$append": ["y", "x"]}, "new": {"$append": ["n1", "n2"]}}}),
        );
        assert_eq!(
            doc,
            json!({"query": {"properties": "a,b,c", "tags": ["x", "y"], "keep": "k", "new": "n1,n2"}})
        );
        // Not an append (another key beside it, or items that are not text): a plain merge.
        let mut doc = json!({"q": "a"});
        merge_patch(&mut doc, &json!({"q": {"$append": [1]}}));
        assert_eq!(doc, json!({"q": {"$append": [1]}}));
    }

    #[test]
    fn merge_patch_merges_objects_deletes_nulls_and_replaces_the_rest() {
        let mut doc =
            json!({"list": {"path": "/a", "query": {"properties": "x", "archived": "false"}}});
        merge_patch(
            &mut doc,
            &json!({"list": {"query": {"properties": "x,y", "archived": null}, "path": "/b"}}),
        );
        assert_eq!(
            doc,
            json!({"list": {"path": "/b", "query": {"properties": "x,y"}}})
        );
    }

    #[test]
    fn scope_keys_differ_by_level_environment_and_account() {
        let s = |level, env: Option<&str>, acc: Option<&str>| Scope {
            level,
            environment_id: env.map(str::to_string),
            account_id: acc.map(str::to_string),
            provider: "p".into(),
            resource: "contacts".into(),
        };
        let keys = [
            s(Level::Platform, None, None).key(),
            s(Level::Environment, Some("e"), None).key(),
            s(Level::Account, Some("e"), Some("a")).key(),
        ];
        assert_eq!(
            keys.iter().collect::<std::collections::HashSet<_>>().len(),
            3
        );
        assert!(s(Level::Environment, Some("e"), None).applies_to("p", "e", "x"));
        assert!(!s(Level::Environment, Some("e"), None).applies_to("p", "f", "x"));
        assert!(!s(Level::Account, Some("e"), Some("a")).applies_to("p", "e", "b"));
    }
}
