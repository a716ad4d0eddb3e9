//! Environments and their API keys: list, create, rotate, revoke. Keys are shown once, when
//! made; only their hash is stored. An environment's key manages its own environment's keys
//! and nothing else; another environment's key id reads as not found.

use async_graphql::Error;
use async_graphql::dynamic::{Field, FieldFuture, FieldValue, InputValue, Object, TypeRef};

use super::context::{caller, services};
use super::errors::{coded, from_code};
use super::platform::{getter, time};
use crate::access::Caller;
use crate::error::ErrorCode;
use crate::services::SharedServices;
use crate::store::ApiKey;

pub fn types() -> Vec<Object> {
    let key = Object::new("ApiKey")
        .description("An API key of an environment (or the admin's). The key itself is never shown again after it is made.")
        .field(getter::<ApiKey>("id", "The key's id (for `rotateApiKey`, `revokeApiKey`).", TypeRef::named_nn(TypeRef::ID), |k| Some(FieldValue::value(k.id.clone()))))
        .field(getter::<ApiKey>("environmentId", "Its environment; null for an admin key.", TypeRef::named(TypeRef::ID), |k| k.environment_id.clone().map(FieldValue::value)))
        .field(getter::<ApiKey>("prefix", "The first characters of the key, to tell keys apart.", TypeRef::named_nn(TypeRef::STRING), |k| Some(FieldValue::value(k.key_prefix.clone()))))
        .field(getter::<ApiKey>("createdAt", "When the key was made.", TypeRef::named_nn("DateTime"), |k| time(&Some(k.created_at))))
        .field(getter::<ApiKey>("revokedAt", "When the key was revoked; null while it works.", TypeRef::named("DateTime"), |k| time(&k.revoked_at)));
    let made = Object::new("NewApiKey")
        .description("A key just made: `apiKey` is shown this once.")
        .field(getter::<(ApiKey, String)>(
            "key",
            "The stored key.",
            TypeRef::named_nn("ApiKey"),
            |(k, _)| Some(FieldValue::owned_any(k.clone())),
        ))
        .field(getter::<(ApiKey, String)>(
            "apiKey",
            "The key to send as `Authorization: Bearer ...`. Shown once.",
            TypeRef::named_nn(TypeRef::STRING),
            |(_, s)| Some(FieldValue::value(s.clone())),
        ));
    vec![key, made]
}

/// The environment the caller may manage keys of: its own, or any for the admin.
fn environment_for(caller: &Caller, given: Option<String>) -> Result<Option<String>, Error> {
    match (caller, given) {
        (Caller::Admin, given) => Ok(given),
        (Caller::Environment { id }, None) => Ok(Some(id.clone())),
        (Caller::Environment { id }, Some(g)) if *id == g => Ok(Some(g)),
        (Caller::Environment { .. }, Some(g)) => Err(coded(
            ErrorCode::NotFound,
            format!("environment `{g}` not found"),
        )),
    }
}

fn opt_id(
    ctx: &async_graphql::dynamic::ResolverContext<'_>,
    name: &str,
) -> Result<Option<String>, Error> {
    match ctx.args.get(name) {
        Some(v) if !v.is_null() => Ok(Some(v.string()?.to_string())),
        _ => Ok(None),
    }
}

/// A key the caller may manage; others read as not found.
async fn own_key(services: &SharedServices, caller: &Caller, id: &str) -> Result<ApiKey, Error> {
    let not_found = || coded(ErrorCode::NotFound, format!("API key `{id}` not found"));
    let key = services
        .store
        .get_api_key(id)
        .await
        .map_err(|e| from_code(&e))?
        .ok_or_else(not_found)?;
    match caller {
        Caller::Admin => Ok(key),
        Caller::Environment { id: env } if key.environment_id.as_deref() == Some(env) => Ok(key),
        Caller::Environment { .. } => Err(not_found()),
    }
}

async fn make_key(
    services: &SharedServices,
    environment: Option<&str>,
) -> Result<(ApiKey, String), Error> {
    let secret = crate::access::keys::generate();
    let stored = services
        .store
        .insert_api_key(
            environment,
            &crate::access::keys::hash(secret.expose()),
            &crate::access::keys::prefix(secret.expose()),
        )
        .await
        .map_err(|e| from_code(&e))?;
    Ok((stored, secret.expose().to_string()))
}

