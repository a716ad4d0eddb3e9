//! Zoho CRM's Notification API (vendors.md §7 Webhooks): channels on
//! `/crm/v8/actions/watch` (`POST` enables, `PUT` replaces, `PATCH` updates, `GET` lists,
//! `DELETE ?channel_ids=` disables) behind the API gate, and one notification per change
//! to every live channel watching that module and operation.
//!
//! Choices where vendors.md is silent or tagged [M]:
//! - A channel lasts 1 hour unless `channel_expiry` says otherwise; an expiry in the past
//!   or more than a week ahead is an `INVALID_DATA` entry naming `channel_expiry` (both
//!   bounds come from `/_control/webhooks/zoho` when set there; an expiry under the
//!   configured minimum is raised to it). A `token` over 50 characters, events that are
//!   not `<Module>.all|create|edit|delete`, or a `notify_url` that is not a URL are
//!   `INVALID_DATA` entries; a missing `channel_id`, `events` or `notify_url` is
//!   `MANDATORY_NOT_FOUND`.
//! - Renewal is `POST` (or `PUT`) of the same `channel_id` before it expires. A channel
//!   that has expired, a `PATCH` of one that does not exist, and any renewal while the
//!   `renewalFails` fault is on answer the entry
//!   `{"code":"INVALID_DATA","details":{"api_name":"channel_id","json_path":"$.watch[i].channel_id"},"message":"the channel is expired or does not exist","status":"error"}`;
//!   a client recovers by subscribing a new `channel_id` (or deleting the old one first).
//! - The answer is 200 when every entry succeeded, 400 when all failed, 207 when mixed.
//!   `GET` lists one entry per channel and module (`.all` spelled out), or 204 when there
//!   is none.
//! - Notifications: `query_params` holds the query of `notify_url`, `affected_fields` is
//!   sent for updates of channels with `return_affected_field_values`, `token` only when the
//!   channel has one.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value, json};

use super::{Module, PROVIDER, Zoho, error_body, zoho_datetime, zoho_error};
use crate::control::{Reject, control_error};
use crate::webhooks::{
    Action, Attempt, Change, Delivery, Outgoing, Pending, Resource, Snapshot, Source, Subscription,
    WebhookDialect, id_text, is_web_url,
};
use crate::wire::{ReqInfo, last_param, split_list};

pub(super) const WATCH: &str = "/crm/v8/actions/watch";
const DEFAULT_LIFETIME_SECONDS: i64 = 60 * 60;
/// API v4 and later (vendors.md §7).
const MAX_LIFETIME_SECONDS: i64 = 7 * 24 * 60 * 60;
const MAX_TOKEN: usize = 50;
const OPERATIONS: [&str; 4] = ["all", "create", "edit", "delete"];
const RESOURCE_BASE: &str = "https://www.zohoapis.com/crm/v8";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `POST`: a new channel, or the renewal of a live one.
    Enable,
    /// `PUT`: the channel's details replaced.
    Replace,
    /// `PATCH`: only the given details change.
    Patch,
}

type S = State<Arc<Zoho>>;

pub(super) fn routes() -> Router<Arc<Zoho>> {
    Router::new().route(
        WATCH,
        get(|State(z): S| async move { z.list_channels() })
            .post(|State(z): S, body: Bytes| async move { z.watch(&body, Mode::Enable) })
            .put(|State(z): S, body: Bytes| async move { z.watch(&body, Mode::Replace) })
            .patch(|State(z): S, body: Bytes| async move { z.watch(&body, Mode::Patch) })
            .delete(|State(z): S, info: ReqInfo| async move { z.unwatch(&info) }),
    )
}

/// The module's id in the sandbox org (Zoho reports it as `resource_id`).
fn module_id(module: Module) -> &'static str {
    match module {
        Module::Contacts => "5725767000000002179",
        Module::Accounts => "5725767000000002177",
        Module::Deals => "5725767000000002181",
        Module::Leads => "5725767000000002175",
        Module::Tasks => "5725767000000002193",
        Module::Notes => "5725767000000002195",
    }
}

fn module_of(resource: Resource) -> Module {
    match resource {
        Resource::Contacts => Module::Contacts,
        Resource::Companies => Module::Accounts,
        Resource::Deals => Module::Deals,
    }
}

