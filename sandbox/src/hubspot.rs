//! HubSpot CRM v3 objects API (contacts, companies, deals, notes, tasks, leads, and their
//! `POST .../search`), plus the owners and deal pipelines a deal refers to, as described
//! in `/work/shared/vendors.md` §2, served under `/hubspot`.
//!
//! Every request passes the shared gate first (`wire::gate`): it is counted, may be
//! hijacked by an injected fault, is authenticated against the shared token registry and
//! is charged to its token's rolling rate-limit window. Handlers then work on an in-memory
//! [`Store`]. Every create, update and archive of a contact, company or deal is reported
//! to the app's webhooks (`hubspot_webhooks.rs`, which also serves
//! `/account-info/v3/details`).
//!
//! Choices where HubSpot's behaviour is not pinned down by vendors.md (tagged [M] there
//! or not covered):
//! - A property that is known but unset comes back as `null` when requested, as HubSpot
//!   does; properties not in the schema are dropped from reads and rejected on writes
//!   with `PROPERTY_DOESNT_EXIST`.
//! - `DELETE` is idempotent: unknown or already-archived ids also get 204.
//! - Rate-limit headers are sent on every authenticated response; 401s carry none, since
//!   the window belongs to a token. `-Secondly`/`-Secondly-Remaining` are reported from the
//!   same window but never enforced.
//! - Injected faults fire before authentication, like an upstream outage would.
//! - `associations=` on reads returns v3 labels (`deal_to_company`, `contact_to_deal`,
//!   ...), one entry per associated record; a create's `associations[].types[]` picks the
//!   target type by HUBSPOT_DEFINED `associationTypeId` (contacts and companies may leave
//!   `types` out and mean each other; deals must say).
//! - Deals: a missing `pipeline` on create means `default`; a `dealstage` that is not a
//!   stage of the deal's pipeline (or an unknown pipeline) is `INVALID_OPTION`.
//! - Notes and tasks need `hs_timestamp` on create, leads `hs_lead_name` and an
//!   association to an existing contact (a 400 `VALIDATION_ERROR` otherwise; the message
//!   wording is the sandbox's). Task statuses, priorities and types, and lead pipeline
//!   stages, types and labels are checked (`INVALID_OPTION`). `hs_timestamp` is stored
//!   as ISO-8601 with milliseconds whichever accepted form (ISO or epoch ms) was written.
//! - Write responses carry no associations, as HubSpot's `SimplePublicObject` does not.
//! - Search: see the section below; its 10,000-result cap is enforced on `after`.
//! - Owners (`/crm/v3/owners`, `limit` 1-500, default 100, `email` filter, `archived`) and
//!   pipelines (`/crm/v3/pipelines/deals`) are fixed and only served on the classic paths.

use std::collections::HashSet;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::DemoAccount;
use super::HUBSPOT_DEMO_TOKEN;
use super::control::{
    Control, FaultKind, RateDecision, RateLimitConfig, Reject, Vendor, iso_millis,
};
use super::hubspot_data::{
    self as data, DEFAULT_PIPELINE, ObjectType, PIPELINES, Record, Selection, Store,
};
use super::oauth::{
    self, AuthorizeError, GrantType, Issued, OAuthShape, Prefixes, Profile, RefreshRule, TokenError,
};
use super::webhooks::{Action, Source, WebhookDialect};
use super::wire::{
    self, AuthFailure, Dialect, ReqInfo, all_params, last_param, percent_decode, query_pairs,
    split_list,
};
use super::{HUBSPOT_CLIENT_ID, HUBSPOT_CLIENT_SECRET};

#[path = "hubspot_webhooks.rs"]
mod webhooks;

pub(crate) const PROVIDER: &str = "hubspot";
const PREFIX: &str = "/hubspot";
const DEFAULT_LIMIT: usize = 10;
const MAX_LIMIT: usize = 100;
const MAX_BATCH_INPUTS: usize = 100;
/// Both path styles HubSpot serves today (vendors.md §2): classic and date-versioned.
const VERSION_PREFIXES: [&str; 3] = [
    "/crm/v3/objects",
    "/crm/objects/2025-09",
    "/crm/objects/2026-03",
];
const OWNERS_DEFAULT_LIMIT: usize = 100;
const OWNERS_MAX_LIMIT: usize = 500;
/// Routes outside the objects API (owners, pipelines), for the stats templates.
const OWNERS_ROUTE: &str = "/crm/v3/owners";
const OWNERS_SLASH_ROUTE: &str = "/crm/v3/owners/";
const OWNER_ROUTE: &str = "/crm/v3/owners/{ownerId}";
const PIPELINES_ROUTE: &str = "/crm/v3/pipelines/deals";
const PIPELINE_ROUTE: &str = "/crm/v3/pipelines/deals/{pipelineId}";
const STAGES_ROUTE: &str = "/crm/v3/pipelines/deals/{pipelineId}/stages";
/// The account a token belongs to (receivers match `portalId` of webhook events with it).
const ACCOUNT_ROUTE: &str = "/account-info/v3/details";
const OTHER_ROUTES: [&str; 7] = [
    OWNERS_ROUTE,
    OWNERS_SLASH_ROUTE,
    OWNER_ROUTE,
    PIPELINES_ROUTE,
    PIPELINE_ROUTE,
    STAGES_ROUTE,
    ACCOUNT_ROUTE,
];

pub(crate) struct HubSpot {
    control: Arc<Control>,
    store: RwLock<Store>,
    /// Used for paging links when a request carries no `Host` header.
    base_url: String,
    /// Full route templates, so stats label unrouted paths as one bucket instead of
    /// one entry per raw URL.
    templates: HashSet<String>,
}

enum RouteKind {
    Collection,
    Item,
    BatchRead,
    Search,
}

fn route_table() -> Vec<(ObjectType, RouteKind, String)> {
    let mut routes = Vec::new();
    for prefix in VERSION_PREFIXES {
        for ty in ObjectType::ALL {
            let base = format!("{prefix}/{}", ty.path());
            routes.push((ty, RouteKind::Item, format!("{base}/{{{}}}", ty.id_param())));
            routes.push((ty, RouteKind::BatchRead, format!("{base}/batch/read")));
            routes.push((ty, RouteKind::Search, format!("{base}/search")));
            routes.push((ty, RouteKind::Collection, base));
        }
    }
    routes
}

