//! Pipedrive API v2 (persons, organizations) as described in `/work/shared/vendors.md`
//! §4, served under `/pipedrive` (the account's `api_domain`), so the base URL a client
//! uses is `{apiDomain}/api/v2`.
//!
//! Every request passes the shared gate first (`wire::gate`): counted, maybe hijacked by
//! an injected fault, authenticated (`Authorization: Bearer` or `x-api-token`) and charged
//! to its token's 2-second burst window.
//!
//! Webhooks (`/api/v1/webhooks`) live in `pipedrive_webhooks.rs`; every person,
//! organization and deal created, changed or deleted is reported to them.
//!
//! Choices where vendors.md is silent or tagged [M]/[T]:
//! - Default burst limit: 480 requests per 2 s (OAuth apps on the Ultimate plan; the
//!   conformance suite's bursts across seven resources outrun the Lite plan's 80). The
//!   `x-ratelimit-reset` header is the whole seconds until the oldest request in the
//!   window leaves it. `x-daily-requests-left` counts down from 10,000 per company and is
//!   reported only: the sandbox never enforces a daily budget.
//! - The 429 body is Pipedrive's generic error envelope with `"error":"Request over
//!   limit"` and `errorCode` 429, mirroring the observed 401 body.
//! - Validation errors are 400s in the generic envelope with zod-style messages
//!   (`Validation failed: limit: ...`); unknown body keys are rejected, as v2 is strict.
//! - A person's `org_id` must name a live organization and `owner_id` a company user.
//! - `DELETE` is a soft delete: the record leaves lists and reads 404 afterwards.
//!   Deleting an unknown or already deleted record is a 404.
//! - Cursors are base64url JSON `{"field","fieldValue","sortDirection","id"}` naming the
//!   last record of the page, the shape of Pipedrive's own; a cursor only continues the
//!   sort it was issued for.
//! - `ids`, `org_id`, `owner_id`, `updated_since`, `updated_until`, `sort_by`,
//!   `sort_direction` and `custom_fields` are honoured; `include_fields` is accepted and
//!   ignored (none of the optional fields are modelled); `filter_id` is a 404, since the
//!   sandbox company has no saved filters. Deals also honour `person_id`, `pipeline_id`,
//!   `stage_id` and `status` (comma list; `deleted` brings deleted deals back), activities
//!   `deal_id`, `person_id`, `lead_id` and `done`; pipelines only paging and sorting.
//!   `sort_by=due_date` on activities is not modelled (a validation error).
//! - API v1 (`/api/v1/notes`, `/users`, `/leads`): offset paging (`start`, `limit` up to
//!   500, `additional_data.pagination.more_items_in_collection`/`next_start`), unknown
//!   body keys ignored as v1 does, numbers accepted as strings. An empty notes page is
//!   `"data": null` as v1 lists answer; leads answer `[]`. `/v1/users` is one unpaged
//!   list. Notes are listed in id order (`sort` is not modelled), leads by `add_time`.
//!   Only reads are served for users and leads; notes have create, `PUT`, delete (a hard
//!   delete answering `"data": true`).

use std::cmp::Ordering as CmpOrdering;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde_json::{Map, Value, json};

use super::DemoAccount;
use super::PIPEDRIVE_DEMO_TOKEN;
use super::control::{Control, FaultKind, RateDecision, RateLimitConfig, Reject, Vendor};
use super::oauth::{
    self, AuthorizeError, Issued, OAuthShape, Prefixes, Profile, RefreshRule, TokenError,
};
use super::pipedrive_data::{
    ACTIVITY_TYPES, ADDRESS_PARTS, ActivityFields, Channel, CustomKind, DEFAULT_CURRENCY,
    DealFields, Entity, Extra, OWNER_IDS, PipelineFields, Record, Store,
};
use super::webhooks::{Action, Source, WebhookDialect};
use super::wire::{self, AuthFailure, Dialect, ReqInfo, last_param, split_list};
use super::{PIPEDRIVE_CLIENT_ID, PIPEDRIVE_CLIENT_SECRET};

#[path = "pipedrive_webhooks.rs"]
mod webhooks;

pub(crate) const PROVIDER: &str = "pipedrive";
const PREFIX: &str = "/pipedrive";
const API: &str = "/api/v2";
const V1: &str = "/api/v1";
/// Routes outside the generic v2 table: v1 notes/users/leads/webhooks and v2 stages.
const OTHER_ROUTES: [&str; 10] = [
    "/api/v1/webhooks",
    "/api/v1/webhooks/{id}",
    "/api/v1/notes",
    "/api/v1/notes/{id}",
    "/api/v1/users",
    "/api/v1/users/{id}",
    "/api/v1/leads",
    "/api/v1/leads/{id}",
    "/api/v2/stages",
    "/api/v2/stages/{id}",
];
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 500;
const MAX_IDS: usize = 100;
const MAX_CUSTOM_FIELD_KEYS: usize = 15;
/// Ids are JSON numbers: anything above 2^53 - 1 is rejected like Pipedrive's validator.
const MAX_SAFE_INTEGER: u64 = 9_007_199_254_740_991;
const DAILY_REQUESTS: u64 = 10_000;
const ERROR_INFO: &str =
    "Please check developers.pipedrive.com for more information about Pipedrive API.";
const EMAIL_LABELS: [&str; 3] = ["work", "home", "other"];
const PHONE_LABELS: [&str; 4] = ["work", "home", "mobile", "other"];
const VISIBILITY: [u64; 4] = [1, 3, 5, 7];
const MARKETING_STATUSES: [&str; 4] = ["no_consent", "unsubscribed", "subscribed", "archived"];

pub(crate) struct Pipedrive {
    control: Arc<Control>,
    store: RwLock<Store>,
    templates: HashSet<String>,
    /// Requests admitted since start or the last reset, for `x-daily-requests-left`.
    daily_used: AtomicU64,
}

fn route_table() -> Vec<(Entity, bool, String)> {
    Entity::ALL
        .into_iter()
        .flat_map(|e| {
            let base = format!("{API}/{}", e.path());
            [
                (e, false, base.clone()),
                (e, true, format!("{base}/{{id}}")),
            ]
        })
        .collect()
}