/// `Contacts.all` → (Contacts, "all").
fn parse_event(raw: &str) -> Option<(Module, &str)> {
    let (module, op) = raw.split_once('.')?;
    let module = Module::from_name(module)?;
    OPERATIONS.contains(&op).then_some((module, op))
}

/// The modules a channel's events name, in first-mention order.
fn modules(events: &[String]) -> Vec<Module> {
    let mut out = Vec::new();
    for (module, _) in events.iter().filter_map(|e| parse_event(e)) {
        if !out.contains(&module) {
            out.push(module);
        }
    }
    out
}

fn events_of(channel: &Value) -> Vec<String> {
    channel
        .get("events")
        .and_then(Value::as_array)
        .map(|events| {
            events
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn entry_error(code: &str, field: &str, index: usize, message: &str) -> Value {
    json!({
        "code": code,
        "details": { "api_name": field, "json_path": format!("$.watch[{index}].{field}") },
        "message": message,
        "status": "error",
    })
}

fn channel_gone(index: usize) -> Value {
    entry_error(
        "INVALID_DATA",
        "channel_id",
        index,
        "the channel is expired or does not exist",
    )
}

/// 200 when every entry succeeded, 400 when all failed, 207 when mixed.
fn entries_response(results: Vec<Result<Value, Value>>) -> Response {
    let failed = results.iter().filter(|r| r.is_err()).count();
    let status = if failed == 0 {
        StatusCode::OK
    } else if failed == results.len() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::MULTI_STATUS
    };
    let watch: Vec<Value> = results
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| e))
        .collect();
    (status, Json(json!({ "watch": watch }))).into_response()
}

/// The query of `url` as an object (Zoho hands it back as `query_params`).
fn query_params(url: &str) -> Value {
    let Ok(parsed) = url::Url::parse(url) else {
        return json!({});
    };
    let map: Map<String, Value> = parsed
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), json!(v)))
        .collect();
    Value::Object(map)
}

impl Zoho {
    fn lifetime_bounds(&self) -> (i64, i64) {
        self.control
            .webhooks
            .config(PROVIDER)
            .lifetime_bounds(MAX_LIFETIME_SECONDS, 0)
    }

