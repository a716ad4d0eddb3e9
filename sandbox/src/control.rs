//! Machinery shared by every simulated vendor: request counters, fault injection, the
//! access-token registry and rate-limit windows, plus the `/_control` HTTP routes that
//! drive them. Nothing here knows a vendor's wire format: each vendor file turns these
//! decisions into its own headers and error bodies, so adding Salesforce or Zoho means
//! writing one sibling file and listing it in `lib.rs`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::DemoAccount;
use super::oauth::{OAuthShape, OAuthStore};
use super::webhooks::{WebhookDialect, Webhooks};

/// One simulated provider. Its router is nested under `/{provider}`.
pub(crate) trait Vendor: Send + Sync + 'static {
    /// Provider file name and URL prefix, e.g. `"hubspot"`.
    fn provider(&self) -> &'static str;
    /// Where the router is nested, when it is not `/{provider}` (Graph: `/graph`).
    fn mount(&self) -> String {
        format!("/{}", self.provider())
    }
    /// Tokens accepted right after start and after `/_control/reset`.
    fn seed_tokens(&self) -> Vec<String>;
    fn default_rate_limit(&self) -> RateLimitConfig;
    /// Restores the seeded data set.
    fn reset_data(&self);
    fn router(self: Arc<Self>) -> Router;
    fn demo_account(&self, base_url: &str) -> DemoAccount;
    /// The vendor's OAuth 2.0 dialect, when it has one (see `oauth.rs`).
    fn oauth(&self) -> Option<&dyn OAuthShape> {
        None
    }
    /// Routes served under the same mount but outside the API gate (the OAuth
    /// authorization, token and revocation endpoints): merged with `router()`.
    fn oauth_router(self: Arc<Self>) -> Router {
        Router::new()
    }

    /// The vendor's webhook format, when it pushes record changes (see `webhooks.rs`).
    fn webhooks(self: Arc<Self>) -> Option<Arc<dyn WebhookDialect>> {
        None
    }

    /// Control routes of this vendor's own, nested under `/_control` (paths start with
    /// `/{provider}/`): knobs of behaviour only it has.
    fn control_router(self: Arc<Self>) -> Router {
        Router::new()
    }
}

/// An early-exit HTTP answer. Boxed because handlers pass it through `?` a lot and a bare
/// `Response` makes every `Result` large.
pub(crate) struct Reject(Box<Response>);

impl From<Response> for Reject {
    fn from(response: Response) -> Self {
        Reject(Box::new(response))
    }
}

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        *self.0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RateLimitConfig {
    pub max: u32,
    pub interval_ms: u64,
}

#[derive(Debug)]
pub(crate) enum TokenCheck {
    Valid,
    /// No credentials, or credentials this provider never issued (or revoked).
    Unknown,
    Expired {
        expired_at: DateTime<Utc>,
        seconds_ago: i64,
    },
}

/// Outcome of counting one request against its token's rolling window.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RateDecision {
    pub allowed: bool,
    pub max: u32,
    pub remaining: u32,
    pub interval_ms: u64,
    /// Per-second figures are reported but not enforced: see `Control::rate_limit`.
    pub secondly: u32,
    pub secondly_remaining: u32,
    /// Milliseconds until the oldest request counted in the window leaves it, i.e. until
    /// one more request fits again (0 when the window is empty). Vendors that tell the
    /// client how long to wait (`Retry-After`, `x-ratelimit-reset`) report this.
    pub retry_after_ms: u64,
}

#[derive(Clone, Debug)]
pub(crate) enum FaultAction {
    /// Answer with `status` (vendor-shaped default body unless `body` is set) after
    /// `delay`; with no status the request proceeds normally after the delay.
    Respond {
        status: Option<StatusCode>,
        body: Option<Value>,
        delay: Option<Duration>,
        /// Set on the faulted answer over the vendor's own (absurd `Retry-After` values,
        /// reset headers a real vendor might send one day).
        headers: Vec<(HeaderName, HeaderValue)>,
        /// Sent verbatim as `text/html` instead of a JSON body: what a load balancer or
        /// proxy in front of the vendor answers (a 502 page, a captive portal's 200).
        raw_body: Option<String>,
    },
    /// The vendor's own answer, damaged on the wire.
    Wire(WireCut),
    /// The vendor's own answer, reshaped as a vendor that silently changes its API would:
    /// top-level keys dropped (`paging`: the cursor stops coming), keys renamed wherever
    /// they appear (`email` -> `email_address`).
    Reshape {
        drop_keys: Vec<String>,
        rename_keys: Vec<(String, String)>,
    },
    /// List pages hand back the request's own cursor as the next one.
    RepeatCursor,
    /// List pages claim there is more and point the next cursor past the end, where the
    /// vendor answers its "no such page" (Salesforce: `INVALID_QUERY_LOCATOR`, Zoho: 204).
    OutOfRange,
}

