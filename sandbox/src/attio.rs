//! Attio REST v2 (people, companies, deals) as described in `/work/shared/vendors.md` §8,
//! served under `/attio`, so the base URL a client uses is `{sandbox}/attio/v2`.
//!
//! Every request passes the shared gate first (`wire::gate`): counted, maybe hijacked by an
//! injected fault, authenticated (`Authorization: Bearer <API key>`) and charged to its
//! token's window.
//!
//! What is reproduced:
//! - Listing is `POST /v2/objects/{object}/records/query` with `limit` and `offset` in the
//!   JSON body; the answer is `{"data": [...]}` with no cursor and no has-more flag, so a
//!   client stops on a short page. `GET` on that path is a 404, as on the real API.
//! - Objects are addressed by slug or by object id; records carry the composite id
//!   `{workspace_id, object_id, record_id}` and every attribute as an array of typed value
//!   objects (`attio_data.rs`).
//! - `GET`, `POST` (create), `PATCH` (update: single-valued attributes replaced,
//!   multiselect values appended), `PUT` (the same, but multiselect values overwritten)
//!   and `DELETE` on records; writes take plain values. Attributes a write does not name
//!   keep their values.
//! - Errors in Attio's envelope `{status_code, type, code, message}`; a 429 carries
//!   `Retry-After` as an HTTP date and no other rate header (Attio sends none).
//! - Webhooks (`attio_webhooks.rs`): `POST /v2/webhooks` returns the signing `secret`;
//!   deliveries are signed with `Attio-Signature` (hex HMAC-SHA256 of the raw body).
//!
//! Choices where vendors.md is silent or tagged [M]/[T]:
//! - One rolling window of 100 requests per second per token (the documented read limit;
//!   the separate 25 writes per second are not enforced).
//! - `limit` above 500 or below 1, or a negative `offset`, is a 400 `validation_type`.
//! - Filters: `record_id` (`$in` or a plain id), `email_addresses` (shorthand or `$eq`),
//!   `name` (shorthand equality on the text or full name) and `created_at` (`$gt`, `$gte`,
//!   `$lt`, `$lte`); `$and` of those. Anything else is a 400 `filter_error`. Sorts: only
//!   `created_at` (`asc` or `desc`); the default order is creation order.
//! - Deleting an unknown record is a 404; deleted records are gone for good.

use std::collections::HashSet;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::ATTIO_DEMO_TOKEN;
use super::DemoAccount;
use super::attio_data::{Actor, Object, Record, Store, record_id, typed};
use super::control::{Control, RateDecision, RateLimitConfig, Reject, Vendor};
use super::webhooks::{Action, Source, WebhookDialect};
use super::wire::{self, AuthFailure, Dialect, ReqInfo};

#[path = "attio_webhooks.rs"]
mod webhooks;

pub(crate) const PROVIDER: &str = "attio";
const PREFIX: &str = "/attio";
const MAX_LIMIT: u64 = 500;
const DEFAULT_LIMIT: u64 = 500;
const ROUTES: [&str; 6] = [
    "/v2/objects/{object}/records/query",
    "/v2/objects/{object}/records",
    "/v2/objects/{object}/records/{record_id}",
    "/v2/webhooks",
    "/v2/webhooks/{webhook_id}",
    "/v2/self",
];

pub(crate) struct Attio {
    control: Arc<Control>,
    store: RwLock<Store>,
    templates: HashSet<String>,
}

impl Attio {
    pub(crate) fn new(control: Arc<Control>) -> Attio {
        Attio {
            control,
            store: RwLock::new(Store::seed()),
            templates: ROUTES.iter().map(|r| format!("{PREFIX}{r}")).collect(),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(PoisonError::into_inner)
    }
}

type S = State<Arc<Attio>>;
type Pair = Path<(String, String)>;

impl Vendor for Attio {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    fn seed_tokens(&self) -> Vec<String> {
        vec![ATTIO_DEMO_TOKEN.to_owned()]
    }

    fn default_rate_limit(&self) -> RateLimitConfig {
        // 100 read requests per second (vendors.md §8).
        RateLimitConfig {
            max: 100,
            interval_ms: 1_000,
        }
    }

