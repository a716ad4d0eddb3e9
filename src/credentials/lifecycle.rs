//! A linked account's life after it is linked: disabled and enabled again by its
//! environment, and re-authorized in place (same id, same overrides) when its grant died.
//!
//! Both write the account row the way a refresh does, by compare-and-swap on its version,
//! and never while a refresh holds its claim: a refresh with single-use refresh tokens has
//! already spent the old one, and a write slipped in under it would throw the new token
//! set away.

use std::time::Duration;

use chrono::Utc;
use serde_json::Value;

use super::oauth::TokenSet;
use super::{Credentials, RefreshError, TokenManager};
use crate::config::webhooks::AccountBy;
use crate::store::{LinkedAccount, LinkedAccountUpdate};

/// How long a lifecycle change waits for a refresh in flight to finish.
const REFRESH_WAIT: Duration = Duration::from_secs(20);

/// The settings a re-authorization starts from: the account's own, with the caller's on
/// top. The provider cannot change: a grant of another vendor is another account.
pub(super) fn renewal_settings(
    account: &LinkedAccount,
    provider: &str,
    given: Value,
) -> Result<Value, String> {
    if account.status == "DISABLED" {
        return Err(format!(
            "linked account `{}` is DISABLED: enable it (enableAccount) before re-authorizing it",
            account.id
        ));
    }
    if account.provider != provider {
        return Err(format!(
            "linked account `{}` is a `{}` account; re-authorize it with provider `{}`",
            account.id, account.provider, account.provider
        ));
    }
    let mut merged = account.settings.as_object().cloned().unwrap_or_default();
    if let Value::Object(given) = given {
        merged.extend(given);
    }
    Ok(Value::Object(merged))
}

