//! The unified resource types (Contact, Company, ...), their Relay connections and root
//! fields, with one generic resolver per operation kind. Nothing here names a resource.

use std::sync::Arc;

use async_graphql::dynamic::{
    Field, FieldFuture, FieldValue, InputObject, InputValue, Object, ResolverContext, TypeRef,
};
use async_graphql::{Error, Value as GqlValue};

use super::context::{caller, services};
use super::errors::{coded, from_code, from_code_at, from_engine};
use super::values::{Shape, to_field_value};
use crate::access::{Keyed, handle_for, once, request_hash};
use crate::engine::{AccountHandle, EngineError, Record};
use crate::error::ErrorCode;
use crate::ids::GlobalId;
use crate::schema::{ResourceDef, UnifiedModel};
use crate::services::SharedServices;

/// Page size when the caller does not say.
pub const DEFAULT_FIRST: usize = 20;

/// The parent value of a resource object: a record with the account it came from.
pub struct RecordNode {
    pub account: Arc<AccountHandle>,
    pub resource: Arc<str>,
    pub record: Record,
}

#[derive(Clone)]
pub(super) struct EdgeNode {
    pub cursor: String,
    pub node: Arc<RecordNode>,
}

#[derive(Clone)]
struct ConnectionNode {
    edges: Vec<EdgeNode>,
    has_next_page: bool,
}

/// One listing of a request, shared by the aliases that ask for it with the same
/// arguments (they would read the same pages twice otherwise).
type SharedListing = Arc<tokio::sync::OnceCell<Result<(Vec<EdgeNode>, bool), Arc<EngineError>>>>;

/// One single read of a request, shared the same way.
type SharedRead = Arc<tokio::sync::OnceCell<Result<Option<Arc<RecordNode>>, Arc<EngineError>>>>;

/// The listings and single reads of one request, by their arguments.
#[derive(Default)]
pub struct Listings {
    listings: std::sync::Mutex<std::collections::HashMap<String, SharedListing>>,
    reads: std::sync::Mutex<std::collections::HashMap<String, SharedRead>>,
}

impl Listings {
    /// The listing for `key`, made empty if it is the first ask (`None` if the lock is
    /// poisoned: the caller then reads alone).
    fn shared(&self, key: String) -> Option<SharedListing> {
        let mut map = self.listings.lock().ok()?;
        Some(map.entry(key).or_default().clone())
    }

    /// As [`Self::shared`], for a single read.
    fn shared_read(&self, key: String) -> Option<SharedRead> {
        let mut map = self.reads.lock().ok()?;
        Some(map.entry(key).or_default().clone())
    }
}

impl std::fmt::Debug for Listings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.listings.lock().map(|m| m.len()).unwrap_or(0);
        let r = self.reads.lock().map(|m| m.len()).unwrap_or(0);
        write!(f, "Listings({n} listings, {r} reads)")
    }
}

/// The request's state (a fresh one if the HTTP layer did not attach any).
fn request_state(ctx: &ResolverContext<'_>) -> Arc<super::context::RequestState> {
    ctx.data::<Arc<super::context::RequestState>>()
        .cloned()
        .unwrap_or_default()
}

/// A write error after which the vendor may have applied the write: its answer was cut
/// off mid-body (`extensions.failure: CUT_OFF`).
fn maybe_applied(e: &Error) -> bool {
    e.extensions
        .as_ref()
        .and_then(|x| x.get("failure"))
        .is_some_and(|f| *f == async_graphql::Value::from("CUT_OFF"))
}

/// The request's rate-limit log.
pub(super) fn request_spend(ctx: &ResolverContext<'_>) -> Arc<crate::engine::RequestSpend> {
    request_state(ctx).spend.clone()
}

