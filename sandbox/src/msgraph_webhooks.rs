//! Microsoft Graph change notifications for Outlook contacts (vendors.md §5 Webhooks):
//! `/v1.0/subscriptions` (create with the validation handshake, list, get, renew with
//! `PATCH`, delete, reauthorize), notifications to every live subscription, and
//! lifecycle notifications driven by the control plane.
//!
//! Choices where vendors.md is silent or tagged [M]:
//! - `notificationUrl` and `lifecycleNotificationUrl` may be `http` (Graph requires
//!   `https`; the sandbox's receivers are loopback test servers).
//! - `resource` must be `me/contacts` or `users/{id or userPrincipalName}/contacts` (a
//!   leading `/` is fine); anything else, a bad `changeType` (a comma list of `created`,
//!   `updated`, `deleted`), a `clientState` over 128 characters or a missing required
//!   property is 400 `InvalidRequest`. `includeResourceData: true` is 400 as well: rich
//!   notifications need an encryption certificate, which the sandbox does not model.
//! - Lifetime: at most 10,080 minutes ahead (400 `ExtensionError` "Subscription expiration
//!   can only be N minutes in the future."), and an expiry under 45 minutes ahead is raised
//!   to 45; both bounds come from `/_control/webhooks/msgraph` when set there.
//! - The handshake POSTs `?validationToken=` (form-encoded, as Graph's own) to each distinct
//!   URL, and the answer must be 200 with exactly the decoded token as body (a trailing
//!   newline is tolerated).
//! - `PATCH` changes `expirationDateTime` only (other properties are 400 `InvalidRequest`).
//!   An unknown or expired subscription is 404 `ResourceNotFound` "The object was not
//!   found.", for `GET`, `PATCH`, `DELETE` and `reauthorize` alike; `reauthorize` answers
//!   200 with no body.
//! - Notifications: one POST per subscription per batch window (at most 100 entries),
//!   `Content-Type: application/json; charset=utf-8`; a subscription gets the change types
//!   it asked for.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use serde_json::{Map, Value, json};

use super::{Call, MsGraph, Outcome, PROVIDER, USER_PRINCIPAL, path_id};
use crate::MSGRAPH_CLIENT_ID;
use crate::control::{Reject, control_error};
use crate::webhooks::{
    Action, Attempt, Change, Delivery, Kind, Outgoing, Pending, Resource, Snapshot, Source,
    Subscription, WebhookDialect, id_text, is_web_url,
};
use crate::wire::ReqInfo;

/// The sandbox mailbox's user object id and tenant (Graph ids are GUIDs).
const USER_ID: &str = "4d1c9b2e-7a3f-4e6b-9c8d-2b5a1f0e3c7d";
const TENANT_ID: &str = "9e2f4a6c-1b3d-4c5e-8f7a-0d2b4c6e8a1f";
const DEFAULT_MAX_SECONDS: i64 = 10_080 * 60;
const DEFAULT_MIN_SECONDS: i64 = 45 * 60;
const CHANGE_TYPES: [&str; 3] = ["created", "updated", "deleted"];
const LIFECYCLE_EVENTS: [&str; 3] = ["reauthorizationRequired", "subscriptionRemoved", "missed"];
const TLS_VERSIONS: [&str; 4] = ["v1_0", "v1_1", "v1_2", "v1_3"];
const MAX_CLIENT_STATE: usize = 128;
const MAX_NOTIFICATIONS_PER_POST: usize = 100;

type S = State<Arc<MsGraph>>;
type Id = Result<Path<String>, PathRejection>;

pub(super) fn routes() -> Router<Arc<MsGraph>> {
    Router::new()
        .route(
            "/v1.0/subscriptions",
            get(|State(g): S, info: ReqInfo| async move { g.list_subscriptions(&info) }).post(
                |State(g): S, info: ReqInfo, body: Bytes| async move {
                    g.create_subscription(&info, &body).await.into_response()
                },
            ),
        )
        .route(
            "/v1.0/subscriptions/{id}",
            get(|State(g): S, info: ReqInfo, id: Id| async move {
                g.get_subscription(&info, &path_id(id))
            })
            .patch(
                |State(g): S, info: ReqInfo, id: Id, body: Bytes| async move {
                    g.renew_subscription(&info, &path_id(id), &body)
                },
            )
            .delete(|State(g): S, info: ReqInfo, id: Id| async move {
                g.delete_subscription(&info, &path_id(id))
            }),
        )
        .route(
            "/v1.0/subscriptions/{id}/reauthorize",
            post(|State(g): S, info: ReqInfo, id: Id| async move {
                g.reauthorize(&info, &path_id(id))
            }),
        )
}

