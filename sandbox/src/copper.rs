//! Copper Developer API v1 (people, companies, opportunities) as described in
//! `/work/shared/vendors.md` §10, served under `/copper`, so the base URL a client uses is
//! `{sandbox}/copper/developer_api/v1`.
//!
//! Every request passes the shared gate first (`wire::gate`): counted, maybe hijacked by an
//! injected fault, authenticated and charged to its key's window. Authentication is
//! Copper's three headers: `X-PW-AccessToken` (the API key), `X-PW-Application:
//! developer_api` and `X-PW-UserEmail` (the key owner's email); an OAuth `Bearer` token is
//! accepted as well.
//!
//! What is reproduced:
//! - Listing is `POST /{entity}/search` with `page_number` (from 1) and `page_size`
//!   (default 20, at most 200) in the JSON body. The answer is a **bare array**, with the
//!   total in the `X-PW-TOTAL` header. `ids`, `emails` (people), `minimum_modified_date`,
//!   `maximum_modified_date` (unix seconds), `sort_by` and `sort_direction` are honoured.
//! - Timestamps are unix seconds; custom fields are `{custom_field_definition_id, value}`
//!   arrays; an opportunity's `close_date` is `M/D/YYYY`.
//! - `GET`, `PUT` (only the given fields change, `null` clears one) and `DELETE` (answers
//!   `{"id", "is_deleted": true}`) on `/{entity}/{id}`; `POST /{entity}` creates.
//! - Errors: `{"success": false, "status", "message"}`; `404` is `Resource not found`.
//! - A rolling window of 180 requests per minute, then 429 with no rate header at all.
//!
//! Choices where vendors.md is silent or tagged [M]/[T]:
//! - A missing or wrong `X-PW-Application` or `X-PW-UserEmail` is a 401 like a bad key.
//! - Writes with unknown fields, or with a custom field definition the account does not
//!   have, are 422s. A person's `name` is derived from `first_name` and `last_name` when
//!   those are given, and split into them when only `name` is.
//! - Sorting ties are broken by id, so paging is stable whatever `sort_by` says.
//! - Copper pushes webhooks too, but this sandbox does not model them.

use std::collections::HashSet;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde_json::{Map, Value, json};

use super::COPPER_DEMO_KEY;
use super::DemoAccount;
use super::control::{Control, RateDecision, RateLimitConfig, Reject, Vendor};
use super::copper_data::{
    Entity, INDUSTRY_FIELD, OWNER_EMAIL, STAGES, STATUSES, Store, TIER_FIELD,
};
use super::wire::{self, AuthFailure, Dialect, ReqInfo};

pub(crate) const PROVIDER: &str = "copper";
const PREFIX: &str = "/copper";
const API: &str = "/developer_api/v1";
const DEFAULT_PAGE_SIZE: u64 = 20;
const MAX_PAGE_SIZE: u64 = 200;
const MAX_RESULTS: u64 = 100_000;

pub(crate) struct Copper {
    control: Arc<Control>,
    store: RwLock<Store>,
    templates: HashSet<String>,
}

impl Copper {
    pub(crate) fn new(control: Arc<Control>) -> Copper {
        Copper {
            control,
            store: RwLock::new(Store::seed()),
            templates: Entity::ALL
                .iter()
                .flat_map(|e| {
                    [
                        format!("{PREFIX}{API}/{}", e.path()),
                        format!("{PREFIX}{API}/{}/search", e.path()),
                        format!("{PREFIX}{API}/{}/{{id}}", e.path()),
                    ]
                })
                .collect(),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(PoisonError::into_inner)
    }
}

type S = State<Arc<Copper>>;

impl Vendor for Copper {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    fn seed_tokens(&self) -> Vec<String> {
        vec![COPPER_DEMO_KEY.to_owned()]
    }

    fn default_rate_limit(&self) -> RateLimitConfig {
        // 180 requests per minute, rolling (vendors.md §10).
        RateLimitConfig {
            max: 180,
            interval_ms: 60_000,
        }
    }

