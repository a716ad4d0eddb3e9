//! A document -> its plan, or `None` for whatever the planned path does not cover (the
//! request then goes through async-graphql, which covers everything).
//!
//! Covered: a query whose root fields are resource listings (`contacts(accountId:, first:,
//! after:)`), single reads (`contact(id:)`, `contact(accountId:, remoteId:)`) and
//! `__typename`, selecting edges, cursors, nodes, page info, the record's own
//! fields and the value objects inside them (`emails { address }`), through aliases,
//! fragments and `@skip`/`@include`, with arguments as literals or variables of scalar
//! types. Not covered yet, so planned as `None`: related records (`company`), filters,
//! `node`, introspection, mutations and subscriptions, a response key selected
//! twice at one level (GraphQL merges those; the planner does not try), any other directive.
//!
//! The document was validated by async-graphql before it is planned (see
//! [`super::Planner`]), so names and types are known to exist; what is checked here is only
//! whether the plan can express them.

use std::sync::Arc;

use async_graphql::Name;
use async_graphql::parser::types::{
    BaseType, Directive, DocumentOperations, ExecutableDocument, OperationDefinition,
    OperationType, Selection, SelectionSet,
};
use async_graphql::{Positioned, Value as ConstValue};

use super::{
    Arg, Condition, ConnectionItem, EdgeItem, Item, ListRoot, NodeItem, ObjectItem, PageInfoItem,
    Plan, Root, ScalarVar, SingleRoot, VariableDef,
};
use crate::graphql::values::{ScalarKind, Shape};
use crate::schema::{FieldDef, ResourceDef, UnifiedModel};

/// The plan of `operation_name` in `doc`, if the planned path covers it.
pub fn plan(
    model: &UnifiedModel,
    doc: Arc<ExecutableDocument>,
    operation_name: Option<&str>,
) -> Option<Plan> {
    let op = operation(&doc, operation_name)?;
    if op.ty != OperationType::Query || !op.directives.is_empty() {
        return None;
    }
    let mut variables = Vec::new();
    for v in &op.variable_definitions {
        let v = &v.node;
        if !v.directives.is_empty() {
            return None;
        }
        let BaseType::Named(name) = &v.var_type.node.base else {
            return None;
        };
        let kind = match name.as_str() {
            "ID" => ScalarVar::Id,
            "String" => ScalarVar::String,
            "Int" => ScalarVar::Int,
            "Boolean" => ScalarVar::Boolean,
            _ => return None,
        };
        variables.push(VariableDef {
            name: v.name.node.clone(),
            kind,
            nullable: v.var_type.node.nullable,
            default: v.default_value.as_ref().map(|d| d.node.clone()),
        });
    }
    let builder = Builder { model, doc: &doc };
    let mut roots = Vec::new();
    for (key, field, conditions) in builder.flatten(&op.selection_set.node, &["Query"])? {
        let root = match field.name.node.as_str() {
            "__typename" => Root::Typename,
            name => match model.resources.iter().find(|r| r.resource == name) {
                Some(def) => Root::List(builder.list_root(def, field)?),
                None => {
                    let def = model.resources.iter().find(|r| r.single_field == name)?;
                    Root::Single(builder.single_root(def, field)?)
                }
            },
        };
        roots.push(Item {
            key,
            conditions,
            what: root,
        });
    }
    Some(Plan {
        doc: doc.clone(),
        variables,
        roots,
    })
}

fn operation<'a>(
    doc: &'a ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<&'a OperationDefinition> {
    match (&doc.operations, operation_name) {
        (DocumentOperations::Single(op), None) => Some(&op.node),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| &op.node),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| &op.node)
        }
        _ => None,
    }
}

type Flat<'d> = Vec<(
    Name,
    &'d async_graphql::parser::types::Field,
    Vec<Condition>,
)>;

struct Builder<'a> {
    model: &'a UnifiedModel,
    doc: &'a ExecutableDocument,
}