pub fn page_info_type() -> Object {
    Object::new("PageInfo")
        .description("Relay pagination state of a connection.")
        .field(
            Field::new("hasNextPage", TypeRef::named_nn(TypeRef::BOOLEAN), |ctx| {
                FieldFuture::new(async move {
                    let c = ctx.parent_value.try_downcast_ref::<ConnectionNode>()?;
                    Ok(Some(FieldValue::value(c.has_next_page)))
                })
            })
            .description("Whether records follow the last one returned."),
        )
        .field(
            Field::new("endCursor", TypeRef::named(TypeRef::STRING), |ctx| {
                FieldFuture::new(async move {
                    let c = ctx.parent_value.try_downcast_ref::<ConnectionNode>()?;
                    Ok(c.edges.last().map(|e| FieldValue::value(e.cursor.clone())))
                })
            })
            .description("Pass as `after` to read the next page; null when the page is empty."),
        )
}

/// The object type, its edge and connection types.
pub fn resource_types(def: &ResourceDef, model: &UnifiedModel) -> Vec<Object> {
    let type_name = def.type_name.clone();
    let mut obj = Object::new(&type_name).implement("Node");
    if let Some(d) = &def.description {
        obj = obj.description(d);
    }
    obj = obj
        .field(Field::new("id", TypeRef::named_nn(TypeRef::ID), |ctx| {
            FieldFuture::new(async move {
                let n = ctx.parent_value.try_downcast_ref::<Arc<RecordNode>>()?;
                Ok(Some(FieldValue::value(GlobalId::encode(&n.account.id, &n.resource, &n.record.remote_id))))
            })
        }).description("Global, opaque id: encodes the linked account, so ids never collide across accounts."))
        .field(Field::new("remoteId", TypeRef::named_nn(TypeRef::ID), |ctx| {
            FieldFuture::new(async move {
                let n = ctx.parent_value.try_downcast_ref::<Arc<RecordNode>>()?;
                Ok(Some(FieldValue::value(n.record.remote_id.clone())))
            })
        }).description("The vendor's own id of the record."))
        .field(Field::new("remoteData", TypeRef::named("JSON"), |ctx| {
            FieldFuture::new(async move {
                let n = ctx.parent_value.try_downcast_ref::<Arc<RecordNode>>()?;
                Ok(GqlValue::from_json(n.record.raw.clone()).ok().map(FieldValue::value))
            })
        }).description("The raw upstream record, as the vendor sent it."));
    for (name, ty, doc) in [
        (
            "customFields",
            "JSON",
            "Fields outside the unified model, as the mapping and its overrides define them.",
        ),
        (
            "remoteCreatedAt",
            "DateTime",
            "When the record was created in the vendor's system.",
        ),
        (
            "remoteUpdatedAt",
            "DateTime",
            "When the record was last changed in the vendor's system.",
        ),
    ] {
        obj = obj.field(
            mapped_field(name, &crate::schema::TypeRef::Named(ty.into()), model).description(doc),
        );
    }
    for f in &def.fields {
        let field = match &f.link {
            Some(link) => link_field(&f.name, &link.field, &link.resource, &f.ty),
            None => mapped_field(&f.name, &f.ty, model),
        };
        obj = obj.field(match &f.description {
            Some(d) => field.description(d),
            None => field,
        });
    }
    let edge = Object::new(format!("{type_name}Edge"))
        .description(format!("One {type_name} of a connection, with its cursor."))
        .field(
            Field::new("cursor", TypeRef::named_nn(TypeRef::STRING), |ctx| {
                FieldFuture::new(async move {
                    let e = ctx.parent_value.try_downcast_ref::<EdgeNode>()?;
                    Ok(Some(FieldValue::value(e.cursor.clone())))
                })
            })
            .description("Opaque and signed: pass as `after` to continue after this record."),
        )
        .field(
            Field::new("node", TypeRef::named_nn(&type_name), |ctx| {
                FieldFuture::new(async move {
                    let e = ctx.parent_value.try_downcast_ref::<EdgeNode>()?;
                    Ok(Some(FieldValue::owned_any(e.node.clone())))
                })
            })
            .description("The record."),
        );
    let connection = Object::new(format!("{type_name}Connection"))
        .description(format!("A page of {type_name} records (Relay connection)."))
        .field(
            Field::new(
                "edges",
                TypeRef::named_nn_list_nn(format!("{type_name}Edge")),
                |ctx| {
                    FieldFuture::new(async move {
                        let c = ctx.parent_value.try_downcast_ref::<ConnectionNode>()?;
                        Ok(Some(FieldValue::list(
                            c.edges.iter().map(|e| FieldValue::borrowed_any(e)),
                        )))
                    })
                },
            )
            .description("The records of this page, in the vendor's order."),
        )
        .field(
            Field::new("pageInfo", TypeRef::named_nn("PageInfo"), |ctx| {
                FieldFuture::new(async move {
                    let c = ctx.parent_value.try_downcast_ref::<ConnectionNode>()?;
                    Ok(Some(FieldValue::borrowed_any(c)))
                })
            })
            .description("Where this page stands in the listing."),
        );
    vec![obj, edge, connection]
}