/// How an answer is damaged on its way to the client.
#[derive(Clone, Copy, Debug)]
pub(crate) enum WireCut {
    /// The first `keep` bytes of the body, with a `Content-Length` that matches them: a
    /// complete HTTP answer whose JSON stops in the middle.
    Truncate { keep: usize },
    /// The full `Content-Length` is declared, `keep` bytes are sent, then the connection
    /// is reset: the client's body read fails.
    Reset { keep: usize },
}

/// Which fault family a call site consumes: the middleware takes `Respond` faults, list
/// handlers take `RepeatCursor` and `OutOfRange`, so one kind never eats another's budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FaultKind {
    Respond,
    Reshape,
    Wire,
    RepeatCursor,
    OutOfRange,
}

impl FaultAction {
    fn kind(&self) -> FaultKind {
        match self {
            FaultAction::Respond { .. } => FaultKind::Respond,
            FaultAction::Reshape { .. } => FaultKind::Reshape,
            FaultAction::Wire(_) => FaultKind::Wire,
            FaultAction::RepeatCursor => FaultKind::RepeatCursor,
            FaultAction::OutOfRange => FaultKind::OutOfRange,
        }
    }
}

struct Fault {
    id: u64,
    provider: String,
    method: Option<String>,
    path_contains: Option<String>,
    action: FaultAction,
    remaining: u32,
}

impl Fault {
    fn matches(&self, provider: &str, method: &str, path_and_query: &str, kind: FaultKind) -> bool {
        self.provider == provider
            && self.action.kind() == kind
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self
                .path_contains
                .as_deref()
                .is_none_or(|p| path_and_query.contains(p))
    }

    fn to_json(&self) -> Value {
        let mut out = json!({
            "id": self.id,
            "provider": self.provider,
            "times": self.remaining,
            "method": self.method,
            "pathContains": self.path_contains,
        });
        match &self.action {
            FaultAction::Respond {
                status,
                body,
                delay,
                headers,
                raw_body,
            } => {
                out["kind"] = json!(if status.is_some() { "status" } else { "delay" });
                out["status"] = json!(status.map(|s| s.as_u16()));
                out["body"] = json!(body);
                out["rawBody"] = json!(raw_body);
                out["delayMs"] = json!(delay.map(|d| d.as_millis()));
                out["headers"] = headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or_default())))
                    .collect::<serde_json::Map<_, _>>()
                    .into();
            }
            FaultAction::Reshape {
                drop_keys,
                rename_keys,
            } => {
                out["kind"] = json!("reshape");
                out["dropKeys"] = json!(drop_keys);
                out["renameKeys"] = rename_keys
                    .iter()
                    .map(|(from, to)| (from.clone(), json!(to)))
                    .collect::<serde_json::Map<_, _>>()
                    .into();
            }
            FaultAction::Wire(WireCut::Truncate { keep }) => {
                out["kind"] = json!("truncate");
                out["keepBytes"] = json!(keep);
            }
            FaultAction::Wire(WireCut::Reset { keep }) => {
                out["kind"] = json!("reset");
                out["keepBytes"] = json!(keep);
            }
            FaultAction::RepeatCursor => out["kind"] = json!("repeat_cursor"),
            FaultAction::OutOfRange => out["kind"] = json!("out_of_range"),
        }
        out
    }
}

struct Registration {
    provider: &'static str,
    seeds: Vec<String>,
    limit: RateLimitConfig,
}

struct TokenEntry {
    provider: String,
    expires_at: Option<DateTime<Utc>>,
    /// The rate-limit window the token is charged to when it is not its own: every
    /// access token of one OAuth grant shares the grant's window, so a refresh does not
    /// hand the client a fresh allowance.
    window: Option<String>,
}

