//! Attio webhooks (vendors.md §8 Webhooks): `POST|GET /v2/webhooks` and
//! `DELETE /v2/webhooks/{webhook_id}` behind the API gate, and one delivery per record
//! change to every webhook subscribed to its event type.
//!
//! Choices where vendors.md is silent or tagged [M]/[T]:
//! - A webhook's `secret` is shown in the create answer only, as Attio does; listings omit
//!   it. The same target URL with the same event type and filter twice is a 409.
//! - Subscription filters understand `{"$and"|"$or": [{"field": "id.object_id",
//!   "operator": "equals", "value": ...}]}`; any other field never matches.
//! - Deliveries carry ids only (`{webhook_id, events: [{event_type, id, actor}]}`), up to
//!   ten events per POST, signed with `Attio-Signature` and the legacy `X-Attio-Signature`
//!   (both hex HMAC-SHA256 of the raw body under the secret), with an `Idempotency-Key`
//!   that stays the same across retries of one delivery.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use chrono::Utc;
use serde_json::{Value, json};

use super::{Attio, PROVIDER, error};
use crate::attio_data::{MEMBER_ID, Object, TOKEN_ACTOR_ID, WORKSPACE_ID, attio_time};
use crate::control::{Reject, control_error};
use crate::webhooks::{
    Action, Attempt, Change, Delivery, Outgoing, Pending, Resource, Snapshot, Source, Subscription,
    WebhookDialect, hmac_sha256, is_web_url, sha256_hex,
};

type S = State<Arc<Attio>>;

/// The private field of a pending event that names it, for the delivery's Idempotency-Key.
const KEY: &str = "_delivery_key";

const EVENT_TYPES: [&str; 6] = [
    "record.created",
    "record.updated",
    "record.deleted",
    "record.merged",
    "list-entry.created",
    "note.created",
];

pub(super) fn routes() -> Router<Arc<Attio>> {
    Router::new()
        .route(
            "/v2/webhooks",
            get(|State(a): S| async move { a.list_webhooks() })
                .post(|State(a): S, body: Bytes| async move { a.add_webhook(&body) }),
        )
        .route(
            "/v2/webhooks/{webhook_id}",
            delete(|State(a): S, Path(id): Path<String>| async move { a.delete_webhook(&id) }),
        )
}

fn bad(message: &str) -> Reject {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "validation_type",
        message,
    )
    .into()
}

fn object_of(resource: Resource) -> Object {
    match resource {
        Resource::Contacts => Object::People,
        Resource::Companies => Object::Companies,
        Resource::Deals => Object::Deals,
    }
}

fn event_type(action: Action) -> &'static str {
    match action {
        Action::Created => "record.created",
        Action::Updated => "record.updated",
        Action::Deleted => "record.deleted",
    }
}

/// Whether one subscription's filter lets an event about `object` through.
fn filter_passes(filter: &Value, object: Object) -> bool {
    let clause = |c: &Value| {
        c.get("field").and_then(Value::as_str) == Some("id.object_id")
            && c.get("operator").and_then(Value::as_str) == Some("equals")
            && c.get("value").and_then(Value::as_str) == Some(object.object_id())
    };
    match filter {
        Value::Null => true,
        Value::Object(m) => {
            if let Some(all) = m.get("$and").and_then(Value::as_array) {
                all.iter().all(clause)
            } else if let Some(any) = m.get("$or").and_then(Value::as_array) {
                any.iter().any(clause)
            } else {
                false
            }
        }
        _ => false,
    }
}

fn wants(webhook: &Subscription, kind: &str, object: Object) -> bool {
    webhook
        .data
        .get("subscriptions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|s| {
            s.get("event_type").and_then(Value::as_str) == Some(kind)
                && filter_passes(s.get("filter").unwrap_or(&Value::Null), object)
        })
}

