//! The OAuth 2.0 side of every simulated vendor: client registry, auto-approving
//! authorization endpoint (state, PKCE), token endpoint (authorization code, refresh
//! token, client credentials), refresh-token rotation and revocation, plus the
//! `/_control/oauth*` switches that make a token endpoint slow, failing or rotating.
//!
//! Like `wire.rs`, nothing here knows a vendor's wire format: each vendor file implements
//! [`OAuthShape`] (its token response, its error bodies) and mounts the generic
//! [`authorize`] and [`token`] handlers on its own paths. Access tokens issued here are put
//! in the shared token registry (`Control::insert_token`) with their expiry, so the
//! vendor's API routes accept them until they expire and then answer its expired-token 401.
//!
//! Model: every successful code exchange (or `/_control/oauth/grant`) opens a *grant*
//! (one linked account). A grant holds its current refresh token and the access tokens
//! minted from it. A refresh token is live while it is its grant's current one and the
//! grant is not revoked; rotation replaces the current one, so the old one dies the moment
//! the new one is issued. Revoking any refresh token of a grant revokes the grant: its
//! refresh tokens answer `invalid_grant` forever after and its access tokens leave the
//! registry (they then answer as unknown credentials, not as expired ones).
//!
//! Choices where vendors.md is silent:
//! - OAuth endpoints are not API calls: they are not counted in `requests`/`byProvider`,
//!   not rate limited and not hit by `/_control/faults` (the real ones live on separate
//!   hosts). Their own counters are `stats.oauth.<provider>`: one count per token-endpoint
//!   call under its grant type (failed ones included), and `failed` for every call that
//!   did not issue tokens (injected 5xx included). Unknown grant types count only as
//!   failed. `/_control/oauth/grant` is not counted.
//! - Authorization codes are single use and live 5 minutes. A code is spent by the first
//!   exchange its own client attempts, even one that then fails (wrong `redirect_uri`,
//!   wrong PKCE verifier): retrying with the right verifier needs a new code.
//! - PKCE: `S256` and `plain` (the RFC 7636 default when `code_challenge_method` is
//!   absent); the challenge must be 43 to 128 unreserved characters. A verifier sent for a
//!   code that had no challenge is ignored.
//! - After the client and `redirect_uri` have been accepted, other authorization-request
//!   errors go back to the redirect URI as `error=...&error_description=...&state=...`
//!   (RFC 6749 §4.1.2.1): `unsupported_response_type`, `invalid_request`.
//! - A client registered without `redirectUris` (the seeded demo clients) accepts any
//!   http(s) redirect URI on 127.0.0.1, localhost or [::1]; with a list, exact matches only.
//! - A refresh keeps the grant's scope; a `scope` parameter on refresh is ignored.
//! - Rate limits: every access token of one grant is charged to the grant's window (the
//!   vendors limit per account, not per token), so refreshing does not reset the budget.
//! - Access tokens minted by a refresh do not retire earlier ones: those stay valid until
//!   they expire, as with every vendor here (no live-token caps are modelled).
//! - `tokenFailures` answer before the request is looked at (like an outage); the delay
//!   of `tokenDelayMs` comes first, then the failure or the real work.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::control::{Control, Reject, Vendor, control_error, parse_body};
use super::wire::{ReqInfo, last_param, percent_decode, query_pairs};

/// Longest lifetime the control plane accepts, so expiry arithmetic never overflows.
const MAX_LIFETIME_SECS: i64 = 10 * 365 * 24 * 3600;

// ---------------------------------------------------------------------------------------
// What a vendor declares

/// When a code exchange hands out a refresh token.
#[derive(Clone, Copy, Debug)]
pub(crate) enum RefreshRule {
    /// Every code exchange (HubSpot, Pipedrive).
    Always,
    /// Only when `scope` names one of these, or no `scope` was asked for (Salesforce: the
    /// connected app's default scopes apply, and they include `refresh_token`).
    ScopeOrDefault(&'static [&'static str]),
    /// Only when `scope` names this one (Graph: `offline_access`).
    Scope(&'static str),
    /// Only with `access_type=offline` on the authorization request (Zoho).
    AccessTypeOffline,
    /// Google: `access_type=offline`, and only on the first consent of this client (a
    /// later authorization gets one again with `prompt=consent`, or once the earlier grant
    /// was revoked).
    OfflineFirstConsent,
}

/// Prefixes that make minted strings look like the vendor's.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Prefixes {
    pub access: &'static str,
    pub refresh: &'static str,
    pub code: &'static str,
}

/// A vendor's OAuth facts; a `static` in each vendor file.
#[derive(Debug)]
pub(crate) struct Profile {
    pub provider: &'static str,
    /// The seeded demo client (constants in `lib.rs`).
    pub client_id: &'static str,
    pub client_secret: &'static str,
    /// Default access-token lifetime, seconds.
    pub access_lifetime_secs: i64,
    pub code_lifetime_secs: i64,
    /// Whether refresh rotates by default.
    pub rotates: bool,
    /// Rotation cannot be switched off (Graph).
    pub always_rotates: bool,
    /// Whether a refresh that does not rotate repeats the refresh token in its response.
    pub echoes_refresh_token: bool,
    pub client_credentials: bool,
    /// `Authorization: Basic base64(client_id:client_secret)` is accepted (body
    /// parameters are accepted too).
    pub basic_auth: bool,
    /// Token parameters may come in the query string, and a non-form body is ignored
    /// rather than refused (Zoho's documented style).
    pub query_params: bool,
    pub refresh_rule: RefreshRule,
    pub prefixes: Prefixes,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
}