    fn reset_data(&self) {
        *self.write() = Store::seed();
    }

    fn router(self: Arc<Self>) -> Router {
        let router: Router<Arc<Attio>> = Router::new()
            .route(
                "/v2/objects/{object}/records/query",
                post(|State(a): S, Path(o): Path<String>, body: Bytes| async move {
                    a.query(&o, &body)
                }),
            )
            .route(
                "/v2/objects/{object}/records",
                post(|State(a): S, Path(o): Path<String>, body: Bytes| async move {
                    a.create(&o, &body, Source::Api)
                }),
            )
            .route(
                "/v2/objects/{object}/records/{record_id}",
                get(|State(a): S, Path((o, id)): Pair| async move { a.get_one(&o, &id) })
                    .patch(
                        |State(a): S, Path((o, id)): Pair, body: Bytes| async move {
                            a.update(&o, &id, &body, Source::Api, false)
                        },
                    )
                    .put(
                        |State(a): S, Path((o, id)): Pair, body: Bytes| async move {
                            a.update(&o, &id, &body, Source::Api, true)
                        },
                    )
                    .delete(|State(a): S, Path((o, id)): Pair| async move {
                        a.delete(&o, &id, Source::Api)
                    }),
            )
            .route(
                "/v2/self",
                get(|| async {
                    Json(json!({
                        "active": true,
                        "scope": "record_permission:read-write object_configuration:read webhook:read-write",
                        "client_id": null,
                        "token_type": "Bearer",
                        "workspace_id": super::attio_data::WORKSPACE_ID,
                        "workspace_name": "Tessera Sandbox",
                        "workspace_slug": super::attio_data::WORKSPACE_SLUG,
                    }))
                }),
            )
            .merge(webhooks::routes());
        router
            .method_not_allowed_fallback(|info: ReqInfo| async move { route_not_found(&info) })
            .fallback(|info: ReqInfo| async move { route_not_found(&info) })
            .layer(middleware::from_fn_with_state(
                self.clone(),
                wire::gate::<Attio>,
            ))
            .with_state(self)
    }

    fn demo_account(&self, base_url: &str) -> DemoAccount {
        DemoAccount {
            provider: PROVIDER,
            credentials: json!({ "apiKey": ATTIO_DEMO_TOKEN }),
            settings: json!({
                "baseUrl": format!("{base_url}{PREFIX}/v2"),
                "peopleObjectId": Object::People.object_id(),
                "companiesObjectId": Object::Companies.object_id(),
                "dealsObjectId": Object::Deals.object_id(),
            }),
        }
    }

    fn webhooks(self: Arc<Self>) -> Option<Arc<dyn WebhookDialect>> {
        Some(self)
    }
}

/// Seeded records in list shape, with the edge cases: no email, two emails, no company,
/// no tier, a location; companies with two domains, no description, no category; deals
/// at every stage, without a value, with cents, with two people.
pub(crate) fn sample_records(resource: &str) -> Option<Vec<Value>> {
    let store = Store::seed();
    let (object, picks): (Object, &[usize]) = match resource {
        "contacts" => (Object::People, &[0, 1, 3, 4, 6, 7]),
        "companies" => (Object::Companies, &[0, 1, 2, 3, 6]),
        "deals" => (Object::Deals, &[0, 1, 2, 3, 5]),
        _ => return None,
    };
    let list = store.list(object);
    Some(
        picks
            .iter()
            .filter_map(|i| list.get(*i))
            .map(|r| r.render(object))
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------
// Wire dialect: error bodies, 429s

pub(super) fn error(status: StatusCode, kind: &str, code: &str, message: &str) -> Response {
    let body = json!({
        "status_code": status.as_u16(),
        "type": kind,
        "code": code,
        "message": message,
    });
    (status, Json(body)).into_response()
}

fn invalid(code: &str, message: &str) -> Reject {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        code,
        message,
    )
    .into()
}

fn not_found(message: &str) -> Reject {
    error(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "not_found",
        message,
    )
    .into()
}

fn route_not_found(info: &ReqInfo) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "not_found",
        &format!("Route {} {} not found.", info.method, info.path),
    )
}

