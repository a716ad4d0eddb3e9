//! The served GraphQL schema: the unified model (from `schema/`) plus the gateway's own
//! types, as an async-graphql dynamic schema with generic resolvers.
//!
//! Resolvers call the engine with (account, resource, operation, arguments) and shape what
//! comes back; they never build an HTTP request.

mod alerts;
mod context;
pub mod cost;
mod endpoints;
mod errors;
mod events;
mod lifecycle;
mod loader;
mod monitoring;
mod overrides;
mod plan;
mod platform;
mod preview;
mod resources;
mod tenants;
mod values;

use std::sync::Arc;

use async_graphql::dynamic::{
    Field, FieldFuture, Interface, InterfaceField, Object, Scalar, Schema, SchemaError,
    Subscription, TypeRef,
};

pub use context::RequestState;
pub use errors::PATH_EXTENSION;
pub use plan::{Lookup, Planner};

use crate::schema::{ObjectDef, UnifiedModel};
use crate::services::SharedServices;
use values::{NestedValue, Shape, to_field_value};

/// Query depth and complexity caps: a unified model has no legitimate query deeper than a
/// few relations, and the caps keep one request from fanning out into thousands of
/// upstream calls.
const MAX_DEPTH: usize = 16;
const MAX_COMPLEXITY: usize = 20_000;

/// Builds the schema from the model. `services` is `None` for printing the SDL only.
pub fn build_schema(
    model: &UnifiedModel,
    services: Option<SharedServices>,
) -> Result<Schema, SchemaError> {
    build_schema_with(model, services, true)
}

/// As [`build_schema`]; `introspection: false` answers introspection queries with an error
/// (production deployments that do not want their schema browsable).
pub fn build_schema_with(
    model: &UnifiedModel,
    services: Option<SharedServices>,
    introspection: bool,
) -> Result<Schema, SchemaError> {
    build_schema_limited(
        model,
        services,
        introspection,
        cost::CostLimit(cost::DEFAULT_LIMIT),
    )
}

/// As [`build_schema_with`], refusing queries whose estimated upstream cost is over `limit`.
pub fn build_schema_limited(
    model: &UnifiedModel,
    services: Option<SharedServices>,
    introspection: bool,
    limit: cost::CostLimit,
) -> Result<Schema, SchemaError> {
    let mut query = Object::new("Query")
        .description("Reads: unified records of linked accounts, and the gateway's own objects.");
    let mut mutation = Object::new("Mutation")
        .description("Writes to linked accounts' CRMs, and gateway administration.");
    let mut builder_types: Vec<async_graphql::dynamic::Type> = Vec::new();

    builder_types.push(Scalar::new("JSON").description("Any JSON value.").into());
    builder_types.push(
        Scalar::new("DateTime")
            .description("A date and time in RFC 3339 format, e.g. `2024-03-02T10:11:12.345Z`.")
            // Inputs are checked here, so a provider's request mapping only ever sees a
            // real timestamp (never text that could change a vendor query).
            .validator(|v| matches!(v, async_graphql::Value::String(s) if chrono::DateTime::parse_from_rfc3339(s).is_ok()))
            .specified_by_url("https://www.rfc-editor.org/rfc/rfc3339")
            .into(),
    );
    for s in &model.scalars {
        let mut scalar = Scalar::new(&s.name);
        if let Some(d) = &s.description {
            scalar = scalar.description(d);
        }
        builder_types.push(scalar.into());
    }
    for e in &model.enums {
        let mut en =
            async_graphql::dynamic::Enum::new(&e.name).items(e.values.iter().map(String::as_str));
        if let Some(d) = &e.description {
            en = en.description(d);
        }
        builder_types.push(en.into());
    }
    builder_types.push(
        Interface::new("Node")
            .description("A record with a global id, refetchable with `node(id:)`.")
            .field(
                InterfaceField::new("id", TypeRef::named_nn(TypeRef::ID))
                    .description("Global, opaque id."),
            )
            .into(),
    );
    builder_types.push(resources::page_info_type().into());
    for o in &model.objects {
        builder_types.push(value_object(o, model).into());
    }
    for r in &model.resources {
        for t in resources::resource_types(r, model) {
            builder_types.push(t.into());
        }
        query = query
            .field(resources::list_root_field(
                r,
                model.filters.iter().any(|f| f.type_name == r.type_name),
            ))
            .field(resources::single_root_field(r));
        for f in resources::mutation_fields(r) {
            mutation = mutation.field(f);
        }
    }
    builder_types.extend(resources::input_types(model).into_iter().map(Into::into));
    for f in &model.filters {
        let mut input = async_graphql::dynamic::InputObject::new(format!("{}Filter", f.type_name));
        if let Some(d) = &f.description {
            input = input.description(d);
        }
        for field in &f.fields {
            let mut v = async_graphql::dynamic::InputValue::new(
                &field.name,
                resources::output_type(&field.ty),
            );
            if let Some(d) = &field.description {
                v = v.description(d);
            }
            input = input.field(v);
        }
        builder_types.push(input.into());
    }
    query = query.field(resources::node_root_field(model));
    let (objects, enums) = platform::types();
    builder_types.extend(objects.into_iter().map(Into::into));
    builder_types.extend(enums.into_iter().map(Into::into));
    for f in platform::query_fields() {
        query = query.field(f);
    }
    for f in platform::mutation_fields() {
        mutation = mutation.field(f);
    }
    let (objects, enums, inputs) = overrides::types();
    builder_types.extend(objects.into_iter().map(Into::into));
    builder_types.extend(enums.into_iter().map(Into::into));
    builder_types.extend(inputs.into_iter().map(Into::into));
    for f in overrides::query_fields() {
        query = query.field(f);
    }
    for f in overrides::mutation_fields() {
        mutation = mutation.field(f);
    }
    builder_types.extend(tenants::types().into_iter().map(Into::into));
    builder_types.extend(monitoring::types().into_iter().map(Into::into));
    builder_types.extend(monitoring::health_enums().into_iter().map(Into::into));
    for f in tenants::query_fields() {
        query = query.field(f);
    }
    for f in tenants::mutation_fields() {
        mutation = mutation.field(f);
    }
    let (objects, enums) = events::types();
    builder_types.extend(objects.into_iter().map(Into::into));
    builder_types.extend(enums.into_iter().map(Into::into));
    for f in events::query_fields() {
        query = query.field(f);
    }
    let (objects, enums) = alerts::types();
    builder_types.extend(objects.into_iter().map(Into::into));
    builder_types.extend(enums.into_iter().map(Into::into));
    for f in alerts::query_fields() {
        query = query.field(f);
    }
    builder_types.extend(preview::types().into_iter().map(Into::into));
    for f in preview::mutation_fields() {
        mutation = mutation.field(f);
    }
    builder_types.extend(lifecycle::types().into_iter().map(Into::into));
    for f in lifecycle::mutation_fields() {
        mutation = mutation.field(f);
    }
    let (objects, enums) = endpoints::types();
    builder_types.extend(objects.into_iter().map(Into::into));
    builder_types.extend(enums.into_iter().map(Into::into));
    for f in endpoints::query_fields() {
        query = query.field(f);
    }
    for f in endpoints::mutation_fields() {
        mutation = mutation.field(f);
    }
    let subscription = events::subscription_fields().into_iter().fold(
        Subscription::new("Subscription")
            .description("Changes pushed as they happen (graphql-transport-ws at `/graphql/ws`)."),
        |s, f| s.field(f),
    );

    let mut builder = Schema::build("Query", Some("Mutation"), Some("Subscription"))
        .register(query)
        .register(mutation)
        .register(subscription)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .extension(cost::QueryCost::new(model, limit));
    for t in builder_types {
        builder = builder.register(t);
    }
    if let Some(services) = services {
        builder = builder.data(services);
    }
    if !introspection {
        builder = builder.disable_introspection();
    }
    builder.finish()
}

