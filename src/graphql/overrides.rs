//! Overrides over GraphQL: `setOverride`, `rollbackOverride`, `overrides` and
//! `explainMapping`. Who may act where is decided here, once: the admin at any level, an
//! environment's key on its own environment and its own accounts only; another
//! environment's account reads as not found, exactly like a missing one.

use async_graphql::dynamic::{
    Enum, EnumItem, Field, FieldFuture, FieldValue, InputObject, InputValue, Object,
    ResolverContext, TypeRef,
};
use async_graphql::{Error, Value as GqlValue};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::context::{caller, services};
use super::errors::{coded, from_code};
use super::platform::{getter, time};
use crate::access::Caller;
use crate::access::visible_account;
use crate::error::{ErrorCode, HasCode};
use crate::overrides::{FieldSource, Level, OverrideError, OverrideSpec, Scope};
use crate::services::SharedServices;
use crate::store::{NewOverrideVersion, OverrideQuery, OverrideVersion, StoreError};

/// History entries returned per override.
const HISTORY_LIMIT: u64 = 100;

fn json(v: Option<Value>) -> Option<FieldValue<'static>> {
    v.and_then(|v| GqlValue::from_json(v).ok())
        .map(FieldValue::value)
}

fn spec_of(v: &OverrideVersion) -> OverrideSpec {
    serde_json::from_str(&v.spec).unwrap_or_default()
}

/// The opaque id of an override's scope (every version of it shares it).
fn scope_id(scope_key: &str) -> String {
    URL_SAFE_NO_PAD.encode(scope_key)
}

fn scope_key_of(id: &str) -> Option<String> {
    URL_SAFE_NO_PAD
        .decode(id)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
}

