//! HubSpot's app-level webhooks (vendors.md §2 Webhooks, §1.4) and the account details
//! a receiver matches `portalId` against.
//!
//! The app's webhook settings are the control plane's `targetUrl` and `secret` (the app's
//! client secret): without both nothing is sent, as an app without a target URL gets
//! nothing. Every object event type is subscribed; each has a fixed `subscriptionId`.
//!
//! Choices where vendors.md is silent or tagged [M]:
//! - A create is one `*.creation` event (`changeFlag: "NEW"`), a delete one `*.deletion`
//!   (`changeFlag: "DELETED"`), an update one `*.propertyChange` per property whose value
//!   it changed (server-managed timestamps excluded; a cleared property has
//!   `propertyValue: ""`).
//! - `changeSource` is `"API"` for changes through the API and `"CRM"` for `/touch`.
//! - Events of one batch window go out as one array of at most 100; `attemptNumber` counts
//!   from 0 and grows with each retry of the POST.
//! - v3 requests also carry the v1 signature with `X-HubSpot-Signature-Version: v1`, as
//!   HubSpot's do; v1 and v2 carry only their own.

use axum::http::StatusCode;
use chrono::Utc;
use serde_json::{Map, Value, json};

use super::{HUB_ID, HubSpot, ObjectType, PROVIDER, WriteBody};
use crate::control::{Reject, control_error};
use crate::webhooks::{
    Action, Attempt, Change, Delivery, Outgoing, Pending, Resource, SignatureVersion, Snapshot,
    Source, WebhookDialect, hmac_sha256, sha256_hex,
};

/// The sandbox's app (public apps have numeric ids).
const APP_ID: u64 = 3_140_592;
const MAX_EVENTS_PER_POST: usize = 100;
const METHOD: &str = "POST";

/// `GET /account-info/v3/details` for the sandbox account.
pub(super) fn account_details() -> Value {
    json!({
        "portalId": HUB_ID,
        "timeZone": "US/Eastern",
        "companyCurrency": "USD",
        "additionalCurrencies": [],
        "utcOffset": "-05:00",
        "utcOffsetMilliseconds": -18_000_000,
        "uiDomain": "app.hubspot.com",
        "dataHostingLocation": "na1",
        "accountType": "STANDARD",
    })
}

fn object_type(resource: Resource) -> ObjectType {
    match resource {
        Resource::Contacts => ObjectType::Contacts,
        Resource::Companies => ObjectType::Companies,
        Resource::Deals => ObjectType::Deals,
    }
}

/// The object types webhooks are subscribed to.
fn watched(ty: ObjectType) -> Option<Resource> {
    match ty {
        ObjectType::Contacts => Some(Resource::Contacts),
        ObjectType::Companies => Some(Resource::Companies),
        ObjectType::Deals => Some(Resource::Deals),
        _ => None,
    }
}

/// Each event type is one subscription of the app; the numbers are the sandbox's.
fn subscription_id(ty: ObjectType, event: &str) -> u64 {
    let object = match ty {
        ObjectType::Contacts => 1,
        ObjectType::Companies => 2,
        _ => 3,
    };
    let kind = match event {
        "creation" => 1,
        "propertyChange" => 2,
        _ => 3,
    };
    1_820_000 + object * 10 + kind
}

/// `X-HubSpot-Signature` v1: hex SHA-256 of the client secret followed by the body.
pub(crate) fn signature_v1(secret: &str, body: &[u8]) -> String {
    sha256_hex(&[secret.as_bytes(), body])
}

/// v2: hex SHA-256 of secret + method + URI + body.
pub(crate) fn signature_v2(secret: &str, url: &str, body: &[u8]) -> String {
    sha256_hex(&[secret.as_bytes(), METHOD.as_bytes(), url.as_bytes(), body])
}

/// `X-HubSpot-Signature-v3`: base64 HMAC-SHA256 under the client secret of method + URI
/// + body + timestamp (ms, as sent in `X-HubSpot-Request-Timestamp`).
pub(crate) fn signature_v3(secret: &str, url: &str, body: &[u8], timestamp: &str) -> String {
    use base64::Engine as _;
    let mac = hmac_sha256(
        secret.as_bytes(),
        &[
            METHOD.as_bytes(),
            url.as_bytes(),
            body,
            timestamp.as_bytes(),
        ],
    );
    base64::engine::general_purpose::STANDARD.encode(mac)
}