    fn reset_data(&self) {
        *self.write() = Store::seed();
    }

    fn router(self: Arc<Self>) -> Router {
        let mut router: Router<Arc<Copper>> = Router::new();
        for e in Entity::ALL {
            router = router
                .route(
                    &format!("{API}/{}/search", e.path()),
                    post(move |State(c): S, body: Bytes| async move { c.search(e, &body) }),
                )
                .route(
                    &format!("{API}/{}", e.path()),
                    post(move |State(c): S, body: Bytes| async move { c.create(e, &body) }),
                )
                .route(
                    &format!("{API}/{}/{{id}}", e.path()),
                    get(
                        move |State(c): S, Path(id): Path<String>| async move { c.get_one(e, &id) },
                    )
                    .put(
                        move |State(c): S, Path(id): Path<String>, body: Bytes| async move {
                            c.update(e, &id, &body)
                        },
                    )
                    .delete(
                        move |State(c): S, Path(id): Path<String>| async move { c.delete(e, &id) },
                    ),
                );
        }
        router
            .method_not_allowed_fallback(|| async {
                error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
            })
            .fallback(|| async { error(StatusCode::NOT_FOUND, "Resource not found") })
            .layer(middleware::from_fn_with_state(
                self.clone(),
                wire::gate::<Copper>,
            ))
            .with_state(self)
    }

    fn demo_account(&self, base_url: &str) -> DemoAccount {
        DemoAccount {
            provider: PROVIDER,
            credentials: json!({ "apiKey": COPPER_DEMO_KEY }),
            settings: json!({
                "baseUrl": format!("{base_url}{PREFIX}{API}"),
                "userEmail": OWNER_EMAIL,
            }),
        }
    }
}

/// Seeded records in search shape, with the edge cases: no email, two emails, no company,
/// no tier, an address; companies without an address, details or website; opportunities
/// open, won, lost and abandoned, with cents, without a value, a contact or a close date.
pub(crate) fn sample_records(resource: &str) -> Option<Vec<Value>> {
    let store = Store::seed();
    let (entity, picks): (Entity, &[usize]) = match resource {
        "contacts" => (Entity::People, &[0, 1, 3, 4, 6]),
        "companies" => (Entity::Companies, &[0, 2, 3, 4, 5]),
        "deals" => (Entity::Opportunities, &[0, 1, 2, 3, 5, 7]),
        _ => return None,
    };
    let table = store.table(entity);
    Some(
        picks
            .iter()
            .filter_map(|i| table.get(*i))
            .map(|r| Value::Object(r.clone()))
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------
// Wire dialect

fn error(status: StatusCode, message: &str) -> Response {
    let body = json!({"success": false, "status": status.as_u16(), "message": message});
    (status, Json(body)).into_response()
}

fn invalid(message: &str) -> Reject {
    error(
        StatusCode::UNPROCESSABLE_ENTITY,
        &format!("Invalid input: {message}"),
    )
    .into()
}

fn not_found() -> Reject {
    error(StatusCode::NOT_FOUND, "Resource not found").into()
}

impl Dialect for Copper {
    const PROVIDER: &'static str = PROVIDER;

    fn control(&self) -> &Control {
        &self.control
    }

    fn route_templates(&self) -> &HashSet<String> {
        &self.templates
    }

    fn credentials(&self, info: &ReqInfo) -> Option<String> {
        if let Some(token) = wire::bearer_token(&info.headers) {
            return Some(token);
        }
        let token = info.header("x-pw-accesstoken")?.trim();
        let application = info.header("x-pw-application")?.trim();
        let email = info.header("x-pw-useremail")?.trim();
        (application == "developer_api"
            && email.eq_ignore_ascii_case(OWNER_EMAIL)
            && !token.is_empty())
        .then(|| token.to_owned())
    }

    fn fault_response(&self, _info: &ReqInfo, status: StatusCode, body: Option<Value>) -> Response {
        if let Some(body) = body {
            return (status, Json(body)).into_response();
        }
        let message = match status.as_u16() {
            401 => "Unauthorized",
            404 => "Resource not found",
            429 => "Rate limit exceeded",
            _ => status.canonical_reason().unwrap_or("Error"),
        };
        error(status, message)
    }

    fn auth_failure(&self, _info: &ReqInfo, _failure: AuthFailure) -> Response {
        error(StatusCode::UNAUTHORIZED, "Unauthorized")
    }

    fn throttled(&self, _info: &ReqInfo, _decision: &RateDecision) -> Response {
        error(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded")
    }
}

// ---------------------------------------------------------------------------------------
// Records

fn parse_object(body: &Bytes) -> Result<Map<String, Value>, Reject> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(invalid("the body must be a JSON object")),
    }
}

fn number(input: &Map<String, Value>, key: &str, default: u64) -> Result<u64, Reject> {
    match input.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| invalid(&format!("{key} must be a positive integer"))),
    }
}