pub fn types() -> (Vec<Object>, Vec<Enum>, Vec<InputObject>) {
    let level = Enum::new("OverrideLevel")
        .description("Where an override sits; later levels win: PLATFORM (over the provider file, for everyone), ENVIRONMENT, ACCOUNT.")
        .item(EnumItem::new("PLATFORM").description("On top of the provider file, for every environment (admin key only)."))
        .item(EnumItem::new("ENVIRONMENT").description("One environment (one customer's workspace)."))
        .item(EnumItem::new("ACCOUNT").description("One linked account."));
    let input = InputObject::new("OverrideInput")
        .description("A change to a provider's mapping at one level. Every part is optional; an input with none clears the override (a new version that does nothing).")
        .field(InputValue::new("level", TypeRef::named_nn("OverrideLevel")).description("The level to set."))
        .field(InputValue::new("provider", TypeRef::named_nn(TypeRef::STRING)).description("The provider's name (its file `providers/<name>.json`)."))
        .field(InputValue::new("resource", TypeRef::named_nn(TypeRef::STRING)).description("The resource, e.g. `contacts`."))
        .field(InputValue::new("accountId", TypeRef::named(TypeRef::ID)).description("For ACCOUNT: the linked account."))
        .field(InputValue::new("environmentId", TypeRef::named(TypeRef::ID)).description("For ENVIRONMENT with the admin key: the environment (an environment's key always acts on its own)."))
        .field(InputValue::new("fields", TypeRef::named("JSON")).description("Output field path -> JSONata on the upstream record, e.g. `{\"customFields.industry\": \"Industry__c\", \"phones\": \"Phone_Primary__c ? [{'number': Phone_Primary__c}] : []\"}`."))
        .field(InputValue::new("remove", TypeRef::named_list(TypeRef::STRING)).description("Output fields to drop."))
        .field(InputValue::new("responseMapping", TypeRef::named(TypeRef::STRING)).description("One JSONata expression replacing the whole response mapping."))
        .field(InputValue::new("request", TypeRef::named("JSON")).description("Merged (RFC 7386) into the resource's operations, e.g. `{\"list\": {\"query\": {\"properties\": \"...\"}}}`; `{\"$append\": [\"industry\"]}` in place of a value adds to a comma-separated list parameter instead of restating it."))
        .field(InputValue::new("customFieldTypes", TypeRef::named("JSON")).description("Custom field -> String, Int, Float, Boolean, DateTime or JSON: values are coerced; a misfit is null plus a warning."))
        .field(InputValue::new("sample", TypeRef::named("JSON")).description("Upstream record(s) to try the merged mapping on, instead of the provider's samples."));
    let ov = Object::new("Override")
        .description("One version of an override. `id` names its scope (level, environment, account, provider, resource): every version shares it.")
        .field(getter::<OverrideVersion>("id", "The scope's id (for `rollbackOverride`).", TypeRef::named_nn(TypeRef::ID), |v| Some(FieldValue::value(scope_id(&v.scope_key)))))
        .field(getter::<OverrideVersion>("level", "The level.", TypeRef::named_nn("OverrideLevel"), |v| Some(FieldValue::value(GqlValue::Enum(async_graphql::Name::new(&v.level))))))
        .field(getter::<OverrideVersion>("provider", "The provider.", TypeRef::named_nn(TypeRef::STRING), |v| Some(FieldValue::value(v.provider.clone()))))
        .field(getter::<OverrideVersion>("resource", "The resource.", TypeRef::named_nn(TypeRef::STRING), |v| Some(FieldValue::value(v.resource.clone()))))
        .field(getter::<OverrideVersion>("environmentId", "The environment (null at PLATFORM level).", TypeRef::named(TypeRef::ID), |v| v.environment_id.clone().map(FieldValue::value)))
        .field(getter::<OverrideVersion>("accountId", "The linked account (ACCOUNT level only).", TypeRef::named(TypeRef::ID), |v| v.account_id.clone().map(FieldValue::value)))
        .field(getter::<OverrideVersion>("version", "Counts from 1 per scope; the highest is in force.", TypeRef::named_nn(TypeRef::INT), |v| Some(FieldValue::value(v.version))))
        .field(getter::<OverrideVersion>("action", "`set` or `rollback`.", TypeRef::named_nn(TypeRef::STRING), |v| Some(FieldValue::value(v.action.clone()))))
        .field(getter::<OverrideVersion>("restoredVersion", "For a rollback: the version it restored.", TypeRef::named(TypeRef::INT), |v| v.restored_version.map(FieldValue::value)))
        .field(getter::<OverrideVersion>("author", "`admin` or `environment:<id>`.", TypeRef::named_nn(TypeRef::STRING), |v| Some(FieldValue::value(v.author.clone()))))
        .field(getter::<OverrideVersion>("createdAt", "When this version was written.", TypeRef::named_nn("DateTime"), |v| time(&Some(v.created_at))))
        .field(getter::<OverrideVersion>("fields", "Output field -> JSONata set by this version.", TypeRef::named("JSON"), |v| json(serde_json::to_value(spec_of(v).fields).ok())))
        .field(getter::<OverrideVersion>("remove", "Output fields this version drops.", TypeRef::named_nn_list_nn(TypeRef::STRING), |v| Some(FieldValue::list(spec_of(v).remove.into_iter().map(FieldValue::value)))))
        .field(getter::<OverrideVersion>("responseMapping", "The whole-mapping expression, if this version sets one.", TypeRef::named(TypeRef::STRING), |v| spec_of(v).response_mapping.map(FieldValue::value)))
        .field(getter::<OverrideVersion>("request", "The request patch.", TypeRef::named("JSON"), |v| json(spec_of(v).request)))
        .field(getter::<OverrideVersion>("customFieldTypes", "Declared custom field types.", TypeRef::named("JSON"), |v| json(serde_json::to_value(spec_of(v).custom_field_types).ok())))
        .field(
            Field::new("history", TypeRef::named_nn_list_nn("Override"), |ctx| {
                FieldFuture::new(async move {
                    let v = ctx.parent_value.try_downcast_ref::<OverrideVersion>()?;
                    let services = services(&ctx)?;
                    let list = services
                        .store
                        .override_history(&OverrideQuery { scope_key: Some(v.scope_key.clone()), ..Default::default() }, HISTORY_LIMIT)
                        .await
                        .map_err(|e| from_code(&e))?;
                    Ok(Some(FieldValue::list(list.into_iter().map(FieldValue::owned_any))))
                })
            })
            .description("Every version of this scope, newest first."),
        );
    let source = Object::new("FieldMapping")
        .description("Where one output field of a mapping comes from.")
        .field(getter::<FieldSource>(
            "field",
            "The output path (`phones`, `customFields.industry`); `*` for a whole-object mapping.",
            TypeRef::named_nn(TypeRef::STRING),
            |f| Some(FieldValue::value(f.field.clone())),
        ))
        .field(getter::<FieldSource>(
            "expression",
            "The JSONata evaluated on the upstream record.",
            TypeRef::named_nn(TypeRef::STRING),
            |f| Some(FieldValue::value(f.expression.clone())),
        ))
        .field(getter::<FieldSource>(
            "level",
            "The level it came from (PLATFORM with no version: the provider file).",
            TypeRef::named_nn("OverrideLevel"),
            |f| {
                Some(FieldValue::value(GqlValue::Enum(async_graphql::Name::new(
                    f.level.as_str(),
                ))))
            },
        ))
        .field(getter::<FieldSource>(
            "version",
            "The override version; null for the provider file.",
            TypeRef::named(TypeRef::INT),
            |f| f.version.map(FieldValue::value),
        ))
        .field(getter::<FieldSource>(
            "source",
            "`provider file` or `override vN`.",
            TypeRef::named_nn(TypeRef::STRING),
            |f| {
                Some(FieldValue::value(match f.version {
                    Some(v) => format!("override v{v}"),
                    None => "provider file".to_string(),
                }))
            },
        ));
    let explanation = Object::new("MappingExplanation")
        .description(
            "How a linked account's resource is mapped after every override level is merged.",
        )
        .field(getter::<ExplainNode>(
            "accountId",
            "The linked account.",
            TypeRef::named_nn(TypeRef::ID),
            |e| Some(FieldValue::value(e.account_id.clone())),
        ))
        .field(getter::<ExplainNode>(
            "provider",
            "Its provider.",
            TypeRef::named_nn(TypeRef::STRING),
            |e| Some(FieldValue::value(e.explanation.provider.clone())),
        ))
        .field(getter::<ExplainNode>(
            "resource",
            "The resource.",
            TypeRef::named_nn(TypeRef::STRING),
            |e| Some(FieldValue::value(e.resource.clone())),
        ))
        .field(getter::<ExplainNode>(
            "fields",
            "Each output field, with its expression and level.",
            TypeRef::named_nn_list_nn("FieldMapping"),
            |e| {
                Some(FieldValue::list(
                    e.explanation
                        .fields
                        .iter()
                        .cloned()
                        .map(FieldValue::owned_any),
                ))
            },
        ))
        .field(getter::<ExplainNode>(
            "request",
            "The resource's operations as they are sent (request patches applied).",
            TypeRef::named_nn("JSON"),
            |e| json(Some(e.explanation.operations.clone())),
        ))
        .field(getter::<ExplainNode>(
            "customFieldTypes",
            "Declared custom field types.",
            TypeRef::named_nn("JSON"),
            |e| json(Some(e.explanation.custom_field_types.clone())),
        ))
        .field(getter::<ExplainNode>(
            "levels",
            "The overrides that took part, lowest level first, as `LEVEL vN`.",
            TypeRef::named_nn_list_nn(TypeRef::STRING),
            |e| {
                Some(FieldValue::list(e.explanation.applied.iter().map(
                    |(s, v)| FieldValue::value(format!("{} v{v}", s.level.as_str())),
                )))
            },
        ));
    (vec![ov, source, explanation], vec![level], vec![input])
}