fn gql_type(ty: &crate::schema::TypeRef) -> TypeRef {
    match ty {
        crate::schema::TypeRef::Named(n) => TypeRef::named(n),
        crate::schema::TypeRef::List(t) => TypeRef::List(Box::new(gql_type(t))),
        crate::schema::TypeRef::NonNull(t) => TypeRef::NonNull(Box::new(gql_type(t))),
    }
}

pub fn output_type(ty: &crate::schema::TypeRef) -> TypeRef {
    gql_type(ty)
}

/// A field read from the record's mapped JSON.
fn mapped_field(name: &str, ty: &crate::schema::TypeRef, model: &UnifiedModel) -> Field {
    let shape = Arc::new(Shape::of(ty, model));
    let key: Arc<str> = name.into();
    Field::new(name, gql_type(ty), move |ctx| {
        let shape = shape.clone();
        let key = key.clone();
        FieldFuture::new(async move {
            let n = ctx.parent_value.try_downcast_ref::<Arc<RecordNode>>()?;
            if &*key == "customFields" && !n.record.warnings.is_empty() {
                let id = &n.record.remote_id;
                request_state(&ctx).warn(
                    n.record
                        .warnings
                        .iter()
                        .map(|w| format!("{} `{id}`: {w}", n.resource)),
                );
            }
            match &n.record.mapped {
                Ok(map) => Ok(to_field_value(map.get(&*key), &shape, Some(&n.account))),
                Err(e) => Err(coded(
                    ErrorCode::ConfigError,
                    format!(
                        "the {} mapping failed on record `{}`: {e}",
                        n.resource, n.record.remote_id
                    ),
                )),
            }
        })
    })
}

/// A related record (or a list of them, for a list type), read through the request's
/// loader by the id(s) the mapping put in `id_field`.
fn link_field(name: &str, id_field: &str, resource: &str, ty: &crate::schema::TypeRef) -> Field {
    let id_field: Arc<str> = id_field.into();
    let resource: Arc<str> = resource.into();
    let many = matches!(ty, crate::schema::TypeRef::List(_));
    Field::new(name, gql_type(ty), move |ctx| {
        let id_field = id_field.clone();
        let resource = resource.clone();
        FieldFuture::new(async move {
            let n = ctx.parent_value.try_downcast_ref::<Arc<RecordNode>>()?;
            let ids = super::loader::link_ids(n, &id_field);
            resolve_link(&ctx, &n.account, &resource, ids, many).await
        })
    })
}

/// The related record(s) of `account` with these remote ids, through the request's loader.
pub(super) async fn resolve_link<'a>(
    ctx: &ResolverContext<'_>,
    account: &Arc<AccountHandle>,
    resource: &Arc<str>,
    ids: Vec<String>,
    many: bool,
) -> Result<Option<FieldValue<'a>>, Error> {
    let services = services(ctx)?;
    let state = request_state(ctx);
    if many {
        // Ids not found upstream are left out rather than failing the list.
        state
            .records
            .prefetch(&services.engine, account, resource, ids.clone())
            .await;
        let mut out = Vec::new();
        for id in &ids {
            match state
                .records
                .load(&services.engine, account, resource, id)
                .await
            {
                Ok(Some(node)) => out.push(FieldValue::owned_any(node)),
                Ok(None) => {}
                Err(e) => return Err(from_engine(ctx, &e)),
            }
        }
        return Ok(Some(FieldValue::list(out)));
    }
    let Some(remote_id) = ids.into_iter().next() else {
        return Ok(None);
    };
    match state
        .records
        .load(&services.engine, account, resource, &remote_id)
        .await
    {
        Ok(found) => Ok(found.map(FieldValue::owned_any)),
        Err(e) => Err(from_engine(ctx, &e)),
    }
}

