//! Salesforce REST API (SOQL query, sObject rows, sObject Collections retrieve) as
//! described in `/work/shared/vendors.md` §3, served under `/salesforce`, which plays the
//! org's `instance_url`: the data API lives at `/salesforce/services/data/vNN.0`.
//!
//! Every request passes the shared gate first (`wire::gate`): it is counted, may be
//! hijacked by an injected fault, is authenticated (`Authorization: Bearer` or the older
//! `OAuth` scheme) against the shared token registry and is charged to its token's rolling
//! window, which here models the org's rolling 24 h API allocation.
//!
//! Choices where vendors.md is silent (or tagged [M]):
//! - API versions v31.0 to v66.0 are served (Spring '26 is v66.0; up to v30.0 is retired);
//!   any other version segment is a 404 `NOT_FOUND`.
//! - URLs in responses (`nextRecordsUrl`, `attributes.url`) are host-relative as in
//!   Salesforce, so they carry the `/salesforce` prefix of the simulated instance.
//! - `Sforce-Query-Options: batchSize=N` is clamped to 200..2000 (default 2000), as
//!   documented. Query cursors hold the result set as it was when the query ran, expire
//!   after 15 min unused, are private to the token that opened them, and a token keeps at
//!   most 10 (opening an 11th releases its oldest), as Salesforce does per user. A locator
//!   past the end, unknown, expired or released answers 400 `INVALID_QUERY_LOCATOR`.
//! - SOQL errors carry Salesforce's excerpt prefix (`\n<query>\n<caret>\nERROR at
//!   Row:1:Column:N\n`) before the message; `fields=` errors on record reads do not.
//! - Deletes are soft: the row stays in the recycle bin (visible to `queryAll` with
//!   `IsDeleted = true`); GET then answers 404 `NOT_FOUND`, PATCH and DELETE 404
//!   `ENTITY_IS_DELETED`. Deleting an Account deletes its Contacts, as Salesforce does.
//! - Composite retrieve without `ids` or `fields` is 400 `REQUIRED_FIELD_MISSING`; more
//!   than 2000 ids is 400 `LIMIT_EXCEEDED`.
//! - `Sforce-Limit-Info` is sent on every authenticated response, 403 included; 401s carry
//!   none, since the allocation is charged per token.
//! - Injected faults fire before authentication, like an upstream outage would.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use serde_json::{Map, Value, json};

use super::DemoAccount;
use super::SALESFORCE_DEMO_TOKEN;
use super::control::{Control, FaultKind, RateDecision, RateLimitConfig, Reject, Vendor};
use super::oauth::{
    self, AuthorizeError, GrantType, Issued, OAuthShape, Prefixes, Profile, RefreshRule,
    TokenError, oauth2_error,
};
use super::salesforce_data::{
    Column, FieldDef, FieldRef, FieldType, NO_SUCH_COLUMN_HINT, Record, SObject, STAGES, Store,
    TASK_STATUSES, normalize_id, parse_soql, sample_ids, sf_datetime, sobject_of,
};
use super::wire::{self, AuthFailure, Dialect, ReqInfo, last_param, split_list};
use super::{SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET};

pub(crate) const PROVIDER: &str = "salesforce";
const PREFIX: &str = "/salesforce";
/// Developer Edition's rolling 24 h allocation (vendors.md §3 Limits).
const DAILY_ALLOCATION: u32 = 15_000;
const DAY_MS: u64 = 24 * 60 * 60 * 1000;
const DEFAULT_BATCH: usize = 2000;
const MIN_BATCH: usize = 200;
const MAX_BATCH: usize = 2000;
const MAX_COMPOSITE_IDS: usize = 2000;
const OLDEST_VERSION: u32 = 31;
const NEWEST_VERSION: u32 = 66;
/// The version the demo account and `sample_records` use.
const DEMO_VERSION: &str = "v62.0";
const NOT_FOUND_MESSAGE: &str = "The requested resource does not exist";

const QUERY: &str = "/services/data/{version}/query";
const QUERY_ALL: &str = "/services/data/{version}/queryAll";
const QUERY_MORE: &str = "/services/data/{version}/query/{locator}";
const QUERY_ALL_MORE: &str = "/services/data/{version}/queryAll/{locator}";
const SOBJECT: &str = "/services/data/{version}/sobjects/{sobject}";
const SOBJECT_SLASH: &str = "/services/data/{version}/sobjects/{sobject}/";
const SOBJECT_ROW: &str = "/services/data/{version}/sobjects/{sobject}/{id}";
const COMPOSITE: &str = "/services/data/{version}/composite/sobjects/{sobject}";
const ROUTES: [&str; 8] = [
    QUERY,
    QUERY_ALL,
    QUERY_MORE,
    QUERY_ALL_MORE,
    SOBJECT,
    SOBJECT_SLASH,
    SOBJECT_ROW,
    COMPOSITE,
];

pub(crate) struct Salesforce {
    control: Arc<Control>,
    /// A mutex, not a lock for readers: queries open cursors, so reads write too.
    store: Mutex<Store>,
    /// Full route templates, so stats label unrouted paths as one bucket.
    templates: HashSet<String>,
}