    /// One `watch` entry: the channel as stored, or the entry's error.
    fn watch_entry(&self, index: usize, entry: &Value, mode: Mode) -> Result<Value, Value> {
        let Value::Object(input) = entry else {
            return Err(json!({
                "code": "INVALID_DATA",
                "details": { "json_path": format!("$.watch[{index}]"), "expected_data_type": "jsonobject" },
                "message": "invalid data",
                "status": "error",
            }));
        };
        let missing = |field: &str| {
            entry_error(
                "MANDATORY_NOT_FOUND",
                field,
                index,
                "required field not found",
            )
        };
        let invalid = |field: &str| entry_error("INVALID_DATA", field, index, "invalid data");

        let channel_id = match input.get("channel_id") {
            None | Some(Value::Null) => return Err(missing("channel_id")),
            Some(v) => id_text(v)
                .filter(|t| t.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| invalid("channel_id"))?,
        };
        let webhooks = &self.control.webhooks;
        let now = Utc::now();
        let existing = webhooks.subscription(PROVIDER, &channel_id);
        let live = existing.as_ref().filter(|c| c.is_live(now));
        let renewal_fails = webhooks.faults(PROVIDER).renewal_fails;
        let refused = match mode {
            Mode::Enable | Mode::Replace => existing.is_some() && (live.is_none() || renewal_fails),
            Mode::Patch => live.is_none() || renewal_fails,
        };
        if refused {
            return Err(channel_gone(index));
        }
        let mut channel = match (mode, live) {
            (Mode::Patch, Some(current)) => current.data.as_object().cloned().unwrap_or_default(),
            _ => Map::new(),
        };
        channel.insert("channel_id".into(), json!(channel_id));

        match input.get("events") {
            None | Some(Value::Null) if mode == Mode::Patch => {}
            None | Some(Value::Null) => return Err(missing("events")),
            Some(Value::Array(items)) if !items.is_empty() => {
                let mut events = Vec::new();
                for item in items {
                    let event = item
                        .as_str()
                        .filter(|e| parse_event(e).is_some())
                        .ok_or_else(|| invalid("events"))?;
                    if !events.contains(&event) {
                        events.push(event);
                    }
                }
                channel.insert("events".into(), json!(events));
            }
            Some(_) => return Err(invalid("events")),
        }
        match input.get("notify_url") {
            None | Some(Value::Null) if mode == Mode::Patch => {}
            None | Some(Value::Null) => return Err(missing("notify_url")),
            Some(Value::String(url)) if is_web_url(url) => {
                channel.insert("notify_url".into(), json!(url));
            }
            Some(_) => return Err(invalid("notify_url")),
        }
        match input.get("token") {
            None => {}
            Some(Value::Null) => {
                channel.insert("token".into(), Value::Null);
            }
            Some(Value::String(token)) if token.chars().count() <= MAX_TOKEN => {
                channel.insert("token".into(), json!(token));
            }
            Some(_) => return Err(invalid("token")),
        }
        for flag in ["return_affected_field_values", "notify_on_related_action"] {
            match input.get(flag) {
                None | Some(Value::Null) => {
                    channel.entry(flag).or_insert(json!(false));
                }
                Some(Value::Bool(b)) => {
                    channel.insert(flag.into(), json!(b));
                }
                Some(_) => return Err(invalid(flag)),
            }
        }
        let (max, min) = self.lifetime_bounds();
        let after =
            |secs: i64| TimeDelta::try_seconds(secs).and_then(|d| now.checked_add_signed(d));
        let earliest = after(min).unwrap_or(now);
        let expires_at = match input.get("channel_expiry") {
            None | Some(Value::Null) => match (mode, live) {
                (Mode::Patch, Some(current)) => current.expires_at.unwrap_or(earliest),
                _ => after(DEFAULT_LIFETIME_SECONDS.min(max))
                    .unwrap_or(now)
                    .max(earliest),
            },
            Some(Value::String(raw)) => {
                let requested = DateTime::parse_from_rfc3339(raw.trim())
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| invalid("channel_expiry"))?;
                let too_late = after(max).is_some_and(|latest| requested > latest);
                if requested <= now || too_late {
                    return Err(invalid("channel_expiry"));
                }
                requested.max(earliest)
            }
            Some(_) => return Err(invalid("channel_expiry")),
        };
        channel.insert("channel_expiry".into(), json!(zoho_datetime(expires_at)));
        let data = Value::Object(channel);
        webhooks.put_subscription(
            PROVIDER,
            Subscription {
                id: channel_id.clone(),
                expires_at: Some(expires_at),
                data: data.clone(),
            },
        );
        Ok(data)
    }

    fn watch(&self, body: &Bytes, mode: Mode) -> Response {
        let entries = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(mut root)) => match root.remove("watch") {
                Some(Value::Array(items)) if !items.is_empty() => items,
                _ => {
                    return zoho_error(
                        StatusCode::BAD_REQUEST,
                        "MANDATORY_NOT_FOUND",
                        json!({ "api_name": "watch", "json_path": "$.watch" }),
                        "required field not found",
                    );
                }
            },
            _ => {
                return zoho_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_DATA",
                    json!({ "expected_data_type": "jsonobject" }),
                    "body",
                );
            }
        };
        let message = match mode {
            Mode::Enable => "Successfully subscribed for actions-watch of the given module",
            Mode::Replace | Mode::Patch => "Successfully updated the subscribe details",
        };
        let results = entries
            .iter()
            .enumerate()
            .map(|(index, entry)| {
                self.watch_entry(index, entry, mode).map(|channel| {
                    let events: Vec<Value> = modules(&events_of(&channel))
                        .into_iter()
                        .map(|m| {
                            json!({
                                "channel_expiry": channel.get("channel_expiry"),
                                "resource_uri": format!("{RESOURCE_BASE}/{}", m.api_name()),
                                "resource_id": module_id(m),
                                "resource_name": m.api_name(),
                                "channel_id": channel.get("channel_id"),
                            })
                        })
                        .collect();
                    json!({
                        "code": "SUCCESS",
                        "details": { "events": events },
                        "message": message,
                        "status": "success",
                    })
                })
            })
            .collect();
        entries_response(results)
    }

    fn list_channels(&self) -> Response {
        let mut watch = Vec::new();
        for channel in self.control.webhooks.live_subscriptions(PROVIDER) {
            let events = events_of(&channel.data);
            for module in modules(&events) {
                let name = module.api_name();
                let mut mine: Vec<String> = Vec::new();
                for (m, op) in events.iter().filter_map(|e| parse_event(e)) {
                    if m != module {
                        continue;
                    }
                    let ops: &[&str] = if op == "all" {
                        &["create", "edit", "delete"]
                    } else {
                        std::slice::from_ref(&op)
                    };
                    for op in ops {
                        let event = format!("{name}.{op}");
                        if !mine.contains(&event) {
                            mine.push(event);
                        }
                    }
                }
                let field = |k: &str| channel.data.get(k).cloned().unwrap_or(Value::Null);
                watch.push(json!({
                    "notify_on_related_action": field("notify_on_related_action"),
                    "channel_expiry": field("channel_expiry"),
                    "return_affected_field_values": field("return_affected_field_values"),
                    "resource_uri": format!("{RESOURCE_BASE}/{name}"),
                    "resource_id": module_id(module),
                    "notify_url": field("notify_url"),
                    "resource_name": name,
                    "fields": null,
                    "channel_id": channel.id,
                    "events": mine,
                    "token": field("token"),
                }));
            }
        }
        if watch.is_empty() {
            return StatusCode::NO_CONTENT.into_response();
        }
        Json(json!({ "watch": watch })).into_response()
    }

    fn unwatch(&self, info: &ReqInfo) -> Response {
        let pairs = info.pairs();
        let ids = last_param(&pairs, "channel_ids")
            .map(split_list)
            .unwrap_or_default();
        if ids.is_empty() {
            return zoho_error(
                StatusCode::BAD_REQUEST,
                "REQUIRED_PARAM_MISSING",
                json!({ "param_name": "channel_ids" }),
                "One of the expected parameter is missing",
            );
        }
        let results = ids
            .iter()
            .enumerate()
            .map(|(index, id)| {
                let channel = self
                    .control
                    .webhooks
                    .remove_subscription(PROVIDER, id)
                    .ok_or_else(|| {
                        error_body(
                            "INVALID_DATA",
                            json!({ "param_name": "channel_ids", "index": index }),
                            "the channel does not exist",
                        )
                    })?;
                let events: Vec<Value> = modules(&events_of(&channel.data))
                    .into_iter()
                    .map(|m| {
                        json!({
                            "resource_uri": format!("{RESOURCE_BASE}/{}", m.api_name()),
                            "resource_id": module_id(m),
                            "resource_name": m.api_name(),
                            "channel_id": channel.id,
                        })
                    })
                    .collect();
                Ok(json!({
                    "code": "SUCCESS",
                    "details": { "events": events },
                    "message": "Successfully unsubscribed from actions-watch of the given module",
                    "status": "success",
                }))
            })
            .collect();
        entries_response(results)
    }

    /// Tells the webhook machinery about a change to a record of `module`.
    pub(super) fn report(
        &self,
        module: Module,
        id: u64,
        action: Action,
        source: Source,
        fields: Vec<(String, Value)>,
    ) {
        let resource = match module {
            Module::Contacts => Resource::Contacts,
            Module::Accounts => Resource::Companies,
            Module::Deals => Resource::Deals,
            _ => return,
        };
        let change = Change {
            resource,
            id: id.to_string(),
            action,
            source,
            fields,
            record: None,
            previous: None,
            at: Utc::now(),
        };
        self.control.webhooks.changed(PROVIDER, &change);
    }

    fn touch_target(&self, module: Module, id: Option<&str>) -> Result<u64, Reject> {
        let store = self.read();
        let table = store.table(module);
        let found = match id {
            Some(id) => id
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| table.contains_key(n)),
            None => table.keys().next().copied(),
        };
        found.ok_or_else(|| {
            control_error(
                StatusCode::NOT_FOUND,
                format!("no {} record {}", module.api_name(), id.unwrap_or_default()),
            )
        })
    }
}