/// What a listing is read with, besides its account and resource.
pub(super) struct ListingArgs<'a> {
    pub first: usize,
    pub after: Option<&'a str>,
    pub filter: &'a serde_json::Map<String, serde_json::Value>,
}

/// One listing of the request: read once however many fields ask for it with the same
/// arguments (aliases here; the planned path and then async-graphql, when the planned path
/// hands a request over after reading).
pub(super) async fn read_listing(
    services: &SharedServices,
    state: &super::context::RequestState,
    account: &Arc<AccountHandle>,
    resource: &Arc<str>,
    args: &ListingArgs<'_>,
) -> Result<(Vec<EdgeNode>, bool), Arc<EngineError>> {
    let key = format!(
        "{}\u{0}{resource}\u{0}{}\u{0}{:?}\u{0}{}",
        account.id,
        args.first,
        args.after,
        serde_json::Value::Object(args.filter.clone())
    );
    let read = || async {
        let page = services
            .engine
            .list(account, resource, args.first, args.after, args.filter)
            .await
            .map_err(Arc::new)?;
        let edges = page
            .edges
            .into_iter()
            .map(|e| EdgeNode {
                cursor: e.cursor,
                node: Arc::new(RecordNode {
                    account: account.clone(),
                    resource: resource.clone(),
                    record: e.record,
                }),
            })
            .collect();
        Ok::<_, Arc<EngineError>>((edges, page.has_next_page))
    };
    match state.listings.shared(key) {
        Some(cell) => cell.get_or_init(read).await.clone(),
        None => read().await,
    }
}

/// `contacts(accountId:, first:, after:)`.
pub fn list_root_field(def: &ResourceDef, has_filter: bool) -> Field {
    let resource: Arc<str> = def.resource.as_str().into();
    let field = Field::new(
        &def.resource,
        TypeRef::named_nn(format!("{}Connection", def.type_name)),
        move |ctx| {
            let resource = resource.clone();
            FieldFuture::new(async move {
                let services = services(&ctx)?;
                let caller = caller(&ctx)?;
                let account_id = ctx.args.try_get("accountId")?.string()?.to_string();
                let first = match ctx.args.get("first") {
                    Some(v) if !v.is_null() => {
                        let n = v.i64()?;
                        usize::try_from(n).map_err(|_| {
                            coded(ErrorCode::BadUserInput, "`first` must not be negative")
                        })?
                    }
                    _ => DEFAULT_FIRST,
                };
                let after = match ctx.args.get("after") {
                    Some(v) if !v.is_null() => Some(v.string()?.to_string()),
                    _ => None,
                };
                // Only the filters the caller set (nulls dropped), as JSON for the mapping.
                let filter = match ctx.args.get("filter") {
                    Some(v) if !v.is_null() => match v.as_value().clone().into_json() {
                        Ok(serde_json::Value::Object(map)) => {
                            map.into_iter().filter(|(_, v)| !v.is_null()).collect()
                        }
                        _ => serde_json::Map::new(),
                    },
                    _ => serde_json::Map::new(),
                };
                let account = handle_for(&services, &caller, &account_id, request_spend(&ctx))
                    .await
                    .map_err(|e| from_code_at(&ctx, &e))?;
                let state = request_state(&ctx);
                let (edges, has_next_page) = read_listing(
                    &services,
                    &state,
                    &account,
                    &resource,
                    &ListingArgs {
                        first,
                        after: after.as_deref(),
                        filter: &filter,
                    },
                )
                .await
                .map_err(|e| from_engine(&ctx, &e))?;
                // One batch per link field the query selects, before the nodes resolve.
                let nodes = edges.iter().map(|e| e.node.clone()).collect();
                let selection = ctx.look_ahead().field("edges").field("node");
                let scope = super::loader::PrefetchScope {
                    engine: &services.engine,
                    model: &services.model,
                    account: &account,
                };
                state
                    .records
                    .prefetch_links(&scope, &resource, nodes, selection, 0)
                    .await;
                Ok(Some(FieldValue::owned_any(ConnectionNode {
                    edges,
                    has_next_page,
                })))
            })
        },
    )
    .argument(
        InputValue::new("accountId", TypeRef::named_nn(TypeRef::ID))
            .description("The linked account to read from."),
    )
    .argument(
        InputValue::new("first", TypeRef::named(TypeRef::INT)).description(format!(
            "Records to return (default {DEFAULT_FIRST}, at most {}).",
            crate::engine::MAX_FIRST
        )),
    )
    .argument(
        InputValue::new("after", TypeRef::named(TypeRef::STRING))
            .description("An `endCursor` or edge `cursor` from a previous page."),
    )
    .description(format!(
        "Lists {} of a linked account, as a Relay connection.",
        def.resource
    ));
    if has_filter {
        field.argument(
            InputValue::new("filter", TypeRef::named(format!("{}Filter", def.type_name)))
                .description(
                    "Narrows the listing; a filter the provider cannot translate is refused.",
                ),
        )
    } else {
        field
    }
}

