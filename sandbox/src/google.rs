//! Google People API v1 contacts (`people.connections.list`, `people.get`,
//! `people.getBatchGet`, `createContact`, `updateContact`, `deleteContact`) as described
//! in `/work/shared/vendors.md` §6, served under `/google` (a client's base URL is
//! `http://host/google/v1`). The People API has no companies or deals: the sandbox serves
//! contacts only.
//!
//! Every request passes the shared gate (`wire::gate`).
//!
//! Choices where vendors.md is silent or tagged [M]/[T]:
//! - Default quota: 90 requests per minute per token ("Critical read requests per minute
//!   per user"); reads and writes share the window, and the 429 names the read or write
//!   metric by HTTP method. No rate headers, no `Retry-After`.
//! - 401s: "Request is missing required authentication credential..." (reason
//!   `CREDENTIALS_MISSING`) without credentials, "Request had invalid authentication
//!   credentials..." with `ACCESS_TOKEN_TYPE_UNSUPPORTED` (unknown token) or
//!   `ACCESS_TOKEN_EXPIRED`; `?access_token=` works like the bearer header.
//! - JSON is pretty-printed (Google's default) unless `prettyPrint=false`; empty repeated
//!   fields and zero counts are omitted, as proto3 JSON does.
//! - Paths no method matches get Google's HTML 404 page, not JSON.
//! - `sortOrder` is honoured (default `LAST_MODIFIED_ASCENDING`); page tokens are opaque
//!   keyset positions bound to every other parameter of the call that started the
//!   listing: a page token sent with other parameters (another sort order, page size or
//!   mask) is 400 `INVALID_ARGUMENT` "Request contains an invalid argument." (vendors.md
//!   says the parameters must match, not what the refusal says).
//! - Sync tokens: with `requestSyncToken=true` the last page carries `nextSyncToken`, a
//!   position in the contacts' change log taken when the listing's first page was served.
//!   `syncToken=` lists every contact written since (each once, in the order of its last
//!   write, with the requested fields) and every contact deleted since (`resourceName`,
//!   `etag` and `metadata` with `deleted: true`, whatever the mask), paged like a full
//!   listing, `totalItems` counting the changes; its last page carries the next token.
//!   Every other parameter must equal the call that asked for the token (400
//!   `INVALID_ARGUMENT` as above otherwise); a token that is not one is the same 400. A
//!   token older than its lifetime (7 days; `PUT /_control/google/sync-tokens`
//!   `{"lifetimeSeconds"}`), issued before `POST /_control/google/sync-tokens/expire` or
//!   before `/_control/reset` is 400 `FAILED_PRECONDITION` with `ErrorInfo.reason =
//!   "EXPIRED_SYNC_TOKEN"`. Writes show up in sync at once (Google can take minutes).
//!   `GET /_control/google/sync-tokens` counts the tokens issued, the listings of changes
//!   served and the expired tokens refused.
//! - Stored fields: names, emailAddresses, phoneNumbers, organizations, addresses,
//!   biographies, userDefined (plus the fixed `myContacts` membership and metadata). Other
//!   valid person fields are accepted in writes and ignored; unknown keys are 400 with
//!   Google's "Invalid JSON payload received. Unknown name ..." message.
//! - batchGet entries carry `httpStatusCode` and `status` (`{"code":0}` on success, as in
//!   vendors.md); a resource name that is not `people/...` is a per-entry 400.

use std::cmp::Ordering as CmpOrdering;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::DemoAccount;
use super::GOOGLE_DEMO_TOKEN;
use super::control::{
    Control, FaultKind, RateDecision, RateLimitConfig, Reject, Vendor, control_error, parse_body,
};
use super::google_data::{
    PERSON_FIELDS, Person, SINGLE_ITEM_FIELDS, STORED_FIELDS, Store, Tombstone, UPDATABLE_FIELDS,
    contact_id, stored_field,
};
use super::oauth::{
    self, AuthorizeError, Issued, OAuthShape, Prefixes, Profile, RefreshRule, TokenError,
    oauth2_error,
};
use super::wire::{self, AuthFailure, Dialect, ReqInfo, all_params, last_param, split_list};
use super::{GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET};

pub(crate) const PROVIDER: &str = "google";
const MOUNT: &str = "/google";
const DEFAULT_PAGE_SIZE: usize = 100;
const MAX_PAGE_SIZE: usize = 1000;
const MAX_BATCH_GET: usize = 200;
const PROJECT_NUMBER: &str = "584727172614";
const SORT_ORDERS: [&str; 4] = [
    "LAST_MODIFIED_ASCENDING",
    "LAST_MODIFIED_DESCENDING",
    "FIRST_NAME_ASCENDING",
    "LAST_NAME_ASCENDING",
];
const READ_SOURCES: [&str; 4] = [
    "READ_SOURCE_TYPE_PROFILE",
    "READ_SOURCE_TYPE_CONTACT",
    "READ_SOURCE_TYPE_DOMAIN_CONTACT",
    "READ_SOURCE_TYPE_OTHER_CONTACT",
];
const LIST_DOCS: &str = "https://developers.google.com/people/api/rest/v1/people.connections/list";
/// "Sync tokens expire 7 days after the full sync."
const SYNC_TOKEN_LIFETIME_SECS: i64 = 7 * 24 * 3600;
/// Standard query parameters of every Google API, not the method's: they take no part in
/// what a page or sync token is bound to.
const SYSTEM_PARAMS: [&str; 11] = [
    "$.xgafv",
    "access_token",
    "alt",
    "callback",
    "fields",
    "key",
    "oauth_token",
    "prettyPrint",
    "quotaUser",
    "uploadType",
    "upload_protocol",
];
const UPDATE_DOCS: &str = "https://developers.google.com/people/api/rest/v1/people/updateContact";

pub(crate) struct Google {
    control: Arc<Control>,
    store: RwLock<Store>,
    sync: Mutex<SyncTokens>,
    templates: HashSet<String>,
}

/// Which sync tokens are still honoured, and what was done with them.
#[derive(Debug)]
struct SyncTokens {
    /// Tokens of an earlier generation are expired (`/expire`, `/_control/reset`).
    generation: u64,
    lifetime: chrono::Duration,
    issued: u64,
    change_listings: u64,
    expired_refusals: u64,
}

impl SyncTokens {
    fn new(generation: u64) -> SyncTokens {
        SyncTokens {
            generation,
            lifetime: chrono::Duration::seconds(SYNC_TOKEN_LIFETIME_SECS),
            issued: 0,
            change_listings: 0,
            expired_refusals: 0,
        }
    }

    fn report(&self) -> Value {
        json!({
            "lifetimeSeconds": self.lifetime.num_seconds(),
            "issued": self.issued,
            "changeListings": self.change_listings,
            "expiredRefusals": self.expired_refusals,
        })
    }
}