impl GrantType {
    fn parse(raw: &str) -> Option<GrantType> {
        match raw {
            "authorization_code" => Some(GrantType::AuthorizationCode),
            "refresh_token" => Some(GrantType::RefreshToken),
            "client_credentials" => Some(GrantType::ClientCredentials),
            _ => None,
        }
    }
}

/// One successful token-endpoint answer, for the vendor to dress.
#[derive(Clone, Debug)]
pub(crate) struct Issued {
    pub grant_type: GrantType,
    pub access_token: String,
    /// Present when the response must carry one (new grant with refresh, rotation, or a
    /// vendor that repeats it on refresh).
    pub refresh_token: Option<String>,
    /// Seconds, never negative (an already-expired token reports 0).
    pub expires_in: i64,
    pub expires_at: DateTime<Utc>,
    pub issued_at: DateTime<Utc>,
    /// As asked for on the authorization (or client-credentials) request.
    pub scope: Option<String>,
    pub client_id: String,
    pub client_secret: String,
    /// The sandbox's base URL, e.g. `http://127.0.0.1:4010`.
    pub base_url: String,
}

impl Issued {
    /// Scope items, split on blanks and commas (Zoho and Pipedrive use commas).
    pub(crate) fn scope_items(&self) -> Vec<&str> {
        self.scope
            .as_deref()
            .unwrap_or("")
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|s| !s.is_empty())
            .collect()
    }

    pub(crate) fn has_scope(&self, item: &str) -> bool {
        self.scope_items().contains(&item)
    }
}

/// Why the token endpoint refused; each vendor words it.
#[derive(Clone, Debug)]
pub(crate) enum TokenError {
    /// A body that is not `application/x-www-form-urlencoded`.
    ContentType,
    MissingGrantType,
    UnsupportedGrant(String),
    /// Neither body parameters nor Basic credentials named a client.
    MissingClient,
    UnknownClient(String),
    /// Missing or wrong client secret.
    BadSecret,
    /// Missing or unknown code, or one issued to another client.
    BadCode,
    /// A code that was already exchanged once.
    CodeUsed,
    CodeExpired,
    /// `redirect_uri` missing or not the one the code was issued for.
    RedirectMismatch,
    /// PKCE verifier missing or not matching the challenge.
    BadVerifier,
    /// Missing, unknown, rotated-away or revoked refresh token (or another client's).
    BadRefreshToken,
}

/// Authorization requests the server cannot redirect back (RFC 6749 §4.1.2.1).
#[derive(Clone, Debug)]
pub(crate) enum AuthorizeError {
    MissingClient,
    UnknownClient(String),
    MissingRedirect,
    BadRedirect(String),
}

/// How one vendor dresses the OAuth machinery's decisions.
pub(crate) trait OAuthShape: Send + Sync + 'static {
    fn oauth_profile(&self) -> &'static Profile;

    fn oauth_control(&self) -> &Control;

    /// The token endpoint's success body.
    fn token_body(&self, issued: &Issued) -> Value;

    /// The token endpoint's answer to a refused request.
    fn token_error(&self, error: &TokenError) -> Response;

    /// The authorization endpoint's answer when it cannot redirect.
    fn authorize_error(&self, error: &AuthorizeError) -> Response;

    /// An injected token-endpoint failure (`tokenFailures`).
    fn token_outage(&self, status: StatusCode) -> Response {
        oauth2_error(
            status,
            "temporarily_unavailable",
            "The authorization server is temporarily unable to handle the request.",
        )
    }

    /// Extra query parameters on the authorization callback (Zoho's `location` and
    /// `accounts-server`).
    fn callback_params(&self, _base_url: &str) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

/// The RFC 6749 §5.2 error body, `{"error","error_description"}`.
pub(crate) fn oauth2_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = json!({ "error": error, "error_description": description });
    (status, axum::Json(body)).into_response()
}

// ---------------------------------------------------------------------------------------
// State

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    S256,
    Plain,
}

#[derive(Clone, Debug)]
struct Challenge {
    method: Method,
    value: String,
}

#[derive(Clone, Debug)]
struct Code {
    client_id: String,
    redirect_uri: String,
    scope: Option<String>,
    challenge: Option<Challenge>,
    access_type_offline: bool,
    prompt_consent: bool,
    expires_at: DateTime<Utc>,
    used: bool,
}

struct Client {
    secret: String,
    /// `None`: any loopback redirect URI.
    redirect_uris: Option<Vec<String>>,
}

struct Grant {
    client_id: String,
    scope: Option<String>,
    /// The one live refresh token, if the grant has refresh tokens at all.
    refresh: Option<String>,
    /// Access tokens minted for this grant that have not expired yet (as of the last mint).
    access: Vec<(String, DateTime<Utc>)>,
    revoked: bool,
    /// Opened by the code flow (Google's first-consent rule looks only at these).
    from_code: bool,
}

#[derive(Clone, Copy, Debug)]
struct Failure {
    status: StatusCode,
    times: u32,
}

#[derive(Clone, Copy, Debug)]
struct Settings {
    access_lifetime_secs: i64,
    rotate: bool,
    delay_ms: u64,
    failure: Option<Failure>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    authorization_code: u64,
    refresh_token: u64,
    client_credentials: u64,
    failed: u64,
    /// Refresh requests that arrived while another one presenting the same refresh token
    /// was still being answered: two clients (replicas) refreshing one grant at once.
    overlapping_refreshes: u64,
}