impl Pipedrive {
    pub(crate) fn new(control: Arc<Control>) -> Pipedrive {
        Pipedrive {
            control,
            store: RwLock::new(Store::seed()),
            templates: route_table()
                .into_iter()
                .map(|(_, _, path)| path)
                .chain(OTHER_ROUTES.iter().map(|p| (*p).to_owned()))
                .map(|path| format!("{PREFIX}{path}"))
                .collect(),
            daily_used: AtomicU64::new(0),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Vendor for Pipedrive {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    fn seed_tokens(&self) -> Vec<String> {
        vec![PIPEDRIVE_DEMO_TOKEN.to_owned()]
    }

    fn default_rate_limit(&self) -> RateLimitConfig {
        // Burst limit per token, rolling 2 s window: OAuth apps on the Ultimate plan.
        RateLimitConfig {
            max: 480,
            interval_ms: 2_000,
        }
    }

    fn reset_data(&self) {
        *self.write() = Store::seed();
        self.daily_used.store(0, Ordering::Relaxed);
    }

    fn router(self: Arc<Self>) -> Router {
        let mut router: Router<Arc<Pipedrive>> = Router::new();
        for (entity, item, path) in route_table() {
            router = if item {
                router.route(
                    &path,
                    get(
                        move |State(p): State<Arc<Pipedrive>>,
                              info: ReqInfo,
                              id: Result<Path<String>, PathRejection>| async move {
                            p.get_one(entity, &info, id)
                        },
                    )
                    .patch(
                        move |State(p): State<Arc<Pipedrive>>,
                              id: Result<Path<String>, PathRejection>,
                              body: Bytes| async move {
                            p.update(entity, id, &body)
                        },
                    )
                    .delete(
                        move |State(p): State<Arc<Pipedrive>>,
                              id: Result<Path<String>, PathRejection>| async move {
                            p.delete(entity, id)
                        },
                    ),
                )
            } else {
                router.route(
                    &path,
                    get(
                        move |State(p): State<Arc<Pipedrive>>, info: ReqInfo| async move {
                            p.list(entity, &info)
                        },
                    )
                    .post(
                        move |State(p): State<Arc<Pipedrive>>, body: Bytes| async move {
                            p.create(entity, &body)
                        },
                    ),
                )
            };
        }
        type Id = Result<Path<String>, PathRejection>;
        router =
            router
                .route(
                    &format!("{V1}/notes"),
                    get(
                        |State(p): State<Arc<Pipedrive>>, info: ReqInfo| async move {
                            p.list_notes(&info)
                        },
                    )
                    .post(
                        |State(p): State<Arc<Pipedrive>>, body: Bytes| async move {
                            p.write_note(None, &body)
                        },
                    ),
                )
                .route(
                    &format!("{V1}/notes/{{id}}"),
                    get(|State(p): State<Arc<Pipedrive>>, id: Id| async move { p.get_note(id) })
                        .put(
                            |State(p): State<Arc<Pipedrive>>, id: Id, body: Bytes| async move {
                                p.write_note(Some(id), &body)
                            },
                        )
                        .delete(|State(p): State<Arc<Pipedrive>>, id: Id| async move {
                            p.delete_note(id)
                        }),
                )
                .route(
                    &format!("{V1}/users"),
                    get(|State(p): State<Arc<Pipedrive>>| async move { p.list_users() }),
                )
                .route(
                    &format!("{V1}/users/{{id}}"),
                    get(|State(p): State<Arc<Pipedrive>>, id: Id| async move { p.get_user(id) }),
                )
                .route(
                    &format!("{V1}/leads"),
                    get(
                        |State(p): State<Arc<Pipedrive>>, info: ReqInfo| async move {
                            p.list_leads(&info)
                        },
                    ),
                )
                .route(
                    &format!("{V1}/leads/{{id}}"),
                    get(|State(p): State<Arc<Pipedrive>>, id: Id| async move { p.get_lead(id) }),
                )
                .route(
                    &format!("{API}/stages"),
                    get(
                        |State(p): State<Arc<Pipedrive>>, info: ReqInfo| async move {
                            p.list_stages(&info)
                        },
                    ),
                )
                .route(
                    &format!("{API}/stages/{{id}}"),
                    get(|State(p): State<Arc<Pipedrive>>, id: Id| async move { p.get_stage(id) }),
                )
                .merge(webhooks::routes());
        router
            .method_not_allowed_fallback(|| async { unknown_method() })
            .fallback(|| async { unknown_method() })
            .layer(middleware::from_fn_with_state(
                self.clone(),
                wire::gate::<Pipedrive>,
            ))
            .with_state(self)
    }

    fn demo_account(&self, base_url: &str) -> DemoAccount {
        DemoAccount {
            provider: PROVIDER,
            credentials: json!({ "accessToken": PIPEDRIVE_DEMO_TOKEN }),
            settings: json!({ "apiDomain": format!("{base_url}{PREFIX}") }),
        }
    }

    fn oauth(&self) -> Option<&dyn OAuthShape> {
        Some(self)
    }

    fn webhooks(self: Arc<Self>) -> Option<Arc<dyn WebhookDialect>> {
        Some(self)
    }

    fn oauth_router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/oauth/authorize", get(oauth::authorize::<Pipedrive>))
            .route(
                "/oauth/token",
                axum::routing::post(oauth::token::<Pipedrive>),
            )
            .route("/oauth/revoke", axum::routing::post(revoke_token))
            .with_state(self)
    }
}

/// Seeded records in list-endpoint shape, chosen to include the edge cases: no email, no
/// phone, no organization, no tier, a non-first primary email, non-ASCII and one-word
/// names; organizations without address, employee count or industry.
pub(crate) fn sample_records(resource: &str) -> Option<Vec<Value>> {
    let store = Store::seed();
    let (entity, ids): (Entity, &[u64]) = match resource {
        "contacts" | "persons" => (Entity::Persons, &[1, 2, 4, 5, 13, 42, 100, 150, 201, 231]),
        "companies" | "organizations" => (
            Entity::Organizations,
            &[1001, 1002, 1003, 1005, 1006, 1008, 1010, 1034],
        ),
        // Open, won, lost; with and without probability, person, organization, close date.
        "deals" => (
            Entity::Deals,
            &[5001, 5002, 5003, 5004, 5005, 5007, 5021, 5024],
        ),
        // Done and open; on a deal, a person, an organization; every type.
        "tasks" | "activities" => (
            Entity::Activities,
            &[
                20_001, 20_002, 20_003, 20_004, 20_005, 20_006, 20_007, 20_010,
            ],
        ),
        "pipelines" => (Entity::Pipelines, &[1, 2, 3]),
        "users" => {
            return Some(
                store
                    .users
                    .values()
                    .map(|u| u.render(OWNER_IDS[0]))
                    .collect(),
            );
        }
        "notes" => {
            return Some(
                [1u64, 2, 3, 7]
                    .iter()
                    .filter_map(|id| store.notes.get(id))
                    .map(|n| n.render(&store))
                    .collect(),
            );
        }
        "leads" => return Some(store.leads.values().take(12).map(|l| l.render()).collect()),
        _ => return None,
    };
    Some(
        ids.iter()
            .filter_map(|id| store.live(entity, *id))
            .map(|r| r.render(entity, None))
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------
// Wire dialect: credentials, error bodies, rate headers

fn error_body(message: &str) -> Value {
    json!({
        "success": false,
        "error": message,
        "error_info": ERROR_INFO,
        "data": null,
        "additional_data": null,
    })
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(error_body(message))).into_response()
}

fn validation(message: impl AsRef<str>) -> Reject {
    error(
        StatusCode::BAD_REQUEST,
        &format!("Validation failed: {}", message.as_ref()),
    )
    .into()
}

fn not_found(entity: Entity) -> Reject {
    error(
        StatusCode::NOT_FOUND,
        &format!("{} not found", entity.singular()),
    )
    .into()
}

fn unknown_method() -> Response {
    error(StatusCode::NOT_FOUND, "Unknown method .")
}

fn unauthorized() -> Response {
    // As observed live (vendors.md §4): no data/additional_data, plus a gateway marker.
    let body = json!({
        "success": false,
        "error": "unauthorized access",
        "errorCode": 401,
        "error_info": "Please check developers.pipedrive.com",
    });
    let mut response = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    response.headers_mut().insert(
        HeaderName::from_static("x-401-by-gw"),
        HeaderValue::from_static("true"),
    );
    response
}

fn over_limit() -> Response {
    let body = json!({
        "success": false,
        "error": "Request over limit",
        "errorCode": 429,
        "error_info": ERROR_INFO,
        "data": null,
        "additional_data": null,
    });
    (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response()
}

impl Dialect for Pipedrive {
    const PROVIDER: &'static str = PROVIDER;

    fn control(&self) -> &Control {
        &self.control
    }

    fn route_templates(&self) -> &HashSet<String> {
        &self.templates
    }

    fn credentials(&self, info: &ReqInfo) -> Option<String> {
        wire::bearer_token(&info.headers).or_else(|| {
            info.header("x-api-token")
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
        })
    }

    fn fault_response(&self, _info: &ReqInfo, status: StatusCode, body: Option<Value>) -> Response {
        if let Some(body) = body {
            return (status, Json(body)).into_response();
        }
        match status.as_u16() {
            401 => unauthorized(),
            429 => over_limit(),
            _ => error(status, status.canonical_reason().unwrap_or("Error")),
        }
    }

    fn auth_failure(&self, _info: &ReqInfo, _failure: AuthFailure) -> Response {
        unauthorized()
    }

    fn throttled(&self, _info: &ReqInfo, _decision: &RateDecision) -> Response {
        over_limit()
    }

    fn rate_headers(&self, headers: &mut HeaderMap, d: &RateDecision) {
        let used = if d.allowed {
            self.daily_used
                .fetch_add(1, Ordering::Relaxed)
                .saturating_add(1)
        } else {
            self.daily_used.load(Ordering::Relaxed)
        };
        let pairs: [(&'static str, u64); 4] = [
            ("x-ratelimit-limit", u64::from(d.max)),
            ("x-ratelimit-remaining", u64::from(d.remaining)),
            ("x-ratelimit-reset", d.retry_after_ms.div_ceil(1000)),
            ("x-daily-requests-left", DAILY_REQUESTS.saturating_sub(used)),
        ];
        for (name, value) in pairs {
            headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Listing: parameters, sorting, cursors

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SortBy {
    Id,
    UpdateTime,
    AddTime,
}

impl SortBy {
    fn name(self) -> &'static str {
        match self {
            SortBy::Id => "id",
            SortBy::UpdateTime => "update_time",
            SortBy::AddTime => "add_time",
        }
    }

    fn parse(raw: &str) -> Option<SortBy> {
        [SortBy::Id, SortBy::UpdateTime, SortBy::AddTime]
            .into_iter()
            .find(|s| s.name() == raw)
    }

    fn key(self, r: &Record) -> i64 {
        match self {
            SortBy::Id => i64::try_from(r.id).unwrap_or(i64::MAX),
            SortBy::UpdateTime => r.update_time.timestamp(),
            SortBy::AddTime => r.add_time.timestamp(),
        }
    }

    fn key_json(self, r: &Record) -> Value {
        match self {
            SortBy::Id => json!(r.id),
            SortBy::UpdateTime => json!(super::pipedrive_data::v2_time(r.update_time)),
            SortBy::AddTime => json!(super::pipedrive_data::v2_time(r.add_time)),
        }
    }
}

/// Where a page starts: after (sort key, id), or at the very beginning.
#[derive(Clone, Copy, Debug)]
enum Position {
    Start,
    After(i64, u64),
}

struct ListParams {
    limit: usize,
    sort: SortBy,
    desc: bool,
    position: Position,
    raw_cursor: Option<String>,
    ids: Option<Vec<u64>>,
    org_id: Option<u64>,
    owner_id: Option<u64>,
    person_id: Option<u64>,
    deal_id: Option<u64>,
    lead_id: Option<String>,
    pipeline_id: Option<u64>,
    stage_id: Option<u64>,
    /// Deals: the statuses asked for (`deleted` includes deleted deals).
    statuses: Option<Vec<String>>,
    done: Option<bool>,
    updated_since: Option<DateTime<Utc>>,
    updated_until: Option<DateTime<Utc>>,
    custom_keys: Option<Vec<String>>,
}

fn encode_cursor(sort: SortBy, desc: bool, last: Option<&Record>) -> String {
    let direction = if desc { "desc" } else { "asc" };
    let body = match last {
        Some(r) => json!({
            "field": sort.name(),
            "fieldValue": sort.key_json(r),
            "sortDirection": direction,
            "id": r.id,
        }),
        None => json!({
            "field": sort.name(),
            "fieldValue": null,
            "sortDirection": direction,
            "id": null,
        }),
    };
    URL_SAFE_NO_PAD.encode(body.to_string())
}

fn decode_cursor(raw: &str, sort: SortBy, desc: bool) -> Option<Position> {
    let trimmed = raw.trim().trim_end_matches('=');
    let bytes = URL_SAFE_NO_PAD.decode(trimmed.as_bytes()).ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    let field = SortBy::parse(value.get("field")?.as_str()?)?;
    let direction = value.get("sortDirection")?.as_str()?;
    if field != sort || direction != if desc { "desc" } else { "asc" } {
        return None;
    }
    let field_value = value.get("fieldValue")?;
    let id = value.get("id")?;
    if field_value.is_null() && id.is_null() {
        return Some(Position::Start);
    }
    let id = id.as_u64()?;
    let key = match sort {
        SortBy::Id => i64::try_from(field_value.as_u64()?).ok()?,
        SortBy::UpdateTime | SortBy::AddTime => DateTime::parse_from_rfc3339(field_value.as_str()?)
            .ok()?
            .timestamp(),
    };
    Some(Position::After(key, id))
}

fn parse_time(name: &str, raw: &str) -> Result<DateTime<Utc>, Reject> {
    DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| validation(format!("{name}: Invalid datetime, expected RFC3339")))
}

fn parse_id_param(name: &str, raw: &str) -> Result<u64, Reject> {
    let trimmed = raw.trim();
    if trimmed.is_empty() || !trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(validation(format!("{name}: Expected number, received nan")));
    }
    match trimmed.parse::<u64>() {
        Ok(0) => Err(validation(format!("{name}: Number must be greater than 0"))),
        Ok(n) if n <= MAX_SAFE_INTEGER => Ok(n),
        _ => Err(validation(format!(
            "{name}: Number must be less than or equal to {MAX_SAFE_INTEGER}"
        ))),
    }
}

fn list_params(entity: Entity, info: &ReqInfo) -> Result<ListParams, Reject> {
    let pairs = info.pairs();
    let limit = match last_param(&pairs, "limit") {
        None => DEFAULT_LIMIT,
        Some(raw) => match raw.trim().parse::<i64>() {
            Ok(n) if n < 1 => {
                return Err(validation(
                    "limit: Number must be greater than or equal to 1",
                ));
            }
            Ok(n) => match usize::try_from(n) {
                Ok(n) if n <= MAX_LIMIT => n,
                _ => {
                    return Err(validation(format!(
                        "limit: Number must be less than or equal to {MAX_LIMIT}"
                    )));
                }
            },
            // Digits that overflow are still a number, just far too large.
            Err(_) if raw.trim().bytes().all(|b| b.is_ascii_digit()) && !raw.trim().is_empty() => {
                return Err(validation(format!(
                    "limit: Number must be less than or equal to {MAX_LIMIT}"
                )));
            }
            Err(_) => return Err(validation("limit: Expected number, received nan")),
        },
    };
    let sort = match last_param(&pairs, "sort_by") {
        None => SortBy::Id,
        Some(raw) => SortBy::parse(raw.trim()).ok_or_else(|| {
            validation(format!(
                "sort_by: Invalid enum value. Expected 'id' | 'update_time' | 'add_time', received '{raw}'"
            ))
        })?,
    };
    let desc = match last_param(&pairs, "sort_direction").map(str::trim) {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => {
            return Err(validation(format!(
                "sort_direction: Invalid enum value. Expected 'asc' | 'desc', received '{other}'"
            )));
        }
    };
    let raw_cursor = last_param(&pairs, "cursor")
        .filter(|c| !c.trim().is_empty())
        .map(str::to_owned);
    let position = match &raw_cursor {
        None => Position::Start,
        Some(raw) => {
            decode_cursor(raw, sort, desc).ok_or_else(|| validation("cursor: Invalid cursor"))?
        }
    };
    let ids = match last_param(&pairs, "ids") {
        None => None,
        Some(raw) => {
            let parts = split_list(raw);
            if parts.len() > MAX_IDS {
                return Err(validation(format!(
                    "ids: Array must contain at most {MAX_IDS} element(s)"
                )));
            }
            Some(
                parts
                    .iter()
                    .map(|p| parse_id_param("ids", p))
                    .collect::<Result<Vec<u64>, Reject>>()?,
            )
        }
    };
    // Which filters each listing knows (vendors.md §4 and the v2 reference); pipelines
    // take none but paging and sorting.
    let id_param = |name: &str, entities: &[Entity]| -> Result<Option<u64>, Reject> {
        match last_param(&pairs, name) {
            Some(raw) if entities.contains(&entity) => parse_id_param(name, raw).map(Some),
            _ => Ok(None),
        }
    };
    use Entity::{Activities, Deals, Organizations, Persons};
    let org_id = id_param("org_id", &[Persons, Deals, Activities])?;
    let owner_id = id_param("owner_id", &[Persons, Organizations, Deals, Activities])?;
    let person_id = id_param("person_id", &[Deals, Activities])?;
    let deal_id = id_param("deal_id", &[Activities])?;
    let pipeline_id = id_param("pipeline_id", &[Deals])?;
    let stage_id = id_param("stage_id", &[Deals])?;
    let lead_id = match last_param(&pairs, "lead_id") {
        Some(raw) if entity == Activities => Some(raw.trim().to_owned()),
        _ => None,
    };
    let statuses = match last_param(&pairs, "status") {
        Some(raw) if entity == Deals => {
            let list = split_list(raw);
            if let Some(bad) = list
                .iter()
                .find(|s| !["open", "won", "lost", "deleted"].contains(&s.as_str()))
            {
                return Err(validation(format!(
                    "status: Invalid enum value. Expected 'open' | 'won' | 'lost' | 'deleted', received '{bad}'"
                )));
            }
            Some(list)
        }
        _ => None,
    };
    let done = match last_param(&pairs, "done").map(str::trim) {
        Some(raw) if entity == Activities => match raw {
            "true" => Some(true),
            "false" => Some(false),
            other => {
                return Err(validation(format!(
                    "done: Expected boolean, received '{other}'"
                )));
            }
        },
        _ => None,
    };
    let dated = entity != Entity::Pipelines;
    let updated_since = last_param(&pairs, "updated_since")
        .filter(|_| dated)
        .map(|raw| parse_time("updated_since", raw))
        .transpose()?;
    let updated_until = last_param(&pairs, "updated_until")
        .filter(|_| dated)
        .map(|raw| parse_time("updated_until", raw))
        .transpose()?;
    let custom_keys = match last_param(&pairs, "custom_fields") {
        None => None,
        Some(raw) => {
            let keys = split_list(raw);
            if keys.len() > MAX_CUSTOM_FIELD_KEYS {
                return Err(validation(format!(
                    "custom_fields: Array must contain at most {MAX_CUSTOM_FIELD_KEYS} element(s)"
                )));
            }
            Some(keys)
        }
    };
    if last_param(&pairs, "filter_id").is_some() {
        return Err(error(StatusCode::NOT_FOUND, "Filter not found").into());
    }
    Ok(ListParams {
        limit,
        sort,
        desc,
        position,
        raw_cursor,
        ids: ids.filter(|_| entity != Entity::Pipelines),
        org_id,
        owner_id,
        person_id,
        deal_id,
        lead_id,
        pipeline_id,
        stage_id,
        statuses,
        done,
        updated_since,
        updated_until,
        custom_keys,
    })
}

impl ListParams {
    fn wants(&self, r: &Record) -> bool {
        let deal = r.deal();
        let activity = r.activity();
        let status_ok = match (&self.statuses, deal) {
            (Some(statuses), Some(d)) => {
                if r.deleted {
                    statuses.iter().any(|s| s == "deleted")
                } else {
                    statuses.contains(&d.status)
                }
            }
            _ => !r.deleted,
        };
        status_ok
            && self.ids.as_ref().is_none_or(|ids| ids.contains(&r.id))
            && self.org_id.is_none_or(|o| r.org_id == Some(o))
            && self.owner_id.is_none_or(|o| r.owner_id == o)
            && self.person_id.is_none_or(|p| {
                deal.and_then(|d| d.person_id)
                    .or_else(|| activity.and_then(|a| a.person_id))
                    == Some(p)
            })
            && self
                .deal_id
                .is_none_or(|d| activity.and_then(|a| a.deal_id) == Some(d))
            && self
                .lead_id
                .as_ref()
                .is_none_or(|l| activity.and_then(|a| a.lead_id.as_ref()) == Some(l))
            && self
                .pipeline_id
                .is_none_or(|p| deal.map(|d| d.pipeline_id) == Some(p))
            && self
                .stage_id
                .is_none_or(|st| deal.map(|d| d.stage_id) == Some(st))
            && self
                .done
                .is_none_or(|done| activity.map(|a| a.done) == Some(done))
            && self.updated_since.is_none_or(|t| r.update_time >= t)
            && self.updated_until.is_none_or(|t| r.update_time < t)
    }

    fn order(&self, a: &Record, b: &Record) -> CmpOrdering {
        let asc = (self.sort.key(a), a.id).cmp(&(self.sort.key(b), b.id));
        if self.desc { asc.reverse() } else { asc }
    }

    fn is_after(&self, r: &Record, key: i64, id: u64) -> bool {
        let ord = (self.sort.key(r), r.id).cmp(&(key, id));
        if self.desc {
            ord == CmpOrdering::Less
        } else {
            ord == CmpOrdering::Greater
        }
    }
}

// ---------------------------------------------------------------------------------------
// Write bodies

#[derive(Default)]
struct Changes {
    name: Option<String>,
    owner_id: Option<u64>,
    org_id: Option<Option<u64>>,
    emails: Option<Vec<Channel>>,
    phones: Option<Vec<Channel>>,
    address: Option<Option<Map<String, Value>>>,
    visible_to: Option<u64>,
    label_ids: Option<Vec<u64>>,
    add_time: Option<DateTime<Utc>>,
    custom: Vec<(String, Value)>,
    // Deals and activities.
    person_id: Option<Option<u64>>,
    // Deals.
    pipeline_id: Option<u64>,
    stage_id: Option<u64>,
    value: Option<f64>,
    currency: Option<String>,
    status: Option<String>,
    probability: Option<Option<f64>>,
    lost_reason: Option<Option<String>>,
    expected_close_date: Option<Option<NaiveDate>>,
    // Activities.
    kind: Option<String>,
    deal_id: Option<Option<u64>>,
    lead_id: Option<Option<String>>,
    due_date: Option<Option<NaiveDate>>,
    due_time: Option<Option<String>>,
    duration: Option<Option<String>>,
    busy: Option<bool>,
    done: Option<bool>,
    note: Option<Option<String>>,
    public_description: Option<Option<String>>,
    priority: Option<Option<u64>>,
    // Pipelines.
    probability_enabled: Option<bool>,
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn expected(field: &str, wanted: &str, got: &Value) -> Reject {
    validation(format!(
        "{field}: Expected {wanted}, received {}",
        type_name(got)
    ))
}

fn positive_int(field: &str, v: &Value) -> Result<u64, Reject> {
    v.as_u64()
        .filter(|n| *n > 0)
        .ok_or_else(|| expected(field, "positive integer", v))
}

fn boolean(field: &str, v: &Value) -> Result<bool, Reject> {
    v.as_bool().ok_or_else(|| expected(field, "boolean", v))
}

fn opt_string(field: &str, v: &Value) -> Result<Option<String>, Reject> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        other => Err(expected(field, "string", other)),
    }
}

/// `YYYY-MM-DD` or null.
fn opt_date(field: &str, v: &Value) -> Result<Option<NaiveDate>, Reject> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map(Some)
            .map_err(|_| validation(format!("{field}: Invalid date, expected YYYY-MM-DD"))),
        other => Err(expected(field, "string", other)),
    }
}

/// `HH:MM` or null.
fn opt_clock(field: &str, v: &Value) -> Result<Option<String>, Reject> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => NaiveTime::parse_from_str(s.trim(), "%H:%M")
            .map(|t| Some(t.format("%H:%M").to_string()))
            .map_err(|_| validation(format!("{field}: Invalid time, expected HH:MM"))),
        other => Err(expected(field, "string", other)),
    }
}