fn route_templates() -> [&'static str; 4] {
    [
        "/v1/people/me/connections",
        "/v1/people:batchGet",
        "/v1/people:createContact",
        "/v1/people/{id}",
    ]
}

impl Google {
    pub(crate) fn new(control: Arc<Control>) -> Google {
        Google {
            control,
            store: RwLock::new(Store::seed()),
            sync: Mutex::new(SyncTokens::new(0)),
            templates: route_templates()
                .into_iter()
                .map(|p| format!("{MOUNT}{p}"))
                .collect(),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn sync(&self) -> MutexGuard<'_, SyncTokens> {
        self.sync.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Vendor for Google {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    fn seed_tokens(&self) -> Vec<String> {
        vec![GOOGLE_DEMO_TOKEN.to_owned()]
    }

    fn default_rate_limit(&self) -> RateLimitConfig {
        // "Critical read requests (Contact and Profile Reads) per minute per user".
        RateLimitConfig {
            max: 90,
            interval_ms: 60_000,
        }
    }

    fn reset_data(&self) {
        *self.write() = Store::seed();
        // Tokens point into the old data's change log: they are expired, as a real
        // account's would be after its data changed under them.
        let mut sync = self.sync();
        *sync = SyncTokens::new(sync.generation.saturating_add(1));
    }

    fn control_router(self: Arc<Self>) -> Router {
        Router::new()
            .route(
                "/google/sync-tokens",
                get(sync_tokens_report).put(set_sync_tokens),
            )
            .route("/google/sync-tokens/expire", post(expire_sync_tokens))
            .with_state(self)
    }

    fn router(self: Arc<Self>) -> Router {
        let router: Router<Arc<Google>> = Router::new()
            .route(
                "/v1/people/me/connections",
                get(|State(g): State<Arc<Google>>, info: ReqInfo| async move { g.list(&info) }),
            )
            .route(
                "/v1/people:batchGet",
                get(
                    |State(g): State<Arc<Google>>, info: ReqInfo| async move { g.batch_get(&info) },
                ),
            )
            .route(
                "/v1/people:createContact",
                post(
                    |State(g): State<Arc<Google>>, info: ReqInfo, body: Bytes| async move {
                        g.create(&info, &body)
                    },
                ),
            )
            .route(
                "/v1/people/{id}",
                get(
                    |State(g): State<Arc<Google>>,
                     info: ReqInfo,
                     id: Result<Path<String>, PathRejection>| async move {
                        g.item(&info, id, None)
                    },
                )
                .patch(
                    |State(g): State<Arc<Google>>,
                     info: ReqInfo,
                     id: Result<Path<String>, PathRejection>,
                     body: Bytes| async move { g.item(&info, id, Some(&body)) },
                )
                .delete(
                    |State(g): State<Arc<Google>>,
                     info: ReqInfo,
                     id: Result<Path<String>, PathRejection>| async move {
                        g.item(&info, id, None)
                    },
                ),
            );
        router
            .method_not_allowed_fallback(|info: ReqInfo| async move { html_not_found(&info) })
            .fallback(|info: ReqInfo| async move { html_not_found(&info) })
            .layer(middleware::from_fn_with_state(
                self.clone(),
                wire::gate::<Google>,
            ))
            .with_state(self)
    }

    fn demo_account(&self, base_url: &str) -> DemoAccount {
        DemoAccount {
            provider: PROVIDER,
            credentials: json!({ "accessToken": GOOGLE_DEMO_TOKEN }),
            settings: json!({ "baseUrl": format!("{base_url}{MOUNT}/v1") }),
        }
    }

    fn oauth(&self) -> Option<&dyn OAuthShape> {
        Some(self)
    }

    fn oauth_router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/o/oauth2/v2/auth", get(oauth::authorize::<Google>))
            .route("/token", post(oauth::token::<Google>))
            .route("/revoke", post(revoke_token).get(revoke_token))
            .with_state(self)
    }
}

/// The person fields a typical sync asks for.
pub(crate) const SAMPLE_FIELDS: [&str; 9] = [
    "addresses",
    "biographies",
    "emailAddresses",
    "memberships",
    "metadata",
    "names",
    "organizations",
    "phoneNumbers",
    "userDefined",
];

/// Seeded connections as `people/me/connections` returns them for [`SAMPLE_FIELDS`],
/// chosen to include the edge cases: no email, no name, two emails, non-ASCII names,
/// no phone, no organization, no tier, work and home addresses, an address with a custom
/// label, one with a country code only and no type, a biography.
pub(crate) fn sample_records(resource: &str) -> Option<Vec<Value>> {
    if resource != "contacts" {
        return None;
    }
    let store = Store::seed();
    Some(
        [0u64, 1, 3, 4, 7, 14, 20, 25, 37, 43, 52, 88, 150]
            .iter()
            .filter_map(|seq| store.people.get(&contact_id(*seq)))
            .map(|p| p.render(&SAMPLE_FIELDS))
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------
// Wire dialect

/// Google's JSON: pretty-printed unless the request says `prettyPrint=false`.
fn respond(info: &ReqInfo, status: StatusCode, body: &Value) -> Response {
    let pairs = info.pairs();
    let compact =
        last_param(&pairs, "prettyPrint").is_some_and(|v| v.eq_ignore_ascii_case("false"));
    let text = if compact {
        body.to_string()
    } else {
        serde_json::to_string_pretty(body).unwrap_or_else(|_| body.to_string())
    };
    let mut response = (status, text).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    response
}

fn html_not_found(info: &ReqInfo) -> Response {
    let page = format!(
        "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 404 (Not Found)!!1</title>\n  <p><b>404.</b> <ins>That’s an error.</ins>\n  <p>The requested URL <code>{}</code> was not found on this server.  <ins>That’s all we know.</ins>\n",
        info.path.strip_prefix(MOUNT).unwrap_or(&info.path)
    );
    let mut response = (StatusCode::NOT_FOUND, page).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=UTF-8"),
    );
    response
}

fn status_name(code: u16) -> &'static str {
    match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        500 => "INTERNAL",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "UNKNOWN",
    }
}

fn error_value(code: u16, status: &str, message: &str, details: Option<Value>) -> Value {
    let mut error = Map::new();
    error.insert("code".into(), json!(code));
    error.insert("message".into(), json!(message));
    error.insert("status".into(), json!(status));
    if let Some(details) = details {
        error.insert("details".into(), details);
    }
    json!({ "error": error })
}

fn google_error(info: &ReqInfo, code: StatusCode, status: &str, message: &str) -> Reject {
    respond(
        info,
        code,
        &error_value(code.as_u16(), status, message, None),
    )
    .into()
}

fn invalid_argument(info: &ReqInfo, message: &str) -> Reject {
    google_error(info, StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
}

/// 400 for a JSON body Google cannot map onto a `Person`.
fn bad_payload(info: &ReqInfo, field: &str, description: &str) -> Reject {
    let details = json!([{
        "@type": "type.googleapis.com/google.rpc.BadRequest",
        "fieldViolations": [{ "field": field, "description": description }],
    }]);
    respond(
        info,
        StatusCode::BAD_REQUEST,
        &error_value(400, "INVALID_ARGUMENT", description, Some(details)),
    )
    .into()
}

fn not_found(info: &ReqInfo) -> Reject {
    google_error(
        info,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "Requested entity was not found.",
    )
}

/// The RPC a path maps to, as Google names it in `ErrorInfo.metadata.method`.
fn rpc_method(info: &ReqInfo) -> &'static str {
    let path = info.path.as_str();
    if path.ends_with("/people/me/connections") {
        "ListConnections"
    } else if path.ends_with("people:batchGet") {
        "GetPeople"
    } else if path.ends_with("people:createContact") {
        "CreateContact"
    } else if path.ends_with(":updateContact") {
        "UpdateContact"
    } else if path.ends_with(":deleteContact") {
        "DeleteContact"
    } else {
        "GetPerson"
    }
}

impl Google {
    fn quota_exceeded(&self, info: &ReqInfo, limit: u32, status: StatusCode) -> Response {
        let (label, metric, limit_name) = if info.method == "GET" {
            (
                "Critical read requests (Contact and Profile Reads)",
                "people.googleapis.com/read_requests",
                "ReadRequestsPerMinutePerUser",
            )
        } else {
            (
                "Critical write requests (Contact and Profile Writes)",
                "people.googleapis.com/write_requests",
                "WriteRequestsPerMinutePerUser",
            )
        };
        let message = format!(
            "Quota exceeded for quota metric '{label}' and limit '{label} per minute per user' of service 'people.googleapis.com' for consumer 'project_number:{PROJECT_NUMBER}'."
        );
        let details = json!([{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "RATE_LIMIT_EXCEEDED",
            "domain": "googleapis.com",
            "metadata": {
                "quota_metric": metric,
                "quota_limit": limit_name,
                "quota_limit_value": limit.to_string(),
                "quota_location": "global",
                "service": "people.googleapis.com",
                "consumer": format!("projects/{PROJECT_NUMBER}"),
            }
        }]);
        respond(
            info,
            status,
            &error_value(429, "RESOURCE_EXHAUSTED", &message, Some(details)),
        )
    }
}

impl Dialect for Google {
    const PROVIDER: &'static str = PROVIDER;

