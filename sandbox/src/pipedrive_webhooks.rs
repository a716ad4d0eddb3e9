//! Pipedrive webhooks (vendors.md §4 Webhooks): `POST|GET /api/v1/webhooks` and
//! `DELETE /api/v1/webhooks/{id}` behind the API gate, and one delivery per change to every
//! webhook whose `event_action` and `event_object` match it.
//!
//! Choices where vendors.md is silent or tagged [M]/[T]:
//! - `event_action` takes the v2 words (`create`, `change`, `delete`, `*`) and the v1 ones
//!   (`added`, `updated`, `deleted`, `merged`) for either version; `event_object` takes
//!   Pipedrive's object names, but only persons, organizations and deals send anything.
//!   A missing or invalid field is 400 in the API's error envelope (wording the sandbox's);
//!   a 41st webhook is 400 as well.
//! - Webhook ids count from 1 per sandbox (reset included); `user_id` defaults to the
//!   token's user and must be a company user.
//! - v2 deliveries: `data` is the record as the v2 API returns it (`null` on delete),
//!   `previous` the v2 fields the change altered with their old values (`null` on create,
//!   the whole record on delete). v1 webhooks get the v1 envelope with `current` and
//!   `previous` in the v2 record shape (the v1 record shapes are not modelled).
//! - `change_source` is `"api"` through the API and `"app"` for `/touch`; `meta.user_id`
//!   and `permitted_user_ids` name the webhook's user.
//! - Each attempt stamps `last_delivery_time` and `last_http_status` (`null` when no
//!   answer came) on the webhook.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use super::{Entity, OWNER_IDS, PROVIDER, Pipedrive, error};
use crate::control::{Reject, control_error};
use crate::pipedrive_data::v1_time;
use crate::webhooks::{
    Action, Attempt, Change, Delivery, Outgoing, Pending, Resource, Snapshot, Source, Subscription,
    WebhookDialect, changed_fields, id_text, is_web_url,
};

/// The sandbox company and its domain, as deliveries name them.
const COMPANY_ID: u64 = 7_315_210;
const HOST: &str = "tessera-sandbox.pipedrive.com";
/// Per user (vendors.md §4).
const MAX_WEBHOOKS: usize = 40;
const EVENT_ACTIONS: [&str; 9] = [
    "create", "change", "delete", "*", "added", "updated", "deleted", "merged", "merge",
];
const EVENT_OBJECTS: [&str; 11] = [
    "activity",
    "deal",
    "lead",
    "note",
    "organization",
    "person",
    "pipeline",
    "product",
    "stage",
    "user",
    "*",
];

type S = State<Arc<Pipedrive>>;

pub(super) fn routes() -> Router<Arc<Pipedrive>> {
    Router::new()
        .route(
            "/api/v1/webhooks",
            get(|State(p): S| async move { p.list_webhooks() })
                .post(|State(p): S, body: Bytes| async move { p.add_webhook(&body) }),
        )
        .route(
            "/api/v1/webhooks/{id}",
            delete(
                |State(p): S, id: Result<Path<String>, PathRejection>| async move {
                    p.delete_webhook(id)
                },
            ),
        )
}

fn ok(status: StatusCode, data: Option<Value>) -> Response {
    let mut body = json!({ "status": "ok", "success": true });
    if let (Some(data), Some(fields)) = (data, body.as_object_mut()) {
        fields.insert("data".into(), data);
    }
    (status, Json(body)).into_response()
}

fn bad(message: &str) -> Reject {
    error(StatusCode::BAD_REQUEST, message).into()
}

/// The v2 action an `event_action` stands for (v1 spelled them differently).
fn normalized_action(raw: &str) -> &str {
    match raw {
        "added" => "create",
        "updated" => "change",
        "deleted" => "delete",
        "merged" => "merge",
        other => other,
    }
}

fn v2_action(action: Action) -> &'static str {
    match action {
        Action::Created => "create",
        Action::Updated => "change",
        Action::Deleted => "delete",
    }
}

fn v1_action(action: Action) -> &'static str {
    match action {
        Action::Created => "added",
        Action::Updated => "updated",
        Action::Deleted => "deleted",
    }
}