fn unauthorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "auth_error",
        "unauthorized",
        "Invalid or expired access token.",
    )
}

fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn rate_limited(decision: Option<&RateDecision>) -> Response {
    let mut response = error(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limit_error",
        "rate_limit_exceeded",
        "Rate limit exceeded, please try again later",
    );
    let wait = decision.map_or(1, wire::wait_seconds);
    let at = Utc::now() + chrono::Duration::seconds(i64::try_from(wait).unwrap_or(1));
    if let Ok(v) = HeaderValue::from_str(&http_date(at)) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("retry-after"), v);
    }
    response
}

impl Dialect for Attio {
    const PROVIDER: &'static str = PROVIDER;

    fn control(&self) -> &Control {
        &self.control
    }

    fn route_templates(&self) -> &HashSet<String> {
        &self.templates
    }

    fn fault_response(&self, _info: &ReqInfo, status: StatusCode, body: Option<Value>) -> Response {
        if let Some(body) = body {
            return (status, Json(body)).into_response();
        }
        match status.as_u16() {
            401 => unauthorized(),
            429 => rate_limited(None),
            404 => error(
                status,
                "invalid_request_error",
                "not_found",
                "The referenced object was not found.",
            ),
            s if s >= 500 => error(
                status,
                "api_error",
                "internal_server_error",
                "An unexpected error occurred.",
            ),
            _ => error(
                status,
                "invalid_request_error",
                "validation_type",
                status.canonical_reason().unwrap_or("Error"),
            ),
        }
    }

    fn auth_failure(&self, _info: &ReqInfo, _failure: AuthFailure) -> Response {
        unauthorized()
    }

    fn throttled(&self, _info: &ReqInfo, decision: &RateDecision) -> Response {
        rate_limited(Some(decision))
    }
}

// ---------------------------------------------------------------------------------------
// Records

fn object_of(raw: &str) -> Result<Object, Reject> {
    Object::parse(raw)
        .ok_or_else(|| not_found(&format!("Object with slug/ID \"{raw}\" not found.")))
}

fn json_object(body: &Bytes) -> Result<Map<String, Value>, Reject> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(invalid(
            "validation_type",
            "Body payload validation error: expected a JSON object.",
        )),
    }
}

fn whole(v: Option<&Value>, name: &str, default: u64) -> Result<u64, Reject> {
    match v {
        None | Some(Value::Null) => Ok(default),
        Some(n) => n.as_u64().ok_or_else(|| {
            invalid(
                "validation_type",
                &format!(
                    "Body payload validation error: \"{name}\" must be a non-negative integer."
                ),
            )
        }),
    }
}

/// The text a filter's shorthand compares with, per attribute.
fn texts(record: &Record, slug: &str) -> Vec<String> {
    record
        .values
        .get(slug)
        .into_iter()
        .flatten()
        .filter_map(|v| {
            ["email_address", "value", "full_name", "domain"]
                .iter()
                .find_map(|k| v.get(*k).and_then(Value::as_str))
                .map(str::to_owned)
        })
        .collect()
}

fn time_of(v: &Value) -> Result<DateTime<Utc>, Reject> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| invalid("filter_error", "Error in filter: invalid timestamp."))
}

