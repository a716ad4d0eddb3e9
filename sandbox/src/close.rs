//! Close REST v1 (leads, contacts, opportunities) as described in `/work/shared/vendors.md`
//! §9, served under `/close`, so the base URL a client uses is `{sandbox}/close/api/v1`.
//!
//! Every request passes the shared gate first (`wire::gate`): counted, maybe hijacked by an
//! injected fault, authenticated (the API key as the HTTP Basic user name with an empty
//! password, or an OAuth `Bearer` token) and charged to its key's window.
//!
//! What is reproduced:
//! - Paths end in a slash (`/contact/`, `/contact/{id}/`). Lists take `_skip`, `_limit`
//!   and `_fields` and answer `{"has_more", "data"}` (leads add `total_results`); a
//!   `_limit` above 100 is a 400. Contacts and opportunities filter on `lead_id`,
//!   opportunities on `status_type`; leads take a search `query`, of which only
//!   `date_updated > "<time>"` (or `>=`) is understood (anything else is a 400).
//! - Leads are the company-level object and embed their `contacts` and `opportunities`;
//!   an opportunity's `value` is in cents, with `value_formatted`, `expected_value` and
//!   `annualized_value` derived as Close does.
//! - Custom fields are top-level `custom.cf_<id>` keys.
//! - `POST` creates (a contact without `lead_id` gets a new lead named after it), `PUT`
//!   behaves as a patch, `DELETE` answers `{}`.
//! - Errors: 400 `{"errors": [], "field-errors": {...}}`, otherwise `{"error": "..."}`.
//! - Every response carries `RateLimit: limit=, remaining=, reset=` (reset in decimal
//!   seconds) and the deprecated `x-rate-limit-*` trio; a 429 adds `retry-after` (the
//!   reset rounded up) and the older body `{"error": {"rate_reset", ...}}`.
//! - Webhooks (`close_webhooks.rs`): `POST /webhook/` returns the hex `signature_key`;
//!   deliveries carry the whole object and are signed with `close-sig-hash` over
//!   `close-sig-timestamp` + body.
//!
//! Choices where vendors.md is silent or tagged [M]/[T]:
//! - One rolling window of 100 requests per second per key (Close's limits are per
//!   endpoint group and partly undisclosed; the conformance bursts need the headroom).
//!   Tests lower it through `/_control/ratelimit`. No maximum `_skip` is modelled.
//! - Unknown body fields, and custom fields the organisation does not have, are
//!   400 field errors; an unknown `lead_id` or `contact_id` too.
//! - Deleting a lead deletes its contacts and opportunities.

use std::collections::HashSet;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use chrono::{DateTime, FixedOffset, Utc};
use serde_json::{Map, Value, json};

use super::CLOSE_DEMO_KEY;
use super::DemoAccount;
use super::close_data::{
    INDUSTRY_FIELD, Kind, LEAD_STATUSES, OPPORTUNITY_STATUSES, ORGANIZATION_ID, Store, TIER_FIELD,
    USER_ID, close_id, close_time, derive_opportunity,
};
use super::control::{Control, RateDecision, RateLimitConfig, Reject, Vendor};
use super::webhooks::{Action, Source, WebhookDialect};
use super::wire::{self, AuthFailure, Dialect, ReqInfo, last_param, split_list};

#[path = "close_webhooks.rs"]
mod webhooks;

pub(crate) const PROVIDER: &str = "close";
const PREFIX: &str = "/close";
const API: &str = "/api/v1";
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 100;

pub(crate) struct Close {
    control: Arc<Control>,
    store: RwLock<Store>,
    templates: HashSet<String>,
}

impl Close {
    pub(crate) fn new(control: Arc<Control>) -> Close {
        let mut templates: HashSet<String> = Kind::ALL
            .iter()
            .flat_map(|k| {
                [
                    format!("{PREFIX}{API}/{}/", k.name()),
                    format!("{PREFIX}{API}/{}/{{id}}/", k.name()),
                ]
            })
            .collect();
        templates.insert(format!("{PREFIX}{API}/webhook/"));
        templates.insert(format!("{PREFIX}{API}/webhook/{{id}}/"));
        Close {
            control,
            store: RwLock::new(Store::seed()),
            templates,
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(PoisonError::into_inner)
    }
}

type S = State<Arc<Close>>;

impl Vendor for Close {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    fn seed_tokens(&self) -> Vec<String> {
        vec![CLOSE_DEMO_KEY.to_owned()]
    }