#[derive(Default)]
struct Inner {
    registrations: Vec<Registration>,
    total: u64,
    by_provider: BTreeMap<String, u64>,
    by_route: BTreeMap<String, u64>,
    faults: Vec<Fault>,
    next_fault_id: u64,
    tokens: HashMap<String, TokenEntry>,
    next_token: u64,
    limits: HashMap<String, RateLimitConfig>,
    /// Keyed by (provider, token): HubSpot's limit is per installed account, which in
    /// the sandbox is one token.
    windows: HashMap<(String, String), VecDeque<Instant>>,
}

impl Inner {
    fn is_registered(&self, provider: &str) -> bool {
        self.registrations.iter().any(|r| r.provider == provider)
    }

    fn restore_start_state(&mut self) {
        self.total = 0;
        self.by_route.clear();
        self.by_provider = self
            .registrations
            .iter()
            .map(|r| (r.provider.to_owned(), 0))
            .collect();
        self.faults.clear();
        self.next_fault_id = 0;
        self.next_token = 0;
        self.windows.clear();
        self.tokens.clear();
        self.limits.clear();
        for reg in &self.registrations {
            for token in &reg.seeds {
                self.tokens.insert(
                    token.clone(),
                    TokenEntry {
                        provider: reg.provider.to_owned(),
                        expires_at: None,
                        window: None,
                    },
                );
            }
            self.limits.insert(reg.provider.to_owned(), reg.limit);
        }
    }
}

/// State shared between `/_control` and every vendor. Only std locks, held for a few
/// map operations and never across an `.await`.
#[derive(Default)]
pub(crate) struct Control {
    inner: Mutex<Inner>,
    ids: AtomicU64,
    /// OAuth clients, codes, grants and switches (`oauth.rs`).
    pub(crate) oauth: OAuthStore,
    /// Webhook configuration, subscriptions, faults and the delivery queue (`webhooks.rs`).
    pub(crate) webhooks: Webhooks,
}

impl Control {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere must not turn every later request into a 500 cascade.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn register(&self, vendor: &dyn Vendor) {
        let mut inner = self.lock();
        inner.registrations.push(Registration {
            provider: vendor.provider(),
            seeds: vendor.seed_tokens(),
            limit: vendor.default_rate_limit(),
        });
        inner.restore_start_state();
        drop(inner);
        if let Some(shape) = vendor.oauth() {
            self.oauth.register(shape.oauth_profile());
        }
    }

    /// Registers an access token minted by the OAuth endpoints, valid until `expires_at`
    /// and charged to the rate-limit window named `window`.
    pub(crate) fn insert_token(
        &self,
        provider: &str,
        token: &str,
        expires_at: Option<DateTime<Utc>>,
        window: String,
    ) {
        self.lock().tokens.insert(
            token.to_owned(),
            TokenEntry {
                provider: provider.to_owned(),
                expires_at,
                window: Some(window),
            },
        );
    }

    /// Forgets revoked access tokens: they then answer as unknown credentials. (Their
    /// grant's rate-limit window stays: it belongs to the account.)
    pub(crate) fn remove_tokens(&self, tokens: &[String]) {
        let mut inner = self.lock();
        for token in tokens {
            inner.tokens.remove(token);
        }
    }

    /// Uuid-shaped but counter-based, so runs are reproducible.
    pub(crate) fn next_uuid(&self) -> String {
        let n = self.ids.fetch_add(1, Ordering::Relaxed) + 1;
        format!("5a4db0c5-0000-4000-8000-{n:012x}")
    }

    pub(crate) fn count(&self, provider: &str, route: String) {
        let mut inner = self.lock();
        inner.total += 1;
        *inner.by_provider.entry(provider.to_owned()).or_default() += 1;
        *inner.by_route.entry(route).or_default() += 1;
    }

    /// Consumes one use of the first matching fault of `kind`, oldest first.
    pub(crate) fn take_fault(
        &self,
        provider: &str,
        method: &str,
        path_and_query: &str,
        kind: FaultKind,
    ) -> Option<FaultAction> {
        let mut inner = self.lock();
        let pos = inner
            .faults
            .iter()
            .position(|f| f.matches(provider, method, path_and_query, kind))?;
        let fault = &mut inner.faults[pos];
        let action = fault.action.clone();
        fault.remaining = fault.remaining.saturating_sub(1);
        if fault.remaining == 0 {
            inner.faults.remove(pos);
        }
        Some(action)
    }