fn headers(
    version: SignatureVersion,
    secret: &str,
    url: &str,
    body: &[u8],
) -> Vec<(String, String)> {
    let mut out = vec![("Content-Type".to_owned(), "application/json".to_owned())];
    let mut add = |name: &str, value: String| out.push((name.to_owned(), value));
    match version {
        SignatureVersion::V1 => {
            add("X-HubSpot-Signature", signature_v1(secret, body));
            add("X-HubSpot-Signature-Version", "v1".to_owned());
        }
        SignatureVersion::V2 => {
            add("X-HubSpot-Signature", signature_v2(secret, url, body));
            add("X-HubSpot-Signature-Version", "v2".to_owned());
        }
        SignatureVersion::V3 => {
            let timestamp = Utc::now().timestamp_millis().to_string();
            add("X-HubSpot-Signature", signature_v1(secret, body));
            add("X-HubSpot-Signature-Version", "v1".to_owned());
            add(
                "X-HubSpot-Signature-v3",
                signature_v3(secret, url, body, &timestamp),
            );
            add("X-HubSpot-Request-Timestamp", timestamp);
        }
    }
    out
}

impl HubSpot {
    /// Tells the webhook machinery about a change to a record of `ty`.
    pub(super) fn report(
        &self,
        ty: ObjectType,
        id: u64,
        action: Action,
        source: Source,
        fields: Vec<(String, Value)>,
    ) {
        let Some(resource) = watched(ty) else {
            return;
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

    /// The live record a touch changes: `id`, or the first one.
    fn touch_target(&self, ty: ObjectType, id: Option<&str>) -> Result<String, Reject> {
        let store = self.read();
        let found = match id {
            Some(id) => id
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| store.live(ty, *n).is_some()),
            None => store
                .table(ty)
                .values()
                .find(|r| r.archived_at.is_none())
                .map(|r| r.id),
        };
        found.map(|n| n.to_string()).ok_or_else(|| {
            control_error(
                StatusCode::NOT_FOUND,
                format!("no live {} {}", ty.singular(), id.unwrap_or_default()),
            )
        })
    }
}

fn properties(pairs: &[(&str, String)]) -> WriteBody {
    let properties: Map<String, Value> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    WriteBody {
        properties,
        associations: Vec::new(),
    }
}

impl WebhookDialect for HubSpot {
    fn deliveries(&self, change: &Change, snapshot: &Snapshot) -> Vec<Pending> {
        let config = &snapshot.config;
        let (Some(url), Some(_)) = (&config.target_url, &config.secret) else {
            return Vec::new();
        };
        let Ok(object_id) = change.id.parse::<u64>() else {
            return Vec::new();
        };
        let ty = object_type(change.resource);
        let event = |kind: &str| {
            json!({
                "eventId": self.control.webhooks.unique(),
                "subscriptionId": subscription_id(ty, kind),
                "portalId": HUB_ID,
                "appId": APP_ID,
                "occurredAt": change.at.timestamp_millis(),
                "subscriptionType": format!("{}.{kind}", ty.singular()),
                "attemptNumber": 0,
                "objectId": object_id,
                "changeSource": match change.source {
                    Source::Api => "API",
                    Source::Touch => "CRM",
                },
            })
        };
        let with = |mut event: Value, extra: &[(&str, Value)]| {
            if let Some(fields) = event.as_object_mut() {
                for (k, v) in extra {
                    fields.insert((*k).to_owned(), v.clone());
                }
            }
            event
        };
        let events: Vec<Value> = match change.action {
            Action::Created => vec![with(event("creation"), &[("changeFlag", json!("NEW"))])],
            Action::Deleted => vec![with(event("deletion"), &[("changeFlag", json!("DELETED"))])],
            Action::Updated => change
                .fields
                .iter()
                .map(|(name, value)| {
                    let text = match value {
                        Value::String(s) => s.clone(),
                        Value::Null => String::new(),
                        other => other.to_string(),
                    };
                    with(
                        event("propertyChange"),
                        &[
                            ("propertyName", json!(name)),
                            ("propertyValue", json!(text)),
                        ],
                    )
                })
                .collect(),
        };
        events
            .into_iter()
            .map(|event| Pending {
                url: url.clone(),
                subscription: None,
                event,
            })
            .collect()
    }

