//! Custom field types: a value mapped into `customFields.<name>` is coerced to the type an
//! environment declared for it. Enterprise data is messy (a number field holding "12", or
//! "n/a"), so a value that cannot be coerced becomes null with a warning for the caller; it
//! never fails the request.

use serde_json::{Map, Value};

use crate::config::raw::RawCustomFieldType as Type;

/// Coerces the declared custom fields of one mapped record in place; returns one warning per
/// value that had to be dropped.
pub fn custom_fields(mapped: &mut Map<String, Value>, types: &[(String, Type)]) -> Vec<String> {
    let mut warnings = Vec::new();
    if types.is_empty() {
        return warnings;
    }
    let Some(Value::Object(fields)) = mapped.get_mut("customFields") else {
        return warnings;
    };
    for (name, ty) in types {
        let Some(value) = fields.get_mut(name) else {
            continue;
        };
        if value.is_null() {
            continue;
        }
        match coerce(value, *ty) {
            Some(v) => *value = v,
            None => {
                warnings.push(format!(
                    "customFields.{name}: {} does not fit the declared type {}; returned null",
                    describe(value),
                    type_name(*ty)
                ));
                *value = Value::Null;
            }
        }
    }
    warnings
}

fn coerce(value: &Value, ty: Type) -> Option<Value> {
    match (ty, value) {
        (Type::Json, v) => Some(v.clone()),
        (Type::String, Value::String(_)) => Some(value.clone()),
        (Type::String, Value::Number(n)) => Some(Value::String(n.to_string())),
        (Type::String, Value::Bool(b)) => Some(Value::String(b.to_string())),
        (Type::Int, Value::Number(n)) => int_of_number(n),
        (Type::Int, Value::String(s)) => {
            let s = s.trim();
            s.parse::<i64>().ok().map(Value::from).or_else(|| {
                // "12.0" is an integer written as a decimal; "12.5" is not.
                s.parse::<f64>()
                    .ok()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| Value::from(f as i64))
            })
        }
        (Type::Float, Value::Number(n)) => n.as_f64().map(Value::from),
        (Type::Float, Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Value::from),
        (Type::Boolean, Value::Bool(_)) => Some(value.clone()),
        (Type::Boolean, Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Some(Value::Bool(true)),
            "false" | "no" | "0" => Some(Value::Bool(false)),
            _ => None,
        },
        (Type::Boolean, Value::Number(n)) => match n.as_i64() {
            Some(0) => Some(Value::Bool(false)),
            Some(1) => Some(Value::Bool(true)),
            _ => None,
        },
        (Type::DateTime, Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s.trim())
            .ok()
            .map(|d| Value::String(d.to_rfc3339())),
        _ => None,
    }
}

fn int_of_number(n: &serde_json::Number) -> Option<Value> {
    if let Some(i) = n.as_i64() {
        return Some(Value::from(i));
    }
    n.as_f64()
        .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
        .map(|f| Value::from(f as i64))
}

fn describe(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 40 {
        format!("{}…", text.chars().take(40).collect::<String>())
    } else {
        text
    }
}

pub fn type_name(ty: Type) -> &'static str {
    match ty {
        Type::String => "String",
        Type::Int => "Int",
        Type::Float => "Float",
        Type::Boolean => "Boolean",
        Type::DateTime => "DateTime",
        Type::Json => "JSON",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(value: Value, ty: Type) -> (Value, usize) {
        let mut mapped = json!({"customFields": {"x": value}})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let warnings = custom_fields(&mut mapped, &[("x".into(), ty)]);
        (mapped["customFields"]["x"].clone(), warnings.len())
    }

    #[test]
    fn numbers_in_strings_become_numbers_and_garbage_becomes_null_with_a_warning() {
        assert_eq!(run(json!("12"), Type::Int), (json!(12), 0));
        assert_eq!(run(json!(" 12.0 "), Type::Int), (json!(12), 0));
        assert_eq!(run(json!("12.5"), Type::Int), (Value::Null, 1));
        assert_eq!(run(json!("abc"), Type::Int), (Value::Null, 1));
        assert_eq!(run(json!("2.5"), Type::Float), (json!(2.5), 0));
        assert_eq!(run(json!(7), Type::String), (json!("7"), 0));
        assert_eq!(run(json!("Yes"), Type::Boolean), (json!(true), 0));
        assert_eq!(run(json!("maybe"), Type::Boolean), (Value::Null, 1));
        assert_eq!(
            run(json!("2024-05-01T10:00:00Z"), Type::DateTime),
            (json!("2024-05-01T10:00:00+00:00"), 0)
        );
        assert_eq!(run(json!("May 1st"), Type::DateTime), (Value::Null, 1));
        assert_eq!(run(Value::Null, Type::Int), (Value::Null, 0));
        assert_eq!(run(json!({"a": 1}), Type::Json), (json!({"a": 1}), 0));
    }
}
