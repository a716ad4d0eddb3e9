//! Does a mapped JSON value fit an SDL type? Used by `tessera check` on sample records, so
//! a mapping that produces the wrong shape is caught before a request ever meets it. The
//! rules mirror what the GraphQL layer coerces at run time.

use serde_json::Value;

use super::model::{TypeRef, UnifiedModel};

/// One output key of a mapped record whose value does not fit its SDL type.
#[derive(Debug, Clone)]
pub struct Misfit {
    pub key: String,
    pub ty: TypeRef,
    pub why: String,
}

/// The output keys of one mapped record of `def` whose values do not fit their types: SDL
/// fields, link ids (one id or a list), the remote timestamps; anything else is JSON.
pub fn misfits(
    def: &super::model::ResourceDef,
    mapped: &serde_json::Map<String, Value>,
    model: &UnifiedModel,
) -> Vec<Misfit> {
    let mut found = Vec::new();
    for (key, value) in mapped {
        let ty = match def
            .fields
            .iter()
            .find(|f| &f.name == key && f.link.is_none())
        {
            Some(f) => f.ty.clone(),
            None if def
                .fields
                .iter()
                .any(|f| f.link.as_ref().is_some_and(|l| &l.field == key)) =>
            {
                // One id, or a list of ids for a list link (one value passes as a list).
                TypeRef::List(Box::new(TypeRef::Named("ID".into())))
            }
            None if key == "remoteCreatedAt" || key == "remoteUpdatedAt" => {
                TypeRef::Named("DateTime".into())
            }
            None => TypeRef::Named("JSON".into()),
        };
        if let Err(why) = fits(Some(value), &ty, model) {
            found.push(Misfit {
                key: key.clone(),
                ty,
                why,
            });
        }
    }
    found
}

/// `Err` says what does not fit, with a dotted path inside the value.
pub fn fits(value: Option<&Value>, ty: &TypeRef, model: &UnifiedModel) -> Result<(), String> {
    check(value, ty, model, "")
}

fn check(
    value: Option<&Value>,
    ty: &TypeRef,
    model: &UnifiedModel,
    path: &str,
) -> Result<(), String> {
    let at = |msg: String| {
        if path.is_empty() {
            msg
        } else {
            format!("{path}: {msg}")
        }
    };
    let value = match value {
        None | Some(Value::Null) => {
            return match ty {
                TypeRef::NonNull(_) => Err(at(format!("is missing but `{ty}` is required"))),
                _ => Ok(()),
            };
        }
        Some(v) => v,
    };
    match ty {
        TypeRef::NonNull(inner) => check(Some(value), inner, model, path),
        TypeRef::List(inner) => match value {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    check(Some(item), inner, model, &format!("{path}[{i}]"))?;
                }
                Ok(())
            }
            // One value where a list is expected becomes a one-item list at run time.
            single => check(Some(single), inner, model, path),
        },
        TypeRef::Named(name) => named(value, name, model).map_err(at),
    }
}

fn named(value: &Value, name: &str, model: &UnifiedModel) -> Result<(), String> {
    let shown = || {
        let text = value.to_string();
        if text.chars().count() > 40 {
            format!("{}…", text.chars().take(40).collect::<String>())
        } else {
            text
        }
    };
    let ok = match name {
        "String" | "ID" => matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_)),
        "Int" => match value {
            Value::Number(n) => n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
            Value::String(s) => s.trim().parse::<i32>().is_ok(),
            _ => false,
        },
        "Float" => match value {
            Value::Number(_) => true,
            Value::String(s) => s.trim().parse::<f64>().is_ok_and(f64::is_finite),
            _ => false,
        },
        "Boolean" => {
            matches!(value, Value::Bool(_))
                || value.as_str().is_some_and(|s| {
                    s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false")
                })
        }
        "DateTime" => match value {
            Value::String(s) => {
                chrono::DateTime::parse_from_rfc3339(s).is_ok() || s.parse::<i64>().is_ok()
            }
            Value::Number(n) => n.as_i64().is_some(),
            _ => false,
        },
        "JSON" => true,
        other => {
            if let Some(e) = model.enums.iter().find(|e| e.name == other) {
                value
                    .as_str()
                    .is_some_and(|s| e.values.iter().any(|v| v.eq_ignore_ascii_case(s)))
            } else if model.scalars.iter().any(|s| s.name == other) {
                true
            } else if let Some(obj) = model.objects.iter().find(|o| o.name == other) {
                let Value::Object(map) = value else {
                    return Err(format!("{} is not an object of type `{other}`", shown()));
                };
                for key in map.keys() {
                    if !obj.fields.iter().any(|f| &f.name == key) {
                        return Err(format!("`{key}` is not a field of `{other}`"));
                    }
                }
                for f in &obj.fields {
                    check(map.get(&f.name), &f.ty, model, &f.name)?;
                }
                true
            } else {
                false
            }
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{} does not fit `{name}`", shown()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::model::{FieldDef, ObjectDef};
    use serde_json::json;

    fn model() -> UnifiedModel {
        UnifiedModel {
            objects: vec![ObjectDef {
                name: "Email".into(),
                description: None,
                fields: vec![FieldDef {
                    name: "address".into(),
                    description: None,
                    ty: TypeRef::NonNull(Box::new(TypeRef::Named("String".into()))),
                    link: None,
                }],
            }],
            ..Default::default()
        }
    }

    #[test]
    fn accepts_coercible_values_and_explains_the_rest() {
        let m = model();
        let int = TypeRef::Named("Int".into());
        assert!(fits(Some(&json!("12")), &int, &m).is_ok());
        assert_eq!(
            fits(Some(&json!("abc")), &int, &m).unwrap_err(),
            "\"abc\" does not fit `Int`"
        );
        let emails = TypeRef::List(Box::new(TypeRef::Named("Email".into())));
        assert!(fits(Some(&json!([{"address": "a@b.c"}])), &emails, &m).is_ok());
        assert_eq!(
            fits(Some(&json!([{"adress": "a@b.c"}])), &emails, &m).unwrap_err(),
            "[0]: `adress` is not a field of `Email`"
        );
        assert_eq!(
            fits(Some(&json!([{}])), &emails, &m).unwrap_err(),
            "[0]: address: is missing but `String!` is required"
        );
        assert!(fits(None, &emails, &m).is_ok());
    }
}