/// A nullable id that must name a live record of `entity`.
fn live_ref(store: &Store, entity: Entity, field: &str, v: &Value) -> Result<Option<u64>, Reject> {
    match v {
        Value::Null => Ok(None),
        other => {
            let id = positive_int(field, other)?;
            if store.live(entity, id).is_none() {
                return Err(validation(format!(
                    "{field}: {} with id {id} not found",
                    entity.singular()
                )));
            }
            Ok(Some(id))
        }
    }
}

fn channels(field: &str, v: &Value, labels: &[&str]) -> Result<Vec<Channel>, Reject> {
    let Value::Array(items) = v else {
        return Err(expected(field, "array", v));
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Value::Object(obj) = item else {
            return Err(expected(&format!("{field}.{i}"), "object", item));
        };
        if let Some(key) = obj
            .keys()
            .find(|k| !["value", "primary", "label"].contains(&k.as_str()))
        {
            return Err(validation(format!(
                "{field}.{i}: Unrecognized key(s) in object: '{key}'"
            )));
        }
        let value = match obj.get("value") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
            Some(Value::String(_)) => {
                return Err(validation(format!(
                    "{field}.{i}.value: String must contain at least 1 character(s)"
                )));
            }
            Some(other) => return Err(expected(&format!("{field}.{i}.value"), "string", other)),
            None => return Err(validation(format!("{field}.{i}.value: Required"))),
        };
        let primary = match obj.get("primary") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(expected(&format!("{field}.{i}.primary"), "boolean", other));
            }
        };
        let label = match obj.get("label") {
            None | Some(Value::Null) => "work".to_owned(),
            Some(Value::String(s)) if labels.contains(&s.as_str()) => s.clone(),
            Some(Value::String(s)) => {
                return Err(validation(format!(
                    "{field}.{i}.label: Invalid enum value. Expected {}, received '{s}'",
                    labels
                        .iter()
                        .map(|l| format!("'{l}'"))
                        .collect::<Vec<_>>()
                        .join(" | ")
                )));
            }
            Some(other) => return Err(expected(&format!("{field}.{i}.label"), "string", other)),
        };
        out.push(Channel {
            value,
            primary,
            label,
        });
    }
    // Exactly one primary entry when there are any: the first flagged one, else the first.
    let first_primary = out.iter().position(|c| c.primary).unwrap_or(0);
    for (i, c) in out.iter_mut().enumerate() {
        c.primary = i == first_primary;
    }
    Ok(out)
}