fn id_of(raw: &str) -> Result<i64, Reject> {
    raw.trim().parse::<i64>().map_err(|_| not_found())
}

/// The fields a client may write, per entity.
fn writable(e: Entity) -> &'static [&'static str] {
    match e {
        Entity::People => &[
            "name",
            "first_name",
            "last_name",
            "prefix",
            "middle_name",
            "suffix",
            "title",
            "emails",
            "phone_numbers",
            "address",
            "company_id",
            "assignee_id",
            "details",
            "tags",
            "websites",
            "custom_fields",
        ],
        Entity::Companies => &[
            "name",
            "address",
            "assignee_id",
            "details",
            "email_domain",
            "phone_numbers",
            "tags",
            "websites",
            "custom_fields",
        ],
        Entity::Opportunities => &[
            "name",
            "assignee_id",
            "close_date",
            "company_id",
            "details",
            "pipeline_id",
            "pipeline_stage_id",
            "primary_contact_id",
            "priority",
            "status",
            "tags",
            "monetary_unit",
            "monetary_value",
            "win_probability",
            "custom_fields",
        ],
    }
}

fn custom_definition(e: Entity) -> Option<i64> {
    match e {
        Entity::People => Some(TIER_FIELD),
        Entity::Companies => Some(INDUSTRY_FIELD),
        Entity::Opportunities => None,
    }
}