    fn default_rate_limit(&self) -> RateLimitConfig {
        RateLimitConfig {
            max: 100,
            interval_ms: 1_000,
        }
    }

    fn reset_data(&self) {
        *self.write() = Store::seed();
    }

    fn router(self: Arc<Self>) -> Router {
        let mut router: Router<Arc<Close>> = Router::new();
        for kind in Kind::ALL {
            router = router
                .route(
                    &format!("{API}/{}/", kind.name()),
                    get(move |State(c): S, info: ReqInfo| async move { c.list(kind, &info) }).post(
                        move |State(c): S, body: Bytes| async move {
                            c.create(kind, &body, Source::Api)
                                .map(|(_, v)| Json(v).into_response())
                        },
                    ),
                )
                .route(
                    &format!("{API}/{}/{{id}}/", kind.name()),
                    get(
                        move |State(c): S, Path(id): Path<String>, info: ReqInfo| async move {
                            c.get_one(kind, &id, &info)
                        },
                    )
                    .put(
                        move |State(c): S, Path(id): Path<String>, body: Bytes| async move {
                            c.update(kind, &id, &body, Source::Api).map(Json)
                        },
                    )
                    .delete(
                        move |State(c): S, Path(id): Path<String>| async move {
                            c.delete(kind, &id, Source::Api).map(|()| Json(json!({})))
                        },
                    ),
                );
        }
        router
            .merge(webhooks::routes())
            .method_not_allowed_fallback(|| async {
                error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.")
            })
            .fallback(|| async { error(StatusCode::NOT_FOUND, "Not found.") })
            .layer(middleware::from_fn_with_state(
                self.clone(),
                wire::gate::<Close>,
            ))
            .with_state(self)
    }

    fn demo_account(&self, base_url: &str) -> DemoAccount {
        DemoAccount {
            provider: PROVIDER,
            credentials: json!({ "apiKey": CLOSE_DEMO_KEY }),
            settings: json!({ "baseUrl": format!("{base_url}{PREFIX}{API}") }),
        }
    }

    fn webhooks(self: Arc<Self>) -> Option<Arc<dyn WebhookDialect>> {
        Some(self)
    }
}

/// Seeded records in list shape, with the edge cases: a one-word name, no email, two
/// emails, no phone, no tier; leads without a URL, an address or an industry;
/// opportunities active, won and lost, monthly, without a value or a contact.
pub(crate) fn sample_records(resource: &str) -> Option<Vec<Value>> {
    let store = Store::seed();
    let (kind, picks): (Kind, &[usize]) = match resource {
        "contacts" => (Kind::Contact, &[0, 1, 3, 5, 8]),
        "companies" => (Kind::Lead, &[0, 2, 3, 4, 6]),
        "deals" => (Kind::Opportunity, &[0, 1, 2, 4, 5, 7]),
        _ => return None,
    };
    let table = store.table(kind);
    Some(
        picks
            .iter()
            .filter_map(|i| table.get(*i))
            .map(|r| store.render(kind, r))
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------
// Wire dialect

pub(super) fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn field_errors(errors: Map<String, Value>) -> Reject {
    let body = json!({ "errors": [], "field-errors": errors });
    (StatusCode::BAD_REQUEST, Json(body)).into_response().into()
}

fn field_error(field: &str, message: &str) -> Reject {
    let mut m = Map::new();
    m.insert(field.to_owned(), json!(message));
    field_errors(m)
}

fn not_found(kind: Kind) -> Reject {
    error(
        StatusCode::NOT_FOUND,
        &format!(
            "Empty query: {} matching query does not exist.",
            kind.model()
        ),
    )
    .into()
}

fn unauthorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "The API key or access token is invalid.",
    )
}

fn reset_seconds(d: &RateDecision) -> f64 {
    (d.retry_after_ms as f64 / 1000.0 * 1000.0).round() / 1000.0
}

fn throttled_body(reset: f64) -> Response {
    let body = json!({
        "error": {
            "message": "API call count exceeded for this period",
            "rate_reset": reset,
            "rate_limit_type": "key",
        }
    });
    (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response()
}

impl Dialect for Close {
    const PROVIDER: &'static str = PROVIDER;

    fn control(&self) -> &Control {
        &self.control
    }

    fn route_templates(&self) -> &HashSet<String> {
        &self.templates
    }

    fn credentials(&self, info: &ReqInfo) -> Option<String> {
        let value = info.header(header::AUTHORIZATION.as_str())?;
        if let Some(encoded) = wire::scheme_token(value, &["basic"]) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()?;
            let text = String::from_utf8(decoded).ok()?;
            let (user, _) = text.split_once(':').unwrap_or((&text, ""));
            return (!user.is_empty()).then(|| user.to_owned());
        }
        wire::scheme_token(value, &["bearer"])
    }

    fn fault_response(&self, _info: &ReqInfo, status: StatusCode, body: Option<Value>) -> Response {
        if let Some(body) = body {
            return (status, Json(body)).into_response();
        }
        match status.as_u16() {
            401 => unauthorized(),
            429 => {
                let mut r = throttled_body(1.0);
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                r
            }
            400 => field_errors(Map::new()).into_response(),
            _ => error(status, status.canonical_reason().unwrap_or("Error")),
        }
    }

    fn auth_failure(&self, _info: &ReqInfo, _failure: AuthFailure) -> Response {
        unauthorized()
    }

    fn throttled(&self, _info: &ReqInfo, decision: &RateDecision) -> Response {
        let mut r = throttled_body(reset_seconds(decision));
        r.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(wire::wait_seconds(decision)),
        );
        r
    }