impl HubSpot {
    pub(crate) fn new(control: Arc<Control>, base_url: &str) -> HubSpot {
        HubSpot {
            control,
            store: RwLock::new(Store::seed()),
            base_url: base_url.to_owned(),
            templates: route_table()
                .into_iter()
                .map(|(_, _, path)| path)
                .chain(OTHER_ROUTES.map(str::to_owned))
                .map(|path| format!("{PREFIX}{path}"))
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

impl Vendor for HubSpot {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    fn seed_tokens(&self) -> Vec<String> {
        vec![HUBSPOT_DEMO_TOKEN.to_owned()]
    }

    fn default_rate_limit(&self) -> RateLimitConfig {
        // Public OAuth apps: 110 requests per 10 s per installed account (vendors.md §2).
        RateLimitConfig {
            max: 110,
            interval_ms: 10_000,
        }
    }

    fn reset_data(&self) {
        *self.write() = Store::seed();
    }

    fn router(self: Arc<Self>) -> Router {
        let mut router: Router<Arc<HubSpot>> = Router::new();
        for (ty, kind, path) in route_table() {
            router = match kind {
                RouteKind::Collection => router.route(
                    &path,
                    get(
                        move |State(hs): State<Arc<HubSpot>>, info: ReqInfo| async move {
                            hs.list(ty, &info)
                        },
                    )
                    .post(
                        move |State(hs): State<Arc<HubSpot>>, body: Bytes| async move {
                            hs.create(ty, &body)
                        },
                    ),
                ),
                RouteKind::Item => router.route(
                    &path,
                    get(
                        move |State(hs): State<Arc<HubSpot>>,
                              info: ReqInfo,
                              id: Result<Path<String>, PathRejection>| async move {
                            hs.get_one(ty, &info, id)
                        },
                    )
                    .patch(
                        move |State(hs): State<Arc<HubSpot>>,
                              id: Result<Path<String>, PathRejection>,
                              body: Bytes| async move {
                            hs.update(ty, id, &body)
                        },
                    )
                    .delete(
                        move |State(hs): State<Arc<HubSpot>>,
                              id: Result<Path<String>, PathRejection>| async move {
                            hs.archive(ty, id)
                        },
                    ),
                ),
                RouteKind::BatchRead => router.route(
                    &path,
                    post(
                        move |State(hs): State<Arc<HubSpot>>, info: ReqInfo, body: Bytes| async move {
                            hs.batch_read(ty, &info, &body)
                        },
                    ),
                ),
                RouteKind::Search => router.route(
                    &path,
                    post(
                        move |State(hs): State<Arc<HubSpot>>, body: Bytes| async move {
                            hs.search(ty, &body)
                        },
                    ),
                ),
            };
        }
        let owners_list =
            |State(hs): State<Arc<HubSpot>>, info: ReqInfo| async move { hs.list_owners(&info) };
        router
            .route(OWNERS_ROUTE, get(owners_list))
            .route(OWNERS_SLASH_ROUTE, get(owners_list))
            .route(
                OWNER_ROUTE,
                get(
                    |State(hs): State<Arc<HubSpot>>,
                     info: ReqInfo,
                     id: Result<Path<String>, PathRejection>| async move {
                        hs.get_owner(&info, id)
                    },
                ),
            )
            .route(
                PIPELINES_ROUTE,
                get(|| async { Json(json!({ "results": PIPELINES.iter().map(data::Pipeline::render).collect::<Vec<_>>() })) }),
            )
            .route(
                PIPELINE_ROUTE,
                get(
                    |State(hs): State<Arc<HubSpot>>,
                     id: Result<Path<String>, PathRejection>| async move {
                        hs.get_pipeline(id, false)
                    },
                ),
            )
            .route(
                STAGES_ROUTE,
                get(
                    |State(hs): State<Arc<HubSpot>>,
                     id: Result<Path<String>, PathRejection>| async move {
                        hs.get_pipeline(id, true)
                    },
                ),
            )
            .route(ACCOUNT_ROUTE, get(|| async { Json(webhooks::account_details()) }))
            .method_not_allowed_fallback(
                |State(hs): State<Arc<HubSpot>>, info: ReqInfo| async move {
                    hs.error(
                        StatusCode::METHOD_NOT_ALLOWED,
                        "VALIDATION_ERROR",
                        format!(
                            "HTTP method {} is not supported by this resource",
                            info.method
                        ),
                        None,
                    )
                },
            )
            .fallback(|State(hs): State<Arc<HubSpot>>, info: ReqInfo| async move {
                hs.error(
                    StatusCode::NOT_FOUND,
                    "OBJECT_NOT_FOUND",
                    format!("No resource found for {} {}", info.method, info.path),
                    None,
                )
            })
            .layer(middleware::from_fn_with_state(
                self.clone(),
                wire::gate::<HubSpot>,
            ))
            .with_state(self)
    }

    fn demo_account(&self, base_url: &str) -> DemoAccount {
        DemoAccount {
            provider: PROVIDER,
            credentials: json!({ "accessToken": HUBSPOT_DEMO_TOKEN }),
            settings: json!({ "baseUrl": format!("{base_url}{PREFIX}") }),
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
            .route("/oauth/authorize", get(oauth::authorize::<HubSpot>))
            .route("/oauth/v1/token", post(oauth::token::<HubSpot>))
            .route("/oauth/v3/token", post(oauth::token::<HubSpot>))
            .route("/oauth/2026-03/token", post(oauth::token::<HubSpot>))
            .route(
                "/oauth/v1/refresh-tokens/{token}",
                axum::routing::delete(delete_refresh_token),
            )
            .with_state(self)
    }
}

/// The properties each sample is read with, as the provider file's list operation asks
/// for them (`None`: every schema property), and the associations it adds.
fn sample_read(ty: ObjectType) -> (Option<&'static [&'static str]>, Vec<ObjectType>) {
    use ObjectType::{Companies, Contacts, Deals};
    match ty {
        ObjectType::Contacts | ObjectType::Companies => (None, Vec::new()),
        ObjectType::Deals => (
            Some(&[
                "dealname",
                "description",
                "amount",
                "deal_currency_code",
                "dealstage",
                "pipeline",
                "closedate",
                "hubspot_owner_id",
                "hs_deal_stage_probability",
                "notes_last_updated",
            ]),
            vec![Companies, Contacts],
        ),
        ObjectType::Notes => (
            Some(&["hs_note_body", "hs_timestamp", "hubspot_owner_id"]),
            vec![Contacts, Companies, Deals],
        ),
        ObjectType::Tasks => (
            Some(&[
                "hs_task_subject",
                "hs_task_body",
                "hs_task_status",
                "hs_task_priority",
                "hs_timestamp",
                "hs_task_completion_date",
                "hubspot_owner_id",
            ]),
            vec![Contacts, Companies, Deals],
        ),
        ObjectType::Leads => (None, vec![Contacts, Companies]),
    }
}

/// A handful of seeded records in list-endpoint shape, chosen to include the edge cases
/// (no email, unicode and apostrophe names, no company, no tier, no domain, no industry;
/// deals with no amount, in EUR, in the Renewals pipeline, closed won and lost, with one
/// to three contacts; notes without a contact or with markup; tasks in every status;
/// leads at every stage, with and without a company), read as [`sample_read`] says.
pub(crate) fn sample_records(resource: &str) -> Option<Vec<Value>> {
    let ty = ObjectType::from_path(resource)?;
    let ids: &[u64] = match ty {
        ObjectType::Contacts => &[1001, 1002, 1004, 1005, 1013, 1042, 1100, 1150],
        ObjectType::Companies => &[5001, 5002, 5010, 5021, 5022, 5025, 5026],
        ObjectType::Deals => &[7001, 7002, 7003, 7004, 7005, 7006, 7007, 7026],
        ObjectType::Notes => &[20_001, 20_002, 20_003, 20_005, 20_006, 20_009],
        ObjectType::Tasks => &[30_001, 30_002, 30_003, 30_004, 30_005, 30_006],
        ObjectType::Leads => &[40_001, 40_002, 40_003, 40_004, 40_005, 40_006],
    };
    let store = Store::seed();
    let (properties, associations) = sample_read(ty);
    let owned: Vec<String> = properties
        .unwrap_or_default()
        .iter()
        .map(|p| (*p).to_owned())
        .collect();
    let selection = match properties {
        Some(_) => Selection::Only(&owned),
        None => Selection::Schema,
    };
    Some(
        ids.iter()
            .filter_map(|id| store.live(ty, *id))
            .map(|r| store.render(ty, r, &selection, &associations))
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------
// Wire dialect: error bodies for the gate's outcomes, rate headers

impl Dialect for HubSpot {
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
            429 => {
                let mut r = self.rate_limited();
                *r.status_mut() = status;
                r
            }
            401 => self.unauthenticated(),
            code => {
                // Categories for codes HubSpot does not document are the sandbox's choice.
                let category = match code {
                    400 => "VALIDATION_ERROR",
                    403 => "MISSING_SCOPES",
                    404 => "OBJECT_NOT_FOUND",
                    409 => "CONFLICT",
                    500..=599 => "INTERNAL_ERROR",
                    _ => "UNKNOWN",
                };
                let reason = status.canonical_reason().unwrap_or("Error");
                self.error(status, category, reason, None)
            }
        }
    }

    fn auth_failure(&self, _info: &ReqInfo, _failure: AuthFailure) -> Response {
        self.unauthenticated()
    }

    fn token_expired(
        &self,
        _info: &ReqInfo,
        expired_at: DateTime<Utc>,
        seconds_ago: i64,
    ) -> Response {
        self.error(
            StatusCode::UNAUTHORIZED,
            "EXPIRED_AUTHENTICATION",
            format!("The OAuth token used to make this call expired {seconds_ago} second(s) ago."),
            Some(json!({ "expire time": [iso_millis(expired_at)] })),
        )
    }

    fn throttled(&self, _info: &ReqInfo, _decision: &RateDecision) -> Response {
        self.rate_limited()
    }

    fn rate_headers(&self, headers: &mut HeaderMap, d: &RateDecision) {
        let pairs: [(&'static str, u64); 5] = [
            ("x-hubspot-ratelimit-interval-milliseconds", d.interval_ms),
            ("x-hubspot-ratelimit-max", u64::from(d.max)),
            ("x-hubspot-ratelimit-remaining", u64::from(d.remaining)),
            ("x-hubspot-ratelimit-secondly", u64::from(d.secondly)),
            (
                "x-hubspot-ratelimit-secondly-remaining",
                u64::from(d.secondly_remaining),
            ),
        ];
        for (name, value) in pairs {
            headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Error bodies (vendors.md §1.5 / §2 Errors)

impl HubSpot {
    fn error_body(
        &self,
        category: &str,
        message: impl Into<String>,
        context: Option<Value>,
    ) -> Map<String, Value> {
        let mut body = Map::new();
        body.insert("status".into(), json!("error"));
        body.insert("message".into(), json!(message.into()));
        body.insert("correlationId".into(), json!(self.control.next_uuid()));
        body.insert("category".into(), json!(category));
        if let Some(context) = context {
            body.insert("context".into(), context);
        }
        body
    }

    fn error(
        &self,
        status: StatusCode,
        category: &str,
        message: impl Into<String>,
        context: Option<Value>,
    ) -> Response {
        let body = self.error_body(category, message, context);
        (status, Json(Value::Object(body))).into_response()
    }

    fn unauthenticated(&self) -> Response {
        self.error(
            StatusCode::UNAUTHORIZED,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication \
             and you can find more details at \
             https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            None,
        )
    }

    fn rate_limited(&self) -> Response {
        let body = json!({
            "status": "error",
            "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": self.control.next_uuid(),
            "policyName": "TEN_SECONDLY_ROLLING",
            "requestId": self.control.next_uuid(),
        });
        (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response()
    }

    fn not_found(&self, id: &str) -> Response {
        self.error(
            StatusCode::NOT_FOUND,
            "OBJECT_NOT_FOUND",
            "Object not found.  objectId are usually numeric.",
            Some(json!({ "id": [id] })),
        )
    }

    fn validation(&self, message: impl Into<String>, context: Option<Value>) -> Response {
        self.error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            message,
            context,
        )
    }

    fn invalid_json(&self, e: &serde_json::Error) -> Response {
        let text = e.to_string();
        // serde_json appends " at line L column C"; HubSpot puts the position first.
        let detail = text.split(" at line ").next().unwrap_or(&text);
        self.validation(
            format!(
                "Invalid input JSON on line {}, column {}: {detail}",
                e.line(),
                e.column()
            ),
            None,
        )
    }

    fn parse_body<T: DeserializeOwned>(&self, body: &Bytes) -> Result<T, Reject> {
        serde_json::from_slice(body).map_err(|e| self.invalid_json(&e).into())
    }
}

// ---------------------------------------------------------------------------------------
// Query parameters and cursors

struct ReadParams {
    properties: Option<Vec<String>>,
    associations: Vec<String>,
    archived: bool,
    limit: usize,
    /// Start position (an id, inclusive) decoded from `after`.
    after: Option<u64>,
    id_property: Option<String>,
}

/// Comma-separated and repeated forms both work, as in HubSpot's generated clients.
fn list_param(pairs: &[(String, String)], name: &str) -> Option<Vec<String>> {
    let values = all_params(pairs, name);
    (!values.is_empty()).then(|| values.into_iter().flat_map(split_list).collect())
}

impl HubSpot {
    fn limit_param(
        &self,
        pairs: &[(String, String)],
        default: usize,
        max: usize,
    ) -> Result<usize, Reject> {
        let Some(raw) = last_param(pairs, "limit") else {
            return Ok(default);
        };
        match raw.trim().parse::<i64>() {
            Ok(n) if n >= 1 && usize::try_from(n).is_ok_and(|n| n <= max) => {
                Ok(usize::try_from(n).unwrap_or(max))
            }
            Ok(_) => Err(self
                .validation(
                    format!("limit must be between 1 and {max}; got {raw}"),
                    Some(json!({ "limit": [raw] })),
                )
                .into()),
            Err(_) => Err(self
                .validation(
                    format!("limit must be an integer; got '{raw}'"),
                    Some(json!({ "limit": [raw] })),
                )
                .into()),
        }
    }

    fn archived_param(&self, pairs: &[(String, String)]) -> Result<bool, Reject> {
        match last_param(pairs, "archived") {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) => Err(self
                .validation(
                    format!("archived must be true or false; got '{v}'"),
                    Some(json!({ "archived": [v] })),
                )
                .into()),
        }
    }

    fn after_param(&self, pairs: &[(String, String)]) -> Result<Option<u64>, Reject> {
        let Some(raw) = last_param(pairs, "after") else {
            return Ok(None);
        };
        decode_cursor(raw).map(Some).ok_or_else(|| {
            self.validation(
                format!("Invalid paging cursor: after={raw}"),
                Some(json!({ "after": [raw] })),
            )
            .into()
        })
    }

    fn read_params(&self, query: Option<&str>) -> Result<ReadParams, Reject> {
        let pairs = query_pairs(query);
        let limit = self.limit_param(&pairs, DEFAULT_LIMIT, MAX_LIMIT)?;
        let archived = self.archived_param(&pairs)?;
        let after = self.after_param(&pairs)?;
        Ok(ReadParams {
            properties: list_param(&pairs, "properties").filter(|p| !p.is_empty()),
            associations: list_param(&pairs, "associations").unwrap_or_default(),
            archived,
            limit,
            after,
            id_property: last_param(&pairs, "idProperty").map(str::to_owned),
        })
    }

    fn selection<'a>(params: &'a ReadParams) -> Selection<'a> {
        params
            .properties
            .as_deref()
            .map_or(Selection::Default, Selection::Only)
    }

    fn render(&self, store: &Store, ty: ObjectType, record: &Record, params: &ReadParams) -> Value {
        // Unknown association names are ignored, like unknown properties.
        let associations: Vec<ObjectType> = params
            .associations
            .iter()
            .filter_map(|name| ObjectType::from_association_name(name))
            .collect();
        store.render(ty, record, &Self::selection(params), &associations)
    }
}

/// Cursors are base64 of "<next id>\n", the shape of HubSpot's `NTI1Cg==`.
fn raw_cursor(position: u64) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{position}\n"))
}

/// HubSpot hands the cursor out already percent-encoded (`NTI1Cg%3D%3D`).
fn wire_cursor(position: u64) -> String {
    url::form_urlencoded::byte_serialize(raw_cursor(position).as_bytes()).collect()
}

fn decode_cursor(value: &str) -> Option<u64> {
    // Accept the cursor however the client echoed it: decoded once by the query parser,
    // still percent-encoded (double-encoded by the client), or with '+' turned to ' '.
    let mut text = value.trim().replace(' ', "+");
    if text.contains('%') {
        text = percent_decode(&text)?;
    }
    let engine = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let bytes = engine.decode(text.as_bytes()).ok()?;
    let decoded = String::from_utf8(bytes).ok()?;
    decoded.strip_suffix('\n').unwrap_or(&decoded).parse().ok()
}

// ---------------------------------------------------------------------------------------
// Handlers

#[derive(Deserialize)]
#[serde(untagged)]
enum IdValue {
    Text(String),
    Number(u64),
}

impl IdValue {
    fn into_string(self) -> String {
        match self {
            IdValue::Text(s) => s,
            IdValue::Number(n) => n.to_string(),
        }
    }
}

#[derive(Deserialize)]
struct BatchInput {
    id: IdValue,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchReadBody {
    #[serde(default)]
    properties: Vec<String>,
    id_property: Option<String>,
    inputs: Vec<BatchInput>,
}

#[derive(Deserialize)]
struct AssociationTarget {
    id: IdValue,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AssociationType {
    #[serde(default)]
    association_category: Option<String>,
    association_type_id: u64,
}

#[derive(Deserialize)]
struct AssociationInput {
    to: AssociationTarget,
    #[serde(default)]
    types: Vec<AssociationType>,
}

#[derive(Deserialize)]
struct WriteBody {
    properties: Map<String, Value>,
    #[serde(default)]
    associations: Vec<AssociationInput>,
}

type Changes = Vec<(String, Option<String>)>;

impl HubSpot {
    fn list(&self, ty: ObjectType, info: &ReqInfo) -> Result<Response, Reject> {
        let params = self.read_params(info.query.as_deref())?;
        let start = params.after.unwrap_or(0);
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
        let mut rows = store
            .table(ty)
            .range(start..)
            .map(|(_, r)| r)
            .filter(|r| r.archived_at.is_some() == params.archived);
        let page: Vec<&Record> = rows.by_ref().take(params.limit).collect();
        let next = rows.next().map(|r| r.id);
        let results: Vec<Value> = page
            .iter()
            .map(|r| self.render(&store, ty, r, &params))
            .collect();
        let first_on_page = page.first().map(|r| r.id);
        drop(store);

        let next = if repeat {
            // The vendor bug: hand back the cursor that produced this very page.
            Some(params.after.or(first_on_page).unwrap_or(start))
        } else {
            next
        };
        let mut body = json!({ "results": results });
        if let Some(position) = next {
            body["paging"] = json!({
                "next": {
                    "after": wire_cursor(position),
                    "link": self.next_link(info, position),
                }
            });
        }
        Ok(Json(body).into_response())
    }

    /// The request's own URL with `after` replaced, so following it keeps the caller's
    /// `limit` and `properties`.
    fn next_link(&self, info: &ReqInfo, position: u64) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in info.pairs() {
            if k != "after" {
                query.append_pair(&k, &v);
            }
        }
        query.append_pair("after", &raw_cursor(position));
        let origin = info.origin(&self.base_url);
        format!("{origin}{}?{}", info.path, query.finish())
    }

    fn find<'s>(
        &self,
        store: &'s Store,
        ty: ObjectType,
        id: &str,
        id_property: Option<&str>,
        archived: bool,
    ) -> Result<Option<&'s Record>, Reject> {
        let wanted_state = |r: &&Record| r.archived_at.is_some() == archived;
        match id_property {
            None | Some("hs_object_id") => Ok(id
                .trim()
                .parse::<u64>()
                .ok()
                .and_then(|n| store.table(ty).get(&n))
                .filter(wanted_state)),
            Some("email") if ty == ObjectType::Contacts => {
                Ok(store.table(ty).values().filter(wanted_state).find(|r| {
                    r.property("email")
                        .is_some_and(|e| e.eq_ignore_ascii_case(id))
                }))
            }
            Some(other) => Err(self
                .validation(
                    format!(
                        "{other} is not a unique identifier property for {}",
                        ty.path()
                    ),
                    Some(json!({ "idProperty": [other] })),
                )
                .into()),
        }
    }

    fn get_one(
        &self,
        ty: ObjectType,
        info: &ReqInfo,
        id: Result<Path<String>, PathRejection>,
    ) -> Result<Response, Reject> {
        let Ok(Path(id)) = id else {
            return Err(self.not_found(&info.path).into());
        };
        let params = self.read_params(info.query.as_deref())?;
        let store = self.read();
        let record = self
            .find(
                &store,
                ty,
                &id,
                params.id_property.as_deref(),
                params.archived,
            )?
            .ok_or_else(|| self.not_found(&id))?;
        Ok(Json(self.render(&store, ty, record, &params)).into_response())
    }

    fn batch_read(&self, ty: ObjectType, info: &ReqInfo, body: &Bytes) -> Result<Response, Reject> {
        let started = iso_millis(Utc::now());
        let input: BatchReadBody = self.parse_body(body)?;
        if input.inputs.len() > MAX_BATCH_INPUTS {
            return Err(self
                .validation(
                    format!(
                        "Too many inputs: {} (the limit is {MAX_BATCH_INPUTS})",
                        input.inputs.len()
                    ),
                    None,
                )
                .into());
        }
        let mut params = self.read_params(info.query.as_deref())?;
        params.properties = (!input.properties.is_empty()).then_some(input.properties);

        let mut seen = HashSet::new();
        let mut results = Vec::new();
        let mut missing = Vec::new();
        let store = self.read();
        for BatchInput { id } in input.inputs {
            let id = id.into_string();
            if !seen.insert(id.clone()) {
                continue;
            }
            match self.find(
                &store,
                ty,
                &id,
                input.id_property.as_deref(),
                params.archived,
            )? {
                Some(record) => results.push(self.render(&store, ty, record, &params)),
                None => missing.push(id),
            }
        }
        drop(store);

        let completed = iso_millis(Utc::now());
        if missing.is_empty() {
            return Ok(Json(json!({
                "status": "COMPLETE",
                "results": results,
                "startedAt": started,
                "completedAt": completed,
            }))
            .into_response());
        }
        let body = json!({
            "status": "COMPLETE",
            "results": results,
            "numErrors": 1,
            "errors": [{
                "status": "error",
                "category": "OBJECT_NOT_FOUND",
                "message": format!(
                    "Could not get some {} objects, they may be deleted or not exist. Check that ids are valid.",
                    ty.upper_singular()
                ),
                "context": { "ids": missing },
            }],
            "startedAt": started,
            "completedAt": completed,
        });
        Ok((StatusCode::MULTI_STATUS, Json(body)).into_response())
    }

    /// Checks a write's `properties` against the schema; `None` clears a value.
    fn validate_properties(
        &self,
        ty: ObjectType,
        properties: Map<String, Value>,
    ) -> Result<Changes, Reject> {
        let mut problems = Vec::new();
        let mut changes = Vec::new();
        for (name, value) in properties {
            let (code, message) = if !ty.is_known(&name) {
                (
                    "PROPERTY_DOESNT_EXIST",
                    format!("Property \"{name}\" does not exist"),
                )
            } else if ty.is_read_only(&name) {
                (
                    "READ_ONLY_VALUE",
                    format!("\"{name}\" is a read only property; its value cannot be set."),
                )
            } else {
                let text = match value {
                    Value::String(s) => (!s.is_empty()).then_some(s),
                    Value::Null => None,
                    Value::Number(n) => Some(n.to_string()),
                    Value::Bool(b) => Some(b.to_string()),
                    Value::Array(_) | Value::Object(_) => {
                        problems.push((
                            name.clone(),
                            "INVALID_PROPERTY_VALUE",
                            format!("Property \"{name}\" must be a string, number or boolean"),
                        ));
                        continue;
                    }
                };
                match text {
                    Some(v) if ty.options(&name).is_some_and(|o| !o.contains(&v.as_str())) => {
                        let allowed = ty.options(&name).unwrap_or_default().join(", ");
                        (
                            "INVALID_OPTION",
                            format!("{v} was not one of the allowed options: [{allowed}]"),
                        )
                    }
                    // Engagement timestamps come back as ISO-8601 with milliseconds,
                    // whichever accepted form they were written in.
                    Some(v) if name == "hs_timestamp" => match data::parse_datetime(&v)
                        .and_then(chrono::DateTime::from_timestamp_millis)
                    {
                        Some(t) => {
                            changes.push((name, Some(iso_millis(t))));
                            continue;
                        }
                        None => (
                            "INVALID_DATE",
                            format!(
                                "{v} is not a valid datetime: use ISO-8601 or epoch milliseconds"
                            ),
                        ),
                    },
                    text => {
                        changes.push((name, text));
                        continue;
                    }
                }
            };
            problems.push((name, code, message));
        }
        if problems.is_empty() {
            return Ok(changes);
        }
        Err(self.invalid_properties(&problems))
    }

    /// HubSpot's 400 for property values it refuses: `(name, code, message)` each.
    fn invalid_properties(&self, problems: &[(String, &str, String)]) -> Reject {
        let inner: Vec<Value> = problems
            .iter()
            .map(|(name, code, message)| {
                json!({
                    "isValid": false,
                    "message": message,
                    "error": code,
                    "name": name,
                    "localizedErrorMessage": message,
                })
            })
            .collect();
        let errors: Vec<Value> = problems
            .iter()
            .map(|(name, code, message)| {
                json!({ "message": message, "code": code, "context": { "propertyName": [name] } })
            })
            .collect();
        let message = format!("Property values were not valid: {}", Value::Array(inner));
        let mut body = self.error_body("VALIDATION_ERROR", message, None);
        body.insert("errors".into(), Value::Array(errors));
        (StatusCode::BAD_REQUEST, Json(Value::Object(body)))
            .into_response()
            .into()
    }

    /// A deal's `pipeline` must be a deal pipeline and its `dealstage` one of that
    /// pipeline's stages, once `changes` are applied to `current`.
    fn check_deal_stage(&self, current: Option<&Record>, changes: &Changes) -> Result<(), Reject> {
        let effective = |name: &str| -> Option<String> {
            match changes.iter().rev().find(|(k, _)| k == name) {
                Some((_, value)) => value.clone(),
                None => current.and_then(|r| r.property(name)).map(str::to_owned),
            }
        };
        let pipeline_id = effective("pipeline").unwrap_or_else(|| DEFAULT_PIPELINE.to_owned());
        let Some(pipeline) = data::pipeline(&pipeline_id) else {
            let allowed: Vec<&str> = PIPELINES.iter().map(|p| p.id).collect();
            return Err(self.invalid_properties(&[(
                "pipeline".to_owned(),
                "INVALID_OPTION",
                format!(
                    "{pipeline_id} was not one of the allowed options: [{}]",
                    allowed.join(", ")
                ),
            )]));
        };
        match effective("dealstage") {
            Some(stage) if !pipeline.has_stage(&stage) => Err(self.invalid_properties(&[(
                "dealstage".to_owned(),
                "INVALID_OPTION",
                format!(
                    "{stage} was not one of the allowed options for pipeline {}: [{}]",
                    pipeline.id,
                    pipeline.stage_ids().join(", ")
                ),
            )])),
            _ => Ok(()),
        }
    }

    /// Contacts are unique by email (case-insensitive) in HubSpot.
    fn check_email_conflict(
        &self,
        store: &Store,
        ty: ObjectType,
        changes: &Changes,
        own_id: Option<u64>,
    ) -> Result<(), Reject> {
        if ty != ObjectType::Contacts {
            return Ok(());
        }
        let Some(Some(email)) = changes.iter().find(|(k, _)| k == "email").map(|(_, v)| v) else {
            return Ok(());
        };
        let existing = store.table(ty).values().find(|r| {
            r.archived_at.is_none()
                && Some(r.id) != own_id
                && r.property("email")
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
        });
        match existing {
            Some(r) => Err(self
                .error(
                    StatusCode::CONFLICT,
                    "CONFLICT",
                    format!("Contact already exists. Existing ID: {}", r.id),
                    None,
                )
                .into()),
            None => Ok(()),
        }
    }

    /// The type each association input points at: given by its `types`, or for contacts
    /// and companies without `types`, the other one of the two.
    fn association_targets(
        &self,
        ty: ObjectType,
        inputs: Vec<AssociationInput>,
    ) -> Result<Vec<(ObjectType, String)>, Reject> {
        let mut out = Vec::new();
        for input in inputs {
            let id = input.to.id.into_string();
            let target = match input.types.first() {
                Some(kind) => {
                    let defined = kind
                        .association_category
                        .as_deref()
                        .is_none_or(|c| c == "HUBSPOT_DEFINED");
                    defined
                        .then(|| ty.association_target(kind.association_type_id))
                        .flatten()
                        .ok_or_else(|| {
                            self.validation(
                                format!(
                                    "{} is not a valid association type id from {}",
                                    kind.association_type_id,
                                    ty.path()
                                ),
                                Some(json!({ "associationTypeId": [kind.association_type_id.to_string()] })),
                            )
                        })?
                }
                None => match ty {
                    ObjectType::Contacts => ObjectType::Companies,
                    ObjectType::Companies => ObjectType::Contacts,
                    _ => {
                        return Err(self
                            .validation(
                                "Association types are required: types must not be empty",
                                Some(json!({ "toObjectId": [id] })),
                            )
                            .into());
                    }
                },
            };
            out.push((target, id));
        }
        Ok(out)
    }

    /// Sets `name` to `value` when the write left it unset (a create's defaults).
    fn default_property(changes: &mut Changes, name: &str, value: &str) {
        if !changes.iter().any(|(k, v)| k == name && v.is_some()) {
            changes.retain(|(k, _)| k != name);
            changes.push((name.into(), Some(value.into())));
        }
    }

    fn create(&self, ty: ObjectType, body: &Bytes) -> Result<Response, Reject> {
        let input: WriteBody = self.parse_body(body)?;
        let (_, rendered) = self.create_record(ty, input, Source::Api)?;
        Ok((StatusCode::CREATED, Json(rendered)).into_response())
    }

    /// A create as the API makes it, reported to webhooks; returns the id and the record
    /// as the write answers it.
    fn create_record(
        &self,
        ty: ObjectType,
        input: WriteBody,
        source: Source,
    ) -> Result<(u64, Value), Reject> {
        let mut changes = self.validate_properties(ty, input.properties)?;
        let targets = self.association_targets(ty, input.associations)?;
        let missing: Vec<(String, &str, String)> = ty
            .required_on_create()
            .iter()
            .filter(|name| !changes.iter().any(|(k, v)| k == *name && v.is_some()))
            .map(|name| {
                (
                    (*name).to_owned(),
                    "REQUIRED_PROPERTY",
                    format!("{name} is required"),
                )
            })
            .collect();
        if !missing.is_empty() {
            return Err(self.invalid_properties(&missing));
        }
        match ty {
            ObjectType::Deals => {
                Self::default_property(&mut changes, "pipeline", DEFAULT_PIPELINE);
                self.check_deal_stage(None, &changes)?;
            }
            ObjectType::Leads => {
                Self::default_property(&mut changes, "hs_pipeline", data::LEAD_PIPELINE);
                Self::default_property(&mut changes, "hs_pipeline_stage", data::LEAD_STAGES[0].0);
                if !targets.iter().any(|(t, _)| *t == ObjectType::Contacts) {
                    return Err(self
                        .validation("A lead must be associated with an existing contact", None)
                        .into());
                }
            }
            _ => {}
        }

        let mut store = self.write();
        self.check_email_conflict(&store, ty, &changes, None)?;
        let mut target_ids = Vec::new();
        for (other, target) in &targets {
            match target
                .parse::<u64>()
                .ok()
                .filter(|id| store.live(*other, *id).is_some())
            {
                Some(id) if target_ids.contains(&(*other, id)) => {}
                Some(id) => target_ids.push((*other, id)),
                None => {
                    return Err(self
                        .validation(
                            format!(
                                "Association target {} {target} does not exist",
                                other.path()
                            ),
                            Some(json!({ "toObjectId": [target] })),
                        )
                        .into());
                }
            }
        }

        let now = iso_millis(Utc::now());
        let id = store.allocate_id(ty);
        let mut record = Record {
            id,
            properties: Default::default(),
            archived_at: None,
            links: Vec::new(),
        };
        apply_changes(ty, &mut record, changes, &now);
        record
            .properties
            .entry(ty.created_property().into())
            .or_insert_with(|| now.clone());
        record
            .properties
            .insert(ty.modified_property().into(), now.clone());
        record
            .properties
            .insert("hs_object_id".into(), id.to_string());
        // Contact -> company lives in the contact's `associatedcompanyid` property, exactly
        // as HubSpot mirrors the primary company; other associations live on the deal,
        // note, task or lead.
        let mut owner_links = Vec::new();
        for (other, target) in target_ids {
            match (ty, other) {
                (ObjectType::Contacts, ObjectType::Companies) => {
                    record
                        .properties
                        .entry("associatedcompanyid".into())
                        .or_insert_with(|| target.to_string());
                }
                (ObjectType::Companies, ObjectType::Contacts) => {
                    if let Some(c) = store.table_mut(other).get_mut(&target) {
                        c.properties
                            .insert("associatedcompanyid".into(), id.to_string());
                    }
                }
                (ty, other) if ty.holds_links() => record.links.push((other, target)),
                (_, other) if other.holds_links() => owner_links.push((other, target)),
                _ => {}
            }
        }
        store.table_mut(ty).insert(id, record);
        for (owner_ty, owner) in owner_links {
            store.link(owner_ty, owner, ty, id);
        }
        let rendered = store
            .live(ty, id)
            .map(|r| store.render(ty, r, &Selection::Present, &[]))
            .unwrap_or(Value::Null);
        drop(store);
        self.report(ty, id, Action::Created, source, Vec::new());
        Ok((id, rendered))
    }

    fn update(
        &self,
        ty: ObjectType,
        id: Result<Path<String>, PathRejection>,
        body: &Bytes,
    ) -> Result<Response, Reject> {
        let Ok(Path(id)) = id else {
            return Err(self.not_found("").into());
        };
        let input: WriteBody = self.parse_body(body)?;
        let rendered = self.update_record(ty, &id, input, Source::Api)?;
        Ok(Json(rendered).into_response())
    }

    /// An update as the API makes it, reported to webhooks with the properties whose
    /// value it changed.
    fn update_record(
        &self,
        ty: ObjectType,
        id: &str,
        input: WriteBody,
        source: Source,
    ) -> Result<Value, Reject> {
        let changes = self.validate_properties(ty, input.properties)?;
        let mut store = self.write();
        let numeric = id
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| store.live(ty, *n).is_some())
            .ok_or_else(|| self.not_found(id))?;
        self.check_email_conflict(&store, ty, &changes, Some(numeric))?;
        if ty == ObjectType::Deals {
            self.check_deal_stage(store.live(ty, numeric), &changes)?;
        }
        let now = iso_millis(Utc::now());
        let Some(record) = store.table_mut(ty).get_mut(&numeric) else {
            return Err(self.not_found(id).into());
        };
        // HubSpot reports a property change only when the value really changed.
        let changed: Vec<(String, Value)> = changes
            .iter()
            .filter(|(name, value)| record.property(name) != value.as_deref())
            .map(|(name, value)| {
                (
                    name.clone(),
                    value.clone().map_or(Value::Null, Value::String),
                )
            })
            .collect();
        apply_changes(ty, record, changes, &now);
        record.properties.insert(ty.modified_property().into(), now);
        let rendered = store
            .live(ty, numeric)
            .map(|r| store.render(ty, r, &Selection::Present, &[]))
            .unwrap_or(Value::Null);
        drop(store);
        self.report(ty, numeric, Action::Updated, source, changed);
        Ok(rendered)
    }

    fn archive(&self, ty: ObjectType, id: Result<Path<String>, PathRejection>) -> Response {
        if let Ok(Path(id)) = id {
            self.archive_record(ty, &id, Source::Api);
        }
        StatusCode::NO_CONTENT.into_response()
    }

    /// Archives a live record (reported to webhooks); false when there was none.
    fn archive_record(&self, ty: ObjectType, id: &str, source: Source) -> bool {
        let Ok(numeric) = id.trim().parse::<u64>() else {
            return false;
        };
        let now = iso_millis(Utc::now());
        let mut store = self.write();
        let Some(record) = store
            .table_mut(ty)
            .get_mut(&numeric)
            .filter(|r| r.archived_at.is_none())
        else {
            return false;
        };
        record.archived_at = Some(now);
        drop(store);
        self.report(ty, numeric, Action::Deleted, source, Vec::new());
        true
    }
}
// ---------------------------------------------------------------------------------------
// Search (`POST /crm/v3/objects/<type>/search`)
//
// Filter groups are ORed, the filters of a group ANDed. Datetime properties compare as
// instants (a filter value may be epoch milliseconds or ISO-8601), numeric ones as
// numbers, the rest as case-insensitive text. `query` matches records where every word
// starts a token of one of the type's default searchable properties. Results are in id
// order unless `sorts` names a property; `after` is an offset, and (as in HubSpot) no
// page starts at or past the 10,000th result. Archived records are never found.

const SEARCH_DEFAULT_LIMIT: usize = 10;
const SEARCH_MAX_LIMIT: usize = 200;
const SEARCH_MAX_RESULTS: usize = 10_000;
const SEARCH_MAX_GROUPS: usize = 5;
const SEARCH_MAX_FILTERS_PER_GROUP: usize = 10;
const SEARCH_MAX_FILTERS: usize = 25;
const SEARCH_MAX_QUERY: usize = 3000;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SearchBody {
    #[serde(default)]
    filter_groups: Vec<SearchGroup>,
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    properties: Vec<String>,
    #[serde(default)]
    sorts: Vec<Value>,
    #[serde(default)]
    limit: Option<Value>,
    #[serde(default)]
    after: Option<Value>,
}

#[derive(Deserialize)]
struct SearchGroup {
    #[serde(default)]
    filters: Vec<SearchFilter>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SearchFilter {
    property_name: String,
    operator: String,
    #[serde(default)]
    value: Option<Value>,
    #[serde(default)]
    high_value: Option<Value>,
    #[serde(default)]
    values: Option<Vec<Value>>,
}

/// A filter value, typed by the property it is compared with.
#[derive(Clone, Debug, PartialEq, PartialOrd)]
enum Operand {
    Instant(i64),
    Number(f64),
    Text(String),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
}

impl Cmp {
    fn accepts(self, o: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self {
            Cmp::Eq => o == Equal,
            Cmp::Neq => o != Equal,
            Cmp::Lt => o == Less,
            Cmp::Lte => o != Greater,
            Cmp::Gt => o == Greater,
            Cmp::Gte => o != Less,
        }
    }
}

enum Check {
    Compare(Cmp),
    Between(Operand, Operand),
    In(Vec<Operand>, bool),
    Has(bool),
    Token(String, bool),
}

struct CompiledFilter {
    property: String,
    operand: Option<Operand>,
    check: Check,
}

fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn operand(property: &str, text: &str) -> Option<Operand> {
    if data::is_datetime(property) {
        data::parse_datetime(text).map(Operand::Instant)
    } else if data::is_number(property) {
        text.trim().parse::<f64>().ok().map(Operand::Number)
    } else {
        Some(Operand::Text(text.to_lowercase()))
    }
}

/// Whether `word` starts a token of `text` (both lower-case).
fn starts_token(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric())
    })
}