/// `contact(id:)` or `contact(accountId:, remoteId:)`.
pub fn single_root_field(def: &ResourceDef) -> Field {
    let resource: Arc<str> = def.resource.as_str().into();
    Field::new(
        &def.single_field,
        TypeRef::named(&def.type_name),
        move |ctx| {
            let resource = resource.clone();
            FieldFuture::new(async move {
                let arg = |name: &str| -> Result<Option<String>, Error> {
                    match ctx.args.get(name) {
                        Some(v) if !v.is_null() => Ok(Some(v.string()?.to_string())),
                        _ => Ok(None),
                    }
                };
                let (account_id, remote_id) =
                    match (arg("id")?, arg("accountId")?, arg("remoteId")?) {
                        (Some(id), None, None) => {
                            let gid = decode_id(&id, &resource)?;
                            (gid.account, gid.remote_id)
                        }
                        (None, Some(account), Some(remote)) => (account, remote),
                        _ => {
                            return Err(coded(
                                ErrorCode::BadUserInput,
                                "give either `id`, or both `accountId` and `remoteId`",
                            ));
                        }
                    };
                fetch_node(&ctx, &account_id, &resource, &remote_id).await
            })
        },
    )
    .argument(InputValue::new("id", TypeRef::named(TypeRef::ID)))
    .argument(InputValue::new("accountId", TypeRef::named(TypeRef::ID)))
    .argument(InputValue::new("remoteId", TypeRef::named(TypeRef::ID)))
    .description(format!(
        "One {} record, by global `id` or by `accountId` and `remoteId`.",
        def.type_name
    ))
}

async fn fetch_node<'a>(
    ctx: &ResolverContext<'a>,
    account_id: &str,
    resource: &Arc<str>,
    remote_id: &str,
) -> Result<Option<FieldValue<'a>>, Error> {
    let services = services(ctx)?;
    let caller = caller(ctx)?;
    let account = handle_for(&services, &caller, account_id, request_spend(ctx))
        .await
        .map_err(|e| from_code_at(ctx, &e))?;
    let node = read_one(
        &services,
        &request_state(ctx),
        &account,
        resource,
        remote_id,
    )
    .await
    .map_err(|e| from_engine(ctx, &e))?;
    Ok(node.map(FieldValue::owned_any))
}