    fn rate_headers(&self, headers: &mut HeaderMap, d: &RateDecision) {
        let reset = reset_seconds(d);
        let combined = format!("limit={}, remaining={}, reset={reset}", d.max, d.remaining);
        if let Ok(v) = HeaderValue::from_str(&combined) {
            headers.insert(HeaderName::from_static("ratelimit"), v);
        }
        let pairs: [(&'static str, String); 3] = [
            ("x-rate-limit-limit", d.max.to_string()),
            ("x-rate-limit-remaining", d.remaining.to_string()),
            ("x-rate-limit-reset", reset.to_string()),
        ];
        for (name, value) in pairs {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), v);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Records

/// The lead search `query` the sandbox understands: `date_updated > "<RFC 3339>"` (or
/// `>=`); anything else is a 400, never a silently ignored filter.
fn parse_query(q: &str) -> Result<(bool, DateTime<FixedOffset>), Reject> {
    let refuse = || {
        field_error(
            "query",
            "The sandbox understands only date_updated > \"<time>\".",
        )
    };
    let rest = q
        .trim()
        .strip_prefix("date_updated")
        .ok_or_else(refuse)?
        .trim_start();
    let (inclusive, value) = match rest.strip_prefix(">=") {
        Some(v) => (true, v),
        None => (false, rest.strip_prefix('>').ok_or_else(refuse)?),
    };
    let value = value.trim().trim_matches('"');
    let t = DateTime::parse_from_rfc3339(value).map_err(|_| refuse())?;
    Ok((inclusive, t))
}

fn only_fields(value: Value, fields: Option<&[String]>) -> Value {
    match (value, fields) {
        (Value::Object(m), Some(fields)) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| fields.iter().any(|f| f == k))
                .collect(),
        ),
        (v, _) => v,
    }
}

fn fields_param(info: &ReqInfo) -> Option<Vec<String>> {
    last_param(&info.pairs(), "_fields").map(split_list)
}

fn count_param(pairs: &[(String, String)], name: &str, default: usize) -> Result<usize, Reject> {
    match last_param(pairs, name) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse::<usize>()
            .map_err(|_| field_error(name, "A valid integer is required.")),
    }
}

/// The fields a client may write, per object (besides `custom.cf_*` ones it has).
fn writable(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Contact => &["lead_id", "name", "title", "emails", "phones", "urls"],
        Kind::Lead => &[
            "name",
            "description",
            "url",
            "status_id",
            "addresses",
            "contacts",
        ],
        Kind::Opportunity => &[
            "lead_id",
            "contact_id",
            "user_id",
            "status_id",
            "note",
            "confidence",
            "value",
            "value_currency",
            "value_period",
            "date_won",
        ],
    }
}

fn custom_field(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::Contact => Some(TIER_FIELD),
        Kind::Lead => Some(INDUSTRY_FIELD),
        Kind::Opportunity => None,
    }
}