/// A routing key as text, whether the vendor sent it as a string or a number.
fn key_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl TokenManager {
    /// DISABLED: no upstream call, no refresh, no probe, until enabled. Enabling makes
    /// the account ACTIVE; credentials that died meanwhile are found out by the first
    /// refresh or call, which parks the account in NEEDS_REAUTH as usual.
    pub async fn set_disabled(
        &self,
        account: &str,
        disabled: bool,
    ) -> Result<LinkedAccount, RefreshError> {
        let (status, reason, kind, message) = if disabled {
            (
                "DISABLED",
                Some("disabled by its environment (disableAccount)".to_string()),
                "DISABLED",
                "the account was disabled: no calls, refreshes or probes until it is enabled",
            )
        } else {
            ("ACTIVE", None, "ENABLED", "the account was enabled again")
        };
        let row = self
            .write_between_refreshes(account, None, |current| {
                let unchanged = if disabled {
                    current.status == "DISABLED"
                } else {
                    current.status != "DISABLED"
                };
                (!unchanged).then(|| LinkedAccountUpdate {
                    status: status.into(),
                    status_reason: reason.clone(),
                    credentials: current.credentials.clone(),
                    expires_at: current.expires_at,
                    last_refreshed_at: current.last_refreshed_at,
                })
            })
            .await?;
        if let (row, true) = &row {
            tracing::info!(account = %row.id, provider = %row.provider, status, "account lifecycle changed");
            let _ = self
                .store
                .insert_account_event(&row.id, kind, message)
                .await;
        }
        Ok(row.0)
    }

    /// Ends a re-authorization started with `startOAuth(..., accountId:)`: the account
    /// keeps its id, its overrides and its webhooks, and takes the new token set and the
    /// settings the token response carries. A grant for another vendor account (the key
    /// its webhooks are routed by differs) is refused and changes nothing.
    pub(super) async fn reauthorize(
        &self,
        account: &str,
        environment_id: &str,
        settings: Value,
        set: TokenSet,
    ) -> Result<LinkedAccount, RefreshError> {
        let config = |reason: String| RefreshError::Config {
            account: account.to_string(),
            reason,
        };
        let current = self
            .store
            .get_linked_account(account)
            .await
            .map_err(Self::store_err)?
            .filter(|a| a.environment_id == environment_id)
            .ok_or_else(|| {
                config(
                    "the account was deleted while it was being re-authorized; nothing was linked"
                        .into(),
                )
            })?;
        let model = self
            .providers
            .get(&current.provider)
            .cloned()
            .ok_or_else(|| config(format!("provider `{}` is not loaded", current.provider)))?;
        let mut merged = settings.as_object().cloned().unwrap_or_default();
        merged.extend(set.settings.clone());
        let identity = model.webhooks.as_ref().and_then(|w| match &w.account {
            AccountBy::Key { setting } => Some(setting.clone()),
            _ => None,
        });
        if let Some(setting) = identity
            && let Some(now) = merged.get(&setting).and_then(key_text)
        {
            // What the account is known by: its setting, else the key its webhooks were
            // routed by (learned from the vendor when the setting was missing).
            let known: Vec<String> = match current.settings.get(&setting).and_then(key_text) {
                Some(was) => vec![was],
                None => self
                    .store
                    .webhook_keys_of_account(account)
                    .await
                    .map_err(Self::store_err)?,
            };
            if !known.is_empty() && !known.contains(&now) {
                return Err(config(format!(
                    "the authorization is for another {} account than `{account}` (its `{setting}` differs): nothing changed; sign in as the account's own user, or link the other one as a new account",
                    current.provider
                )));
            }
        }
        let settings = Value::Object(merged);
        // A vendor that issues a refresh token only on first consent (a re-consent without
        // asking for one) leaves the stored one in force.
        let kept = self.open(&current).ok().and_then(|c| c.refresh_token);
        let creds = Credentials {
            access_token: Some(set.access_token),
            refresh_token: set.refresh_token.or(kept),
            api_key: None,
            expires_at: set.expires_at,
            client_credentials: false,
        };
        let sealed = self.vault.seal(account, &creds);
        let update = LinkedAccountUpdate {
            status: "ACTIVE".into(),
            status_reason: None,
            credentials: sealed,
            expires_at: creds.expires_at,
            last_refreshed_at: Some(Utc::now()),
        };
        let (row, _) = self
            .write_between_refreshes(account, Some(&settings), |_| Some(update.clone()))
            .await
            .map_err(|e| match e {
                RefreshError::Config { .. } => config(
                    "the account was deleted while it was being re-authorized; nothing was linked"
                        .into(),
                ),
                other => other,
            })?;
        tracing::info!(account = %row.id, provider = %row.provider, "account re-authorized in place");
        let _ = self
            .store
            .insert_account_event(
                &row.id,
                "REAUTHORIZED",
                "re-authorized through the OAuth authorization-code flow; same id and overrides",
            )
            .await;
        Ok(row)
    }

    /// Writes `change(current)` (and `settings`, when given) when it gives an update,
    /// between refreshes; returns the row and whether it was written (false: nothing to
    /// change).
    async fn write_between_refreshes(
        &self,
        account: &str,
        settings: Option<&Value>,
        change: impl Fn(&LinkedAccount) -> Option<LinkedAccountUpdate>,
    ) -> Result<(LinkedAccount, bool), RefreshError> {
        let deadline = tokio::time::Instant::now() + REFRESH_WAIT;
        // Within this process, refreshes of the account queue on this lock.
        let lock = self.lock_for(account);
        let _guard = lock.lock().await;
        loop {
            let current = self
                .store
                .get_linked_account(account)
                .await
                .map_err(Self::store_err)?
                .ok_or_else(|| RefreshError::Config {
                    account: account.to_string(),
                    reason: "the account does not exist".into(),
                })?;
            if self.refresh_in_flight(&current, deadline).await? {
                continue;
            }
            let Some(update) = change(&current) else {
                return Ok((current, false));
            };
            let written = match settings {
                Some(settings) => {
                    self.store
                        .reauthorize_linked_account_cas(account, current.version, update, settings)
                        .await
                }
                None => {
                    self.store
                        .update_linked_account_cas(account, current.version, update)
                        .await
                }
            };
            if let Some(row) = written.map_err(Self::store_err)? {
                return Ok((row, true));
            }
            // Moved under us (a refresh, another replica's change): read again.
        }
    }

    /// True (after a short wait) while another replica's refresh holds the account's
    /// claim; an error once that has lasted past `deadline`.
    async fn refresh_in_flight(
        &self,
        current: &LinkedAccount,
        deadline: tokio::time::Instant,
    ) -> Result<bool, RefreshError> {
        if current.status != "REFRESHING" || self.claim_is_stale(current) {
            return Ok(false);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(RefreshError::Unavailable {
                account: current.id.clone(),
                reason: "a refresh of the account did not finish in time; try again".into(),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok(true)
    }
}
