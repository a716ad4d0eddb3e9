//! What a query will cost the customer's vendor quota, estimated before anything runs.
//!
//! Complexity as async-graphql counts it (one per field) says nothing about upstream calls:
//! `contacts(first: 1000)` is one field and ten vendor pages, and a hundred aliases of it
//! are a thousand calls of a quota the customer shares with every other integration. So
//! each query is priced in upstream calls, from the document and its variables:
//!
//! - a list root field costs the pages its `first` needs ([`ASSUMED_PAGE`] records a page,
//!   the smallest page size the built-in providers use for a list);
//! - a single read, `node`, and each write cost one call;
//! - a related record (`company`, `owner`, `contacts` on a deal) costs one batch per
//!   [`ASSUMED_BATCH`] parent records at its level; a list link is assumed to bring
//!   [`LIST_LINK_FANOUT`] records per parent for the levels below it;
//! - aliases of a root field with the same arguments are one read (the resolvers share
//!   it), so only the first is priced as a read; every alias's related records are priced
//!   (their selections may differ). Aliases with other arguments are reads of their own.
//!
//! A query over [`CostLimit`] is refused before any upstream call with `BAD_USER_INPUT` and
//! `extensions.cost { estimated limit }`. The estimate is an upper bound for what the
//! engine may do, not a forecast of what it will.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest,
};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Request, ServerError, ServerResult, Value, Variables};

use crate::schema::{FieldDef, TypeRef, UnifiedModel};

pub const ASSUMED_PAGE: u64 = 100;
pub const ASSUMED_BATCH: u64 = 100;
pub const LIST_LINK_FANOUT: u64 = 3;
/// `TESSERA_MAX_QUERY_COST`'s default: enough for a thousand records with three relations.
pub const DEFAULT_LIMIT: u64 = 100;
/// A `first` larger than the engine allows is priced as the engine's maximum.
const MAX_FIRST: u64 = crate::engine::MAX_FIRST as u64;
const DEFAULT_FIRST: u64 = super::resources::DEFAULT_FIRST as u64;

/// The most a query may cost, in estimated upstream calls.
#[derive(Debug, Clone, Copy)]
pub struct CostLimit(pub u64);

impl CostLimit {
    /// `TESSERA_MAX_QUERY_COST`, or [`DEFAULT_LIMIT`]; a value that is not a positive
    /// whole number is refused by name.
    pub fn from_env() -> Result<CostLimit, String> {
        match std::env::var("TESSERA_MAX_QUERY_COST") {
            Err(_) => Ok(CostLimit(DEFAULT_LIMIT)),
            Ok(text) => match text.trim().parse::<u64>() {
                Ok(n) if n > 0 => Ok(CostLimit(n)),
                _ => Err(format!(
                    "`{text}` is not a positive whole number of upstream calls"
                )),
            },
        }
    }
}

/// What a root field of the schema costs as, by name.
enum Root {
    /// `contacts(first:)`: records of this type, by pages.
    List(String),
    /// `contact(id:)`, or a write: one call for one record of this type.
    One(String),
    /// `node(id:)`: one call.
    Node,
}

/// What pricing looks up, built once from the model when the schema is built, so a request
/// only walks its own document.
pub struct PriceList {
    roots: HashMap<String, Root>,
    /// The fields of every resource type and value object, by type name.
    types: HashMap<String, Vec<FieldDef>>,
}

impl PriceList {
    pub fn new(model: &UnifiedModel) -> PriceList {
        let mut roots = HashMap::new();
        let mut types = HashMap::new();
        for r in &model.resources {
            let ty = &r.type_name;
            roots.insert(r.resource.clone(), Root::List(ty.clone()));
            roots.insert(r.single_field.clone(), Root::One(ty.clone()));
            for write in ["create", "update", "delete"] {
                roots.insert(format!("{write}{ty}"), Root::One(ty.clone()));
            }
            types.insert(ty.clone(), r.fields.clone());
        }
        roots.insert("node".to_string(), Root::Node);
        for o in &model.objects {
            types.insert(o.name.clone(), o.fields.clone());
        }
        PriceList { roots, types }
    }
}