fn address(v: &Value) -> Result<Option<Map<String, Value>>, Reject> {
    let obj = match v {
        Value::Null => return Ok(None),
        Value::Object(obj) => obj,
        other => return Err(expected("address", "object", other)),
    };
    let mut out = Map::new();
    for part in ADDRESS_PARTS {
        out.insert(part.to_owned(), Value::Null);
    }
    for (key, value) in obj {
        if !ADDRESS_PARTS.contains(&key.as_str()) {
            return Err(validation(format!(
                "address: Unrecognized key(s) in object: '{key}'"
            )));
        }
        match value {
            Value::Null => {}
            Value::String(s) => {
                out.insert(key.clone(), json!(s));
            }
            other => return Err(expected(&format!("address.{key}"), "string", other)),
        }
    }
    Ok(Some(out))
}

impl Pipedrive {
    fn parse_changes(
        &self,
        entity: Entity,
        body: &Bytes,
        creating: bool,
        store: &Store,
    ) -> Result<Changes, Reject> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| validation(format!("body: Invalid JSON ({e})")))?;
        let Value::Object(obj) = value else {
            return Err(expected("body", "object", &value));
        };
        let allowed: &[&str] = match entity {
            Entity::Persons => &[
                "name",
                "owner_id",
                "org_id",
                "emails",
                "phones",
                "visible_to",
                "label_ids",
                "marketing_status",
                "add_time",
                "custom_fields",
            ],
            Entity::Organizations => &[
                "name",
                "owner_id",
                "address",
                "visible_to",
                "label_ids",
                "add_time",
                "custom_fields",
            ],
            Entity::Deals => &[
                "title",
                "owner_id",
                "person_id",
                "org_id",
                "pipeline_id",
                "stage_id",
                "value",
                "currency",
                "add_time",
                "status",
                "probability",
                "lost_reason",
                "visible_to",
                "expected_close_date",
                "label_ids",
                "custom_fields",
            ],
            Entity::Activities => &[
                "subject",
                "type",
                "owner_id",
                "deal_id",
                "lead_id",
                "org_id",
                "due_date",
                "due_time",
                "duration",
                "busy",
                "done",
                "participants",
                "public_description",
                "priority",
                "note",
            ],
            Entity::Pipelines => &["name", "is_deal_probability_enabled"],
        };
        let unknown: Vec<&String> = obj
            .keys()
            .filter(|k| !allowed.contains(&k.as_str()))
            .collect();
        if !unknown.is_empty() {
            let list: Vec<String> = unknown.iter().map(|k| format!("'{k}'")).collect();
            return Err(validation(format!(
                "Unrecognized key(s) in object: {}",
                list.join(", ")
            )));
        }
        let mut changes = Changes::default();
        for (key, v) in &obj {
            match key.as_str() {
                "name" | "title" | "subject" => match v {
                    Value::String(s) if !s.trim().is_empty() => {
                        changes.name = Some(s.trim().to_owned());
                    }
                    Value::String(_) => {
                        return Err(validation(format!(
                            "{key}: String must contain at least 1 character(s)"
                        )));
                    }
                    other => return Err(expected(key, "string", other)),
                },
                "person_id" => {
                    changes.person_id = Some(live_ref(store, Entity::Persons, "person_id", v)?);
                }
                "deal_id" => {
                    changes.deal_id = Some(live_ref(store, Entity::Deals, "deal_id", v)?);
                }
                "pipeline_id" => {
                    let id = positive_int("pipeline_id", v)?;
                    if store.live(Entity::Pipelines, id).is_none() {
                        return Err(validation(format!(
                            "pipeline_id: Pipeline with id {id} not found"
                        )));
                    }
                    changes.pipeline_id = Some(id);
                }
                "stage_id" => {
                    let id = positive_int("stage_id", v)?;
                    if store.stage(id).is_none() {
                        return Err(validation(format!(
                            "stage_id: Stage with id {id} not found"
                        )));
                    }
                    changes.stage_id = Some(id);
                }
                "value" => {
                    changes.value = Some(
                        v.as_f64()
                            .filter(|n| n.is_finite())
                            .ok_or_else(|| expected("value", "number", v))?,
                    );
                }
                "currency" => match v {
                    Value::String(c)
                        if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) =>
                    {
                        changes.currency = Some(c.clone());
                    }
                    Value::String(c) => {
                        return Err(validation(format!("currency: Invalid currency '{c}'")));
                    }
                    other => return Err(expected("currency", "string", other)),
                },
                "status" => match v.as_str() {
                    Some(st @ ("open" | "won" | "lost")) => changes.status = Some(st.to_owned()),
                    _ => {
                        return Err(validation(
                            "status: Invalid enum value. Expected 'open' | 'won' | 'lost'",
                        ));
                    }
                },
                "probability" => {
                    changes.probability = Some(match v {
                        Value::Null => None,
                        other => Some(
                            other
                                .as_f64()
                                .filter(|n| (0.0..=100.0).contains(n))
                                .ok_or_else(|| {
                                    validation("probability: Number must be between 0 and 100")
                                })?,
                        ),
                    });
                }
                "lost_reason" => changes.lost_reason = Some(opt_string("lost_reason", v)?),
                "expected_close_date" => {
                    changes.expected_close_date = Some(opt_date("expected_close_date", v)?);
                }
                "type" => match v.as_str() {
                    Some(t) if ACTIVITY_TYPES.contains(&t) => changes.kind = Some(t.to_owned()),
                    _ => {
                        return Err(validation(format!(
                            "type: Invalid activity type. Expected one of {}",
                            ACTIVITY_TYPES.join(", ")
                        )));
                    }
                },
                "lead_id" => {
                    changes.lead_id = Some(match v {
                        Value::Null => None,
                        Value::String(l) if store.leads.contains_key(l) => Some(l.clone()),
                        Value::String(l) => {
                            return Err(validation(format!("lead_id: Lead with id {l} not found")));
                        }
                        other => return Err(expected("lead_id", "string", other)),
                    });
                }
                "due_date" => changes.due_date = Some(opt_date("due_date", v)?),
                "due_time" => changes.due_time = Some(opt_clock("due_time", v)?),
                "duration" => changes.duration = Some(opt_clock("duration", v)?),
                "busy" => changes.busy = Some(boolean("busy", v)?),
                "done" => changes.done = Some(boolean("done", v)?),
                "is_deal_probability_enabled" => {
                    changes.probability_enabled = Some(boolean("is_deal_probability_enabled", v)?);
                }
                "note" => changes.note = Some(opt_string("note", v)?),
                "public_description" => {
                    changes.public_description = Some(opt_string("public_description", v)?);
                }
                "priority" => {
                    changes.priority = Some(match v {
                        Value::Null => None,
                        other => Some(positive_int("priority", other)?),
                    });
                }
                "participants" => {
                    let Value::Array(items) = v else {
                        return Err(expected("participants", "array", v));
                    };
                    // The primary participant becomes the activity's `person_id`.
                    let mut primary = None;
                    for (i, item) in items.iter().enumerate() {
                        let field = format!("participants.{i}");
                        let Value::Object(p) = item else {
                            return Err(expected(&field, "object", item));
                        };
                        let person = live_ref(
                            store,
                            Entity::Persons,
                            &format!("{field}.person_id"),
                            p.get("person_id").unwrap_or(&Value::Null),
                        )?
                        .ok_or_else(|| validation(format!("{field}.person_id: Required")))?;
                        let is_primary = match p.get("primary") {
                            None | Some(Value::Null) => false,
                            Some(b) => boolean(&format!("{field}.primary"), b)?,
                        };
                        if is_primary {
                            primary = Some(person);
                        }
                    }
                    changes.person_id = Some(primary);
                }
                "owner_id" => {
                    let id = positive_int("owner_id", v)?;
                    if !OWNER_IDS.contains(&id) {
                        return Err(validation(format!("owner_id: User with id {id} not found")));
                    }
                    changes.owner_id = Some(id);
                }
                "org_id" => {
                    changes.org_id = Some(match v {
                        Value::Null => None,
                        other => {
                            let id = positive_int("org_id", other)?;
                            if store.live(Entity::Organizations, id).is_none() {
                                return Err(validation(format!(
                                    "org_id: Organization with id {id} not found"
                                )));
                            }
                            Some(id)
                        }
                    });
                }
                "emails" => changes.emails = Some(channels("emails", v, &EMAIL_LABELS)?),
                "phones" => changes.phones = Some(channels("phones", v, &PHONE_LABELS)?),
                "address" => changes.address = Some(address(v)?),
                "visible_to" => {
                    let n = v
                        .as_u64()
                        .filter(|n| VISIBILITY.contains(n))
                        .ok_or_else(|| {
                            validation("visible_to: Invalid enum value. Expected 1 | 3 | 5 | 7")
                        })?;
                    changes.visible_to = Some(n);
                }
                "label_ids" => {
                    let Value::Array(items) = v else {
                        return Err(expected("label_ids", "array", v));
                    };
                    changes.label_ids = Some(
                        items
                            .iter()
                            .enumerate()
                            .map(|(i, item)| positive_int(&format!("label_ids.{i}"), item))
                            .collect::<Result<Vec<u64>, Reject>>()?,
                    );
                }
                "marketing_status" => match v {
                    Value::String(s) if MARKETING_STATUSES.contains(&s.as_str()) => {}
                    _ => {
                        return Err(validation(
                            "marketing_status: Invalid enum value. Expected 'no_consent' | 'unsubscribed' | 'subscribed' | 'archived'",
                        ));
                    }
                },
                "add_time" => match v {
                    Value::String(s) => changes.add_time = Some(parse_time("add_time", s)?),
                    other => return Err(expected("add_time", "string", other)),
                },
                "custom_fields" => {
                    let Value::Object(fields) = v else {
                        return Err(expected("custom_fields", "object", v));
                    };
                    for (field, value) in fields {
                        let kind = entity.custom_kind(field).ok_or_else(|| {
                            validation(format!("custom_fields: Unknown custom field key '{field}'"))
                        })?;
                        let ok = matches!(
                            (kind, value),
                            (_, Value::Null)
                                | (CustomKind::Text, Value::String(_))
                                | (CustomKind::Number, Value::Number(_))
                        );
                        if !ok {
                            let wanted = match kind {
                                CustomKind::Text => "string",
                                CustomKind::Number => "number",
                            };
                            return Err(expected(&format!("custom_fields.{field}"), wanted, value));
                        }
                        changes.custom.push((field.clone(), value.clone()));
                    }
                }
                _ => {}
            }
        }
        if entity == Entity::Deals {
            // A stage implies its pipeline; a pipeline alone means its first stage.
            match (changes.pipeline_id, changes.stage_id) {
                (Some(p), Some(st)) => {
                    if store.stage(st).map(|x| x.pipeline_id) != Some(p) {
                        return Err(validation(format!(
                            "stage_id: Stage {st} does not belong to pipeline {p}"
                        )));
                    }
                }
                (None, Some(st)) => changes.pipeline_id = store.stage(st).map(|x| x.pipeline_id),
                (Some(p), None) => {
                    changes.stage_id =
                        Some(store.first_stage(p).map(|x| x.id).ok_or_else(|| {
                            validation(format!("pipeline_id: Pipeline {p} has no stages"))
                        })?);
                }
                (None, None) => {}
            }
        }
        if creating && changes.name.is_none() {
            match entity {
                Entity::Deals => return Err(validation("title: Required")),
                Entity::Activities => {}
                _ => return Err(validation("name: Required")),
            }
        }
        Ok(changes)
    }
}