/// A plain object type: its fields read keys of the parent JSON object.
fn value_object(def: &ObjectDef, model: &UnifiedModel) -> Object {
    let mut obj = Object::new(&def.name);
    if let Some(d) = &def.description {
        obj = obj.description(d);
    }
    for f in &def.fields {
        let mut field = match &f.link {
            Some(link) => nested_link_field(&f.name, &link.field, &link.resource, &f.ty),
            None => {
                let shape = Arc::new(Shape::of(&f.ty, model));
                let key: Arc<str> = f.name.as_str().into();
                Field::new(&f.name, resources::output_type(&f.ty), move |ctx| {
                    let value = ctx
                        .parent_value
                        .downcast_ref::<NestedValue>()
                        .and_then(|p| {
                            to_field_value(p.value.get(&*key), &shape, p.account.as_ref())
                        });
                    FieldFuture::Value(value)
                })
            }
        };
        if let Some(d) = &f.description {
            field = field.description(d);
        }
        obj = obj.field(field);
    }
    obj
}

/// A related record inside a value object (`Stage.pipeline`), read through the request's
/// loader from the account of the record the object belongs to.
fn nested_link_field(
    name: &str,
    id_field: &str,
    resource: &str,
    ty: &crate::schema::TypeRef,
) -> Field {
    let id_field: Arc<str> = id_field.into();
    let resource: Arc<str> = resource.into();
    let many = matches!(ty, crate::schema::TypeRef::List(_));
    Field::new(name, resources::output_type(ty), move |ctx| {
        let id_field = id_field.clone();
        let resource = resource.clone();
        FieldFuture::new(async move {
            let parent = ctx.parent_value.try_downcast_ref::<NestedValue>()?;
            let Some(account) = parent.account.clone() else {
                return Ok(None);
            };
            let ids = loader::ids_in(parent.value.get(&*id_field));
            resources::resolve_link(&ctx, &account, &resource, ids, many).await
        })
    })
}

/// The SDL the server serves, as introspection returns it.
pub fn print_sdl(model: &UnifiedModel) -> Result<String, SchemaError> {
    Ok(build_schema(model, None)?.sdl())
}