/// Checks one written field; `Err` is its field error.
fn check_field(store: &Store, kind: Kind, key: &str, value: &Value) -> Result<(), String> {
    let exists =
        |k: Kind| value.is_null() || value.as_str().is_some_and(|id| store.find(k, id).is_some());
    match key {
        "lead_id" if !exists(Kind::Lead) || value.is_null() => Err("Object does not exist.".into()),
        "contact_id" if !exists(Kind::Contact) => Err("Object does not exist.".into()),
        "emails" => {
            let ok = value.as_array().is_some_and(|list| {
                list.iter().all(|e| {
                    e.get("email")
                        .and_then(Value::as_str)
                        .is_some_and(|a| a.contains('@'))
                })
            });
            ok.then_some(())
                .ok_or_else(|| "Enter a valid email address.".into())
        }
        "phones" => {
            let ok = value.as_array().is_some_and(|list| {
                list.iter()
                    .all(|p| p.get("phone").and_then(Value::as_str).is_some())
            });
            ok.then_some(())
                .ok_or_else(|| "Enter a valid phone number.".into())
        }
        "status_id" => {
            let id = value.as_str().unwrap_or_default();
            let known = match kind {
                Kind::Lead => LEAD_STATUSES.iter().any(|(s, _)| *s == id),
                _ => OPPORTUNITY_STATUSES.iter().any(|(s, _, _)| *s == id),
            };
            known
                .then_some(())
                .ok_or_else(|| "Object does not exist.".into())
        }
        "value" | "confidence" if !(value.is_null() || value.is_i64()) => {
            Err("A valid integer is required.".into())
        }
        "value_period" if !matches!(value.as_str(), Some("one_time" | "monthly" | "annual")) => {
            Err("\"value_period\" is not a valid choice.".into())
        }
        _ => Ok(()),
    }
}

fn normalise_emails(value: &Value) -> Value {
    Value::Array(
        value
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                let email = e.get("email").and_then(Value::as_str).unwrap_or_default();
                json!({
                    "type": e.get("type").and_then(Value::as_str).unwrap_or("office"),
                    "email": email,
                    "email_lower": email.to_lowercase(),
                })
            })
            .collect(),
    )
}

fn normalise_phones(value: &Value) -> Value {
    Value::Array(
        value
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                let phone = p.get("phone").and_then(Value::as_str).unwrap_or_default();
                let digits: String = phone
                    .chars()
                    .filter(|c| c.is_ascii_digit() || *c == '+')
                    .collect();
                json!({
                    "type": p.get("type").and_then(Value::as_str).unwrap_or("office"),
                    "phone": digits,
                    "phone_formatted": phone,
                    "country": "US",
                })
            })
            .collect(),
    )
}

impl Close {
    fn list(&self, kind: Kind, info: &ReqInfo) -> Result<Response, Reject> {
        let pairs = info.pairs();
        let skip = count_param(&pairs, "_skip", 0)?;
        let limit = count_param(&pairs, "_limit", DEFAULT_LIMIT)?;
        if limit > MAX_LIMIT {
            return Err(field_error(
                "_limit",
                &format!("Ensure this value is less than or equal to {MAX_LIMIT}."),
            ));
        }
        let fields = fields_param(info);
        let lead = last_param(&pairs, "lead_id").filter(|_| kind != Kind::Lead);
        let status = last_param(&pairs, "status_type").filter(|_| kind == Kind::Opportunity);
        let since = match last_param(&pairs, "query").filter(|_| kind == Kind::Lead) {
            Some(q) => Some(parse_query(q)?),
            None => None,
        };
        let store = self.read();
        let matched: Vec<&Map<String, Value>> = store
            .table(kind)
            .iter()
            .filter(|r| lead.is_none_or(|l| r.get("lead_id").and_then(Value::as_str) == Some(l)))
            .filter(|r| {
                status.is_none_or(|s| r.get("status_type").and_then(Value::as_str) == Some(s))
            })
            .filter(|r| {
                since.is_none_or(|(inclusive, t)| {
                    let updated = r
                        .get("date_updated")
                        .and_then(Value::as_str)
                        .and_then(|u| DateTime::parse_from_rfc3339(u).ok());
                    updated.is_some_and(|u| if inclusive { u >= t } else { u > t })
                })
            })
            .collect();
        let total = matched.len();
        let data: Vec<Value> = matched
            .into_iter()
            .skip(skip)
            .take(limit)
            .map(|r| only_fields(store.render(kind, r), fields.as_deref()))
            .collect();
        let has_more = skip.saturating_add(data.len()) < total;
        let mut body = json!({ "has_more": has_more, "data": data });
        if kind == Kind::Lead
            && let Some(m) = body.as_object_mut()
        {
            m.insert("total_results".into(), json!(total));
        }
        Ok(Json(body).into_response())
    }