fn apply(record: &mut Record, changes: Changes) {
    if let Some(name) = changes.name {
        record.name = name;
    }
    if let Some(owner) = changes.owner_id {
        record.owner_id = owner;
    }
    if let Some(org) = changes.org_id {
        record.org_id = org;
    }
    if let Some(emails) = changes.emails {
        record.emails = emails;
    }
    if let Some(phones) = changes.phones {
        record.phones = phones;
    }
    if let Some(address) = changes.address {
        record.address = address;
    }
    if let Some(v) = changes.visible_to {
        record.visible_to = v;
    }
    if let Some(labels) = changes.label_ids {
        record.label_ids = labels;
    }
    if let Some(t) = changes.add_time {
        record.add_time = t;
    }
    for (key, value) in changes.custom {
        if value.is_null() {
            record.custom.remove(&key);
        } else {
            record.custom.insert(key, value);
        }
    }
    let now = Utc::now().max(record.add_time);
    match &mut record.extra {
        Extra::None => {}
        Extra::Deal(d) => {
            if let Some(p) = changes.person_id {
                d.person_id = p;
            }
            if let Some(p) = changes.pipeline_id {
                d.pipeline_id = p;
            }
            if let Some(st) = changes.stage_id
                && st != d.stage_id
            {
                d.stage_id = st;
                d.stage_change_time = Some(now);
            }
            if let Some(v) = changes.value {
                d.value = v;
            }
            if let Some(c) = changes.currency {
                d.currency = c;
            }
            if let Some(p) = changes.probability {
                d.probability = p;
            }
            if let Some(l) = changes.lost_reason {
                d.lost_reason = l;
            }
            if let Some(e) = changes.expected_close_date {
                d.expected_close_date = e;
            }
            if let Some(status) = changes.status
                && status != d.status
            {
                // Closing stamps the time; reopening clears it.
                d.close_time = (status != "open").then_some(now);
                d.won_time = (status == "won").then_some(now);
                d.lost_time = (status == "lost").then_some(now);
                d.status = status;
            }
        }
        Extra::Activity(a) => {
            if let Some(k) = changes.kind {
                a.kind = k;
            }
            if let Some(p) = changes.person_id {
                a.person_id = p;
            }
            if let Some(d) = changes.deal_id {
                a.deal_id = d;
            }
            if let Some(l) = changes.lead_id {
                a.lead_id = l;
            }
            if let Some(d) = changes.due_date {
                a.due_date = d;
            }
            if let Some(t) = changes.due_time {
                a.due_time = t;
            }
            if let Some(t) = changes.duration {
                a.duration = t;
            }
            if let Some(b) = changes.busy {
                a.busy = b;
            }
            if let Some(n) = changes.note {
                a.note = n;
            }
            if let Some(d) = changes.public_description {
                a.public_description = d;
            }
            if let Some(p) = changes.priority {
                a.priority = p;
            }
            if let Some(done) = changes.done
                && done != a.done
            {
                a.done = done;
                a.marked_as_done_time = done.then_some(now);
            }
        }
        Extra::Pipeline(p) => {
            if let Some(b) = changes.probability_enabled {
                p.is_deal_probability_enabled = b;
            }
        }
    }
    if record.name.is_empty()
        && let Extra::Activity(a) = &record.extra
    {
        // An activity created without a subject is named after its type, as the app does.
        let mut label = a.kind.clone();
        if let Some(first) = label.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        record.name = label;
    }
}