struct ExplainNode {
    account_id: String,
    resource: String,
    explanation: crate::overrides::Explanation,
}

fn level_arg(ctx: &ResolverContext<'_>, name: &str) -> Result<Option<Level>, Error> {
    match ctx.args.get(name) {
        Some(v) if !v.is_null() => {
            let s = v.enum_name()?;
            Level::parse(s)
                .map(Some)
                .ok_or_else(|| coded(ErrorCode::BadUserInput, format!("unknown level `{s}`")))
        }
        _ => Ok(None),
    }
}

fn opt_string(ctx: &ResolverContext<'_>, name: &str) -> Result<Option<String>, Error> {
    match ctx.args.get(name) {
        Some(v) if !v.is_null() => Ok(Some(v.string()?.to_string())),
        _ => Ok(None),
    }
}

fn author(caller: &Caller) -> String {
    match caller {
        Caller::Admin => "admin".into(),
        Caller::Environment { id } => format!("environment:{id}"),
    }
}

pub(super) fn bad(message: impl Into<String>) -> Error {
    coded(ErrorCode::BadUserInput, message)
}

/// The scope an input names, if the caller may act on it.
pub(super) async fn authorize(
    services: &crate::services::SharedServices,
    caller: &Caller,
    level: Level,
    provider: String,
    resource: String,
    environment_id: Option<String>,
    account_id: Option<String>,
) -> Result<Scope, Error> {
    if services.providers.get(&provider).is_none() {
        let known: Vec<&str> = services.providers.iter().map(|p| p.name.as_str()).collect();
        return Err(bad(format!(
            "unknown provider `{provider}` (known: {})",
            known.join(", ")
        )));
    }
    let (environment_id, account_id) = match level {
        Level::Platform => {
            if *caller != Caller::Admin {
                return Err(coded(
                    ErrorCode::Forbidden,
                    "only the admin key can set PLATFORM overrides",
                ));
            }
            if environment_id.is_some() || account_id.is_some() {
                return Err(bad(
                    "a PLATFORM override takes neither `environmentId` nor `accountId`",
                ));
            }
            (None, None)
        }
        Level::Environment => {
            if account_id.is_some() {
                return Err(bad(
                    "an ENVIRONMENT override takes no `accountId` (use level ACCOUNT)",
                ));
            }
            let env = match (caller, environment_id) {
                (Caller::Environment { id }, None) => id.clone(),
                (Caller::Environment { id }, Some(given)) if *id == given => given,
                // Another environment's id reads like one that does not exist.
                (Caller::Environment { .. }, Some(given)) => {
                    return Err(coded(
                        ErrorCode::NotFound,
                        format!("environment `{given}` not found"),
                    ));
                }
                (Caller::Admin, Some(given)) => {
                    services
                        .store
                        .get_environment(&given)
                        .await
                        .map_err(|e| from_code(&e))?
                        .ok_or_else(|| {
                            coded(
                                ErrorCode::NotFound,
                                format!("environment `{given}` not found"),
                            )
                        })?;
                    given
                }
                (Caller::Admin, None) => {
                    return Err(bad(
                        "with the admin key, an ENVIRONMENT override needs `environmentId`",
                    ));
                }
            };
            (Some(env), None)
        }
        Level::Account => {
            let Some(account) = account_id else {
                return Err(bad("an ACCOUNT override needs `accountId`"));
            };
            let row = visible_account(services, caller, &account)
                .await
                .map_err(|e| from_code(&e))?;
            if environment_id
                .as_ref()
                .is_some_and(|e| *e != row.environment_id)
            {
                return Err(bad("`environmentId` is not the account's environment"));
            }
            if row.provider != provider {
                return Err(bad(format!(
                    "linked account `{account}` uses provider `{}`, not `{provider}`",
                    row.provider
                )));
            }
            (Some(row.environment_id), Some(row.id))
        }
    };
    Ok(Scope {
        level,
        environment_id,
        account_id,
        provider,
        resource,
    })
}