/// A write's per-record error as a control-plane refusal.
fn refused(entry: Value) -> Reject {
    (StatusCode::BAD_REQUEST, Json(entry))
        .into_response()
        .into()
}

impl WebhookDialect for Zoho {
    fn deliveries(&self, change: &Change, snapshot: &Snapshot) -> Vec<Pending> {
        let module = module_of(change.resource);
        let name = module.api_name();
        let (op, operation) = match change.action {
            Action::Created => ("create", "insert"),
            Action::Updated => ("edit", "update"),
            Action::Deleted => ("delete", "delete"),
        };
        let watched = [format!("{name}.all"), format!("{name}.{op}")];
        snapshot
            .subscriptions
            .iter()
            .filter(|c| events_of(&c.data).iter().any(|e| watched.contains(e)))
            .filter_map(|c| {
                let url = c.data.get("notify_url")?.as_str()?.to_owned();
                let mut body = Map::new();
                body.insert("server_time".into(), json!(change.at.timestamp_millis()));
                body.insert("query_params".into(), query_params(&url));
                body.insert("module".into(), json!(name));
                body.insert(
                    "resource_uri".into(),
                    json!(format!("{RESOURCE_BASE}/{name}")),
                );
                body.insert("ids".into(), json!([change.id]));
                let affected = c
                    .data
                    .get("return_affected_field_values")
                    .and_then(Value::as_bool)
                    == Some(true);
                if affected && change.action == Action::Updated {
                    let fields: Vec<&str> = change.fields.iter().map(|(k, _)| k.as_str()).collect();
                    body.insert(
                        "affected_fields".into(),
                        json!([{ change.id.clone(): fields }]),
                    );
                }
                body.insert("operation".into(), json!(operation));
                body.insert("channel_id".into(), json!(c.id));
                if let Some(token) = c.data.get("token").filter(|t| !t.is_null()) {
                    body.insert("token".into(), token.clone());
                }
                Some(Pending {
                    url,
                    subscription: Some(c.id.clone()),
                    event: Value::Object(body),
                })
            })
            .collect()
    }