    fn control(&self) -> &Control {
        &self.control
    }

    fn route_templates(&self) -> &HashSet<String> {
        &self.templates
    }

    fn credentials(&self, info: &ReqInfo) -> Option<String> {
        wire::bearer_token(&info.headers).or_else(|| {
            let pairs = info.pairs();
            last_param(&pairs, "access_token")
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
        })
    }

    fn fault_response(&self, info: &ReqInfo, status: StatusCode, body: Option<Value>) -> Response {
        if let Some(body) = body {
            return (status, axum::Json(body)).into_response();
        }
        match status.as_u16() {
            401 => self.auth_failure(info, AuthFailure::Unknown),
            429 => self.quota_exceeded(info, 90, status),
            code => {
                let message = match code {
                    500 => "Internal error encountered.",
                    503 => "The service is currently unavailable.",
                    _ => status.canonical_reason().unwrap_or("Error"),
                };
                respond(
                    info,
                    status,
                    &error_value(code, status_name(code), message, None),
                )
            }
        }
    }

    fn auth_failure(&self, info: &ReqInfo, failure: AuthFailure) -> Response {
        let (message, reason, challenge) = match failure {
            AuthFailure::Missing => (
                "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
                "CREDENTIALS_MISSING",
                "Bearer realm=\"https://accounts.google.com/\"",
            ),
            AuthFailure::Unknown => (
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
                "ACCESS_TOKEN_TYPE_UNSUPPORTED",
                "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"",
            ),
            AuthFailure::Expired => (
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
                "ACCESS_TOKEN_EXPIRED",
                "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"",
            ),
        };
        let details = json!([{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": reason,
            "domain": "googleapis.com",
            "metadata": {
                "service": "people.googleapis.com",
                "method": format!("google.people.v1.PeopleService.{}", rpc_method(info)),
            }
        }]);
        let mut response = respond(
            info,
            StatusCode::UNAUTHORIZED,
            &error_value(401, "UNAUTHENTICATED", message, Some(details)),
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
        response
    }

    fn throttled(&self, info: &ReqInfo, decision: &RateDecision) -> Response {
        self.quota_exceeded(info, decision.max, StatusCode::TOO_MANY_REQUESTS)
    }
}

// ---------------------------------------------------------------------------------------
// Masks, paging, tokens

/// `personFields` as validated paths; `None` when absent.
fn person_fields(
    info: &ReqInfo,
    param: &str,
    docs: &str,
) -> Result<Option<Vec<&'static str>>, Reject> {
    let pairs = info.pairs();
    let Some(raw) = last_param(&pairs, param).filter(|r| !r.trim().is_empty()) else {
        return Ok(None);
    };
    let mut fields = Vec::new();
    for path in split_list(raw) {
        let bare = path.strip_prefix("person.").unwrap_or(&path);
        let known = PERSON_FIELDS.iter().find(|f| **f == bare).ok_or_else(|| {
            invalid_argument(
                info,
                &format!(
                    "Invalid {param} mask path: \"{path}\". Valid paths are documented at {docs}."
                ),
            )
        })?;
        if !fields.contains(known) {
            fields.push(*known);
        }
    }
    Ok(Some(fields))
}

fn required_person_fields(info: &ReqInfo) -> Result<Vec<&'static str>, Reject> {
    person_fields(info, "personFields", LIST_DOCS)?.ok_or_else(|| {
        invalid_argument(
            info,
            &format!(
                "personFields mask is required. Please specify one or more valid paths. Valid paths are documented at {LIST_DOCS}."
            ),
        )
    })
}

fn sort_key(person: &Person, order: &str) -> String {
    let name = |key: &str| {
        person
            .name_key(key)
            .map_or_else(|| "1".to_owned(), |n| format!("0{n}"))
    };
    match order {
        "FIRST_NAME_ASCENDING" => name("givenName"),
        "LAST_NAME_ASCENDING" => name("familyName"),
        _ => format!("{:020}", person.update_time.timestamp_millis().max(0)),
    }
}

/// Where a page starts.
#[derive(Debug, PartialEq)]
enum Position {
    Start,
    /// After this sort key and contact id (a full listing).
    After(String, u64),
    /// After this position of the change log (a listing of changes).
    AfterChange(u64),
}

/// A page token: the position, and what the listing it belongs to is bound to.
#[derive(Debug, PartialEq)]
struct PageToken {
    order: String,
    position: Position,
    /// Digest of the listing's parameters but `pageToken`.
    params: String,
    /// The end of the change log when the listing began, when it issues or uses a sync
    /// token: what its last page's `nextSyncToken` points at.
    snapshot: Option<u64>,
}