/// `*` matches any run of characters; the rest literally (lower-case).
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return false;
    };
    if parts.len() == 1 {
        return text == pattern;
    }
    if !text.starts_with(first) || !text.ends_with(last) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

impl CompiledFilter {
    fn matches(&self, record: &Record) -> bool {
        let raw = record.property(&self.property);
        let actual = raw.and_then(|v| operand(&self.property, v));
        match &self.check {
            Check::Has(want) => raw.is_some() == *want,
            Check::Compare(cmp) => match (&actual, &self.operand) {
                (Some(a), Some(b)) => a.partial_cmp(b).is_some_and(|o| cmp.accepts(o)),
                // NEQ matches records without a value; the others do not.
                _ => *cmp == Cmp::Neq,
            },
            Check::Between(low, high) => actual.is_some_and(|a| &a >= low && &a <= high),
            Check::In(values, want) => actual.is_some_and(|a| values.contains(&a)) == *want,
            Check::Token(pattern, want) => {
                let text = raw.unwrap_or_default().to_lowercase();
                let found = if pattern.contains('*') {
                    glob(pattern, &text)
                } else {
                    text.split(|c: char| !c.is_alphanumeric() && c != '@' && c != '.')
                        .any(|t| t == pattern)
                        || text == *pattern
                };
                found == *want
            }
        }
    }
}