pub fn query_fields() -> Vec<Field> {
    vec![
        Field::new("environments", TypeRef::named_nn_list_nn("Environment"), |ctx| {
            FieldFuture::new(async move {
                let services = services(&ctx)?;
                let list = match caller(&ctx)? {
                    Caller::Admin => services.store.list_environments().await.map_err(|e| from_code(&e))?,
                    Caller::Environment { id } => services.store.get_environment(&id).await.map_err(|e| from_code(&e))?.into_iter().collect(),
                };
                Ok(Some(FieldValue::list(list.into_iter().map(FieldValue::owned_any))))
            })
        })
        .description("Every environment (admin key), or the caller's own."),
        Field::new("apiKeys", TypeRef::named_nn_list_nn("ApiKey"), |ctx| {
            FieldFuture::new(async move {
                let services = services(&ctx)?;
                let caller = caller(&ctx)?;
                let env = environment_for(&caller, opt_id(&ctx, "environmentId")?)?;
                let keys = services.store.list_api_keys(env.as_deref()).await.map_err(|e| from_code(&e))?;
                Ok(Some(FieldValue::list(keys.into_iter().map(FieldValue::owned_any))))
            })
        })
        .argument(InputValue::new("environmentId", TypeRef::named(TypeRef::ID)).description("With the admin key: one environment's keys (default: every key)."))
        .description("API keys, revoked ones included: the caller's environment's, or any for the admin key."),
    ]
}

pub fn mutation_fields() -> Vec<Field> {
    vec![
        Field::new("createApiKey", TypeRef::named_nn("NewApiKey"), |ctx| {
            FieldFuture::new(async move {
                let services = services(&ctx)?;
                let caller = caller(&ctx)?;
                let Some(env) = environment_for(&caller, opt_id(&ctx, "environmentId")?)? else {
                    return Err(coded(
                        ErrorCode::BadUserInput,
                        "with the admin key, say which `environmentId` the key is for",
                    ));
                };
                if services
                    .store
                    .get_environment(&env)
                    .await
                    .map_err(|e| from_code(&e))?
                    .is_none()
                {
                    return Err(coded(
                        ErrorCode::NotFound,
                        format!("environment `{env}` not found"),
                    ));
                }
                let made = make_key(&services, Some(&env)).await?;
                Ok(Some(FieldValue::owned_any(made)))
            })
        })
        .argument(
            InputValue::new("environmentId", TypeRef::named(TypeRef::ID))
                .description("The environment (an environment's key: its own, the default)."),
        )
        .description("Makes another API key for an environment; the key is shown once."),
        Field::new("rotateApiKey", TypeRef::named_nn("NewApiKey"), |ctx| {
            FieldFuture::new(async move {
                let services = services(&ctx)?;
                let caller = caller(&ctx)?;
                let id = ctx.args.try_get("id")?.string()?.to_string();
                let old = own_key(&services, &caller, &id).await?;
                if old.revoked_at.is_some() {
                    return Err(coded(
                        ErrorCode::BadUserInput,
                        format!("API key `{id}` is already revoked"),
                    ));
                }
                // The new key exists before the old one stops working: no gap for the caller.
                let made = make_key(&services, old.environment_id.as_deref()).await?;
                services
                    .store
                    .revoke_api_key(&id)
                    .await
                    .map_err(|e| from_code(&e))?;
                Ok(Some(FieldValue::owned_any(made)))
            })
        })
        .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
        .description(
            "Replaces a key: makes a new one for the same environment, then revokes the old one.",
        ),
        Field::new("revokeApiKey", TypeRef::named_nn("ApiKey"), |ctx| {
            FieldFuture::new(async move {
                let services = services(&ctx)?;
                let caller = caller(&ctx)?;
                let id = ctx.args.try_get("id")?.string()?.to_string();
                own_key(&services, &caller, &id).await?;
                services
                    .store
                    .revoke_api_key(&id)
                    .await
                    .map_err(|e| from_code(&e))?;
                let key = own_key(&services, &caller, &id).await?;
                Ok(Some(FieldValue::owned_any(key)))
            })
        })
        .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
        .description("Revokes a key at once; requests with it are refused from then on."),
    ]
}