fn encode_token(token: &PageToken) -> String {
    let mut body = json!({
        "o": token.order,
        "p": token.params,
        "s": token.snapshot.map(|s| s.to_string()),
        "k": null,
        "i": null,
    });
    match &token.position {
        Position::Start => {}
        Position::After(key, id) => {
            body["k"] = json!(key);
            body["i"] = json!(id.to_string());
        }
        Position::AfterChange(change) => body["c"] = json!(change.to_string()),
    }
    URL_SAFE_NO_PAD.encode(body.to_string())
}

fn decode_token(raw: &str) -> Option<PageToken> {
    let value = decode_json(raw)?;
    let number = |key: &str| -> Option<Option<u64>> {
        match value.get(key)? {
            Value::Null => Some(None),
            Value::String(s) => s.parse().ok().map(Some),
            _ => None,
        }
    };
    let position = match value.get("c") {
        Some(Value::String(c)) => Position::AfterChange(c.parse().ok()?),
        Some(_) => return None,
        None => match (value.get("k")?, value.get("i")?) {
            (Value::Null, Value::Null) => Position::Start,
            (Value::String(k), Value::String(i)) => Position::After(k.clone(), i.parse().ok()?),
            _ => return None,
        },
    };
    Some(PageToken {
        order: value.get("o")?.as_str()?.to_owned(),
        position,
        params: value.get("p")?.as_str()?.to_owned(),
        snapshot: number("s")?,
    })
}