    fn batch_limit(&self) -> Option<usize> {
        Some(MAX_EVENTS_PER_POST)
    }

    fn request(&self, delivery: &Delivery, attempt: &Attempt<'_>) -> Outgoing {
        let events: Vec<Value> = delivery
            .events
            .iter()
            .cloned()
            .map(|mut event| {
                if let Some(fields) = event.as_object_mut() {
                    fields.insert(
                        "attemptNumber".into(),
                        json!(attempt.number.saturating_sub(1)),
                    );
                }
                event
            })
            .collect();
        let body = Value::Array(events).to_string().into_bytes();
        let secret = attempt.config.secret.clone().unwrap_or_default();
        let secret = if attempt.wrong_signature {
            format!("not-{secret}")
        } else {
            secret
        };
        Outgoing {
            url: delivery.url.clone(),
            headers: headers(
                attempt.config.signature_version,
                &secret,
                &delivery.url,
                &body,
            ),
            body,
        }
    }

    fn touch(
        &self,
        resource: Resource,
        id: Option<&str>,
        action: Action,
    ) -> Result<String, Reject> {
        let ty = object_type(resource);
        let n = self.control.webhooks.unique();
        match action {
            Action::Created => {
                let input = match ty {
                    ObjectType::Contacts => properties(&[
                        ("firstname", "Touch".to_owned()),
                        ("lastname", format!("Created {n}")),
                        ("email", format!("touch-{n}@example.com")),
                    ]),
                    ObjectType::Companies => properties(&[
                        ("name", format!("Touched Company {n}")),
                        ("domain", format!("touch-{n}.example.com")),
                    ]),
                    _ => properties(&[("dealname", format!("Touched Deal {n}"))]),
                };
                let (id, _) = self.create_record(ty, input, Source::Touch)?;
                Ok(id.to_string())
            }
            Action::Updated => {
                let id = self.touch_target(ty, id)?;
                let property = match ty {
                    ObjectType::Contacts => "jobtitle",
                    _ => "description",
                };
                let input = properties(&[(property, format!("Edited in HubSpot #{n}"))]);
                self.update_record(ty, &id, input, Source::Touch)?;
                Ok(id)
            }
            Action::Deleted => {
                let id = self.touch_target(ty, id)?;
                self.archive_record(ty, &id, Source::Touch);
                Ok(id)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_signature_matches_hubspots_documented_sample() {
        let body = br#"[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321}]"#;
        assert_eq!(
            signature_v1("yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy", body),
            "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
        );
    }

    #[test]
    fn v2_and_v3_cover_method_url_body_and_timestamp() {
        let url = "https://example.com/hook?x=1";
        assert_eq!(
            signature_v2("s", url, b"[]"),
            sha256_hex(&[b"sPOSThttps://example.com/hook?x=1[]"])
        );
        let v3 = signature_v3("s", url, b"[]", "1700000000000");
        assert_ne!(v3, signature_v3("s", url, b"[]", "1700000000001"));
        assert_ne!(
            v3,
            signature_v3("s", "https://example.com/hook", b"[]", "1700000000000")
        );
        assert_eq!(v3.len(), 44, "base64 of 32 bytes");
    }

    #[test]
    fn v3_requests_carry_both_signatures() {
        let h = headers(SignatureVersion::V3, "s", "http://x/", b"[]");
        let names: Vec<&str> = h.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "Content-Type",
                "X-HubSpot-Signature",
                "X-HubSpot-Signature-Version",
                "X-HubSpot-Signature-v3",
                "X-HubSpot-Request-Timestamp"
            ]
        );
        let v1 = headers(SignatureVersion::V1, "s", "http://x/", b"[]");
        assert_eq!(v1.len(), 3);
    }

    #[test]
    fn subscription_ids_differ_per_event_type() {
        let mut ids: Vec<u64> = [
            ObjectType::Contacts,
            ObjectType::Companies,
            ObjectType::Deals,
        ]
        .into_iter()
        .flat_map(|ty| {
            ["creation", "propertyChange", "deletion"].map(move |k| subscription_id(ty, k))
        })
        .collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 9);
    }
}
