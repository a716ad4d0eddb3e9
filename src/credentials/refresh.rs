//! Fresh tokens, refreshed once: the seed's root cause 1.
//!
//! Within a process, callers of one account queue on that account's lock, so one refresh
//! serves them all. Across processes, the refresh is claimed by a compare-and-swap on the
//! account's version (status REFRESHING): the winner calls the vendor and writes the new
//! token set (with the new refresh token) before anyone uses it; the others wait for the
//! version to move and re-read. After `invalid_grant` the account is re-read once (a peer
//! may have rotated the token); otherwise it becomes NEEDS_REAUTH with a reason and an
//! event, and that refresh token is never sent again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use futures_util::StreamExt;

use super::oauth::{ClientApp, Grant, TokenClient, TokenError};
use super::{Credentials, Vault};

use crate::bounds::utc_after;
use crate::config::Providers;
use crate::error::{ErrorCode, HasCode};
use crate::secret::Secret;
use crate::store::{LinkedAccount, LinkedAccountUpdate, Store};
use crate::upstreams::AllowList;

/// A claim older than this is abandoned (its process died mid-refresh) and may be taken.
/// It is longer than the slowest refresh that can still be running ([`ATTEMPTS`] of up to
/// 15 s each plus 0.6 s of backoff: 46 s), so a slow refresh is never taken over while it
/// runs and its rotated tokens are never thrown away; a write after a takeover is still
/// fenced by the version. `TESSERA_REFRESH_CLAIM_TTL_SECS` overrides it (crash tests use a
/// short one).
const CLAIM_TTL: chrono::Duration = chrono::Duration::seconds(60);

fn claim_ttl_from_env() -> chrono::Duration {
    std::env::var("TESSERA_REFRESH_CLAIM_TTL_SECS")
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|s| *s > 0)
        .and_then(chrono::Duration::try_seconds)
        .unwrap_or(CLAIM_TTL)
}
/// Accounts read from the due list at a time, and refreshed at once within a page.
const DUE_PAGE: u64 = 200;
const REFRESH_CONCURRENCY: usize = 8;
/// How long a caller waits for a peer's refresh before giving up.
const PEER_WAIT: Duration = Duration::from_secs(20);
/// Attempts at the token endpoint for transient failures, with doubling backoff.
const ATTEMPTS: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("linked account `{account}` must be reconnected: {reason}")]
    NeedsReauth { account: String, reason: String },
    #[error(
        "{}the vendor's token endpoint cannot be used right now: {reason}",
        about(account)
    )]
    Unavailable { account: String, reason: String },
    #[error("{}{reason}", about(account))]
    Config { account: String, reason: String },
    /// The token endpoint (or the API the token answer points at) is an address the
    /// upstream allow list does not name.
    #[error("{}{refused}", about(account))]
    Refused {
        account: String,
        refused: crate::upstreams::Refused,
    },
    /// The callback came from a browser other than the one that opened the
    /// authorization link (no cookie, or another one): nothing was consumed or linked.
    #[error("{0}")]
    OtherBrowser(String),
    #[error("credential storage: {0}")]
    Store(String),
}

/// "linked account `x`: " when the error concerns an existing account; nothing before one
/// exists (starting an authorization, connecting), so no message names an empty account.
fn about(account: &str) -> String {
    if account.is_empty() {
        String::new()
    } else {
        format!("linked account `{account}`: ")
    }
}

impl HasCode for RefreshError {
    fn code(&self) -> ErrorCode {
        match self {
            RefreshError::NeedsReauth { .. } => ErrorCode::NeedsReauth,
            RefreshError::Unavailable { .. } => ErrorCode::UpstreamUnavailable,
            RefreshError::Config { .. } => ErrorCode::ConfigError,
            RefreshError::Refused { .. } => ErrorCode::Forbidden,
            RefreshError::OtherBrowser(_) => ErrorCode::Forbidden,
            RefreshError::Store(_) => ErrorCode::Internal,
        }
    }
}

/// An OAuth endpoint of an account, as messages name it.
#[derive(Debug, Clone, Copy)]
pub enum Endpoint {
    Token,
    Authorize,
    Revoke,
}

impl Endpoint {
    fn describe(self) -> &'static str {
        match self {
            Endpoint::Token => "token endpoint (settings.tokenUrl or the provider's template)",
            Endpoint::Authorize => {
                "authorization endpoint (settings.authorizeUrl or the provider's template)"
            }
            Endpoint::Revoke => {
                "revocation endpoint (settings.revokeUrl or the provider's template)"
            }
        }
    }
}

pub struct TokenManager {
    pub(super) store: Store,
    pub(super) vault: Vault,
    pub(super) providers: Providers,
    pub(super) client: TokenClient,
    pub(super) upstreams: Arc<AllowList>,
    claim_ttl: chrono::Duration,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// When each account's last refresh sequence failed, and why: callers that queued
    /// behind it share its outcome instead of each running a sequence of their own.
    failures: Mutex<HashMap<String, (std::time::Instant, String)>>,
    /// Refresh outcomes of this process, (provider, outcome) -> count, for `/metrics`.
    outcomes: Mutex<std::collections::BTreeMap<(String, &'static str), u64>>,
}

impl TokenManager {
    fn count(&self, provider: &str, outcome: &'static str) {
        if let Ok(mut o) = self.outcomes.lock() {
            *o.entry((provider.to_string(), outcome)).or_default() += 1;
        }
    }