/// Whether `record` passes `filter` (see the module comment for what is understood).
fn passes(object: Object, record: &Record, filter: &Map<String, Value>) -> Result<bool, Reject> {
    for (key, cond) in filter {
        let ok = match key.as_str() {
            "$and" => {
                let parts = cond.as_array().ok_or_else(|| {
                    invalid("filter_error", "Error in filter: $and takes a list.")
                })?;
                let mut all = true;
                for part in parts {
                    let part = part.as_object().ok_or_else(|| {
                        invalid("filter_error", "Error in filter: $and takes objects.")
                    })?;
                    all &= passes(object, record, part)?;
                }
                all
            }
            "record_id" => match cond {
                Value::String(id) => record.record_id == *id,
                Value::Object(m) => match m.get("$in").and_then(Value::as_array) {
                    Some(ids) => ids.iter().any(|i| i.as_str() == Some(&record.record_id)),
                    None => match m.get("$eq").and_then(Value::as_str) {
                        Some(id) => record.record_id == id,
                        None => {
                            return Err(invalid(
                                "filter_error",
                                "Error in filter: record_id takes $eq or $in.",
                            ));
                        }
                    },
                },
                _ => return Err(invalid("filter_error", "Error in filter.")),
            },
            "created_at" => {
                let Value::Object(m) = cond else {
                    return Err(invalid("filter_error", "Error in filter."));
                };
                let mut all = true;
                for (op, v) in m {
                    let t = time_of(v)?;
                    all &= match op.as_str() {
                        "$gt" => record.created_at > t,
                        "$gte" => record.created_at >= t,
                        "$lt" => record.created_at < t,
                        "$lte" => record.created_at <= t,
                        _ => {
                            return Err(invalid(
                                "filter_error",
                                &format!("Error in filter: unknown operator {op}."),
                            ));
                        }
                    };
                }
                all
            }
            slug if matches!(slug, "email_addresses" | "name")
                && object.attribute(slug).is_some() =>
            {
                let wanted = match cond {
                    Value::String(s) => s.clone(),
                    Value::Object(m) => match m.get("$eq").and_then(Value::as_str) {
                        Some(s) => s.to_owned(),
                        None => return Err(invalid("filter_error", "Error in filter.")),
                    },
                    _ => return Err(invalid("filter_error", "Error in filter.")),
                };
                texts(record, slug)
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(&wanted))
            }
            other => {
                return Err(invalid(
                    "filter_error",
                    &format!("Error in filter: unknown attribute slug \"{other}\"."),
                ));
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// One attribute of a write: its slug, whether it is multiselect, its typed values.
type Written = (&'static str, bool, Vec<Value>);

/// Values of a write body (`{"data": {"values": {...}}}`), typed.
fn typed_values(object: Object, body: &Bytes, at: DateTime<Utc>) -> Result<Vec<Written>, Reject> {
    let input = json_object(body)?;
    let values = input
        .get("data")
        .and_then(|d| d.get("values"))
        .and_then(Value::as_object)
        .ok_or_else(|| {
            invalid(
                "validation_type",
                "Body payload validation error: data.values is required.",
            )
        })?;
    let mut out = Vec::new();
    for (slug, given) in values {
        let a = object.attribute(slug).ok_or_else(|| {
            invalid(
                "value_not_found",
                &format!("Cannot find attribute with slug/ID \"{slug}\"."),
            )
        })?;
        let items: Vec<&Value> = match given {
            Value::Array(items) => items.iter().collect(),
            Value::Null => Vec::new(),
            single => vec![single],
        };
        if !a.multi && items.len() > 1 {
            return Err(invalid(
                "validation_type",
                &format!("Attribute \"{slug}\" holds one value."),
            ));
        }
        let mut typed_items = Vec::new();
        for item in items {
            typed_items.push(
                typed(object, a, item, at, Actor::ApiToken)
                    .map_err(|m| invalid("validation_type", &m))?,
            );
        }
        out.push((a.slug, a.multi, typed_items));
    }
    Ok(out)
}

impl Attio {
    fn query(&self, object: &str, body: &Bytes) -> Result<Response, Reject> {
        let object = object_of(object)?;
        let input = json_object(body)?;
        let limit = whole(input.get("limit"), "limit", DEFAULT_LIMIT)?;
        if limit == 0 || limit > MAX_LIMIT {
            return Err(invalid(
                "validation_type",
                &format!(
                    "Body payload validation error: \"limit\" must be between 1 and {MAX_LIMIT}."
                ),
            ));
        }
        let offset = whole(input.get("offset"), "offset", 0)?;
        let filter = match input.get("filter") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return Err(invalid("filter_error", "Error in filter.")),
        };
        let mut descending = false;
        if let Some(sorts) = input.get("sorts").filter(|s| !s.is_null()) {
            for sort in sorts.as_array().into_iter().flatten() {
                if sort.get("attribute").and_then(Value::as_str) != Some("created_at") {
                    return Err(invalid(
                        "validation_type",
                        "Body payload validation error: only created_at can be sorted on.",
                    ));
                }
                descending = sort.get("direction").and_then(Value::as_str) == Some("desc");
            }
        }
        let store = self.read();
        let mut matched = Vec::new();
        for r in store.list(object) {
            if passes(object, r, &filter)? {
                matched.push(r);
            }
        }
        if descending {
            matched.reverse();
        }
        let data: Vec<Value> = matched
            .into_iter()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(usize::try_from(limit).unwrap_or(0))
            .map(|r| r.render(object))
            .collect();
        Ok(Json(json!({ "data": data })).into_response())
    }

    fn get_one(&self, object: &str, id: &str) -> Result<Response, Reject> {
        let object = object_of(object)?;
        let store = self.read();
        let r = store
            .find(object, id)
            .ok_or_else(|| not_found(&format!("Record with ID \"{id}\" not found.")))?;
        Ok(Json(json!({ "data": r.render(object) })).into_response())
    }

    fn create(&self, object: &str, body: &Bytes, source: Source) -> Result<Response, Reject> {
        let (_, rendered) = self.create_record(object, body, source)?;
        Ok(Json(json!({ "data": rendered })).into_response())
    }

    /// Creates a record; its id and its rendering.
    pub(super) fn create_record(
        &self,
        object: &str,
        body: &Bytes,
        source: Source,
    ) -> Result<(String, Value), Reject> {
        let object = object_of(object)?;
        let at = Utc::now();
        let values = typed_values(object, body, at)?;
        let mut store = self.write();
        let serial = store.next_serial;
        store.next_serial += 1;
        let mut record = Record {
            record_id: record_id(object, serial),
            created_at: at,
            values: Default::default(),
        };
        for (slug, _, items) in values {
            if !items.is_empty() {
                record.values.insert(slug.to_owned(), items);
            }
        }
        let rendered = record.render(object);
        let id = record.record_id.clone();
        store.records.entry(object).or_default().push(record);
        self.report(object, &id, Action::Created, source);
        drop(store);
        Ok((id, rendered))
    }

    pub(super) fn update(
        &self,
        object: &str,
        id: &str,
        body: &Bytes,
        source: Source,
        overwrite: bool,
    ) -> Result<Response, Reject> {
        let object = object_of(object)?;
        let at = Utc::now();
        let values = typed_values(object, body, at)?;
        let mut store = self.write();
        let record = store
            .find_mut(object, id)
            .ok_or_else(|| not_found(&format!("Record with ID \"{id}\" not found.")))?;
        for (slug, multi, items) in values {
            if multi && !overwrite {
                // PATCH appends multiselect values; PUT overwrites them.
                let list = record.values.entry(slug.to_owned()).or_default();
                for item in items {
                    let same = |v: &Value| {
                        let strip = |x: &Value| {
                            let mut x = x.clone();
                            if let Some(m) = x.as_object_mut() {
                                m.remove("active_from");
                                m.remove("created_by_actor");
                            }
                            x
                        };
                        strip(v) == strip(&item)
                    };
                    if !list.iter().any(same) {
                        list.push(item);
                    }
                }
            } else if items.is_empty() {
                record.values.remove(slug);
            } else {
                record.values.insert(slug.to_owned(), items);
            }
        }
        let rendered = record.render(object);
        self.report(object, id, Action::Updated, source);
        drop(store);
        Ok(Json(json!({ "data": rendered })).into_response())
    }

    pub(super) fn delete(
        &self,
        object: &str,
        id: &str,
        source: Source,
    ) -> Result<Response, Reject> {
        let object = object_of(object)?;
        let mut store = self.write();
        let list = store.records.entry(object).or_default();
        let before = list.len();
        list.retain(|r| r.record_id != id);
        if list.len() == before {
            return Err(not_found(&format!("Record with ID \"{id}\" not found.")));
        }
        self.report(object, id, Action::Deleted, source);
        drop(store);
        Ok(Json(json!({})).into_response())
    }

    /// Some live record of `object`, for `/touch` without an id.
    pub(super) fn any_record(&self, object: Object) -> Option<String> {
        self.read()
            .list(object)
            .first()
            .map(|r| r.record_id.clone())
    }

    pub(super) fn record_exists(&self, object: Object, id: &str) -> bool {
        self.read().find(object, id).is_some()
    }
}