impl HubSpot {
    fn compile_filter(&self, ty: ObjectType, f: SearchFilter) -> Result<CompiledFilter, Reject> {
        let property = f.property_name;
        if !ty.is_known(&property) {
            return Err(self
                .validation(
                    format!("There was a problem with the request: property {property} does not exist on {}", ty.path()),
                    Some(json!({ "propertyName": [property] })),
                )
                .into());
        }
        let bad_value = |what: &str| -> Reject {
            self.validation(
                format!("Filter on {property} with operator {}: {what}", f.operator),
                Some(json!({ "propertyName": [property.clone()] })),
            )
            .into()
        };
        let single = || -> Result<Operand, Reject> {
            let text = f
                .value
                .as_ref()
                .and_then(value_text)
                .ok_or_else(|| bad_value("a value is required"))?;
            operand(&property, &text)
                .ok_or_else(|| bad_value(&format!("'{text}' is not a valid value")))
        };
        let (operand_value, check) = match f.operator.as_str() {
            "EQ" => (Some(single()?), Check::Compare(Cmp::Eq)),
            "NEQ" => (Some(single()?), Check::Compare(Cmp::Neq)),
            "LT" => (Some(single()?), Check::Compare(Cmp::Lt)),
            "LTE" => (Some(single()?), Check::Compare(Cmp::Lte)),
            "GT" => (Some(single()?), Check::Compare(Cmp::Gt)),
            "GTE" => (Some(single()?), Check::Compare(Cmp::Gte)),
            "BETWEEN" => {
                let low = single()?;
                let high_text = f
                    .high_value
                    .as_ref()
                    .and_then(value_text)
                    .ok_or_else(|| bad_value("highValue is required"))?;
                let high = operand(&property, &high_text)
                    .ok_or_else(|| bad_value(&format!("'{high_text}' is not a valid value")))?;
                (None, Check::Between(low, high))
            }
            op @ ("IN" | "NOT_IN") => {
                let values = f
                    .values
                    .as_ref()
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| bad_value("values is required"))?;
                let mut out = Vec::new();
                for v in values {
                    let text = value_text(v).ok_or_else(|| bad_value("values must be strings"))?;
                    out.push(
                        operand(&property, &text)
                            .ok_or_else(|| bad_value(&format!("'{text}' is not a valid value")))?,
                    );
                }
                (None, Check::In(out, op == "IN"))
            }
            "HAS_PROPERTY" => (None, Check::Has(true)),
            "NOT_HAS_PROPERTY" => (None, Check::Has(false)),
            op @ ("CONTAINS_TOKEN" | "NOT_CONTAINS_TOKEN") => {
                let text = f
                    .value
                    .as_ref()
                    .and_then(value_text)
                    .ok_or_else(|| bad_value("a value is required"))?;
                (
                    None,
                    Check::Token(text.to_lowercase(), op == "CONTAINS_TOKEN"),
                )
            }
            other => {
                return Err(self
                    .validation(
                        format!("Unknown filter operator {other}"),
                        Some(json!({ "operator": [other] })),
                    )
                    .into());
            }
        };
        Ok(CompiledFilter {
            property,
            operand: operand_value,
            check,
        })
    }

    fn search_limit(&self, raw: Option<&Value>) -> Result<usize, Reject> {
        let Some(raw) = raw.filter(|v| !v.is_null()) else {
            return Ok(SEARCH_DEFAULT_LIMIT);
        };
        let n = value_text(raw).and_then(|t| t.trim().parse::<usize>().ok());
        match n {
            Some(n) if n <= SEARCH_MAX_LIMIT => Ok(n),
            _ => Err(self
                .validation(
                    format!("limit must be between 0 and {SEARCH_MAX_LIMIT}; got {raw}"),
                    Some(json!({ "limit": [raw.to_string()] })),
                )
                .into()),
        }
    }

    fn search(&self, ty: ObjectType, body: &Bytes) -> Result<Response, Reject> {
        let input: SearchBody = if body.is_empty() {
            self.parse_body(&Bytes::from_static(b"{}"))?
        } else {
            self.parse_body(body)?
        };
        let limit = self.search_limit(input.limit.as_ref())?;
        let offset = match input.after.as_ref().filter(|v| !v.is_null()) {
            None => 0,
            Some(raw) => value_text(raw)
                .and_then(|t| t.trim().parse::<usize>().ok())
                .ok_or_else(|| {
                    self.validation(
                        format!("Invalid paging cursor: after={raw}"),
                        Some(json!({ "after": [raw.to_string()] })),
                    )
                })?,
        };
        if offset >= SEARCH_MAX_RESULTS {
            return Err(self
                .validation(
                    format!("The search endpoint returns at most {SEARCH_MAX_RESULTS} results; after={offset} is past them"),
                    None,
                )
                .into());
        }
        let groups = input.filter_groups;
        let total_filters: usize = groups.iter().map(|g| g.filters.len()).sum();
        if groups.len() > SEARCH_MAX_GROUPS
            || total_filters > SEARCH_MAX_FILTERS
            || groups
                .iter()
                .any(|g| g.filters.len() > SEARCH_MAX_FILTERS_PER_GROUP)
        {
            return Err(self
                .validation(
                    format!(
                        "Too many filters: at most {SEARCH_MAX_GROUPS} filterGroups, {SEARCH_MAX_FILTERS_PER_GROUP} filters per group and {SEARCH_MAX_FILTERS} filters in all"
                    ),
                    None,
                )
                .into());
        }
        if groups.iter().any(|g| g.filters.is_empty()) {
            return Err(self
                .validation("A filterGroup must have at least one filter", None)
                .into());
        }
        let mut compiled: Vec<Vec<CompiledFilter>> = Vec::new();
        for group in groups {
            let mut filters = Vec::new();
            for f in group.filters {
                filters.push(self.compile_filter(ty, f)?);
            }
            compiled.push(filters);
        }
        let words: Vec<String> = match input.query.as_deref() {
            Some(q) if q.chars().count() > SEARCH_MAX_QUERY => {
                return Err(self
                    .validation(
                        format!("query must be at most {SEARCH_MAX_QUERY} characters"),
                        None,
                    )
                    .into());
            }
            Some(q) => q.split_whitespace().map(str::to_lowercase).collect(),
            None => Vec::new(),
        };
        let sort = self.search_sort(ty, &input.sorts)?;

        let store = self.read();
        let mut hits: Vec<Record> = store
            .table(ty)
            .values()
            .filter(|r| r.archived_at.is_none())
            .map(|r| store.effective(ty, r))
            .filter(|r| {
                compiled.is_empty() || compiled.iter().any(|g| g.iter().all(|f| f.matches(r)))
            })
            .filter(|r| {
                words.iter().all(|w| {
                    ty.searchable_properties().iter().any(|p| {
                        r.property(p)
                            .is_some_and(|v| starts_token(&v.to_lowercase(), w))
                    })
                })
            })
            .collect();
        if let Some((property, descending)) = &sort {
            hits.sort_by(|a, b| {
                let key = |r: &Record| r.property(property).and_then(|v| operand(property, v));
                let ordering = match (key(a), key(b)) {
                    (Some(x), Some(y)) => {
                        let o = x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal);
                        if *descending { o.reverse() } else { o }
                    }
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (None, None) => std::cmp::Ordering::Equal,
                };
                ordering.then(a.id.cmp(&b.id))
            });
        }
        let total = hits.len();
        let selection = if input.properties.is_empty() {
            Selection::Default
        } else {
            Selection::Only(&input.properties)
        };
        let results: Vec<Value> = hits
            .iter()
            .skip(offset)
            .take(limit)
            .map(|r| r.render(ty, &selection))
            .collect();
        drop(store);
        let mut out = json!({ "total": total, "results": results });
        let next = offset + limit;
        if limit > 0 && next < total && next < SEARCH_MAX_RESULTS {
            out["paging"] = json!({ "next": { "after": next.to_string() } });
        }
        Ok(Json(out).into_response())
    }

    /// The first of `sorts`: `"prop"`, `"-prop"` or `{propertyName, direction}`.
    fn search_sort(
        &self,
        ty: ObjectType,
        sorts: &[Value],
    ) -> Result<Option<(String, bool)>, Reject> {
        let Some(first) = sorts.first() else {
            return Ok(None);
        };
        let (name, descending) = match first {
            Value::String(s) => match s.strip_prefix('-') {
                Some(rest) => (rest.to_owned(), true),
                None => (s.clone(), false),
            },
            Value::Object(o) => (
                o.get("propertyName")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                o.get("direction").and_then(Value::as_str) == Some("DESCENDING"),
            ),
            _ => (String::new(), false),
        };
        if !ty.is_known(&name) {
            return Err(self
                .validation(
                    format!("Cannot sort by '{name}': not a property of {}", ty.path()),
                    Some(json!({ "sorts": [first.to_string()] })),
                )
                .into());
        }
        Ok(Some((name, descending)))
    }
}