    fn get_one(&self, kind: Kind, id: &str, info: &ReqInfo) -> Result<Response, Reject> {
        let store = self.read();
        let record = store.find(kind, id).ok_or_else(|| not_found(kind))?;
        let fields = fields_param(info);
        Ok(Json(only_fields(store.render(kind, record), fields.as_deref())).into_response())
    }

    /// The written fields, checked: unknown ones and bad values are field errors.
    fn checked(store: &Store, kind: Kind, body: &Bytes) -> Result<Map<String, Value>, Reject> {
        let Ok(Value::Object(input)) = serde_json::from_slice::<Value>(body) else {
            return Err(error(StatusCode::BAD_REQUEST, "Invalid JSON body.").into());
        };
        let mut errors = Map::new();
        for (key, value) in &input {
            let known = writable(kind).contains(&key.as_str()) || custom_field(kind) == Some(key);
            if !known {
                let message = if key.starts_with("custom.") {
                    "Custom field does not exist."
                } else {
                    "Unknown field."
                };
                errors.insert(key.clone(), json!(message));
            } else if let Err(message) = check_field(store, kind, key, value) {
                errors.insert(key.clone(), json!(message));
            }
        }
        if errors.is_empty() {
            Ok(input)
        } else {
            Err(field_errors(errors))
        }
    }

    fn apply(record: &mut Map<String, Value>, input: Map<String, Value>) {
        for (key, value) in input {
            let value = match key.as_str() {
                "emails" => normalise_emails(&value),
                "phones" => normalise_phones(&value),
                _ => value,
            };
            if key.starts_with("custom.") && value.is_null() {
                record.remove(&key);
            } else {
                record.insert(key, value);
            }
        }
    }

    fn blank(kind: Kind, serial: u64) -> Map<String, Value> {
        let now = close_time(Utc::now());
        let mut m = Map::new();
        m.insert("id".into(), json!(close_id(kind, serial)));
        m.insert("organization_id".into(), json!(ORGANIZATION_ID));
        match kind {
            Kind::Contact => {
                for (k, v) in [
                    ("lead_id", Value::Null),
                    ("name", json!("")),
                    ("display_name", json!("")),
                    ("title", json!("")),
                    ("emails", json!([])),
                    ("phones", json!([])),
                    ("urls", json!([])),
                ] {
                    m.insert(k.into(), v);
                }
            }
            Kind::Lead => {
                let (status_id, label) = LEAD_STATUSES[0];
                for (k, v) in [
                    ("display_name", json!("")),
                    ("name", json!("")),
                    ("status_id", json!(status_id)),
                    ("status_label", json!(label)),
                    ("description", Value::Null),
                    ("url", Value::Null),
                    ("addresses", json!([])),
                ] {
                    m.insert(k.into(), v);
                }
            }
            Kind::Opportunity => {
                let (status_id, _, _) = OPPORTUNITY_STATUSES[0];
                for (k, v) in [
                    ("lead_id", Value::Null),
                    ("contact_id", Value::Null),
                    ("user_id", json!(USER_ID)),
                    ("status_id", json!(status_id)),
                    ("note", json!("")),
                    ("confidence", json!(0)),
                    ("value", Value::Null),
                    ("value_currency", json!("USD")),
                    ("value_period", json!("one_time")),
                    ("date_won", Value::Null),
                ] {
                    m.insert(k.into(), v);
                }
            }
        }
        m.insert("date_created".into(), json!(now));
        m.insert("date_updated".into(), json!(now));
        m.insert("created_by".into(), json!(USER_ID));
        m.insert("updated_by".into(), json!(USER_ID));
        m
    }

    fn derive(store: &Store, kind: Kind, m: &mut Map<String, Value>) {
        match kind {
            Kind::Contact => {
                let name = m.get("name").cloned().unwrap_or(Value::Null);
                m.insert("display_name".into(), name);
            }
            Kind::Lead => {
                let name = m.get("name").cloned().unwrap_or(Value::Null);
                m.insert("display_name".into(), name);
                let label = m.get("status_id").and_then(Value::as_str).and_then(|id| {
                    LEAD_STATUSES
                        .iter()
                        .find(|(s, _)| *s == id)
                        .map(|(_, l)| *l)
                });
                if let Some(label) = label {
                    m.insert("status_label".into(), json!(label));
                }
                let id = m
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                m.insert(
                    "html_url".into(),
                    json!(format!("https://app.close.com/lead/{id}/")),
                );
            }
            Kind::Opportunity => derive_opportunity(store, m),
        }
    }