/// One record of the request by its vendor id, read once however many fields ask for it
/// (the planned path and then async-graphql, when the planned path hands a request over).
pub(super) async fn read_one(
    services: &SharedServices,
    state: &super::context::RequestState,
    account: &Arc<AccountHandle>,
    resource: &Arc<str>,
    remote_id: &str,
) -> Result<Option<Arc<RecordNode>>, Arc<EngineError>> {
    let key = format!("{}\u{0}{resource}\u{0}{remote_id}", account.id);
    let read = || async {
        let record = services
            .engine
            .get(account, resource, remote_id)
            .await
            .map_err(Arc::new)?;
        Ok::<_, Arc<EngineError>>(record.map(|record| {
            Arc::new(RecordNode {
                account: account.clone(),
                resource: resource.clone(),
                record,
            })
        }))
    };
    match state.listings.shared_read(key) {
        Some(cell) => cell.get_or_init(read).await.clone(),
        None => read().await,
    }
}

/// `node(id:)`: refetches any record by its global id.
pub fn node_root_field(model: &UnifiedModel) -> Field {
    let types: Arc<Vec<(String, String)>> = Arc::new(
        model
            .resources
            .iter()
            .map(|r| (r.resource.clone(), r.type_name.clone()))
            .collect(),
    );
    Field::new("node", TypeRef::named("Node"), move |ctx| {
        let types = types.clone();
        FieldFuture::new(async move {
            let id = ctx.args.try_get("id")?.string()?.to_string();
            let not_found = || coded(ErrorCode::NotFound, format!("no record has the id `{id}`"));
            let gid = GlobalId::decode(&id).ok_or_else(not_found)?;
            let (_, type_name) = types
                .iter()
                .find(|(r, _)| *r == gid.resource)
                .ok_or_else(not_found)?;
            let resource: Arc<str> = gid.resource.as_str().into();
            let found = fetch_node(&ctx, &gid.account, &resource, &gid.remote_id).await?;
            Ok(found.map(|v| v.with_type(type_name.clone())))
        })
    })
    .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
    .description("Any record, by its global id.")
}

/// The input type of a field: value objects become their `...Input` twin.
fn input_type(ty: &crate::schema::TypeRef, model: &UnifiedModel) -> TypeRef {
    match ty {
        crate::schema::TypeRef::Named(n) if model.objects.iter().any(|o| &o.name == n) => {
            TypeRef::named(format!("{n}Input"))
        }
        crate::schema::TypeRef::Named(n) => TypeRef::named(n),
        crate::schema::TypeRef::List(t) => TypeRef::List(Box::new(input_type(t, model))),
        crate::schema::TypeRef::NonNull(t) => TypeRef::NonNull(Box::new(input_type(t, model))),
    }
}

/// `EmailAddressInput` for each value object, `ContactInput` for each resource. Resource
/// inputs make every field optional: an update sends only what changes.
pub fn input_types(model: &UnifiedModel) -> Vec<InputObject> {
    let described = |name: &str, ty: TypeRef, d: Option<&String>| {
        let v = InputValue::new(name, ty);
        match d {
            Some(d) => v.description(d),
            None => v,
        }
    };
    let mut out = Vec::new();
    for o in &model.objects {
        let mut input = InputObject::new(format!("{}Input", o.name))
            .description(format!("{} as input.", o.name));
        for f in &o.fields {
            // A link inside a value object (`Stage.pipeline`) is written through its id field,
            // which is a field of the object itself.
            if f.link.is_some() {
                continue;
            }
            input = input.field(described(
                &f.name,
                input_type(&f.ty, model),
                f.description.as_ref(),
            ));
        }
        out.push(input);
    }
    for r in &model.resources {
        let mut input = InputObject::new(format!("{}Input", r.type_name)).description(format!(
            "Fields of a {} to create or change; absent fields are left alone.",
            r.type_name
        ));
        for f in &r.fields {
            input = match &f.link {
                Some(link) => input.field(
                    InputValue::new(
                        &link.field,
                        if matches!(f.ty, crate::schema::TypeRef::List(_)) {
                            TypeRef::named_nn_list(TypeRef::ID)
                        } else {
                            TypeRef::named(TypeRef::ID)
                        },
                    )
                    .description(format!(
                        "The remote id of the related {} record.",
                        link.resource
                    )),
                ),
                None => {
                    let ty = match &f.ty {
                        crate::schema::TypeRef::NonNull(inner) => inner.as_ref(),
                        other => other,
                    };
                    input.field(described(
                        &f.name,
                        input_type(ty, model),
                        f.description.as_ref(),
                    ))
                }
            };
        }
        input = input.field(
            InputValue::new("customFields", TypeRef::named("JSON")).description(
                "Fields outside the unified model, as the provider's request mapping reads them.",
            ),
        );
        out.push(input);
    }
    out
}