fn decode_json(raw: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD
        .decode(raw.trim().trim_end_matches('=').as_bytes())
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A sync token: a position in the change log, and the call that asked for it.
#[derive(Debug, PartialEq)]
struct SyncToken {
    generation: u64,
    change: u64,
    issued_at: DateTime<Utc>,
    /// Digest of that call's parameters but `pageToken` and `syncToken`.
    params: String,
}

fn encode_sync_token(token: &SyncToken) -> String {
    let body = json!({
        "g": token.generation.to_string(),
        "c": token.change.to_string(),
        "t": token.issued_at.timestamp_millis().to_string(),
        "p": token.params,
    });
    URL_SAFE_NO_PAD.encode(body.to_string())
}

fn decode_sync_token(raw: &str) -> Option<SyncToken> {
    let value = decode_json(raw)?;
    let number = |key: &str| value.get(key)?.as_str()?.parse::<u64>().ok();
    let millis = value.get("t")?.as_str()?.parse::<i64>().ok()?;
    Some(SyncToken {
        generation: number("g")?,
        change: number("c")?,
        issued_at: DateTime::from_timestamp_millis(millis)?,
        params: value.get("p")?.as_str()?.to_owned(),
    })
}

/// What a token is bound to: the call's parameters but `without` and the system ones, in
/// a canonical order, digested.
fn params_digest(pairs: &[(String, String)], without: &[&str]) -> String {
    use sha2::Digest as _;
    let mut kept: Vec<&(String, String)> = pairs
        .iter()
        .filter(|(k, _)| !without.contains(&k.as_str()) && !SYSTEM_PARAMS.contains(&k.as_str()))
        .collect();
    kept.sort();
    let canonical = serde_json::to_string(&kept).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(&sha2::Sha256::digest(canonical.as_bytes())[..12])
}

fn compare(order: &str, a: (&str, u64), b: (&str, u64)) -> CmpOrdering {
    let asc = a.cmp(&b);
    if order == "LAST_MODIFIED_DESCENDING" {
        asc.reverse()
    } else {
        asc
    }
}

/// `people/me` and `people/{account_id}`: profiles, which exist only for real accounts.
fn is_profile(id: &str) -> bool {
    id == "me" || (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
}

/// `c123` (the part after `people/`) → contact id.
fn parse_contact(id: &str) -> Option<u64> {
    let digits = id.strip_prefix('c')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

// ---------------------------------------------------------------------------------------
// Write bodies

fn snake(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

struct ParsedPerson {
    etag: Option<String>,
    source_etags: Vec<String>,
    /// Stored fields present in the body.
    fields: BTreeMap<&'static str, Vec<Map<String, Value>>>,
}

fn unknown_name(info: &ReqInfo, name: &str, at: &str) -> Reject {
    bad_payload(
        info,
        at,
        &format!(
            "Invalid JSON payload received. Unknown name \"{name}\" at '{at}': Cannot find field."
        ),
    )
}

fn parse_person(info: &ReqInfo, body: &Bytes) -> Result<ParsedPerson, Reject> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| bad_payload(info, "", &format!("Invalid JSON payload received. {e}")))?;
    let Value::Object(obj) = value else {
        return Err(bad_payload(
            info,
            "",
            "Invalid JSON payload received. Expected an object for 'person'.",
        ));
    };
    let mut parsed = ParsedPerson {
        etag: None,
        source_etags: Vec::new(),
        fields: BTreeMap::new(),
    };
    for (key, v) in &obj {
        match key.as_str() {
            "resourceName" => {}
            "etag" => parsed.etag = v.as_str().map(str::to_owned),
            "metadata" => {
                if let Some(sources) = v.get("sources").and_then(Value::as_array) {
                    parsed.source_etags = sources
                        .iter()
                        .filter_map(|s| s.get("etag").and_then(Value::as_str))
                        .map(str::to_owned)
                        .collect();
                }
            }
            field => {
                if !PERSON_FIELDS.contains(&field) {
                    return Err(unknown_name(info, field, "person"));
                }
                let Some((name, writable, output)) = STORED_FIELDS
                    .iter()
                    .find(|(f, _, _)| *f == field)
                    .map(|(f, w, o)| (*f, *w, *o))
                else {
                    continue; // a valid person field the sandbox does not store
                };
                let items = match v {
                    Value::Null => Vec::new(),
                    Value::Array(items) => items.clone(),
                    other => {
                        return Err(bad_payload(
                            info,
                            &format!("person.{}", snake(name)),
                            &format!(
                                "Invalid value at 'person.{}' (type.googleapis.com/google.people.v1.{}), {other}",
                                snake(name),
                                name
                            ),
                        ));
                    }
                };
                let mut stored = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let at = format!("person.{}[{i}]", snake(name));
                    let Value::Object(item) = item else {
                        return Err(bad_payload(
                            info,
                            &at,
                            &format!("Invalid value at '{at}', {item}"),
                        ));
                    };
                    let mut kept = Map::new();
                    for (k, val) in item {
                        if k == "metadata" || output.contains(&k.as_str()) {
                            continue;
                        }
                        if !writable.contains(&k.as_str()) {
                            return Err(unknown_name(info, k, &at));
                        }
                        match val {
                            Value::Null => {}
                            Value::String(s) if s.trim().is_empty() => {}
                            Value::String(s) => {
                                kept.insert(k.clone(), json!(s));
                            }
                            other => {
                                let at = format!("{at}.{}", snake(k));
                                return Err(bad_payload(
                                    info,
                                    &at,
                                    &format!("Invalid value at '{at}' (TYPE_STRING), {other}"),
                                ));
                            }
                        }
                    }
                    if name == "userDefined"
                        && (!kept.contains_key("key") || !kept.contains_key("value"))
                    {
                        return Err(invalid_argument(
                            info,
                            "Invalid userDefined: both key and value must be set.",
                        ));
                    }
                    if !kept.is_empty() {
                        stored.push(kept);
                    }
                }
                if SINGLE_ITEM_FIELDS.contains(&name) && stored.len() > 1 {
                    return Err(invalid_argument(
                        info,
                        &format!("Only one {name} field may be set per contact."),
                    ));
                }
                parsed.fields.insert(name, stored);
            }
        }
    }
    Ok(parsed)
}

// ---------------------------------------------------------------------------------------
// Handlers

impl Google {
    fn list(&self, info: &ReqInfo) -> Result<Response, Reject> {
        let fields = required_person_fields(info)?;
        let pairs = info.pairs();
        let page_size = match last_param(&pairs, "pageSize") {
            None => DEFAULT_PAGE_SIZE,
            Some(raw) => match raw.trim().parse::<i64>() {
                Ok(0) => DEFAULT_PAGE_SIZE,
                Ok(n) => usize::try_from(n)
                    .ok()
                    .filter(|n| *n <= MAX_PAGE_SIZE)
                    .ok_or_else(|| {
                        invalid_argument(info, "Page size must be between 0 and 1000, inclusive.")
                    })?,
                Err(_) => {
                    return Err(invalid_argument(
                        info,
                        &format!("Invalid value at 'page_size' (TYPE_INT32), \"{raw}\""),
                    ));
                }
            },
        };
        let order = match last_param(&pairs, "sortOrder") {
            None => SORT_ORDERS[0],
            Some(raw) => SORT_ORDERS.iter().copied().find(|o| *o == raw).ok_or_else(|| {
                invalid_argument(
                    info,
                    &format!("Invalid value at 'sort_order' (type.googleapis.com/google.people.v1.ListConnectionsRequest.SortOrder), \"{raw}\""),
                )
            })?,
        };
        for source in all_params(&pairs, "sources") {
            if !READ_SOURCES.contains(&source) {
                return Err(invalid_argument(
                    info,
                    &format!(
                        "Invalid value at 'sources' (type.googleapis.com/google.people.v1.ReadSourceType), \"{source}\""
                    ),
                ));
            }
        }
        let request_sync = match last_param(&pairs, "requestSyncToken") {
            None => false,
            Some(raw) => match raw.trim() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(invalid_argument(
                        info,
                        &format!("Invalid value at 'request_sync_token' (TYPE_BOOL), \"{raw}\""),
                    ));
                }
            },
        };
        let sync = match last_param(&pairs, "syncToken").filter(|t| !t.trim().is_empty()) {
            None => None,
            Some(raw) => Some(self.accept_sync_token(info, &pairs, raw)?),
        };
        let bound_to = params_digest(&pairs, &["pageToken"]);
        let page_token = match last_param(&pairs, "pageToken").filter(|t| !t.trim().is_empty()) {
            None => None,
            Some(raw) => Some(
                decode_token(raw)
                    .filter(|t| t.order == order && t.params == bound_to)
                    .ok_or_else(|| {
                        invalid_argument(info, "Request contains an invalid argument.")
                    })?,
            ),
        };
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
        // The end of the change log when the listing began: later writes are the next
        // token's.
        let snapshot = match &page_token {
            Some(t) => t.snapshot,
            None => (request_sync || sync.is_some()).then(|| store.last_change()),
        };
        let (connections, last, total) = match &sync {
            Some(since) => {
                let after = match page_token.as_ref().map(|t| &t.position) {
                    Some(Position::AfterChange(c)) => *c,
                    None | Some(Position::Start) => since.change,
                    Some(Position::After(..)) => {
                        return Err(invalid_argument(
                            info,
                            "Request contains an invalid argument.",
                        ));
                    }
                };
                changes_page(&store, &fields, since.change, after, snapshot, page_size)
            }
            None => {
                let position = match page_token.map(|t| t.position) {
                    None | Some(Position::Start) => Position::Start,
                    Some(Position::AfterChange(_)) => {
                        return Err(invalid_argument(
                            info,
                            "Request contains an invalid argument.",
                        ));
                    }
                    Some(p) => p,
                };
                full_page(&store, &fields, order, &position, page_size)
            }
        };
        drop(store);
        let token = |position: Position| {
            encode_token(&PageToken {
                order: order.to_owned(),
                position,
                params: bound_to.clone(),
                snapshot,
            })
        };
        let next = if repeat {
            let sent = last_param(&pairs, "pageToken").filter(|t| !t.trim().is_empty());
            Some(sent.map_or_else(|| token(Position::Start), str::to_owned))
        } else {
            last.map(token)
        };
        let next_sync = match (next.is_none() && request_sync, snapshot) {
            (true, Some(change)) => Some(self.issue_sync_token(&pairs, change)),
            _ => None,
        };

        let mut body = Map::new();
        if !connections.is_empty() {
            body.insert("connections".into(), Value::Array(connections));
        }
        if let Some(next) = next {
            body.insert("nextPageToken".into(), json!(next));
        }
        if let Some(next_sync) = next_sync {
            body.insert("nextSyncToken".into(), json!(next_sync));
        }
        if total > 0 {
            body.insert("totalPeople".into(), json!(total));
            body.insert("totalItems".into(), json!(total));
        }
        Ok(respond(info, StatusCode::OK, &Value::Object(body)))
    }

    /// A `syncToken` that may be used: one this sandbox issued, still alive, sent with the
    /// parameters of the call that asked for it.
    fn accept_sync_token(
        &self,
        info: &ReqInfo,
        pairs: &[(String, String)],
        raw: &str,
    ) -> Result<SyncToken, Reject> {
        let token = decode_sync_token(raw)
            .ok_or_else(|| invalid_argument(info, "Request contains an invalid argument."))?;
        let mut sync = self.sync();
        let dead = token.generation < sync.generation
            || token
                .issued_at
                .checked_add_signed(sync.lifetime)
                .is_none_or(|end| end <= Utc::now());
        if dead {
            sync.expired_refusals = sync.expired_refusals.saturating_add(1);
            drop(sync);
            let details = json!([{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "EXPIRED_SYNC_TOKEN",
                "domain": "people.googleapis.com",
            }]);
            return Err(respond(
                info,
                StatusCode::BAD_REQUEST,
                &error_value(
                    400,
                    "FAILED_PRECONDITION",
                    "Sync token is expired. Clear local cache and retry call without the sync token.",
                    Some(details),
                ),
            )
            .into());
        }
        if token.params != params_digest(pairs, &["pageToken", "syncToken"]) {
            return Err(invalid_argument(
                info,
                "Request contains an invalid argument.",
            ));
        }
        sync.change_listings = sync.change_listings.saturating_add(1);
        Ok(token)
    }

    fn issue_sync_token(&self, pairs: &[(String, String)], change: u64) -> String {
        let mut sync = self.sync();
        sync.issued = sync.issued.saturating_add(1);
        encode_sync_token(&SyncToken {
            generation: sync.generation,
            change,
            issued_at: Utc::now(),
            params: params_digest(pairs, &["pageToken", "syncToken"]),
        })
    }

    fn batch_get(&self, info: &ReqInfo) -> Result<Response, Reject> {
        let fields = required_person_fields(info)?;
        let pairs = info.pairs();
        let names = all_params(&pairs, "resourceNames");
        if names.is_empty() {
            return Err(invalid_argument(
                info,
                "Request must specify at least one resourceNames value.",
            ));
        }
        if names.len() > MAX_BATCH_GET {
            return Err(invalid_argument(
                info,
                &format!(
                    "Too many resourceNames: at most {MAX_BATCH_GET} may be requested at once."
                ),
            ));
        }
        let store = self.read();
        let responses: Vec<Value> = names
            .iter()
            .map(|name| {
                // Some(None): a well-formed name nobody has; None: malformed.
                let found: Option<Option<&Person>> = match name.strip_prefix("people/") {
                    None => None,
                    Some(id) if is_profile(id) => Some(None),
                    Some(id) => parse_contact(id).map(|id| store.people.get(&id)),
                };
                match found {
                    Some(Some(person)) => json!({
                        "httpStatusCode": 200,
                        "person": person.render(&fields),
                        "requestedResourceName": name,
                        "status": { "code": 0 },
                    }),
                    Some(None) => json!({
                        "httpStatusCode": 404,
                        "requestedResourceName": name,
                        "status": { "code": 5, "message": "Requested entity was not found." },
                    }),
                    None => json!({
                        "httpStatusCode": 400,
                        "requestedResourceName": name,
                        "status": {
                            "code": 3,
                            "message": format!("Resource name \"{name}\" is not a valid person resource name."),
                        },
                    }),
                }
            })
            .collect();
        drop(store);
        Ok(respond(
            info,
            StatusCode::OK,
            &json!({ "responses": responses }),
        ))
    }

    fn create(&self, info: &ReqInfo, body: &Bytes) -> Result<Response, Reject> {
        let fields = person_fields(info, "personFields", LIST_DOCS)?
            .unwrap_or_else(|| PERSON_FIELDS.to_vec());
        let parsed = parse_person(info, body)?;
        let mut store = self.write();
        let id = store.allocate_id();
        let person = Person {
            id,
            version: 0,
            update_time: Utc::now(),
            fields: parsed
                .fields
                .into_iter()
                .filter(|(_, items)| !items.is_empty())
                .map(|(name, items)| (name.to_owned(), items))
                .collect(),
            changed: store.next_change(),
        };
        let rendered = person.render(&fields);
        store.people.insert(id, person);
        drop(store);
        Ok(respond(info, StatusCode::OK, &rendered))
    }

    /// `people/{id}` with an optional `:verb` suffix: get, `:updateContact`,
    /// `:deleteContact`.
    fn item(
        &self,
        info: &ReqInfo,
        id: Result<Path<String>, PathRejection>,
        body: Option<&Bytes>,
    ) -> Result<Response, Reject> {
        let Ok(Path(raw)) = id else {
            return Ok(html_not_found(info));
        };
        let (id, verb) = match raw.split_once(':') {
            Some((id, verb)) => (id.to_owned(), Some(verb.to_owned())),
            None => (raw, None),
        };
        match (info.method.as_str(), verb.as_deref()) {
            ("GET", None) => self.get_one(info, &id),
            ("PATCH", Some("updateContact")) => {
                self.update(info, &id, body.unwrap_or(&Bytes::new()))
            }
            ("DELETE", Some("deleteContact")) => self.delete(info, &id),
            _ => Ok(html_not_found(info)),
        }
    }

    fn lookup_id(&self, info: &ReqInfo, id: &str) -> Result<u64, Reject> {
        if id.is_empty() || is_profile(id) {
            // Profiles (people/{account_id}, people/me) exist only for real accounts.
            return Err(not_found(info));
        }
        parse_contact(id).ok_or_else(|| {
            invalid_argument(
                info,
                &format!("Resource name \"people/{id}\" is not a valid person resource name."),
            )
        })
    }

    fn get_one(&self, info: &ReqInfo, id: &str) -> Result<Response, Reject> {
        let fields = required_person_fields(info)?;
        let id = self.lookup_id(info, id)?;
        let store = self.read();
        let person = store.people.get(&id).ok_or_else(|| not_found(info))?;
        Ok(respond(info, StatusCode::OK, &person.render(&fields)))
    }

    fn update(&self, info: &ReqInfo, id: &str, body: &Bytes) -> Result<Response, Reject> {
        let id = self.lookup_id(info, id)?;
        let mask = person_fields(info, "updatePersonFields", UPDATE_DOCS)?.ok_or_else(|| {
            invalid_argument(
                info,
                &format!(
                    "updatePersonFields mask is required. Please specify one or more valid paths. Valid paths are documented at {UPDATE_DOCS}."
                ),
            )
        })?;
        if let Some(bad) = mask.iter().find(|f| !UPDATABLE_FIELDS.contains(f)) {
            return Err(invalid_argument(
                info,
                &format!(
                    "Invalid updatePersonFields mask path: \"{bad}\". Valid paths are documented at {UPDATE_DOCS}."
                ),
            ));
        }
        let fields = person_fields(info, "personFields", LIST_DOCS)?
            .unwrap_or_else(|| PERSON_FIELDS.to_vec());
        let parsed = parse_person(info, body)?;
        let mut store = self.write();
        let person = store.people.get_mut(&id).ok_or_else(|| not_found(info))?;
        if parsed.etag.is_none() && parsed.source_etags.is_empty() {
            return Err(invalid_argument(
                info,
                "Request must set person.etag or person.metadata.sources.etag for the source that is being updated.",
            ));
        }
        let fresh = parsed.etag.as_deref() == Some(person.etag().as_str())
            || (parsed.etag.is_none() && parsed.source_etags.contains(&person.source_etag()));
        if !fresh {
            return Err(google_error(
                info,
                StatusCode::BAD_REQUEST,
                "FAILED_PRECONDITION",
                "Request person.etag is different than the current person.etag. Clear local cache and get the latest person.",
            ));
        }
        for field in mask {
            if stored_field(field).is_none() {
                continue;
            }
            match parsed.fields.get(field).filter(|items| !items.is_empty()) {
                Some(items) => {
                    person.fields.insert(field.to_owned(), items.clone());
                }
                None => {
                    person.fields.remove(field);
                }
            }
        }
        person.version = person.version.saturating_add(1);
        person.update_time = Utc::now().max(person.update_time);
        let rendered = person.render(&fields);
        let change = store.next_change();
        if let Some(person) = store.people.get_mut(&id) {
            person.changed = change;
        }
        drop(store);
        Ok(respond(info, StatusCode::OK, &rendered))
    }

    fn delete(&self, info: &ReqInfo, id: &str) -> Result<Response, Reject> {
        let id = self.lookup_id(info, id)?;
        let mut store = self.write();
        store.delete(id).ok_or_else(|| not_found(info))?;
        drop(store);
        Ok(respond(info, StatusCode::OK, &json!({})))
    }
}