impl<'a> Builder<'a> {
    /// The fields of a selection set on a type known by `names` (its name, then the
    /// interfaces it implements), fragments spread in place, with the `@skip`/`@include`
    /// conditions of every level they sit under. `None` if a response key repeats or a
    /// fragment is on another type.
    fn flatten(&self, set: &'a SelectionSet, names: &[&str]) -> Option<Flat<'a>> {
        let mut out: Flat<'a> = Vec::new();
        self.flatten_into(set, names, &[], &mut out, 0)?;
        let mut keys: Vec<&Name> = out.iter().map(|(k, _, _)| k).collect();
        keys.sort();
        if keys.windows(2).any(|w| w[0] == w[1]) {
            return None;
        }
        Some(out)
    }

    fn flatten_into(
        &self,
        set: &'a SelectionSet,
        names: &[&str],
        outer: &[Condition],
        out: &mut Flat<'a>,
        depth: usize,
    ) -> Option<()> {
        // Validation refuses fragment cycles; the bound is for safety, not for users.
        if depth > 32 {
            return None;
        }
        for selection in &set.items {
            match &selection.node {
                Selection::Field(f) => {
                    let f = &f.node;
                    let mut conditions = outer.to_vec();
                    conditions.extend(conditions_of(&f.directives)?);
                    let key = f.alias.as_ref().unwrap_or(&f.name).node.clone();
                    out.push((key, f, conditions));
                }
                Selection::FragmentSpread(spread) => {
                    let spread = &spread.node;
                    let fragment = self.doc.fragments.get(&spread.fragment_name.node)?;
                    let fragment = &fragment.node;
                    if !fragment.directives.is_empty()
                        || !names.contains(&fragment.type_condition.node.on.node.as_str())
                    {
                        return None;
                    }
                    let mut conditions = outer.to_vec();
                    conditions.extend(conditions_of(&spread.directives)?);
                    self.flatten_into(
                        &fragment.selection_set.node,
                        names,
                        &conditions,
                        out,
                        depth + 1,
                    )?;
                }
                Selection::InlineFragment(inline) => {
                    let inline = &inline.node;
                    if let Some(on) = &inline.type_condition
                        && !names.contains(&on.node.on.node.as_str())
                    {
                        return None;
                    }
                    let mut conditions = outer.to_vec();
                    conditions.extend(conditions_of(&inline.directives)?);
                    self.flatten_into(
                        &inline.selection_set.node,
                        names,
                        &conditions,
                        out,
                        depth + 1,
                    )?;
                }
            }
        }
        Some(())
    }

    /// The plan of each field of a selection set (`plan` answers `None` for what is not
    /// covered), fragments spread in place.
    fn items<T>(
        &self,
        set: &'a SelectionSet,
        names: &[&str],
        mut plan: impl FnMut(&'a async_graphql::parser::types::Field) -> Option<T>,
    ) -> Option<Vec<Item<T>>> {
        self.flatten(set, names)?
            .into_iter()
            .map(|(key, f, conditions)| {
                Some(Item {
                    key,
                    conditions,
                    what: plan(f)?,
                })
            })
            .collect()
    }

    fn list_root(
        &self,
        def: &ResourceDef,
        field: &'a async_graphql::parser::types::Field,
    ) -> Option<ListRoot> {
        let mut account = None;
        let mut first = Arg::Absent;
        let mut after = Arg::Absent;
        for (name, value) in &field.arguments {
            let arg = arg_of(literal_or_variable!(value.node))?;
            match name.node.as_str() {
                "accountId" => account = Some(arg),
                "first" => first = arg,
                "after" => after = arg,
                // `filter`: a search endpoint and its translation; not planned yet.
                _ => return None,
            }
        }
        let type_name = def.type_name.as_str();
        let connection = format!("{type_name}Connection");
        let items = self.items(&field.selection_set.node, &[&connection], |f| {
            Some(match f.name.node.as_str() {
                "__typename" => ConnectionItem::Typename,
                "edges" => ConnectionItem::Edges(self.edge(def, f)?),
                "pageInfo" => ConnectionItem::PageInfo(self.page_info(f)?),
                _ => return None,
            })
        })?;
        Some(ListRoot {
            resource: def.resource.as_str().into(),
            type_name: type_name.into(),
            account: account?,
            first,
            after,
            items,
        })
    }

    fn single_root(
        &self,
        def: &ResourceDef,
        field: &'a async_graphql::parser::types::Field,
    ) -> Option<SingleRoot> {
        let (mut id, mut account, mut remote_id) = (Arg::Absent, Arg::Absent, Arg::Absent);
        for (name, value) in &field.arguments {
            let arg = arg_of(literal_or_variable!(value.node))?;
            match name.node.as_str() {
                "id" => id = arg,
                "accountId" => account = arg,
                "remoteId" => remote_id = arg,
                _ => return None,
            }
        }
        Some(SingleRoot {
            resource: def.resource.as_str().into(),
            type_name: def.type_name.as_str().into(),
            id,
            account,
            remote_id,
            items: self.node(def, field)?,
        })
    }

    fn edge(
        &self,
        def: &ResourceDef,
        field: &'a async_graphql::parser::types::Field,
    ) -> Option<Vec<Item<EdgeItem>>> {
        let edge = format!("{}Edge", def.type_name);
        self.items(&field.selection_set.node, &[&edge], |f| {
            no_arguments(f)?;
            Some(match f.name.node.as_str() {
                "__typename" => EdgeItem::Typename,
                "cursor" => EdgeItem::Cursor,
                "node" => EdgeItem::Node(self.node(def, f)?),
                _ => return None,
            })
        })
    }

    fn page_info(
        &self,
        field: &'a async_graphql::parser::types::Field,
    ) -> Option<Vec<Item<PageInfoItem>>> {
        self.items(&field.selection_set.node, &["PageInfo"], |f| {
            no_arguments(f)?;
            Some(match f.name.node.as_str() {
                "__typename" => PageInfoItem::Typename,
                "hasNextPage" => PageInfoItem::HasNextPage,
                "endCursor" => PageInfoItem::EndCursor,
                _ => return None,
            })
        })
    }

    fn node(
        &self,
        def: &ResourceDef,
        field: &'a async_graphql::parser::types::Field,
    ) -> Option<Vec<Item<NodeItem>>> {
        let names = [def.type_name.as_str(), "Node"];
        self.items(&field.selection_set.node, &names, |f| {
            no_arguments(f)?;
            let name = f.name.node.as_str();
            Some(match name {
                "__typename" => NodeItem::Typename,
                "id" => NodeItem::Id,
                "remoteId" => NodeItem::RemoteId,
                "remoteData" => NodeItem::RemoteData,
                "customFields" => NodeItem::Mapped {
                    field: name.into(),
                    shape: Shape::Scalar(ScalarKind::Json),
                    object: None,
                },
                "remoteCreatedAt" | "remoteUpdatedAt" => NodeItem::Mapped {
                    field: name.into(),
                    shape: Shape::Scalar(ScalarKind::DateTime),
                    object: None,
                },
                _ => {
                    let (shape, object) = self.mapped(def.fields.iter(), f)?;
                    NodeItem::Mapped {
                        field: name.into(),
                        shape,
                        object,
                    }
                }
            })
        })
    }

    /// A field read from mapped JSON: its shape, and for a value object the plan of its
    /// selection. Related records are not planned yet.
    fn mapped(
        &self,
        mut fields: impl Iterator<Item = &'a FieldDef>,
        f: &'a async_graphql::parser::types::Field,
    ) -> Option<(Shape, Option<Vec<Item<ObjectItem>>>)> {
        let def = fields.find(|d| d.name == f.name.node.as_str())?;
        if def.link.is_some() {
            return None;
        }
        let shape = Shape::of(&def.ty, self.model);
        let object = match base_shape(&shape) {
            Shape::Object => Some(self.object(def.ty.base(), f)?),
            _ => None,
        };
        Some((shape, object))
    }

    fn object(
        &self,
        type_name: &str,
        field: &'a async_graphql::parser::types::Field,
    ) -> Option<Vec<Item<ObjectItem>>> {
        let def = self.model.objects.iter().find(|o| o.name == type_name)?;
        self.items(&field.selection_set.node, &[type_name], |f| {
            no_arguments(f)?;
            Some(match f.name.node.as_str() {
                "__typename" => ObjectItem::Typename(def.name.as_str().into()),
                name => {
                    let (shape, object) = self.mapped(def.fields.iter(), f)?;
                    ObjectItem::Field {
                        field: name.into(),
                        shape,
                        object,
                    }
                }
            })
        })
    }
}

/// The shape under its list and non-null wrappers.
pub(super) fn base_shape(shape: &Shape) -> &Shape {
    match shape {
        Shape::List(inner) | Shape::NonNull(inner) => base_shape(inner),
        other => other,
    }
}

fn no_arguments(f: &async_graphql::parser::types::Field) -> Option<()> {
    f.arguments.is_empty().then_some(())
}

/// An argument as the document wrote it: a constant, or the name of the variable it is
/// (a scalar argument holds one value, so a variable anywhere in it is all of it).
macro_rules! literal_or_variable {
    ($value:expr) => {
        $value
            .clone()
            .into_const_with(|name| Err::<ConstValue, Name>(name))
    };
}
use literal_or_variable;

fn arg_of(value: Result<ConstValue, Name>) -> Option<Arg> {
    Some(match value {
        Err(name) => Arg::Variable(name),
        Ok(ConstValue::Null) => Arg::Absent,
        Ok(ConstValue::String(s)) => Arg::String(s),
        Ok(ConstValue::Number(n)) => Arg::Int(n.as_i64()?),
        Ok(ConstValue::Boolean(b)) => Arg::Bool(b),
        Ok(_) => return None,
    })
}

/// `@skip(if:)` and `@include(if:)`; any other directive is not planned.
fn conditions_of(directives: &[Positioned<Directive>]) -> Option<Vec<Condition>> {
    let mut out = Vec::new();
    for d in directives {
        let d = &d.node;
        let include = match d.name.node.as_str() {
            "include" => true,
            "skip" => false,
            _ => return None,
        };
        let (_, value) = d.arguments.iter().find(|(n, _)| n.node == "if")?;
        let value = match arg_of(literal_or_variable!(value.node))? {
            b @ (Arg::Bool(_) | Arg::Variable(_)) => b,
            _ => return None,
        };
        out.push(Condition { include, value });
    }
    Some(out)
}