fn success(data: Value) -> Response {
    Json(json!({ "success": true, "data": data })).into_response()
}

// ---------------------------------------------------------------------------------------
// Handlers

impl Pipedrive {
    fn list(&self, entity: Entity, info: &ReqInfo) -> Result<Response, Reject> {
        let params = list_params(entity, info)?;
        let repeat = self
            .control
            .take_fault(
                PROVIDER,
                &info.method,
                &info.path_and_query,
                FaultKind::RepeatCursor,
            )
            .is_some();
        let store = self.read();
        let mut rows: Vec<&Record> = store
            .table(entity)
            .values()
            .filter(|r| params.wants(r))
            .collect();
        rows.sort_by(|a, b| params.order(a, b));
        let start = match params.position {
            Position::Start => 0,
            Position::After(key, id) => rows
                .iter()
                .position(|r| params.is_after(r, key, id))
                .unwrap_or(rows.len()),
        };
        let page: Vec<&Record> = rows
            .iter()
            .skip(start)
            .take(params.limit)
            .copied()
            .collect();
        let more = start.saturating_add(page.len()) < rows.len();
        let data: Vec<Value> = page
            .iter()
            .map(|r| r.render(entity, params.custom_keys.as_deref()))
            .collect();
        let next = if repeat {
            // The vendor bug: hand back the cursor that produced this very page.
            Some(
                params
                    .raw_cursor
                    .clone()
                    .unwrap_or_else(|| encode_cursor(params.sort, params.desc, None)),
            )
        } else if more {
            Some(encode_cursor(
                params.sort,
                params.desc,
                page.last().copied(),
            ))
        } else {
            None
        };
        drop(store);
        Ok(Json(json!({
            "success": true,
            "data": data,
            "additional_data": { "next_cursor": next },
        }))
        .into_response())
    }

    fn item_id(id: Result<Path<String>, PathRejection>) -> Result<u64, Reject> {
        match id {
            Ok(Path(raw)) => parse_id_param("id", &raw),
            Err(_) => Err(validation("id: Expected number, received nan")),
        }
    }

    fn get_one(
        &self,
        entity: Entity,
        info: &ReqInfo,
        id: Result<Path<String>, PathRejection>,
    ) -> Result<Response, Reject> {
        let id = Self::item_id(id)?;
        let pairs = info.pairs();
        let custom_keys = last_param(&pairs, "custom_fields").map(split_list);
        let store = self.read();
        let record = store.live(entity, id).ok_or_else(|| not_found(entity))?;
        Ok(success(record.render(entity, custom_keys.as_deref())))
    }

    fn create(&self, entity: Entity, body: &Bytes) -> Result<Response, Reject> {
        let (_, rendered) = self.create_record(entity, body, Source::Api)?;
        Ok(success(rendered))
    }

    /// A create as the API makes it, reported to webhooks; returns the id and the record.
    fn create_record(
        &self,
        entity: Entity,
        body: &Bytes,
        source: Source,
    ) -> Result<(u64, Value), Reject> {
        let mut store = self.write();
        let changes = self.parse_changes(entity, body, true, &store)?;
        let now = Utc::now();
        let extra = match entity {
            Entity::Persons | Entity::Organizations => Extra::None,
            Entity::Deals => {
                // Without a stage or pipeline: the first stage of the first pipeline.
                let first = store
                    .table(Entity::Pipelines)
                    .values()
                    .find(|p| !p.deleted)
                    .and_then(|p| store.first_stage(p.id))
                    .ok_or_else(|| validation("stage_id: No pipeline to add the deal to"))?;
                Extra::Deal(DealFields {
                    person_id: None,
                    pipeline_id: first.pipeline_id,
                    stage_id: first.id,
                    value: 0.0,
                    currency: DEFAULT_CURRENCY.to_owned(),
                    status: "open".to_owned(),
                    probability: None,
                    lost_reason: None,
                    expected_close_date: None,
                    close_time: None,
                    won_time: None,
                    lost_time: None,
                    stage_change_time: None,
                })
            }
            Entity::Activities => Extra::Activity(ActivityFields {
                kind: "task".to_owned(),
                deal_id: None,
                lead_id: None,
                person_id: None,
                due_date: Some(now.date_naive()),
                due_time: None,
                duration: None,
                busy: false,
                done: false,
                marked_as_done_time: None,
                note: None,
                public_description: None,
                priority: None,
            }),
            Entity::Pipelines => Extra::Pipeline(PipelineFields {
                order_nr: u64::try_from(store.table(Entity::Pipelines).len())
                    .unwrap_or(0)
                    .saturating_add(1),
                is_deal_probability_enabled: false,
            }),
        };
        let id = store.allocate_id(entity);
        let mut record = Record::blank(id, now, extra);
        apply(&mut record, changes);
        record.update_time = now.max(record.add_time);
        let rendered = record.render(entity, None);
        store.table_mut(entity).insert(id, record);
        drop(store);
        self.report(entity, id, Action::Created, source, None, Some(&rendered));
        Ok((id, rendered))
    }

    fn update(
        &self,
        entity: Entity,
        id: Result<Path<String>, PathRejection>,
        body: &Bytes,
    ) -> Result<Response, Reject> {
        let id = Self::item_id(id)?;
        Ok(success(self.update_record(
            entity,
            id,
            body,
            Source::Api,
        )?))
    }

    /// An update as the API makes it, reported to webhooks with the record before it.
    fn update_record(
        &self,
        entity: Entity,
        id: u64,
        body: &Bytes,
        source: Source,
    ) -> Result<Value, Reject> {
        let mut store = self.write();
        let Some(previous) = store.live(entity, id).map(|r| r.render(entity, None)) else {
            return Err(not_found(entity));
        };
        let changes = self.parse_changes(entity, body, false, &store)?;
        let record = store
            .table_mut(entity)
            .get_mut(&id)
            .ok_or_else(|| not_found(entity))?;
        apply(record, changes);
        record.update_time = Utc::now().max(record.add_time);
        let rendered = record.render(entity, None);
        drop(store);
        self.report(
            entity,
            id,
            Action::Updated,
            source,
            Some(&previous),
            Some(&rendered),
        );
        Ok(rendered)
    }

    fn delete(
        &self,
        entity: Entity,
        id: Result<Path<String>, PathRejection>,
    ) -> Result<Response, Reject> {
        let id = Self::item_id(id)?;
        self.delete_record(entity, id, Source::Api)?;
        Ok(success(json!({ "id": id })))
    }