impl Salesforce {
    pub(crate) fn new(control: Arc<Control>) -> Salesforce {
        Salesforce {
            control,
            store: Mutex::new(Store::seed()),
            templates: ROUTES.iter().map(|r| format!("{PREFIX}{r}")).collect(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

type Params2 = Result<Path<(String, String)>, PathRejection>;
type Params3 = Result<Path<(String, String, String)>, PathRejection>;

impl Vendor for Salesforce {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    fn seed_tokens(&self) -> Vec<String> {
        vec![SALESFORCE_DEMO_TOKEN.to_owned()]
    }

    fn default_rate_limit(&self) -> RateLimitConfig {
        RateLimitConfig {
            max: DAILY_ALLOCATION,
            interval_ms: DAY_MS,
        }
    }

    fn reset_data(&self) {
        *self.lock() = Store::seed();
    }

    fn router(self: Arc<Self>) -> Router {
        type S = State<Arc<Salesforce>>;
        Router::new()
            .route(
                QUERY,
                get(|State(sf): S, info: ReqInfo, p: Result<Path<String>, PathRejection>| async move {
                    sf.query(p, &info, false)
                }),
            )
            .route(
                QUERY_ALL,
                get(|State(sf): S, info: ReqInfo, p: Result<Path<String>, PathRejection>| async move {
                    sf.query(p, &info, true)
                }),
            )
            .route(
                QUERY_MORE,
                get(|State(sf): S, info: ReqInfo, p: Params2| async move { sf.query_more(p, &info) }),
            )
            .route(
                QUERY_ALL_MORE,
                get(|State(sf): S, info: ReqInfo, p: Params2| async move { sf.query_more(p, &info) }),
            )
            .route(
                SOBJECT,
                axum::routing::post(|State(sf): S, p: Params2, body: Bytes| async move {
                    sf.create(p, &body)
                }),
            )
            .route(
                SOBJECT_SLASH,
                axum::routing::post(|State(sf): S, p: Params2, body: Bytes| async move {
                    sf.create(p, &body)
                }),
            )
            .route(
                SOBJECT_ROW,
                get(|State(sf): S, info: ReqInfo, p: Params3| async move { sf.get_row(p, &info) })
                    .patch(|State(sf): S, p: Params3, body: Bytes| async move {
                        sf.update(p, &body)
                    })
                    .delete(|State(sf): S, p: Params3| async move { sf.delete(p) }),
            )
            .route(
                COMPOSITE,
                get(|State(sf): S, info: ReqInfo, p: Params2| async move {
                    sf.retrieve_get(p, &info)
                })
                .post(|State(sf): S, p: Params2, body: Bytes| async move {
                    sf.retrieve_post(p, &body)
                }),
            )
            .method_not_allowed_fallback(|info: ReqInfo| async move {
                sf_error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "METHOD_NOT_ALLOWED",
                    format!("HTTP Method '{}' not allowed.", info.method),
                )
            })
            .fallback(|| async { sf_error(StatusCode::NOT_FOUND, "NOT_FOUND", NOT_FOUND_MESSAGE) })
            .layer(middleware::from_fn_with_state(
                self.clone(),
                wire::gate::<Salesforce>,
            ))
            .with_state(self)
    }

    fn demo_account(&self, base_url: &str) -> DemoAccount {
        DemoAccount {
            provider: PROVIDER,
            credentials: json!({ "accessToken": SALESFORCE_DEMO_TOKEN }),
            settings: json!({ "instanceUrl": format!("{base_url}{PREFIX}") }),
        }
    }

    fn oauth(&self) -> Option<&dyn OAuthShape> {
        Some(self)
    }

    fn oauth_router(self: Arc<Self>) -> Router {
        Router::new()
            .route(
                "/services/oauth2/authorize",
                get(oauth::authorize::<Salesforce>),
            )
            .route(
                "/services/oauth2/token",
                axum::routing::post(oauth::token::<Salesforce>),
            )
            .route(
                "/services/oauth2/revoke",
                get(revoke_token).post(revoke_token),
            )
            .with_state(self)
    }
}

/// Seeded records in query-result shape with every field of the schema selected, chosen
/// to include the edge cases (no email, unicode and apostrophe names, no FirstName, no
/// account, no tier; accounts without website, industry or headcount; converted and open
/// leads; tasks about leads, contacts, accounts and deals; notes on every parent type).
/// Deals also carry the contact-role sub-query the provider selects.
pub(crate) fn sample_records(resource: &str) -> Option<Vec<Value>> {
    let sobject = match resource {
        "contacts" => SObject::Contact,
        "companies" => SObject::Account,
        "deals" => SObject::Opportunity,
        "leads" => SObject::Lead,
        "tasks" => SObject::Task,
        "notes" => SObject::Note,
        "users" => SObject::User,
        _ => return None,
    };
    let store = Store::seed();
    let mut columns = Store::all_columns(sobject);
    if sobject == SObject::Opportunity {
        let sub = parse_soql(
            "SELECT Id, (SELECT ContactId FROM OpportunityContactRoles) FROM Opportunity",
        )
        .ok()?;
        columns.extend(sub.columns.into_iter().skip(1));
    }
    let base = format!("{PREFIX}/services/data/{DEMO_VERSION}");
    Some(
        sample_ids(sobject)
            .iter()
            .filter_map(|id| store.live(sobject, id))
            .map(|r| store.render(sobject, r, &columns, &base))
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------
// Error bodies (vendors.md §1.5: a JSON array of {message, errorCode, fields?})

fn sf_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!([{ "message": message.into(), "errorCode": code }]);
    (status, Json(body)).into_response()
}

fn sf_field_error(status: StatusCode, code: &str, message: String, fields: &[&str]) -> Reject {
    let body = json!([{ "message": message, "errorCode": code, "fields": fields }]);
    Reject::from((status, Json(body)).into_response())
}

fn reject(status: StatusCode, code: &str, message: impl Into<String>) -> Reject {
    Reject::from(sf_error(status, code, message))
}

fn invalid_session() -> Response {
    let mut response = sf_error(
        StatusCode::UNAUTHORIZED,
        "INVALID_SESSION_ID",
        "Session expired or invalid",
    );
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Token"));
    response
}

fn not_found() -> Reject {
    reject(StatusCode::NOT_FOUND, "NOT_FOUND", NOT_FOUND_MESSAGE)
}

fn invalid_locator() -> Reject {
    reject(
        StatusCode::BAD_REQUEST,
        "INVALID_QUERY_LOCATOR",
        "invalid query locator",
    )
}

fn entity_is_deleted() -> Reject {
    sf_field_error(
        StatusCode::NOT_FOUND,
        "ENTITY_IS_DELETED",
        "entity is deleted".into(),
        &[],
    )
}

// ---------------------------------------------------------------------------------------
// Wire dialect: credentials, error bodies for the gate's outcomes, `Sforce-Limit-Info`

impl Dialect for Salesforce {
    const PROVIDER: &'static str = PROVIDER;

    fn control(&self) -> &Control {
        &self.control
    }

    fn route_templates(&self) -> &HashSet<String> {
        &self.templates
    }

    /// `Authorization: Bearer <token>`; Salesforce also still takes the older `OAuth` scheme.
    fn credentials(&self, info: &ReqInfo) -> Option<String> {
        wire::scheme_token(
            info.header(header::AUTHORIZATION.as_str())?,
            &["bearer", "oauth"],
        )
    }

    fn fault_response(&self, _info: &ReqInfo, status: StatusCode, body: Option<Value>) -> Response {
        if let Some(body) = body {
            return (status, Json(body)).into_response();
        }
        // Codes for statuses Salesforce does not document are the sandbox's choice.
        let (code, message) = match status.as_u16() {
            401 => return invalid_session(),
            400 => ("MALFORMED_QUERY", "Bad Request"),
            403 | 429 => ("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
            404 => ("NOT_FOUND", NOT_FOUND_MESSAGE),
            500 => (
                "UNKNOWN_EXCEPTION",
                "An unexpected error occurred. Please include this ErrorId if you contact support: 1804826437-12345 (-1081376913)",
            ),
            502..=504 => ("SERVER_UNAVAILABLE", "Server temporarily unavailable"),
            _ => (
                "UNKNOWN_EXCEPTION",
                status.canonical_reason().unwrap_or("Error"),
            ),
        };
        sf_error(status, code, message)
    }

    fn auth_failure(&self, _info: &ReqInfo, _failure: AuthFailure) -> Response {
        invalid_session()
    }

    fn throttled(&self, _info: &ReqInfo, _decision: &RateDecision) -> Response {
        sf_error(
            StatusCode::FORBIDDEN,
            "REQUEST_LIMIT_EXCEEDED",
            "TotalRequests Limit exceeded.",
        )
    }

    fn rate_headers(&self, headers: &mut HeaderMap, d: &RateDecision) {
        let used = d.max.saturating_sub(d.remaining);
        if let Ok(value) = HeaderValue::from_str(&format!("api-usage={used}/{}", d.max)) {
            headers.insert(HeaderName::from_static("sforce-limit-info"), value);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Handlers

/// `Sforce-Query-Options: batchSize=N`, clamped to what Salesforce allows.
fn batch_size(info: &ReqInfo) -> Option<usize> {
    let value = info.header("sforce-query-options")?;
    value.split(',').find_map(|option| {
        let (key, n) = option.split_once('=')?;
        if !key.trim().eq_ignore_ascii_case("batchSize") {
            return None;
        }
        let n: usize = n.trim().parse().ok()?;
        Some(n.clamp(MIN_BATCH, MAX_BATCH))
    })
}

/// `/salesforce/services/data/vNN.0`, or 404 for a version this org does not serve.
fn api_base(version: &str) -> Result<String, Reject> {
    let number = version
        .strip_prefix('v')
        .and_then(|v| v.strip_suffix(".0"))
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|n| (OLDEST_VERSION..=NEWEST_VERSION).contains(n))
        .ok_or_else(not_found)?;
    Ok(format!("{PREFIX}/services/data/v{number}.0"))
}

fn sobject_param(name: &str) -> Result<SObject, Reject> {
    SObject::from_name(name).ok_or_else(not_found)
}

fn no_such_column(sobject: SObject, name: &str) -> Reject {
    reject(
        StatusCode::BAD_REQUEST,
        "INVALID_FIELD",
        format!(
            "No such column '{name}' on entity '{}'. {NO_SUCH_COLUMN_HINT}",
            sobject.name()
        ),
    )
}

/// Direct fields named in `fields=` or a retrieve body.
fn columns(sobject: SObject, names: &[String]) -> Result<Vec<Column>, Reject> {
    let mut out: Vec<Column> = Vec::new();
    for name in names {
        let field = sobject
            .field(name)
            .ok_or_else(|| no_such_column(sobject, name))?;
        if !out
            .iter()
            .any(|c| c.direct().is_some_and(|f| f.name == field.name))
        {
            out.push(Column::Field(FieldRef::Direct(field)));
        }
    }
    Ok(out)
}

/// A page-level fault consumed by list calls.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PageFault {
    None,
    Repeat,
    OutOfRange,
}

impl Salesforce {
    fn page_fault(&self, info: &ReqInfo) -> PageFault {
        let take = |kind| {
            self.control
                .take_fault(PROVIDER, &info.method, &info.path_and_query, kind)
                .is_some()
        };
        if take(FaultKind::RepeatCursor) {
            PageFault::Repeat
        } else if take(FaultKind::OutOfRange) {
            PageFault::OutOfRange
        } else {
            PageFault::None
        }
    }

    fn query(
        &self,
        version: Result<Path<String>, PathRejection>,
        info: &ReqInfo,
        include_deleted: bool,
    ) -> Result<Response, Reject> {
        let Ok(Path(version)) = version else {
            return Err(not_found());
        };
        let base = api_base(&version)?;
        let pairs = info.pairs();
        let soql = last_param(&pairs, "q")
            .filter(|q| !q.trim().is_empty())
            .ok_or_else(|| {
                reject(
                    StatusCode::BAD_REQUEST,
                    "MALFORMED_QUERY",
                    "A query string has to be specified",
                )
            })?;
        let query =
            parse_soql(soql).map_err(|e| reject(StatusCode::BAD_REQUEST, e.code, e.message))?;
        let fault = self.page_fault(info);
        let batch = batch_size(info).unwrap_or(DEFAULT_BATCH);

        let mut store = self.lock();
        let rows: Vec<Value> = store
            .run(&query, include_deleted)
            .iter()
            .map(|r| store.render(query.sobject, r, &query.columns, &base))
            .collect();
        let total = rows.len();
        let page: Vec<Value> = rows.iter().take(batch).cloned().collect();
        let next = match fault {
            PageFault::Repeat => Some(0),
            PageFault::OutOfRange => Some(total.max(batch)),
            PageFault::None => (total > batch).then_some(batch),
        };
        let locator = next.map(|offset| {
            let id = store.open_cursor(info.token.as_deref().unwrap_or_default(), rows, batch);
            format!("{id}-{offset}")
        });
        drop(store);
        Ok(Json(query_result(total, page, locator.as_deref(), &base)).into_response())
    }

    fn query_more(&self, params: Params2, info: &ReqInfo) -> Result<Response, Reject> {
        let Ok(Path((version, locator))) = params else {
            return Err(not_found());
        };
        let base = api_base(&version)?;
        let (query_id, offset) = locator.rsplit_once('-').ok_or_else(invalid_locator)?;
        let offset: usize = offset.parse().map_err(|_| invalid_locator())?;

        let mut store = self.lock();
        let cursor = store
            .cursor(info.token.as_deref().unwrap_or_default(), query_id)
            .ok_or_else(invalid_locator)?;
        let total = cursor.rows.len();
        if offset >= total {
            return Err(invalid_locator());
        }
        let batch = batch_size(info).unwrap_or(cursor.batch_size);
        let page: Vec<Value> = cursor
            .rows
            .iter()
            .skip(offset)
            .take(batch)
            .cloned()
            .collect();
        drop(store);
        // Taken only once the locator is known good, so a refused call leaves it armed.
        let fault = self.page_fault(info);
        let end = offset.saturating_add(batch);
        let next = match fault {
            PageFault::Repeat => Some(offset),
            PageFault::OutOfRange => Some(total.max(end)),
            PageFault::None => (end < total).then_some(end),
        };
        let locator = next.map(|n| format!("{query_id}-{n}"));
        Ok(Json(query_result(total, page, locator.as_deref(), &base)).into_response())
    }

    fn get_row(&self, params: Params3, info: &ReqInfo) -> Result<Response, Reject> {
        let Ok(Path((version, sobject, id))) = params else {
            return Err(not_found());
        };
        let base = api_base(&version)?;
        let sobject = sobject_param(&sobject)?;
        let pairs = info.pairs();
        let columns = match last_param(&pairs, "fields") {
            Some(raw) if !split_list(raw).is_empty() => columns(sobject, &split_list(raw))?,
            _ => Store::all_columns(sobject),
        };
        let id = row_id(sobject, &id)?;
        let store = self.lock();
        let record = store.live(sobject, &id).ok_or_else(not_found)?;
        Ok(Json(store.render(sobject, record, &columns, &base)).into_response())
    }

    fn create(&self, params: Params2, body: &Bytes) -> Result<Response, Reject> {
        let Ok(Path((version, sobject))) = params else {
            return Err(not_found());
        };
        api_base(&version)?;
        let sobject = sobject_param(&sobject)?;
        if !sobject.creatable() {
            return Err(reject(
                StatusCode::BAD_REQUEST,
                "LICENSE_LIMIT_EXCEEDED",
                "License Limit Exceeded",
            ));
        }
        let input = parse_object(body)?;
        let mut store = self.lock();
        let changes = validate(&store, sobject, input, true)?;
        let touched: Vec<&'static str> = changes.iter().map(|(k, _)| *k).collect();
        let mut values: BTreeMap<&'static str, Value> =
            changes.into_iter().filter(|(_, v)| !v.is_null()).collect();
        let now = Utc::now();
        apply_rules(sobject, &mut values, &touched, true, now);
        let missing: Vec<&str> = sobject
            .required_fields()
            .iter()
            .copied()
            .filter(|f| !values.contains_key(f))
            .collect();
        if !missing.is_empty() {
            return Err(required_missing(&missing));
        }
        let id = store.allocate_id(sobject);
        values.insert("CreatedDate", json!(sf_datetime(now)));
        values.insert("LastModifiedDate", json!(sf_datetime(now)));
        store.table_mut(sobject).insert(
            id.clone(),
            Record {
                id: id.clone(),
                values,
                deleted: false,
            },
        );
        drop(store);
        let body = json!({ "id": id, "success": true, "errors": [] });
        Ok((StatusCode::CREATED, Json(body)).into_response())
    }

    fn update(&self, params: Params3, body: &Bytes) -> Result<Response, Reject> {
        let Ok(Path((version, sobject, id))) = params else {
            return Err(not_found());
        };
        api_base(&version)?;
        let sobject = sobject_param(&sobject)?;
        let id = row_id(sobject, &id)?;
        let input = parse_object(body)?;
        let mut store = self.lock();
        match store.table(sobject).get(&id) {
            None => return Err(not_found()),
            Some(r) if r.deleted => return Err(entity_is_deleted()),
            Some(r) if r.values.get("IsConverted") == Some(&json!(true)) => {
                return Err(reject(
                    StatusCode::BAD_REQUEST,
                    "CANNOT_UPDATE_CONVERTED_LEAD",
                    "cannot reference converted lead",
                ));
            }
            Some(_) => {}
        }
        let changes = validate(&store, sobject, input, false)?;
        let cleared: Vec<&str> = sobject
            .required_fields()
            .iter()
            .copied()
            .filter(|f| changes.iter().any(|(k, v)| k == f && v.is_null()))
            .collect();
        if !cleared.is_empty() {
            return Err(required_missing(&cleared));
        }
        let Some(record) = store.table_mut(sobject).get_mut(&id) else {
            return Err(not_found());
        };
        let touched: Vec<&'static str> = changes.iter().map(|(k, _)| *k).collect();
        for (name, value) in changes {
            if value.is_null() {
                record.values.remove(name);
            } else {
                record.values.insert(name, value);
            }
        }
        let now = Utc::now();
        apply_rules(sobject, &mut record.values, &touched, false, now);
        record
            .values
            .insert("LastModifiedDate", json!(sf_datetime(now)));
        Ok(StatusCode::NO_CONTENT.into_response())
    }

    fn delete(&self, params: Params3) -> Result<Response, Reject> {
        let Ok(Path((version, sobject, id))) = params else {
            return Err(not_found());
        };
        api_base(&version)?;
        let sobject = sobject_param(&sobject)?;
        if !sobject.deletable() {
            return Err(reject(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "HTTP Method 'DELETE' not allowed. Allowed are GET,HEAD,PATCH",
            ));
        }
        let id = row_id(sobject, &id)?;
        let mut store = self.lock();
        match store.table(sobject).get(&id) {
            None => Err(not_found()),
            Some(r) if r.deleted => Err(entity_is_deleted()),
            Some(_) => {
                store.delete(sobject, &id);
                Ok(StatusCode::NO_CONTENT.into_response())
            }
        }
    }

    fn retrieve_get(&self, params: Params2, info: &ReqInfo) -> Result<Response, Reject> {
        let pairs = info.pairs();
        let ids = last_param(&pairs, "ids")
            .map(split_list)
            .unwrap_or_default();
        let fields = last_param(&pairs, "fields")
            .map(split_list)
            .unwrap_or_default();
        self.retrieve(params, ids, fields)
    }

    fn retrieve_post(&self, params: Params2, body: &Bytes) -> Result<Response, Reject> {
        let input = parse_object(body)?;
        let strings = |key: &str| -> Result<Vec<String>, Reject> {
            match input.get(key) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|v| {
                        v.as_str().map(str::to_owned).ok_or_else(|| {
                            json_parser_error(format!(
                                "Cannot deserialize instance of string from {} value for '{key}'",
                                token_name(v)
                            ))
                        })
                    })
                    .collect(),
                Some(other) => Err(json_parser_error(format!(
                    "Cannot deserialize instance of array from {} value for '{key}'",
                    token_name(other)
                ))),
            }
        };
        let ids = strings("ids")?;
        let fields = strings("fields")?;
        self.retrieve(params, ids, fields)
    }

    /// sObject Collections retrieve: one entry per requested id, in order, `null` where
    /// the id is malformed, of another type, unknown or deleted.
    fn retrieve(
        &self,
        params: Params2,
        ids: Vec<String>,
        fields: Vec<String>,
    ) -> Result<Response, Reject> {
        let Ok(Path((version, sobject))) = params else {
            return Err(not_found());
        };
        let base = api_base(&version)?;
        let sobject = sobject_param(&sobject)?;
        for (name, list) in [("ids", &ids), ("fields", &fields)] {
            if list.is_empty() {
                return Err(required_missing(&[name]));
            }
        }
        if ids.len() > MAX_COMPOSITE_IDS {
            return Err(reject(
                StatusCode::BAD_REQUEST,
                "LIMIT_EXCEEDED",
                format!(
                    "Too many ids: {}; the maximum is {MAX_COMPOSITE_IDS}",
                    ids.len()
                ),
            ));
        }
        let columns = columns(sobject, &fields)?;
        let store = self.lock();
        let out: Vec<Value> = ids
            .iter()
            .map(|raw| {
                normalize_id(raw)
                    .filter(|id| sobject_of(id) == Some(sobject))
                    .and_then(|id| store.live(sobject, &id))
                    .map_or(Value::Null, |r| store.render(sobject, r, &columns, &base))
            })
            .collect();
        Ok(Json(Value::Array(out)).into_response())
    }
}

fn query_result(total: usize, records: Vec<Value>, locator: Option<&str>, base: &str) -> Value {
    let mut out = Map::new();
    out.insert("totalSize".into(), json!(total));
    out.insert("done".into(), json!(locator.is_none()));
    if let Some(locator) = locator {
        out.insert(
            "nextRecordsUrl".into(),
            json!(format!("{base}/query/{locator}")),
        );
    }
    out.insert("records".into(), Value::Array(records));
    Value::Object(out)
}

/// A row id from the URL: a malformed one is read as an external id field name, which is
/// how Salesforce words its 404; an id of another type simply does not exist here.
fn row_id(sobject: SObject, raw: &str) -> Result<String, Reject> {
    let id = normalize_id(raw).ok_or_else(|| {
        reject(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("Provided external ID field does not exist or is not accessible: {raw}"),
        )
    })?;
    if sobject_of(&id) == Some(sobject) {
        Ok(id)
    } else {
        Err(not_found())
    }
}

fn required_missing(fields: &[&str]) -> Reject {
    sf_field_error(
        StatusCode::BAD_REQUEST,
        "REQUIRED_FIELD_MISSING",
        format!("Required fields are missing: [{}]", fields.join(", ")),
        fields,
    )
}

/// Enabled currencies of the org (corporate currency first).
const CURRENCIES: [&str; 9] = [
    "USD", "EUR", "GBP", "JPY", "CAD", "AUD", "COP", "ISK", "SGD",
];

/// The values a restricted picklist accepts.
fn restricted_values(sobject: SObject, field: &str) -> Option<Vec<&'static str>> {
    match (sobject, field) {
        (SObject::Opportunity, "StageName") => Some(STAGES.iter().map(|s| s.0).collect()),
        (SObject::Task, "Status") => Some(TASK_STATUSES.to_vec()),
        (_, "CurrencyIsoCode") => Some(CURRENCIES.to_vec()),
        _ => None,
    }
}

/// What Salesforce does on its own when a record is written: default owner, stage
/// probability, statuses, the completion time of a task that closes.
fn apply_rules(
    sobject: SObject,
    values: &mut BTreeMap<&'static str, Value>,
    touched: &[&str],
    creating: bool,
    now: chrono::DateTime<Utc>,
) {
    let mut default = |name: &'static str, value: Value| {
        if creating && !values.contains_key(name) {
            values.insert(name, value);
        }
    };
    if sobject.field("OwnerId").is_some() {
        default("OwnerId", json!(Store::default_owner()));
    }
    match sobject {
        SObject::Account | SObject::Opportunity => default("CurrencyIsoCode", json!("USD")),
        SObject::Lead => {
            default("Status", json!("Open - Not Contacted"));
            default("IsConverted", json!(false));
        }
        SObject::Task => {
            default("Status", json!("Not Started"));
            default("Priority", json!("Normal"));
        }
        SObject::Note => default("IsPrivate", json!(false)),
        SObject::OpportunityContactRole => default("IsPrimary", json!(false)),
        SObject::User | SObject::Contact | SObject::DealRegistration => {}
    }
    if sobject == SObject::Opportunity
        && touched.contains(&"StageName")
        && !touched.contains(&"Probability")
        && let Some(stage) = values
            .get("StageName")
            .and_then(Value::as_str)
            .and_then(|n| STAGES.iter().find(|s| s.0 == n))
    {
        values.insert("Probability", json!(stage.1));
    }
    if sobject == SObject::Task && (creating || touched.contains(&"Status")) {
        let closed = values
            .get("Status")
            .and_then(Value::as_str)
            .is_some_and(|s| s == "Completed");
        if !closed {
            values.remove("CompletedDateTime");
        } else if !values.contains_key("CompletedDateTime") {
            values.insert("CompletedDateTime", json!(sf_datetime(now)));
        }
    }
}

fn json_parser_error(message: String) -> Reject {
    reject(StatusCode::BAD_REQUEST, "JSON_PARSER_ERROR", message)
}

fn token_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "VALUE_NULL",
        Value::Bool(true) => "VALUE_TRUE",
        Value::Bool(false) => "VALUE_FALSE",
        Value::Number(n) if n.is_f64() => "VALUE_NUMBER_FLOAT",
        Value::Number(_) => "VALUE_NUMBER_INT",
        Value::String(_) => "VALUE_STRING",
        Value::Array(_) => "START_ARRAY",
        Value::Object(_) => "START_OBJECT",
    }
}

