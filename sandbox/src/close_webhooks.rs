//! Close webhooks (vendors.md §9 Webhooks): `POST|GET /api/v1/webhook/` and
//! `DELETE /api/v1/webhook/{id}/` behind the API gate, and one delivery per change to every
//! subscription listing its object type and action.
//!
//! Choices where vendors.md is silent or tagged [M]/[T]:
//! - `signature_key` (64 hex characters) is shown in the create answer only; listings omit
//!   it. A 41st subscription is a 400.
//! - The event body is vendors.md's: the whole object in `data` (empty on delete),
//!   `previous_data` with the old values of the changed fields (the whole object on
//!   delete), `changed_fields` on updates. Events go out at once (Close's consolidation
//!   delay for updates is not modelled), one per POST.
//! - `close-sig-timestamp` is the time of each attempt, so a retried delivery is signed
//!   again.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use chrono::Utc;
use serde_json::{Map, Value, json};

use super::{Close, PROVIDER, error, field_error};
use crate::close_data::{Kind, ORGANIZATION_ID, Store, USER_ID, close_time};
use crate::control::{Reject, control_error};
use crate::webhooks::{
    Action, Attempt, Change, Delivery, Outgoing, Pending, Resource, Snapshot, Source, Subscription,
    WebhookDialect, changed_fields, hmac_sha256, is_web_url, sha256_hex,
};

type S = State<Arc<Close>>;

const MAX_SUBSCRIPTIONS: usize = 40;

pub(super) fn routes() -> Router<Arc<Close>> {
    Router::new()
        .route(
            "/api/v1/webhook/",
            get(|State(c): S| async move { c.list_webhooks() })
                .post(|State(c): S, body: Bytes| async move { c.add_webhook(&body) }),
        )
        .route(
            "/api/v1/webhook/{id}/",
            delete(|State(c): S, Path(id): Path<String>| async move { c.delete_webhook(&id) }),
        )
}

fn kind_of(resource: Resource) -> Kind {
    match resource {
        Resource::Contacts => Kind::Contact,
        Resource::Companies => Kind::Lead,
        Resource::Deals => Kind::Opportunity,
    }
}

fn resource_of(kind: Kind) -> Resource {
    match kind {
        Kind::Contact => Resource::Contacts,
        Kind::Lead => Resource::Companies,
        Kind::Opportunity => Resource::Deals,
    }
}

fn method_of(action: Action) -> &'static str {
    match action {
        Action::Created => "POST",
        Action::Updated => "PUT",
        Action::Deleted => "DELETE",
    }
}

fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Close {
    fn list_webhooks(&self) -> Response {
        let data: Vec<Value> = self
            .control
            .webhooks
            .live_subscriptions(PROVIDER)
            .into_iter()
            .map(|s| {
                let mut d = s.data;
                if let Some(m) = d.as_object_mut() {
                    m.remove("signature_key");
                }
                d
            })
            .collect();
        Json(json!({ "has_more": false, "data": data })).into_response()
    }

    fn add_webhook(&self, body: &Bytes) -> Result<Response, Reject> {
        let Ok(Value::Object(input)) = serde_json::from_slice::<Value>(body) else {
            return Err(error(StatusCode::BAD_REQUEST, "Invalid JSON body.").into());
        };
        let url = input
            .get("url")
            .and_then(Value::as_str)
            .filter(|u| is_web_url(u))
            .ok_or_else(|| field_error("url", "Enter a valid URL."))?
            .to_owned();
        let events = input
            .get("events")
            .and_then(Value::as_array)
            .filter(|e| !e.is_empty())
            .ok_or_else(|| field_error("events", "This field is required."))?;
        let mut clean = Vec::new();
        for e in events {
            let object = e.get("object_type").and_then(Value::as_str);
            let action = e.get("action").and_then(Value::as_str);
            match (object, action) {
                (Some(o), Some(a)) if !o.is_empty() && !a.is_empty() => {
                    clean.push(json!({"object_type": o, "action": a}));
                }
                _ => {
                    return Err(field_error(
                        "events",
                        "Each event needs an object_type and an action.",
                    ));
                }
            }
        }
        let webhooks = &self.control.webhooks;
        if webhooks.live_subscriptions(PROVIDER).len() >= MAX_SUBSCRIPTIONS {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "Maximum number of webhook subscriptions reached.",
            )
            .into());
        }
        let serial = webhooks.next_serial(PROVIDER);
        let id = format!("whsub_{serial:08}a1b2c3d4e5f6g7");
        let now = close_time(Utc::now());
        let record = json!({
            "id": id,
            "url": url,
            "events": clean,
            "status": "active",
            "verify_ssl": input.get("verify_ssl").and_then(Value::as_bool).unwrap_or(true),
            "signature_key": sha256_hex(&[b"close-webhook", id.as_bytes()]),
            "organization_id": ORGANIZATION_ID,
            "created_by": USER_ID,
            "updated_by": USER_ID,
            "date_created": now,
            "date_updated": now,
        });
        webhooks.put_subscription(
            PROVIDER,
            Subscription {
                id: id.clone(),
                expires_at: None,
                data: record.clone(),
            },
        );
        Ok(Json(record).into_response())
    }

    fn delete_webhook(&self, id: &str) -> Result<Response, Reject> {
        let webhooks = &self.control.webhooks;
        if webhooks.live_subscription(PROVIDER, id).is_none() {
            return Err(error(
                StatusCode::NOT_FOUND,
                "Empty query: WebhookSubscription matching query does not exist.",
            )
            .into());
        }
        webhooks.remove_subscription(PROVIDER, id);
        Ok(Json(json!({})).into_response())
    }

    /// Tells the webhook machinery about a change (called under the store lock).
    pub(super) fn report(
        &self,
        store: &Store,
        kind: Kind,
        id: &str,
        action: Action,
        source: Source,
        previous: Option<&Map<String, Value>>,
    ) {
        let record = store.find(kind, id).map(|r| store.render(kind, r));
        let change = Change {
            resource: resource_of(kind),
            id: id.to_owned(),
            action,
            source,
            fields: Vec::new(),
            record,
            previous: previous.map(|p| Value::Object(p.clone())),
            at: Utc::now(),
        };
        self.control.webhooks.changed(PROVIDER, &change);
    }

    fn touch_target(&self, kind: Kind, id: Option<&str>) -> Result<String, Reject> {
        let store = self.read();
        let found = match id {
            Some(id) => store.find(kind, id).map(|_| id.to_owned()),
            None => store
                .table(kind)
                .first()
                .and_then(|r| r.get("id"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        };
        found.ok_or_else(|| {
            control_error(
                StatusCode::NOT_FOUND,
                format!("no {} {}", kind.name(), id.unwrap_or_default()),
            )
        })
    }
}

impl WebhookDialect for Close {
    fn deliveries(&self, change: &Change, snapshot: &Snapshot) -> Vec<Pending> {
        let kind = kind_of(change.resource);
        let action = change.action.name();
        let data = change.record.clone().unwrap_or_else(|| json!({}));
        let (changed, previous) = match (change.action, &change.previous, &change.record) {
            (Action::Updated, Some(before), Some(after)) => {
                let diff = changed_fields(before, after);
                let mut old = Map::new();
                for k in diff.keys() {
                    if k == "date_updated" {
                        continue;
                    }
                    old.insert(k.clone(), before.get(k).cloned().unwrap_or(Value::Null));
                }
                let names: Vec<Value> = old.keys().map(|k| json!(k)).collect();
                (Value::Array(names), Value::Object(old))
            }
            (Action::Deleted, Some(before), _) => (json!([]), before.clone()),
            _ => (json!([]), json!({})),
        };
        let field = |name: &str| {
            data.get(name)
                .or_else(|| change.previous.as_ref().and_then(|p| p.get(name)))
                .cloned()
                .unwrap_or(Value::Null)
        };
        let lead_id = if kind == Kind::Lead {
            json!(change.id)
        } else {
            field("lead_id")
        };
        let at = close_time(change.at);
        snapshot
            .subscriptions
            .iter()
            .filter(|s| {
                s.data
                    .get("events")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .any(|e| {
                        e.get("object_type").and_then(Value::as_str) == Some(kind.name())
                            && e.get("action").and_then(Value::as_str) == Some(action)
                    })
            })
            .filter_map(|s| {
                let url = s.data.get("url")?.as_str()?.to_owned();
                let event_id = format!("ev_{}", self.control.next_uuid().replace('-', ""));
                Some(Pending {
                    url,
                    subscription: Some(s.id.clone()),
                    event: json!({
                        "subscription_id": s.id,
                        "event": {
                            "id": event_id,
                            "date_created": at,
                            "date_updated": at,
                            "action": action,
                            "object_type": kind.name(),
                            "object_id": change.id,
                            "organization_id": ORGANIZATION_ID,
                            "user_id": USER_ID,
                            "lead_id": lead_id,
                            "request_id": format!("req_{}", self.control.next_uuid().replace('-', "")),
                            "changed_fields": changed,
                            "previous_data": previous,
                            "data": data,
                            "meta": {
                                "request_method": method_of(change.action),
                                "request_path": format!("/api/v1/{}/{}/", kind.name(), change.id),
                            },
                        }
                    }),
                })
            })
            .collect()
    }

    fn request(&self, delivery: &Delivery, attempt: &Attempt<'_>) -> Outgoing {
        let body = delivery
            .events
            .first()
            .cloned()
            .unwrap_or(Value::Null)
            .to_string();
        let key_hex = attempt
            .subscription
            .and_then(|s| s.data.get("signature_key"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mut key = hex_bytes(key_hex).unwrap_or_default();
        if attempt.wrong_signature {
            key.push(0x42);
        }
        let ts = Utc::now().timestamp().to_string();
        let sig = hex(&hmac_sha256(&key, &[ts.as_bytes(), body.as_bytes()]));
        Outgoing {
            url: delivery.url.clone(),
            headers: vec![
                ("Content-Type".to_owned(), "application/json".to_owned()),
                ("close-sig-hash".to_owned(), sig),
                ("close-sig-timestamp".to_owned(), ts),
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
        let kind = kind_of(resource);
        let n = self.control.webhooks.unique();
        match action {
            Action::Created => {
                let body = match kind {
                    Kind::Contact => json!({"name": format!("Touched Contact{n}")}),
                    Kind::Lead => json!({"name": format!("Touched Lead {n}")}),
                    Kind::Opportunity => {
                        let lead = self.touch_target(Kind::Lead, None)?;
                        json!({"lead_id": lead, "note": format!("Touched opportunity {n}")})
                    }
                };
                let (id, _) = self.create(kind, &Bytes::from(body.to_string()), Source::Touch)?;
                Ok(id)
            }
            Action::Updated => {
                let id = self.touch_target(kind, id)?;
                let body = match kind {
                    Kind::Opportunity => json!({"note": format!("Edited in Close #{n}")}),
                    _ => json!({"name": format!("Edited Close{n}")}),
                };
                self.update(kind, &id, &Bytes::from(body.to_string()), Source::Touch)?;
                Ok(id)
            }
            Action::Deleted => {
                let id = self.touch_target(kind, id)?;
                self.delete(kind, &id, Source::Touch)?;
                Ok(id)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_keys_decode_and_refuse_odd_or_bad_text() {
        assert_eq!(hex_bytes("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(hex_bytes("abc"), None);
        assert_eq!(hex_bytes("zz"), None);
    }
}