/// `2026-09-01T00:00:00.0000000Z`: Graph's seven fractional digits.
fn graph_instant(t: DateTime<Utc>, suffix: &str) -> String {
    format!(
        "{}.{:07}{suffix}",
        t.format("%Y-%m-%dT%H:%M:%S"),
        t.timestamp_subsec_nanos() / 100
    )
}

/// A DateTimeOffset as clients write it; without an offset it is UTC.
fn parse_instant(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(raw.trim(), "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|t| t.and_utc())
        })
}

/// "10080", or "0.5" for lifetimes configured below a minute.
fn minutes(seconds: i64) -> String {
    if seconds % 60 == 0 {
        (seconds / 60).to_string()
    } else {
        let text = format!("{:.2}", seconds as f64 / 60.0);
        text.trim_end_matches('0').to_owned()
    }
}

fn accepted_resource(resource: &str) -> bool {
    let normalized = resource.trim().trim_start_matches('/').to_ascii_lowercase();
    normalized == "me/contacts"
        || normalized == format!("users/{USER_ID}/contacts")
        || normalized == format!("users/{}/contacts", USER_PRINCIPAL.to_ascii_lowercase())
}

fn change_types(raw: &str) -> Option<Vec<&str>> {
    let items: Vec<&str> = raw.split(',').map(str::trim).collect();
    let valid = !items.is_empty()
        && items.iter().all(|t| CHANGE_TYPES.contains(t))
        && items
            .iter()
            .enumerate()
            .all(|(i, t)| !items[..i].contains(t));
    valid.then_some(items)
}

fn includes_change(subscription: &Subscription, change_type: &str) -> bool {
    subscription
        .data
        .get("changeType")
        .and_then(Value::as_str)
        .is_some_and(|types| types.split(',').any(|t| t.trim() == change_type))
}

impl MsGraph {
    fn invalid_request(&self, call: &Call<'_>, message: &str) -> Outcome {
        self.error(call, StatusCode::BAD_REQUEST, "InvalidRequest", message)
    }

    fn subscription_not_found(&self, call: &Call<'_>) -> Outcome {
        self.error(
            call,
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            "The object was not found.",
        )
    }

    fn entity(&self, call: &Call<'_>, subscription: &Subscription) -> Value {
        let mut out = Map::new();
        out.insert(
            "@odata.context".into(),
            json!(format!("{}/$metadata#subscriptions/$entity", call.root())),
        );
        if let Value::Object(fields) = &subscription.data {
            out.extend(fields.clone());
        }
        Value::Object(out)
    }