    /// Refreshes by (provider, outcome: `refreshed`, `needs_reauth`, `failed`) so far.
    pub fn refresh_outcomes(&self) -> Vec<((String, &'static str), u64)> {
        self.outcomes
            .lock()
            .map(|o| o.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default()
    }

    pub fn new(
        store: Store,
        vault: Vault,
        providers: Providers,
        client: TokenClient,
        upstreams: Arc<AllowList>,
    ) -> TokenManager {
        TokenManager {
            store,
            vault,
            providers,
            client,
            upstreams,
            claim_ttl: claim_ttl_from_env(),
            locks: Mutex::default(),
            failures: Mutex::default(),
            outcomes: Mutex::default(),
        }
    }

    fn failed_since(&self, account: &str, since: std::time::Instant) -> Option<String> {
        let failures = self.failures.lock().ok()?;
        let (at, reason) = failures.get(account)?;
        (*at >= since).then(|| reason.clone())
    }

    fn note_failure(&self, account: &str, reason: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.insert(
                account.to_string(),
                (std::time::Instant::now(), reason.to_string()),
            );
        }
    }

    pub(super) fn lock_for(&self, account: &str) -> Arc<tokio::sync::Mutex<()>> {
        match self.locks.lock() {
            Ok(mut m) => m.entry(account.to_string()).or_default().clone(),
            // A poisoned map only loses in-process coalescing; the database claim still holds.
            Err(_) => Arc::default(),
        }
    }

    pub(super) fn store_err(e: crate::store::StoreError) -> RefreshError {
        RefreshError::Store(e.to_string())
    }

    pub(super) fn open(&self, row: &LinkedAccount) -> Result<Credentials, RefreshError> {
        self.vault
            .open(&row.id, &row.credentials)
            .map_err(|e| RefreshError::Store(e.to_string()))
    }

    /// Whether the row's token must be refreshed before use.
    fn due(&self, row: &LinkedAccount, creds: &Credentials) -> bool {
        let Some(oauth) = self
            .providers
            .get(&row.provider)
            .and_then(|p| p.oauth.as_ref())
        else {
            return false;
        };
        let Some(expires_at) = row.expires_at else {
            return false;
        };
        (creds.refresh_token.is_some() || creds.client_credentials)
            && expires_at <= utc_after(Utc::now(), oauth.refresh_buffer.as_secs())
    }

    pub(super) fn claim_is_stale(&self, row: &LinkedAccount) -> bool {
        row.status == "REFRESHING" && row.updated_at < Utc::now() - self.claim_ttl
    }

    /// The account's usable credentials, refreshed first when they are due.
    pub async fn fresh(
        &self,
        row: LinkedAccount,
    ) -> Result<(LinkedAccount, Credentials), RefreshError> {
        self.fresh_inner(row, None).await
    }

    /// A vendor refused `refused` (HTTP 401) for this account. `Ok(Some(token))`: retry
    /// once with it (refreshed now, single-flight, or already replaced by another caller);
    /// `Ok(None)`: the account is now NEEDS_REAUTH with the reason and an event, so the
    /// caller's `NEEDS_REAUTH` and the account's status agree. `retried`: a fresh token
    /// was refused as well, so refreshing again cannot help.
    pub async fn after_refusal(
        &self,
        account_id: &str,
        refused: &Secret,
        reason: &str,
        retried: bool,
    ) -> Result<Option<Secret>, RefreshError> {
        let row = self
            .store
            .get_linked_account(account_id)
            .await
            .map_err(Self::store_err)?
            .ok_or_else(|| RefreshError::Config {
                account: account_id.to_string(),
                reason: "the account was deleted".into(),
            })?;
        if row.status == "NEEDS_REAUTH" || row.status == "REVOKED" {
            return Ok(None);
        }
        let creds = self.open(&row)?;
        if let Some(current) = creds.request_token()
            && current != refused
            && !retried
        {
            // Another caller already replaced the refused token.
            return Ok(Some(current.clone()));
        }
        let refreshable = creds.refresh_token.is_some() || creds.client_credentials;
        if refreshable && !retried {
            return match self.fresh_inner(row, Some(refused)).await {
                // Still the refused token: the refresh did not happen (the token endpoint
                // failed); retrying with it would only park a healthy account.
                Ok((_, creds)) => match creds.request_token() {
                    Some(token) if token != refused => Ok(Some(token.clone())),
                    _ => Err(RefreshError::Unavailable {
                        account: account_id.to_string(),
                        reason: "the token endpoint gave no new token".into(),
                    }),
                },
                Err(RefreshError::NeedsReauth { .. }) => Ok(None),
                Err(e) => Err(e),
            };
        }
        self.park(
            &row,
            format!("the vendor refused the access token ({reason}); reconnect the account"),
        )
        .await?;
        Ok(None)
    }

    /// As [`Self::fresh`]; with `force`, a token the vendor refused is refreshed even when
    /// it is not due (unless it has been replaced meanwhile).
    async fn fresh_inner(
        &self,
        row: LinkedAccount,
        force: Option<&Secret>,
    ) -> Result<(LinkedAccount, Credentials), RefreshError> {
        let forced = |creds: &Credentials| force.is_some_and(|t| creds.request_token() == Some(t));
        let creds = self.open(&row)?;
        if !self.due(&row, &creds) && row.status != "REFRESHING" && !forced(&creds) {
            return Ok((row, creds));
        }
        let lock = self.lock_for(&row.id);
        let queued_at = std::time::Instant::now();
        let _guard = lock.lock().await;
        // A sequence failed while we waited for the lock: one sequence per account at a
        // time, so share its outcome (the still-valid token, or its failure).
        if let Some(reason) = self.failed_since(&row.id, queued_at) {
            let current = self
                .store
                .get_linked_account(&row.id)
                .await
                .map_err(Self::store_err)?
                .unwrap_or(row);
            if current.expires_at.is_none_or(|at| at > Utc::now()) {
                let creds = self.open(&current)?;
                return Ok((current, creds));
            }
            return Err(RefreshError::Unavailable {
                account: current.id,
                reason,
            });
        }
        let deadline = tokio::time::Instant::now() + PEER_WAIT;
        loop {
            // Re-read: a caller ahead of us in this process, or a peer, may have refreshed.
            let current = self
                .store
                .get_linked_account(&row.id)
                .await
                .map_err(Self::store_err)?
                .ok_or_else(|| RefreshError::Config {
                    account: row.id.clone(),
                    reason: "the account was deleted".into(),
                })?;
            let creds = self.open(&current)?;
            match current.status.as_str() {
                "NEEDS_REAUTH" | "REVOKED" => {
                    return Err(RefreshError::NeedsReauth {
                        account: current.id.clone(),
                        reason: current
                            .status_reason
                            .clone()
                            .unwrap_or_else(|| current.status.clone()),
                    });
                }
                // Parked by an operator (disabled, or being deleted): never refreshed, and
                // never claimed, which would write it back ACTIVE.
                "DISABLED" | "ERROR" => {
                    return Err(RefreshError::Config {
                        account: current.id.clone(),
                        reason: format!("the account is {}: it is not refreshed", current.status),
                    });
                }
                "REFRESHING" if !self.claim_is_stale(&current) => {
                    // A peer holds the claim: wait for it to finish.
                    if tokio::time::Instant::now() >= deadline {
                        return Err(RefreshError::Unavailable {
                            account: current.id.clone(),
                            reason: "another replica's refresh did not finish in time".into(),
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                _ => {}
            }
            if !self.due(&current, &creds) && current.status != "REFRESHING" && !forced(&creds) {
                return Ok((current, creds));
            }
            // Claim the refresh: only one writer moves the version from here.
            let claimed = self
                .store
                .update_linked_account_cas(
                    &current.id,
                    current.version,
                    LinkedAccountUpdate {
                        status: "REFRESHING".into(),
                        status_reason: None,
                        credentials: current.credentials.clone(),
                        expires_at: current.expires_at,
                        last_refreshed_at: current.last_refreshed_at,
                    },
                )
                .await
                .map_err(Self::store_err)?;
            match claimed {
                Some(claimed) => return self.refresh_claimed(claimed, creds).await,
                // Lost the race to a peer: loop, wait for it, re-read.
                None => continue,
            }
        }
    }

    async fn refresh_claimed(
        &self,
        claimed: LinkedAccount,
        creds: Credentials,
    ) -> Result<(LinkedAccount, Credentials), RefreshError> {
        let account = claimed.id.clone();
        let config = |reason: String| RefreshError::Config {
            account: account.clone(),
            reason,
        };
        let provider = self
            .providers
            .get(&claimed.provider)
            .cloned()
            .ok_or_else(|| config(format!("provider `{}` is not loaded", claimed.provider)))?;
        let oauth = provider
            .oauth
            .as_ref()
            .ok_or_else(|| config("the provider has no OAuth configuration".into()))?;
        if creds.refresh_token.is_none() && !creds.client_credentials {
            return Err(config("no refresh token".into()));
        }
        // The endpoint first (an address the allow list refuses is refused as such), then
        // the app that may be sent there: an account linked before the platform app was
        // held to its own endpoints must not send the platform's secret elsewhere now.
        let token_url = match provider.resolve_oauth_url(
            &oauth.token_url,
            "tokenUrl",
            &claimed.settings,
            &self.upstreams,
        ) {
            Ok(u) => u,
            Err(e) => {
                self.release(&claimed, &creds, Some(e.to_string())).await?;
                return Err(url_error(&account, e));
            }
        };
        let app = self
            .app_for(
                &account,
                &claimed.environment_id,
                &provider,
                &[(Endpoint::Token, &oauth.token_url, &token_url)],
                creds.client_credentials,
            )
            .await;
        let app = match app {
            Ok(app) => app,
            Err(e) => {
                let reason = e.to_string();
                self.release(&claimed, &creds, Some(reason.clone())).await?;
                self.count(&claimed.provider, "failed");
                let _ = self
                    .store
                    .insert_account_event(&claimed.id, "TOKEN_REFRESH_FAILED", &reason)
                    .await;
                return Err(e);
            }
        };
        let mut attempt = 0;
        let outcome = loop {
            attempt += 1;
            match self
                .client
                .request(
                    oauth,
                    &token_url,
                    &app,
                    match &creds.refresh_token {
                        Some(refresh_token) => Grant::Refresh { refresh_token },
                        None => Grant::ClientCredentials,
                    },
                )
                .await
            {
                Err(TokenError::Transient { reason }) if attempt < ATTEMPTS => {
                    tracing::warn!(account = %account, attempt, %reason, "token refresh failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt - 1))).await;
                }
                other => break other,
            }
        };
        match outcome {
            Ok(set) => {
                let new = Credentials {
                    access_token: Some(set.access_token),
                    // Vendors that do not rotate send no refresh token: keep the one we have.
                    refresh_token: set.refresh_token.or(creds.refresh_token.clone()),
                    api_key: None,
                    expires_at: set.expires_at,
                    client_credentials: creds.client_credentials,
                };
                let now = Utc::now();
                let written = self
                    .store
                    .update_linked_account_cas(
                        &claimed.id,
                        claimed.version,
                        LinkedAccountUpdate {
                            status: "ACTIVE".into(),
                            status_reason: None,
                            credentials: self.vault.seal(&claimed.id, &new),
                            expires_at: new.expires_at,
                            last_refreshed_at: Some(now),
                        },
                    )
                    .await
                    .map_err(Self::store_err)?;
                let Some(row) = written else {
                    // Someone moved the row under our claim (an operator disabling it):
                    // their write wins, and the fresh token set is theirs to handle.
                    return Err(RefreshError::Unavailable {
                        account,
                        reason: "the account changed during the refresh".into(),
                    });
                };
                tracing::info!(account = %row.id, provider = %row.provider, "access token refreshed");
                self.count(&row.provider, "refreshed");
                let _ = self
                    .store
                    .insert_account_event(
                        &row.id,
                        "TOKEN_REFRESHED",
                        "the access token was refreshed",
                    )
                    .await;
                Ok((row, new))
            }
            Err(TokenError::InvalidGrant { reason }) => {
                let reason = format!(
                    "the vendor refused the refresh token ({reason}); reconnect the account"
                );
                let parked = self
                    .store
                    .update_linked_account_cas(
                        &claimed.id,
                        claimed.version,
                        LinkedAccountUpdate {
                            status: "NEEDS_REAUTH".into(),
                            status_reason: Some(reason.clone()),
                            credentials: claimed.credentials.clone(),
                            expires_at: claimed.expires_at,
                            last_refreshed_at: claimed.last_refreshed_at,
                        },
                    )
                    .await
                    .map_err(Self::store_err)?;
                if parked.is_none() {
                    // A peer wrote a newer token set meanwhile (it rotated first): use it.
                    if let Some(row) = self
                        .store
                        .get_linked_account(&claimed.id)
                        .await
                        .map_err(Self::store_err)?
                        && row.status == "ACTIVE"
                    {
                        let creds = self.open(&row)?;
                        return Ok((row, creds));
                    }
                }
                tracing::warn!(account = %claimed.id, provider = %claimed.provider, "refresh token refused: account needs re-authorization");
                self.count(&claimed.provider, "needs_reauth");
                let _ = self
                    .store
                    .insert_account_event(&claimed.id, "NEEDS_REAUTH", &reason)
                    .await;
                Err(RefreshError::NeedsReauth { account, reason })
            }
            Err(e) => {
                let reason = e.to_string();
                let still_valid = claimed.expires_at.is_some_and(|t| t > Utc::now());
                self.release(
                    &claimed,
                    &creds,
                    Some(format!("last refresh failed: {reason}")),
                )
                .await?;
                self.count(&claimed.provider, "failed");
                self.note_failure(&claimed.id, &reason);
                let _ = self
                    .store
                    .insert_account_event(&claimed.id, "TOKEN_REFRESH_FAILED", &reason)
                    .await;
                if still_valid {
                    // The old access token still works: serve with it, refresh again later.
                    let row = self
                        .store
                        .get_linked_account(&claimed.id)
                        .await
                        .map_err(Self::store_err)?
                        .unwrap_or(claimed);
                    return Ok((row, creds));
                }
                Err(match e {
                    TokenError::Refused(refused) => RefreshError::Refused { account, refused },
                    _ => RefreshError::Unavailable { account, reason },
                })
            }
        }
    }

    /// Gives up a claim, leaving the account ACTIVE with its current credentials.
    async fn release(
        &self,
        claimed: &LinkedAccount,
        _creds: &Credentials,
        reason: Option<String>,
    ) -> Result<(), RefreshError> {
        self.store
            .update_linked_account_cas(
                &claimed.id,
                claimed.version,
                LinkedAccountUpdate {
                    status: "ACTIVE".into(),
                    status_reason: reason,
                    credentials: claimed.credentials.clone(),
                    expires_at: claimed.expires_at,
                    last_refreshed_at: claimed.last_refreshed_at,
                },
            )
            .await
            .map_err(Self::store_err)?;
        Ok(())
    }

    /// The OAuth app to use for `endpoints` of an account of `environment_id`: the
    /// environment's own app, else the platform default where the admin allows it (the
    /// provider file's own endpoints and the hosts the admin named; the client-credentials
    /// grant only when the admin said so). `account` names the account in errors (empty
    /// before one exists).
    pub async fn app_for(
        &self,
        account: &str,
        environment_id: &str,
        model: &crate::config::ProviderModel,
        endpoints: &[(Endpoint, &crate::config::Template, &url::Url)],
        client_credentials: bool,
    ) -> Result<ClientApp, RefreshError> {
        let provider = &model.name;
        let config = |reason: String| RefreshError::Config {
            account: account.to_string(),
            reason,
        };
        let app = self
            .store
            .find_oauth_app(environment_id, provider)
            .await
            .map_err(Self::store_err)?
            .ok_or_else(|| {
                config(format!(
                    "no OAuth app is set for provider `{provider}` (setOAuthApp)"
                ))
            })?;
        if app.environment_id.is_none() {
            let own_app = format!(
                "set this environment's own OAuth app for `{provider}` (setOAuthApp with the environment's API key)"
            );
            if client_credentials && !app.allow_client_credentials {
                return Err(config(format!(
                    "the platform's OAuth app for provider `{provider}` does not serve the client-credentials grant to environments (the admin has not allowed it); {own_app}"
                )));
            }
            for (endpoint, template, url) in endpoints {
                if !super::apps::platform_allows(template, url, &app.allowed_hosts) {
                    let declared = super::apps::declared_origin(template)
                        .map(|(_, host, _)| format!("`{host}`"))
                        .unwrap_or_else(|| {
                            "none: the provider file leaves its host to the settings".into()
                        });
                    return Err(config(format!(
                        "the account's {} is at `{}`, which is neither the provider's own ({declared}) nor a host the admin allowed for the platform's OAuth app, so the platform app is not used there; {own_app}",
                        endpoint.describe(),
                        super::apps::shown_host(url),
                    )));
                }
            }
        }
        let secret = self
            .vault
            .open_secret(&format!("oauth-app:{provider}"), &app.client_secret)
            .map_err(|e| RefreshError::Store(e.to_string()))?;
        Ok(ClientApp {
            client_id: app.client_id,
            client_secret: secret,
            scopes: app.scopes,
        })
    }

    /// Before `connectAccount` stores tokens that will be refreshed: the app its refreshes
    /// would use may be sent to the account's token endpoint. No app at all is no refusal
    /// here (nothing can leak; the refresh says what is missing).
    pub async fn check_refresh_app(
        &self,
        environment_id: &str,
        model: &crate::config::ProviderModel,
        settings: &serde_json::Value,
    ) -> Result<(), RefreshError> {
        let Some(oauth) = model.oauth.as_ref() else {
            return Ok(());
        };
        let token_url = model
            .resolve_oauth_url(&oauth.token_url, "tokenUrl", settings, &self.upstreams)
            .map_err(|e| url_error("", e))?;
        match self
            .app_for(
                "",
                environment_id,
                model,
                &[(Endpoint::Token, &oauth.token_url, &token_url)],
                false,
            )
            .await
        {
            Err(RefreshError::Config { reason, .. }) if reason.starts_with("no OAuth app") => {
                Ok(())
            }
            other => other.map(|_| ()),
        }
    }

    /// One pass of the proactive refresher: every account due within its provider's buffer.
    pub async fn refresh_due(&self) -> usize {
        let horizon = self
            .providers
            .iter()
            .filter_map(|p| p.oauth.as_ref().map(|o| o.refresh_buffer))
            .max()
            .unwrap_or_default();
        let before = utc_after(Utc::now(), horizon.as_secs());
        let mut after = None;
        let mut refreshed = 0;
        // Every page, so that accounts nothing can be done for never starve the rest.
        loop {
            let page = match self
                .store
                .list_accounts_due(before, after.clone(), DUE_PAGE)
                .await
            {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the accounts due for refresh");
                    return refreshed;
                }
            };
            let Some(last) = page.last() else {
                return refreshed;
            };
            after = last.expires_at.map(|at| (at, last.id.clone()));
            let full = page.len() as u64 == DUE_PAGE;
            let done = std::sync::atomic::AtomicUsize::new(0);
            futures_util::stream::iter(page)
                .for_each_concurrent(REFRESH_CONCURRENCY, |row| {
                    let done = &done;
                    async move {
                        if self.refresh_one_due(row).await {
                            done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                })
                .await;
            refreshed += done.into_inner();
            if !full || after.is_none() {
                return refreshed;
            }
        }
    }

    /// One account of the due list: refreshed, or parked when it never can be.
    async fn refresh_one_due(&self, row: LinkedAccount) -> bool {
        let id = row.id.clone();
        if let Ok(creds) = self.open(&row)
            && creds.refresh_token.is_none()
            && !creds.client_credentials
            && row.expires_at.is_some_and(|at| at <= Utc::now())
        {
            let reason = "the access token expired and the account has no refresh token; reconnect the account";
            if let Err(e) = self.park(&row, reason.to_string()).await {
                tracing::warn!(account = %id, error = %e, "cannot park an account that cannot refresh");
            }
            return false;
        }
        match self.fresh(row).await {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(account = %id, error = %e, "proactive refresh failed");
                false
            }
        }
    }

    /// NEEDS_REAUTH with the reason and an event: the account's token cannot be used and
    /// no refresh can replace it (it leaves the due list too). A row changed meanwhile is
    /// left to whoever changed it.
    async fn park(&self, row: &LinkedAccount, reason: String) -> Result<(), RefreshError> {
        let parked = self
            .store
            .update_linked_account_cas(
                &row.id,
                row.version,
                LinkedAccountUpdate {
                    status: "NEEDS_REAUTH".into(),
                    status_reason: Some(reason.clone()),
                    credentials: row.credentials.clone(),
                    expires_at: row.expires_at,
                    last_refreshed_at: row.last_refreshed_at,
                },
            )
            .await
            .map_err(Self::store_err)?;
        if parked.is_some() {
            tracing::warn!(account = %row.id, provider = %row.provider, reason = %reason, "account needs re-authorization");
            self.count(&row.provider, "needs_reauth");
            let _ = self
                .store
                .insert_account_event(&row.id, "NEEDS_REAUTH", &reason)
                .await;
        }
        Ok(())
    }
}

/// Runs [`TokenManager::refresh_due`] every `every` until `stop` resolves.
pub async fn run_scheduler(
    manager: Arc<TokenManager>,
    every: Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(every) => {
                manager.refresh_due().await;
            }
        }
    }
}

/// Why a callback without the starting browser's cookie is refused.
pub const OTHER_BROWSER: &str = "this authorization was not started in this browser: open the authorization link (startOAuth's authorizationUrl) in the browser that completes it; nothing was linked";

/// How long a started authorization may take before its state expires.
const STATE_TTL: chrono::Duration = chrono::Duration::minutes(10);

/// A started authorization: where to send the user.
#[derive(Debug, Clone)]
pub struct AuthorizationStart {
    pub url: url::Url,
    pub state: String,
    pub expires_at: chrono::DateTime<Utc>,
}

fn random_token(bytes: usize) -> String {
    use base64::Engine as _;
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The secret `GET /oauth/start` gives the browser (as a cookie), and its hash, which is
/// all the state keeps.
pub fn new_browser_secret() -> (Secret, String) {
    let secret = random_token(32);
    let hash = sha256_hex(&secret);
    (Secret::new(secret), hash)
}

/// The hash of a browser secret the callback was presented.
pub fn browser_hash(secret: &str) -> String {
    sha256_hex(secret)
}

/// The cookie that carries a state's browser secret: one per state, so a browser may run
/// several authorizations at once.
pub fn browser_cookie_name(state: &str) -> String {
    format!("tessera_oauth_{}", &sha256_hex(state)[..16])
}

fn pkce_challenge(verifier: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()))
}

impl TokenManager {
    /// Begins the authorization-code flow for an environment: stores a single-use state
    /// (and a PKCE verifier, sealed) with the vendor's authorization URL, and returns the
    /// gateway's `GET /oauth/start` link, which binds the state to the browser that opens
    /// it (a cookie) before sending it to the vendor. `gateway` is this gateway's base URL
    /// as browsers reach it.
    pub async fn start_authorization(
        &self,
        environment_id: &str,
        provider: &str,
        redirect_uri: &str,
        settings: serde_json::Value,
        gateway: &str,
        renew: Option<&LinkedAccount>,
    ) -> Result<AuthorizationStart, RefreshError> {
        let config = |reason: String| RefreshError::Config {
            account: String::new(),
            reason,
        };
        // Re-authorizing in place: the account's own settings, with the caller's on top.
        let settings = match renew {
            Some(account) => {
                super::lifecycle::renewal_settings(account, provider, settings).map_err(config)?
            }
            None => settings,
        };
        let model = self
            .providers
            .get(provider)
            .cloned()
            .ok_or_else(|| config(format!("unknown provider `{provider}`")))?;
        let oauth = model
            .oauth
            .as_ref()
            .ok_or_else(|| config(format!("provider `{provider}` does not use OAuth")))?;
        let redirect = url::Url::parse(redirect_uri)
            .map_err(|e| config(format!("redirectUri is not a URL: {e}")))?;
        if !matches!(redirect.scheme(), "http" | "https") {
            return Err(config("redirectUri must be an http(s) URL".into()));
        }
        let mut url = model
            .resolve_oauth_url(
                &oauth.authorize_url,
                "authorizeUrl",
                &settings,
                &self.upstreams,
            )
            .map_err(|e| url_error("", e))?;
        // Where the code will be exchanged: the app must be allowed there too.
        let token_url = model
            .resolve_oauth_url(&oauth.token_url, "tokenUrl", &settings, &self.upstreams)
            .map_err(|e| url_error("", e))?;
        let app = self
            .app_for(
                "",
                environment_id,
                &model,
                &[
                    (Endpoint::Authorize, &oauth.authorize_url, &url),
                    (Endpoint::Token, &oauth.token_url, &token_url),
                ],
                false,
            )
            .await?;
        let gateway = gateway.trim_end_matches('/');
        let callback = format!("{gateway}/oauth/callback");
        let own_app = self
            .store
            .find_oauth_app(environment_id, provider)
            .await
            .map_err(Self::store_err)?
            .is_some_and(|a| a.environment_id.is_some());
        if !own_app && redirect_uri != callback {
            // A code issued to the platform's app may reach no one but this gateway: sent
            // elsewhere, it could be carried back here by any browser.
            return Err(config(format!(
                "with the platform's OAuth app, redirectUri must be this gateway's callback `{callback}` (TESSERA_PUBLIC_URL decides the address); set this environment's own OAuth app to use another"
            )));
        }
        let state = random_token(32);
        let verifier = oauth.pkce.then(|| random_token(48));
        let scopes = if app.scopes.is_empty() {
            oauth.scopes.clone()
        } else {
            app.scopes.clone()
        };
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code");
            q.append_pair("client_id", &app.client_id);
            q.append_pair("redirect_uri", redirect_uri);
            q.append_pair("state", &state);
            if !scopes.is_empty() {
                q.append_pair("scope", &scopes.join(" "));
            }
            if let Some(v) = &verifier {
                q.append_pair("code_challenge", &pkce_challenge(v));
                q.append_pair("code_challenge_method", "S256");
            }
            for (k, v) in &oauth.authorize_params {
                q.append_pair(k, v);
            }
        }
        let mut start = url::Url::parse(&format!("{gateway}/oauth/start"))
            .map_err(|e| config(format!("the gateway's public URL is not a URL: {e}")))?;
        start.query_pairs_mut().append_pair("state", &state);
        let expires_at = Utc::now() + STATE_TTL;
        self.store
            .insert_oauth_state(crate::store::OAuthState {
                state: state.clone(),
                environment_id: environment_id.to_string(),
                provider: provider.to_string(),
                redirect_uri: redirect_uri.to_string(),
                code_verifier: verifier.map(|v| {
                    self.vault
                        .seal_secret(&format!("pkce:{state}"), &crate::secret::Secret::new(v))
                }),
                settings,
                expires_at,
                authorize_url: url.to_string(),
                account_id: renew.map(|a| a.id.clone()),
            })
            .await
            .map_err(Self::store_err)?;
        Ok(AuthorizationStart {
            url: start,
            state,
            expires_at,
        })
    }

    /// Ends the flow: consumes the state for the browser that opened its link
    /// (`browser_hash`: the SHA-256 of the secret its cookie holds; another browser is
    /// refused and consumes nothing; a replay or an expired state is refused), exchanges
    /// the code and creates the linked account with the token set and the token-response
    /// values the provider keeps as settings.
    pub async fn complete_authorization(
        &self,
        state: &str,
        code: &str,
        browser_hash: Option<&str>,
    ) -> Result<LinkedAccount, RefreshError> {
        let config = |reason: String| RefreshError::Config {
            account: String::new(),
            reason,
        };
        let started = match self
            .store
            .take_oauth_state(state, browser_hash)
            .await
            .map_err(Self::store_err)?
        {
            crate::store::StateTake::Taken(started) => *started,
            crate::store::StateTake::Unknown => {
                return Err(config(
                    "the OAuth state is unknown, expired or already used; start again".into(),
                ));
            }
            crate::store::StateTake::OtherBrowser => {
                return Err(RefreshError::OtherBrowser(OTHER_BROWSER.into()));
            }
        };
        let model = self
            .providers
            .get(&started.provider)
            .cloned()
            .ok_or_else(|| config(format!("unknown provider `{}`", started.provider)))?;
        let oauth = model
            .oauth
            .as_ref()
            .ok_or_else(|| config("the provider does not use OAuth".into()))?;
        let token_url = model
            .resolve_oauth_url(
                &oauth.token_url,
                "tokenUrl",
                &started.settings,
                &self.upstreams,
            )
            .map_err(|e| url_error("", e))?;
        let app = self
            .app_for(
                "",
                &started.environment_id,
                &model,
                &[(Endpoint::Token, &oauth.token_url, &token_url)],
                false,
            )
            .await?;
        let verifier = match &started.code_verifier {
            Some(sealed) => Some(
                self.vault
                    .open_secret(&format!("pkce:{state}"), sealed)
                    .map_err(|e| RefreshError::Store(e.to_string()))?,
            ),
            None => None,
        };
        let set = self
            .client
            .request(
                oauth,
                &token_url,
                &app,
                Grant::Code {
                    code,
                    redirect_uri: &started.redirect_uri,
                    verifier: verifier.as_ref().map(|v| v.expose()),
                },
            )
            .await
            .map_err(|e| match e {
                TokenError::InvalidGrant { reason } | TokenError::Rejected { reason } => config(
                    format!("the vendor refused the authorization code: {reason}"),
                ),
                TokenError::Transient { reason } => RefreshError::Unavailable {
                    account: String::new(),
                    reason,
                },
                TokenError::Refused(refused) => RefreshError::Refused {
                    account: String::new(),
                    refused,
                },
            })?;
        if let Some(account) = &started.account_id {
            return self
                .reauthorize(account, &started.environment_id, started.settings, set)
                .await;
        }
        self.link_account(
            &started.environment_id,
            &started.provider,
            started.settings,
            set,
            false,
            "linked through the OAuth authorization-code flow",
        )
        .await
    }
}

impl TokenManager {
    /// Links an account with the client-credentials grant (machine-to-machine apps): the
    /// environment's OAuth app asks for the token, and asks again when it is due.
    pub async fn connect_client_credentials(
        &self,
        environment_id: &str,
        provider: &str,
        settings: serde_json::Value,
    ) -> Result<LinkedAccount, RefreshError> {
        let config = |reason: String| RefreshError::Config {
            account: String::new(),
            reason,
        };
        let model = self
            .providers
            .get(provider)
            .cloned()
            .ok_or_else(|| config(format!("unknown provider `{provider}`")))?;
        let oauth = model
            .oauth
            .as_ref()
            .ok_or_else(|| config(format!("provider `{provider}` does not use OAuth")))?;
        let token_url = model
            .resolve_oauth_url(&oauth.token_url, "tokenUrl", &settings, &self.upstreams)
            .map_err(|e| url_error("", e))?;
        let app = self
            .app_for(
                "",
                environment_id,
                &model,
                &[(Endpoint::Token, &oauth.token_url, &token_url)],
                true,
            )
            .await?;
        let set = self
            .client
            .request(oauth, &token_url, &app, Grant::ClientCredentials)
            .await
            .map_err(|e| match e {
                TokenError::Transient { reason } => RefreshError::Unavailable {
                    account: String::new(),
                    reason,
                },
                TokenError::Refused(refused) => RefreshError::Refused {
                    account: String::new(),
                    refused,
                },
                other => config(format!(
                    "the vendor refused the client-credentials grant: {other}"
                )),
            })?;
        self.link_account(
            environment_id,
            provider,
            settings,
            set,
            true,
            "linked with the client-credentials grant",
        )
        .await
    }
}

impl TokenManager {
    /// Creates a linked account from a token set: the settings the caller gave, plus the
    /// token-response values the provider keeps (checked like a `connectAccount` would,
    /// since `instance_url` moves the API), the credentials sealed, and a CONNECTED event.
    async fn link_account(
        &self,
        environment_id: &str,
        provider: &str,
        settings: serde_json::Value,
        set: super::oauth::TokenSet,
        client_credentials: bool,
        how: &str,
    ) -> Result<LinkedAccount, RefreshError> {
        let config = |reason: String| RefreshError::Config {
            account: String::new(),
            reason,
        };
        let model = self
            .providers
            .get(provider)
            .cloned()
            .ok_or_else(|| config(format!("unknown provider `{provider}`")))?;
        let mut merged = settings.as_object().cloned().unwrap_or_default();
        merged.extend(set.settings);
        let settings = serde_json::Value::Object(merged);
        let base_url = model
            .resolve_base_url(&settings, &self.upstreams)
            .map_err(|e| url_error("", e))?;
        self.upstreams
            .check_resolved(&base_url)
            .await
            .map_err(|refused| RefreshError::Refused {
                account: String::new(),
                refused,
            })?;
        let creds = Credentials {
            access_token: Some(set.access_token),
            refresh_token: set.refresh_token,
            api_key: None,
            expires_at: set.expires_at,
            client_credentials,
        };
        let id = uuid::Uuid::new_v4().to_string();
        let row = self
            .store
            .insert_linked_account(crate::store::NewLinkedAccount {
                credentials: self.vault.seal(&id, &creds),
                id,
                environment_id: environment_id.to_string(),
                provider: provider.to_string(),
                status: "ACTIVE".into(),
                settings,
                expires_at: creds.expires_at,
            })
            .await
            .map_err(Self::store_err)?;
        let _ = self
            .store
            .insert_account_event(&row.id, "CONNECTED", how)
            .await;
        Ok(row)
    }
}

/// A base or OAuth URL that cannot be used, as the error of `account` (empty before one
/// exists).
fn url_error(account: &str, e: crate::config::UrlError) -> RefreshError {
    match e {
        crate::config::UrlError::Refused(refused) => RefreshError::Refused {
            account: account.to_string(),
            refused,
        },
        crate::config::UrlError::Invalid(reason) => RefreshError::Config {
            account: account.to_string(),
            reason,
        },
    }
}
