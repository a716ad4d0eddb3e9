//! Executing a plan: the variables coerced, the listings and records read (all at once, as
//! async-graphql resolves root fields), then the response written straight from the
//! records into one buffer.
//!
//! Every step mirrors what the resolvers do (`resources.rs`, `values.rs`); where they
//! would raise an error, this returns `None` and async-graphql answers instead.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::{Name, Value as ConstValue, Variables};
use serde_json::Value;

use super::build::base_shape;
use super::{
    Arg, Condition, ConnectionItem, EdgeItem, Item, ListRoot, NodeItem, ObjectItem, PageInfoItem,
    Plan, Root, ScalarVar, SingleRoot,
};
use crate::access::{Caller, handle_for};
use crate::graphql::RequestState;
use crate::graphql::resources::{
    DEFAULT_FIRST, EdgeNode, ListingArgs, RecordNode, decode_id, read_listing, read_one,
};
use crate::graphql::values::{Shape, scalar};
use crate::ids::GlobalId;
use crate::services::SharedServices;

/// A variable's value once coerced to its declared type.
#[derive(Debug, Clone)]
enum Input {
    Null,
    String(String),
    Int(i64),
    Bool(bool),
}

type Inputs = HashMap<Name, Input>;

/// The planned path cannot finish this request; async-graphql will.
struct HandOver;

pub(super) async fn run(
    plan: &Plan,
    services: &SharedServices,
    caller: &Caller,
    variables: &Variables,
    state: &Arc<RequestState>,
) -> Option<Vec<u8>> {
    let inputs = coerce(plan, variables)?;
    // Read everything first, concurrently, as async-graphql resolves root fields.
    let mut reads = Vec::new();
    let mut singles = Vec::new();
    for root in &plan.roots {
        if !included(&root.conditions, &inputs)? {
            continue;
        }
        match &root.what {
            Root::List(list) => reads.push(read(list, &inputs, services, caller, state)),
            Root::Single(one) => singles.push(read_single(one, &inputs, services, caller, state)),
            Root::Typename => {}
        }
    }
    let (pages, singles) = futures_util::future::join(
        futures_util::future::join_all(reads),
        futures_util::future::join_all(singles),
    )
    .await;
    let mut pages = pages.into_iter();
    let mut singles = singles.into_iter();
    let mut out = Vec::with_capacity(16 * 1024);
    out.extend_from_slice(b"{\"data\":{");
    let mut comma = Comma::default();
    for root in &plan.roots {
        if !included(&root.conditions, &inputs)? {
            continue;
        }
        comma.key(&mut out, &root.key);
        match &root.what {
            Root::Typename => string(&mut out, "Query"),
            Root::List(list) => {
                let (edges, more) = pages.next()??;
                connection(&mut out, list, &edges, more, &inputs).ok()?;
            }
            Root::Single(one) => match singles.next()?? {
                Some(record) => {
                    node(&mut out, &one.type_name, &record, &one.items, &inputs).ok()?
                }
                None => out.extend_from_slice(b"null"),
            },
        }
    }
    out.extend_from_slice(b"}}");
    Some(out)
}

/// The listing a root field reads, through the request's shared listings.
async fn read(
    list: &ListRoot,
    inputs: &Inputs,
    services: &SharedServices,
    caller: &Caller,
    state: &Arc<RequestState>,
) -> Option<(Vec<EdgeNode>, bool)> {
    let account_id = match value(&list.account, inputs)? {
        Input::String(s) => s,
        Input::Int(n) => n.to_string(),
        _ => return None,
    };
    let first = match value(&list.first, inputs)? {
        Input::Null => DEFAULT_FIRST,
        Input::Int(n) => usize::try_from(n).ok()?,
        _ => return None,
    };
    let after = match value(&list.after, inputs)? {
        Input::Null => None,
        Input::String(s) => Some(s),
        _ => return None,
    };
    let account = handle_for(services, caller, &account_id, state.spend.clone())
        .await
        .ok()?;
    let filter = serde_json::Map::new();
    let args = ListingArgs {
        first,
        after: after.as_deref(),
        filter: &filter,
    };
    read_listing(services, state, &account, &list.resource, &args)
        .await
        .ok()
}

