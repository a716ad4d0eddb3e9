//! Linked accounts as the caller may see them: scoped to the caller's environment, then
//! turned into the [`AccountHandle`] the engine needs (provider, base URL, token). Used by
//! the resolvers and by the HTTP passthrough, so both enforce the same rules.

use std::sync::Arc;

use super::Caller;
use crate::config::UrlError;
use crate::engine::{AccountHandle, RequestSpend};
use crate::error::{ErrorCode, HasCode};
use crate::services::Services;
use crate::store::LinkedAccount;

/// Why an account cannot be used, with the contract code a caller sees.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct AccountError {
    pub code: ErrorCode,
    pub message: String,
    /// The account's upstream is an address the server's allow list does not name (its
    /// credentials and the vendor are not in question).
    pub upstream_refused: bool,
}

impl HasCode for AccountError {
    fn code(&self) -> ErrorCode {
        self.code
    }
}

fn fail(code: ErrorCode, message: impl Into<String>) -> AccountError {
    AccountError {
        code,
        message: message.into(),
        upstream_refused: false,
    }
}

/// The account if it exists and belongs to the caller; another environment's account is
/// reported exactly like a missing one, so ids cannot be probed.
pub async fn visible_account(
    services: &Services,
    caller: &Caller,
    id: &str,
) -> Result<LinkedAccount, AccountError> {
    let row = services.store.get_linked_account(id).await;
    visible(caller, id, row)
}

/// As [`visible_account`], read through the store's one-second cache: the row every
/// request to an account needs. A change written on this replica is seen at once, one
/// written on another within a second (a disabled account, a rotated token).
async fn recently_visible_account(
    services: &Services,
    caller: &Caller,
    id: &str,
) -> Result<LinkedAccount, AccountError> {
    let row = services.store.recent_linked_account(id).await;
    visible(caller, id, row)
}

fn visible(
    caller: &Caller,
    id: &str,
    row: Result<Option<LinkedAccount>, crate::store::StoreError>,
) -> Result<LinkedAccount, AccountError> {
    let not_found = || {
        fail(
            ErrorCode::NotFound,
            format!("linked account `{id}` not found"),
        )
    };
    let row = row
        .map_err(|e| fail(e.code(), e.to_string()))?
        .ok_or_else(not_found)?;
    match caller.environment() {
        Some(env) if env != row.environment_id => Err(not_found()),
        _ => Ok(row),
    }
}

/// The account ready for the engine: visible to the caller, usable (not disabled or in need
/// of reauthorization), its provider with every override in force, and a fresh token.
pub async fn handle_for(
    services: &Services,
    caller: &Caller,
    id: &str,
    spend: Arc<RequestSpend>,
) -> Result<Arc<AccountHandle>, AccountError> {
    handle(services, caller, id, spend, Token::Fresh).await
}

/// As [`handle_for`], with the token as stored: never refreshed first. For a call made
/// right after connecting (the token was just given), where a refresh would be a side
/// effect the connect did not ask for.
pub async fn handle_as_stored(
    services: &Services,
    caller: &Caller,
    id: &str,
    spend: Arc<RequestSpend>,
) -> Result<Arc<AccountHandle>, AccountError> {
    handle(services, caller, id, spend, Token::AsStored).await
}

enum Token {
    Fresh,
    AsStored,
}

async fn handle(
    services: &Services,
    caller: &Caller,
    id: &str,
    spend: Arc<RequestSpend>,
    token: Token,
) -> Result<Arc<AccountHandle>, AccountError> {
    let row = recently_visible_account(services, caller, id).await?;
    handle_of_row(services, row, spend, token).await
}

/// As [`handle_for`], for an account row the caller already read (a batch of probes reads
/// all its accounts in one query). The caller has checked the row is visible to it.
pub async fn handle_for_row(
    services: &Services,
    row: LinkedAccount,
    spend: Arc<RequestSpend>,
) -> Result<Arc<AccountHandle>, AccountError> {
    handle_of_row(services, row, spend, Token::Fresh).await
}

/// The handle a deletion cleans up with: for an account its environment has disabled on
/// the way out, with the token as stored (never refreshed). The caller has checked the row
/// is visible to it.
pub async fn handle_for_cleanup(
    services: &Services,
    row: LinkedAccount,
) -> Result<Arc<AccountHandle>, AccountError> {
    let row = if row.status == "DISABLED" {
        LinkedAccount {
            status: "ACTIVE".into(),
            ..row
        }
    } else {
        row
    };
    handle_of_row(
        services,
        row,
        Arc::new(RequestSpend::default()),
        Token::AsStored,
    )
    .await
}

async fn handle_of_row(
    services: &Services,
    row: LinkedAccount,
    spend: Arc<RequestSpend>,
    token: Token,
) -> Result<Arc<AccountHandle>, AccountError> {
    let id = row.id.clone();
    match row.status.as_str() {
        "ACTIVE" | "REFRESHING" => {}
        "NEEDS_REAUTH" | "REVOKED" => {
            return Err(fail(
                ErrorCode::NeedsReauth,
                format!(
                    "linked account `{id}` must be reconnected (status {})",
                    row.status
                ),
            ));
        }
        other => {
            return Err(fail(
                ErrorCode::Forbidden,
                format!("linked account `{id}` is {other}"),
            ));
        }
    }
    if services.providers.get(&row.provider).is_none() {
        return Err(fail(
            ErrorCode::ConfigError,
            format!(
                "linked account `{id}` uses provider `{}`, which is not loaded",
                row.provider
            ),
        ));
    }
    // The provider file with this account's platform, environment and account overrides.
    let provider = services
        .overrides
        .effective(&row.provider, &row.environment_id, &row.id)
        .map_err(|e| fail(e.code(), e.to_string()))?;
    let base_url = provider
        .resolve_base_url(&row.settings, &services.upstreams)
        .map_err(|e| match e {
            UrlError::Refused(r) => AccountError {
                upstream_refused: true,
                ..fail(ErrorCode::Forbidden, format!("linked account `{id}`: {r}"))
            },
            UrlError::Invalid(m) => fail(ErrorCode::ConfigError, m),
        })?;
    let (row, creds) = match token {
        // Refreshed first when due (single flight across requests and replicas).
        Token::Fresh => services
            .tokens
            .fresh(row)
            .await
            .map_err(|e| fail(e.code(), e.to_string()))?,
        Token::AsStored => {
            let creds = services
                .vault
                .open(&row.id, &row.credentials)
                .map_err(|e| fail(e.code(), e.to_string()))?;
            (row, creds)
        }
    };
    let token = creds.request_token().cloned().ok_or_else(|| {
        fail(
            ErrorCode::NeedsReauth,
            format!("linked account `{id}` has no usable credential"),
        )
    })?;
    Ok(Arc::new(AccountHandle {
        id: row.id,
        provider,
        base_url,
        token,
        settings: row.settings,
        spend,
    }))
}
