//! Applies overrides, level by level, to a provider file's document. The result is an
//! ordinary provider document, compiled by the same validator as the file itself, so an
//! override can do nothing a provider file could not, and is checked the same way.

use std::collections::HashMap;

use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::spec::{Level, OverrideSpec, merge_patch};

/// One override to apply, in hierarchy order.
#[derive(Debug, Clone, Copy)]
pub struct Layer<'a> {
    pub level: Level,
    pub version: i32,
    pub resource: &'a str,
    pub spec: &'a OverrideSpec,
}

/// Where one output field's expression came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSource {
    /// The output path (`phone`, `customFields.industry`); `*` for a whole-object mapping.
    pub field: String,
    pub expression: String,
    pub level: Level,
    /// The override version; `None` for the provider file itself.
    pub version: Option<i32>,
}

/// A provider document with overrides applied, and what each field's expression is.
#[derive(Debug, Clone)]
pub struct Merged {
    pub document: Value,
    /// Per resource, the mapping's sources: the whole expression (if any) first.
    pub provenance: HashMap<String, Vec<FieldSource>>,
    /// Parts of overrides that had nothing to act on (e.g. removing an unmapped field).
    pub notes: Vec<String>,
}

#[derive(Default)]
struct Sources {
    whole: Option<FieldSource>,
    fields: IndexMap<String, FieldSource>,
}

fn strings(v: Option<&Value>) -> IndexMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