/// Prices one document.
struct Pricer<'a> {
    prices: &'a PriceList,
    doc: &'a ExecutableDocument,
    variables: &'a Variables,
}

/// What the selection being walked is.
#[derive(Clone, Copy)]
enum Scope<'a> {
    /// Records of this type (a resource's `type_name` or a value object's name), `n` of them.
    Records(&'a str, u64),
    /// A connection (`edges`, `nodes`, `pageInfo`) of `n` records of a type.
    Connection(&'a str, u64),
    /// Anything else: the gateway's own objects, which cost no upstream call.
    Free,
}

impl<'a> Pricer<'a> {
    fn first(&self, field: &async_graphql::parser::types::Field) -> u64 {
        field
            .arguments
            .iter()
            .find(|(name, _)| name.node == "first")
            .and_then(|(_, v)| {
                v.node
                    .clone()
                    .into_const_with(|name| self.variables.get(&name).cloned().ok_or(()))
                    .ok()
            })
            .and_then(|v| match v {
                Value::Number(n) => n.as_u64(),
                _ => None,
            })
            .unwrap_or(DEFAULT_FIRST)
            .min(MAX_FIRST)
    }

    /// Every field of a selection set, fragments expanded (each fragment once per path).
    fn fields(
        &self,
        set: &'a SelectionSet,
        seen: &mut HashSet<&'a str>,
    ) -> Vec<&'a async_graphql::parser::types::Field> {
        let mut out = Vec::new();
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => out.push(&f.node),
                Selection::InlineFragment(fr) => {
                    out.extend(self.fields(&fr.node.selection_set.node, seen))
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    if !seen.insert(name) {
                        continue;
                    }
                    if let Some(def) = self.doc.fragments.get(&spread.node.fragment_name.node) {
                        out.extend(self.fields(&def.node.selection_set.node, seen));
                    }
                    seen.remove(name);
                }
            }
        }
        out
    }

    /// A root field's name and arguments (variables resolved), in a stable order: two
    /// aliases with the same key are one read.
    fn read_key(&self, field: &async_graphql::parser::types::Field) -> String {
        let mut args: Vec<(String, String)> = field
            .arguments
            .iter()
            .map(|(name, v)| {
                let value = v
                    .node
                    .clone()
                    .into_const_with(|name| self.variables.get(&name).cloned().ok_or(()))
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                (name.node.to_string(), value)
            })
            .collect();
        args.sort();
        format!("{}{args:?}", field.name.node)
    }

    fn root(&self, set: &'a SelectionSet) -> u64 {
        let mut total = 0u64;
        let mut reads: HashSet<String> = HashSet::new();
        for field in self.fields(set, &mut HashSet::new()) {
            let name = field.name.node.as_str();
            let children = &field.selection_set.node;
            let mut first_read = || reads.insert(self.read_key(field));
            let cost = match self.prices.roots.get(name) {
                Some(Root::List(ty)) => {
                    let n = self.first(field);
                    let read = if first_read() {
                        n.div_ceil(ASSUMED_PAGE).max(1)
                    } else {
                        0
                    };
                    read + self.walk(children, Scope::Connection(ty, n))
                }
                Some(Root::One(ty)) => {
                    u64::from(first_read()) + self.walk(children, Scope::Records(ty, 1))
                }
                Some(Root::Node) => 1,
                None => self.walk(children, Scope::Free),
            };
            total = total.saturating_add(cost);
        }
        total
    }

    /// The fields of a type (a resource or a value object).
    fn type_fields(&self, type_name: &str) -> Option<&'a [FieldDef]> {
        self.prices.types.get(type_name).map(Vec::as_slice)
    }

    fn walk(&self, set: &'a SelectionSet, scope: Scope<'a>) -> u64 {
        let mut total = 0u64;
        for field in self.fields(set, &mut HashSet::new()) {
            let children = &field.selection_set.node;
            let name = field.name.node.as_str();
            let cost = match scope {
                Scope::Free => 0,
                Scope::Connection(ty, n) => match name {
                    "edges" => self.walk(children, Scope::Connection(ty, n)),
                    "node" | "nodes" => self.walk(children, Scope::Records(ty, n)),
                    _ => 0,
                },
                Scope::Records(ty, n) => {
                    let Some(def) = self
                        .type_fields(ty)
                        .and_then(|fields| fields.iter().find(|f| f.name == name))
                    else {
                        continue;
                    };
                    let many = matches!(strip_non_null(&def.ty), TypeRef::List(_));
                    let target = def.ty.base();
                    match &def.link {
                        Some(_) => {
                            let below = if many {
                                n.saturating_mul(LIST_LINK_FANOUT)
                            } else {
                                n
                            };
                            n.div_ceil(ASSUMED_BATCH).max(1)
                                + self.walk(children, Scope::Records(target, below))
                        }
                        None if self.type_fields(target).is_some() => {
                            self.walk(children, Scope::Records(target, n))
                        }
                        None => 0,
                    }
                }
            };
            total = total.saturating_add(cost);
        }
        total
    }
}

