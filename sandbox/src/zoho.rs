//! Zoho CRM API v8 records (Contacts, Accounts, Deals, Leads, Tasks, Notes), users and
//! the search API, as described in `/work/shared/vendors.md` §7, served under `/zoho`,
//! which plays the `api_domain`: the API lives at `/zoho/crm/v8`.
//!
//! Every request passes the shared gate first (`wire::gate`): it is counted, may be
//! hijacked by an injected fault, is authenticated (`Authorization: Zoho-oauthtoken
//! <token>`, never `Bearer`) against the shared token registry and is charged to its
//! token's rolling window, which models the org's rolling 24 h credit allowance.
//!
//! Notification channels (`/crm/v8/actions/watch`) live in `zoho_webhooks.rs`; every
//! Contacts, Accounts and Deals record created, updated or deleted is reported to them.
//!
//! Choices where vendors.md is silent (or tagged [M]); where it names one, the v8 OpenAPI
//! in `zoho/crm-oas` (vendors.md §0) was followed:
//! - Only `v8` is served; other versions are 404 `INVALID_URL_PATTERN`. Module names are
//!   matched exactly (`Contacts`, `Accounts`); another name is 400 `INVALID_MODULE`.
//! - Lists are ordered by `sort_by` (`id` default, `Created_Time`, `Modified_Time`) and
//!   `sort_order` (`desc` default), so records created through the API come first.
//! - `fields` is required on lists (400 `REQUIRED_PARAM_MISSING`), at most 50 (400
//!   `LIMIT_EXCEEDED`); unknown field names are ignored, known ones are returned even
//!   when empty (`null`), plus `id`. A single-record GET without `fields` returns every
//!   field.
//! - `per_page` above 200 is 400 `LIMIT_EXCEEDED`. A page reaching past record 2000 without
//!   `page_token` is 400 `DISCRETE_PAGINATION_LIMIT_EXCEEDED`; `page` together with
//!   `page_token` is 400 `AMBIGUITY_DURING_PROCESSING`. `next_page_token` is handed out on
//!   every page that has more records; it is bound to the module, sort, `per_page` and
//!   `fields` of the request that produced it (a change is 400 `TOKEN_BOUND_DATA_MISMATCH`,
//!   as is a token the sandbox never issued) and expires after a day (400
//!   `EXPIRED_VALUE`).
//! - A page past the end, an `ids=` read that finds nothing and a GET of an unknown id are
//!   all 204 with an empty body (the OAS documents 204 for the single-record GET too).
//!   A malformed id in the URL, and PUT or DELETE of an unknown id, are 400
//!   `{"code":"INVALID_DATA","details":{"resource_path_index":1},"message":"invalid record
//!   id"}`.
//! - `ids=` returns the records found, in the order asked; unknown ids are left out.
//! - Writes ignore unknown and read-only fields, as Zoho does; a value of the wrong type is
//!   a per-record `INVALID_DATA` with `expected_data_type`. Several records: all failed is
//!   400, mixed is 207.
//! - No rate-limit headers (none are documented); the 429 body carries the window in
//!   `details`. A missing `Authorization` header is 401 `AUTHENTICATION_FAILURE`; anything
//!   else that is not a live token (wrong scheme, unknown, revoked, expired) is 401
//!   `INVALID_TOKEN`.
//! - Deleting a record leaves the records that point at it, whose lookup (`Account_Name`,
//!   `Contact_Name`, `Who_Id`, `What_Id`, `Parent_Id`) then reads `null`.
//! - The org is multi-currency (`USD` home, `EUR`, `INR`, `GBP`): Accounts and Deals carry
//!   `Currency`, and another code is `INVALID_DATA`. `Stage` and a task's `Status` are
//!   restricted picklists; a new `Stage` brings its default `Probability` (the org's
//!   stage-probability mapping) unless the write sets one; a task set to `Completed` gets
//!   `Closed_Time`, and loses it when reopened. Records created without `Owner` belong to
//!   the token's user; an `Owner` must be an active user.
//! - Tasks and Notes carry `$se_module`, the module of `What_Id` / `Parent_Id`; writes give
//!   it as `$se_module` or `se_module` (Notes' documented spelling), and `Parent_Id` may be
//!   a bare id. Leads carry `$converted`; lists and searches hide converted leads unless
//!   `converted=true|both`; a GET by id or `ids=` returns them. There is no convert action.
//! - Search: `GET /{module}/search` with exactly one of `criteria`, `email`, `phone`,
//!   `word` (none: 400 `REQUIRED_PARAM_MISSING`; several: 400
//!   `AMBIGUITY_DURING_PROCESSING`), `page`/`per_page` (no `page_token`; at most 2000
//!   records, past that 400 `LIMIT_EXCEEDED`), optional `fields` (all when absent); the
//!   records have the list's shape, id descending; nothing found is 204 with no body.
//!   `criteria` is `(Field:comparator:value)` joined as `((..)and(..))` or `((..)or(..))`
//!   (mixing needs parentheses; at most 10 conditions). In values, `\(`, `\)`, `\,` and
//!   `\\` are literal; an unescaped comma separates the values of `in`/`between` and is
//!   refused elsewhere. Text fields take `equals`, `not_equal`, `starts_with`, `in`
//!   (case-insensitive); numbers, dates and datetimes take `equals`, `not_equal`,
//!   `greater_than`, `greater_equal`, `less_than`, `less_equal`, `between`, `in`;
//!   lookups and `Owner` compare their id. Datetimes need an explicit `+hh:mm` offset.
//!   A null field matches no condition. Bad fields, comparators or values are 400
//!   `INVALID_QUERY`. `email` matches email fields exactly, `phone` phone fields by digits,
//!   `word` any text field containing the word (case-insensitive).
//! - Users: `GET /users?type=` (`AllUsers` by default; the documented types), paged by
//!   `page`/`per_page` with `info.more_records`, and `GET /users/{id}` (204 when unknown),
//!   in a `users` envelope; read-only.
//! - Injected faults fire before authentication, like an upstream outage would.

use std::collections::HashSet;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{Duration, Utc};
use serde_json::{Value, json};

use super::DemoAccount;
use super::ZOHO_DEMO_TOKEN;
use super::control::{Control, FaultKind, RateDecision, RateLimitConfig, Reject, Vendor};
use super::oauth::{
    self, AuthorizeError, Issued, OAuthShape, Prefixes, Profile, RefreshRule, TokenError,
};
use super::webhooks::{Action, Source, WebhookDialect};
use super::wire::{self, AuthFailure, Dialect, ReqInfo, last_param, split_list};
use super::zoho_data::{
    FieldDef, FieldType, Module, Record, SANDBOX_USER_ID, SANDBOX_USER_NAME, SortBy, Store,
    TASK_COMPLETED, User, sample_ids, stage_probability, zoho_datetime,
};
use super::{ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET};

#[path = "zoho_webhooks.rs"]
mod webhooks;

pub(crate) const PROVIDER: &str = "zoho";
const PREFIX: &str = "/zoho";
/// Free edition's rolling 24 h credit allowance (vendors.md §7 Limits); every call here
/// costs one credit.
const DAILY_CREDITS: u32 = 5_000;
const DAY_MS: u64 = 24 * 60 * 60 * 1000;
const DEFAULT_PER_PAGE: usize = 200;
const MAX_PER_PAGE: usize = 200;
/// Page numbers reach only this many records; past it, `page_token` is required.
const DISCRETE_LIMIT: usize = 2000;
const MAX_FIELDS: usize = 50;
const MAX_IDS: usize = 100;
const MAX_WRITE_RECORDS: usize = 100;
const TOKEN_LIFETIME_SECONDS: i64 = 24 * 60 * 60;

const COLLECTION: &str = "/crm/v8/{module}";
const ITEM: &str = "/crm/v8/{module}/{id}";
const SEARCH: &str = "/crm/v8/{module}/search";
const USERS: &str = "/crm/v8/users";
const USER: &str = "/crm/v8/users/{id}";
/// The search API returns at most this many records (page × per_page).
const SEARCH_LIMIT: usize = 2000;
/// At most this many conditions in one `criteria`.
const MAX_CRITERIA: usize = 10;

