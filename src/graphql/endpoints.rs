//! The customer's webhook endpoints: `createWebhookEndpoint` (the signing secret shown
//! once), `webhookEndpoints`, `deleteWebhookEndpoint`, each endpoint's deliveries and
//! `redeliverWebhook`. Endpoints belong to the caller's environment.

use async_graphql::dynamic::{Enum, Field, FieldFuture, FieldValue, InputValue, Object, TypeRef};

use super::context::{caller, services};
use super::errors::{coded, from_code};
use super::platform::{getter, time};
use crate::access::Caller;
use crate::error::ErrorCode;
use crate::secret::Secret;
use crate::store::{EndpointDelivery, WebhookEndpoint};

/// The environment of the caller; endpoints are an environment's, not the platform's.
fn environment(caller: &Caller) -> Result<String, async_graphql::Error> {
    caller.environment().map(str::to_owned).ok_or_else(|| {
        coded(
            ErrorCode::Forbidden,
            "webhook endpoints belong to an environment: use the environment's API key",
        )
    })
}

pub fn types() -> (Vec<Object>, Vec<Enum>) {
    let status = Enum::new("WebhookEndpointDeliveryStatus")
        .description("PENDING (queued or being retried), DELIVERED (the endpoint answered 2xx), DEAD (retried for the whole window; replay it with `redeliverWebhook`).")
        .items(["PENDING", "DELIVERED", "DEAD"]);
    let endpoint = Object::new("WebhookEndpoint")
        .description("A URL of the customer's that receives the environment's events, signed.")
        .field(getter::<WebhookEndpoint>(
            "id",
            "The endpoint's id.",
            TypeRef::named_nn(TypeRef::ID),
            |e| Some(FieldValue::value(e.id.clone())),
        ))
        .field(getter::<WebhookEndpoint>(
            "url",
            "Where events are POSTed.",
            TypeRef::named_nn(TypeRef::STRING),
            |e| Some(FieldValue::value(e.url.clone())),
        ))
        .field(getter::<WebhookEndpoint>(
            "types",
            "The event types it receives; empty: all.",
            TypeRef::named_nn_list_nn(TypeRef::STRING),
            |e| {
                Some(FieldValue::list(
                    e.types.iter().map(|t| FieldValue::value(t.clone())),
                ))
            },
        ))
        .field(getter::<WebhookEndpoint>(
            "createdAt",
            "When it was created.",
            TypeRef::named_nn("DateTime"),
            |e| time(&Some(e.created_at)),
        ))
        .field(
            Field::new(
                "deliveries",
                TypeRef::named_nn_list_nn("WebhookEndpointDelivery"),
                |ctx| {
                    FieldFuture::new(async move {
                        let services = services(&ctx)?;
                        let e = ctx.parent_value.try_downcast_ref::<WebhookEndpoint>()?;
                        let last = match ctx.args.get("last") {
                            Some(v) if !v.is_null() => v.u64()?.clamp(1, 500),
                            _ => 20,
                        };
                        let rows = services
                            .store
                            .list_endpoint_deliveries(&e.id, last)
                            .await
                            .map_err(|e| from_code(&e))?;
                        Ok(Some(FieldValue::list(
                            rows.into_iter().map(FieldValue::owned_any),
                        )))
                    })
                },
            )
            .argument(
                InputValue::new("last", TypeRef::named(TypeRef::INT))
                    .description("How many, newest first (default 20, at most 500)."),
            )
            .description("Events offered to this endpoint, newest first."),
        );
    let created = Object::new("NewWebhookEndpoint")
        .description("A new endpoint and its signing secret.")
        .field(getter::<(WebhookEndpoint, Secret)>(
            "endpoint",
            "The endpoint.",
            TypeRef::named_nn("WebhookEndpoint"),
            |(e, _)| Some(FieldValue::owned_any(e.clone())),
        ))
        .field(getter::<(WebhookEndpoint, Secret)>(
            "secret",
            "The key of the `tessera-signature` HMAC. Shown once: store it now.",
            TypeRef::named_nn(TypeRef::STRING),
            |(_, s)| Some(FieldValue::value(s.expose().to_owned())),
        ));
    let delivery = Object::new("WebhookEndpointDelivery")
        .description("One event offered to one endpoint.")
        .field(getter::<EndpointDelivery>(
            "eventId",
            "The event (`tessera-event-id`).",
            TypeRef::named_nn(TypeRef::ID),
            |d| Some(FieldValue::value(d.event_id.clone())),
        ))
        .field(getter::<EndpointDelivery>(
            "attempt",
            "Attempts made so far.",
            TypeRef::named_nn(TypeRef::INT),
            |d| Some(FieldValue::value(d.attempt)),
        ))
        .field(getter::<EndpointDelivery>(
            "status",
            "Where it stands.",
            TypeRef::named_nn("WebhookEndpointDeliveryStatus"),
            |d| {
                Some(FieldValue::value(async_graphql::Value::Enum(
                    async_graphql::Name::new(&d.status),
                )))
            },
        ))
        .field(getter::<EndpointDelivery>(
            "nextAttemptAt",
            "When it is tried next; null once delivered or dead.",
            TypeRef::named("DateTime"),
            |d| time(&d.next_attempt_at),
        ))
        .field(getter::<EndpointDelivery>(
            "deadLettered",
            "Whether it was given up on after the retry window.",
            TypeRef::named_nn(TypeRef::BOOLEAN),
            |d| Some(FieldValue::value(d.status == "DEAD")),
        ))
        .field(getter::<EndpointDelivery>(
            "lastStatus",
            "The endpoint's HTTP status at the last attempt.",
            TypeRef::named(TypeRef::INT),
            |d| d.last_status.map(FieldValue::value),
        ))
        .field(getter::<EndpointDelivery>(
            "lastError",
            "Why the last attempt failed.",
            TypeRef::named(TypeRef::STRING),
            |d| d.last_error.clone().map(FieldValue::value),
        ))
        .field(getter::<EndpointDelivery>(
            "deliveredAt",
            "When the endpoint took it.",
            TypeRef::named("DateTime"),
            |d| time(&d.delivered_at),
        ));
    (vec![endpoint, created, delivery], vec![status])
}