fn entity_of(resource: Resource) -> Entity {
    match resource {
        Resource::Contacts => Entity::Persons,
        Resource::Companies => Entity::Organizations,
        Resource::Deals => Entity::Deals,
    }
}

fn object_name(resource: Resource) -> &'static str {
    match resource {
        Resource::Contacts => "person",
        Resource::Companies => "organization",
        Resource::Deals => "deal",
    }
}

fn matches(webhook: &Subscription, object: &str, action: &str) -> bool {
    let field = |name: &str| webhook.data.get(name).and_then(Value::as_str);
    field("event_object").is_some_and(|o| o == "*" || o == object)
        && field("event_action").is_some_and(|a| a == "*" || normalized_action(a) == action)
}

impl Pipedrive {
    fn list_webhooks(&self) -> Response {
        let data: Vec<Value> = self
            .control
            .webhooks
            .live_subscriptions(PROVIDER)
            .into_iter()
            .map(|s| s.data)
            .collect();
        ok(StatusCode::OK, Some(Value::Array(data)))
    }

    fn add_webhook(&self, body: &Bytes) -> Result<Response, Reject> {
        let Ok(Value::Object(input)) = serde_json::from_slice::<Value>(body) else {
            return Err(bad("The request body must be a JSON object."));
        };
        let text = |name: &str| -> Result<Option<String>, Reject> {
            match input.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(bad(&format!("The {name} field must be a string."))),
            }
        };
        let url = text("subscription_url")?
            .filter(|u| !u.trim().is_empty())
            .ok_or_else(|| bad("The subscription_url field is required."))?;
        if !is_web_url(&url) {
            return Err(bad("The subscription_url must be a valid URL."));
        }
        let action = text("event_action")?
            .filter(|a| EVENT_ACTIONS.contains(&a.as_str()))
            .ok_or_else(|| {
                bad("The event_action field must be one of create, change, delete, *.")
            })?;
        let object = text("event_object")?
            .filter(|o| EVENT_OBJECTS.contains(&o.as_str()))
            .ok_or_else(|| {
                bad(&format!(
                    "The event_object field must be one of {}.",
                    EVENT_OBJECTS.join(", ")
                ))
            })?;
        let version = text("version")?.unwrap_or_else(|| "2.0".to_owned());
        if version != "1.0" && version != "2.0" {
            return Err(bad("The version field must be 1.0 or 2.0."));
        }
        let user_id = match input.get("user_id") {
            None | Some(Value::Null) => OWNER_IDS[0],
            Some(v) => id_text(v)
                .and_then(|t| t.parse::<u64>().ok())
                .filter(|id| OWNER_IDS.contains(id))
                .ok_or_else(|| bad("The user_id must be a user of the company."))?,
        };
        let name = text("name")?;
        let auth_user = text("http_auth_user")?;
        let auth_password = text("http_auth_password")?;
        let webhooks = &self.control.webhooks;
        if webhooks.live_subscriptions(PROVIDER).len() >= MAX_WEBHOOKS {
            return Err(bad(&format!(
                "A user can have at most {MAX_WEBHOOKS} webhooks: delete one first."
            )));
        }
        let id = webhooks.next_serial(PROVIDER);
        let data = json!({
            "id": id,
            "company_id": COMPANY_ID,
            "owner_id": OWNER_IDS[0],
            "user_id": user_id,
            "event_action": action,
            "event_object": object,
            "subscription_url": url,
            "version": version,
            "is_active": 1,
            "add_time": v1_time(Utc::now()),
            "remove_time": null,
            "type": "general",
            "http_auth_user": auth_user,
            "http_auth_password": auth_password,
            "remove_reason": null,
            "last_delivery_time": null,
            "last_http_status": null,
            "admin_id": OWNER_IDS[0],
            "name": name,
        });
        webhooks.put_subscription(
            PROVIDER,
            Subscription {
                id: id.to_string(),
                expires_at: None,
                data: data.clone(),
            },
        );
        Ok(ok(StatusCode::CREATED, Some(data)))
    }

    fn delete_webhook(&self, id: Result<Path<String>, PathRejection>) -> Response {
        let id = id.map(|Path(id)| id).unwrap_or_default();
        let webhooks = &self.control.webhooks;
        if webhooks.live_subscription(PROVIDER, id.trim()).is_none() {
            return error(StatusCode::NOT_FOUND, "Webhook not found");
        }
        webhooks.remove_subscription(PROVIDER, id.trim());
        ok(StatusCode::OK, None)
    }

    /// Tells the webhook machinery about a change to a record of `entity`.
    pub(super) fn report(
        &self,
        entity: Entity,
        id: u64,
        action: Action,
        source: Source,
        previous: Option<&Value>,
        record: Option<&Value>,
    ) {
        let resource = match entity {
            Entity::Persons => Resource::Contacts,
            Entity::Organizations => Resource::Companies,
            Entity::Deals => Resource::Deals,
            _ => return,
        };
        let change = Change {
            resource,
            id: id.to_string(),
            action,
            source,
            fields: Vec::new(),
            record: record.cloned(),
            previous: previous.cloned(),
            at: Utc::now(),
        };
        self.control.webhooks.changed(PROVIDER, &change);
    }

    fn touch_target(&self, entity: Entity, id: Option<&str>) -> Result<u64, Reject> {
        let store = self.read();
        let found = match id {
            Some(id) => id
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| store.live(entity, *n).is_some()),
            None => store
                .table(entity)
                .values()
                .find(|r| !r.deleted)
                .map(|r| r.id),
        };
        found.ok_or_else(|| {
            control_error(
                StatusCode::NOT_FOUND,
                format!("no live {} {}", entity.singular(), id.unwrap_or_default()),
            )
        })
    }

    /// The v2 delivery body, `meta.attempt` filled in per attempt.
    fn v2_event(&self, change: &Change, webhook: &Subscription, correlation: &str) -> Value {
        let user = webhook
            .data
            .get("user_id")
            .and_then(id_text)
            .unwrap_or_default();
        let previous = match change.action {
            Action::Created => Value::Null,
            Action::Updated => match (&change.previous, &change.record) {
                (Some(before), Some(after)) => Value::Object(changed_fields(before, after)),
                _ => Value::Null,
            },
            Action::Deleted => change.previous.clone().unwrap_or(Value::Null),
        };
        json!({
            "meta": {
                "action": v2_action(change.action),
                "entity": object_name(change.resource),
                "company_id": COMPANY_ID.to_string(),
                "correlation_id": correlation,
                "entity_id": change.id,
                "id": self.control.next_uuid(),
                "is_bulk_edit": false,
                "timestamp": change.at.to_rfc3339_opts(SecondsFormat::Millis, true),
                "type": "general",
                "user_id": user,
                "version": "2.0",
                "webhook_id": webhook.id,
                "webhook_owner_id": user,
                "change_source": change_source(change.source),
                "attempt": 1,
                "host": HOST,
                "permitted_user_ids": [user],
            },
            "data": change.record.clone().unwrap_or(Value::Null),
            "previous": previous,
        })
    }

    /// The v1 delivery body, `retry` filled in per attempt.
    fn v1_event(change: &Change, webhook: &Subscription) -> Value {
        let user = webhook.data.get("user_id").cloned().unwrap_or(Value::Null);
        let object = object_name(change.resource);
        let action = v1_action(change.action);
        json!({
            "v": 1,
            "matches_filters": { "current": [] },
            "meta": {
                "v": 1,
                "action": action,
                "object": object,
                "id": change.id.parse::<u64>().map_or_else(|_| json!(change.id), |n| json!(n)),
                "company_id": COMPANY_ID,
                "user_id": user,
                "host": HOST,
                "timestamp": change.at.timestamp(),
                "timestamp_micro": change.at.timestamp_micros(),
                "change_source": change_source(change.source),
                "is_bulk_update": false,
                "permitted_user_ids": [user],
                "webhook_id": webhook.id,
                "trans_pending": false,
            },
            "retry": 0,
            "current": change.record.clone().unwrap_or(Value::Null),
            "previous": change.previous.clone().unwrap_or(Value::Null),
            "event": format!("{action}.{object}"),
        })
    }
}