    fn request(&self, delivery: &Delivery, attempt: &Attempt<'_>) -> Outgoing {
        let mut event = delivery.events.first().cloned().unwrap_or(Value::Null);
        if let Some(fields) = event.as_object_mut() {
            // The token as the channel has it now (a PATCH may have changed it).
            if let Some(channel) = attempt.subscription {
                match channel.data.get("token").filter(|t| !t.is_null()) {
                    Some(token) => fields.insert("token".into(), token.clone()),
                    None => fields.remove("token"),
                };
            }
            if attempt.wrong_signature {
                fields.insert("token".into(), json!("not-the-channel-token"));
            }
        }
        Outgoing {
            url: delivery.url.clone(),
            headers: vec![("Content-Type".to_owned(), "application/json".to_owned())],
            body: event.to_string().into_bytes(),
        }
    }

    fn touch(
        &self,
        resource: Resource,
        id: Option<&str>,
        action: Action,
    ) -> Result<String, Reject> {
        let module = module_of(resource);
        let n = self.control.webhooks.unique();
        match action {
            Action::Created => {
                let input = match module {
                    Module::Contacts => json!({
                        "First_Name": "Touch",
                        "Last_Name": format!("Created {n}"),
                        "Email": format!("touch-{n}@example.com"),
                    }),
                    Module::Accounts => json!({ "Account_Name": format!("Touched Account {n}") }),
                    _ => {
                        json!({ "Deal_Name": format!("Touched Deal {n}"), "Stage": "Qualification" })
                    }
                };
                let result = self
                    .create_records(module, &[input], Source::Touch)
                    .into_iter()
                    .next()
                    .unwrap_or(Err(Value::Null));
                let entry = result.map_err(refused)?;
                entry
                    .get("details")
                    .and_then(|d| d.get("id"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        control_error(StatusCode::INTERNAL_SERVER_ERROR, "created without an id")
                    })
            }
            Action::Updated => {
                let id = self.touch_target(module, id)?;
                let field = match module {
                    Module::Contacts => "Title",
                    _ => "Description",
                };
                let input = json!({ field: format!("Edited in Zoho CRM #{n}") });
                self.update_record(module, id, &input, Source::Touch)?
                    .map_err(refused)?;
                Ok(id.to_string())
            }
            Action::Deleted => {
                let id = self.touch_target(module, id)?;
                self.delete_record(module, id, Source::Touch)?;
                Ok(id.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_name_a_module_and_an_operation() {
        assert!(parse_event("Contacts.all").is_some());
        assert!(parse_event("Deals.delete").is_some());
        assert!(parse_event("Contacts.merge").is_none());
        assert!(parse_event("Widgets.all").is_none());
        let events = ["Deals.create", "Contacts.all", "Deals.edit"].map(String::from);
        assert_eq!(modules(&events), vec![Module::Deals, Module::Contacts]);
    }

    #[test]
    fn query_params_come_from_the_notify_url() {
        assert_eq!(
            query_params("https://x.example/cb?key1=val1&key2=a%20b"),
            json!({ "key1": "val1", "key2": "a b" })
        );
        assert_eq!(query_params("https://x.example/cb"), json!({}));
    }
}