fn strip_non_null(t: &TypeRef) -> &TypeRef {
    match t {
        TypeRef::NonNull(inner) => strip_non_null(inner),
        other => other,
    }
}

/// The estimated upstream calls of the costliest operation of `doc` (the one that runs is
/// at most that).
pub fn estimate(prices: &PriceList, doc: &ExecutableDocument, variables: &Variables) -> u64 {
    let pricer = Pricer {
        prices,
        doc,
        variables,
    };
    doc.operations
        .iter()
        .map(|(_, op)| pricer.root(&op.node.selection_set.node))
        .max()
        .unwrap_or(0)
}

/// The most fields one operation may expand to, each fragment counted wherever it is
/// spread: validation's complexity cap, which counts the same way, after a full walk.
/// Checked before anything walks the document, because every walk (async-graphql's
/// recursion-depth check, this pricing, validation) expands fragments per spread: seven
/// fragments each spreading the next ten times are 600 bytes and a million fields, seconds
/// of CPU per walk.
pub const MAX_EXPANDED_FIELDS: usize = super::MAX_COMPLEXITY;

/// Whether an operation of `doc` expands to more than `max` fields; counting stops there,
/// so this costs at most `max` steps an operation.
pub fn expands_beyond(doc: &ExecutableDocument, max: usize) -> bool {
    fn over<'a>(
        doc: &'a ExecutableDocument,
        set: &'a SelectionSet,
        path: &mut Vec<&'a str>,
        left: &mut usize,
    ) -> bool {
        set.items.iter().any(|item| match &item.node {
            Selection::Field(f) => match left.checked_sub(1) {
                None => true,
                Some(l) => {
                    *left = l;
                    over(doc, &f.node.selection_set.node, path, left)
                }
            },
            Selection::InlineFragment(fr) => over(doc, &fr.node.selection_set.node, path, left),
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                // A cycle is the recursion-depth check's to refuse.
                match doc.fragments.get(&spread.node.fragment_name.node) {
                    Some(def) if !path.contains(&name) => {
                        path.push(name);
                        let beyond = over(doc, &def.node.selection_set.node, path, left);
                        path.pop();
                        beyond
                    }
                    _ => false,
                }
            }
        })
    }
    doc.operations.iter().any(|(_, op)| {
        over(doc, &op.node.selection_set.node, &mut Vec::new(), &mut {
            max
        })
    })
}

