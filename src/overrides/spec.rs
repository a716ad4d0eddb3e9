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
    /// property lists, page size, a renamed path, write bodies.
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
/// replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