fn change_source(source: Source) -> &'static str {
    match source {
        Source::Api => "api",
        Source::Touch => "app",
    }
}

fn body_for(entity: Entity, name: String) -> Bytes {
    let key = if entity == Entity::Deals {
        "title"
    } else {
        "name"
    };
    let mut body = Map::new();
    body.insert(key.into(), json!(name));
    Bytes::from(Value::Object(body).to_string())
}

impl WebhookDialect for Pipedrive {
    fn deliveries(&self, change: &Change, snapshot: &Snapshot) -> Vec<Pending> {
        let object = object_name(change.resource);
        let action = v2_action(change.action);
        let correlation = self.control.next_uuid();
        snapshot
            .subscriptions
            .iter()
            .filter(|w| matches(w, object, action))
            .filter_map(|w| {
                let url = w.data.get("subscription_url")?.as_str()?.to_owned();
                let event = if w.data.get("version").and_then(Value::as_str) == Some("1.0") {
                    Self::v1_event(change, w)
                } else {
                    self.v2_event(change, w, &correlation)
                };
                Some(Pending {
                    url,
                    subscription: Some(w.id.clone()),
                    event,
                })
            })
            .collect()
    }

    fn request(&self, delivery: &Delivery, attempt: &Attempt<'_>) -> Outgoing {
        let mut event = delivery.events.first().cloned().unwrap_or(Value::Null);
        if let Some(fields) = event.as_object_mut() {
            if fields.contains_key("v") {
                fields.insert("retry".into(), json!(attempt.number.saturating_sub(1)));
            } else if let Some(meta) = fields.get_mut("meta").and_then(Value::as_object_mut) {
                meta.insert("attempt".into(), json!(attempt.number));
            }
        }
        let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
        let credential = |name: &str| {
            attempt
                .subscription
                .and_then(|s| s.data.get(name))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        if let Some(user) = credential("http_auth_user") {
            let mut password = credential("http_auth_password").unwrap_or_default();
            if attempt.wrong_signature {
                password.push_str("-wrong");
            }
            let pair =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            headers.push(("Authorization".to_owned(), format!("Basic {pair}")));
        }
        Outgoing {
            url: delivery.url.clone(),
            headers,
            body: event.to_string().into_bytes(),
        }
    }

    fn delivered(&self, webhook: &mut Subscription, status: Option<u16>, at: DateTime<Utc>) {
        if let Some(fields) = webhook.data.as_object_mut() {
            fields.insert("last_delivery_time".into(), json!(v1_time(at)));
            fields.insert("last_http_status".into(), json!(status));
        }
    }

    fn touch(
        &self,
        resource: Resource,
        id: Option<&str>,
        action: Action,
    ) -> Result<String, Reject> {
        let entity = entity_of(resource);
        let n = self.control.webhooks.unique();
        let label = match entity {
            Entity::Persons => "Person",
            Entity::Organizations => "Organization",
            _ => "Deal",
        };
        match action {
            Action::Created => {
                let body = body_for(entity, format!("Touched {label} {n}"));
                let (id, _) = self.create_record(entity, &body, Source::Touch)?;
                Ok(id.to_string())
            }
            Action::Updated => {
                let id = self.touch_target(entity, id)?;
                let body = body_for(entity, format!("Edited in Pipedrive #{n}"));
                self.update_record(entity, id, &body, Source::Touch)?;
                Ok(id.to_string())
            }
            Action::Deleted => {
                let id = self.touch_target(entity, id)?;
                self.delete_record(entity, id, Source::Touch)?;
                Ok(id.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook(object: &str, action: &str) -> Subscription {
        Subscription {
            id: "1".into(),
            expires_at: None,
            data: json!({ "event_object": object, "event_action": action }),
        }
    }

    #[test]
    fn webhooks_match_object_and_action_in_either_vocabulary() {
        assert!(matches(&webhook("person", "change"), "person", "change"));
        assert!(matches(&webhook("person", "updated"), "person", "change"));
        assert!(matches(&webhook("*", "*"), "deal", "delete"));
        assert!(!matches(&webhook("deal", "*"), "person", "create"));
        assert!(!matches(&webhook("person", "added"), "person", "delete"));
    }
}