/// A page of the full listing from `position`: its connections, the position after its
/// last one when more follow, and the size of the listing.
fn full_page(
    store: &Store,
    fields: &[&str],
    order: &str,
    position: &Position,
    page_size: usize,
) -> (Vec<Value>, Option<Position>, usize) {
    let mut rows: Vec<(String, &Person)> = store
        .people
        .values()
        .map(|p| (sort_key(p, order), p))
        .collect();
    rows.sort_by(|a, b| compare(order, (&a.0, a.1.id), (&b.0, b.1.id)));
    let start = match position {
        Position::After(key, id) => rows
            .iter()
            .position(|(k, p)| compare(order, (k, p.id), (key, *id)) == CmpOrdering::Greater)
            .unwrap_or(rows.len()),
        Position::Start | Position::AfterChange(_) => 0,
    };
    let page: Vec<&(String, &Person)> = rows.iter().skip(start).take(page_size).collect();
    let more = start.saturating_add(page.len()) < rows.len();
    let connections = page.iter().map(|(_, p)| p.render(fields)).collect();
    let last = if more {
        page.last().map(|(k, p)| Position::After(k.clone(), p.id))
    } else {
        None
    };
    (connections, last, rows.len())
}

/// One entry of a listing of changes.
enum Changed<'a> {
    Written(&'a Person),
    Deleted(&'a Tombstone),
}

impl Changed<'_> {
    fn at(&self) -> u64 {
        match self {
            Changed::Written(p) => p.changed,
            Changed::Deleted(t) => t.changed,
        }
    }
}