struct ProviderState {
    profile: &'static Profile,
    clients: HashMap<String, Client>,
    settings: Settings,
    codes: HashMap<String, Code>,
    /// Every refresh token ever issued, current or not, to its grant.
    refresh_tokens: HashMap<String, u64>,
    grants: HashMap<u64, Grant>,
    counters: Counters,
    /// Refresh requests being answered now, per refresh token presented.
    refreshing: HashMap<String, u32>,
}

impl ProviderState {
    fn seed(profile: &'static Profile) -> ProviderState {
        let mut clients = HashMap::new();
        clients.insert(
            profile.client_id.to_owned(),
            Client {
                secret: profile.client_secret.to_owned(),
                redirect_uris: None,
            },
        );
        ProviderState {
            profile,
            clients,
            settings: Settings {
                access_lifetime_secs: profile.access_lifetime_secs,
                rotate: profile.rotates,
                delay_ms: 0,
                failure: None,
            },
            codes: HashMap::new(),
            refresh_tokens: HashMap::new(),
            refreshing: HashMap::new(),
            grants: HashMap::new(),
            counters: Counters::default(),
        }
    }

    fn settings_json(&self) -> Value {
        let s = &self.settings;
        json!({
            "provider": self.profile.provider,
            "accessTokenLifetimeSeconds": s.access_lifetime_secs,
            "rotateRefreshTokens": s.rotate,
            "tokenDelayMs": s.delay_ms,
            "tokenFailures": s.failure.map(|f| json!({ "status": f.status.as_u16(), "times": f.times })),
        })
    }

    /// The grant a live refresh token belongs to.
    fn live_grant(&self, refresh_token: &str) -> Option<u64> {
        let id = *self.refresh_tokens.get(refresh_token)?;
        let grant = self.grants.get(&id)?;
        (!grant.revoked && grant.refresh.as_deref() == Some(refresh_token)).then_some(id)
    }

    fn has_consented(&self, client_id: &str) -> bool {
        self.grants
            .values()
            .any(|g| g.from_code && !g.revoked && g.refresh.is_some() && g.client_id == client_id)
    }
}

/// Unpredictable token material without a `rand` dependency: SipHash keyed by the
/// process-random `RandomState`, stretched through SHA-256.
struct Entropy {
    keys: RandomState,
    counter: u64,
}

impl Entropy {
    fn token(&mut self, prefix: &str) -> String {
        self.counter += 1;
        let mut digest = Sha256::new();
        for lane in 0..4u64 {
            let mut h = self.keys.build_hasher();
            h.write_u64(self.counter);
            h.write_u64(lane);
            digest.update(h.finish().to_le_bytes());
        }
        format!("{prefix}{}", URL_SAFE_NO_PAD.encode(digest.finalize()))
    }
}

struct StoreInner {
    base_url: String,
    providers: BTreeMap<&'static str, ProviderState>,
    next_grant: u64,
    entropy: Entropy,
}

impl Default for StoreInner {
    fn default() -> Self {
        StoreInner {
            base_url: String::new(),
            providers: BTreeMap::new(),
            next_grant: 0,
            entropy: Entropy {
                keys: RandomState::new(),
                counter: 0,
            },
        }
    }
}

/// Every provider's OAuth state; lives in `Control`. Lock order: this store first, then
/// the control registry (`Control::insert_token`/`remove_tokens` are called with this
/// lock held, so a revocation and a refresh can never interleave); never the reverse.
#[derive(Default)]
pub(crate) struct OAuthStore {
    inner: Mutex<StoreInner>,
}

