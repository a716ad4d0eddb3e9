//! Zoho CRM API v8 records (Contacts, Accounts) as described in `/work/shared/vendors.md`
//! §7, served under `/zoho`, which plays the `api_domain`: the API lives at
//! `/zoho/crm/v8`.
//!
//! Every request passes [`gate`] first: it is counted, may be hijacked by an injected
//! fault, is authenticated (`Authorization: Zoho-oauthtoken <token>`, never `Bearer`)
//! against the shared token registry and is charged to its token's rolling window, which
//! models the org's rolling 24 h credit allowance.
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
//! - Deleting an account leaves its contacts, whose `Account_Name` then reads `null`.
//! - Injected faults fire before authentication, like an upstream outage would.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, MatchedPath, OriginalUri, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{Duration, Utc};
use serde_json::{Value, json};

use super::DemoAccount;
use super::ZOHO_DEMO_TOKEN;
use super::control::{
    Control, FaultAction, FaultKind, RateLimitConfig, Reject, TokenCheck, Vendor,
};
use super::oauth::{
    self, AuthorizeError, Issued, OAuthShape, Prefixes, Profile, RefreshRule, TokenError,
};
use super::zoho_data::{
    FieldDef, FieldType, Module, Record, SANDBOX_USER_ID, SANDBOX_USER_NAME, SortBy, Store,
    sample_ids, zoho_datetime,
};
use super::{ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET};

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
const UNMATCHED_ROUTE: &str = "/zoho/{unmatched}";

const COLLECTION: &str = "/crm/v8/{module}";
const ITEM: &str = "/crm/v8/{module}/{id}";

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
            templates: [COLLECTION, ITEM]
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
                ITEM,
                get(|State(z): S, info: ReqInfo, p: ItemParams| async move { z.get_one(p, &info) })
                    .put(|State(z): S, p: ItemParams, body: Bytes| async move {
                        z.update(p, &body)
                    })
                    .delete(|State(z): S, p: ItemParams| async move { z.delete(p) }),
            )
            .method_not_allowed_fallback(|| async {
                zoho_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_REQUEST_METHOD",
                    json!({}),
                    "The http request method type is not a valid one",
                )
            })
            .fallback(|| async { invalid_url() })
            .layer(middleware::from_fn_with_state(self.clone(), gate))
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

    fn oauth_router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/oauth/v2/auth", get(oauth::authorize::<Zoho>))
            .route("/oauth/v2/token", axum::routing::post(oauth::token::<Zoho>))
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
// Middleware

async fn gate(State(z): State<Arc<Zoho>>, req: Request, next: Next) -> Response {
    let info = ReqInfo::from_parts(req.method(), req.uri(), req.extensions());
    let template = req
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
        .filter(|m| z.templates.contains(*m))
        .unwrap_or(UNMATCHED_ROUTE);
    z.control
        .count(PROVIDER, format!("{} {template}", info.method));

    if let Some(FaultAction::Respond {
        status,
        body,
        delay,
    }) = z.control.take_fault(
        PROVIDER,
        &info.method,
        &info.path_and_query,
        FaultKind::Respond,
    ) {
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        if let Some(status) = status {
            return fault_response(status, body, z.control.next_uuid());
        }
    }

    let Some(authorization) = req.headers().get(header::AUTHORIZATION) else {
        return zoho_error(
            StatusCode::UNAUTHORIZED,
            "AUTHENTICATION_FAILURE",
            json!({}),
            "Authentication failed",
        );
    };
    let token = zoho_token(authorization.to_str().unwrap_or(""));
    let token = match z.control.check_token(PROVIDER, token.as_deref()) {
        TokenCheck::Valid => token.unwrap_or_default(),
        TokenCheck::Unknown | TokenCheck::Expired { .. } => return invalid_token(),
    };

    let decision = z.control.rate_limit(PROVIDER, &token);
    if decision.allowed {
        next.run(req).await
    } else {
        let window = decision.interval_ms / 1000;
        zoho_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TOO_MANY_REQUESTS",
            json!({ "trace_id": z.control.next_uuid(), "limit": decision.max, "window": window }),
            "Rate limit exceeded. Please retry after the specified time.",
        )
    }
}

/// `Zoho-oauthtoken <token>`; a `Bearer` header is the classic first-call mistake and is
/// refused like an unknown token.
fn zoho_token(value: &str) -> Option<String> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("Zoho-oauthtoken") && !token.is_empty()).then(|| token.to_owned())
}

struct ReqInfo {
    method: String,
    path_and_query: String,
    query: Option<String>,
}