/// Whether the caller may read (or roll back) overrides of this scope.
fn may_touch(caller: &Caller, scope_env: Option<&str>, level: &str) -> bool {
    match caller {
        Caller::Admin => true,
        Caller::Environment { id } => level != "PLATFORM" && scope_env == Some(id.as_str()),
    }
}

/// Reads the spec parts of an `OverrideInput` into an [`OverrideSpec`].
pub(super) fn spec_from_input(input: &Map<String, Value>) -> Result<OverrideSpec, Error> {
    let mut doc = Map::new();
    for key in [
        "fields",
        "remove",
        "responseMapping",
        "request",
        "customFieldTypes",
    ] {
        if let Some(v) = input.get(key).filter(|v| !v.is_null()) {
            doc.insert(key.to_string(), v.clone());
        }
    }
    if let Some(Value::Object(fields)) = doc.get("fields") {
        if let Some((k, _)) = fields.iter().find(|(_, v)| !v.is_string()) {
            return Err(bad(format!(
                "`fields.{k}` must be a JSONata expression as a string"
            )));
        }
    } else if doc.contains_key("fields") {
        return Err(bad(
            "`fields` must be a JSON object of output field -> JSONata string",
        ));
    }
    if doc.get("request").is_some_and(|r| !r.is_object()) {
        return Err(bad(
            "`request` must be a JSON object keyed by operation (`list`, `get`, ...)",
        ));
    }
    let doc = Value::Object(doc);
    serde_path_to_error::deserialize::<_, OverrideSpec>(&doc).map_err(|e| {
        let path = e.path().to_string();
        bad(format!("override input at `{path}`: {}", e.into_inner()))
    })
}