    pub(crate) fn check_token(&self, provider: &str, token: Option<&str>) -> TokenCheck {
        let Some(token) = token else {
            return TokenCheck::Unknown;
        };
        let inner = self.lock();
        match inner.tokens.get(token) {
            Some(entry) if entry.provider == provider => match entry.expires_at {
                Some(expired_at) if expired_at <= Utc::now() => TokenCheck::Expired {
                    expired_at,
                    seconds_ago: (Utc::now() - expired_at).num_seconds().max(0),
                },
                _ => TokenCheck::Valid,
            },
            _ => TokenCheck::Unknown,
        }
    }

    /// Rolling-window limit per (provider, token). Only the window is enforced: the
    /// per-second figures are derived from it for the headers, because enforcing a
    /// second limit would make the gateway's own pacing tests flaky without adding a
    /// behaviour the window does not already exercise.
    pub(crate) fn rate_limit(&self, provider: &str, token: &str) -> RateDecision {
        let now = Instant::now();
        let mut inner = self.lock();
        let config = inner
            .limits
            .get(provider)
            .copied()
            .unwrap_or(RateLimitConfig {
                max: u32::MAX,
                interval_ms: 10_000,
            });
        let interval = Duration::from_millis(config.interval_ms);
        let key = inner
            .tokens
            .get(token)
            .and_then(|e| e.window.clone())
            .unwrap_or_else(|| token.to_owned());
        let window = inner.windows.entry((provider.to_owned(), key)).or_default();
        while window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= interval)
        {
            window.pop_front();
        }
        let used = u32::try_from(window.len()).unwrap_or(u32::MAX);
        let allowed = used < config.max;
        if allowed {
            window.push_back(now);
        }
        let used = used + u32::from(allowed);
        let last_second = window
            .iter()
            .filter(|t| now.duration_since(**t) < Duration::from_secs(1))
            .count();
        let secondly = secondly_limit(config);
        let retry_after = window.front().map_or(Duration::ZERO, |t| {
            interval.saturating_sub(now.duration_since(*t))
        });
        RateDecision {
            allowed,
            max: config.max,
            remaining: config.max.saturating_sub(used),
            interval_ms: config.interval_ms,
            secondly,
            secondly_remaining: secondly
                .saturating_sub(u32::try_from(last_second).unwrap_or(u32::MAX)),
            retry_after_ms: u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX),
        }
    }

    fn stats(&self) -> Value {
        let mut out = {
            let inner = self.lock();
            json!({
                "requests": inner.total,
                "byProvider": inner.by_provider,
                "byRoute": inner.by_route,
            })
        };
        // Taken after the registry lock is released: the OAuth store locks first.
        out["oauth"] = self.oauth.stats();
        out
    }
}

/// HubSpot pairs 110 per 10 s with 11 per second; keep that ratio for custom limits.
fn secondly_limit(config: RateLimitConfig) -> u32 {
    let per_second = u64::from(config.max).saturating_mul(1000);
    let per_second = per_second.div_ceil(config.interval_ms.max(1));
    u32::try_from(per_second).unwrap_or(u32::MAX).max(1)
}