    /// A (soft) delete as the API makes it, reported to webhooks.
    fn delete_record(&self, entity: Entity, id: u64, source: Source) -> Result<(), Reject> {
        let mut store = self.write();
        let record = store
            .table_mut(entity)
            .get_mut(&id)
            .filter(|r| !r.deleted)
            .ok_or_else(|| not_found(entity))?;
        let previous = record.render(entity, None);
        record.deleted = true;
        record.update_time = Utc::now().max(record.add_time);
        drop(store);
        self.report(entity, id, Action::Deleted, source, Some(&previous), None);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// API v1: notes, users, leads (offset pagination); v2 stages

/// `start` and `limit` of a v1 listing.
fn v1_paging(pairs: &[(String, String)]) -> Result<(usize, usize), Reject> {
    let start = match last_param(pairs, "start") {
        None => 0,
        Some(raw) => raw
            .trim()
            .parse::<usize>()
            .map_err(|_| validation("start: Expected non-negative integer"))?,
    };
    let limit = match last_param(pairs, "limit") {
        None => DEFAULT_LIMIT,
        Some(raw) => match raw.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(validation(format!(
                    "limit: Expected an integer from 1 to {MAX_LIMIT}"
                )));
            }
        },
    };
    Ok((start, limit))
}

/// A v1 page: `data` (null when empty, as v1 does) and `additional_data.pagination`.
fn v1_page(all: Vec<Value>, start: usize, limit: usize, null_when_empty: bool) -> Response {
    let total = all.len();
    let page: Vec<Value> = all.into_iter().skip(start).take(limit).collect();
    let more = start.saturating_add(page.len()) < total;
    let mut pagination = json!({
        "start": start,
        "limit": limit,
        "more_items_in_collection": more,
    });
    if more {
        pagination["next_start"] = json!(start.saturating_add(limit));
    }
    let data = if page.is_empty() && null_when_empty {
        Value::Null
    } else {
        Value::Array(page)
    };
    Json(json!({
        "success": true,
        "data": data,
        "additional_data": { "pagination": pagination },
    }))
    .into_response()
}

/// v1 is lenient with numbers: `5` and `"5"` both name record 5.
fn v1_id(field: &str, v: &Value) -> Result<Option<u64>, Reject> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_u64()
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or_else(|| validation(format!("{field}: must be a positive integer"))),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => s
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or_else(|| validation(format!("{field}: must be a positive integer"))),
        other => Err(expected(field, "integer", other)),
    }
}

fn v1_query_id(pairs: &[(String, String)], name: &str) -> Result<Option<u64>, Reject> {
    last_param(pairs, name)
        .map(|raw| parse_id_param(name, raw))
        .transpose()
}

fn v1_not_found(what: &str) -> Reject {
    error(StatusCode::NOT_FOUND, &format!("{what} not found")).into()
}

impl Pipedrive {
    fn list_notes(&self, info: &ReqInfo) -> Result<Response, Reject> {
        let pairs = info.pairs();
        let (start, limit) = v1_paging(&pairs)?;
        let user_id = v1_query_id(&pairs, "user_id")?;
        let deal_id = v1_query_id(&pairs, "deal_id")?;
        let person_id = v1_query_id(&pairs, "person_id")?;
        let org_id = v1_query_id(&pairs, "org_id")?;
        let lead_id = last_param(&pairs, "lead_id").map(str::trim);
        let store = self.read();
        let all: Vec<Value> = store
            .notes
            .values()
            .filter(|n| {
                user_id.is_none_or(|u| n.user_id == u)
                    && deal_id.is_none_or(|d| n.deal_id == Some(d))
                    && person_id.is_none_or(|p| n.person_id == Some(p))
                    && org_id.is_none_or(|o| n.org_id == Some(o))
                    && lead_id.is_none_or(|l| n.lead_id.as_deref() == Some(l))
            })
            .map(|n| n.render(&store))
            .collect();
        Ok(v1_page(all, start, limit, true))
    }

    fn get_note(&self, id: Result<Path<String>, PathRejection>) -> Result<Response, Reject> {
        let id = Self::item_id(id)?;
        let store = self.read();
        let note = store.notes.get(&id).ok_or_else(|| v1_not_found("Note"))?;
        Ok(success(note.render(&store)))
    }

    /// `POST /v1/notes` (`id` None) or `PUT /v1/notes/{id}`.
    fn write_note(
        &self,
        id: Option<Result<Path<String>, PathRejection>>,
        body: &Bytes,
    ) -> Result<Response, Reject> {
        let id = id.map(Self::item_id).transpose()?;
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| validation(format!("body: Invalid JSON ({e})")))?;
        let Value::Object(obj) = value else {
            return Err(expected("body", "object", &value));
        };
        let mut store = self.write();
        if let Some(id) = id
            && !store.notes.contains_key(&id)
        {
            return Err(v1_not_found("Note"));
        }
        let link =
            |store: &Store, field: &str, entity: Entity| -> Result<Option<Option<u64>>, Reject> {
                match obj.get(field) {
                    None => Ok(None),
                    Some(v) => {
                        let id = v1_id(field, v)?;
                        if let Some(id) = id
                            && store.live(entity, id).is_none()
                        {
                            return Err(validation(format!(
                                "{field}: {} with id {id} not found",
                                entity.singular()
                            )));
                        }
                        Ok(Some(id))
                    }
                }
            };
        let deal_id = link(&store, "deal_id", Entity::Deals)?;
        let person_id = link(&store, "person_id", Entity::Persons)?;
        let org_id = link(&store, "org_id", Entity::Organizations)?;
        let lead_id = match obj.get("lead_id") {
            None => None,
            Some(Value::Null) => Some(None),
            Some(Value::String(l)) if store.leads.contains_key(l) => Some(Some(l.clone())),
            Some(_) => return Err(validation("lead_id: Lead not found")),
        };
        let user_id = match obj.get("user_id") {
            None => None,
            Some(v) => {
                let u = v1_id("user_id", v)?.ok_or_else(|| validation("user_id: Required"))?;
                if !store.users.get(&u).is_some_and(|u| u.active_flag) {
                    return Err(validation(format!("user_id: User with id {u} not found")));
                }
                Some(u)
            }
        };
        let content = match obj.get("content") {
            None => None,
            Some(Value::String(c)) if !c.trim().is_empty() => Some(c.clone()),
            Some(_) => return Err(validation("content: Content is required")),
        };
        let now = Utc::now();
        let (id, note) = match id {
            Some(id) => {
                let mut note = store
                    .notes
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| v1_not_found("Note"))?;
                if let Some(c) = content {
                    note.content = c;
                }
                note.deal_id = deal_id.unwrap_or(note.deal_id);
                note.person_id = person_id.unwrap_or(note.person_id);
                note.org_id = org_id.unwrap_or(note.org_id);
                note.lead_id = lead_id.unwrap_or(note.lead_id.take());
                if let Some(u) = user_id {
                    note.user_id = u;
                }
                note.update_time = now.max(note.add_time);
                note.last_update_user_id = Some(OWNER_IDS[0]);
                (id, note)
            }
            None => {
                let content = content.ok_or_else(|| validation("content: Content is required"))?;
                let note = super::pipedrive_data::Note {
                    id: store.next_note_id,
                    user_id: user_id.unwrap_or(OWNER_IDS[0]),
                    deal_id: deal_id.flatten(),
                    person_id: person_id.flatten(),
                    org_id: org_id.flatten(),
                    lead_id: lead_id.flatten(),
                    content,
                    add_time: now,
                    update_time: now,
                    last_update_user_id: None,
                };
                store.next_note_id = store.next_note_id.saturating_add(1);
                (note.id, note)
            }
        };
        if note.deal_id.is_none()
            && note.person_id.is_none()
            && note.org_id.is_none()
            && note.lead_id.is_none()
        {
            return Err(validation(
                "Note must be attached to a deal, person, organization, lead or project",
            ));
        }
        store.notes.insert(id, note.clone());
        let rendered = note.render(&store);
        Ok(success(rendered))
    }

    fn delete_note(&self, id: Result<Path<String>, PathRejection>) -> Result<Response, Reject> {
        let id = Self::item_id(id)?;
        let mut store = self.write();
        store
            .notes
            .remove(&id)
            .ok_or_else(|| v1_not_found("Note"))?;
        Ok(success(json!(true)))
    }

    /// `/v1/users` answers every user at once: it has no pagination.
    fn list_users(&self) -> Result<Response, Reject> {
        let store = self.read();
        let data: Vec<Value> = store
            .users
            .values()
            .map(|u| u.render(OWNER_IDS[0]))
            .collect();
        Ok(success(Value::Array(data)))
    }

    fn get_user(&self, id: Result<Path<String>, PathRejection>) -> Result<Response, Reject> {
        let id = Self::item_id(id)?;
        let store = self.read();
        let user = store.users.get(&id).ok_or_else(|| v1_not_found("User"))?;
        Ok(success(user.render(OWNER_IDS[0])))
    }

    fn list_leads(&self, info: &ReqInfo) -> Result<Response, Reject> {
        let pairs = info.pairs();
        let (start, limit) = v1_paging(&pairs)?;
        let owner_id = v1_query_id(&pairs, "owner_id")?;
        let person_id = v1_query_id(&pairs, "person_id")?;
        let organization_id = v1_query_id(&pairs, "organization_id")?;
        if last_param(&pairs, "filter_id").is_some() {
            return Err(error(StatusCode::NOT_FOUND, "Filter not found").into());
        }
        let archived = match last_param(&pairs, "archived_status").map(str::trim) {
            None | Some("all") => None,
            Some("archived") => Some(true),
            Some("not_archived") => Some(false),
            Some(other) => {
                return Err(validation(format!(
                    "archived_status: Invalid enum value. Expected 'archived' | 'not_archived' | 'all', received '{other}'"
                )));
            }
        };
        let store = self.read();
        let mut rows: Vec<&super::pipedrive_data::Lead> = store
            .leads
            .values()
            .filter(|l| {
                owner_id.is_none_or(|o| l.owner_id == o)
                    && person_id.is_none_or(|p| l.person_id == Some(p))
                    && organization_id.is_none_or(|o| l.organization_id == Some(o))
                    && archived.is_none_or(|a| l.is_archived == a)
            })
            .collect();
        rows.sort_by(|a, b| (a.add_time, &a.id).cmp(&(b.add_time, &b.id)));
        let all = rows.iter().map(|l| l.render()).collect();
        Ok(v1_page(all, start, limit, false))
    }

    fn get_lead(&self, id: Result<Path<String>, PathRejection>) -> Result<Response, Reject> {
        let Ok(Path(raw)) = id else {
            return Err(validation("id: Invalid uuid"));
        };
        if uuid::Uuid::parse_str(raw.trim()).is_err() {
            return Err(validation("id: Invalid uuid"));
        }
        let store = self.read();
        let lead = store
            .leads
            .get(raw.trim())
            .ok_or_else(|| v1_not_found("Lead"))?;
        Ok(success(lead.render()))
    }

    /// `/v2/stages` (the sandbox's 11 stages fit one page: no cursor is ever issued).
    fn list_stages(&self, info: &ReqInfo) -> Result<Response, Reject> {
        let pairs = info.pairs();
        let pipeline_id = v1_query_id(&pairs, "pipeline_id")?;
        let store = self.read();
        let data: Vec<Value> = store
            .stages
            .iter()
            .filter(|st| store.live(Entity::Pipelines, st.pipeline_id).is_some())
            .filter(|st| pipeline_id.is_none_or(|p| st.pipeline_id == p))
            .map(render_stage)
            .collect();
        Ok(Json(json!({
            "success": true,
            "data": data,
            "additional_data": { "next_cursor": null },
        }))
        .into_response())
    }

    fn get_stage(&self, id: Result<Path<String>, PathRejection>) -> Result<Response, Reject> {
        let id = Self::item_id(id)?;
        let store = self.read();
        let stage = store.stage(id).ok_or_else(|| v1_not_found("Stage"))?;
        Ok(success(render_stage(stage)))
    }
}