    /// The expiry Graph keeps for `requested`: refused past the maximum, raised to the
    /// minimum.
    fn bounded_expiry(
        &self,
        call: &Call<'_>,
        requested: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, Outcome> {
        let (max, min) = self
            .control
            .webhooks
            .config(PROVIDER)
            .lifetime_bounds(DEFAULT_MAX_SECONDS, DEFAULT_MIN_SECONDS);
        let now = Utc::now();
        let latest = TimeDelta::try_seconds(max).and_then(|d| now.checked_add_signed(d));
        if latest.is_some_and(|latest| requested > latest) {
            return Err(self.error(
                call,
                StatusCode::BAD_REQUEST,
                "ExtensionError",
                &format!(
                    "Subscription expiration can only be {} minutes in the future.",
                    minutes(max)
                ),
            ));
        }
        let earliest = TimeDelta::try_seconds(min)
            .and_then(|d| now.checked_add_signed(d))
            .unwrap_or(now);
        Ok(requested.max(earliest))
    }

    /// Graph's validation handshake against `url`: true when it echoed the token.
    async fn validate_endpoint(&self, url: &str) -> bool {
        let token = format!(
            "Validation: Testing client application reachability for subscription Request-Id: {}",
            self.control.next_uuid()
        );
        let Ok(mut target) = url::Url::parse(url) else {
            return false;
        };
        target
            .query_pairs_mut()
            .append_pair("validationToken", &token);
        let out = Outgoing {
            url: target.to_string(),
            headers: vec![(
                "Content-Type".to_owned(),
                "text/plain; charset=utf-8".to_owned(),
            )],
            body: Vec::new(),
        };
        match self
            .control
            .webhooks
            .probe(PROVIDER, Kind::Validation, &out)
            .await
        {
            Ok((200, body)) => body.trim_end_matches(['\r', '\n']) == token,
            _ => false,
        }
    }

    async fn create_subscription(&self, info: &ReqInfo, body: &Bytes) -> Outcome {
        let call = self.call(info, "/subscriptions");
        let request = match self.parse_json(&call, body) {
            Ok(Value::Object(request)) => request,
            Ok(_) => return self.invalid_request(&call, "The request body must be an object."),
            Err(e) => return e,
        };
        let text = |name: &str| -> Result<Option<String>, Outcome> {
            match request.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(self.invalid_request(&call, &format!("{name} must be a string."))),
            }
        };
        let required = |name: &str| -> Result<String, Outcome> {
            text(name)?.filter(|s| !s.trim().is_empty()).ok_or_else(|| {
                self.invalid_request(
                    &call,
                    &format!("{name} is a required property for subscription creation."),
                )
            })
        };
        let checked = (|| {
            let change_type = required("changeType")?;
            let notification_url = required("notificationUrl")?;
            let resource = required("resource")?;
            let expiration = required("expirationDateTime")?;
            let lifecycle_url = text("lifecycleNotificationUrl")?;
            let client_state = text("clientState")?;
            let tls = text("latestSupportedTlsVersion")?.unwrap_or_else(|| "v1_2".to_owned());
            Ok::<_, Outcome>((
                change_type,
                notification_url,
                resource,
                expiration,
                lifecycle_url,
                client_state,
                tls,
            ))
        })();
        let (change_type, notification_url, resource, expiration, lifecycle_url, client_state, tls) =
            match checked {
                Ok(fields) => fields,
                Err(e) => return e,
            };
        let Some(types) = change_types(&change_type) else {
            return self.invalid_request(
                &call,
                &format!("'{change_type}' is not a valid changeType: use created, updated and/or deleted."),
            );
        };
        for (name, url) in [
            ("notificationUrl", Some(&notification_url)),
            ("lifecycleNotificationUrl", lifecycle_url.as_ref()),
        ] {
            if let Some(url) = url
                && !is_web_url(url)
            {
                return self.invalid_request(&call, &format!("{name} must be an absolute URL."));
            }
        }
        if !accepted_resource(&resource) {
            return self.invalid_request(
                &call,
                &format!("The resource '{resource}' is not supported: use me/contacts."),
            );
        }
        if client_state
            .as_ref()
            .is_some_and(|s| s.chars().count() > MAX_CLIENT_STATE)
        {
            return self.invalid_request(
                &call,
                &format!("clientState must be at most {MAX_CLIENT_STATE} characters."),
            );
        }
        if !TLS_VERSIONS.contains(&tls.as_str()) {
            return self.invalid_request(
                &call,
                &format!("'{tls}' is not a valid latestSupportedTlsVersion."),
            );
        }
        match request.get("includeResourceData") {
            None | Some(Value::Null) | Some(Value::Bool(false)) => {}
            Some(Value::Bool(true)) => {
                return self.invalid_request(
                    &call,
                    "includeResourceData requires encryptionCertificate and encryptionCertificateId.",
                );
            }
            Some(_) => {
                return self.invalid_request(&call, "includeResourceData must be a boolean.");
            }
        }
        let Some(requested) = parse_instant(&expiration) else {
            return self.invalid_request(
                &call,
                &format!("'{expiration}' is not a valid expirationDateTime."),
            );
        };
        let expires_at = match self.bounded_expiry(&call, requested) {
            Ok(t) => t,
            Err(e) => return e,
        };

        let mut urls = vec![notification_url.clone()];
        if let Some(url) = &lifecycle_url
            && !urls.contains(url)
        {
            urls.push(url.clone());
        }
        let mut validated = true;
        for url in &urls {
            validated &= self.validate_endpoint(url).await;
        }
        if !validated || self.control.webhooks.faults(PROVIDER).validation_fails {
            return self.error(
                &call,
                StatusCode::BAD_REQUEST,
                "ValidationError",
                "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request.",
            );
        }

        let id = self.control.next_uuid();
        let subscription = Subscription {
            id: id.clone(),
            expires_at: Some(expires_at),
            data: json!({
                "id": id,
                "resource": resource,
                "applicationId": MSGRAPH_CLIENT_ID,
                "changeType": types.join(","),
                "clientState": client_state,
                "notificationUrl": notification_url,
                "notificationQueryOptions": null,
                "lifecycleNotificationUrl": lifecycle_url,
                "expirationDateTime": graph_instant(expires_at, "Z"),
                "creatorId": USER_ID,
                "includeResourceData": false,
                "latestSupportedTlsVersion": tls,
                "encryptionCertificate": null,
                "encryptionCertificateId": null,
                "notificationUrlAppId": null,
            }),
        };
        self.control
            .webhooks
            .put_subscription(PROVIDER, subscription.clone());
        Outcome::json(StatusCode::CREATED, self.entity(&call, &subscription))
    }