impl ReqInfo {
    fn from_parts(
        method: &axum::http::Method,
        uri: &axum::http::Uri,
        extensions: &axum::http::Extensions,
    ) -> ReqInfo {
        let uri = extensions.get::<OriginalUri>().map_or(uri, |o| &o.0);
        ReqInfo {
            method: method.as_str().to_owned(),
            path_and_query: uri
                .path_and_query()
                .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned()),
            query: uri.query().map(str::to_owned),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ReqInfo {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ReqInfo::from_parts(
            &parts.method,
            &parts.uri,
            &parts.extensions,
        ))
    }
}

fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn last_param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn comma_list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
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
        let pairs = query_pairs(info.query.as_deref());
        let requested = last_param(&pairs, "fields")
            .map(comma_list)
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
        let rows = store.sorted(module, sort_by, descending);
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
        let ids: Vec<String> = comma_list(raw);
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
        let pairs = query_pairs(info.query.as_deref());
        let fields = match last_param(&pairs, "fields").map(comma_list) {
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
        let mut store = self.write();
        let now = Utc::now();
        let mut results = Vec::new();
        for (index, input) in inputs.iter().enumerate() {
            let outcome = validate(&store, module, index, input, true).map(|changes| {
                let id = store.allocate_id();
                let record = Record {
                    id,
                    values: changes.into_iter().filter(|(_, v)| !v.is_null()).collect(),
                    created: now,
                    modified: now,
                };
                store.table_mut(module).insert(id, record);
                success(id, now, now, "record added")
            });
            results.push(outcome);
        }
        Ok(write_response(results, StatusCode::CREATED))
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
        let mut store = self.write();
        if !store.table(module).contains_key(&id) {
            return Err(invalid_record_id());
        }
        let input = inputs.first().cloned().unwrap_or(Value::Null);
        let now = Utc::now();
        let outcome = match validate(&store, module, 0, &input, false) {
            Err(e) => Err(e),
            Ok(changes) => match store.table_mut(module).get_mut(&id) {
                None => return Err(invalid_record_id()),
                Some(record) => {
                    for (name, value) in changes {
                        if value.is_null() {
                            record.values.remove(name);
                        } else {
                            record.values.insert(name, value);
                        }
                    }
                    record.modified = now;
                    Ok(success(id, record.created, now, "record updated"))
                }
            },
        };
        Ok(write_response(vec![outcome], StatusCode::OK))
    }

    fn delete(&self, params: ItemParams) -> Result<Response, Reject> {
        let (module, id) = item_params(params)?;
        if self.write().table_mut(module).remove(&id).is_none() {
            return Err(invalid_record_id());
        }
        let body = json!({ "data": [{
            "code": "SUCCESS",
            "details": { "id": id.to_string() },
            "message": "record deleted",
            "status": "success",
        }]});
        Ok(Json(body).into_response())
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
        let value = match (value, field.ty) {
            (Value::Null, _) => Value::Null,
            (Value::String(s), _) if s.is_empty() => Value::Null,
            (Value::String(s), FieldType::Email) if looks_like_email(s.trim()) => json!(s.trim()),
            (_, FieldType::Email) => return Err(invalid()),
            (Value::Number(n), FieldType::Integer) if n.is_i64() || n.is_u64() => value.clone(),
            (_, FieldType::Integer) => return Err(invalid()),
            (Value::Number(_), FieldType::Currency) => value.clone(),
            (_, FieldType::Currency) => return Err(invalid()),
            (Value::Object(lookup), FieldType::Lookup(target)) => {
                let id = match lookup.get("id") {
                    Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
                    Some(Value::Number(n)) => n.as_u64(),
                    _ => None,
                };
                let Some(id) = id.filter(|id| store.table(target).contains_key(id)) else {
                    return Err(error_body(
                        "INVALID_DATA",
                        json!({
                            "api_name": field.api_name,
                            "json_path": format!("{path}.id"),
                            "id": lookup.get("id").cloned().unwrap_or(Value::Null),
                        }),
                        "the related id given seems to be invalid",
                    ));
                };
                json!(id.to_string())
            }
            (_, FieldType::Lookup(_)) => return Err(invalid()),
            (Value::String(s), _) => json!(s),
            (_, _) => return Err(invalid()),
        };
        changes.push((field.api_name, value));
    }
    let mandatory = module.mandatory_field();
    let given = changes
        .iter()
        .find(|(k, _)| *k == mandatory)
        .map(|(_, v)| v);
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
    Ok(changes)
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