/// Applies validated `changes` to `record`. A task moving to COMPLETED gets its
/// `hs_task_completion_date` (HubSpot sets it; it is read-only); moving away clears it.
fn apply_changes(ty: ObjectType, record: &mut Record, changes: Changes, now: &str) {
    let was_completed = record.property("hs_task_status") == Some("COMPLETED");
    for (name, value) in changes {
        match value {
            Some(v) => record.properties.insert(name, v),
            None => record.properties.remove(&name),
        };
    }
    if ty == ObjectType::Tasks {
        let completed = record.property("hs_task_status") == Some("COMPLETED");
        if completed && !was_completed {
            record
                .properties
                .insert("hs_task_completion_date".into(), now.to_owned());
        } else if !completed {
            record.properties.remove("hs_task_completion_date");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Owners and pipelines

impl HubSpot {
    /// `GET /crm/v3/owners`: `limit` (default 100, max 500), `after`, `email`, `archived`.
    fn list_owners(&self, info: &ReqInfo) -> Result<Response, Reject> {
        let pairs = info.pairs();
        let limit = self.limit_param(&pairs, OWNERS_DEFAULT_LIMIT, OWNERS_MAX_LIMIT)?;
        let archived = self.archived_param(&pairs)?;
        let start = self.after_param(&pairs)?.unwrap_or(0);
        let email = last_param(&pairs, "email").filter(|e| !e.trim().is_empty());
        let all = data::owners();
        let mut rows = all.iter().filter(|o| {
            o.id >= start
                && o.archived == archived
                && email.is_none_or(|e| o.email.eq_ignore_ascii_case(e.trim()))
        });
        let results: Vec<Value> = rows.by_ref().take(limit).map(data::Owner::render).collect();
        let mut body = json!({ "results": results });
        if let Some(next) = rows.next() {
            body["paging"] = json!({
                "next": {
                    "after": wire_cursor(next.id),
                    "link": self.next_link(info, next.id),
                }
            });
        }
        Ok(Json(body).into_response())
    }

    /// `GET /crm/v3/owners/{ownerId}`, `idProperty=id|userId`, `archived`.
    fn get_owner(
        &self,
        info: &ReqInfo,
        id: Result<Path<String>, PathRejection>,
    ) -> Result<Response, Reject> {
        let Ok(Path(id)) = id else {
            return Err(self.not_found(&info.path).into());
        };
        let pairs = info.pairs();
        let archived = self.archived_param(&pairs)?;
        let by_user = match last_param(&pairs, "idProperty") {
            None | Some("id") => false,
            Some("userId") => true,
            Some(other) => {
                return Err(self
                    .validation(
                        format!("idProperty must be one of [id, userId]; got '{other}'"),
                        Some(json!({ "idProperty": [other] })),
                    )
                    .into());
            }
        };
        let wanted = id.trim().parse::<u64>().ok();
        data::owners()
            .iter()
            .find(|o| {
                o.archived == archived && Some(if by_user { o.user_id } else { o.id }) == wanted
            })
            .map(|o| Json(o.render()).into_response())
            .ok_or_else(|| self.not_found(&id).into())
    }

    /// `GET /crm/v3/pipelines/deals/{pipelineId}` (or its `/stages`).
    fn get_pipeline(&self, id: Result<Path<String>, PathRejection>, stages: bool) -> Response {
        let id = id.map(|Path(id)| id).unwrap_or_default();
        match data::pipeline(&id) {
            Some(p) if stages => Json(json!({ "results": p.render_stages() })).into_response(),
            Some(p) => Json(p.render()).into_response(),
            None => self.error(
                StatusCode::NOT_FOUND,
                "OBJECT_NOT_FOUND",
                format!("Unable to find pipeline {id} for object type deals"),
                Some(json!({ "pipelineId": [id] })),
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------
// OAuth (vendors.md §2 Auth; machinery in oauth.rs)
//
// Choices: `hub_id` and `user_id` are fixed (one sandbox account and user); `scopes`
// echoes the requested scope (a default CRM set when none was asked for); errors use the
// OAuth server's `{"status":"BAD_…","message","correlationId"}` shape with HTTP 400 (only
// BAD_REFRESH_TOKEN and BAD_AUTH_CODE are attested; the other categories follow their
// pattern); the authorization page's refusals use the same shape. `DELETE
// /oauth/v1/refresh-tokens/{token}` kills the refresh token but, as the spec says, leaves
// access tokens minted from it alone (`/_control/oauth/revoke` kills both).

/// The sandbox HubSpot account the OAuth grants are for.
const HUB_ID: u64 = 24_681_357;
const USER_ID: u64 = 66_180_001;
const DEFAULT_SCOPES: [&str; 5] = [
    "oauth",
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.objects.companies.read",
    "crm.objects.companies.write",
];

static OAUTH: Profile = Profile {
    provider: PROVIDER,
    client_id: HUBSPOT_CLIENT_ID,
    client_secret: HUBSPOT_CLIENT_SECRET,
    access_lifetime_secs: 1800,
    code_lifetime_secs: 300,
    rotates: false,
    always_rotates: false,
    echoes_refresh_token: true,
    client_credentials: true,
    basic_auth: false,
    query_params: false,
    refresh_rule: RefreshRule::Always,
    prefixes: Prefixes {
        access: "CNa1",
        refresh: "na1-",
        code: "na1-",
    },
};

impl HubSpot {
    fn oauth_error(&self, status: &str, message: &str) -> Response {
        let body = json!({
            "status": status,
            "message": message,
            "correlationId": self.control.next_uuid(),
        });
        (StatusCode::BAD_REQUEST, Json(body)).into_response()
    }
}

impl OAuthShape for HubSpot {
    fn oauth_profile(&self) -> &'static Profile {
        &OAUTH
    }

    fn oauth_control(&self) -> &Control {
        &self.control
    }

    fn token_body(&self, issued: &Issued) -> Value {
        let scopes: Vec<&str> = match issued.scope_items() {
            items if items.is_empty() => DEFAULT_SCOPES.to_vec(),
            items => items,
        };
        let mut body = Map::new();
        body.insert("access_token".into(), json!(issued.access_token));
        if let Some(refresh) = &issued.refresh_token {
            body.insert("refresh_token".into(), json!(refresh));
        }
        body.insert("expires_in".into(), json!(issued.expires_in));
        body.insert("token_type".into(), json!("bearer"));
        body.insert("hub_id".into(), json!(HUB_ID));
        body.insert("user_id".into(), json!(USER_ID));
        body.insert("scopes".into(), json!(scopes));
        let token_use = match issued.grant_type {
            GrantType::ClientCredentials => "client_credentials",
            _ => "access_token",
        };
        body.insert("token_use".into(), json!(token_use));
        Value::Object(body)
    }

    fn token_error(&self, error: &TokenError) -> Response {
        let (status, message) = match error {
            TokenError::ContentType | TokenError::MissingGrantType => {
                ("BAD_GRANT_TYPE", "missing or unknown grant type")
            }
            TokenError::UnsupportedGrant(_) => ("BAD_GRANT_TYPE", "missing or unknown grant type"),
            TokenError::MissingClient | TokenError::UnknownClient(_) => {
                ("BAD_CLIENT_ID", "missing or unknown client id")
            }
            TokenError::BadSecret => ("BAD_CLIENT_SECRET", "missing or invalid client secret"),
            TokenError::BadCode | TokenError::CodeUsed | TokenError::CodeExpired => {
                ("BAD_AUTH_CODE", "missing or unknown auth code")
            }
            TokenError::RedirectMismatch => (
                "BAD_REDIRECT_URI",
                "redirect_uri does not match the one used to obtain the auth code",
            ),
            TokenError::BadVerifier => (
                "BAD_AUTH_CODE",
                "code_verifier does not match the auth code's code_challenge",
            ),
            TokenError::BadRefreshToken => {
                ("BAD_REFRESH_TOKEN", "missing or invalid refresh token")
            }
        };
        self.oauth_error(status, message)
    }

    fn authorize_error(&self, error: &AuthorizeError) -> Response {
        match error {
            AuthorizeError::MissingClient | AuthorizeError::UnknownClient(_) => {
                self.oauth_error("BAD_CLIENT_ID", "missing or unknown client id")
            }
            AuthorizeError::MissingRedirect | AuthorizeError::BadRedirect(_) => self.oauth_error(
                "BAD_REDIRECT_URI",
                "Authorization failed because the redirect URL doesn't match the app's registered redirect URL",
            ),
        }
    }

    fn token_outage(&self, status: StatusCode) -> Response {
        let body = self.error_body(
            "INTERNAL_ERROR",
            "internal error, please try again later",
            None,
        );
        (status, Json(Value::Object(body))).into_response()
    }
}

/// `DELETE /oauth/v1/refresh-tokens/{token}`: 204, or 404 for a token never issued.
async fn delete_refresh_token(
    State(hs): State<Arc<HubSpot>>,
    token: Result<Path<String>, PathRejection>,
) -> Response {
    let token = token.map(|Path(t)| t).unwrap_or_default();
    match oauth::revoke_refresh_token(&hs.control, PROVIDER, &token, false) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => hs.error(
            StatusCode::NOT_FOUND,
            "OBJECT_NOT_FOUND",
            "refresh token not found",
            None,
        ),
    }
}