fn parse_object(body: &Bytes) -> Result<Map<String, Value>, Reject> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(json_parser_error(format!(
            "Cannot deserialize instance of object from {} value or request may be missing a required field at [line:1, column:1]",
            token_name(&other)
        ))),
        Err(e) => {
            let text = e.to_string();
            let detail = text.split(" at line ").next().unwrap_or(&text);
            Err(json_parser_error(format!(
                "{detail} at [line:{}, column:{}]",
                e.line(),
                e.column()
            )))
        }
    }
}

fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(char::is_whitespace)
}

/// Checks a create/update body against the schema and turns it into canonical
/// (field, value) pairs; `Value::Null` clears (an empty string is null in Salesforce).
fn validate(
    store: &Store,
    sobject: SObject,
    input: Map<String, Value>,
    creating: bool,
) -> Result<Vec<(&'static str, Value)>, Reject> {
    let mut changes = Vec::new();
    for (name, value) in input {
        if name == "attributes" {
            continue;
        }
        let field: &FieldDef = sobject.field(&name).ok_or_else(|| {
            reject(
                StatusCode::BAD_REQUEST,
                "INVALID_FIELD",
                format!(
                    "No such column '{name}' on sobject of type {}",
                    sobject.name()
                ),
            )
        })?;
        if !field.writable(creating) {
            return Err(sf_field_error(
                StatusCode::BAD_REQUEST,
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                format!(
                    "Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
                    field.name
                ),
                &[field.name],
            ));
        }
        let cannot = |target: &str| {
            json_parser_error(format!(
                "Cannot deserialize instance of {target} from {} value {value} or request may be missing a required field",
                token_name(&value)
            ))
        };
        let value = match (&value, field.ty) {
            (Value::Null, _) => Value::Null,
            (Value::String(s), _) if s.is_empty() => Value::Null,
            (Value::Array(_) | Value::Object(_), _) => return Err(cannot("string")),
            (_, FieldType::Int) => {
                let n = match &value {
                    Value::Number(n) => n.as_i64(),
                    Value::String(s) => s.trim().parse::<i64>().ok(),
                    _ => None,
                };
                json!(n.ok_or_else(|| cannot("int"))?)
            }
            (_, FieldType::Currency | FieldType::Percent) => {
                let n = match &value {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
                    _ => None,
                };
                json!(n.ok_or_else(|| cannot("double"))?)
            }
            (Value::Bool(_), FieldType::Bool) => value.clone(),
            (_, FieldType::Bool) => return Err(cannot("boolean")),
            (_, FieldType::Reference { to, .. }) => {
                let raw = match &value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let label = match to {
                    [one] => format!("{} ID", one.name()),
                    _ => field.name.to_owned(),
                };
                let id = normalize_id(&raw).ok_or_else(|| {
                    sf_field_error(
                        StatusCode::BAD_REQUEST,
                        "MALFORMED_ID",
                        format!("{label}: id value of incorrect type: {raw}"),
                        &[field.name],
                    )
                })?;
                let Some(kind) = sobject_of(&id).filter(|k| to.contains(k)) else {
                    return Err(sf_field_error(
                        StatusCode::BAD_REQUEST,
                        "FIELD_INTEGRITY_EXCEPTION",
                        format!("{label}: id value of incorrect type: {raw}"),
                        &[field.name],
                    ));
                };
                if store.live(kind, &id).is_none() {
                    return Err(sf_field_error(
                        StatusCode::BAD_REQUEST,
                        "INVALID_CROSS_REFERENCE_KEY",
                        "invalid cross reference id".into(),
                        &[field.name],
                    ));
                }
                json!(id)
            }
            (Value::String(s), FieldType::Date) => {
                let date = chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                    .map_err(|_| cannot("date"))?;
                json!(date.format("%Y-%m-%d").to_string())
            }
            (_, FieldType::Date) => return Err(cannot("date")),
            (Value::String(s), FieldType::Picklist) => {
                match restricted_values(sobject, field.name) {
                    Some(allowed) => {
                        let Some(canonical) =
                            allowed.iter().find(|a| a.eq_ignore_ascii_case(s.trim()))
                        else {
                            return Err(sf_field_error(
                                StatusCode::BAD_REQUEST,
                                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                                format!(
                                    "{}: bad value for restricted picklist field: {s}",
                                    field.name
                                ),
                                &[field.name],
                            ));
                        };
                        json!(canonical)
                    }
                    None => json!(s),
                }
            }
            (_, FieldType::Email) => {
                let text = match &value {
                    Value::String(s) => s.trim().to_owned(),
                    other => other.to_string(),
                };
                if !looks_like_email(&text) {
                    return Err(sf_field_error(
                        StatusCode::BAD_REQUEST,
                        "INVALID_EMAIL_ADDRESS",
                        format!("Email: invalid email address: {text}"),
                        &[field.name],
                    ));
                }
                json!(text)
            }
            (Value::String(s), _) => json!(s),
            (other, _) => json!(other.to_string()),
        };
        changes.push((field.name, value));
    }
    Ok(changes)
}
// ---------------------------------------------------------------------------------------
// OAuth (vendors.md §3 Auth; machinery in oauth.rs), on the same host as the instance
// (`/salesforce/services/oauth2/...`), as on a My Domain login host.
//
// Choices: access tokens last the default session timeout (2 h) and the response has no
// `expires_in`; `instance_url` is the sandbox's `<base>/salesforce` and `id` the identity
// URL under it (not served); `signature` is base64 HMAC-SHA256(client secret, id +
// issued_at) as documented; a refresh token comes with the code flow unless a `scope` is
// asked for that lacks `refresh_token`/`offline_access`; refresh answers carry a refresh
// token only when rotation is on; client credentials add `api_instance_url`. The
// authorization page's refusals are 400 `error=…&error_description=…` text, as the login
// page shows them. `/services/oauth2/revoke` (GET or POST, `token=`) revokes a refresh
// token with its access tokens, or a single access token; unknown tokens are 400
// `unsupported_token_type`.