pub fn query_fields() -> Vec<Field> {
    vec![
        Field::new(
            "webhookEndpoints",
            TypeRef::named_nn_list_nn("WebhookEndpoint"),
            |ctx| {
                FieldFuture::new(async move {
                    let services = services(&ctx)?;
                    let env = environment(&caller(&ctx)?)?;
                    let rows = services
                        .store
                        .list_webhook_endpoints(&env)
                        .await
                        .map_err(|e| from_code(&e))?;
                    Ok(Some(FieldValue::list(
                        rows.into_iter().map(FieldValue::owned_any),
                    )))
                })
            },
        )
        .description("The environment's webhook endpoints."),
    ]
}

pub fn mutation_fields() -> Vec<Field> {
    vec![
        Field::new("createWebhookEndpoint", TypeRef::named_nn("NewWebhookEndpoint"), |ctx| {
            FieldFuture::new(async move {
                let services = services(&ctx)?;
                let env = environment(&caller(&ctx)?)?;
                let url_text = ctx.args.try_get("url")?.string()?.to_string();
                let url = url::Url::parse(&url_text).map_err(|e| coded(ErrorCode::BadUserInput, format!("`url` is not a URL: {e}")))?;
                crate::webhooks::outbound::check_destination(&url, &services.upstreams)
                    .await
                    .map_err(|m| coded(ErrorCode::BadUserInput, m))?;
                let types: Vec<String> = match ctx.args.get("types") {
                    Some(v) if !v.is_null() => v.list()?.iter().map(|t| t.string().map(str::to_owned)).collect::<Result<_, _>>()?,
                    _ => Vec::new(),
                };
                let id = uuid::Uuid::new_v4().to_string();
                let secret = Secret::new(format!("whsec_{}", crate::access::keys::generate().expose().trim_start_matches("tsk_")));
                let endpoint = WebhookEndpoint {
                    secret: services.vault.seal_secret(&crate::webhooks::outbound::endpoint_context(&id), &secret),
                    id,
                    environment_id: env,
                    url: url.to_string(),
                    types,
                    created_at: chrono::Utc::now(),
                };
                services.store.insert_webhook_endpoint(endpoint.clone()).await.map_err(|e| from_code(&e))?;
                Ok(Some(FieldValue::owned_any((endpoint, secret))))
            })
        })
        .argument(InputValue::new("url", TypeRef::named_nn(TypeRef::STRING)))
        .argument(InputValue::new("types", TypeRef::named_nn_list(TypeRef::STRING)).description("Only these event types (e.g. `contact.updated`); omit for all."))
        .description("Registers an endpoint for the environment's events. Each is POSTed as JSON with `tessera-signature` and `tessera-event-id`, retried with backoff for 24 h, then dead-lettered."),
        Field::new("deleteWebhookEndpoint", TypeRef::named_nn(TypeRef::BOOLEAN), |ctx| {
            FieldFuture::new(async move {
                let services = services(&ctx)?;
                let env = environment(&caller(&ctx)?)?;
                let id = ctx.args.try_get("id")?.string()?.to_string();
                let deleted = services.store.delete_webhook_endpoint(&env, &id).await.map_err(|e| from_code(&e))?;
                if !deleted {
                    return Err(coded(ErrorCode::NotFound, format!("webhook endpoint `{id}` not found")));
                }
                Ok(Some(FieldValue::value(true)))
            })
        })
        .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
        .description("Deletes an endpoint and its queued deliveries."),
        Field::new("redeliverWebhook", TypeRef::named_nn("WebhookEndpointDelivery"), |ctx| {
            FieldFuture::new(async move {
                let services = services(&ctx)?;
                let env = environment(&caller(&ctx)?)?;
                let event_id = ctx.args.try_get("eventId")?.string()?.to_string();
                let endpoint_id = ctx.args.try_get("endpointId")?.string()?.to_string();
                let not_found = || coded(ErrorCode::NotFound, "no such endpoint or event in this environment");
                let endpoint = services.store.get_webhook_endpoint(&endpoint_id).await.map_err(|e| from_code(&e))?.filter(|e| e.environment_id == env).ok_or_else(not_found)?;
                services.store.get_unified_event(&event_id).await.map_err(|e| from_code(&e))?.filter(|e| e.environment_id == env).ok_or_else(not_found)?;
                let delivery = services.store.redeliver(&endpoint.id, &event_id).await.map_err(|e| from_code(&e))?;
                services.events.outbound.notify_one();
                Ok(Some(FieldValue::owned_any(delivery)))
            })
        })
        .argument(InputValue::new("eventId", TypeRef::named_nn(TypeRef::ID)))
        .argument(InputValue::new("endpointId", TypeRef::named_nn(TypeRef::ID)))
        .description("Offers an event to an endpoint again (a dead letter, or an event older than the endpoint), with a new retry window."),
    ]
}