impl Attio {
    fn list_webhooks(&self) -> Response {
        let data: Vec<Value> = self
            .control
            .webhooks
            .live_subscriptions(PROVIDER)
            .into_iter()
            .map(|s| {
                let mut d = s.data;
                if let Some(m) = d.as_object_mut() {
                    m.remove("secret");
                }
                d
            })
            .collect();
        Json(json!({ "data": data })).into_response()
    }

    fn add_webhook(&self, body: &Bytes) -> Result<Response, Reject> {
        let input: Value = serde_json::from_slice(body)
            .map_err(|_| bad("Body payload validation error: expected a JSON object."))?;
        let data = input
            .get("data")
            .ok_or_else(|| bad("Body payload validation error: data is required."))?;
        let url = data
            .get("target_url")
            .and_then(Value::as_str)
            .filter(|u| is_web_url(u))
            .ok_or_else(|| bad("Body payload validation error: target_url must be a URL."))?
            .to_owned();
        let subs = data
            .get("subscriptions")
            .and_then(Value::as_array)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad("Body payload validation error: subscriptions are required."))?;
        let mut clean = Vec::new();
        for s in subs {
            let kind = s
                .get("event_type")
                .and_then(Value::as_str)
                .filter(|k| EVENT_TYPES.contains(k))
                .ok_or_else(|| bad("Body payload validation error: unknown event_type."))?;
            let filter = s.get("filter").cloned().unwrap_or(Value::Null);
            clean.push(json!({"event_type": kind, "filter": filter}));
        }
        let webhooks = &self.control.webhooks;
        for existing in webhooks.live_subscriptions(PROVIDER) {
            let same_url = existing.data.get("target_url").and_then(Value::as_str) == Some(&url);
            let overlap = existing
                .data
                .get("subscriptions")
                .and_then(Value::as_array)
                .is_some_and(|old| old.iter().any(|o| clean.contains(o)));
            if same_url && overlap {
                return Err(error(
                    StatusCode::CONFLICT,
                    "invalid_request_error",
                    "conflict",
                    "A webhook with this target URL, event type and filter already exists.",
                )
                .into());
            }
        }
        let id = self.control.next_uuid();
        let secret = sha256_hex(&[b"attio-webhook", id.as_bytes()]);
        let record = json!({
            "target_url": url,
            "subscriptions": clean,
            "id": {"workspace_id": WORKSPACE_ID, "webhook_id": id},
            "status": "active",
            "created_at": attio_time(Utc::now()),
            "secret": secret,
        });
        webhooks.put_subscription(
            PROVIDER,
            Subscription {
                id: id.clone(),
                expires_at: None,
                data: record.clone(),
            },
        );
        Ok(Json(json!({ "data": record })).into_response())
    }

    fn delete_webhook(&self, id: &str) -> Result<Response, Reject> {
        let webhooks = &self.control.webhooks;
        if webhooks.live_subscription(PROVIDER, id).is_none() {
            return Err(error(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "not_found",
                &format!("Webhook with ID \"{id}\" not found."),
            )
            .into());
        }
        webhooks.remove_subscription(PROVIDER, id);
        Ok(Json(json!({})).into_response())
    }

    /// Tells the webhook machinery about a change (it may run under the store lock).
    pub(super) fn report(&self, object: Object, id: &str, action: Action, source: Source) {
        let resource = match object {
            Object::People => Resource::Contacts,
            Object::Companies => Resource::Companies,
            Object::Deals => Resource::Deals,
        };
        let change = Change {
            resource,
            id: id.to_owned(),
            action,
            source,
            fields: Vec::new(),
            record: None,
            previous: None,
            at: Utc::now(),
        };
        self.control.webhooks.changed(PROVIDER, &change);
    }
}