/// A page of the changes after position `since` of the change log, up to `snapshot`, in
/// log order, from position `after`: as [`full_page`].
fn changes_page(
    store: &Store,
    fields: &[&str],
    since: u64,
    after: u64,
    snapshot: Option<u64>,
    page_size: usize,
) -> (Vec<Value>, Option<Position>, usize) {
    let end = snapshot.unwrap_or(u64::MAX);
    let mut entries: Vec<Changed<'_>> = store
        .people
        .values()
        .map(Changed::Written)
        .chain(store.tombstones.iter().map(Changed::Deleted))
        .filter(|c| c.at() > since && c.at() <= end)
        .collect();
    entries.sort_by_key(Changed::at);
    let total = entries.len();
    let rest: Vec<&Changed<'_>> = entries.iter().filter(|c| c.at() > after).collect();
    let page = &rest[..rest.len().min(page_size)];
    let connections = page
        .iter()
        .map(|c| match c {
            Changed::Written(p) => p.render(fields),
            Changed::Deleted(t) => t.render(),
        })
        .collect();
    let last = if rest.len() > page.len() {
        page.last().map(|c| Position::AfterChange(c.at()))
    } else {
        None
    };
    (connections, last, total)
}

// ---------------------------------------------------------------------------------------
// /_control/google/sync-tokens

async fn sync_tokens_report(State(g): State<Arc<Google>>) -> Response {
    axum::Json(g.sync().report()).into_response()
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SyncTokenSettings {
    lifetime_seconds: i64,
}

/// `PUT {"lifetimeSeconds": N}`: tokens older than N seconds are expired (0: all of them).
async fn set_sync_tokens(State(g): State<Arc<Google>>, body: Bytes) -> Result<Response, Reject> {
    let settings: SyncTokenSettings = parse_body(&body)?;
    let lifetime = (settings.lifetime_seconds >= 0)
        .then(|| chrono::Duration::try_seconds(settings.lifetime_seconds))
        .flatten()
        .ok_or_else(|| {
            control_error(
                StatusCode::BAD_REQUEST,
                "lifetimeSeconds must be a number of seconds, 0 or more",
            )
        })?;
    let mut sync = g.sync();
    sync.lifetime = lifetime;
    Ok(axum::Json(sync.report()).into_response())
}

/// Every sync token issued so far is expired from now on.
async fn expire_sync_tokens(State(g): State<Arc<Google>>) -> Response {
    let mut sync = g.sync();
    sync.generation = sync.generation.saturating_add(1);
    axum::Json(sync.report()).into_response()
}

// ---------------------------------------------------------------------------------------
// OAuth (vendors.md §6 Auth; machinery in oauth.rs), served at `/google/o/oauth2/v2/auth`
// (accounts.google.com), `/google/token` and `/google/revoke` (oauth2.googleapis.com).
//
// Choices: a refresh token comes only with `access_type=offline`, and only on the first
// consent of the client (again with `prompt=consent`, or once the earlier code-flow grant
// is revoked); grants seeded through `/_control/oauth/grant` do not count as that consent.
// Refresh answers never repeat the refresh token (unless rotation is switched on). An
// `id_token` (a JWT-shaped string, not verifiable) comes with the `openid` scope. The
// client may authenticate with HTTP Basic or body parameters. Revoking an access or a
// refresh token revokes the whole grant (200 `{}`); an unknown token is 400
// `invalid_token`. The authorization page's refusals are HTML error pages with 400.

static OAUTH: Profile = Profile {
    provider: PROVIDER,
    client_id: GOOGLE_CLIENT_ID,
    client_secret: GOOGLE_CLIENT_SECRET,
    access_lifetime_secs: 3599,
    code_lifetime_secs: 600,
    rotates: false,
    always_rotates: false,
    echoes_refresh_token: false,
    client_credentials: false,
    basic_auth: true,
    query_params: false,
    refresh_rule: RefreshRule::OfflineFirstConsent,
    prefixes: Prefixes {
        access: "ya29.a0",
        refresh: "1//0g",
        code: "4/0A",
    },
};

const DEFAULT_OAUTH_SCOPE: &str = "https://www.googleapis.com/auth/contacts";
/// The `sub` of the sandbox user.
const OAUTH_SUBJECT: &str = "110169484474386276334";

/// A JWT-shaped OpenID Connect ID token; the signature part is a digest, not RS256.
fn id_token(issued: &Issued) -> String {
    use sha2::Digest as _;
    let header = json!({ "alg": "RS256", "kid": "sandbox", "typ": "JWT" });
    let claims = json!({
        "iss": "https://accounts.google.com",
        "azp": issued.client_id,
        "aud": issued.client_id,
        "sub": OAUTH_SUBJECT,
        "email": "sandbox.user@example.com",
        "email_verified": true,
        "iat": issued.issued_at.timestamp(),
        "exp": issued.expires_at.timestamp(),
    });
    let header = URL_SAFE_NO_PAD.encode(header.to_string());
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signature = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(
        format!("{header}.{claims}").as_bytes(),
    ));
    format!("{header}.{claims}.{signature}")
}