    /// Creates a record; its id and its rendering.
    pub(super) fn create(
        &self,
        kind: Kind,
        body: &Bytes,
        source: Source,
    ) -> Result<(String, Value), Reject> {
        let mut store = self.write();
        let mut input = Self::checked(&store, kind, body)?;
        if kind == Kind::Opportunity && input.get("lead_id").is_none_or(Value::is_null) {
            return Err(field_error("lead_id", "This field is required."));
        }
        let nested: Vec<Value> = match input.remove("contacts") {
            Some(Value::Array(list)) => list,
            _ => Vec::new(),
        };
        let mut contacts = Vec::new();
        for c in &nested {
            let bytes = Bytes::from(c.to_string());
            let mut checked = Self::checked(&store, Kind::Contact, &bytes)?;
            checked.remove("lead_id");
            contacts.push(checked);
        }
        let serial = store.next_serial;
        store.next_serial += 1;
        let mut record = Self::blank(kind, serial);
        // A contact without a lead gets a new lead named after it, as Close does.
        let mut new_lead = None;
        if kind == Kind::Contact && input.get("lead_id").is_none_or(Value::is_null) {
            let mut lead = Self::blank(Kind::Lead, serial);
            let name = input.get("name").cloned().unwrap_or(json!(""));
            lead.insert("name".into(), name);
            Self::derive(&store, Kind::Lead, &mut lead);
            input.insert("lead_id".into(), lead["id"].clone());
            new_lead = Some(lead);
        }
        if let Some(lead) = new_lead {
            let id = lead["id"].as_str().unwrap_or_default().to_owned();
            store.leads.push(lead);
            self.report(&store, Kind::Lead, &id, Action::Created, source, None);
        }
        Self::apply(&mut record, input);
        Self::derive(&store, kind, &mut record);
        let id = record["id"].as_str().unwrap_or_default().to_owned();
        store.table_mut(kind).push(record);
        for c in contacts {
            let serial = store.next_serial;
            store.next_serial += 1;
            let mut contact = Self::blank(Kind::Contact, serial);
            Self::apply(&mut contact, c);
            contact.insert("lead_id".into(), json!(id));
            Self::derive(&store, Kind::Contact, &mut contact);
            let cid = contact["id"].as_str().unwrap_or_default().to_owned();
            store.contacts.push(contact);
            self.report(&store, Kind::Contact, &cid, Action::Created, source, None);
        }
        self.report(&store, kind, &id, Action::Created, source, None);
        let rendered = store
            .find(kind, &id)
            .map_or(Value::Null, |r| store.render(kind, r));
        Ok((id, rendered))
    }

    pub(super) fn update(
        &self,
        kind: Kind,
        id: &str,
        body: &Bytes,
        source: Source,
    ) -> Result<Value, Reject> {
        let mut store = self.write();
        let before = store
            .find(kind, id)
            .cloned()
            .ok_or_else(|| not_found(kind))?;
        let mut input = Self::checked(&store, kind, body)?;
        input.remove("contacts");
        let mut record = before.clone();
        Self::apply(&mut record, input);
        record.insert("date_updated".into(), json!(close_time(Utc::now())));
        Self::derive(&store, kind, &mut record);
        if let Some(slot) = store
            .table_mut(kind)
            .iter_mut()
            .find(|r| r.get("id").and_then(Value::as_str) == Some(id))
        {
            *slot = record;
        }
        self.report(&store, kind, id, Action::Updated, source, Some(&before));
        Ok(store
            .find(kind, id)
            .map_or(Value::Null, |r| store.render(kind, r)))
    }

    pub(super) fn delete(&self, kind: Kind, id: &str, source: Source) -> Result<(), Reject> {
        let mut store = self.write();
        let before = store
            .find(kind, id)
            .cloned()
            .ok_or_else(|| not_found(kind))?;
        let mut gone = vec![(kind, id.to_owned(), before)];
        if kind == Kind::Lead {
            for child in [Kind::Contact, Kind::Opportunity] {
                for r in store.table(child) {
                    if r.get("lead_id").and_then(Value::as_str) == Some(id) {
                        let cid = r.get("id").and_then(Value::as_str).unwrap_or_default();
                        gone.push((child, cid.to_owned(), r.clone()));
                    }
                }
            }
        }
        for (k, gid, before) in gone.into_iter().rev() {
            store
                .table_mut(k)
                .retain(|r| r.get("id").and_then(Value::as_str) != Some(gid.as_str()));
            self.report(&store, k, &gid, Action::Deleted, source, Some(&before));
        }
        Ok(())
    }
}