/// The record a single read asks for (`None` inside: the vendor has no such record).
async fn read_single(
    one: &SingleRoot,
    inputs: &Inputs,
    services: &SharedServices,
    caller: &Caller,
    state: &Arc<RequestState>,
) -> Option<Option<Arc<RecordNode>>> {
    let text = |arg: &Arg| match value(arg, inputs)? {
        Input::Null => Some(None),
        Input::String(s) => Some(Some(s)),
        Input::Int(n) => Some(Some(n.to_string())),
        Input::Bool(_) => None,
    };
    let (account_id, remote_id) = match (text(&one.id)?, text(&one.account)?, text(&one.remote_id)?)
    {
        (Some(id), None, None) => {
            let gid = decode_id(&id, &one.resource).ok()?;
            (gid.account, gid.remote_id)
        }
        (None, Some(account), Some(remote)) => (account, remote),
        _ => return None,
    };
    let account = handle_for(services, caller, &account_id, state.spend.clone())
        .await
        .ok()?;
    read_one(services, state, &account, &one.resource, &remote_id)
        .await
        .ok()
}

/// The variables as their declared types take them; `None` where async-graphql would
/// refuse one (it then says why).
fn coerce(plan: &Plan, variables: &Variables) -> Option<Inputs> {
    let mut inputs = HashMap::with_capacity(plan.variables.len());
    for def in &plan.variables {
        let given = variables.get(&def.name).or(def.default.as_ref());
        let input = match given {
            None | Some(ConstValue::Null) if def.nullable => Input::Null,
            None | Some(ConstValue::Null) => return None,
            Some(v) => match (def.kind, v) {
                (ScalarVar::Id | ScalarVar::String, ConstValue::String(s)) => {
                    Input::String(s.clone())
                }
                (ScalarVar::Id, ConstValue::Number(n)) => Input::Int(n.as_i64()?),
                (ScalarVar::Int, ConstValue::Number(n)) => {
                    let n = n.as_i64()?;
                    i32::try_from(n).ok()?;
                    Input::Int(n)
                }
                (ScalarVar::Boolean, ConstValue::Boolean(b)) => Input::Bool(*b),
                _ => return None,
            },
        };
        inputs.insert(def.name.clone(), input);
    }
    Some(inputs)
}

fn value(arg: &Arg, inputs: &Inputs) -> Option<Input> {
    Some(match arg {
        Arg::Absent => Input::Null,
        Arg::Variable(name) => inputs.get(name)?.clone(),
        Arg::String(s) => Input::String(s.clone()),
        Arg::Int(n) => Input::Int(*n),
        Arg::Bool(b) => Input::Bool(*b),
    })
}

/// Whether every `@include` holds and no `@skip` does.
fn included(conditions: &[Condition], inputs: &Inputs) -> Option<bool> {
    for c in conditions {
        let Input::Bool(b) = value(&c.value, inputs)? else {
            return None;
        };
        if b != c.include {
            return Some(false);
        }
    }
    Some(true)
}

fn connection(
    out: &mut Vec<u8>,
    list: &ListRoot,
    edges: &[EdgeNode],
    has_next_page: bool,
    inputs: &Inputs,
) -> Result<(), HandOver> {
    object(out, &list.items, inputs, |out, what| {
        match what {
            ConnectionItem::Typename => string(out, &format!("{}Connection", list.type_name)),
            ConnectionItem::Edges(items) => {
                out.push(b'[');
                for (i, edge) in edges.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    object(out, items, inputs, |out, what| {
                        match what {
                            EdgeItem::Typename => string(out, &format!("{}Edge", list.type_name)),
                            EdgeItem::Cursor => string(out, &edge.cursor),
                            EdgeItem::Node(items) => {
                                node(out, &list.type_name, &edge.node, items, inputs)?
                            }
                        }
                        Ok(())
                    })?;
                }
                out.push(b']');
            }
            ConnectionItem::PageInfo(items) => object(out, items, inputs, |out, what| {
                match what {
                    PageInfoItem::Typename => string(out, "PageInfo"),
                    PageInfoItem::HasNextPage => {
                        out.extend_from_slice(if has_next_page { b"true" } else { b"false" })
                    }
                    PageInfoItem::EndCursor => match edges.last() {
                        Some(e) => string(out, &e.cursor),
                        None => out.extend_from_slice(b"null"),
                    },
                }
                Ok(())
            })?,
        }
        Ok(())
    })
}

/// Writes an object of `items`: each included one as its key and what `write` writes.
fn object<T>(
    out: &mut Vec<u8>,
    items: &[Item<T>],
    inputs: &Inputs,
    mut write: impl FnMut(&mut Vec<u8>, &T) -> Result<(), HandOver>,
) -> Result<(), HandOver> {
    out.push(b'{');
    let mut comma = Comma::default();
    for item in items {
        if !included(&item.conditions, inputs).ok_or(HandOver)? {
            continue;
        }
        comma.key(out, &item.key);
        write(out, &item.what)?;
    }
    out.push(b'}');
    Ok(())
}