fn oauth_html_error(title: &str, detail: &str) -> Response {
    let page = format!(
        "<!DOCTYPE html><html lang=en><meta charset=utf-8><title>Error 400 (Bad Request)</title><p><b>Access blocked: Authorization Error</b></p><p>{detail}</p><p>{title}</p></html>"
    );
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/html; charset=UTF-8")],
        page,
    )
        .into_response()
}

impl OAuthShape for Google {
    fn oauth_profile(&self) -> &'static Profile {
        &OAUTH
    }

    fn oauth_control(&self) -> &Control {
        &self.control
    }

    fn token_body(&self, issued: &Issued) -> Value {
        let scope = match issued.scope_items() {
            items if items.is_empty() => DEFAULT_OAUTH_SCOPE.to_owned(),
            items => items.join(" "),
        };
        let mut body = Map::new();
        body.insert("access_token".into(), json!(issued.access_token));
        body.insert("expires_in".into(), json!(issued.expires_in));
        if let Some(refresh) = &issued.refresh_token {
            body.insert("refresh_token".into(), json!(refresh));
        }
        body.insert("scope".into(), json!(scope));
        body.insert("token_type".into(), json!("Bearer"));
        if issued.has_scope("openid") {
            body.insert("id_token".into(), json!(id_token(issued)));
        }
        Value::Object(body)
    }

    fn token_error(&self, error: &TokenError) -> Response {
        let bad = StatusCode::BAD_REQUEST;
        match error {
            TokenError::ContentType | TokenError::MissingGrantType => oauth2_error(
                bad,
                "invalid_request",
                "Required parameter is missing: grant_type",
            ),
            TokenError::UnsupportedGrant(grant) => oauth2_error(
                bad,
                "unsupported_grant_type",
                &format!("Invalid grant_type: {grant}"),
            ),
            TokenError::MissingClient => oauth2_error(
                bad,
                "invalid_request",
                "Could not determine client ID from request.",
            ),
            TokenError::UnknownClient(_) => oauth2_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "The OAuth client was not found.",
            ),
            TokenError::BadSecret => {
                oauth2_error(StatusCode::UNAUTHORIZED, "invalid_client", "Unauthorized")
            }
            TokenError::BadCode | TokenError::CodeUsed | TokenError::CodeExpired => {
                oauth2_error(bad, "invalid_grant", "Bad Request")
            }
            TokenError::RedirectMismatch => {
                oauth2_error(bad, "redirect_uri_mismatch", "Bad Request")
            }
            TokenError::BadVerifier => oauth2_error(bad, "invalid_grant", "Invalid code verifier."),
            TokenError::BadRefreshToken => {
                oauth2_error(bad, "invalid_grant", "Token has been expired or revoked.")
            }
        }
    }

    fn authorize_error(&self, error: &AuthorizeError) -> Response {
        match error {
            AuthorizeError::MissingClient => oauth_html_error(
                "Error 400: invalid_request",
                "Missing required parameter: client_id",
            ),
            AuthorizeError::UnknownClient(_) => oauth_html_error(
                "Error 401: invalid_client",
                "The OAuth client was not found.",
            ),
            AuthorizeError::MissingRedirect => oauth_html_error(
                "Error 400: invalid_request",
                "Missing required parameter: redirect_uri",
            ),
            AuthorizeError::BadRedirect(_) => oauth_html_error(
                "Error 400: redirect_uri_mismatch",
                "You can't sign in to this app because it doesn't comply with Google's OAuth 2.0 policy.",
            ),
        }
    }
}

/// `/revoke?token=` (or the form body): the whole grant goes, 200 `{}`.
async fn revoke_token(State(g): State<Arc<Google>>, info: ReqInfo, body: Bytes) -> Response {
    let mut params = info.pairs();
    params.extend(url::form_urlencoded::parse(&body).into_owned());
    let token = last_param(&params, "token").unwrap_or_default();
    let revoked = oauth::revoke_refresh_token(&g.control, PROVIDER, token, true)
        .or_else(|| oauth::revoke_access_token(&g.control, PROVIDER, token, true));
    match revoked {
        Some(_) => axum::Json(json!({})).into_response(),
        None => oauth2_error(
            StatusCode::BAD_REQUEST,
            "invalid_token",
            "Token expired or revoked",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_refuse_junk() {
        for position in [
            Position::Start,
            Position::After("00000000001".into(), 42),
            Position::AfterChange(7),
        ] {
            let token = PageToken {
                order: "LAST_MODIFIED_ASCENDING".into(),
                position,
                params: "abc".into(),
                snapshot: Some(9),
            };
            assert_eq!(decode_token(&encode_token(&token)), Some(token));
        }
        for junk in ["", "GgYKAghkEAI", "e30", "!!"] {
            assert!(decode_token(junk).is_none(), "{junk}");
            assert!(decode_sync_token(junk).is_none(), "{junk}");
        }
        let sync = SyncToken {
            generation: 3,
            change: 12,
            issued_at: DateTime::from_timestamp_millis(1_700_000_000_123).unwrap(),
            params: "xyz".into(),
        };
        assert_eq!(decode_sync_token(&encode_sync_token(&sync)), Some(sync));
    }

    #[test]
    fn tokens_are_bound_to_every_other_parameter_but_system_ones() {
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let first = pairs(&[("personFields", "names"), ("pageSize", "5")]);
        let reordered = pairs(&[
            ("pageSize", "5"),
            ("prettyPrint", "false"),
            ("personFields", "names"),
            ("pageToken", "x"),
        ]);
        let other = pairs(&[("personFields", "names"), ("pageSize", "6")]);
        let digest = |p: &[(String, String)]| params_digest(p, &["pageToken"]);
        assert_eq!(digest(&first), digest(&reordered));
        assert_ne!(digest(&first), digest(&other));
    }

    #[test]
    fn contact_resource_names_parse() {
        assert_eq!(parse_contact("c123"), Some(123));
        assert_eq!(parse_contact("c"), None);
        assert_eq!(parse_contact("123"), None);
        assert_eq!(parse_contact("c12x"), None);
        assert_eq!(parse_contact("c99999999999999999999999"), None);
        assert_eq!(snake("emailAddresses"), "email_addresses");
    }
}