pub(crate) struct Zoho {
    control: Arc<Control>,
    store: RwLock<Store>,
    templates: HashSet<String>,
}

impl Zoho {
    pub(crate) fn new(control: Arc<Control>) -> Zoho {
        Zoho {
            control,
            store: RwLock::new(Store::seed()),
            templates: [COLLECTION, ITEM, SEARCH, USERS, USER, webhooks::WATCH]
                .iter()
                .map(|r| format!("{PREFIX}{r}"))
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

type ModuleParam = Result<Path<String>, PathRejection>;
type ItemParams = Result<Path<(String, String)>, PathRejection>;

impl Vendor for Zoho {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    fn seed_tokens(&self) -> Vec<String> {
        vec![ZOHO_DEMO_TOKEN.to_owned()]
    }

    fn default_rate_limit(&self) -> RateLimitConfig {
        RateLimitConfig {
            max: DAILY_CREDITS,
            interval_ms: DAY_MS,
        }
    }

    fn reset_data(&self) {
        *self.write() = Store::seed();
    }

    fn router(self: Arc<Self>) -> Router {
        type S = State<Arc<Zoho>>;
        Router::new()
            .route(
                COLLECTION,
                get(|State(z): S, info: ReqInfo, m: ModuleParam| async move { z.list(m, &info) })
                    .post(|State(z): S, m: ModuleParam, body: Bytes| async move {
                        z.create(m, &body)
                    }),
            )
            .route(
                SEARCH,
                get(|State(z): S, info: ReqInfo, m: ModuleParam| async move { z.search(m, &info) }),
            )
            .route(
                USERS,
                get(|State(z): S, info: ReqInfo| async move { z.list_users(&info) }),
            )
            .route(
                USER,
                get(|State(z): S, id: Result<Path<String>, PathRejection>| async move {
                    z.get_user(id)
                }),
            )
            .route(
                ITEM,
                get(|State(z): S, info: ReqInfo, p: ItemParams| async move { z.get_one(p, &info) })
                    .put(|State(z): S, p: ItemParams, body: Bytes| async move {
                        z.update(p, &body)
                    })
                    .delete(|State(z): S, p: ItemParams| async move { z.delete(p) }),
            )
            .merge(webhooks::routes())
            .method_not_allowed_fallback(|| async {
                zoho_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_REQUEST_METHOD",
                    json!({}),
                    "The http request method type is not a valid one",
                )
            })
            .fallback(|| async { invalid_url() })
            .layer(middleware::from_fn_with_state(
                self.clone(),
                wire::gate::<Zoho>,
            ))
            .with_state(self)
    }

    fn demo_account(&self, base_url: &str) -> DemoAccount {
        DemoAccount {
            provider: PROVIDER,
            credentials: json!({ "accessToken": ZOHO_DEMO_TOKEN }),
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
            .route("/oauth/v2/auth", get(oauth::authorize::<Zoho>))
            .route("/oauth/v2/token", axum::routing::post(oauth::token::<Zoho>))
            .route("/oauth/v2/token/revoke", axum::routing::post(revoke_token))
            .with_state(self)
    }
}

/// Seeded records in list shape with every field of the module requested, chosen to
/// include the edge cases (no email, no first name, unicode and apostrophe names, no
/// account, no tier; accounts without website, industry or headcount).
pub(crate) fn sample_records(resource: &str) -> Option<Vec<Value>> {
    let module = match resource {
        "contacts" => Module::Contacts,
        "companies" => Module::Accounts,
        "deals" => Module::Deals,
        "leads" => Module::Leads,
        "tasks" => Module::Tasks,
        "notes" => Module::Notes,
        "users" => return Some(Store::seed().users().iter().map(User::render).collect()),
        _ => return None,
    };
    let store = Store::seed();
    let fields: Vec<&FieldDef> = module.fields().iter().collect();
    Some(
        sample_ids(module)
            .iter()
            .filter_map(|id| store.table(module).get(id))
            .map(|r| store.render(module, r, &fields))
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------
// Error bodies (vendors.md §1.5: {code, details, message, status:"error"})

fn error_body(code: &str, details: Value, message: &str) -> Value {
    json!({ "code": code, "details": details, "message": message, "status": "error" })
}

fn zoho_error(status: StatusCode, code: &str, details: Value, message: &str) -> Response {
    (status, Json(error_body(code, details, message))).into_response()
}

fn reject(code: &str, details: Value, message: &str) -> Reject {
    Reject::from(zoho_error(StatusCode::BAD_REQUEST, code, details, message))
}

fn invalid_token() -> Response {
    zoho_error(
        StatusCode::UNAUTHORIZED,
        "INVALID_TOKEN",
        json!({}),
        "invalid oauth token",
    )
}

fn invalid_url() -> Response {
    zoho_error(
        StatusCode::NOT_FOUND,
        "INVALID_URL_PATTERN",
        json!({}),
        "Please check if the URL trying to access is a correct one",
    )
}

fn invalid_module() -> Reject {
    reject(
        "INVALID_MODULE",
        json!({ "resource_path_index": 0 }),
        "the module name given seems to be invalid",
    )
}

fn invalid_record_id() -> Reject {
    reject(
        "INVALID_DATA",
        json!({ "resource_path_index": 1 }),
        "invalid record id",
    )
}

fn invalid_param(name: &str) -> Reject {
    reject(
        "INVALID_DATA",
        json!({ "param_name": name }),
        "invalid data",
    )
}

fn token_mismatch() -> Reject {
    reject(
        "TOKEN_BOUND_DATA_MISMATCH",
        json!({ "param_name": "page_token" }),
        "The page_token given seems to be invalid or input param is added or altered or deleted",
    )
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

// ---------------------------------------------------------------------------------------
// Wire dialect: credentials, error bodies for the gate's outcomes (no rate headers)

/// `Zoho-oauthtoken <token>`; a `Bearer` header is the classic first-call mistake and is
/// refused like an unknown token.
fn zoho_token(value: &str) -> Option<String> {
    wire::scheme_token(value, &["Zoho-oauthtoken"])
}

fn fault_response(status: StatusCode, body: Option<Value>, trace: String) -> Response {
    if let Some(body) = body {
        return (status, Json(body)).into_response();
    }
    // Codes for statuses Zoho does not document are the sandbox's choice.
    let (code, details, message) = match status.as_u16() {
        401 => return invalid_token(),
        404 => return invalid_url(),
        400 => ("INVALID_DATA", json!({}), "invalid data"),
        403 => (
            "NO_PERMISSION",
            json!({ "permissions": ["Crm_Implied_Api_Access"] }),
            "permission denied",
        ),
        429 => (
            "TOO_MANY_REQUESTS",
            json!({ "trace_id": trace }),
            "Rate limit exceeded. Please retry after the specified time.",
        ),
        _ => ("INTERNAL_ERROR", json!({}), "Internal Server Error"),
    };
    zoho_error(status, code, details, message)
}

impl Dialect for Zoho {
    const PROVIDER: &'static str = PROVIDER;

    fn control(&self) -> &Control {
        &self.control
    }

    fn route_templates(&self) -> &HashSet<String> {
        &self.templates
    }

    fn credentials(&self, info: &ReqInfo) -> Option<String> {
        info.header(header::AUTHORIZATION.as_str())
            .and_then(zoho_token)
    }

    fn fault_response(&self, _info: &ReqInfo, status: StatusCode, body: Option<Value>) -> Response {
        // Every injected fault draws a trace id, shown or not, so the counter-based ids of
        // later answers do not depend on which status was injected.
        fault_response(status, body, self.control.next_uuid())
    }

    fn auth_failure(&self, info: &ReqInfo, failure: AuthFailure) -> Response {
        match failure {
            // An `Authorization` header that yields no token (wrong scheme, unreadable) is
            // a bad token to Zoho; only its absence is an authentication failure.
            AuthFailure::Missing if !info.headers.contains_key(header::AUTHORIZATION) => {
                zoho_error(
                    StatusCode::UNAUTHORIZED,
                    "AUTHENTICATION_FAILURE",
                    json!({}),
                    "Authentication failed",
                )
            }
            _ => invalid_token(),
        }
    }

    fn throttled(&self, _info: &ReqInfo, decision: &RateDecision) -> Response {
        let window = decision.interval_ms / 1000;
        zoho_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TOO_MANY_REQUESTS",
            json!({ "trace_id": self.control.next_uuid(), "limit": decision.max, "window": window }),
            "Rate limit exceeded. Please retry after the specified time.",
        )
    }
}

// ---------------------------------------------------------------------------------------
// Page tokens

/// What a `page_token` is bound to, and where it points. On the wire it is the hex of a
/// `|`-separated line, opaque to clients like Zoho's.
#[derive(Debug, PartialEq, Eq)]
struct PageToken {
    module: String,
    sort_by: String,
    descending: bool,
    per_page: usize,
    fields: u64,
    offset: usize,
    expires: i64,
}

impl PageToken {
    fn encode(&self) -> String {
        let line = format!(
            "{}|{}|{}|{}|{:016x}|{}|{}",
            self.module,
            self.sort_by,
            u8::from(self.descending),
            self.per_page,
            self.fields,
            self.offset,
            self.expires
        );
        line.bytes().map(|b| format!("{b:02x}")).collect()
    }

    fn decode(raw: &str) -> Option<PageToken> {
        let raw = raw.trim();
        if !raw.len().is_multiple_of(2) || raw.len() > 400 {
            return None;
        }
        let bytes: Option<Vec<u8>> = (0..raw.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(raw.get(i..i + 2)?, 16).ok())
            .collect();
        let line = String::from_utf8(bytes?).ok()?;
        let parts: Vec<&str> = line.split('|').collect();
        let [
            module,
            sort_by,
            descending,
            per_page,
            fields,
            offset,
            expires,
        ] = parts.as_slice()
        else {
            return None;
        };
        Some(PageToken {
            module: (*module).to_owned(),
            sort_by: (*sort_by).to_owned(),
            descending: *descending == "1",
            per_page: per_page.parse().ok()?,
            fields: u64::from_str_radix(fields, 16).ok()?,
            offset: offset.parse().ok()?,
            expires: expires.parse().ok()?,
        })
    }
}

/// FNV-1a over the requested field names, so a token knows which `fields` it served.
fn fields_fingerprint(names: &[String]) -> u64 {
    let mut sorted: Vec<&str> = names.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in sorted.join(",").bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

// ---------------------------------------------------------------------------------------
// Handlers

fn module_param(param: ModuleParam) -> Result<Module, Reject> {
    let Ok(Path(name)) = param else {
        return Err(invalid_module());
    };
    Module::from_name(&name).ok_or_else(invalid_module)
}

fn item_params(params: ItemParams) -> Result<(Module, u64), Reject> {
    let Ok(Path((module, id))) = params else {
        return Err(invalid_module());
    };
    let module = Module::from_name(&module).ok_or_else(invalid_module)?;
    let id = id
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(invalid_record_id)?;
    Ok((module, id))
}

/// Known fields in the order asked (duplicates dropped); unknown names are ignored.
fn known_fields(module: Module, names: &[String]) -> Vec<&'static FieldDef> {
    let mut out: Vec<&'static FieldDef> = Vec::new();
    for name in names {
        if let Some(field) = module.field(name)
            && !out.iter().any(|f| f.api_name == field.api_name)
        {
            out.push(field);
        }
    }
    out
}

fn parse_count(pairs: &[(String, String)], name: &str) -> Result<Option<usize>, Reject> {
    match last_param(pairs, name) {
        None => Ok(None),
        Some(raw) => raw
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .map(Some)
            .ok_or_else(|| invalid_param(name)),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PageFault {
    None,
    Repeat,
    OutOfRange,
}

impl Zoho {
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

    fn list(&self, module: ModuleParam, info: &ReqInfo) -> Result<Response, Reject> {
        let module = module_param(module)?;
        let pairs = info.pairs();
        let requested = last_param(&pairs, "fields")
            .map(split_list)
            .filter(|f| !f.is_empty())
            .ok_or_else(|| {
                reject(
                    "REQUIRED_PARAM_MISSING",
                    json!({ "param_name": "fields" }),
                    "One of the expected parameter is missing",
                )
            })?;
        if requested.len() > MAX_FIELDS {
            return Err(reject(
                "LIMIT_EXCEEDED",
                json!({ "limit": MAX_FIELDS, "param_name": "fields" }),
                "limit exceeded",
            ));
        }
        let fields = known_fields(module, &requested);
        if let Some(raw) = last_param(&pairs, "ids") {
            return self.read_ids(module, raw, &fields);
        }

        let sort_by = match last_param(&pairs, "sort_by") {
            None => SortBy::Id,
            Some(raw) => SortBy::from_wire(raw).ok_or_else(|| {
                reject(
                    "INVALID_DATA",
                    json!({
                        "param_name": "sort_by",
                        "supported_values": SortBy::ALL.map(SortBy::wire),
                    }),
                    "invalid data",
                )
            })?,
        };
        let descending = match last_param(&pairs, "sort_order") {
            None | Some("desc") => true,
            Some("asc") => false,
            Some(_) => {
                return Err(reject(
                    "INVALID_DATA",
                    json!({ "param_name": "sort_order", "supported_values": ["asc", "desc"] }),
                    "invalid data",
                ));
            }
        };
        let per_page = parse_count(&pairs, "per_page")?.unwrap_or(DEFAULT_PER_PAGE);
        if per_page > MAX_PER_PAGE {
            return Err(reject(
                "LIMIT_EXCEEDED",
                json!({ "limit": MAX_PER_PAGE, "param_name": "per_page" }),
                "limit exceeded",
            ));
        }
        let page = parse_count(&pairs, "page")?;
        let raw_token = last_param(&pairs, "page_token").filter(|t| !t.trim().is_empty());
        if page.is_some() && raw_token.is_some() {
            return Err(reject(
                "AMBIGUITY_DURING_PROCESSING",
                json!({ "ambiguity_due_to": [{ "param_name": "page" }, { "param_name": "page_token" }] }),
                "ambiguity while processing the request",
            ));
        }
        let converted = converted_param(module, &pairs)?;
        let fingerprint = fields_fingerprint(&requested);
        let now = Utc::now();
        let offset = match raw_token {
            Some(raw) => {
                let token = PageToken::decode(raw).ok_or_else(token_mismatch)?;
                let bound = token.module == module.api_name()
                    && token.sort_by == sort_by.wire()
                    && token.descending == descending
                    && token.per_page == per_page
                    && token.fields == fingerprint;
                if !bound {
                    return Err(token_mismatch());
                }
                if token.expires <= now.timestamp() {
                    return Err(reject(
                        "EXPIRED_VALUE",
                        json!({ "api_name": "page_token", "json_path": "$.query.page_token" }),
                        "Page token expired",
                    ));
                }
                token.offset
            }
            None => {
                let page = page.unwrap_or(1);
                if page.saturating_mul(per_page) > DISCRETE_LIMIT {
                    return Err(reject(
                        "DISCRETE_PAGINATION_LIMIT_EXCEEDED",
                        json!({ "limit": DISCRETE_LIMIT }),
                        "You can only get the first 2000 records without using page_token param",
                    ));
                }
                (page - 1) * per_page
            }
        };

        let store = self.read();
        let rows: Vec<&Record> = store
            .sorted(module, sort_by, descending)
            .into_iter()
            .filter(|r| converted.is_none_or(|c| r.converted == c))
            .collect();
        let total = rows.len();
        let data: Vec<Value> = rows
            .iter()
            .skip(offset)
            .take(per_page)
            .map(|r| store.render(module, r, &fields))
            .collect();
        drop(store);
        if data.is_empty() {
            return Ok(no_content());
        }
        let end = offset + data.len();
        let expires = now + Duration::seconds(TOKEN_LIFETIME_SECONDS);
        let token_at = |offset: usize| {
            PageToken {
                module: module.api_name().to_owned(),
                sort_by: sort_by.wire().to_owned(),
                descending,
                per_page,
                fields: fingerprint,
                offset,
                expires: expires.timestamp(),
            }
            .encode()
        };
        let next_token = match self.page_fault(info) {
            // The vendor bug: hand back the token that produced this very page.
            PageFault::Repeat => Some(raw_token.map_or_else(|| token_at(offset), str::to_owned)),
            PageFault::OutOfRange => Some(token_at(total.max(end))),
            PageFault::None => (end < total).then(|| token_at(end)),
        };
        let previous_token =
            (raw_token.is_some() && offset > 0).then(|| token_at(offset.saturating_sub(per_page)));
        let info = json!({
            "call": false,
            "per_page": per_page,
            "next_page_token": next_token,
            "count": data.len(),
            "sort_by": sort_by.wire(),
            "page": offset / per_page + 1,
            "previous_page_token": previous_token,
            "page_token_expiry": next_token.as_ref().map(|_| zoho_datetime(expires)),
            "sort_order": if descending { "desc" } else { "asc" },
            "email": false,
            "more_records": next_token.is_some(),
        });
        Ok(Json(json!({ "data": data, "info": info })).into_response())
    }

    fn read_ids(
        &self,
        module: Module,
        raw: &str,
        fields: &[&'static FieldDef],
    ) -> Result<Response, Reject> {
        let ids: Vec<String> = split_list(raw);
        if ids.is_empty() {
            return Err(invalid_param("ids"));
        }
        if ids.len() > MAX_IDS {
            return Err(reject(
                "LIMIT_EXCEEDED",
                json!({ "limit": MAX_IDS, "param_name": "ids" }),
                "limit exceeded",
            ));
        }
        let mut numeric: Vec<u64> = Vec::new();
        for id in &ids {
            let n = id.parse::<u64>().map_err(|_| invalid_param("ids"))?;
            if !numeric.contains(&n) {
                numeric.push(n);
            }
        }
        let store = self.read();
        let data: Vec<Value> = numeric
            .iter()
            .filter_map(|id| store.table(module).get(id))
            .map(|r| store.render(module, r, fields))
            .collect();
        drop(store);
        if data.is_empty() {
            return Ok(no_content());
        }
        let info = json!({
            "call": false,
            "per_page": DEFAULT_PER_PAGE,
            "next_page_token": null,
            "count": data.len(),
            "sort_by": "id",
            "page": 1,
            "previous_page_token": null,
            "page_token_expiry": null,
            "sort_order": "desc",
            "email": false,
            "more_records": false,
        });
        Ok(Json(json!({ "data": data, "info": info })).into_response())
    }

    fn get_one(&self, params: ItemParams, info: &ReqInfo) -> Result<Response, Reject> {
        let (module, id) = item_params(params)?;
        let pairs = info.pairs();
        let fields = match last_param(&pairs, "fields").map(split_list) {
            Some(names) if !names.is_empty() => known_fields(module, &names),
            _ => module.fields().iter().collect(),
        };
        let store = self.read();
        let Some(record) = store.table(module).get(&id) else {
            return Ok(no_content());
        };
        let data = store.render(module, record, &fields);
        Ok(Json(json!({ "data": [data] })).into_response())
    }

    fn create(&self, module: ModuleParam, body: &Bytes) -> Result<Response, Reject> {
        let module = module_param(module)?;
        let inputs = parse_data(body)?;
        let results = self.create_records(module, &inputs, Source::Api);
        Ok(write_response(results, StatusCode::CREATED))
    }

    /// Creates as the API does, each created record reported to webhooks; one result
    /// entry per input.
    fn create_records(
        &self,
        module: Module,
        inputs: &[Value],
        source: Source,
    ) -> Vec<Result<Value, Value>> {
        let mut created = Vec::new();
        let mut store = self.write();
        let now = Utc::now();
        let mut results = Vec::new();
        for (index, input) in inputs.iter().enumerate() {
            let outcome = validate(&store, module, index, input, true).map(|mut changes| {
                // A record created without an owner belongs to the caller.
                if module.field("Owner").is_some() && !changes.iter().any(|(k, _)| *k == "Owner") {
                    changes.push(("Owner", json!(SANDBOX_USER_ID)));
                }
                let id = store.allocate_id();
                let mut record = Record {
                    id,
                    values: Default::default(),
                    created: now,
                    modified: now,
                    se_module: None,
                    converted: false,
                };
                apply(module, &mut record, changes, now);
                store.table_mut(module).insert(id, record);
                created.push(id);
                success(id, now, now, "record added")
            });
            results.push(outcome);
        }
        drop(store);
        for id in created {
            self.report(module, id, Action::Created, source, Vec::new());
        }
        results
    }

    fn update(&self, params: ItemParams, body: &Bytes) -> Result<Response, Reject> {
        let (module, id) = item_params(params)?;
        let inputs = parse_data(body)?;
        if inputs.len() > 1 {
            return Err(reject(
                "LIMIT_EXCEEDED",
                json!({ "limit": 1, "api_name": "data" }),
                "limit exceeded",
            ));
        }
        let input = inputs.first().cloned().unwrap_or(Value::Null);
        let outcome = self.update_record(module, id, &input, Source::Api)?;
        Ok(write_response(vec![outcome], StatusCode::OK))
    }

    /// An update as the API makes it, reported to webhooks with the fields it changed.
    fn update_record(
        &self,
        module: Module,
        id: u64,
        input: &Value,
        source: Source,
    ) -> Result<Result<Value, Value>, Reject> {
        let mut store = self.write();
        if !store.table(module).contains_key(&id) {
            return Err(invalid_record_id());
        }
        let now = Utc::now();
        let outcome = match validate(&store, module, 0, input, false) {
            Err(e) => Err(e),
            Ok(changes) => match store.table_mut(module).get_mut(&id) {
                None => return Err(invalid_record_id()),
                Some(record) => {
                    let before = record.values.clone();
                    apply(module, record, changes, now);
                    record.modified = now;
                    // Zoho's affected fields: those whose value the write changed.
                    let affected: Vec<(String, Value)> = record
                        .values
                        .iter()
                        .filter(|(k, v)| before.get(*k) != Some(*v))
                        .map(|(k, v)| ((*k).to_owned(), v.clone()))
                        .chain(
                            before
                                .keys()
                                .filter(|k| !record.values.contains_key(*k))
                                .map(|k| ((*k).to_owned(), Value::Null)),
                        )
                        .collect();
                    let created = record.created;
                    drop(store);
                    self.report(module, id, Action::Updated, source, affected);
                    Ok(success(id, created, now, "record updated"))
                }
            },
        };
        Ok(outcome)
    }

    fn delete(&self, params: ItemParams) -> Result<Response, Reject> {
        let (module, id) = item_params(params)?;
        self.delete_record(module, id, Source::Api)?;
        let body = json!({ "data": [{
            "code": "SUCCESS",
            "details": { "id": id.to_string() },
            "message": "record deleted",
            "status": "success",
        }]});
        Ok(Json(body).into_response())
    }

    /// A delete as the API makes it, reported to webhooks.
    fn delete_record(&self, module: Module, id: u64, source: Source) -> Result<(), Reject> {
        if self.write().table_mut(module).remove(&id).is_none() {
            return Err(invalid_record_id());
        }
        self.report(module, id, Action::Deleted, source, Vec::new());
        Ok(())
    }
}

fn success(
    id: u64,
    created: chrono::DateTime<Utc>,
    modified: chrono::DateTime<Utc>,
    message: &str,
) -> Value {
    let user = json!({ "name": SANDBOX_USER_NAME, "id": SANDBOX_USER_ID });
    json!({
        "code": "SUCCESS",
        "details": {
            "Modified_Time": zoho_datetime(modified),
            "Modified_By": user,
            "Created_Time": zoho_datetime(created),
            "id": id.to_string(),
            "Created_By": user,
        },
        "message": message,
        "status": "success",
    })
}

/// All succeeded: `ok`; all failed: 400; mixed: 207.
fn write_response(results: Vec<Result<Value, Value>>, ok: StatusCode) -> Response {
    let failed = results.iter().filter(|r| r.is_err()).count();
    let status = if failed == 0 {
        ok
    } else if failed == results.len() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::MULTI_STATUS
    };
    let data: Vec<Value> = results
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| e))
        .collect();
    (status, Json(json!({ "data": data }))).into_response()
}

/// The `data` array of a write body.
fn parse_data(body: &Bytes) -> Result<Vec<Value>, Reject> {
    let Ok(Value::Object(mut root)) = serde_json::from_slice::<Value>(body) else {
        return Err(reject(
            "INVALID_DATA",
            json!({ "expected_data_type": "jsonobject" }),
            "body",
        ));
    };
    let data = match root.remove("data") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(Value::Array(_)) | None | Some(Value::Null) => {
            return Err(reject(
                "MANDATORY_NOT_FOUND",
                json!({ "api_name": "data", "json_path": "$.data" }),
                "required field not found",
            ));
        }
        Some(_) => {
            return Err(reject(
                "INVALID_DATA",
                json!({ "api_name": "data", "json_path": "$.data", "expected_data_type": "jsonarray" }),
                "invalid data",
            ));
        }
    };
    if data.len() > MAX_WRITE_RECORDS {
        return Err(reject(
            "LIMIT_EXCEEDED",
            json!({ "limit": MAX_WRITE_RECORDS, "api_name": "data" }),
            "limit exceeded",
        ));
    }
    Ok(data)
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

/// Writes checked changes into a record, with Zoho's side effects: a new deal stage brings
/// its default probability (unless the write set one), and a task completed gets its
/// `Closed_Time` (reopened, loses it).
fn apply(
    module: Module,
    record: &mut Record,
    changes: Vec<(&'static str, Value)>,
    now: chrono::DateTime<Utc>,
) {
    let sets = |name: &str| changes.iter().any(|(k, _)| *k == name);
    let stage_default = (module == Module::Deals && !sets("Probability"))
        .then(|| {
            changes
                .iter()
                .find(|(k, _)| *k == "Stage")
                .and_then(|(_, v)| v.as_str())
                .and_then(stage_probability)
        })
        .flatten();
    let was_completed = record.text("Status") == Some(TASK_COMPLETED);
    for (name, value) in changes {
        if name == SE_MODULE {
            record.se_module = value.as_str().and_then(Module::from_name);
        } else if value.is_null() {
            record.values.remove(name);
        } else {
            record.values.insert(name, value);
        }
    }
    if let Some(p) = stage_default {
        record.values.insert("Probability", json!(p));
    }
    if module == Module::Tasks {
        let completed = record.text("Status") == Some(TASK_COMPLETED);
        if completed && !was_completed {
            record
                .values
                .insert("Closed_Time", json!(zoho_datetime(now)));
        } else if !completed {
            record.values.remove("Closed_Time");
        }
    }
}

/// The pseudo field a write's `$se_module` (or `se_module`) travels as among the changes.
const SE_MODULE: &str = "$se_module";

/// A lookup id given as `{"id": ..}` (or, for `Parent_Id`, a bare string).
fn lookup_id(value: &Value, bare_allowed: bool) -> Option<u64> {
    let id = match value {
        Value::Object(lookup) => lookup.get("id")?,
        other if bare_allowed => other,
        _ => return None,
    };
    match id {
        Value::String(s) => s.trim().parse::<u64>().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// One record of a write body, checked against the module's fields. `Err` is the
/// per-record error entry; `Value::Null` in the result clears a field.
fn validate(
    store: &Store,
    module: Module,
    index: usize,
    input: &Value,
    creating: bool,
) -> Result<Vec<(&'static str, Value)>, Value> {
    let Value::Object(map) = input else {
        return Err(error_body(
            "INVALID_DATA",
            json!({ "json_path": format!("$.data[{index}]"), "expected_data_type": "jsonobject" }),
            "invalid data",
        ));
    };
    let se_module_key = ["$se_module", "se_module"]
        .into_iter()
        .find(|k| map.contains_key(*k));
    let se_module = se_module_key
        .and_then(|k| map.get(k))
        .and_then(Value::as_str);
    let mut changes: Vec<(&'static str, Value)> = Vec::new();
    for (name, value) in map {
        let Some(field) = module.field(name).filter(|f| f.writable) else {
            continue;
        };
        let path = format!("$.data[{index}].{name}");
        let invalid = || {
            error_body(
                "INVALID_DATA",
                json!({
                    "expected_data_type": field.ty.wire_name(),
                    "api_name": field.api_name,
                    "json_path": path,
                }),
                "invalid data",
            )
        };
        let bad_link = |given: &Value| {
            error_body(
                "INVALID_DATA",
                json!({
                    "api_name": field.api_name,
                    "json_path": format!("{path}.id"),
                    "id": given.get("id").cloned().unwrap_or_else(|| given.clone()),
                }),
                "the related id given seems to be invalid",
            )
        };
        let value = match (value, field.ty) {
            (Value::Null, FieldType::Related(_)) => {
                changes.push((SE_MODULE, Value::Null));
                Value::Null
            }
            (Value::Null, _) => Value::Null,
            (Value::String(s), _) if s.is_empty() => Value::Null,
            (Value::String(s), FieldType::Email) if looks_like_email(s.trim()) => json!(s.trim()),
            (_, FieldType::Email) => return Err(invalid()),
            (Value::Number(n), FieldType::Integer) if n.is_i64() || n.is_u64() => value.clone(),
            (_, FieldType::Integer) => return Err(invalid()),
            (Value::Number(_), FieldType::Currency) => value.clone(),
            (_, FieldType::Currency) => return Err(invalid()),
            (Value::String(s), FieldType::Choice(allowed)) if allowed.contains(&s.as_str()) => {
                json!(s)
            }
            (_, FieldType::Choice(_)) => return Err(invalid()),
            (Value::String(s), FieldType::Date)
                if chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() =>
            {
                json!(s)
            }
            (_, FieldType::Date) => return Err(invalid()),
            (Value::Object(_), FieldType::Owner) => {
                let user = lookup_id(value, false)
                    .and_then(|id| store.user(id))
                    .filter(|u| u.status == "active");
                match user {
                    Some(u) => json!(u.id.to_string()),
                    None => return Err(bad_link(value)),
                }
            }
            (_, FieldType::Owner) => return Err(invalid()),
            (Value::Object(_), FieldType::Lookup(target)) => {
                match lookup_id(value, false).filter(|id| store.table(target).contains_key(id)) {
                    Some(id) => json!(id.to_string()),
                    None => return Err(bad_link(value)),
                }
            }
            (_, FieldType::Lookup(_)) => return Err(invalid()),
            (Value::Object(_) | Value::String(_), FieldType::Related(allowed)) => {
                let target = se_module
                    .and_then(Module::from_name)
                    .filter(|m| allowed.contains(m));
                let Some(target) = target else {
                    return Err(error_body(
                        "INVALID_DATA",
                        json!({
                            "api_name": "$se_module",
                            "json_path": format!("$.data[{index}].{}", se_module_key.unwrap_or("$se_module")),
                            "supported_values": allowed.iter().map(|m| m.api_name()).collect::<Vec<_>>(),
                        }),
                        "invalid data",
                    ));
                };
                match lookup_id(value, true).filter(|id| store.table(target).contains_key(id)) {
                    Some(id) => {
                        changes.push((SE_MODULE, json!(target.api_name())));
                        json!(id.to_string())
                    }
                    None => return Err(bad_link(value)),
                }
            }
            (_, FieldType::Related(_)) => return Err(invalid()),
            (Value::String(s), _) => json!(s),
            (_, _) => return Err(invalid()),
        };
        changes.push((field.api_name, value));
    }
    for mandatory in module.mandatory_fields() {
        let given = changes.iter().find(|(k, _)| k == mandatory).map(|(_, v)| v);
        let missing = match given {
            Some(v) => v.is_null(),
            None => creating,
        };
        if missing {
            return Err(error_body(
                "MANDATORY_NOT_FOUND",
                json!({ "api_name": mandatory, "json_path": format!("$.data[{index}].{mandatory}") }),
                "required field not found",
            ));
        }
    }
    Ok(changes)
}

/// Leads' `converted` parameter: `false` (the default: converted leads are hidden),
/// `true` (only converted ones) or `both`. `None` means every record; other modules
/// ignore it.
fn converted_param(module: Module, pairs: &[(String, String)]) -> Result<Option<bool>, Reject> {
    if module != Module::Leads {
        return Ok(None);
    }
    match last_param(pairs, "converted") {
        None | Some("false") => Ok(Some(false)),
        Some("true") => Ok(Some(true)),
        Some("both") => Ok(None),
        Some(_) => Err(reject(
            "INVALID_DATA",
            json!({ "param_name": "converted", "supported_values": ["true", "false", "both"] }),
            "invalid data",
        )),
    }
}

// ---------------------------------------------------------------------------------------
// Search (`GET /{module}/search?criteria=|email=|phone=|word=`)

fn invalid_query(details: Value) -> Reject {
    reject("INVALID_QUERY", details, "invalid query formed")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Comparator {
    Equals,
    NotEqual,
    StartsWith,
    In,
    GreaterThan,
    GreaterEqual,
    LessThan,
    LessEqual,
    Between,
}

impl Comparator {
    fn from_wire(s: &str) -> Option<Comparator> {
        Some(match s {
            "equals" => Comparator::Equals,
            "not_equal" => Comparator::NotEqual,
            "starts_with" => Comparator::StartsWith,
            "in" => Comparator::In,
            "greater_than" => Comparator::GreaterThan,
            "greater_equal" => Comparator::GreaterEqual,
            "less_than" => Comparator::LessThan,
            "less_equal" => Comparator::LessEqual,
            "between" => Comparator::Between,
            _ => return None,
        })
    }

    /// How many values it takes (`None`: one or more).
    fn arity(self) -> Option<usize> {
        match self {
            Comparator::In => None,
            Comparator::Between => Some(2),
            _ => Some(1),
        }
    }
}

#[derive(Debug)]
enum Criteria {
    Condition {
        field: &'static FieldDef,
        op: Comparator,
        values: Vec<String>,
    },
    All(Vec<Criteria>),
    Any(Vec<Criteria>),
}

/// A value with Zoho's escapes undone (`\(`, `\)`, `\,`, `\\`), split on unescaped commas.
fn unescape_values(raw: &str) -> Vec<String> {
    let mut values = vec![String::new()];
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(next), Some(last)) = (chars.next(), values.last_mut()) {
                    last.push(next);
                }
            }
            ',' => values.push(String::new()),
            c => {
                if let Some(last) = values.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    values
}

struct CriteriaParser<'a> {
    chars: Vec<char>,
    at: usize,
    module: Module,
    conditions: usize,
    source: &'a str,
}

impl CriteriaParser<'_> {
    fn parse(module: Module, source: &str) -> Result<Criteria, Reject> {
        let mut p = CriteriaParser {
            chars: source.trim().chars().collect(),
            at: 0,
            module,
            conditions: 0,
            source,
        };
        let criteria = if p.peek() == Some('(') {
            p.group()?
        } else {
            // A bare `Field:op:value` is taken as one condition.
            let end = p.chars.len();
            p.condition(end)?
        };
        p.skip_ws();
        if p.at != p.chars.len() {
            return Err(p.malformed());
        }
        if p.conditions > MAX_CRITERIA {
            return Err(reject(
                "LIMIT_EXCEEDED",
                json!({ "limit": MAX_CRITERIA, "param_name": "criteria" }),
                "limit exceeded",
            ));
        }
        Ok(criteria)
    }

    fn malformed(&self) -> Reject {
        invalid_query(json!({ "reason": "invalid criteria", "criteria": self.source }))
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }

    /// `( condition )` or `( group and|or group ... )`.
    fn group(&mut self) -> Result<Criteria, Reject> {
        if self.peek() != Some('(') {
            return Err(self.malformed());
        }
        self.at += 1;
        self.skip_ws();
        if self.peek() != Some('(') {
            // A condition: up to the first unescaped `)`.
            let start = self.at;
            let mut end = start;
            while let Some(c) = self.chars.get(end) {
                match c {
                    '\\' => end += 2,
                    ')' => break,
                    _ => end += 1,
                }
            }
            if end >= self.chars.len() {
                return Err(self.malformed());
            }
            let condition = self.condition(end)?;
            self.at = end + 1;
            return Ok(condition);
        }
        let mut parts = vec![self.group()?];
        let mut joiner: Option<bool> = None;
        loop {
            self.skip_ws();
            match self.peek() {
                Some(')') => {
                    self.at += 1;
                    break;
                }
                None => return Err(self.malformed()),
                _ => {}
            }
            let word: String = self.chars[self.at..]
                .iter()
                .take_while(|c| c.is_ascii_alphabetic())
                .collect();
            let is_and = match word.to_ascii_lowercase().as_str() {
                "and" => true,
                "or" => false,
                _ => return Err(self.malformed()),
            };
            // Mixing `and` and `or` needs its own parentheses.
            if joiner.is_some_and(|j| j != is_and) {
                return Err(self.malformed());
            }
            joiner = Some(is_and);
            self.at += word.chars().count();
            self.skip_ws();
            parts.push(self.group()?);
        }
        Ok(match (joiner, parts.len()) {
            (_, 1) => parts.pop().ok_or_else(|| self.malformed())?,
            (Some(false), _) => Criteria::Any(parts),
            _ => Criteria::All(parts),
        })
    }

    /// `Field:comparator:value` from the cursor up to `end`.
    fn condition(&mut self, end: usize) -> Result<Criteria, Reject> {
        let text: String = self.chars[self.at..end].iter().collect();
        self.at = end;
        self.conditions += 1;
        let mut parts = text.splitn(3, ':');
        let (Some(name), Some(op), Some(raw)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(self.malformed());
        };
        let name = name.trim();
        let field = self.module.field(name).ok_or_else(|| {
            invalid_query(
                json!({ "reason": "the field is not available for search", "api_name": name }),
            )
        })?;
        let op = Comparator::from_wire(op.trim())
            .filter(|op| comparator_allowed(field.ty, *op))
            .ok_or_else(|| {
                invalid_query(json!({
                    "reason": "invalid operator found",
                    "api_name": name,
                    "operator": op.trim(),
                }))
            })?;
        let values = unescape_values(raw);
        let count_ok = match op.arity() {
            Some(n) => values.len() == n,
            None => !values.is_empty(),
        };
        if !count_ok || values.iter().any(String::is_empty) {
            return Err(invalid_query(
                json!({ "reason": "invalid value", "api_name": name, "operator": op_wire(op) }),
            ));
        }
        for value in &values {
            if parse_operand(field.ty, value).is_none() {
                return Err(invalid_query(json!({
                    "reason": "invalid value",
                    "api_name": name,
                    "expected_data_type": field.ty.wire_name(),
                })));
            }
        }
        Ok(Criteria::Condition { field, op, values })
    }
}

fn op_wire(op: Comparator) -> &'static str {
    match op {
        Comparator::Equals => "equals",
        Comparator::NotEqual => "not_equal",
        Comparator::StartsWith => "starts_with",
        Comparator::In => "in",
        Comparator::GreaterThan => "greater_than",
        Comparator::GreaterEqual => "greater_equal",
        Comparator::LessThan => "less_than",
        Comparator::LessEqual => "less_equal",
        Comparator::Between => "between",
    }
}

fn comparator_allowed(ty: FieldType, op: Comparator) -> bool {
    use Comparator as C;
    match ty {
        FieldType::Text
        | FieldType::Email
        | FieldType::Phone
        | FieldType::Website
        | FieldType::Picklist
        | FieldType::Choice(_) => matches!(op, C::Equals | C::NotEqual | C::StartsWith | C::In),
        FieldType::Integer | FieldType::Currency | FieldType::DateTime | FieldType::Date => {
            !matches!(op, C::StartsWith)
        }
        FieldType::Lookup(_) | FieldType::Owner | FieldType::Related(_) => {
            matches!(op, C::Equals | C::NotEqual | C::In)
        }
    }
}

/// A comparable form of a criteria value or a record's value for a field type.
#[derive(Debug, PartialEq, PartialOrd)]
enum Operand {
    Text(String),
    Number(f64),
    Instant(i64),
}

/// Datetimes in criteria carry an explicit `±hh:mm` offset, as Zoho writes them
/// (`2024-05-01T10:00:00+05:30`); `Z` and offset-less values are refused.
fn parse_operand(ty: FieldType, raw: &str) -> Option<Operand> {
    match ty {
        FieldType::Integer | FieldType::Currency => raw.trim().parse().ok().map(Operand::Number),
        FieldType::DateTime => {
            let raw = raw.trim();
            let offset_ok = raw.len() > 6
                && raw
                    .get(raw.len() - 6..raw.len() - 5)
                    .is_some_and(|s| s == "+" || s == "-");
            offset_ok
                .then(|| chrono::DateTime::parse_from_rfc3339(raw).ok())
                .flatten()
                .map(|t| Operand::Instant(t.timestamp()))
        }
        FieldType::Date => chrono::NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| Operand::Instant(d.and_utc().timestamp())),
        _ => Some(Operand::Text(raw.to_lowercase())),
    }
}

fn record_operand(ty: FieldType, value: &Value) -> Option<Operand> {
    match (ty, value) {
        (_, Value::Null) => None,
        (FieldType::Lookup(_) | FieldType::Owner | FieldType::Related(_), v) => v
            .get("id")
            .and_then(Value::as_str)
            .map(|id| Operand::Text(id.to_owned())),
        (FieldType::Integer | FieldType::Currency, v) => v.as_f64().map(Operand::Number),
        (_, Value::String(s)) => parse_operand(ty, s),
        _ => None,
    }
}

impl Criteria {
    fn matches(&self, store: &Store, module: Module, record: &Record) -> bool {
        match self {
            Criteria::All(parts) => parts.iter().all(|c| c.matches(store, module, record)),
            Criteria::Any(parts) => parts.iter().any(|c| c.matches(store, module, record)),
            Criteria::Condition { field, op, values } => {
                // A field without a value matches no condition.
                let Some(actual) = record_operand(field.ty, &store.value(module, record, field))
                else {
                    return false;
                };
                let operands: Vec<Operand> = values
                    .iter()
                    .filter_map(|v| parse_operand(field.ty, v))
                    .collect();
                let Some(first) = operands.first() else {
                    return false;
                };
                match op {
                    Comparator::Equals => actual == *first,
                    Comparator::NotEqual => actual != *first,
                    Comparator::StartsWith => match (&actual, first) {
                        (Operand::Text(a), Operand::Text(b)) => a.starts_with(b.as_str()),
                        _ => false,
                    },
                    Comparator::In => operands.contains(&actual),
                    Comparator::GreaterThan => actual > *first,
                    Comparator::GreaterEqual => actual >= *first,
                    Comparator::LessThan => actual < *first,
                    Comparator::LessEqual => actual <= *first,
                    Comparator::Between => operands
                        .get(1)
                        .is_some_and(|last| actual >= *first && actual <= *last),
                }
            }
        }
    }
}

/// What a search asks for: one of `criteria`, `email`, `phone` and `word`.
enum SearchBy {
    Criteria(Criteria),
    Email(String),
    Phone(String),
    Word(String),
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

impl SearchBy {
    fn matches(&self, store: &Store, module: Module, record: &Record) -> bool {
        let texts = |pred: &dyn Fn(FieldType) -> bool| -> Vec<String> {
            module
                .fields()
                .iter()
                .filter(|f| pred(f.ty))
                .filter_map(|f| store.value(module, record, f).as_str().map(str::to_owned))
                .collect()
        };
        match self {
            SearchBy::Criteria(c) => c.matches(store, module, record),
            SearchBy::Email(e) => texts(&|t| t == FieldType::Email)
                .iter()
                .any(|v| v.eq_ignore_ascii_case(e.trim())),
            SearchBy::Phone(p) => {
                let wanted = digits(p);
                !wanted.is_empty()
                    && texts(&|t| t == FieldType::Phone)
                        .iter()
                        .any(|v| digits(v) == wanted)
            }
            SearchBy::Word(w) => {
                let w = w.trim().to_lowercase();
                texts(&|t| {
                    matches!(
                        t,
                        FieldType::Text
                            | FieldType::Email
                            | FieldType::Phone
                            | FieldType::Website
                            | FieldType::Picklist
                            | FieldType::Choice(_)
                    )
                })
                .iter()
                .any(|v| v.to_lowercase().contains(&w))
            }
        }
    }
}

impl Zoho {
    fn search(&self, module: ModuleParam, info: &ReqInfo) -> Result<Response, Reject> {
        let module = module_param(module)?;
        let pairs = info.pairs();
        let given: Vec<(&str, &str)> = ["criteria", "email", "phone", "word"]
            .into_iter()
            .filter_map(|k| {
                last_param(&pairs, k)
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| (k, v))
            })
            .collect();
        let by = match given.as_slice() {
            [] => {
                return Err(reject(
                    "REQUIRED_PARAM_MISSING",
                    json!({ "param_name": ["criteria", "email", "phone", "word"] }),
                    "One of the expected parameter is missing",
                ));
            }
            [("criteria", raw)] => SearchBy::Criteria(CriteriaParser::parse(module, raw)?),
            [("email", raw)] => SearchBy::Email((*raw).to_owned()),
            [("phone", raw)] => SearchBy::Phone((*raw).to_owned()),
            [(_, raw)] => SearchBy::Word((*raw).to_owned()),
            several => {
                let names: Vec<Value> = several
                    .iter()
                    .map(|(k, _)| json!({ "param_name": k }))
                    .collect();
                return Err(reject(
                    "AMBIGUITY_DURING_PROCESSING",
                    json!({ "ambiguity_due_to": names }),
                    "ambiguity while processing the request",
                ));
            }
        };
        let fields = match last_param(&pairs, "fields").map(split_list) {
            Some(names) if !names.is_empty() => {
                if names.len() > MAX_FIELDS {
                    return Err(reject(
                        "LIMIT_EXCEEDED",
                        json!({ "limit": MAX_FIELDS, "param_name": "fields" }),
                        "limit exceeded",
                    ));
                }
                known_fields(module, &names)
            }
            _ => module.fields().iter().collect(),
        };
        let per_page = parse_count(&pairs, "per_page")?.unwrap_or(DEFAULT_PER_PAGE);
        if per_page > MAX_PER_PAGE {
            return Err(reject(
                "LIMIT_EXCEEDED",
                json!({ "limit": MAX_PER_PAGE, "param_name": "per_page" }),
                "limit exceeded",
            ));
        }
        let page = parse_count(&pairs, "page")?.unwrap_or(1);
        if page.saturating_mul(per_page) > SEARCH_LIMIT {
            return Err(reject(
                "LIMIT_EXCEEDED",
                json!({ "limit": SEARCH_LIMIT, "param_name": "page" }),
                "limit exceeded",
            ));
        }
        let converted = converted_param(module, &pairs)?;
        let store = self.read();
        let hits: Vec<&Record> = store
            .sorted(module, SortBy::Id, true)
            .into_iter()
            .filter(|r| converted.is_none_or(|c| r.converted == c))
            .filter(|r| by.matches(&store, module, r))
            .take(SEARCH_LIMIT)
            .collect();
        let offset = (page - 1) * per_page;
        let data: Vec<Value> = hits
            .iter()
            .skip(offset)
            .take(per_page)
            .map(|r| store.render(module, r, &fields))
            .collect();
        let more = offset + data.len() < hits.len();
        drop(store);
        if data.is_empty() {
            return Ok(no_content());
        }
        let info = json!({
            "per_page": per_page,
            "count": data.len(),
            "page": page,
            "more_records": more,
        });
        Ok(Json(json!({ "data": data, "info": info })).into_response())
    }

    // -----------------------------------------------------------------------------------
    // Users (`GET /users?type=`, `GET /users/{id}`): read-only here.

    fn list_users(&self, info: &ReqInfo) -> Result<Response, Reject> {
        let pairs = info.pairs();
        let kind = last_param(&pairs, "type").unwrap_or("AllUsers");
        let keep: fn(&User) -> bool = match kind {
            "AllUsers" => |_| true,
            "ActiveUsers" => |u| u.status == "active",
            "DeactiveUsers" => |u| u.status == "disabled",
            "ConfirmedUsers" => |u| u.confirmed,
            "NotConfirmedUsers" => |u| !u.confirmed,
            "DeletedUsers" => |_| false,
            "ActiveConfirmedUsers" => |u| u.status == "active" && u.confirmed,
            "AdminUsers" => User::is_admin,
            "ActiveConfirmedAdmins" => |u| u.is_admin() && u.status == "active" && u.confirmed,
            "CurrentUser" => |u| u.id.to_string() == SANDBOX_USER_ID,
            _ => return Err(invalid_param("type")),
        };
        let per_page = parse_count(&pairs, "per_page")?.unwrap_or(DEFAULT_PER_PAGE);
        if per_page > MAX_PER_PAGE {
            return Err(reject(
                "LIMIT_EXCEEDED",
                json!({ "limit": MAX_PER_PAGE, "param_name": "per_page" }),
                "limit exceeded",
            ));
        }
        let page = parse_count(&pairs, "page")?.unwrap_or(1);
        let store = self.read();
        let users: Vec<&User> = store.users().iter().filter(|u| keep(u)).collect();
        let offset = (page - 1).saturating_mul(per_page);
        let data: Vec<Value> = users
            .iter()
            .skip(offset)
            .take(per_page)
            .map(|u| u.render())
            .collect();
        let more = offset + data.len() < users.len();
        drop(store);
        if data.is_empty() {
            return Ok(no_content());
        }
        let info = json!({ "per_page": per_page, "count": data.len(), "page": page, "more_records": more });
        Ok(Json(json!({ "users": data, "info": info })).into_response())
    }

    fn get_user(&self, id: Result<Path<String>, PathRejection>) -> Result<Response, Reject> {
        let id = id
            .ok()
            .and_then(|Path(id)| id.trim().parse::<u64>().ok())
            .ok_or_else(invalid_record_id)?;
        match self.read().user(id) {
            Some(user) => Ok(Json(json!({ "users": [user.render()] })).into_response()),
            None => Ok(no_content()),
        }
    }
}

// ---------------------------------------------------------------------------------------
// OAuth (vendors.md §7 Auth; machinery in oauth.rs), served at `/zoho/oauth/v2/auth` and
// `/zoho/oauth/v2/token` (the accounts server), so `api_domain` and the callback's
// `accounts-server` are both the sandbox's `<base>/zoho`.
//
// Choices: token parameters may come in the query string (Zoho's documented style) or the
// form body; a refresh token comes only with `access_type=offline` (Zoho's default is
// `online`); refresh answers carry none; codes live 2 minutes. Token-endpoint errors are
// HTTP 200 `{"error":"invalid_code"}` (bad, used or expired code, wrong PKCE verifier, bad
// or revoked refresh token), `invalid_client`, `invalid_client_secret`,
// `invalid_redirect_uri`, `unsupported_grant_type` or `invalid_request`. The authorization
// page's refusals are 400 with the same bodies. The callback carries `location=us` and
// `accounts-server`.

static OAUTH: Profile = Profile {
    provider: PROVIDER,
    client_id: ZOHO_CLIENT_ID,
    client_secret: ZOHO_CLIENT_SECRET,
    access_lifetime_secs: 3600,
    code_lifetime_secs: 120,
    rotates: false,
    always_rotates: false,
    echoes_refresh_token: false,
    client_credentials: false,
    basic_auth: false,
    query_params: true,
    refresh_rule: RefreshRule::AccessTypeOffline,
    prefixes: Prefixes {
        access: "1000.",
        refresh: "1000.",
        code: "1000.",
    },
};

const DEFAULT_OAUTH_SCOPE: &str = "ZohoCRM.modules.ALL";

fn oauth_error(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({ "error": error }))).into_response()
}

impl OAuthShape for Zoho {
    fn oauth_profile(&self) -> &'static Profile {
        &OAUTH
    }

    fn oauth_control(&self) -> &Control {
        &self.control
    }

    fn token_body(&self, issued: &Issued) -> Value {
        let mut body = serde_json::Map::new();
        body.insert("access_token".into(), json!(issued.access_token));
        if let Some(refresh) = &issued.refresh_token {
            body.insert("refresh_token".into(), json!(refresh));
        }
        let scope = issued
            .scope
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or(DEFAULT_OAUTH_SCOPE);
        body.insert("scope".into(), json!(scope));
        body.insert(
            "api_domain".into(),
            json!(format!("{}{PREFIX}", issued.base_url)),
        );
        body.insert("token_type".into(), json!("Bearer"));
        body.insert("expires_in".into(), json!(issued.expires_in));
        Value::Object(body)
    }

    fn token_error(&self, error: &TokenError) -> Response {
        let error = match error {
            TokenError::ContentType | TokenError::MissingGrantType => "invalid_request",
            TokenError::UnsupportedGrant(_) => "unsupported_grant_type",
            TokenError::MissingClient | TokenError::UnknownClient(_) => "invalid_client",
            TokenError::BadSecret => "invalid_client_secret",
            TokenError::RedirectMismatch => "invalid_redirect_uri",
            TokenError::BadCode
            | TokenError::CodeUsed
            | TokenError::CodeExpired
            | TokenError::BadVerifier
            | TokenError::BadRefreshToken => "invalid_code",
        };
        oauth_error(StatusCode::OK, error)
    }

    fn authorize_error(&self, error: &AuthorizeError) -> Response {
        let error = match error {
            AuthorizeError::MissingClient | AuthorizeError::UnknownClient(_) => "invalid_client",
            AuthorizeError::MissingRedirect | AuthorizeError::BadRedirect(_) => {
                "invalid_redirect_uri"
            }
        };
        oauth_error(StatusCode::BAD_REQUEST, error)
    }

    fn callback_params(&self, base_url: &str) -> Vec<(&'static str, String)> {
        vec![
            ("location", "us".to_owned()),
            ("accounts-server", format!("{base_url}{PREFIX}")),
        ]
    }
}

/// `POST /oauth/v2/token/revoke?token=`: the refresh token's whole grant goes. Zoho answers
/// its OAuth errors with HTTP 200 and an `error` field, and this endpoint too (the
/// sandbox's reading: `{"status": "success"}` when revoked, `{"error": "invalid_token"}`
/// for a token it never issued or already revoked).
async fn revoke_token(State(z): State<Arc<Zoho>>, info: ReqInfo) -> Response {
    let params = info.pairs();
    let token = last_param(&params, "token").unwrap_or_default();
    let revoked = oauth::revoke_refresh_token(&z.control, PROVIDER, token, true)
        .or_else(|| oauth::revoke_access_token(&z.control, PROVIDER, token, true));
    match revoked {
        Some(_) => axum::Json(serde_json::json!({"status": "success"})).into_response(),
        None => axum::Json(serde_json::json!({"error": "invalid_token"})).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_reject_garbage() {
        let token = PageToken {
            module: "Contacts".into(),
            sort_by: "id".into(),
            descending: true,
            per_page: 200,
            fields: fields_fingerprint(&["Email".into(), "Last_Name".into()]),
            offset: 400,
            expires: 1_900_000_000,
        };
        let wire = token.encode();
        assert!(wire.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(PageToken::decode(&wire), Some(token));
        for garbage in ["", "zz", "abc", "00", "c8582e7a9f"] {
            assert_eq!(PageToken::decode(garbage), None, "{garbage}");
        }
        assert_eq!(
            fields_fingerprint(&["Last_Name".into(), "Email".into()]),
            fields_fingerprint(&["Email".into(), "Last_Name".into(), "Email".into()])
        );
    }

    #[test]
    fn authorization_scheme_must_be_zoho_oauthtoken() {
        assert_eq!(zoho_token("Zoho-oauthtoken abc").as_deref(), Some("abc"));
        assert_eq!(zoho_token("zoho-oauthtoken  abc ").as_deref(), Some("abc"));
        assert_eq!(zoho_token("Bearer abc"), None);
        assert_eq!(zoho_token("Zoho-oauthtoken "), None);
        assert_eq!(zoho_token(""), None);
    }
}