fn node(
    out: &mut Vec<u8>,
    type_name: &str,
    n: &RecordNode,
    items: &[Item<NodeItem>],
    inputs: &Inputs,
) -> Result<(), HandOver> {
    let record = &n.record;
    object(out, items, inputs, |out, what| {
        match what {
            NodeItem::Typename => string(out, type_name),
            NodeItem::Id => string(
                out,
                &GlobalId::encode(&n.account.id, &n.resource, &record.remote_id),
            ),
            NodeItem::RemoteId => string(out, &record.remote_id),
            NodeItem::RemoteData => json(out, &record.raw),
            NodeItem::Mapped {
                field,
                shape,
                object,
            } => {
                // The resolver reports these in `extensions.warnings`; async-graphql
                // writes that part of the response.
                if &**field == "customFields" && !record.warnings.is_empty() {
                    return Err(HandOver);
                }
                let mapped = record.mapped.as_ref().map_err(|_| HandOver)?;
                field_value(out, mapped.get(&**field), shape, object.as_deref(), inputs)?;
            }
        }
        Ok(())
    })
}

/// Writes a field's value as `to_field_value` converts it, `null` included; hands over
/// where the resolver's answer would be an error (a null for a non-null type).
fn field_value(
    out: &mut Vec<u8>,
    value: Option<&Value>,
    shape: &Shape,
    object: Option<&[Item<ObjectItem>]>,
    inputs: &Inputs,
) -> Result<(), HandOver> {
    if !converted(out, value, shape, object, inputs)? {
        if matches!(shape, Shape::NonNull(_)) {
            return Err(HandOver);
        }
        out.extend_from_slice(b"null");
    }
    Ok(())
}

/// Writes the value if it converts to a non-null one (and says so); writes nothing and
/// answers `false` where `to_field_value` answers `None`.
fn converted(
    out: &mut Vec<u8>,
    value: Option<&Value>,
    shape: &Shape,
    object: Option<&[Item<ObjectItem>]>,
    inputs: &Inputs,
) -> Result<bool, HandOver> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(false);
    };
    match shape {
        Shape::NonNull(inner) => converted(out, Some(value), inner, object, inputs),
        Shape::List(inner) => {
            let mark = out.len();
            out.push(b'[');
            match value {
                Value::Array(items) => {
                    for (i, v) in items.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        // An item that does not convert is null, which a non-null item
                        // type turns into an error.
                        field_value(out, Some(v), inner, object, inputs)?;
                    }
                }
                single => {
                    // One value where a list is declared is a one-item list, or no list at
                    // all when that value does not convert.
                    if !converted(out, Some(single), inner, object, inputs)? {
                        out.truncate(mark);
                        return Ok(false);
                    }
                }
            }
            out.push(b']');
            Ok(true)
        }
        Shape::Object => {
            let Value::Object(map) = value else {
                return Ok(false);
            };
            let items = object.ok_or(HandOver)?;
            self::object(out, items, inputs, |out, what| match what {
                ObjectItem::Typename(name) => {
                    string(out, name);
                    Ok(())
                }
                ObjectItem::Field {
                    field,
                    shape,
                    object,
                } => field_value(out, map.get(&**field), shape, object.as_deref(), inputs),
            })?;
            Ok(true)
        }
        Shape::Enum(values) => {
            let Some(text) = value.as_str() else {
                return Ok(false);
            };
            match values.iter().find(|v| v.eq_ignore_ascii_case(text)) {
                Some(v) => {
                    string(out, v);
                    Ok(true)
                }
                None => Ok(false),
            }
        }
        Shape::Scalar(kind) => {
            debug_assert!(matches!(base_shape(shape), Shape::Scalar(_)));
            match kind {
                // Passed through as they are: the same bytes `GqlValue::from_json` would
                // serialize, without the copy.
                crate::graphql::values::ScalarKind::Json
                | crate::graphql::values::ScalarKind::Custom => {
                    json(out, value);
                    Ok(true)
                }
                _ => match scalar(value, *kind) {
                    Some(v) => {
                        serde_json::to_writer(&mut *out, &v).map_err(|_| HandOver)?;
                        Ok(true)
                    }
                    None => Ok(false),
                },
            }
        }
    }
}

fn string(out: &mut Vec<u8>, s: &str) {
    // Writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn json(out: &mut Vec<u8>, v: &Value) {
    let _ = serde_json::to_writer(&mut *out, v);
}

/// The separator before every key of an object but the first.
#[derive(Default)]
struct Comma(bool);

impl Comma {
    fn key(&mut self, out: &mut Vec<u8>, key: &Name) {
        if std::mem::replace(&mut self.0, true) {
            out.push(b',');
        }
        // GraphQL names are `[_A-Za-z][_0-9A-Za-z]*`: nothing to escape.
        out.push(b'"');
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"\":");
    }
}