fn input_json(ctx: &ResolverContext<'_>) -> Result<serde_json::Value, Error> {
    ctx.args
        .try_get("input")?
        .as_value()
        .clone()
        .into_json()
        .map_err(|e| {
            coded(
                ErrorCode::BadUserInput,
                format!("`input` cannot be read: {e}"),
            )
        })
}

/// The account and remote id of a global id, checked to be a record of `resource`.
pub(super) fn decode_id(id: &str, resource: &str) -> Result<GlobalId, Error> {
    let gid = GlobalId::decode(id)
        .ok_or_else(|| coded(ErrorCode::NotFound, format!("no record has the id `{id}`")))?;
    if gid.resource != resource {
        return Err(coded(
            ErrorCode::BadUserInput,
            format!(
                "`{id}` is the id of a {} record, not of {resource}",
                gid.resource
            ),
        ));
    }
    Ok(gid)
}

fn idempotency_key(ctx: &ResolverContext<'_>) -> Result<Option<String>, Error> {
    match ctx.args.get("idempotencyKey") {
        Some(v) if !v.is_null() => Ok(Some(v.string()?.to_string())),
        _ => Ok(None),
    }
}

fn key_argument() -> InputValue {
    InputValue::new("idempotencyKey", TypeRef::named(TypeRef::STRING))
        .description("Repeating a key within 24 hours returns the first result without writing to the vendor again.")
}

/// A written record as stored for idempotent replays: its id and the raw vendor record.
fn stored(record: &crate::engine::Record) -> serde_json::Value {
    serde_json::json!({"remoteId": record.remote_id, "raw": record.raw})
}

/// The record a create or update produced (now, or in an earlier run with the same key).
async fn written(
    ctx: &ResolverContext<'_>,
    services: &SharedServices,
    account: Arc<AccountHandle>,
    resource: Arc<str>,
    response: serde_json::Value,
) -> Result<Option<FieldValue<'static>>, Error> {
    let raw = response.get("raw").cloned().unwrap_or_default();
    let record = services
        .engine
        .record_from_raw(&account, &resource, raw)
        .await
        .map_err(|e| from_engine(ctx, &e))?;
    Ok(Some(FieldValue::owned_any(Arc::new(RecordNode {
        account,
        resource,
        record,
    }))))
}