impl Copper {
    fn search(&self, e: Entity, body: &Bytes) -> Result<Response, Reject> {
        let input = parse_object(body)?;
        let page = number(&input, "page_number", 1)?.max(1);
        let size = number(&input, "page_size", DEFAULT_PAGE_SIZE)?;
        if size == 0 || size > MAX_PAGE_SIZE {
            return Err(invalid(&format!(
                "page_size must be between 1 and {MAX_PAGE_SIZE}"
            )));
        }
        if page.saturating_mul(size) > MAX_RESULTS.saturating_add(size) {
            return Err(invalid(&format!(
                "a search returns at most {MAX_RESULTS} records"
            )));
        }
        let ids: Option<Vec<i64>> = input
            .get("ids")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_i64).collect());
        let emails: Option<Vec<String>> = input
            .get("emails")
            .and_then(Value::as_array)
            .filter(|_| e == Entity::People)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_lowercase)
                    .collect()
            });
        let min = input.get("minimum_modified_date").and_then(Value::as_i64);
        let max = input.get("maximum_modified_date").and_then(Value::as_i64);
        let default_sort = if e == Entity::People {
            "first_name"
        } else {
            "name"
        };
        let sort_by = input
            .get("sort_by")
            .and_then(Value::as_str)
            .unwrap_or(default_sort)
            .to_owned();
        if !matches!(
            sort_by.as_str(),
            "name" | "first_name" | "last_name" | "date_created" | "date_modified"
        ) {
            return Err(invalid(&format!("sort_by {sort_by} is not supported")));
        }
        let descending = input.get("sort_direction").and_then(Value::as_str) == Some("desc");
        let store = self.read();
        let mut matched: Vec<&Map<String, Value>> = store
            .table(e)
            .iter()
            .filter(|r| {
                let id = r.get("id").and_then(Value::as_i64).unwrap_or_default();
                let modified = r.get("date_modified").and_then(Value::as_i64).unwrap_or(0);
                ids.as_ref().is_none_or(|ids| ids.contains(&id))
                    && min.is_none_or(|m| modified >= m)
                    && max.is_none_or(|m| modified <= m)
                    && emails.as_ref().is_none_or(|wanted| {
                        r.get("emails")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .filter_map(|x| x.get("email").and_then(Value::as_str))
                            .any(|x| wanted.contains(&x.to_lowercase()))
                    })
            })
            .collect();
        matched.sort_by(|a, b| {
            let key = |r: &Map<String, Value>| r.get(&sort_by).cloned().unwrap_or(Value::Null);
            let order = match (key(a), key(b)) {
                (Value::Number(x), Value::Number(y)) => x
                    .as_f64()
                    .partial_cmp(&y.as_f64())
                    .unwrap_or(std::cmp::Ordering::Equal),
                (x, y) => x
                    .as_str()
                    .unwrap_or_default()
                    .to_lowercase()
                    .cmp(&y.as_str().unwrap_or_default().to_lowercase()),
            };
            let order = if descending { order.reverse() } else { order };
            order.then_with(|| {
                let id = |r: &Map<String, Value>| r.get("id").and_then(Value::as_i64);
                id(a).cmp(&id(b))
            })
        });
        let total = matched.len();
        let skip = usize::try_from((page - 1) * size).unwrap_or(usize::MAX);
        let data: Vec<Value> = matched
            .into_iter()
            .skip(skip)
            .take(usize::try_from(size).unwrap_or(0))
            .map(|r| Value::Object(r.clone()))
            .collect();
        let mut response = Json(Value::Array(data)).into_response();
        response.headers_mut().insert(
            HeaderName::from_static("x-pw-total"),
            HeaderValue::from(total),
        );
        Ok(response)
    }

    fn get_one(&self, e: Entity, id: &str) -> Result<Response, Reject> {
        let id = id_of(id)?;
        let store = self.read();
        let r = store.find(e, id).ok_or_else(not_found)?;
        Ok(Json(Value::Object(r.clone())).into_response())
    }

    /// Checks and applies a write onto `record`.
    fn apply(
        store: &Store,
        e: Entity,
        record: &mut Map<String, Value>,
        input: Map<String, Value>,
    ) -> Result<(), Reject> {
        for (key, value) in &input {
            if !writable(e).contains(&key.as_str()) {
                return Err(invalid(&format!("unknown field {key}")));
            }
            let refers = |target: Entity| {
                value.is_null()
                    || value
                        .as_i64()
                        .is_some_and(|id| store.find(target, id).is_some())
            };
            let ok = match key.as_str() {
                "company_id" => refers(Entity::Companies),
                "primary_contact_id" => refers(Entity::People),
                "emails" => value.as_array().is_some_and(|l| {
                    l.iter().all(|x| {
                        x.get("email")
                            .and_then(Value::as_str)
                            .is_some_and(|a| a.contains('@'))
                    })
                }),
                "custom_fields" => value.as_array().is_some_and(|l| {
                    l.iter().all(|c| {
                        c.get("custom_field_definition_id").and_then(Value::as_i64)
                            == custom_definition(e)
                    })
                }),
                "pipeline_stage_id" => value
                    .as_i64()
                    .is_some_and(|s| STAGES.iter().any(|(id, _, _)| *id == s)),
                "status" => value.as_str().is_some_and(|s| STATUSES.contains(&s)),
                "monetary_value" | "win_probability" => value.is_null() || value.is_number(),
                _ => true,
            };
            if !ok {
                return Err(invalid(&format!("{key} is not valid")));
            }
        }
        let names_given = input.contains_key("first_name") || input.contains_key("last_name");
        for (key, value) in input {
            if key == "custom_fields" {
                // Given definitions replace their values; others stay.
                let mut list: Vec<Value> = record
                    .get("custom_fields")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for given in value.as_array().into_iter().flatten() {
                    let def = given.get("custom_field_definition_id").cloned();
                    list.retain(|c| c.get("custom_field_definition_id").cloned() != def);
                    list.push(given.clone());
                }
                record.insert(key, Value::Array(list));
            } else {
                record.insert(key, value);
            }
        }
        if e == Entity::People {
            let text = |k: &str| {
                record
                    .get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            if names_given {
                let full = [text("first_name"), text("last_name")]
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ");
                record.insert("name".into(), json!(full));
            } else if record.contains_key("name") {
                let name = text("name");
                let (first, last) = name.split_once(' ').unwrap_or((&name, ""));
                record.insert("first_name".into(), json!(first));
                record.insert(
                    "last_name".into(),
                    if last.is_empty() {
                        Value::Null
                    } else {
                        json!(last)
                    },
                );
            }
            let company = record
                .get("company_id")
                .and_then(Value::as_i64)
                .and_then(|c| store.find(Entity::Companies, c))
                .and_then(|c| c.get("name").cloned())
                .unwrap_or(Value::Null);
            record.insert("company_name".into(), company);
        }
        if e == Entity::Opportunities {
            let company = record
                .get("company_id")
                .and_then(Value::as_i64)
                .and_then(|c| store.find(Entity::Companies, c))
                .and_then(|c| c.get("name").cloned())
                .unwrap_or(Value::Null);
            record.insert("company_name".into(), company);
        }
        Ok(())
    }

    fn create(&self, e: Entity, body: &Bytes) -> Result<Response, Reject> {
        let input = parse_object(body)?;
        if input
            .get("name")
            .and_then(Value::as_str)
            .is_none_or(|n| n.trim().is_empty())
            && !(e == Entity::People && input.contains_key("first_name"))
        {
            return Err(invalid("name is required"));
        }
        let mut store = self.write();
        store.next += 1;
        let id = store.next;
        let now = Utc::now().timestamp();
        let mut record = Map::new();
        record.insert("id".into(), json!(id));
        for key in writable(e) {
            record.insert((*key).to_owned(), Value::Null);
        }
        for key in [
            "emails",
            "phone_numbers",
            "tags",
            "websites",
            "custom_fields",
        ] {
            if record.contains_key(key) {
                record.insert(key.into(), json!([]));
            }
        }
        if e == Entity::Opportunities {
            record.insert("status".into(), json!("Open"));
            record.insert("pipeline_stage_id".into(), json!(STAGES[0].0));
        }
        record.insert("interaction_count".into(), json!(0));
        record.insert("date_created".into(), json!(now));
        record.insert("date_modified".into(), json!(now));
        Self::apply(&store, e, &mut record, input)?;
        let out = Value::Object(record.clone());
        store.table_mut(e).push(record);
        Ok(Json(out).into_response())
    }

    fn update(&self, e: Entity, id: &str, body: &Bytes) -> Result<Response, Reject> {
        let id = id_of(id)?;
        let input = parse_object(body)?;
        let mut store = self.write();
        let mut record = store.find(e, id).cloned().ok_or_else(not_found)?;
        Self::apply(&store, e, &mut record, input)?;
        record.insert("date_modified".into(), json!(Utc::now().timestamp()));
        let out = Value::Object(record.clone());
        if let Some(slot) = store
            .table_mut(e)
            .iter_mut()
            .find(|r| r.get("id").and_then(Value::as_i64) == Some(id))
        {
            *slot = record;
        }
        Ok(Json(out).into_response())
    }

    fn delete(&self, e: Entity, id: &str) -> Result<Response, Reject> {
        let id = id_of(id)?;
        let mut store = self.write();
        let table = store.table_mut(e);
        let before = table.len();
        table.retain(|r| r.get("id").and_then(Value::as_i64) != Some(id));
        if table.len() == before {
            return Err(not_found());
        }
        Ok(Json(json!({"id": id, "is_deleted": true})).into_response())
    }
}
