//! What webhooks need when an account is linked: for app-level webhooks (one URL for every
//! account, the account named in each event), the account's key indexed, so a delivery
//! finds its account without a scan; for per-account webhooks, the vendor subscription
//! created (see `subscriptions`).
//!
//! The key is the account setting the provider file names (`portalId`), taken from the
//! account's settings (the token response's `tokenSettings` or the caller's), or learned
//! from the vendor with the file's `learnAccountKey` call.

use std::sync::Arc;

use serde_json::Value;

use crate::access::{Caller, handle_as_stored};
use crate::config::webhooks::AccountBy;
use crate::engine::RequestSpend;
use crate::mapping::Vars;
use crate::services::Services;
use crate::store::LinkedAccount;

/// Prepares webhooks for a newly linked (or re-authorized) account. Failures are logged
/// and recorded as an account event, never fatal: the account works, only its webhooks
/// wait (reconciliation still finds its changes).
pub async fn on_account_linked(services: &Services, account: &LinkedAccount) {
    let results = [
        index_key(services, account).await,
        super::subscriptions::create_on_link(services, account).await,
    ];
    for message in results.into_iter().filter_map(Result::err) {
        tracing::warn!(account = %account.id, %message, "webhooks cannot reach this account yet");
        let _ = services
            .store
            .insert_account_event(&account.id, "WEBHOOK_SETUP_FAILED", &message)
            .await;
    }
}

async fn index_key(services: &Services, account: &LinkedAccount) -> Result<(), String> {
    let Some(provider) = services.providers.get(&account.provider) else {
        return Ok(());
    };
    let Some(cfg) = &provider.webhooks else {
        return Ok(());
    };
    let AccountBy::Key { setting } = &cfg.account else {
        return Ok(());
    };
    let key = match key_text(account.settings.get(setting)) {
        Some(k) => k,
        None => {
            let Some(learn) = &cfg.learn_key else {
                return Err(format!(
                    "the account has no `{setting}` setting, which routes the provider's webhooks to it"
                ));
            };
            let handle = handle_as_stored(
                services,
                &Caller::Admin,
                &account.id,
                Arc::new(RequestSpend::default()),
            )
            .await
            .map_err(|e| e.to_string())?;
            let path = learn
                .path
                .0
                .render(|_| None)
                .map_err(|e| format!("learnAccountKey path: {e}"))?;
            let reply = services
                .engine
                .passthrough(
                    &handle,
                    reqwest::Method::GET,
                    path.trim_start_matches('/'),
                    None,
                    None,
                    Vec::new(),
                )
                .await
                .map_err(|e| format!("learning `{setting}` from the vendor failed: {e}"))?;
            if !(200..300).contains(&reply.status) {
                return Err(format!(
                    "learning `{setting}` from the vendor failed: HTTP {}",
                    reply.status
                ));
            }
            let body: Value = serde_json::from_slice(&reply.body)
                .map_err(|_| format!("learning `{setting}`: the vendor's answer is not JSON"))?;
            let value = learn
                .value
                .evaluate(Some(&body), &Vars::default())
                .map_err(|e| format!("learnAccountKey value: {e}"))?;
            key_text(value.as_ref()).ok_or_else(|| {
                format!("learning `{setting}`: the vendor's answer has no key where the provider file says")
            })?
        }
    };
    services
        .store
        .put_webhook_account_key(&account.provider, &key, &account.id)
        .await
        .map_err(|e| e.to_string())
}

fn key_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