pub fn merge(base: &Value, layers: &[Layer<'_>]) -> Merged {
    let mut document = base.clone();
    let mut sources: HashMap<String, Sources> = HashMap::new();
    let mut notes = Vec::new();
    if let Some(resources) = document.get("resources").and_then(Value::as_object) {
        for (name, res) in resources {
            let mut s = Sources::default();
            if let Some(whole) = res.get("responseMapping").and_then(Value::as_str) {
                s.whole = Some(FieldSource {
                    field: "*".into(),
                    expression: whole.into(),
                    level: Level::Platform,
                    version: None,
                });
            }
            for (path, expr) in strings(res.get("fields")) {
                s.fields.insert(
                    path.clone(),
                    FieldSource {
                        field: path,
                        expression: expr,
                        level: Level::Platform,
                        version: None,
                    },
                );
            }
            sources.insert(name.clone(), s);
        }
    }
    for layer in layers {
        let Some(res) = document
            .pointer_mut(&format!(
                "/resources/{}",
                crate::problem::pointer_segment(layer.resource)
            ))
            .and_then(Value::as_object_mut)
        else {
            notes.push(format!(
                "the provider has no resource `{}` to override",
                layer.resource
            ));
            continue;
        };
        let s = sources.entry(layer.resource.to_string()).or_default();
        apply(res, layer, s, &mut notes);
    }
    let provenance = sources
        .into_iter()
        .map(|(name, s)| {
            let mut list: Vec<FieldSource> = s.whole.into_iter().collect();
            list.extend(s.fields.into_values());
            (name, list)
        })
        .collect();
    Merged {
        document,
        provenance,
        notes,
    }
}

fn apply(
    res: &mut Map<String, Value>,
    layer: &Layer<'_>,
    s: &mut Sources,
    notes: &mut Vec<String>,
) {
    let spec = layer.spec;
    let source = |field: &str, expression: &str| FieldSource {
        field: field.to_string(),
        expression: expression.to_string(),
        level: layer.level,
        version: Some(layer.version),
    };
    if let Some(whole) = &spec.response_mapping {
        // Replacing the whole mapping drops every field of the levels below.
        res.insert("responseMapping".into(), Value::String(whole.clone()));
        res.insert("fields".into(), Value::Object(Map::new()));
        res.shift_remove("omitFields");
        s.whole = Some(source("*", whole));
        s.fields.clear();
    }
    if let Value::Object(f) = res
        .entry("fields")
        .or_insert_with(|| Value::Object(Map::new()))
    {
        for (path, expr) in &spec.fields {
            f.insert(path.clone(), Value::String(expr.clone()));
            s.fields.insert(path.clone(), source(path, expr));
        }
    }
    for path in &spec.remove {
        let removed = match res.get_mut("fields") {
            Some(Value::Object(f)) => f.shift_remove(path).is_some(),
            _ => false,
        };
        s.fields.shift_remove(path);
        if removed {
            continue;
        }
        if s.whole.is_some() && !path.contains('.') {
            // The field comes from the whole expression: drop it from its result.
            let omit = res
                .entry("omitFields")
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(list) = omit {
                list.push(Value::String(path.clone()));
            }
        } else {
            notes.push(format!(
                "`remove` names `{path}`, which the mapping of `{}` does not have",
                layer.resource
            ));
        }
    }
    if let Some(request) = &spec.request {
        merge_patch(
            res.entry("operations")
                .or_insert_with(|| Value::Object(Map::new())),
            request,
        );
    }
    if !spec.custom_field_types.is_empty() {
        let types = res
            .entry("customFieldTypes")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(t) = types {
            for (name, ty) in &spec.custom_field_types {
                t.insert(
                    name.clone(),
                    serde_json::to_value(ty).unwrap_or(Value::Null),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: Value) -> OverrideSpec {
        serde_json::from_value(v).unwrap_or_default()
    }

    #[test]
    fn levels_apply_in_order_and_provenance_names_the_winner() {
        let base = json!({"resources": {"contacts": {"fields": {"firstName": "first", "phone": "tel"}, "operations": {"list": {"path": "/c", "query": {"properties": "first,tel"}}}}}});
        let env = spec(
            json!({"fields": {"customFields.industry": "Industry__c"}, "request": {"list": {"query": {"properties": "first,tel,Industry__c"}}}}),
        );
        let acc = spec(json!({"fields": {"phone": "Phone_Primary__c"}, "remove": ["firstName"]}));
        let merged = merge(
            &base,
            &[
                Layer {
                    level: Level::Environment,
                    version: 3,
                    resource: "contacts",
                    spec: &env,
                },
                Layer {
                    level: Level::Account,
                    version: 1,
                    resource: "contacts",
                    spec: &acc,
                },
            ],
        );
        let res = &merged.document["resources"]["contacts"];
        assert_eq!(
            res["fields"],
            json!({"phone": "Phone_Primary__c", "customFields.industry": "Industry__c"})
        );
        assert_eq!(
            res["operations"]["list"]["query"]["properties"],
            "first,tel,Industry__c"
        );
        let p = &merged.provenance["contacts"];
        let phone = p
            .iter()
            .find(|f| f.field == "phone")
            .map(|f| (f.level, f.version));
        assert_eq!(phone, Some((Level::Account, Some(1))));
        let ind = p
            .iter()
            .find(|f| f.field == "customFields.industry")
            .map(|f| (f.level, f.version));
        assert_eq!(ind, Some((Level::Environment, Some(3))));
        assert!(p.iter().all(|f| f.field != "firstName"));
        assert!(merged.notes.is_empty());
    }

    #[test]
    fn a_whole_mapping_drops_lower_fields_and_removal_then_omits_from_it() {
        let base = json!({"resources": {"contacts": {"fields": {"firstName": "first"}, "operations": {}}}});
        let whole = spec(json!({"responseMapping": "{'firstName': f, 'title': t}"}));
        let rm = spec(json!({"remove": ["title", "nothing.here"]}));
        let merged = merge(
            &base,
            &[
                Layer {
                    level: Level::Platform,
                    version: 1,
                    resource: "contacts",
                    spec: &whole,
                },
                Layer {
                    level: Level::Account,
                    version: 1,
                    resource: "contacts",
                    spec: &rm,
                },
            ],
        );
        let res = &merged.document["resources"]["contacts"];
        assert_eq!(res["fields"], json!({}));
        assert_eq!(res["omitFields"], json!(["title"]));
        assert_eq!(merged.notes.len(), 1, "{:?}", merged.notes);
    }
}