/// `createContact(accountId:, input:, idempotencyKey:)`, `updateContact(id:, input:,
/// idempotencyKey:)`, `deleteContact(id:, idempotencyKey:)`.
pub fn mutation_fields(def: &ResourceDef) -> Vec<Field> {
    let type_name = def.type_name.clone();
    let input = format!("{type_name}Input");
    let create = {
        let resource: Arc<str> = def.resource.as_str().into();
        Field::new(
            format!("create{type_name}"),
            TypeRef::named_nn(&type_name),
            move |ctx| {
                let resource = resource.clone();
                FieldFuture::new(async move {
                    let services = services(&ctx)?;
                    let caller = caller(&ctx)?;
                    let account_id = ctx.args.try_get("accountId")?.string()?.to_string();
                    let input = input_json(&ctx)?;
                    let account = handle_for(&services, &caller, &account_id, request_spend(&ctx))
                        .await
                        .map_err(|e| from_code(&e))?;
                    let operation = format!("create:{resource}");
                    let hash = request_hash(&operation, &account_id, None, &input);
                    let write = async {
                        let record = services
                            .engine
                            .create(&account, &resource, &input)
                            .await
                            .map_err(|e| from_engine(&ctx, &e))?;
                        Ok::<_, Error>(stored(&record))
                    };
                    let response = once(
                        &services,
                        &caller,
                        &account_id,
                        Keyed {
                            key: idempotency_key(&ctx)?,
                            operation: &operation,
                            hash,
                        },
                        write,
                        maybe_applied,
                    )
                    .await
                    .map_err(|e| from_code(&e))??;
                    written(&ctx, &services, account, resource, response).await
                })
            },
        )
        .argument(
            InputValue::new("accountId", TypeRef::named_nn(TypeRef::ID))
                .description("The linked account to write to."),
        )
        .argument(
            InputValue::new("input", TypeRef::named_nn(&input))
                .description("The fields of the new record."),
        )
        .argument(key_argument())
        .description(format!(
            "Creates a {type_name} in the linked account's CRM (where its provider supports it)."
        ))
    };
    let update = {
        let resource: Arc<str> = def.resource.as_str().into();
        Field::new(
            format!("update{type_name}"),
            TypeRef::named_nn(&type_name),
            move |ctx| {
                let resource = resource.clone();
                FieldFuture::new(async move {
                    let services = services(&ctx)?;
                    let caller = caller(&ctx)?;
                    let gid = decode_id(ctx.args.try_get("id")?.string()?, &resource)?;
                    let input = input_json(&ctx)?;
                    let account = handle_for(&services, &caller, &gid.account, request_spend(&ctx))
                        .await
                        .map_err(|e| from_code(&e))?;
                    let operation = format!("update:{resource}");
                    let hash = request_hash(&operation, &gid.account, Some(&gid.remote_id), &input);
                    let write = async {
                        let record = services
                            .engine
                            .update(&account, &resource, &gid.remote_id, &input)
                            .await
                            .map_err(|e| from_engine(&ctx, &e))?;
                        Ok::<_, Error>(stored(&record))
                    };
                    let response = once(
                        &services,
                        &caller,
                        &gid.account,
                        Keyed {
                            key: idempotency_key(&ctx)?,
                            operation: &operation,
                            hash,
                        },
                        write,
                        maybe_applied,
                    )
                    .await
                    .map_err(|e| from_code(&e))??;
                    written(&ctx, &services, account, resource, response).await
                })
            },
        )
        .argument(
            InputValue::new("id", TypeRef::named_nn(TypeRef::ID))
                .description("The record's global id."),
        )
        .argument(
            InputValue::new("input", TypeRef::named_nn(&input))
                .description("The fields to change."),
        )
        .argument(key_argument())
        .description(format!("Changes the given fields of a {type_name}."))
    };
    let delete = {
        let resource: Arc<str> = def.resource.as_str().into();
        Field::new(
            format!("delete{type_name}"),
            TypeRef::named_nn(TypeRef::ID),
            move |ctx| {
                let resource = resource.clone();
                FieldFuture::new(async move {
                    let services = services(&ctx)?;
                    let caller = caller(&ctx)?;
                    let id = ctx.args.try_get("id")?.string()?.to_string();
                    let gid = decode_id(&id, &resource)?;
                    let account = handle_for(&services, &caller, &gid.account, request_spend(&ctx))
                        .await
                        .map_err(|e| from_code(&e))?;
                    let operation = format!("delete:{resource}");
                    let hash = request_hash(
                        &operation,
                        &gid.account,
                        Some(&gid.remote_id),
                        &serde_json::Value::Null,
                    );
                    let write = async {
                        services
                            .engine
                            .delete(&account, &resource, &gid.remote_id)
                            .await
                            .map_err(|e| from_engine(&ctx, &e))?;
                        Ok::<_, Error>(serde_json::Value::String(id.clone()))
                    };
                    let response = once(
                        &services,
                        &caller,
                        &gid.account,
                        Keyed {
                            key: idempotency_key(&ctx)?,
                            operation: &operation,
                            hash,
                        },
                        write,
                        maybe_applied,
                    )
                    .await
                    .map_err(|e| from_code(&e))??;
                    Ok(Some(FieldValue::value(
                        response.as_str().unwrap_or(&id).to_string(),
                    )))
                })
            },
        )
        .argument(
            InputValue::new("id", TypeRef::named_nn(TypeRef::ID))
                .description("The record's global id."),
        )
        .argument(key_argument())
        .description(format!("Deletes a {type_name}; returns its id."))
    };
    vec![create, update, delete]
}