const ORG_ID: &str = "00DSB0000000001EAA";
const OAUTH_USER_ID: &str = "005SB0000000001AAA";

static OAUTH: Profile = Profile {
    provider: PROVIDER,
    client_id: SALESFORCE_CLIENT_ID,
    client_secret: SALESFORCE_CLIENT_SECRET,
    access_lifetime_secs: 7200,
    code_lifetime_secs: 900,
    rotates: false,
    always_rotates: false,
    echoes_refresh_token: false,
    client_credentials: true,
    basic_auth: true,
    query_params: false,
    refresh_rule: RefreshRule::ScopeOrDefault(&["refresh_token", "offline_access"]),
    prefixes: Prefixes {
        access: "00DSB0000000001!AQ",
        refresh: "5Aep861",
        code: "aPrx",
    },
};

/// base64 HMAC-SHA256(key = consumer secret, msg = id + issued_at).
fn token_signature(secret: &str, id: &str, issued_at: &str) -> String {
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    match Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(id.as_bytes());
            mac.update(issued_at.as_bytes());
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

impl OAuthShape for Salesforce {
    fn oauth_profile(&self) -> &'static Profile {
        &OAUTH
    }

    fn oauth_control(&self) -> &Control {
        &self.control
    }

    fn token_body(&self, issued: &Issued) -> Value {
        let instance = format!("{}{PREFIX}", issued.base_url);
        let id = format!("{instance}/id/{ORG_ID}/{OAUTH_USER_ID}");
        let issued_at = issued.issued_at.timestamp_millis().to_string();
        let client_credentials = issued.grant_type == GrantType::ClientCredentials;
        let scope = match issued.scope.as_deref() {
            Some(s) if !s.trim().is_empty() => s.to_owned(),
            _ if client_credentials => "api".to_owned(),
            _ => "api id refresh_token".to_owned(),
        };
        let mut body = Map::new();
        body.insert("access_token".into(), json!(issued.access_token));
        if let Some(refresh) = &issued.refresh_token {
            body.insert("refresh_token".into(), json!(refresh));
        }
        body.insert(
            "signature".into(),
            json!(token_signature(&issued.client_secret, &id, &issued_at)),
        );
        body.insert("scope".into(), json!(scope));
        body.insert("instance_url".into(), json!(instance));
        if client_credentials {
            body.insert("api_instance_url".into(), json!(instance));
        }
        body.insert("id".into(), json!(id));
        body.insert("token_type".into(), json!("Bearer"));
        body.insert("issued_at".into(), json!(issued_at));
        Value::Object(body)
    }

    fn token_error(&self, error: &TokenError) -> Response {
        let (error, description) = match error {
            TokenError::ContentType | TokenError::MissingGrantType => {
                ("invalid_request", "grant type is missing")
            }
            TokenError::UnsupportedGrant(_) => {
                ("unsupported_grant_type", "grant type not supported")
            }
            TokenError::MissingClient | TokenError::UnknownClient(_) => {
                ("invalid_client_id", "client identifier invalid")
            }
            TokenError::BadSecret => ("invalid_client", "invalid client credentials"),
            TokenError::BadCode | TokenError::CodeUsed => {
                ("invalid_grant", "invalid authorization code")
            }
            TokenError::CodeExpired => ("invalid_grant", "authorization code expired"),
            TokenError::RedirectMismatch => (
                "redirect_uri_mismatch",
                "redirect_uri must match configuration",
            ),
            TokenError::BadVerifier => ("invalid_grant", "invalid code verifier"),
            TokenError::BadRefreshToken => ("invalid_grant", "expired access/refresh token"),
        };
        oauth2_error(StatusCode::BAD_REQUEST, error, description)
    }

    fn authorize_error(&self, error: &AuthorizeError) -> Response {
        let text = match error {
            AuthorizeError::MissingClient | AuthorizeError::UnknownClient(_) => {
                "error=invalid_client_id&error_description=client%20identifier%20invalid"
            }
            AuthorizeError::MissingRedirect | AuthorizeError::BadRedirect(_) => {
                "error=redirect_uri_mismatch&error_description=redirect_uri%20must%20match%20configuration"
            }
        };
        (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "text/plain;charset=UTF-8")],
            text,
        )
            .into_response()
    }
}

/// `/services/oauth2/revoke?token=` (or the form body): 200 with an empty body.
async fn revoke_token(State(sf): State<Arc<Salesforce>>, info: ReqInfo, body: Bytes) -> Response {
    let mut params = info.pairs();
    params.extend(url::form_urlencoded::parse(&body).into_owned());
    let token = last_param(&params, "token").unwrap_or_default();
    let revoked = oauth::revoke_refresh_token(&sf.control, PROVIDER, token, true)
        .or_else(|| oauth::revoke_access_token(&sf.control, PROVIDER, token, false));
    match revoked {
        Some(_) => StatusCode::OK.into_response(),
        None => oauth2_error(
            StatusCode::BAD_REQUEST,
            "unsupported_token_type",
            "this token type is not supported",
        ),
    }
}