pub(crate) fn iso_millis(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

// ---------------------------------------------------------------------------------------
// /_control routes

#[derive(Clone)]
struct ControlApi {
    control: Arc<Control>,
    vendors: Vec<Arc<dyn Vendor>>,
}

pub(crate) fn router(control: Arc<Control>, vendors: Vec<Arc<dyn Vendor>>) -> Router {
    let oauth = super::oauth::control_router(control.clone(), vendors.clone());
    let webhooks = super::webhooks::control_router(control.clone(), vendors.clone());
    let own = vendors
        .iter()
        .fold(Router::new(), |r, v| r.merge(v.clone().control_router()));
    Router::new()
        .route("/stats", get(stats))
        .route("/reset", post(reset))
        .route(
            "/faults",
            post(add_fault).get(list_faults).delete(clear_faults),
        )
        .route("/tokens", post(add_token))
        .route("/tokens/{token}", delete(revoke_token))
        .route("/ratelimit", post(set_rate_limit))
        .fallback(|| async { control_error(StatusCode::NOT_FOUND, "no such control route") })
        .with_state(ControlApi { control, vendors })
        .merge(oauth)
        .merge(webhooks)
        .merge(own)
}

pub(crate) fn control_error(status: StatusCode, message: impl Into<String>) -> Reject {
    Reject::from((status, axum::Json(json!({ "error": message.into() }))).into_response())
}

pub(crate) fn parse_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, Reject> {
    serde_json::from_slice(body)
        .map_err(|e| control_error(StatusCode::BAD_REQUEST, format!("invalid body: {e}")))
}

fn require_provider(inner: &Inner, provider: &str) -> Result<(), Reject> {
    if inner.is_registered(provider) {
        Ok(())
    } else {
        Err(control_error(
            StatusCode::BAD_REQUEST,
            format!("unknown provider {provider:?}"),
        ))
    }
}

async fn stats(State(api): State<ControlApi>) -> Response {
    axum::Json(api.control.stats()).into_response()
}

async fn reset(State(api): State<ControlApi>) -> Response {
    api.control.lock().restore_start_state();
    api.control.oauth.reset();
    api.control.webhooks.reset();
    api.control.ids.store(0, Ordering::Relaxed);
    for vendor in &api.vendors {
        vendor.reset_data();
    }
    axum::Json(json!({ "reset": true })).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FaultSpec {
    provider: String,
    kind: Option<String>,
    status: Option<u16>,
    times: Option<u32>,
    body: Option<Value>,
    delay_ms: Option<u64>,
    path_contains: Option<String>,
    method: Option<String>,
    headers: Option<std::collections::BTreeMap<String, String>>,
    drop_keys: Option<Vec<String>>,
    rename_keys: Option<std::collections::BTreeMap<String, String>>,
    raw_body: Option<String>,
    keep_bytes: Option<usize>,
}

async fn add_fault(State(api): State<ControlApi>, body: Bytes) -> Result<Response, Reject> {
    let spec: FaultSpec = parse_body(&body)?;
    let bad = |msg: &str| control_error(StatusCode::BAD_REQUEST, msg);
    let status = spec
        .status
        .map(|s| StatusCode::from_u16(s).map_err(|_| bad("status must be an HTTP status code")))
        .transpose()?;
    let delay = spec.delay_ms.map(Duration::from_millis);
    let action = match spec.kind.as_deref() {
        Some("repeat_cursor") => FaultAction::RepeatCursor,
        Some("out_of_range") => FaultAction::OutOfRange,
        Some(kind @ ("truncate" | "reset")) => {
            let Some(keep) = spec.keep_bytes else {
                return Err(bad(&format!(
                    "a {kind} fault needs `keepBytes` (how much of the body gets through)"
                )));
            };
            FaultAction::Wire(if kind == "truncate" {
                WireCut::Truncate { keep }
            } else {
                WireCut::Reset { keep }
            })
        }
        Some("reshape") => {
            let drop_keys = spec.drop_keys.unwrap_or_default();
            let rename_keys: Vec<(String, String)> =
                spec.rename_keys.unwrap_or_default().into_iter().collect();
            if drop_keys.is_empty() && rename_keys.is_empty() {
                return Err(bad("a reshape fault needs `dropKeys` and/or `renameKeys`"));
            }
            FaultAction::Reshape {
                drop_keys,
                rename_keys,
            }
        }
        None | Some("status") | Some("delay") => {
            if status.is_none() && delay.is_none() {
                return Err(bad("a status fault needs `status` and/or `delayMs`"));
            }
            if spec.raw_body.is_some() && (status.is_none() || spec.body.is_some()) {
                return Err(bad(
                    "`rawBody` goes with a `status` and instead of `body`, not with both",
                ));
            }
            let mut headers = Vec::new();
            for (name, value) in spec.headers.unwrap_or_default() {
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| bad(&format!("`{name}` is not a header name")))?;
                let value = HeaderValue::from_str(&value)
                    .map_err(|_| bad(&format!("the value of `{name}` is not a header value")))?;
                headers.push((name, value));
            }
            FaultAction::Respond {
                status,
                body: spec.body,
                delay,
                headers,
                raw_body: spec.raw_body,
            }
        }
        Some(other) => {
            return Err(bad(&format!(
                "unknown fault kind {other:?} (expected status, delay, reshape, truncate, reset, repeat_cursor or out_of_range)"
            )));
        }
    };
    let times = spec.times.unwrap_or(1);
    if times == 0 {
        return Err(bad("times must be at least 1"));
    }
    let mut inner = api.control.lock();
    require_provider(&inner, &spec.provider)?;
    inner.next_fault_id += 1;
    let fault = Fault {
        id: inner.next_fault_id,
        provider: spec.provider,
        method: spec.method,
        path_contains: spec.path_contains,
        action,
        remaining: times,
    };
    let out = fault.to_json();
    inner.faults.push(fault);
    Ok((StatusCode::CREATED, axum::Json(out)).into_response())
}

async fn list_faults(State(api): State<ControlApi>) -> Response {
    let inner = api.control.lock();
    let faults: Vec<Value> = inner.faults.iter().map(Fault::to_json).collect();
    axum::Json(json!({ "faults": faults })).into_response()
}

async fn clear_faults(State(api): State<ControlApi>) -> Response {
    api.control.lock().faults.clear();
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TokenSpec {
    provider: String,
    token: Option<String>,
    /// Negative values register an already-expired token, which is how tests reach the
    /// vendor's "expired N second(s) ago" answer without sleeping.
    expires_in_seconds: Option<i64>,
}

async fn add_token(State(api): State<ControlApi>, body: Bytes) -> Result<Response, Reject> {
    let spec: TokenSpec = parse_body(&body)?;
    let mut inner = api.control.lock();
    require_provider(&inner, &spec.provider)?;
    let token = match spec.token {
        Some(t) if t.trim().is_empty() => {
            return Err(control_error(
                StatusCode::BAD_REQUEST,
                "token must not be empty",
            ));
        }
        Some(t) => t,
        None => {
            inner.next_token += 1;
            format!("sandbox-{}-issued-{}", spec.provider, inner.next_token)
        }
    };
    let expires_at = match spec.expires_in_seconds {
        None => None,
        Some(secs) => Some(
            chrono::Duration::try_seconds(secs)
                .and_then(|d| Utc::now().checked_add_signed(d))
                .ok_or_else(|| {
                    control_error(StatusCode::BAD_REQUEST, "expiresInSeconds out of range")
                })?,
        ),
    };
    inner.tokens.insert(
        token.clone(),
        TokenEntry {
            provider: spec.provider.clone(),
            expires_at,
            window: None,
        },
    );
    let out = json!({
        "provider": spec.provider,
        "token": token,
        "expiresAt": expires_at.map(iso_millis),
    });
    Ok((StatusCode::CREATED, axum::Json(out)).into_response())
}

async fn revoke_token(State(api): State<ControlApi>, Path(token): Path<String>) -> Response {
    let mut inner = api.control.lock();
    if inner.tokens.remove(&token).is_some() {
        inner.windows.retain(|(_, t), _| t != &token);
        StatusCode::NO_CONTENT.into_response()
    } else {
        control_error(StatusCode::NOT_FOUND, "unknown token").into_response()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RateLimitSpec {
    provider: String,
    max: u32,
    interval_ms: Option<u64>,
}

async fn set_rate_limit(State(api): State<ControlApi>, body: Bytes) -> Result<Response, Reject> {
    let spec: RateLimitSpec = parse_body(&body)?;
    let mut inner = api.control.lock();
    require_provider(&inner, &spec.provider)?;
    let current = inner.limits.get(&spec.provider).copied();
    let interval_ms = spec
        .interval_ms
        .or(current.map(|c| c.interval_ms))
        .unwrap_or(10_000);
    if interval_ms == 0 {
        return Err(control_error(
            StatusCode::BAD_REQUEST,
            "intervalMs must be positive",
        ));
    }
    let config = RateLimitConfig {
        max: spec.max,
        interval_ms,
    };
    inner.limits.insert(spec.provider.clone(), config);
    // Start every window afresh so a test's first call under the new limit is call #1.
    inner.windows.retain(|(p, _), _| p != &spec.provider);
    Ok(axum::Json(json!({
        "provider": spec.provider,
        "max": config.max,
        "intervalMs": config.interval_ms,
    }))
    .into_response())
}