    fn list_subscriptions(&self, info: &ReqInfo) -> Response {
        let call = self.call(info, "/subscriptions");
        let value: Vec<Value> = self
            .control
            .webhooks
            .live_subscriptions(PROVIDER)
            .into_iter()
            .map(|s| s.data)
            .collect();
        let body = json!({
            "@odata.context": format!("{}/$metadata#subscriptions", call.root()),
            "value": value,
        });
        Outcome::json(StatusCode::OK, body).into_response()
    }

    fn get_subscription(&self, info: &ReqInfo, id: &str) -> Response {
        let call = self.call(info, "/subscriptions/{id}");
        match self.control.webhooks.live_subscription(PROVIDER, id) {
            Some(s) => Outcome::json(StatusCode::OK, self.entity(&call, &s)),
            None => self.subscription_not_found(&call),
        }
        .into_response()
    }

    fn renew_subscription(&self, info: &ReqInfo, id: &str, body: &Bytes) -> Response {
        let call = self.call(info, "/subscriptions/{id}");
        self.renew(&call, id, body).into_response()
    }

    fn renew(&self, call: &Call<'_>, id: &str, body: &Bytes) -> Outcome {
        let renewal_fails = self.control.webhooks.faults(PROVIDER).renewal_fails;
        let Some(mut subscription) = self
            .control
            .webhooks
            .live_subscription(PROVIDER, id)
            .filter(|_| !renewal_fails)
        else {
            return self.subscription_not_found(call);
        };
        let request = match self.parse_json(call, body) {
            Ok(Value::Object(request)) => request,
            Ok(_) => return self.invalid_request(call, "The request body must be an object."),
            Err(e) => return e,
        };
        if let Some(other) = request.keys().find(|k| *k != "expirationDateTime") {
            return self.invalid_request(
                call,
                &format!("{other} cannot be updated: only expirationDateTime can."),
            );
        }
        let Some(raw) = request.get("expirationDateTime").and_then(Value::as_str) else {
            return self.invalid_request(call, "expirationDateTime is required.");
        };
        let Some(requested) = parse_instant(raw) else {
            return self
                .invalid_request(call, &format!("'{raw}' is not a valid expirationDateTime."));
        };
        let expires_at = match self.bounded_expiry(call, requested) {
            Ok(t) => t,
            Err(e) => return e,
        };
        subscription.expires_at = Some(expires_at);
        if let Some(fields) = subscription.data.as_object_mut() {
            fields.insert(
                "expirationDateTime".into(),
                json!(graph_instant(expires_at, "Z")),
            );
        }
        self.control
            .webhooks
            .put_subscription(PROVIDER, subscription.clone());
        Outcome::json(StatusCode::OK, self.entity(call, &subscription))
    }

    fn delete_subscription(&self, info: &ReqInfo, id: &str) -> Response {
        let call = self.call(info, "/subscriptions/{id}");
        if self
            .control
            .webhooks
            .live_subscription(PROVIDER, id)
            .is_none()
        {
            return self.subscription_not_found(&call).into_response();
        }
        self.control.webhooks.remove_subscription(PROVIDER, id);
        StatusCode::NO_CONTENT.into_response()
    }

