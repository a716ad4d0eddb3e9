//! Microsoft Graph v1.0 Outlook contacts (`/me/contacts`) and JSON `$batch`, as described
//! in `/work/shared/vendors.md` §5, served under `/graph` (so a client's base URL is
//! `http://host/graph/v1.0`). Graph has no companies or deals for Outlook contacts: the
//! sandbox serves contacts only.
//!
//! Change notifications (`/v1.0/subscriptions`, with the validation handshake) live in
//! `msgraph_webhooks.rs`; every contact created, updated or deleted (`$batch` included) is
//! reported to them.
//!
//! Every request passes the shared gate (`wire::gate`). `$batch` itself is not charged to
//! the rate-limit window; each of its sub-requests is, and a throttled sub-request gets
//! its own 429 with `Retry-After`, as Outlook does.
//!
//! Choices where vendors.md is silent or tagged [M]:
//! - Default throttling window: 10,000 requests per 10 min per token (Outlook's per-app,
//!   per-mailbox limit). No rate headers; 429s carry `Retry-After` (whole seconds until a
//!   slot frees up, at least 1).
//! - 401 messages: "Access token is empty." without credentials, "Access token validation
//!   failure." for unknown tokens, "Access token has expired or is not yet valid." for
//!   expired ones; all with a `WWW-Authenticate: Bearer ...` header.
//! - `$top` must be 1..=1000 and `$skip` a non-negative integer, else 400 `BadRequest`.
//!   `$orderby`, `$search`, `$expand` and `$count` are not modelled and are rejected with
//!   400 rather than silently ignored.
//! - `$filter` on the listing: the forms Outlook contacts answer and clients use, joined
//!   by `and`: `emailAddresses/any(a:a/address eq 'x')` (string literals double a quote:
//!   `'o''brien@x'`; the address compares case-insensitively, as Exchange does) and
//!   `createdDateTime`/`lastModifiedDateTime` with `eq ne gt ge lt le` and a
//!   DateTimeOffset literal (`2024-01-01T00:00:00Z`, unquoted). A syntax error is 400
//!   `BadRequest` "Invalid filter clause: ..."; an unknown property is 400
//!   `RequestBroker--ParseUri`; a date compared with a string is OData's "binary operator
//!   with incompatible types" 400; other valid OData (`or`, `not`, functions, other
//!   properties) is not modelled and is 400 rather than ignored. `$filter` on a single
//!   contact is 400 (query option not allowed).
//! - Paging order is mailbox (creation) order; `@odata.nextLink` is absolute, keeps the
//!   request's other options (so a `$filter` keeps applying) and carries `$top` and
//!   `$skip` (counted within the filtered set).
//! - Write bodies: unknown properties are 400 `RequestBodyRead`; server-managed ones (`id`,
//!   timestamps, `changeKey`, `parentFolderId`, `@odata.*` annotations and the derived
//!   `primary/secondary/tertiaryEmailAddress`) are ignored. An email entry without `name`
//!   gets its address as name. `displayName` is composed from the name parts when not
//!   given, and recomposed on update while it still equals the composed name.
//! - `If-Match` on PATCH/DELETE is honoured: a stale etag is 412 `ErrorIrresolvableConflict`.
//! - Faults: `repeat_cursor` makes `@odata.nextLink` the very request URL; `out_of_range`
//!   makes it point past the end of the mailbox, where Graph answers an empty `value`
//!   with no further link (as it does for any `$skip` beyond the end).
//! - `$batch`: at most 20 requests, unique ids, relative URLs under `/me/contacts`;
//!   sub-responses come back in request order; `dependsOn` is accepted (requests run
//!   sequentially anyway).

use std::collections::HashSet;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, SubsecRound, Utc};
use serde_json::{Map, Value, json};

use super::DemoAccount;
use super::MSGRAPH_DEMO_TOKEN;
use super::control::{Control, FaultKind, RateDecision, RateLimitConfig, Vendor};
use super::msgraph_data::{
    ADDRESS_FIELDS, Contact, Kind, Store, USER_PRINCIPAL, canonical, composed_name, contact_id,
    is_well_formed, kind_of,
};
use super::oauth::{
    self, AuthorizeError, GrantType, Issued, OAuthShape, Prefixes, Profile, RefreshRule, TokenError,
};
use super::webhooks::{Action, Source, WebhookDialect};
use super::wire::{
    self, AuthFailure, AuthToken, Dialect, ReqInfo, last_param, percent_decode, query_pairs,
    split_list, wait_seconds,
};
use super::{MSGRAPH_CLIENT_ID, MSGRAPH_CLIENT_SECRET};

#[path = "msgraph_webhooks.rs"]
mod webhooks;

pub(crate) const PROVIDER: &str = "msgraph";
const MOUNT: &str = "/graph";
const VERSION: &str = "/v1.0";
const DEFAULT_TOP: usize = 10;
const MAX_TOP: usize = 1000;
const MAX_BATCH: usize = 20;
const UNSUPPORTED_OPTIONS: [&str; 5] = ["$orderby", "$search", "$expand", "$count", "$skiptoken"];
const ODATA_JSON: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

pub(crate) struct MsGraph {
    control: Arc<Control>,
    store: RwLock<Store>,
    base_url: String,
    templates: HashSet<String>,
}

/// A vendor answer before it becomes an HTTP response or a `$batch` entry.
struct Outcome {
    status: StatusCode,
    body: Option<Value>,
    headers: Vec<(&'static str, String)>,
}

impl Outcome {
    fn json(status: StatusCode, body: Value) -> Outcome {
        Outcome {
            status,
            body: Some(body),
            headers: Vec::new(),
        }
    }

    fn into_response(self) -> Response {
        let mut response = match self.body {
            Some(body) => {
                let mut r = (self.status, body.to_string()).into_response();
                r.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(ODATA_JSON));
                r
            }
            None => self.status.into_response(),
        };
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response
                    .headers_mut()
                    .insert(HeaderName::from_static(name), value);
            }
        }
        response
    }
}

/// Request context a handler needs, shared by top-level calls and `$batch` entries.
struct Call<'a> {
    method: &'a str,
    /// Path below the version root, e.g. `/me/contacts`.
    path: &'a str,
    query: Option<&'a str>,
    client_request_id: Option<&'a str>,
    if_match: Option<&'a str>,
    /// `http://host:port` the client used.
    origin: String,
}

impl Call<'_> {
    fn root(&self) -> String {
        format!("{}{MOUNT}{VERSION}", self.origin)
    }

    fn url(&self) -> String {
        match self.query {
            Some(q) => format!("{}{}?{q}", self.root(), self.path),
            None => format!("{}{}", self.root(), self.path),
        }
    }
}

