//! Linked accounts as the caller may see them: scoped to the caller's environment, then
//! turned into the [`AccountHandle`] the engine needs (provider, base URL, token).

use std::sync::Arc;

use async_graphql::Error;
use url::Url;

use super::context::{Caller, Services};
use super::errors::{coded, from_code};
use crate::config::ProviderModel;
use crate::engine::AccountHandle;
use crate::error::ErrorCode;
use crate::store::LinkedAccount;

/// The account if it exists and belongs to the caller; another environment's account is
/// reported exactly like a missing one, so ids cannot be probed.
pub async fn visible_account(
    services: &Services,
    caller: &Caller,
    id: &str,
) -> Result<LinkedAccount, Error> {
    let not_found = || {
        coded(
            ErrorCode::NotFound,
            format!("linked account `{id}` not found"),
        )
    };
    let row = services
        .store
        .get_linked_account(id)
        .await
        .map_err(|e| from_code(&e))?
        .ok_or_else(not_found)?;
    match caller.environment() {
        Some(env) if env != row.environment_id => Err(not_found()),
        _ => Ok(row),
    }
}

pub async fn handle_for(
    services: &Services,
    caller: &Caller,
    id: &str,
) -> Result<Arc<AccountHandle>, Error> {
    let row = visible_account(services, caller, id).await?;
    match row.status.as_str() {
        "ACTIVE" | "REFRESHING" => {}
        "NEEDS_REAUTH" | "REVOKED" => {
            return Err(coded(
                ErrorCode::NeedsReauth,
                format!(
                    "linked account `{id}` must be reconnected (status {})",
                    row.status
                ),
            ));
        }
        other => {
            return Err(coded(
                ErrorCode::Forbidden,
                format!("linked account `{id}` is {other}"),
            ));
        }
    }
    let provider = services
        .providers
        .get(&row.provider)
        .cloned()
        .ok_or_else(|| {
            coded(
                ErrorCode::ConfigError,
                format!(
                    "linked account `{id}` uses provider `{}`, which is not loaded",
                    row.provider
                ),
            )
        })?;
    let base_url = base_url(&provider, &row.settings, services.allow_private_upstreams)
        .map_err(|m| coded(ErrorCode::ConfigError, m))?;
    let creds = services
        .vault
        .open(&row.id, &row.credentials)
        .map_err(|e| from_code(&e))?;
    let token = creds.request_token().cloned().ok_or_else(|| {
        coded(
            ErrorCode::NeedsReauth,
            format!("linked account `{id}` has no usable credential"),
        )
    })?;
    Ok(Arc::new(AccountHandle {
        id: row.id,
        provider,
        base_url,
        token,
    }))
}

/// The account's API base: `settings.baseUrl` when set (checked against the provider's
/// allowed hosts unless private upstreams are allowed), else the provider's own.
pub fn base_url(
    provider: &ProviderModel,
    settings: &serde_json::Value,
    allow_private: bool,
) -> Result<Url, String> {
    let Some(value) = settings.get("baseUrl") else {
        return Ok(provider.base_url.clone());
    };
    let text = value.as_str().ok_or("settings.baseUrl must be a string")?;
    let url = Url::parse(text).map_err(|e| format!("settings.baseUrl is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("settings.baseUrl must be an absolute http(s) URL".into());
    }
    if !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err("settings.baseUrl must not carry credentials, a query or a fragment".into());
    }
    if !allow_private && !provider.allows_host(&url) {
        return Err(format!(
            "settings.baseUrl host `{}` is not among the allowed hosts of provider `{}` (the server must run with --allow-private-upstreams for other hosts)",
            url.host_str().unwrap_or_default(),
            provider.name
        ));
    }
    if !allow_private && url.scheme() != "https" {
        return Err("settings.baseUrl must use https".into());
    }
    Ok(url)
}