/// The async-graphql extension that refuses a query over the limit once it is parsed,
/// before validation and execution, whatever transport it came by.
pub struct QueryCost {
    prices: Arc<PriceList>,
    limit: CostLimit,
}

impl QueryCost {
    pub fn new(model: &UnifiedModel, limit: CostLimit) -> QueryCost {
        QueryCost {
            prices: Arc::new(PriceList::new(model)),
            limit,
        }
    }
}

impl ExtensionFactory for QueryCost {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(QueryCostCheck {
            prices: self.prices.clone(),
            limit: self.limit,
        })
    }
}

struct QueryCostCheck {
    prices: Arc<PriceList>,
    limit: CostLimit,
}

#[async_trait::async_trait]
impl Extension for QueryCostCheck {
    /// Parses the document (async-graphql keeps it for the request) and refuses one that
    /// expands beyond [`MAX_EXPANDED_FIELDS`] before anything walks it.
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        // A syntax error is reported by the parse that follows.
        if let Ok(doc) = request.parsed_query()
            && expands_beyond(doc, MAX_EXPANDED_FIELDS)
        {
            let mut error = ServerError::new(
                format!(
                    "this query expands to more than {MAX_EXPANDED_FIELDS} fields (each fragment counted where it is spread): ask for fewer fields or spread fewer fragments"
                ),
                None,
            );
            let mut ext = async_graphql::ErrorExtensionValues::default();
            ext.set("code", crate::error::ErrorCode::BadUserInput.as_str());
            error.extensions = Some(ext);
            return Err(error);
        }
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        let estimated = estimate(&self.prices, &doc, variables);
        if estimated > self.limit.0 {
            let mut error = ServerError::new(
                format!(
                    "this query would cost about {estimated} upstream calls, over the limit of {}: ask for fewer records (`first`), fewer aliases or fewer relations, and page with `after`",
                    self.limit.0
                ),
                None,
            );
            let mut ext = async_graphql::ErrorExtensionValues::default();
            ext.set("code", crate::error::ErrorCode::BadUserInput.as_str());
            let mut cost = async_graphql::indexmap::IndexMap::new();
            cost.insert(
                async_graphql::Name::new("estimated"),
                Value::from(estimated),
            );
            cost.insert(async_graphql::Name::new("limit"), Value::from(self.limit.0));
            ext.set("cost", Value::Object(cost));
            error.extensions = Some(ext);
            return Err(error);
        }
        Ok(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> UnifiedModel {
        crate::schema::load_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema"))
            .unwrap_or_default()
    }

    fn price(query: &str, variables: serde_json::Value) -> u64 {
        let doc = async_graphql::parser::parse_query(query).unwrap_or_else(|e| panic!("{e}"));
        let vars = Variables::from_json(variables);
        estimate(&PriceList::new(&model()), &doc, &vars)
    }

    #[test]
    fn lists_are_priced_by_their_pages_and_links_by_their_batches() {
        assert_eq!(
            price(
                "{ contacts(accountId: \"a\") { edges { node { id } } } }",
                serde_json::json!({})
            ),
            1
        );
        assert_eq!(
            price(
                "{ contacts(accountId: \"a\", first: 1000) { pageInfo { hasNextPage } } }",
                serde_json::json!({})
            ),
            10
        );
        assert_eq!(
            price(
                "query($n: Int) { contacts(accountId: \"a\", first: $n) { edges { node { company { name } } } } }",
                serde_json::json!({"n": 250})
            ),
            3 + 3
        );
        assert_eq!(
            price(
                "{ contact(accountId: \"a\", id: \"x\") { id company { id } } }",
                serde_json::json!({})
            ),
            2
        );
        assert_eq!(price("{ linkedAccounts { id } }", serde_json::json!({})), 0);
    }

    #[test]
    fn aliases_with_other_arguments_are_priced_and_the_same_arguments_read_once() {
        let distinct: String = (0..100)
            .map(|i| format!("a{i}: contacts(accountId: \"acc{i}\", first: 1000) {{ pageInfo {{ hasNextPage }} }}\n"))
            .collect();
        assert_eq!(
            price(&format!("{{ {distinct} }}"), serde_json::json!({})),
            1000
        );
        let same: String = (0..100)
            .map(|i| format!("a{i}: contacts(accountId: \"acc\", first: 1000) {{ pageInfo {{ hasNextPage }} }}\n"))
            .collect();
        assert_eq!(
            price(&format!("{{ {same} }}"), serde_json::json!({})),
            10,
            "one read of 10 pages, shared by the 100 aliases"
        );
        // The same arguments through a variable are the same read; their related records
        // are priced for each alias (the selections may differ).
        let q = "query($a: ID!) { x: contacts(accountId: $a, first: 100) { edges { node { company { id } } } } y: contacts(accountId: \"acc\", first: 100) { edges { node { company { id } } } } }";
        assert_eq!(price(q, serde_json::json!({"a": "acc"})), 1 + 1 + 1);
    }

    /// `levels` fragments, each spreading the next `fan` times: `fan^(levels-1)` fields.
    fn fragment_bomb(levels: usize, fan: usize) -> String {
        let mut q =
            String::from("query { contacts(accountId: \"a\") { edges { node { ...F0 } } } }");
        for i in 0..levels {
            let body = if i + 1 < levels {
                vec![format!("...F{}", i + 1); fan].join(" ")
            } else {
                "id".to_string()
            };
            q.push_str(&format!(" fragment F{i} on Contact {{ {body} }}"));
        }
        q
    }

    #[test]
    fn expansion_is_counted_per_spread_and_stops_at_the_cap() {
        let doc = |q: &str| async_graphql::parser::parse_query(q).unwrap_or_else(|e| panic!("{e}"));
        // 3 fields above the fragments, then 10^4 leaves.
        let q = fragment_bomb(5, 10);
        assert!(!expands_beyond(&doc(&q), 10_003));
        assert!(expands_beyond(&doc(&q), 10_002));
        // Ten billion fields: refused after counting the cap, not after walking them.
        assert!(expands_beyond(
            &doc(&fragment_bomb(11, 10)),
            MAX_EXPANDED_FIELDS
        ));
        let cyclic = "query { contacts(accountId: \"a\") { edges { node { ...A } } } } fragment A on Contact { ...B } fragment B on Contact { ...A company { id } }";
        assert!(!expands_beyond(&doc(cyclic), 10));
    }

    #[tokio::test]
    async fn a_fragment_bomb_is_refused_before_any_walk() {
        let schema = super::super::build_schema(&model(), None).unwrap_or_else(|e| panic!("{e}"));
        let response = schema.execute(fragment_bomb(11, 10)).await;
        let error = &response.errors[0];
        assert!(
            error.message.contains("expands to more than"),
            "{}",
            error.message
        );
        let code = error
            .extensions
            .as_ref()
            .and_then(|e| e.get("code"))
            .cloned();
        assert_eq!(code, Some(Value::from("BAD_USER_INPUT")));
        // What validation accepts is not refused here.
        let fine = schema.execute(fragment_bomb(3, 10)).await;
        assert!(
            fine.errors
                .iter()
                .all(|e| !e.message.contains("expands to")),
            "{:?}",
            fine.errors
        );
    }

    #[test]
    fn fragments_count_and_cycles_do_not_loop() {
        let q = "query { contacts(accountId: \"a\", first: 100) { edges { node { ...C } } } } fragment C on Contact { company { name } owner { name } }";
        assert_eq!(price(q, serde_json::json!({})), 1 + 1 + 1);
        let cyclic = "query { contacts(accountId: \"a\") { edges { node { ...A } } } } fragment A on Contact { ...B } fragment B on Contact { ...A company { id } }";
        assert_eq!(price(cyclic, serde_json::json!({})), 2);
    }
}