fn route_templates() -> Vec<String> {
    [
        "/me/contacts".to_owned(),
        "/me/contacts/{id}".to_owned(),
        "/$batch".to_owned(),
        "/subscriptions".to_owned(),
        "/subscriptions/{id}".to_owned(),
        "/subscriptions/{id}/reauthorize".to_owned(),
    ]
    .into_iter()
    .map(|p| format!("{VERSION}{p}"))
    .collect()
}

impl MsGraph {
    pub(crate) fn new(control: Arc<Control>, base_url: &str) -> MsGraph {
        MsGraph {
            control,
            store: RwLock::new(Store::seed()),
            base_url: base_url.to_owned(),
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

    fn call<'a>(&self, info: &'a ReqInfo, path: &'a str) -> Call<'a> {
        Call {
            method: &info.method,
            path,
            query: info.query.as_deref(),
            client_request_id: info.header("client-request-id"),
            if_match: info.header("if-match"),
            origin: info.origin(&self.base_url),
        }
    }
}

impl Vendor for MsGraph {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    fn mount(&self) -> String {
        MOUNT.to_owned()
    }

    fn seed_tokens(&self) -> Vec<String> {
        vec![MSGRAPH_DEMO_TOKEN.to_owned()]
    }

    fn default_rate_limit(&self) -> RateLimitConfig {
        // Outlook: 10,000 requests per 10 minutes per app per mailbox.
        RateLimitConfig {
            max: 10_000,
            interval_ms: 600_000,
        }
    }

    fn reset_data(&self) {
        *self.write() = Store::seed();
    }

    fn router(self: Arc<Self>) -> Router {
        let contacts = format!("{VERSION}/me/contacts");
        let router: Router<Arc<MsGraph>> = Router::new()
            .route(
                &contacts,
                get(|State(g): State<Arc<MsGraph>>, info: ReqInfo| async move {
                    g.list(&g.call(&info, "/me/contacts"), true).into_response()
                })
                .post(
                    |State(g): State<Arc<MsGraph>>, info: ReqInfo, body: Bytes| async move {
                        let call = g.call(&info, "/me/contacts");
                        match g.parse_json(&call, &body) {
                            Ok(value) => g.create(&call, &value, Source::Api),
                            Err(outcome) => outcome,
                        }
                        .into_response()
                    },
                ),
            )
            .route(
                &format!("{contacts}/{{id}}"),
                get(
                    |State(g): State<Arc<MsGraph>>,
                     info: ReqInfo,
                     id: Result<Path<String>, PathRejection>| async move {
                        let call = g.call(&info, "/me/contacts/{id}");
                        g.get_one(&call, &path_id(id)).into_response()
                    },
                )
                .patch(
                    |State(g): State<Arc<MsGraph>>,
                     info: ReqInfo,
                     id: Result<Path<String>, PathRejection>,
                     body: Bytes| async move {
                        let call = g.call(&info, "/me/contacts/{id}");
                        match g.parse_json(&call, &body) {
                            Ok(value) => g.update(&call, &path_id(id), &value, Source::Api),
                            Err(outcome) => outcome,
                        }
                        .into_response()
                    },
                )
                .delete(
                    |State(g): State<Arc<MsGraph>>,
                     info: ReqInfo,
                     id: Result<Path<String>, PathRejection>| async move {
                        let call = g.call(&info, "/me/contacts/{id}");
                        g.delete(&call, &path_id(id), Source::Api).into_response()
                    },
                ),
            )
            .route(
                &format!("{VERSION}/$batch"),
                post(
                    |State(g): State<Arc<MsGraph>>,
                     info: ReqInfo,
                     token: Option<Extension<AuthToken>>,
                     body: Bytes| async move {
                        let token = token.map(|Extension(AuthToken(t))| t).unwrap_or_default();
                        g.batch(&info, &token, &body).into_response()
                    },
                ),
            )
            .merge(webhooks::routes());
        router
            .method_not_allowed_fallback(
                |State(g): State<Arc<MsGraph>>, info: ReqInfo| async move {
                    let call = g.call(&info, "");
                    g.error(
                        &call,
                        StatusCode::METHOD_NOT_ALLOWED,
                        "BadRequest",
                        &format!(
                            "The HTTP method '{}' is not allowed for this resource.",
                            info.method
                        ),
                    )
                    .into_response()
                },
            )
            .fallback(|State(g): State<Arc<MsGraph>>, info: ReqInfo| async move {
                let call = g.call(&info, "");
                g.unknown_segment(&call, &info.path).into_response()
            })
            .layer(middleware::from_fn_with_state(
                self.clone(),
                wire::gate::<MsGraph>,
            ))
            .with_state(self)
    }

    fn demo_account(&self, base_url: &str) -> DemoAccount {
        DemoAccount {
            provider: PROVIDER,
            credentials: json!({ "accessToken": MSGRAPH_DEMO_TOKEN }),
            settings: json!({ "baseUrl": format!("{base_url}{MOUNT}{VERSION}") }),
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
            .route(
                "/{tenant}/oauth2/v2.0/authorize",
                get(oauth::authorize::<MsGraph>),
            )
            .route("/{tenant}/oauth2/v2.0/token", post(oauth::token::<MsGraph>))
            .with_state(self)
    }
}

fn path_id(id: Result<Path<String>, PathRejection>) -> String {
    id.map(|Path(id)| id).unwrap_or_default()
}

/// Seeded contacts as `/me/contacts` returns them without `$select` (every property),
/// chosen to include the edge cases: no email, three emails, an email entry without a
/// name, an apostrophe in an address, non-ASCII names, a company card without person
/// names, no company, business, home and other addresses, a home address with only a city
/// and a country.
pub(crate) fn sample_records(resource: &str) -> Option<Vec<Value>> {
    if resource != "contacts" {
        return None;
    }
    let store = Store::seed();
    Some(
        [0u64, 1, 3, 5, 6, 12, 41, 45, 77, 99, 149, 200]
            .iter()
            .filter_map(|seq| store.find(&contact_id(*seq)))
            .map(|c| c.render(None))
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------
// Wire dialect

fn graph_date(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

impl MsGraph {
    fn error_body(&self, client_request_id: Option<&str>, code: &str, message: &str) -> Value {
        let request_id = self.control.next_uuid();
        let client = client_request_id.map_or_else(|| request_id.clone(), str::to_owned);
        json!({
            "error": {
                "code": code,
                "message": message,
                "innerError": {
                    "date": graph_date(Utc::now()),
                    "request-id": request_id,
                    "client-request-id": client,
                }
            }
        })
    }

    fn error(&self, call: &Call<'_>, status: StatusCode, code: &str, message: &str) -> Outcome {
        Outcome::json(
            status,
            self.error_body(call.client_request_id, code, message),
        )
    }

    fn bad_request(&self, call: &Call<'_>, message: &str) -> Outcome {
        self.error(call, StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    fn throttled_outcome(&self, client_request_id: Option<&str>, retry_after: u64) -> Outcome {
        let mut outcome = Outcome::json(
            StatusCode::TOO_MANY_REQUESTS,
            self.error_body(
                client_request_id,
                "TooManyRequests",
                "Application is over its MailboxConcurrency limit.",
            ),
        );
        outcome
            .headers
            .push(("retry-after", retry_after.to_string()));
        outcome
    }

    fn unknown_segment(&self, call: &Call<'_>, full_path: &str) -> Outcome {
        let below = full_path
            .strip_prefix(MOUNT)
            .and_then(|p| p.strip_prefix(VERSION))
            .unwrap_or(full_path);
        let known = ["me", "contacts"];
        let segment = below
            .split('/')
            .filter(|s| !s.is_empty())
            .enumerate()
            .find(|(i, s)| known.get(*i) != Some(s))
            .map_or("", |(_, s)| s);
        let segment = percent_decode(segment).unwrap_or_else(|| segment.to_owned());
        self.bad_request(
            call,
            &format!("Resource not found for the segment '{segment}'."),
        )
    }
}

impl Dialect for MsGraph {
    const PROVIDER: &'static str = PROVIDER;

    fn control(&self) -> &Control {
        &self.control
    }

    fn route_templates(&self) -> &HashSet<String> {
        &self.templates
    }

    fn fault_response(&self, info: &ReqInfo, status: StatusCode, body: Option<Value>) -> Response {
        if let Some(body) = body {
            return (status, Json(body)).into_response();
        }
        let call = self.call(info, "");
        match status.as_u16() {
            401 => self.auth_failure(info, AuthFailure::Unknown),
            429 => {
                let mut o = self.throttled_outcome(call.client_request_id, 1);
                o.status = status;
                o.into_response()
            }
            code => {
                let graph_code = match code {
                    400 => "BadRequest",
                    403 => "ErrorAccessDenied",
                    404 => "ErrorItemNotFound",
                    409 => "ErrorIrresolvableConflict",
                    503 => "ServiceUnavailable",
                    504 => "GatewayTimeout",
                    500..=599 => "ErrorInternalServerError",
                    _ => "UnknownError",
                };
                let reason = status.canonical_reason().unwrap_or("Error");
                self.error(&call, status, graph_code, reason)
                    .into_response()
            }
        }
    }

    fn auth_failure(&self, info: &ReqInfo, failure: AuthFailure) -> Response {
        let message = match failure {
            AuthFailure::Missing => "Access token is empty.",
            AuthFailure::Unknown => "Access token validation failure.",
            AuthFailure::Expired => "Access token has expired or is not yet valid.",
        };
        let call = self.call(info, "");
        let mut outcome = self.error(
            &call,
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            message,
        );
        outcome.headers.push((
            "www-authenticate",
            "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"".to_owned(),
        ));
        outcome.into_response()
    }

    fn throttled(&self, info: &ReqInfo, decision: &RateDecision) -> Response {
        self.throttled_outcome(info.header("client-request-id"), wait_seconds(decision))
            .into_response()
    }

    fn charged_at_gate(&self, info: &ReqInfo) -> bool {
        !info.path.ends_with("/$batch")
    }
}

// ---------------------------------------------------------------------------------------
// Query options

struct ReadOptions {
    top: usize,
    skip: usize,
    select: Option<Vec<&'static str>>,
    /// `$filter` clauses, all of which a contact must satisfy.
    filter: Vec<Clause>,
}

impl MsGraph {
    fn read_options(&self, call: &Call<'_>, paged: bool) -> Result<ReadOptions, Outcome> {
        let pairs = query_pairs(call.query);
        if let Some((name, _)) = pairs.iter().find(|(k, _)| {
            UNSUPPORTED_OPTIONS
                .iter()
                .any(|u| u.eq_ignore_ascii_case(k))
        }) {
            return Err(self.bad_request(
                call,
                &format!("The query option '{name}' is not supported by the sandbox."),
            ));
        }
        let int = |name: &str, default: usize| -> Result<usize, Outcome> {
            match last_param(&pairs, name) {
                None => Ok(default),
                Some(raw) => raw.trim().parse::<usize>().map_err(|_| {
                    self.bad_request(
                        call,
                        &format!("Invalid value '{raw}' for {name} query option found."),
                    )
                }),
            }
        };
        let top = int("$top", DEFAULT_TOP)?;
        let skip = int("$skip", 0)?;
        if paged && !(1..=MAX_TOP).contains(&top) {
            return Err(self.bad_request(
                call,
                &format!("The value of $top must be between 1 and {MAX_TOP}; got {top}."),
            ));
        }
        let select = match last_param(&pairs, "$select") {
            None => None,
            Some(raw) => {
                let mut names = Vec::new();
                for requested in split_list(raw) {
                    let name = canonical(&requested).ok_or_else(|| {
                        self.error(
                            call,
                            StatusCode::BAD_REQUEST,
                            "RequestBroker--ParseUri",
                            &format!(
                                "Could not find a property named '{requested}' on type 'microsoft.graph.contact'."
                            ),
                        )
                    })?;
                    if !names.contains(&name) {
                        names.push(name);
                    }
                }
                (!names.is_empty()).then_some(names)
            }
        };
        let filter = match last_param(&pairs, "$filter") {
            None => Vec::new(),
            Some(_) if !paged => {
                return Err(self.bad_request(
                    call,
                    "The query specified in the URI is not valid. Query option 'Filter' is not allowed. To allow it, set the 'AllowedQueryOptions' property on EnableQueryAttribute or QueryValidationSettings.",
                ));
            }
            Some(raw) => parse_filter(raw).map_err(|e| self.filter_error(call, raw, e))?,
        };
        Ok(ReadOptions {
            top,
            skip,
            select,
            filter,
        })
    }

    fn context(&self, call: &Call<'_>, select: Option<&[&str]>, entity: bool) -> String {
        let user: String =
            url::form_urlencoded::byte_serialize(USER_PRINCIPAL.as_bytes()).collect();
        let mut out = format!("{}/$metadata#users('{user}')/contacts", call.root());
        if let Some(select) = select {
            out.push('(');
            out.push_str(&select.join(","));
            out.push(')');
        }
        if entity {
            out.push_str("/$entity");
        }
        out
    }

    /// The request URL with `$top` and `$skip` replaced, other options kept verbatim.
    fn page_link(&self, call: &Call<'_>, top: usize, skip: usize) -> String {
        let mut parts: Vec<String> = call
            .query
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .filter(|p| {
                let key = p.split('=').next().unwrap_or("");
                let key = percent_decode(key).unwrap_or_else(|| key.to_owned());
                key != "$top" && key != "$skip"
            })
            .map(str::to_owned)
            .collect();
        parts.push(format!("$top={top}"));
        parts.push(format!("$skip={skip}"));
        format!("{}{}?{}", call.root(), call.path, parts.join("&"))
    }
}

// ---------------------------------------------------------------------------------------
// $filter

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Cmp {
    fn parse(word: &str) -> Option<Cmp> {
        Some(match word {
            "eq" => Cmp::Eq,
            "ne" => Cmp::Ne,
            "gt" => Cmp::Gt,
            "ge" => Cmp::Ge,
            "lt" => Cmp::Lt,
            "le" => Cmp::Le,
            _ => return None,
        })
    }

    /// OData's name for the operator, as its error messages spell it.
    fn kind(self) -> &'static str {
        match self {
            Cmp::Eq => "Equal",
            Cmp::Ne => "NotEqual",
            Cmp::Gt => "GreaterThan",
            Cmp::Ge => "GreaterThanOrEqual",
            Cmp::Lt => "LessThan",
            Cmp::Le => "LessThanOrEqual",
        }
    }

    fn holds<T: Ord>(self, left: &T, right: &T) -> bool {
        match self {
            Cmp::Eq => left == right,
            Cmp::Ne => left != right,
            Cmp::Gt => left > right,
            Cmp::Ge => left >= right,
            Cmp::Lt => left < right,
            Cmp::Le => left <= right,
        }
    }
}

/// One `$filter` clause the sandbox models.
#[derive(Debug)]
enum Clause {
    /// `createdDateTime` (`created`) or `lastModifiedDateTime` against an instant.
    Time {
        created: bool,
        cmp: Cmp,
        at: DateTime<Utc>,
    },
    /// `emailAddresses/any(a:a/address eq '...')`: the address, lower-cased.
    Email(String),
}

impl Clause {
    fn matches(&self, contact: &Contact) -> bool {
        match self {
            Clause::Time { created, cmp, at } => {
                // Compared at the precision the contact shows (whole seconds).
                let t = if *created {
                    contact.created
                } else {
                    contact.modified
                };
                cmp.holds(&t.trunc_subsecs(0), at)
            }
            Clause::Email(address) => contact
                .props
                .get("emailAddresses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|e| e.get("address").and_then(Value::as_str))
                .any(|a| a.to_lowercase() == *address),
        }
    }
}

#[derive(Debug, PartialEq)]
enum FilterError {
    /// Not OData: 400 `BadRequest` "Invalid filter clause: ...".
    Syntax(String),
    /// A property the contact type does not have.
    UnknownProperty(String),
    /// A date property compared with something else.
    Incompatible(Cmp, &'static str),
    /// Valid OData the sandbox does not model.
    Unsupported(String),
}

#[derive(Debug, PartialEq)]
enum Token {
    /// An identifier or a path (`emailAddresses/any`, `a/address`, `and`).
    Word(String),
    /// A literal starting with a digit (`2024-01-01T00:00:00Z`, `42`).
    Bare(String),
    /// A string literal, quotes removed and `''` undone.
    Str(String),
    Punct(char),
}

fn tokenize(filter: &str) -> Result<Vec<(usize, Token)>, FilterError> {
    let chars: Vec<char> = filter.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let start = i;
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' {
            let mut text = String::new();
            i += 1;
            loop {
                match (chars.get(i), chars.get(i + 1)) {
                    (Some('\''), Some('\'')) => {
                        text.push('\'');
                        i += 2;
                    }
                    (Some('\''), _) => {
                        i += 1;
                        break;
                    }
                    (Some(ch), _) => {
                        text.push(*ch);
                        i += 1;
                    }
                    (None, _) => {
                        return Err(FilterError::Syntax(format!(
                            "There is an unterminated string literal at position {start} in '{filter}'."
                        )));
                    }
                }
            }
            out.push((start, Token::Str(text)));
        } else if matches!(c, '(' | ')' | ':' | ',') {
            out.push((start, Token::Punct(c)));
            i += 1;
        } else if c.is_ascii_digit() {
            while chars
                .get(i)
                .is_some_and(|ch| ch.is_ascii_alphanumeric() || matches!(ch, ':' | '.' | '-' | '+'))
            {
                i += 1;
            }
            out.push((start, Token::Bare(chars[start..i].iter().collect())));
        } else if c.is_ascii_alphabetic() || c == '_' || c == '$' {
            while chars
                .get(i)
                .is_some_and(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '/' | '.' | '$'))
            {
                i += 1;
            }
            out.push((start, Token::Word(chars[start..i].iter().collect())));
        } else {
            return Err(FilterError::Syntax(format!(
                "Syntax error: character '{c}' is not valid at position {start} in '{filter}'."
            )));
        }
    }
    Ok(out)
}

/// The clauses of a `$filter` joined by `and`.
fn parse_filter(filter: &str) -> Result<Vec<Clause>, FilterError> {
    let tokens = tokenize(filter)?;
    let syntax =
        |pos: usize| FilterError::Syntax(format!("Syntax error at position {pos} in '{filter}'."));
    let end = filter.chars().count();
    let mut it = tokens.into_iter().peekable();
    let mut clauses = Vec::new();
    loop {
        let (pos, first) = it.next().ok_or_else(|| syntax(end))?;
        let Token::Word(word) = first else {
            return Err(match first {
                Token::Punct('(') => FilterError::Unsupported("a parenthesised expression".into()),
                _ => syntax(pos),
            });
        };
        if word.eq_ignore_ascii_case("emailAddresses/any") {
            // (a:a/address eq '...')
            let mut next = || it.next();
            let (p, t) = next().ok_or_else(|| syntax(end))?;
            if t != Token::Punct('(') {
                return Err(syntax(p));
            }
            let (p, t) = next().ok_or_else(|| syntax(end))?;
            let Token::Word(var) = t else {
                return Err(syntax(p));
            };
            let (p, t) = next().ok_or_else(|| syntax(end))?;
            if t != Token::Punct(':') {
                return Err(syntax(p));
            }
            let (p, t) = next().ok_or_else(|| syntax(end))?;
            let Token::Word(member) = t else {
                return Err(syntax(p));
            };
            let Some(field) = member.strip_prefix(&format!("{var}/")) else {
                return Err(syntax(p));
            };
            if !field.eq_ignore_ascii_case("address") {
                return Err(if field.eq_ignore_ascii_case("name") {
                    FilterError::Unsupported("filtering on an email entry's name".into())
                } else {
                    FilterError::UnknownProperty(field.to_owned())
                });
            }
            let (p, t) = next().ok_or_else(|| syntax(end))?;
            let Token::Word(op) = t else {
                return Err(syntax(p));
            };
            if op != "eq" {
                return Err(match Cmp::parse(&op) {
                    Some(_) => FilterError::Unsupported(format!("'{op}' on an email address")),
                    None => syntax(p),
                });
            }
            let (p, t) = next().ok_or_else(|| syntax(end))?;
            let Token::Str(address) = t else {
                return Err(syntax(p));
            };
            let (p, t) = next().ok_or_else(|| syntax(end))?;
            if t != Token::Punct(')') {
                return Err(match t {
                    Token::Word(w) if w == "or" || w == "and" => {
                        FilterError::Unsupported(format!("'{w}' inside any()"))
                    }
                    _ => syntax(p),
                });
            }
            clauses.push(Clause::Email(address.to_lowercase()));
        } else if word == "not" {
            return Err(FilterError::Unsupported("'not'".into()));
        } else if matches!(it.peek(), Some((_, Token::Punct('(')))) || word.contains('/') {
            return Err(FilterError::Unsupported(format!("'{word}'")));
        } else {
            let property = canonical(&word).ok_or(FilterError::UnknownProperty(word))?;
            let created = match property {
                "createdDateTime" => true,
                "lastModifiedDateTime" => false,
                other => {
                    return Err(FilterError::Unsupported(format!("filtering on '{other}'")));
                }
            };
            let (p, t) = it.next().ok_or_else(|| syntax(end))?;
            let cmp = match t {
                Token::Word(op) => Cmp::parse(&op).ok_or_else(|| syntax(p))?,
                _ => return Err(syntax(p)),
            };
            let (p, t) = it.next().ok_or_else(|| syntax(end))?;
            let at = match t {
                Token::Bare(literal) => DateTime::parse_from_rfc3339(&literal)
                    .map_err(|_| syntax(p))?
                    .with_timezone(&Utc),
                Token::Str(_) => return Err(FilterError::Incompatible(cmp, "Edm.String")),
                Token::Word(w) if w == "null" => {
                    return Err(FilterError::Unsupported("comparing with null".into()));
                }
                _ => return Err(syntax(p)),
            };
            clauses.push(Clause::Time { created, cmp, at });
        }
        match it.next() {
            None => return Ok(clauses),
            Some((_, Token::Word(w))) if w == "and" => {}
            Some((_, Token::Word(w))) if w == "or" => {
                return Err(FilterError::Unsupported("'or'".into()));
            }
            Some((p, _)) => return Err(syntax(p)),
        }
    }
}

impl MsGraph {
    fn filter_error(&self, call: &Call<'_>, raw: &str, error: FilterError) -> Outcome {
        match error {
            FilterError::Syntax(detail) => {
                self.bad_request(call, &format!("Invalid filter clause: {detail}"))
            }
            FilterError::UnknownProperty(name) => self.error(
                call,
                StatusCode::BAD_REQUEST,
                "RequestBroker--ParseUri",
                &format!("Could not find a property named '{name}' on type 'microsoft.graph.contact'."),
            ),
            FilterError::Incompatible(cmp, other) => self.bad_request(
                call,
                &format!(
                    "Invalid filter clause: A binary operator with incompatible types was detected. Found operand types 'Edm.DateTimeOffset' and '{other}' for operator kind '{}'.",
                    cmp.kind()
                ),
            ),
            FilterError::Unsupported(what) => self.bad_request(
                call,
                &format!("The $filter '{raw}' uses {what}, which the sandbox does not model."),
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Write bodies

impl MsGraph {
    fn parse_json(&self, call: &Call<'_>, body: &Bytes) -> Result<Value, Outcome> {
        serde_json::from_slice(body).map_err(|_| {
            self.bad_request(
                call,
                "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
            )
        })
    }

    fn body_error(&self, call: &Call<'_>, message: &str) -> Outcome {
        self.error(call, StatusCode::BAD_REQUEST, "RequestBodyRead", message)
    }

    /// Validated property changes; `None` values clear.
    fn changes(&self, call: &Call<'_>, body: &Value) -> Result<Vec<(String, Value)>, Outcome> {
        let Value::Object(obj) = body else {
            return Err(self.body_error(
                call,
                "An unexpected 'StartArray' node was found when reading from the JSON reader. A 'StartObject' node was expected.",
            ));
        };
        let mut out = Vec::new();
        for (name, value) in obj {
            if name.starts_with('@') || name.contains("@odata.") {
                continue;
            }
            let Some(kind) = kind_of(name) else {
                return Err(self.body_error(
                    call,
                    &format!(
                        "The property '{name}' does not exist on type 'microsoft.graph.contact'. Make sure to only use property names that are defined by the type or mark the type as open type."
                    ),
                ));
            };
            let literal = |expected: &str| {
                self.body_error(
                    call,
                    &format!(
                        "Cannot convert the literal '{value}' to the expected type '{expected}'."
                    ),
                )
            };
            let normalized = match (kind, value) {
                (Kind::ReadOnly, _) => continue,
                (Kind::Text, Value::Null | Value::String(_)) => value.clone(),
                (Kind::Text, _) => return Err(literal("Edm.String")),
                (Kind::Date, Value::Null) => Value::Null,
                (Kind::Date, Value::String(s)) => {
                    let t = DateTime::parse_from_rfc3339(s)
                        .map_err(|_| literal("Edm.DateTimeOffset"))?;
                    json!(super::msgraph_data::graph_time(t.with_timezone(&Utc)))
                }
                (Kind::Date, _) => return Err(literal("Edm.DateTimeOffset")),
                (Kind::TextList, Value::Null) => json!([]),
                (Kind::TextList, Value::Array(items)) => {
                    if items.iter().any(|i| !i.is_string()) {
                        return Err(literal("Collection(Edm.String)"));
                    }
                    value.clone()
                }
                (Kind::TextList, _) => return Err(literal("Collection(Edm.String)")),
                (Kind::Emails, Value::Null) => json!([]),
                (Kind::Emails, Value::Array(items)) => {
                    let mut emails = Vec::new();
                    for item in items {
                        let Value::Object(e) = item else {
                            return Err(literal("microsoft.graph.emailAddress"));
                        };
                        if e.keys().any(|k| k != "address" && k != "name") {
                            return Err(literal("microsoft.graph.emailAddress"));
                        }
                        let address = match e.get("address") {
                            None | Some(Value::Null) => Value::Null,
                            Some(Value::String(s)) => json!(s),
                            Some(_) => return Err(literal("Edm.String")),
                        };
                        let name = match e.get("name") {
                            None | Some(Value::Null) => address.clone(),
                            Some(Value::String(s)) => json!(s),
                            Some(_) => return Err(literal("Edm.String")),
                        };
                        emails.push(json!({ "name": name, "address": address }));
                    }
                    Value::Array(emails)
                }
                (Kind::Emails, _) => {
                    return Err(literal("Collection(microsoft.graph.emailAddress)"));
                }
                (Kind::Address, Value::Null) => json!({}),
                (Kind::Address, Value::Object(a)) => {
                    let mut address = Map::new();
                    for (k, v) in a {
                        if !ADDRESS_FIELDS.contains(&k.as_str()) {
                            return Err(self.body_error(
                                call,
                                &format!(
                                    "The property '{k}' does not exist on type 'microsoft.graph.physicalAddress'. Make sure to only use property names that are defined by the type or mark the type as open type."
                                ),
                            ));
                        }
                        match v {
                            Value::Null => {}
                            Value::String(s) => {
                                address.insert(k.clone(), json!(s));
                            }
                            _ => return Err(literal("Edm.String")),
                        }
                    }
                    Value::Object(address)
                }
                (Kind::Address, _) => return Err(literal("microsoft.graph.physicalAddress")),
            };
            out.push((name.clone(), normalized));
        }
        Ok(out)
    }
}

/// Stores a property value; empty forms are dropped so rendering shows the default.
fn set_prop(props: &mut Map<String, Value>, name: String, value: Value) {
    let empty = match &value {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    };
    if empty {
        props.remove(&name);
    } else {
        props.insert(name, value);
    }
}

// ---------------------------------------------------------------------------------------
// Handlers

impl MsGraph {
    fn list(&self, call: &Call<'_>, top_level: bool) -> Outcome {
        let options = match self.read_options(call, true) {
            Ok(o) => o,
            Err(e) => return e,
        };
        let take_fault = |kind: FaultKind| {
            top_level
                && self
                    .control
                    .take_fault(PROVIDER, call.method, &call.url(), kind)
                    .is_some()
        };
        let repeat = take_fault(FaultKind::RepeatCursor);
        let out_of_range = !repeat && take_fault(FaultKind::OutOfRange);
        let store = self.read();
        let matching: Vec<&Contact> = store
            .contacts
            .iter()
            .filter(|c| options.filter.iter().all(|clause| clause.matches(c)))
            .collect();
        let total = matching.len();
        let value: Vec<Value> = matching
            .iter()
            .skip(options.skip)
            .take(options.top)
            .map(|c| c.render(options.select.as_deref()))
            .collect();
        drop(matching);
        drop(store);
        let end = options.skip.saturating_add(options.top);
        let next = if repeat {
            // The vendor bug: the next link is the very request just served.
            Some(call.url())
        } else if out_of_range {
            // The vendor bug: a next link past the end, where the page is empty.
            Some(self.page_link(call, options.top, end.max(total)))
        } else if end < total {
            Some(self.page_link(call, options.top, end))
        } else {
            None
        };
        let mut body = Map::new();
        body.insert(
            "@odata.context".into(),
            json!(self.context(call, options.select.as_deref(), false)),
        );
        body.insert("value".into(), Value::Array(value));
        if let Some(next) = next {
            body.insert("@odata.nextLink".into(), json!(next));
        }
        Outcome::json(StatusCode::OK, Value::Object(body))
    }

    /// 400 for a malformed id, 404 for a well-formed unknown one.
    fn check_id(&self, call: &Call<'_>, id: &str, store: &Store) -> Result<(), Outcome> {
        if !is_well_formed(id) {
            return Err(self.error(
                call,
                StatusCode::BAD_REQUEST,
                "ErrorInvalidIdMalformed",
                "Id is malformed.",
            ));
        }
        if store.find(id).is_none() {
            return Err(self.error(
                call,
                StatusCode::NOT_FOUND,
                "ErrorItemNotFound",
                "The specified object was not found in the store.",
            ));
        }
        Ok(())
    }

    fn check_if_match(&self, call: &Call<'_>, contact: &Contact) -> Result<(), Outcome> {
        match call.if_match.map(str::trim) {
            None | Some("*") => Ok(()),
            Some(tag) if tag == contact.etag() || tag == contact.change_key() => Ok(()),
            Some(_) => Err(self.error(
                call,
                StatusCode::PRECONDITION_FAILED,
                "ErrorIrresolvableConflict",
                "The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item.",
            )),
        }
    }

    fn with_context(&self, call: &Call<'_>, contact: Value, select: Option<&[&str]>) -> Value {
        let mut out = Map::new();
        out.insert(
            "@odata.context".into(),
            json!(self.context(call, select, true)),
        );
        if let Value::Object(fields) = contact {
            out.extend(fields);
        }
        Value::Object(out)
    }

    fn get_one(&self, call: &Call<'_>, id: &str) -> Outcome {
        let options = match self.read_options(call, false) {
            Ok(o) => o,
            Err(e) => return e,
        };
        let store = self.read();
        if let Err(e) = self.check_id(call, id, &store) {
            return e;
        }
        let Some(contact) = store.find(id) else {
            return self.bad_request(call, "Id is malformed.");
        };
        let rendered = contact.render(options.select.as_deref());
        drop(store);
        Outcome::json(
            StatusCode::OK,
            self.with_context(call, rendered, options.select.as_deref()),
        )
    }

    fn create(&self, call: &Call<'_>, body: &Value, source: Source) -> Outcome {
        let changes = match self.changes(call, body) {
            Ok(c) => c,
            Err(e) => return e,
        };
        let mut props = Map::new();
        let mut display_given = false;
        for (name, value) in changes {
            display_given |= name == "displayName" && !value.is_null();
            set_prop(&mut props, name, value);
        }
        if !display_given && let Some(name) = composed_name(&props) {
            props.insert("displayName".into(), json!(name));
        }
        props.entry("fileAs").or_insert_with(|| json!(""));
        let now = Utc::now();
        let mut store = self.write();
        let seq = store.allocate_seq();
        let contact = Contact {
            seq,
            id: contact_id(seq),
            version: 0,
            created: now,
            modified: now,
            props,
        };
        let rendered = contact.render(None);
        let id = contact.id.clone();
        store.contacts.push(contact);
        drop(store);
        self.report(&id, Action::Created, source, None, Some(&rendered));
        Outcome::json(StatusCode::CREATED, self.with_context(call, rendered, None))
    }

    fn update(&self, call: &Call<'_>, id: &str, body: &Value, source: Source) -> Outcome {
        let changes = match self.changes(call, body) {
            Ok(c) => c,
            Err(e) => return e,
        };
        let mut store = self.write();
        if let Err(e) = self.check_id(call, id, &store) {
            return e;
        }
        let Some(contact) = store.find_mut(id) else {
            return self.bad_request(call, "Id is malformed.");
        };
        if let Err(e) = self.check_if_match(call, contact) {
            return e;
        }
        let composed_before = composed_name(&contact.props);
        let display_follows =
            contact.props.get("displayName").and_then(Value::as_str) == composed_before.as_deref();
        let mut display_set = false;
        for (name, value) in changes {
            display_set |= name == "displayName";
            set_prop(&mut contact.props, name, value);
        }
        if !display_set && display_follows {
            match composed_name(&contact.props) {
                Some(name) => contact.props.insert("displayName".into(), json!(name)),
                None => contact.props.remove("displayName"),
            };
        }
        contact.version = contact.version.saturating_add(1);
        contact.modified = Utc::now().max(contact.created);
        let rendered = contact.render(None);
        drop(store);
        self.report(id, Action::Updated, source, None, Some(&rendered));
        Outcome::json(StatusCode::OK, self.with_context(call, rendered, None))
    }

    fn delete(&self, call: &Call<'_>, id: &str, source: Source) -> Outcome {
        let mut store = self.write();
        if let Err(e) = self.check_id(call, id, &store) {
            return e;
        }
        if let Some(contact) = store.find(id)
            && let Err(e) = self.check_if_match(call, contact)
        {
            return e;
        }
        let previous = store.find(id).map(|c| c.render(None));
        store.remove(id);
        drop(store);
        self.report(id, Action::Deleted, source, previous.as_ref(), None);
        Outcome {
            status: StatusCode::NO_CONTENT,
            body: None,
            headers: Vec::new(),
        }
    }

    fn batch(&self, info: &ReqInfo, token: &str, body: &Bytes) -> Outcome {
        let outer = self.call(info, "/$batch");
        let invalid = || self.bad_request(&outer, "Invalid batch payload format.");
        let Ok(Value::Object(payload)) = serde_json::from_slice::<Value>(body) else {
            return invalid();
        };
        let Some(Value::Array(requests)) = payload.get("requests") else {
            return invalid();
        };
        if requests.is_empty() {
            return invalid();
        }
        if requests.len() > MAX_BATCH {
            return self.bad_request(
                &outer,
                &format!(
                    "Unable to process batch request: the number of requests in the batch ({}) exceeds the maximum of {MAX_BATCH}.",
                    requests.len()
                ),
            );
        }
        let mut seen = HashSet::new();
        for request in requests {
            let valid = request.get("id").and_then(Value::as_str).is_some()
                && request.get("method").and_then(Value::as_str).is_some()
                && request.get("url").and_then(Value::as_str).is_some();
            if !valid {
                return invalid();
            }
            let id = request
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !seen.insert(id) {
                return self.bad_request(
                    &outer,
                    &format!("Batch request contains duplicate request id '{id}'."),
                );
            }
        }
        let responses: Vec<Value> = requests
            .iter()
            .map(|request| self.batch_entry(info, token, request))
            .collect();
        Outcome::json(StatusCode::OK, json!({ "responses": responses }))
    }

    fn batch_entry(&self, info: &ReqInfo, token: &str, request: &Value) -> Value {
        let id = request
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let method = request
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_ascii_uppercase();
        let url = request
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let sub_header = |name: &str| {
            request
                .get("headers")
                .and_then(Value::as_object)
                .and_then(|h| h.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
                .and_then(|(_, v)| v.as_str())
        };
        let (path, query) = match url.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (url, None),
        };
        let path = format!("/{}", path.trim_start_matches('/'));
        let call = Call {
            method: &method,
            path: &path,
            query,
            client_request_id: sub_header("client-request-id")
                .or_else(|| info.header("client-request-id")),
            if_match: sub_header("if-match"),
            origin: info.origin(&self.base_url),
        };
        let decision = self.control.rate_limit(PROVIDER, token);
        let outcome = if decision.allowed {
            self.dispatch(&call, request.get("body"))
        } else {
            self.throttled_outcome(call.client_request_id, wait_seconds(&decision))
        };
        let mut headers = Map::new();
        if outcome.body.is_some() {
            headers.insert("Content-Type".into(), json!(ODATA_JSON));
        }
        for (name, value) in &outcome.headers {
            let name = if *name == "retry-after" {
                "Retry-After"
            } else {
                name
            };
            headers.insert(name.to_owned(), json!(value));
        }
        let mut entry = Map::new();
        entry.insert("id".into(), json!(id));
        entry.insert("status".into(), json!(outcome.status.as_u16()));
        entry.insert("headers".into(), Value::Object(headers));
        if let Some(body) = outcome.body {
            entry.insert("body".into(), body);
        }
        Value::Object(entry)
    }

    /// Routes one `$batch` sub-request like the top-level router would.
    fn dispatch(&self, call: &Call<'_>, body: Option<&Value>) -> Outcome {
        let segments: Vec<&str> = call.path.split('/').filter(|s| !s.is_empty()).collect();
        let empty = Value::Null;
        let body = body.unwrap_or(&empty);
        match (segments.as_slice(), call.method) {
            (["me", "contacts"], "GET") => self.list(call, false),
            (["me", "contacts"], "POST") => self.create(call, body, Source::Api),
            (["me", "contacts", id], method) => {
                let id = percent_decode(id).unwrap_or_else(|| (*id).to_owned());
                match method {
                    "GET" => self.get_one(call, &id),
                    "PATCH" => self.update(call, &id, body, Source::Api),
                    "DELETE" => self.delete(call, &id, Source::Api),
                    other => self.error(
                        call,
                        StatusCode::METHOD_NOT_ALLOWED,
                        "BadRequest",
                        &format!("The HTTP method '{other}' is not allowed for this resource."),
                    ),
                }
            }
            (["me", "contacts"], other) => self.error(
                call,
                StatusCode::METHOD_NOT_ALLOWED,
                "BadRequest",
                &format!("The HTTP method '{other}' is not allowed for this resource."),
            ),
            _ => self.unknown_segment(call, call.path),
        }
    }
}

// ---------------------------------------------------------------------------------------
// OAuth: the Microsoft identity platform v2 (vendors.md §5 Auth; machinery in oauth.rs),
// served at `/graph/{tenant}/oauth2/v2.0/{authorize,token}` (login.microsoftonline.com in
// real life); any tenant segment is accepted.
//
// Choices: `expires_in` and `ext_expires_in` are both the configured lifetime (3599 by
// default, not Entra's random 60–90 min); a refresh token is issued only when the scope
// asks for `offline_access`, which the response's `scope` then leaves out; every refresh
// rotates (the old refresh token dies at once; the real one lingers until it expires, a
// harder case for clients) and `rotateRefreshTokens: false` is refused; client
// credentials answer without `scope` or refresh token. Errors are Entra's JSON (`error`,
// `error_description` starting `AADSTSnnnn:`, `error_codes`, `timestamp`, `trace_id`,
// `correlation_id`, `error_uri`): 400, except a wrong client secret (401); a bad, expired
// or revoked refresh token is AADSTS70008 as vendors.md gives it. The authorization
// page's refusals use the same JSON with 400 (Entra shows an HTML page).

static OAUTH: Profile = Profile {
    provider: PROVIDER,
    client_id: MSGRAPH_CLIENT_ID,
    client_secret: MSGRAPH_CLIENT_SECRET,
    access_lifetime_secs: 3599,
    code_lifetime_secs: 600,
    rotates: true,
    always_rotates: true,
    echoes_refresh_token: false,
    client_credentials: true,
    basic_auth: false,
    query_params: false,
    refresh_rule: RefreshRule::Scope("offline_access"),
    prefixes: Prefixes {
        access: "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.",
        refresh: "0.AXoA",
        code: "0.AXoA",
    },
};

const DEFAULT_SCOPE: &str =
    "https://graph.microsoft.com/Contacts.ReadWrite https://graph.microsoft.com/User.Read";
const INACTIVE_GRANT: &str = "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.";

impl MsGraph {
    fn aad_error(&self, status: StatusCode, error: &str, code: u32, message: &str) -> Response {
        let trace_id = self.control.next_uuid();
        let correlation_id = self.control.next_uuid();
        let timestamp = Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
        let body = json!({
            "error": error,
            "error_description": format!(
                "AADSTS{code}: {message} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {timestamp}"
            ),
            "error_codes": [code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        });
        (status, Json(body)).into_response()
    }
}

fn missing_parameter(name: &str) -> String {
    format!("The request body must contain the following parameter: '{name}'.")
}

impl OAuthShape for MsGraph {
    fn oauth_profile(&self) -> &'static Profile {
        &OAUTH
    }

    fn oauth_control(&self) -> &Control {
        &self.control
    }

    fn token_body(&self, issued: &Issued) -> Value {
        let mut body = Map::new();
        body.insert("token_type".into(), json!("Bearer"));
        if issued.grant_type != GrantType::ClientCredentials {
            let items: Vec<&str> = issued
                .scope_items()
                .into_iter()
                .filter(|s| *s != "offline_access")
                .collect();
            let scope = if items.is_empty() {
                DEFAULT_SCOPE.to_owned()
            } else {
                items.join(" ")
            };
            body.insert("scope".into(), json!(scope));
        }
        body.insert("expires_in".into(), json!(issued.expires_in));
        body.insert("ext_expires_in".into(), json!(issued.expires_in));
        body.insert("access_token".into(), json!(issued.access_token));
        if let Some(refresh) = &issued.refresh_token {
            body.insert("refresh_token".into(), json!(refresh));
        }
        Value::Object(body)
    }

    fn token_error(&self, error: &TokenError) -> Response {
        let bad = StatusCode::BAD_REQUEST;
        match error {
            TokenError::ContentType | TokenError::MissingGrantType => self.aad_error(
                bad,
                "invalid_request",
                900_144,
                &missing_parameter("grant_type"),
            ),
            TokenError::UnsupportedGrant(grant) => self.aad_error(
                bad,
                "unsupported_grant_type",
                70_003,
                &format!("The app requested an unsupported grant type '{grant}'."),
            ),
            TokenError::MissingClient => self.aad_error(
                bad,
                "invalid_request",
                900_144,
                &missing_parameter("client_id"),
            ),
            TokenError::UnknownClient(id) => self.aad_error(
                bad,
                "unauthorized_client",
                700_016,
                &format!(
                    "Application with identifier '{id}' was not found in the directory 'Sandbox'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
                ),
            ),
            TokenError::BadSecret => self.aad_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7_000_215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
            ),
            TokenError::BadCode => self.aad_error(
                bad,
                "invalid_grant",
                70_000,
                "The provided value for the 'code' parameter is not valid.",
            ),
            TokenError::CodeUsed => self.aad_error(
                bad,
                "invalid_grant",
                54_005,
                "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
            ),
            TokenError::CodeExpired | TokenError::BadRefreshToken => {
                self.aad_error(bad, "invalid_grant", 70_008, INACTIVE_GRANT)
            }
            TokenError::RedirectMismatch => self.aad_error(
                bad,
                "invalid_grant",
                50_011,
                "The redirect URI specified in the request does not match the redirect URI used to obtain the authorization code.",
            ),
            TokenError::BadVerifier => self.aad_error(
                bad,
                "invalid_grant",
                501_481,
                "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
            ),
        }
    }

    fn authorize_error(&self, error: &AuthorizeError) -> Response {
        let bad = StatusCode::BAD_REQUEST;
        match error {
            AuthorizeError::MissingClient => self.aad_error(
                bad,
                "invalid_request",
                900_144,
                &missing_parameter("client_id"),
            ),
            AuthorizeError::UnknownClient(id) => self.aad_error(
                bad,
                "unauthorized_client",
                700_016,
                &format!("Application with identifier '{id}' was not found in the directory 'Sandbox'."),
            ),
            AuthorizeError::MissingRedirect => self.aad_error(
                bad,
                "invalid_request",
                900_144,
                &missing_parameter("redirect_uri"),
            ),
            AuthorizeError::BadRedirect(uri) => self.aad_error(
                bad,
                "invalid_request",
                50_011,
                &format!(
                    "The redirect URI '{uri}' specified in the request does not match the redirect URIs configured for the application."
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::msgraph_data::PROPERTIES;
    use super::*;

    #[test]
    fn every_catalogue_property_can_be_selected() {
        for (name, _) in PROPERTIES {
            assert_eq!(canonical(&name.to_ascii_lowercase()), Some(*name));
        }
        assert_eq!(canonical("shoeSize"), None);
    }

    #[test]
    fn filter_literals_double_their_quotes_and_other_forms_are_refused() {
        let clauses =
            parse_filter("emailAddresses/any(a: a/address eq 'O''Brien@X.example') and lastModifiedDateTime gt 2024-01-01T00:00:00.000Z")
                .unwrap();
        assert!(matches!(&clauses[0], Clause::Email(a) if a == "o'brien@x.example"));
        assert!(matches!(
            &clauses[1],
            Clause::Time {
                created: false,
                cmp: Cmp::Gt,
                ..
            }
        ));
        // A lone quote ends the literal: what follows is OData, here not valid.
        assert!(matches!(
            parse_filter("emailAddresses/any(a:a/address eq 'x' or 'a' eq 'a')"),
            Err(FilterError::Unsupported(_))
        ));
        assert!(matches!(
            parse_filter("emailAddresses/any(a:a/address eq 'x)"),
            Err(FilterError::Syntax(_))
        ));
        assert!(matches!(
            parse_filter("createdDateTime gt '2024-01-01'"),
            Err(FilterError::Incompatible(Cmp::Gt, "Edm.String"))
        ));
        assert!(matches!(
            parse_filter("shoeSize eq 38"),
            Err(FilterError::UnknownProperty(_))
        ));
        for unsupported in [
            "givenName eq 'Ada'",
            "startswith(givenName,'A')",
            "not createdDateTime gt 2024-01-01T00:00:00Z",
        ] {
            assert!(
                matches!(parse_filter(unsupported), Err(FilterError::Unsupported(_))),
                "{unsupported}"
            );
        }
        for broken in [
            "",
            "createdDateTime gt",
            "createdDateTime gt 2024-13-01T00:00:00Z and",
        ] {
            assert!(
                matches!(parse_filter(broken), Err(FilterError::Syntax(_))),
                "{broken}"
            );
        }
    }
}
