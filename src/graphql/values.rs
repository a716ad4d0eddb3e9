//! Mapped JSON -> GraphQL output values, guided by the SDL type of the field.
//!
//! Vendors are loose (some send every number as a string), so scalars are coerced when
//! the meaning is unambiguous and become null otherwise; a single value where the SDL
//! expects a list becomes a one-item list (JSONata collapses one-item sequences).

use std::sync::Arc;

use async_graphql::dynamic::FieldValue;
use async_graphql::{Name, Value as GqlValue};
use serde_json::Value;

use crate::engine::AccountHandle;
use crate::schema::{TypeRef, UnifiedModel};

/// A nested object of a record (a `Money`, a `Stage`), with the linked account the record
/// came from, so a link inside it (`Stage.pipeline`) loads from the same account.
#[derive(Debug, Clone)]
pub struct NestedValue {
    pub value: Value,
    pub account: Option<Arc<AccountHandle>>,
}

#[derive(Debug, Clone, Copy)]
pub enum ScalarKind {
    String,
    Int,
    Float,
    Boolean,
    Json,
    DateTime,
    /// Declared in the SDL without further meaning: passed through as JSON.
    Custom,
}

#[derive(Debug, Clone)]
pub enum Shape {
    Scalar(ScalarKind),
    Enum(Arc<[String]>),
    Object,
    List(Box<Shape>),
    NonNull(Box<Shape>),
}

impl Shape {
    pub fn of(ty: &TypeRef, model: &UnifiedModel) -> Shape {
        match ty {
            TypeRef::NonNull(inner) => Shape::NonNull(Box::new(Shape::of(inner, model))),
            TypeRef::List(inner) => Shape::List(Box::new(Shape::of(inner, model))),
            TypeRef::Named(name) => match name.as_str() {
                "String" | "ID" => Shape::Scalar(ScalarKind::String),
                "Int" => Shape::Scalar(ScalarKind::Int),
                "Float" => Shape::Scalar(ScalarKind::Float),
                "Boolean" => Shape::Scalar(ScalarKind::Boolean),
                "JSON" => Shape::Scalar(ScalarKind::Json),
                "DateTime" => Shape::Scalar(ScalarKind::DateTime),
                other => match model.enums.iter().find(|e| e.name == other) {
                    Some(e) => Shape::Enum(e.values.clone().into()),
                    None if model.scalars.iter().any(|s| s.name == other) => {
                        Shape::Scalar(ScalarKind::Custom)
                    }
                    None => Shape::Object,
                },
            },
        }
    }
}

/// Converts `value` for a field of this shape; `None` is GraphQL null. `account` is the
/// linked account of the record the value belongs to.
pub fn to_field_value(
    value: Option<&Value>,
    shape: &Shape,
    account: Option<&Arc<AccountHandle>>,
) -> Option<FieldValue<'static>> {
    let value = value.filter(|v| !v.is_null())?;
    match shape {
        Shape::NonNull(inner) => to_field_value(Some(value), inner, account),
        Shape::List(inner) => {
            let items: Vec<FieldValue<'static>> = match value {
                Value::Array(items) => items
                    .iter()
                    .map(|v| to_field_value(Some(v), inner, account).unwrap_or(FieldValue::NULL))
                    .collect(),
                single => vec![to_field_value(Some(single), inner, account)?],
            };
            Some(FieldValue::list(items))
        }
        Shape::Object => match value {
            Value::Object(_) => Some(FieldValue::owned_any(NestedValue {
                value: value.clone(),
                account: account.cloned(),
            })),
            _ => None,
        },
        Shape::Enum(values) => {
            let text = value.as_str()?;
            values
                .iter()
                .find(|v| v.eq_ignore_ascii_case(text))
                .map(|v| FieldValue::value(GqlValue::Enum(Name::new(v))))
        }
        Shape::Scalar(kind) => scalar(value, *kind).map(FieldValue::value),
    }
}

pub fn scalar(value: &Value, kind: ScalarKind) -> Option<GqlValue> {
    match kind {
        ScalarKind::String => match value {
            Value::String(s) => Some(GqlValue::String(s.clone())),
            Value::Number(n) => Some(GqlValue::String(n.to_string())),
            Value::Bool(b) => Some(GqlValue::String(b.to_string())),
            _ => None,
        },
        ScalarKind::Int => match value {
            Value::Number(n) => n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 2f64.powi(53))
                    .map(|f| f as i64)
            }),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        }
        .filter(|i| i32::try_from(*i).is_ok())
        .map(GqlValue::from),
        ScalarKind::Float => match value {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
            _ => None,
        }
        .map(GqlValue::from),
        ScalarKind::Boolean => match value {
            Value::Bool(b) => Some(*b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
        .map(GqlValue::from),
        ScalarKind::DateTime => datetime(value).map(GqlValue::String),
        ScalarKind::Json | ScalarKind::Custom => GqlValue::from_json(value.clone()).ok(),
    }
}

/// RFC 3339 text as the vendor wrote it, or epoch milliseconds converted to it.
fn datetime(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => {
            if chrono::DateTime::parse_from_rfc3339(s).is_ok() {
                Some(s.clone())
            } else {
                s.parse::<i64>().ok().and_then(millis)
            }
        }
        Value::Number(n) => n.as_i64().and_then(millis),
        _ => None,
    }
}

fn millis(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn coerces_vendor_strings_and_nulls_what_does_not_fit() {
        assert_eq!(
            scalar(&json!("42"), ScalarKind::Int),
            Some(GqlValue::from(42))
        );
        assert_eq!(scalar(&json!("4x"), ScalarKind::Int), None);
        assert_eq!(scalar(&json!(1e12), ScalarKind::Int), None);
        assert_eq!(
            scalar(&json!(12), ScalarKind::String),
            Some(GqlValue::String("12".into()))
        );
        assert_eq!(scalar(&json!({"a": 1}), ScalarKind::String), None);
        assert_eq!(
            scalar(&json!("TRUE"), ScalarKind::Boolean),
            Some(GqlValue::from(true))
        );
        assert_eq!(
            scalar(&json!(0), ScalarKind::DateTime),
            Some(GqlValue::String("1970-01-01T00:00:00.000Z".into()))
        );
        assert_eq!(
            scalar(&json!("2024-03-02T10:11:12.345Z"), ScalarKind::DateTime),
            Some(GqlValue::String("2024-03-02T10:11:12.345Z".into()))
        );
        assert_eq!(scalar(&json!("yesterday"), ScalarKind::DateTime), None);
    }
}