impl OAuthStore {
    fn lock(&self) -> MutexGuard<'_, StoreInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn register(&self, profile: &'static Profile) {
        self.lock()
            .providers
            .insert(profile.provider, ProviderState::seed(profile));
    }

    /// Back to the seeded clients and default switches, with no codes, grants or counts.
    pub(crate) fn reset(&self) {
        let mut inner = self.lock();
        inner.next_grant = 0;
        for state in inner.providers.values_mut() {
            *state = ProviderState::seed(state.profile);
        }
    }

    pub(crate) fn set_base_url(&self, base_url: &str) {
        base_url.clone_into(&mut self.lock().base_url);
    }

    pub(crate) fn stats(&self) -> Value {
        let inner = self.lock();
        let out: Map<String, Value> = inner
            .providers
            .iter()
            .map(|(provider, state)| {
                let c = state.counters;
                let counts = json!({
                    "authorization_code": c.authorization_code,
                    "refresh_token": c.refresh_token,
                    "client_credentials": c.client_credentials,
                    "failed": c.failed,
                    "overlapping_refreshes": c.overlapping_refreshes,
                });
                ((*provider).to_owned(), counts)
            })
            .collect();
        Value::Object(out)
    }

    fn count_failed(&self, provider: &str) {
        if let Some(state) = self.lock().providers.get_mut(provider) {
            state.counters.failed += 1;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Issuing

fn expiry(now: DateTime<Utc>, lifetime_secs: i64) -> DateTime<Utc> {
    chrono::Duration::try_seconds(lifetime_secs.clamp(-MAX_LIFETIME_SECS, MAX_LIFETIME_SECS))
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(now)
}

/// Mints an access token for `grant_id` (and a new current refresh token when
/// `new_refresh`), registering the access token in the control registry.
fn mint(
    control: &Control,
    state: &mut ProviderState,
    entropy: &mut Entropy,
    grant_id: u64,
    new_refresh: bool,
    lifetime_secs: i64,
    now: DateTime<Utc>,
) -> (String, DateTime<Utc>, Option<String>) {
    let prefixes = state.profile.prefixes;
    let access = entropy.token(prefixes.access);
    let expires_at = expiry(now, lifetime_secs);
    let refresh = new_refresh.then(|| entropy.token(prefixes.refresh));
    if let Some(refresh) = &refresh {
        state.refresh_tokens.insert(refresh.clone(), grant_id);
    }
    if let Some(grant) = state.grants.get_mut(&grant_id) {
        grant.access.retain(|(_, exp)| *exp > now);
        grant.access.push((access.clone(), expires_at));
        if let Some(refresh) = &refresh {
            grant.refresh = Some(refresh.clone());
        }
    }
    control.insert_token(
        state.profile.provider,
        &access,
        Some(expires_at),
        format!("oauth-grant-{grant_id}"),
    );
    (access, expires_at, refresh)
}

fn open_grant(
    inner: &mut StoreInner,
    provider: &str,
    client_id: &str,
    scope: Option<String>,
    from_code: bool,
) -> Option<u64> {
    inner.next_grant += 1;
    let id = inner.next_grant;
    inner.providers.get_mut(provider)?.grants.insert(
        id,
        Grant {
            client_id: client_id.to_owned(),
            scope,
            refresh: None,
            access: Vec::new(),
            revoked: false,
            from_code,
        },
    );
    Some(id)
}

/// A parsed token request.
struct TokenRequest {
    params: Vec<(String, String)>,
    basic: Option<(String, String)>,
}

fn read_token_request(
    profile: &Profile,
    info: &ReqInfo,
    body: &Bytes,
) -> Result<TokenRequest, TokenError> {
    let content_type = info.header(header::CONTENT_TYPE.as_str()).map(|c| {
        c.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    let is_form = content_type.as_deref() == Some("application/x-www-form-urlencoded");
    let mut params = if profile.query_params {
        query_pairs(info.query.as_deref())
    } else {
        Vec::new()
    };
    if is_form {
        params.extend(url::form_urlencoded::parse(body).into_owned());
    } else if !body.is_empty() && !profile.query_params {
        return Err(TokenError::ContentType);
    }
    let basic = if profile.basic_auth {
        basic_credentials(info)
    } else {
        None
    };
    Ok(TokenRequest { params, basic })
}

/// `Authorization: Basic base64(client_id:client_secret)`, each half form-encoded as RFC
/// 6749 §2.3.1 asks.
fn basic_credentials(info: &ReqInfo) -> Option<(String, String)> {
    let value = info.header(header::AUTHORIZATION.as_str())?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| percent_decode(&s.replace('+', " "));
    Some((unescape(id)?, unescape(secret)?))
}

fn nonempty<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    last_param(params, name).filter(|v| !v.is_empty())
}

fn verify_pkce(challenge: &Challenge, verifier: Option<&str>) -> bool {
    let Some(verifier) = verifier.filter(|v| pkce_shaped(v)) else {
        return false;
    };
    match challenge.method {
        Method::Plain => verifier == challenge.value,
        Method::S256 => {
            URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge.value
        }
    }
}

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Za-z0-9-._~]`.
fn pkce_shaped(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

fn refresh_allowed(rule: RefreshRule, code: &Code, consented: bool) -> bool {
    let scope_has = |item: &str| {
        code.scope
            .as_deref()
            .unwrap_or("")
            .split(|c: char| c.is_whitespace() || c == ',')
            .any(|s| s == item)
    };
    match rule {
        RefreshRule::Always => true,
        RefreshRule::ScopeOrDefault(items) => {
            code.scope.as_deref().is_none_or(|s| s.trim().is_empty())
                || items.iter().any(|i| scope_has(i))
        }
        RefreshRule::Scope(item) => scope_has(item),
        RefreshRule::AccessTypeOffline => code.access_type_offline,
        RefreshRule::OfflineFirstConsent => {
            code.access_type_offline && (code.prompt_consent || !consented)
        }
    }
}

fn exchange(
    control: &Control,
    profile: &'static Profile,
    request: &TokenRequest,
) -> Result<Issued, TokenError> {
    let params = &request.params;
    let grant_type = nonempty(params, "grant_type").ok_or(TokenError::MissingGrantType)?;
    let grant = GrantType::parse(grant_type)
        .filter(|g| *g != GrantType::ClientCredentials || profile.client_credentials)
        .ok_or_else(|| TokenError::UnsupportedGrant(grant_type.to_owned()))?;
    let (client_id, secret) = match &request.basic {
        Some((id, secret)) => (Some(id.as_str()), Some(secret.as_str())),
        None => (
            nonempty(params, "client_id"),
            nonempty(params, "client_secret"),
        ),
    };
    let client_id = client_id.ok_or(TokenError::MissingClient)?;

    let mut guard = control.oauth.lock();
    let inner = &mut *guard;
    let base_url = inner.base_url.clone();
    let now = Utc::now();
    let state = inner
        .providers
        .get_mut(profile.provider)
        .ok_or_else(|| TokenError::UnknownClient(client_id.to_owned()))?;
    let client = state
        .clients
        .get(client_id)
        .ok_or_else(|| TokenError::UnknownClient(client_id.to_owned()))?;
    if secret != Some(client.secret.as_str()) {
        return Err(TokenError::BadSecret);
    }
    let client_secret = client.secret.clone();
    let lifetime = state.settings.access_lifetime_secs;

    let (grant_id, refresh_out, scope) = match grant {
        GrantType::AuthorizationCode => {
            let value = nonempty(params, "code").ok_or(TokenError::BadCode)?;
            let code = state.codes.get_mut(value).ok_or(TokenError::BadCode)?;
            if code.client_id != client_id {
                return Err(TokenError::BadCode);
            }
            if code.used {
                return Err(TokenError::CodeUsed);
            }
            code.used = true;
            let code = code.clone();
            if code.expires_at <= now {
                return Err(TokenError::CodeExpired);
            }
            if last_param(params, "redirect_uri") != Some(code.redirect_uri.as_str()) {
                return Err(TokenError::RedirectMismatch);
            }
            if let Some(challenge) = &code.challenge
                && !verify_pkce(challenge, last_param(params, "code_verifier"))
            {
                return Err(TokenError::BadVerifier);
            }
            let with_refresh =
                refresh_allowed(profile.refresh_rule, &code, state.has_consented(client_id));
            let id = open_grant(inner, profile.provider, client_id, code.scope.clone(), true)
                .ok_or(TokenError::BadCode)?;
            (id, with_refresh, code.scope)
        }
        GrantType::RefreshToken => {
            let token = nonempty(params, "refresh_token").ok_or(TokenError::BadRefreshToken)?;
            let id = state.live_grant(token).ok_or(TokenError::BadRefreshToken)?;
            let grant = state.grants.get(&id).ok_or(TokenError::BadRefreshToken)?;
            if grant.client_id != client_id {
                return Err(TokenError::BadRefreshToken);
            }
            (id, state.settings.rotate, grant.scope.clone())
        }
        GrantType::ClientCredentials => {
            let scope = nonempty(params, "scope").map(str::to_owned);
            let id = open_grant(inner, profile.provider, client_id, scope.clone(), false)
                .ok_or(TokenError::MissingClient)?;
            (id, false, scope)
        }
    };

    let state = inner
        .providers
        .get_mut(profile.provider)
        .ok_or(TokenError::MissingClient)?;
    let old_refresh = state.grants.get(&grant_id).and_then(|g| g.refresh.clone());
    let (access_token, expires_at, new_refresh) = mint(
        control,
        state,
        &mut inner.entropy,
        grant_id,
        refresh_out,
        lifetime,
        now,
    );
    let refresh_token = match (grant, new_refresh) {
        (_, Some(new)) => Some(new),
        (GrantType::RefreshToken, None) if profile.echoes_refresh_token => old_refresh,
        _ => None,
    };
    Ok(Issued {
        grant_type: grant,
        access_token,
        refresh_token,
        expires_in: lifetime.max(0),
        expires_at,
        issued_at: now,
        scope,
        client_id: client_id.to_owned(),
        client_secret,
        base_url,
    })
}

/// Revokes the grant `token` (a refresh token, current or rotated away) belongs to:
/// every refresh token of it dies; with `kill_access` its access tokens leave the
/// registry too. `None` when the provider never issued that refresh token.
pub(crate) fn revoke_refresh_token(
    control: &Control,
    provider: &str,
    token: &str,
    kill_access: bool,
) -> Option<usize> {
    let mut inner = control.oauth.lock();
    let state = inner.providers.get_mut(provider)?;
    let id = *state.refresh_tokens.get(token)?;
    Some(revoke_grant(control, state, id, kill_access))
}

/// Revokes an access token: the whole grant it belongs to (Google), or just that token
/// (Salesforce). `None` when the provider never issued it through OAuth.
pub(crate) fn revoke_access_token(
    control: &Control,
    provider: &str,
    token: &str,
    whole_grant: bool,
) -> Option<usize> {
    let mut inner = control.oauth.lock();
    let state = inner.providers.get_mut(provider)?;
    let id = state
        .grants
        .iter()
        .find(|(_, g)| g.access.iter().any(|(t, _)| t == token))
        .map(|(id, _)| *id)?;
    if whole_grant {
        return Some(revoke_grant(control, state, id, true));
    }
    if let Some(grant) = state.grants.get_mut(&id) {
        grant.access.retain(|(t, _)| t != token);
    }
    control.remove_tokens(&[token.to_owned()]);
    Some(1)
}

/// Whether the request's HTTP Basic credentials are a registered client of `provider`
/// (revocation endpoints that want the app to authenticate).
pub(crate) fn basic_client_is_known(control: &Control, provider: &str, info: &ReqInfo) -> bool {
    let Some((id, secret)) = basic_credentials(info) else {
        return false;
    };
    let inner = control.oauth.lock();
    inner
        .providers
        .get(provider)
        .and_then(|state| state.clients.get(&id))
        .is_some_and(|client| client.secret == secret)
}

fn revoke_grant(control: &Control, state: &mut ProviderState, id: u64, kill_access: bool) -> usize {
    let Some(grant) = state.grants.get_mut(&id) else {
        return 0;
    };
    grant.revoked = true;
    if !kill_access {
        return 0;
    }
    let tokens: Vec<String> = grant.access.drain(..).map(|(t, _)| t).collect();
    control.remove_tokens(&tokens);
    tokens.len()
}

// ---------------------------------------------------------------------------------------
// Vendor-facing handlers

fn is_loopback_redirect(uri: &url::Url) -> bool {
    matches!(uri.scheme(), "http" | "https")
        && matches!(uri.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))
}

fn found(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => (StatusCode::FOUND, [(header::LOCATION, value)]).into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

fn redirect_error(
    mut uri: url::Url,
    error: &str,
    description: &str,
    state: Option<&str>,
) -> Response {
    {
        let mut q = uri.query_pairs_mut();
        q.append_pair("error", error);
        q.append_pair("error_description", description);
        if let Some(state) = state {
            q.append_pair("state", state);
        }
    }
    found(uri.as_str())
}

/// `GET` authorization endpoint: approves at once and redirects with a single-use code.
pub(crate) async fn authorize<V: OAuthShape>(State(v): State<Arc<V>>, info: ReqInfo) -> Response {
    let profile = v.oauth_profile();
    let pairs = info.pairs();
    let Some(client_id) = nonempty(&pairs, "client_id") else {
        return v.authorize_error(&AuthorizeError::MissingClient);
    };
    let Some(redirect_raw) = nonempty(&pairs, "redirect_uri") else {
        return v.authorize_error(&AuthorizeError::MissingRedirect);
    };
    let redirect = url::Url::parse(redirect_raw)
        .ok()
        .filter(|u| u.fragment().is_none());
    let base_url;
    {
        let inner = v.oauth_control().oauth.lock();
        base_url = inner.base_url.clone();
        let client = inner
            .providers
            .get(profile.provider)
            .and_then(|s| s.clients.get(client_id));
        let Some(client) = client else {
            return v.authorize_error(&AuthorizeError::UnknownClient(client_id.to_owned()));
        };
        let accepted = match (&redirect, &client.redirect_uris) {
            (None, _) => false,
            (Some(uri), None) => is_loopback_redirect(uri),
            (Some(_), Some(list)) => list.iter().any(|u| u == redirect_raw),
        };
        if !accepted {
            return v.authorize_error(&AuthorizeError::BadRedirect(redirect_raw.to_owned()));
        }
    }
    let Some(mut redirect) = redirect else {
        return v.authorize_error(&AuthorizeError::BadRedirect(redirect_raw.to_owned()));
    };
    let state = last_param(&pairs, "state");

    if last_param(&pairs, "response_type") != Some("code") {
        return redirect_error(
            redirect,
            "unsupported_response_type",
            "response_type must be code",
            state,
        );
    }
    let challenge = match (
        nonempty(&pairs, "code_challenge"),
        nonempty(&pairs, "code_challenge_method"),
    ) {
        (None, None) => None,
        (None, Some(_)) => {
            return redirect_error(
                redirect,
                "invalid_request",
                "code_challenge_method without code_challenge",
                state,
            );
        }
        (Some(value), method) => {
            let method = match method {
                None | Some("plain") => Method::Plain,
                Some("S256") => Method::S256,
                Some(_) => {
                    return redirect_error(
                        redirect,
                        "invalid_request",
                        "unsupported code_challenge_method (use S256 or plain)",
                        state,
                    );
                }
            };
            if !pkce_shaped(value) {
                return redirect_error(
                    redirect,
                    "invalid_request",
                    "invalid code_challenge",
                    state,
                );
            }
            Some(Challenge {
                method,
                value: value.to_owned(),
            })
        }
    };

    let now = Utc::now();
    let code = Code {
        client_id: client_id.to_owned(),
        redirect_uri: redirect_raw.to_owned(),
        scope: nonempty(&pairs, "scope").map(str::to_owned),
        challenge,
        access_type_offline: last_param(&pairs, "access_type") == Some("offline"),
        prompt_consent: last_param(&pairs, "prompt")
            .is_some_and(|p| p.split([' ', ',']).any(|x| x == "consent")),
        expires_at: expiry(now, profile.code_lifetime_secs),
        used: false,
    };
    let value = {
        let mut guard = v.oauth_control().oauth.lock();
        let inner = &mut *guard;
        let value = inner.entropy.token(profile.prefixes.code);
        if let Some(state) = inner.providers.get_mut(profile.provider) {
            state.codes.retain(|_, c| c.expires_at > now);
            state.codes.insert(value.clone(), code);
        }
        value
    };
    {
        let mut q = redirect.query_pairs_mut();
        q.append_pair("code", &value);
        if let Some(state) = state {
            q.append_pair("state", state);
        }
        for (name, value) in v.callback_params(&base_url) {
            q.append_pair(name, &value);
        }
    }
    found(redirect.as_str())
}

/// `POST` token endpoint (`application/x-www-form-urlencoded`).
pub(crate) async fn token<V: OAuthShape>(
    State(v): State<Arc<V>>,
    info: ReqInfo,
    body: Bytes,
) -> Response {
    let profile = v.oauth_profile();
    let store = &v.oauth_control().oauth;
    let request = read_token_request(profile, &info, &body);
    let grant = request
        .as_ref()
        .ok()
        .and_then(|r| last_param(&r.params, "grant_type"))
        .and_then(GrantType::parse);

    let presented = request
        .as_ref()
        .ok()
        .filter(|_| grant == Some(GrantType::RefreshToken))
        .and_then(|r| last_param(&r.params, "refresh_token"))
        .map(str::to_owned);
    let _answering = presented.map(|token| Answering::begin(store, profile.provider, token));
    let (delay, outage) = {
        let mut inner = store.lock();
        match inner.providers.get_mut(profile.provider) {
            None => (0, None),
            Some(state) => {
                let c = &mut state.counters;
                match grant {
                    Some(GrantType::AuthorizationCode) => c.authorization_code += 1,
                    Some(GrantType::RefreshToken) => c.refresh_token += 1,
                    Some(GrantType::ClientCredentials) => c.client_credentials += 1,
                    None => {}
                }
                let outage = state.settings.failure.as_mut().map(|f| {
                    f.times = f.times.saturating_sub(1);
                    f.status
                });
                if state.settings.failure.is_some_and(|f| f.times == 0) {
                    state.settings.failure = None;
                }
                (state.settings.delay_ms, outage)
            }
        }
    };
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if let Some(status) = outage {
        store.count_failed(profile.provider);
        return v.token_outage(status);
    }

    match request.and_then(|r| exchange(v.oauth_control(), profile, &r)) {
        Ok(issued) => token_success(v.token_body(&issued)),
        Err(error) => {
            store.count_failed(profile.provider);
            v.token_error(&error)
        }
    }
}

/// One refresh request being answered, counted as overlapping when another presenting the
/// same refresh token is still in progress; the count drops when the answer is sent (or the
/// client went away).
struct Answering<'a> {
    store: &'a OAuthStore,
    provider: &'static str,
    token: String,
}

impl<'a> Answering<'a> {
    fn begin(store: &'a OAuthStore, provider: &'static str, token: String) -> Answering<'a> {
        if let Some(state) = store.lock().providers.get_mut(provider) {
            let n = state.refreshing.entry(token.clone()).or_insert(0);
            if *n > 0 {
                state.counters.overlapping_refreshes += 1;
            }
            *n += 1;
        }
        Answering {
            store,
            provider,
            token,
        }
    }
}

impl Drop for Answering<'_> {
    fn drop(&mut self) {
        if let Some(state) = self.store.lock().providers.get_mut(self.provider)
            && let Some(n) = state.refreshing.get_mut(&self.token)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                state.refreshing.remove(&self.token);
            }
        }
    }
}

fn token_success(body: Value) -> Response {
    (
        StatusCode::OK,
        [
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (header::PRAGMA, HeaderValue::from_static("no-cache")),
        ],
        axum::Json(body),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------
// /_control/oauth routes

#[derive(Clone)]
struct OAuthApi {
    control: Arc<Control>,
    vendors: Vec<Arc<dyn Vendor>>,
}

impl OAuthApi {
    fn shape(&self, provider: &str) -> Result<&dyn OAuthShape, Reject> {
        self.vendors
            .iter()
            .find(|v| v.provider() == provider)
            .and_then(|v| v.oauth())
            .ok_or_else(|| {
                control_error(
                    StatusCode::BAD_REQUEST,
                    format!("unknown provider {provider:?} (or one without OAuth)"),
                )
            })
    }
}

/// Merged into `/_control` by `control::router`.
pub(crate) fn control_router(control: Arc<Control>, vendors: Vec<Arc<dyn Vendor>>) -> Router {
    Router::new()
        .route("/oauth", post(configure).get(show_settings))
        .route("/oauth/clients", post(add_client))
        .route("/oauth/revoke", post(control_revoke))
        .route("/oauth/grant", post(control_grant))
        .with_state(OAuthApi { control, vendors })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FailureSpec {
    status: u16,
    times: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SettingsSpec {
    provider: String,
    access_token_lifetime_seconds: Option<i64>,
    rotate_refresh_tokens: Option<bool>,
    token_delay_ms: Option<u64>,
    token_failures: Option<FailureSpec>,
}

fn bad(message: impl Into<String>) -> Reject {
    control_error(StatusCode::BAD_REQUEST, message)
}

fn check_lifetime(secs: i64) -> Result<i64, Reject> {
    if secs.abs() > MAX_LIFETIME_SECS {
        Err(bad("accessTokenLifetimeSeconds out of range"))
    } else {
        Ok(secs)
    }
}

async fn configure(State(api): State<OAuthApi>, body: Bytes) -> Result<Response, Reject> {
    let spec: SettingsSpec = parse_body(&body)?;
    let profile = api.shape(&spec.provider)?.oauth_profile();
    let lifetime = spec
        .access_token_lifetime_seconds
        .map(check_lifetime)
        .transpose()?;
    if spec.rotate_refresh_tokens == Some(false) && profile.always_rotates {
        return Err(bad(format!(
            "{} always rotates refresh tokens",
            profile.provider
        )));
    }
    let failure = match spec.token_failures {
        None => None,
        Some(f) => {
            let status = StatusCode::from_u16(f.status)
                .ok()
                .filter(|s| s.is_client_error() || s.is_server_error())
                .ok_or_else(|| bad("tokenFailures.status must be a 4xx or 5xx status"))?;
            Some(Failure {
                status,
                times: f.times.unwrap_or(1),
            })
        }
    };
    let mut inner = api.control.oauth.lock();
    let state = inner
        .providers
        .get_mut(profile.provider)
        .ok_or_else(|| bad("provider has no OAuth state"))?;
    if let Some(lifetime) = lifetime {
        state.settings.access_lifetime_secs = lifetime;
    }
    if let Some(rotate) = spec.rotate_refresh_tokens {
        state.settings.rotate = rotate;
    }
    if let Some(delay) = spec.token_delay_ms {
        state.settings.delay_ms = delay;
    }
    if let Some(failure) = failure {
        state.settings.failure = (failure.times > 0).then_some(failure);
    }
    Ok(axum::Json(state.settings_json()).into_response())
}

async fn show_settings(State(api): State<OAuthApi>) -> Response {
    let inner = api.control.oauth.lock();
    let out: Vec<Value> = inner
        .providers
        .values()
        .map(ProviderState::settings_json)
        .collect();
    axum::Json(json!({ "providers": out })).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ClientSpec {
    provider: String,
    client_id: String,
    client_secret: String,
    redirect_uris: Option<Vec<String>>,
}

async fn add_client(State(api): State<OAuthApi>, body: Bytes) -> Result<Response, Reject> {
    let spec: ClientSpec = parse_body(&body)?;
    let profile = api.shape(&spec.provider)?.oauth_profile();
    if spec.client_id.trim().is_empty() || spec.client_secret.is_empty() {
        return Err(bad("clientId and clientSecret must not be empty"));
    }
    if let Some(uris) = &spec.redirect_uris
        && let Some(bad_uri) = uris.iter().find(|u| url::Url::parse(u).is_err())
    {
        return Err(bad(format!(
            "redirect URI {bad_uri:?} is not an absolute URL"
        )));
    }
    let mut inner = api.control.oauth.lock();
    let state = inner
        .providers
        .get_mut(profile.provider)
        .ok_or_else(|| bad("provider has no OAuth state"))?;
    state.clients.insert(
        spec.client_id.clone(),
        Client {
            secret: spec.client_secret,
            redirect_uris: spec.redirect_uris.clone(),
        },
    );
    let out = json!({
        "provider": profile.provider,
        "clientId": spec.client_id,
        "redirectUris": spec.redirect_uris,
    });
    Ok((StatusCode::CREATED, axum::Json(out)).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RevokeSpec {
    provider: String,
    refresh_token: String,
}

async fn control_revoke(State(api): State<OAuthApi>, body: Bytes) -> Result<Response, Reject> {
    let spec: RevokeSpec = parse_body(&body)?;
    let profile = api.shape(&spec.provider)?.oauth_profile();
    let killed = revoke_refresh_token(&api.control, profile.provider, &spec.refresh_token, true)
        .ok_or_else(|| control_error(StatusCode::NOT_FOUND, "unknown refresh token"))?;
    Ok(axum::Json(json!({
        "provider": profile.provider,
        "revoked": true,
        "accessTokensRevoked": killed,
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GrantSpec {
    provider: String,
    access_token_lifetime_seconds: Option<i64>,
    scope: Option<String>,
    client_id: Option<String>,
}

/// A linked account without the browser: a fresh grant with a refresh token, answered in
/// the vendor's token-response shape.
async fn control_grant(State(api): State<OAuthApi>, body: Bytes) -> Result<Response, Reject> {
    let spec: GrantSpec = parse_body(&body)?;
    let shape = api.shape(&spec.provider)?;
    let profile = shape.oauth_profile();
    let lifetime = spec
        .access_token_lifetime_seconds
        .map(check_lifetime)
        .transpose()?;
    let client_id = spec
        .client_id
        .unwrap_or_else(|| profile.client_id.to_owned());
    let control = &api.control;
    let issued = {
        let mut guard = control.oauth.lock();
        let inner = &mut *guard;
        let base_url = inner.base_url.clone();
        let (client_secret, default_lifetime) = {
            let state = inner
                .providers
                .get(profile.provider)
                .ok_or_else(|| bad("provider has no OAuth state"))?;
            let client = state
                .clients
                .get(&client_id)
                .ok_or_else(|| bad(format!("unknown client {client_id:?}")))?;
            (client.secret.clone(), state.settings.access_lifetime_secs)
        };
        let lifetime = lifetime.unwrap_or(default_lifetime);
        let id = open_grant(
            inner,
            profile.provider,
            &client_id,
            spec.scope.clone(),
            false,
        )
        .ok_or_else(|| bad("provider has no OAuth state"))?;
        let state = inner
            .providers
            .get_mut(profile.provider)
            .ok_or_else(|| bad("provider has no OAuth state"))?;
        let now = Utc::now();
        let (access_token, expires_at, refresh_token) =
            mint(control, state, &mut inner.entropy, id, true, lifetime, now);
        Issued {
            grant_type: GrantType::AuthorizationCode,
            access_token,
            refresh_token,
            expires_in: lifetime.max(0),
            expires_at,
            issued_at: now,
            scope: spec.scope,
            client_id,
            client_secret,
            base_url,
        }
    };
    Ok((StatusCode::CREATED, axum::Json(shape.token_body(&issued))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_rfc7636_appendix_b() {
        let challenge = Challenge {
            method: Method::S256,
            value: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned(),
        };
        assert!(verify_pkce(
            &challenge,
            Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        ));
        assert!(!verify_pkce(
            &challenge,
            Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl")
        ));
        assert!(!verify_pkce(&challenge, None));
    }

    #[test]
    fn minted_tokens_differ_and_keep_prefix() {
        let mut e = Entropy {
            keys: RandomState::new(),
            counter: 0,
        };
        let a = e.token("ya29.");
        let b = e.token("ya29.");
        assert_ne!(a, b);
        assert!(a.starts_with("ya29.") && a.len() == 5 + 43);
    }
}