pub(super) fn samples_from_input(input: &Map<String, Value>) -> Result<Option<Vec<Value>>, Error> {
    match input.get("sample") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(list)) if list.iter().all(Value::is_object) => Ok(Some(list.clone())),
        Some(v @ Value::Object(_)) => Ok(Some(vec![v.clone()])),
        Some(_) => Err(bad(
            "`sample` must be an upstream record (a JSON object) or a list of them",
        )),
    }
}

/// Stores a new version of `scope` and puts it in force on this replica at once (the others
/// read it within a poll interval).
async fn store_version(
    services: &crate::services::SharedServices,
    scope: &Scope,
    spec: &OverrideSpec,
    action: &str,
    restored_version: Option<i32>,
    author: String,
) -> Result<OverrideVersion, Error> {
    let new = NewOverrideVersion {
        scope_key: scope.key(),
        level: scope.level.as_str().to_string(),
        environment_id: scope.environment_id.clone(),
        account_id: scope.account_id.clone(),
        provider: scope.provider.clone(),
        resource: scope.resource.clone(),
        spec: serde_json::to_string(spec).map_err(|e| coded(ErrorCode::Internal, e.to_string()))?,
        action: action.to_string(),
        restored_version,
        author,
    };
    // Two writers of one scope at once: the loser takes the next number.
    let mut attempt = 0;
    let stored = loop {
        match services.store.append_override_version(new.clone()).await {
            Err(StoreError::Conflict { .. }) if attempt < 3 => attempt += 1,
            other => break other.map_err(|e| from_code(&e))?,
        }
    };
    services.overrides.apply(&stored);
    Ok(stored)
}

pub(super) fn override_error(e: OverrideError) -> Error {
    coded(e.code(), e.to_string())
}

pub fn query_fields() -> Vec<Field> {
    vec![
        Field::new("overrides", TypeRef::named_nn_list_nn("Override"), |ctx| {
            FieldFuture::new(async move {
                let services = services(&ctx)?;
                let caller = caller(&ctx)?;
                let provider = opt_string(&ctx, "provider")?;
                let resource = opt_string(&ctx, "resource")?;
                let account = opt_string(&ctx, "accountId")?;
                let level = level_arg(&ctx, "level")?;
                let mut found = Vec::new();
                for c in services.overrides.all_current() {
                    let s = &c.scope;
                    if !may_touch(&caller, s.environment_id.as_deref(), s.level.as_str())
                        || provider.as_ref().is_some_and(|p| *p != s.provider)
                        || resource.as_ref().is_some_and(|r| *r != s.resource)
                        || account.as_ref().is_some_and(|a| Some(a) != s.account_id.as_ref())
                        || level.is_some_and(|l| l != s.level)
                    {
                        continue;
                    }
                    if let Some(v) = services.store.override_version(&s.key(), c.version).await.map_err(|e| from_code(&e))? {
                        found.push(v);
                    }
                }
                found.sort_by_key(|v| std::cmp::Reverse(v.seq));
                Ok(Some(FieldValue::list(found.into_iter().map(FieldValue::owned_any))))
            })
        })
        .argument(InputValue::new("provider", TypeRef::named(TypeRef::STRING)))
        .argument(InputValue::new("resource", TypeRef::named(TypeRef::STRING)))
        .argument(InputValue::new("accountId", TypeRef::named(TypeRef::ID)))
        .argument(InputValue::new("level", TypeRef::named("OverrideLevel")))
        .description("The overrides in force that the caller may see (its environment's and its accounts'; all for the admin), newest change first, each with its `history`."),
        Field::new("explainMapping", TypeRef::named_nn("MappingExplanation"), |ctx| {
            FieldFuture::new(async move {
                let services = services(&ctx)?;
                let caller = caller(&ctx)?;
                let account = ctx.args.try_get("accountId")?.string()?.to_string();
                let resource = ctx.args.try_get("resource")?.string()?.to_string();
                let row = visible_account(&services, &caller, &account).await.map_err(|e| from_code(&e))?;
                let explanation = services
                    .overrides
                    .explain(&row.provider, &row.environment_id, &row.id, &resource)
                    .map_err(override_error)?;
                Ok(Some(FieldValue::owned_any(ExplainNode { account_id: row.id, resource, explanation })))
            })
        })
        .argument(InputValue::new("accountId", TypeRef::named_nn(TypeRef::ID)))
        .argument(InputValue::new("resource", TypeRef::named_nn(TypeRef::STRING)))
        .description("How a linked account's resource is mapped: each output field's expression and the level it came from."),
    ]
}