fn render_stage(st: &super::pipedrive_data::Stage) -> Value {
    json!({
        "id": st.id,
        "order_nr": st.order_nr,
        "name": st.name,
        "is_deleted": false,
        "deal_probability": st.deal_probability,
        "pipeline_id": st.pipeline_id,
        "is_deal_rot_enabled": false,
        "days_to_rotten": null,
        "add_time": "2021-11-02T09:00:00Z",
        "update_time": "2021-11-02T09:00:00Z",
    })
}

// ---------------------------------------------------------------------------------------
// OAuth (vendors.md §4 Auth; machinery in oauth.rs), served under `/pipedrive/oauth`
// (oauth.pipedrive.com in real life).
//
// Choices: the client authenticates with `Authorization: Basic` (body parameters are
// accepted too, as documented); every refresh returns the same refresh token (the 60-day
// idle expiry is not modelled); `scope` is the app's fixed scope set, whatever was asked
// for; `api_domain` is the sandbox's `<base>/pipedrive`. Errors are HTTP 400 with the
// documented messages in `{"success":false,"message","error"}` (`error` is the RFC 6749
// code; the body shape is not attested); the authorization page's refusals are the same.

static OAUTH: Profile = Profile {
    provider: PROVIDER,
    client_id: PIPEDRIVE_CLIENT_ID,
    client_secret: PIPEDRIVE_CLIENT_SECRET,
    access_lifetime_secs: 3600,
    code_lifetime_secs: 300,
    rotates: false,
    always_rotates: false,
    echoes_refresh_token: true,
    client_credentials: false,
    basic_auth: true,
    query_params: false,
    refresh_rule: RefreshRule::Always,
    prefixes: Prefixes {
        access: "v1u:AQIBAH",
        refresh: "9000001:13294001:",
        code: "9000001:13294001:",
    },
};

const OAUTH_SCOPE: &str = "contacts:full,users:read,base";

fn oauth_error(error: &str, message: &str) -> Response {
    let body = json!({ "success": false, "message": message, "error": error });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

impl OAuthShape for Pipedrive {
    fn oauth_profile(&self) -> &'static Profile {
        &OAUTH
    }

    fn oauth_control(&self) -> &Control {
        &self.control
    }

    fn token_body(&self, issued: &Issued) -> Value {
        let mut body = Map::new();
        body.insert("access_token".into(), json!(issued.access_token));
        body.insert("token_type".into(), json!("Bearer"));
        if let Some(refresh) = &issued.refresh_token {
            body.insert("refresh_token".into(), json!(refresh));
        }
        body.insert("scope".into(), json!(OAUTH_SCOPE));
        body.insert("expires_in".into(), json!(issued.expires_in));
        body.insert(
            "api_domain".into(),
            json!(format!("{}{PREFIX}", issued.base_url)),
        );
        Value::Object(body)
    }

    fn token_error(&self, error: &TokenError) -> Response {
        let (code, message) = match error {
            TokenError::ContentType => (
                "invalid_request",
                "Invalid request: content must be application/x-www-form-urlencoded",
            ),
            TokenError::MissingGrantType => ("invalid_request", "Missing parameter: grant_type"),
            TokenError::UnsupportedGrant(_) => (
                "unsupported_grant_type",
                "Unsupported grant type: grant_type is invalid",
            ),
            TokenError::MissingClient => (
                "invalid_client",
                "Invalid client: cannot retrieve client credentials",
            ),
            TokenError::UnknownClient(_) | TokenError::BadSecret => {
                ("invalid_client", "Invalid client: client is invalid")
            }
            TokenError::BadCode | TokenError::CodeUsed => (
                "invalid_grant",
                "Invalid grant: authorization_code is invalid",
            ),
            TokenError::CodeExpired => (
                "invalid_grant",
                "Invalid grant: authorization_code has expired",
            ),
            TokenError::RedirectMismatch => (
                "invalid_request",
                "Invalid request: redirect_uri is invalid",
            ),
            TokenError::BadVerifier => ("invalid_grant", "Invalid grant: code_verifier is invalid"),
            TokenError::BadRefreshToken => {
                ("invalid_grant", "Invalid grant: refresh_token is invalid")
            }
        };
        oauth_error(code, message)
    }

    fn authorize_error(&self, error: &AuthorizeError) -> Response {
        match error {
            AuthorizeError::MissingClient | AuthorizeError::UnknownClient(_) => {
                oauth_error("invalid_client", "Invalid client: client is invalid")
            }
            AuthorizeError::MissingRedirect => oauth_error(
                "invalid_request",
                "Invalid request: redirect_uri is not a valid URI",
            ),
            AuthorizeError::BadRedirect(_) => oauth_error(
                "invalid_request",
                "Invalid request: redirect_uri is invalid",
            ),
        }
    }

    fn token_outage(&self, status: StatusCode) -> Response {
        error(status, status.canonical_reason().unwrap_or("Error"))
    }
}

/// `POST /oauth/revoke` (RFC 7009, the app authenticated with HTTP Basic): `token` with
/// `token_type_hint=refresh_token` ends the whole grant, an access token only itself.
async fn revoke_token(State(pd): State<Arc<Pipedrive>>, info: ReqInfo, body: Bytes) -> Response {
    if !oauth::basic_client_is_known(&pd.control, PROVIDER, &info) {
        return oauth::oauth2_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Invalid client credentials",
        );
    }
    let params: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let token = last_param(&params, "token").unwrap_or_default();
    let revoked = oauth::revoke_refresh_token(&pd.control, PROVIDER, token, true)
        .or_else(|| oauth::revoke_access_token(&pd.control, PROVIDER, token, false));
    match revoked {
        Some(_) => StatusCode::OK.into_response(),
        None => oauth::oauth2_error(
            StatusCode::BAD_REQUEST,
            "invalid_token",
            "Token is invalid or already revoked",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_other_sorts() {
        let store = Store::seed();
        let r = store.live(Entity::Persons, 7).unwrap();
        let cursor = encode_cursor(SortBy::Id, false, Some(r));
        assert!(matches!(
            decode_cursor(&cursor, SortBy::Id, false),
            Some(Position::After(7, 7))
        ));
        assert!(decode_cursor(&cursor, SortBy::Id, true).is_none());
        assert!(decode_cursor(&cursor, SortBy::UpdateTime, false).is_none());
        let start = encode_cursor(SortBy::UpdateTime, true, None);
        assert!(matches!(
            decode_cursor(&start, SortBy::UpdateTime, true),
            Some(Position::Start)
        ));
        for junk in ["", "!!", "e30", "bm9wZQ"] {
            assert!(decode_cursor(junk, SortBy::Id, false).is_none(), "{junk}");
        }
    }
}