    fn reauthorize(&self, info: &ReqInfo, id: &str) -> Response {
        let call = self.call(info, "/subscriptions/{id}/reauthorize");
        match self.control.webhooks.live_subscription(PROVIDER, id) {
            Some(_) => StatusCode::OK.into_response(),
            None => self.subscription_not_found(&call).into_response(),
        }
    }

    /// Tells the webhook machinery about a change to contact `id`.
    pub(super) fn report(
        &self,
        id: &str,
        action: Action,
        source: Source,
        previous: Option<&Value>,
        record: Option<&Value>,
    ) {
        let change = Change {
            resource: Resource::Contacts,
            id: id.to_owned(),
            action,
            source,
            fields: Vec::new(),
            record: record.cloned(),
            previous: previous.cloned(),
            at: Utc::now(),
        };
        self.control.webhooks.changed(PROVIDER, &change);
    }

    /// A request context for changes made outside the API.
    fn touch_call(&self) -> Call<'static> {
        Call {
            method: "PATCH",
            path: "/me/contacts",
            query: None,
            client_request_id: None,
            if_match: None,
            origin: self.base_url.clone(),
        }
    }

    fn touch_target(&self, id: Option<&str>) -> Result<String, Reject> {
        let store = self.read();
        let found = match id {
            Some(id) => store.find(id).map(|c| c.id.clone()),
            None => store.contacts.first().map(|c| c.id.clone()),
        };
        found.ok_or_else(|| {
            control_error(
                StatusCode::NOT_FOUND,
                format!("no contact {}", id.unwrap_or_default()),
            )
        })
    }
}

/// A vendor answer as a control-plane refusal, when it is not a success.
fn succeeded(outcome: Outcome) -> Result<Outcome, Reject> {
    if outcome.status.is_success() {
        Ok(outcome)
    } else {
        Err(outcome.into_response().into())
    }
}

impl WebhookDialect for MsGraph {
    fn deliveries(&self, change: &Change, snapshot: &Snapshot) -> Vec<Pending> {
        if change.resource != Resource::Contacts {
            return Vec::new();
        }
        let change_type = change.action.name();
        let etag = change
            .record
            .as_ref()
            .or(change.previous.as_ref())
            .and_then(|r| r.get("@odata.etag"))
            .cloned()
            .unwrap_or(Value::Null);
        let resource = format!("Users/{USER_ID}/Contacts/{}", change.id);
        snapshot
            .subscriptions
            .iter()
            .filter(|s| includes_change(s, change_type))
            .filter_map(|s| {
                let url = s.data.get("notificationUrl")?.as_str()?.to_owned();
                let expiry = s.expires_at.map(|t| graph_instant(t, "+00:00"));
                let event = json!({
                    "subscriptionId": s.id,
                    "subscriptionExpirationDateTime": expiry,
                    "changeType": change_type,
                    "resource": resource,
                    "resourceData": {
                        "@odata.type": "#Microsoft.Graph.Contact",
                        "@odata.id": resource,
                        "@odata.etag": etag,
                        "id": change.id,
                    },
                    "clientState": s.data.get("clientState").cloned().unwrap_or(Value::Null),
                    "tenantId": TENANT_ID,
                });
                Some(Pending {
                    url,
                    subscription: Some(s.id.clone()),
                    event,
                })
            })
            .collect()
    }

    fn batch_limit(&self) -> Option<usize> {
        Some(MAX_NOTIFICATIONS_PER_POST)
    }

    fn request(&self, delivery: &Delivery, attempt: &Attempt<'_>) -> Outgoing {
        let events: Vec<Value> = delivery
            .events
            .iter()
            .cloned()
            .map(|mut event| {
                if let Some(fields) = event.as_object_mut() {
                    // A renewal since the change shows in the notification.
                    if let Some(sub) = attempt.subscription
                        && let Some(t) = sub.expires_at
                    {
                        fields.insert(
                            "subscriptionExpirationDateTime".into(),
                            json!(graph_instant(t, "+00:00")),
                        );
                    }
                    if attempt.wrong_signature {
                        fields.insert("clientState".into(), json!("not-the-client-state"));
                    }
                }
                event
            })
            .collect();
        Outgoing {
            url: delivery.url.clone(),
            headers: vec![(
                "Content-Type".to_owned(),
                "application/json; charset=utf-8".to_owned(),
            )],
            body: json!({ "value": events }).to_string().into_bytes(),
        }
    }