impl WebhookDialect for Attio {
    fn deliveries(&self, change: &Change, snapshot: &Snapshot) -> Vec<Pending> {
        let object = object_of(change.resource);
        let kind = event_type(change.action);
        let actor = match change.source {
            Source::Api => json!({"type": "api-token", "id": TOKEN_ACTOR_ID}),
            Source::Touch => json!({"type": "workspace-member", "id": MEMBER_ID}),
        };
        snapshot
            .subscriptions
            .iter()
            .filter(|w| wants(w, kind, object))
            .filter_map(|w| {
                let url = w.data.get("target_url")?.as_str()?.to_owned();
                Some(Pending {
                    url,
                    subscription: Some(w.id.clone()),
                    event: json!({
                        // Stripped before sending: what makes the Idempotency-Key unique.
                        KEY: self.control.next_uuid(),
                        "event_type": kind,
                        "id": {
                            "workspace_id": WORKSPACE_ID,
                            "object_id": object.object_id(),
                            "record_id": change.id,
                        },
                        "actor": actor,
                    }),
                })
            })
            .collect()
    }

    fn batch_limit(&self) -> Option<usize> {
        Some(10)
    }

    fn request(&self, delivery: &Delivery, attempt: &Attempt<'_>) -> Outgoing {
        let webhook_id = delivery.subscription.clone().unwrap_or_default();
        let mut keys = Vec::new();
        let events: Vec<Value> = delivery
            .events
            .iter()
            .map(|e| {
                let mut e = e.clone();
                if let Some(m) = e.as_object_mut()
                    && let Some(Value::String(k)) = m.remove(KEY)
                {
                    keys.push(k);
                }
                e
            })
            .collect();
        let body = json!({"webhook_id": webhook_id, "events": events}).to_string();
        let mut secret = attempt
            .subscription
            .and_then(|s| s.data.get("secret"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if attempt.wrong_signature {
            secret.push_str("-wrong");
        }
        let signature: String = hmac_sha256(secret.as_bytes(), &[body.as_bytes()])
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Outgoing {
            url: delivery.url.clone(),
            headers: vec![
                ("Content-Type".to_owned(), "application/json".to_owned()),
                ("Attio-Signature".to_owned(), signature.clone()),
                ("X-Attio-Signature".to_owned(), signature),
                (
                    "Idempotency-Key".to_owned(),
                    sha256_hex(&[webhook_id.as_bytes(), keys.join(",").as_bytes()]),
                ),
            ],
            body: body.into_bytes(),
        }
    }

    fn touch(
        &self,
        resource: Resource,
        id: Option<&str>,
        action: Action,
    ) -> Result<String, Reject> {
        let object = object_of(resource);
        let n = self.control.webhooks.unique();
        let name_body = |text: String| {
            let value = match object {
                Object::People => json!({"first_name": "Touched", "last_name": text}),
                _ => json!(text),
            };
            Bytes::from(json!({"data": {"values": {"name": value}}}).to_string())
        };
        let target = || -> Result<String, Reject> {
            let found = match id {
                Some(id) => self.record_exists(object, id).then(|| id.to_owned()),
                None => self.any_record(object),
            };
            found.ok_or_else(|| {
                control_error(
                    StatusCode::NOT_FOUND,
                    format!("no {} record {}", object.slug(), id.unwrap_or_default()),
                )
            })
        };
        match action {
            Action::Created => {
                let (id, _) = self.create_record(
                    object.slug(),
                    &name_body(format!("Created in Attio #{n}")),
                    Source::Touch,
                )?;
                Ok(id)
            }
            Action::Updated => {
                let id = target()?;
                self.update(
                    object.slug(),
                    &id,
                    &name_body(format!("Edited in Attio #{n}")),
                    Source::Touch,
                    false,
                )?;
                Ok(id)
            }
            Action::Deleted => {
                let id = target()?;
                self.delete(object.slug(), &id, Source::Touch)?;
                Ok(id)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_filters_on_the_object_id() {
        let only_people = json!({"$and": [{"field": "id.object_id", "operator": "equals", "value": Object::People.object_id()}]});
        assert!(filter_passes(&only_people, Object::People));
        assert!(!filter_passes(&only_people, Object::Deals));
        assert!(filter_passes(&Value::Null, Object::Deals));
        assert!(!filter_passes(
            &json!({"$and": [{"field": "id.list_id", "operator": "equals", "value": "x"}]}),
            Object::People
        ));
    }
}