/// Validates an override on the mapping pool: validation evaluates the tenant's expressions
/// on the samples, which must not hold up an async worker.
pub(super) async fn validate_off_the_workers(
    services: &SharedServices,
    scope: &Scope,
    spec: &OverrideSpec,
    samples: Option<Vec<Value>>,
) -> Result<(), Error> {
    let (registry, scope, spec) = (Arc::clone(&services.overrides), scope.clone(), spec.clone());
    services
        .engine
        .off_the_workers(move || registry.validate(&scope, &spec, samples))
        .await
        .map_err(|e| from_code(&e))?
        .map_err(override_error)
}

pub fn mutation_fields() -> Vec<Field> {
    vec![
        Field::new("setOverride", TypeRef::named_nn("Override"), |ctx| {
            FieldFuture::new(async move {
                let services = services(&ctx)?;
                let caller = caller(&ctx)?;
                let input = ctx.args.try_get("input")?.as_value().clone().into_json().map_err(|e| bad(e.to_string()))?;
                let Value::Object(input) = input else {
                    return Err(bad("`input` must be an object"));
                };
                let text = |k: &str| input.get(k).and_then(Value::as_str).map(str::to_string);
                let level = text("level").and_then(|l| Level::parse(&l)).ok_or_else(|| bad("`level` must be PLATFORM, ENVIRONMENT or ACCOUNT"))?;
                let scope = authorize(
                    &services,
                    &caller,
                    level,
                    text("provider").unwrap_or_default(),
                    text("resource").unwrap_or_default(),
                    text("environmentId"),
                    text("accountId"),
                )
                .await?;
                let spec = spec_from_input(&input)?;
                let samples = samples_from_input(&input)?;
                validate_off_the_workers(&services, &scope, &spec, samples).await?;
                let stored = store_version(&services, &scope, &spec, "set", None, author(&caller)).await?;
                Ok(Some(FieldValue::owned_any(stored)))
            })
        })
        .argument(InputValue::new("input", TypeRef::named_nn("OverrideInput")))
        .description("Validates and stores a new version of an override; it applies to the next request (on every replica within seconds)."),
        Field::new("rollbackOverride", TypeRef::named_nn("Override"), |ctx| {
            FieldFuture::new(async move {
                let services = services(&ctx)?;
                let caller = caller(&ctx)?;
                let id = ctx.args.try_get("id")?.string()?.to_string();
                let version = ctx.args.try_get("version")?.i64()?;
                let not_found = || coded(ErrorCode::NotFound, format!("override `{id}` version {version} not found"));
                let key = scope_key_of(&id).ok_or_else(not_found)?;
                let version = i32::try_from(version).map_err(|_| not_found())?;
                let old = services.store.override_version(&key, version).await.map_err(|e| from_code(&e))?.ok_or_else(not_found)?;
                if !may_touch(&caller, old.environment_id.as_deref(), &old.level) {
                    return Err(not_found());
                }
                let level = Level::parse(&old.level).ok_or_else(not_found)?;
                let scope = Scope {
                    level,
                    environment_id: old.environment_id.clone(),
                    account_id: old.account_id.clone(),
                    provider: old.provider.clone(),
                    resource: old.resource.clone(),
                };
                let spec = spec_of(&old);
                // What was valid then must still compile with today's other levels.
                validate_off_the_workers(&services, &scope, &spec, None).await?;
                let stored = store_version(&services, &scope, &spec, "rollback", Some(version), author(&caller)).await?;
                Ok(Some(FieldValue::owned_any(stored)))
            })
        })
        .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)).description("The override's `id`."))
        .argument(InputValue::new("version", TypeRef::named_nn(TypeRef::INT)).description("The version to restore."))
        .description("Restores an earlier version of an override, as a new version (history is kept)."),
    ]
}