    fn touch(
        &self,
        resource: Resource,
        id: Option<&str>,
        action: Action,
    ) -> Result<String, Reject> {
        if resource != Resource::Contacts {
            return Err(control_error(
                StatusCode::BAD_REQUEST,
                "Microsoft Graph serves contacts only",
            ));
        }
        let call = self.touch_call();
        let n = self.control.webhooks.unique();
        match action {
            Action::Created => {
                let body = json!({
                    "givenName": "Touch",
                    "surname": format!("Created {n}"),
                    "emailAddresses": [{ "address": format!("touch-{n}@example.com") }],
                });
                let outcome = succeeded(self.create(&call, &body, Source::Touch))?;
                outcome
                    .body
                    .as_ref()
                    .and_then(|b| b.get("id"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        control_error(StatusCode::INTERNAL_SERVER_ERROR, "created without an id")
                    })
            }
            Action::Updated => {
                let id = self.touch_target(id)?;
                let body = json!({ "jobTitle": format!("Edited in Outlook #{n}") });
                succeeded(self.update(&call, &id, &body, Source::Touch))?;
                Ok(id)
            }
            Action::Deleted => {
                let id = self.touch_target(id)?;
                succeeded(self.delete(&call, &id, Source::Touch))?;
                Ok(id)
            }
        }
    }

    fn lifecycle(&self, body: &Value) -> Result<Value, Reject> {
        let bad = |m: &str| control_error(StatusCode::BAD_REQUEST, m);
        let id = body
            .get("subscriptionId")
            .and_then(id_text)
            .ok_or_else(|| bad("subscriptionId is required"))?;
        let event = body
            .get("lifecycleEvent")
            .and_then(Value::as_str)
            .filter(|e| LIFECYCLE_EVENTS.contains(e))
            .ok_or_else(|| {
                bad("lifecycleEvent must be reauthorizationRequired, subscriptionRemoved or missed")
            })?;
        let subscription = self
            .control
            .webhooks
            .subscription(PROVIDER, &id)
            .ok_or_else(|| control_error(StatusCode::NOT_FOUND, "unknown subscription"))?;
        let field = |name: &str| subscription.data.get(name).cloned().unwrap_or(Value::Null);
        let url = field("lifecycleNotificationUrl")
            .as_str()
            .or(field("notificationUrl").as_str())
            .map(str::to_owned)
            .unwrap_or_default();
        let notification = json!({
            "subscriptionId": id,
            "subscriptionExpirationDateTime": subscription.expires_at.map(|t| graph_instant(t, "+00:00")),
            "tenantId": TENANT_ID,
            "clientState": field("clientState"),
            "lifecycleEvent": event,
        });
        if event == "subscriptionRemoved" {
            self.control.webhooks.remove_subscription(PROVIDER, &id);
        }
        self.control.webhooks.enqueue(
            PROVIDER,
            Kind::Lifecycle,
            vec![Pending {
                url: url.clone(),
                subscription: None,
                event: notification,
            }],
        );
        Ok(json!({ "subscriptionId": id, "lifecycleEvent": event, "url": url }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_have_seven_fractional_digits() {
        let t = parse_instant("2026-09-01T10:20:30.1234567+02:00").unwrap();
        assert_eq!(graph_instant(t, "Z"), "2026-09-01T08:20:30.1234567Z");
        assert_eq!(
            graph_instant(parse_instant("2026-09-01T00:00:00").unwrap(), "+00:00"),
            "2026-09-01T00:00:00.0000000+00:00"
        );
        assert!(parse_instant("tomorrow").is_none());
    }

    #[test]
    fn minutes_are_whole_when_they_can_be() {
        assert_eq!(minutes(DEFAULT_MAX_SECONDS), "10080");
        assert_eq!(minutes(30), "0.5");
    }

    #[test]
    fn change_types_and_resources() {
        assert_eq!(
            change_types("created, deleted"),
            Some(vec!["created", "deleted"])
        );
        assert_eq!(change_types("created,created"), None);
        assert_eq!(change_types("moved"), None);
        assert!(accepted_resource("/me/contacts"));
        assert!(accepted_resource(&format!("users/{USER_ID}/contacts")));
        assert!(!accepted_resource("me/messages"));
    }
}
