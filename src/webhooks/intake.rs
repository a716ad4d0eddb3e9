//! One delivery, from the HTTP handler to the inbox.
//!
//! Order matters: the signature is checked on the raw bytes before anything is parsed;
//! the events are read and routed; then the inbox rows and the log entries are written in
//! one transaction, and only then does the vendor hear 2xx. Processing happens later
//! (`process`), so the vendor never waits on a CRM read, and nothing acknowledged is lost
//! if the process dies.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::events::{Item, LifecycleNotice, VendorEvent, read_items};
use crate::config::ProviderModel;
use crate::config::webhooks::{AccountBy, WebhookConfig};
use crate::mapping::Vars;
use crate::secret::Secret;
use crate::services::Services;
use crate::signing::{Delivery, KeySource, Rejection, Signature};
use crate::store::{InboxEvent, LinkedAccount, StoreError, WebhookSubscription};

/// The most a handshake token may be: Graph's are a few hundred characters.
const MAX_HANDSHAKE_CHARS: usize = 4096;

/// A delivery as the HTTP handler received it.
pub struct Intake<'a> {
    pub provider: &'a str,
    /// From `/webhooks/{provider}/{accountId}`.
    pub account_id: Option<&'a str>,
    pub method: &'a str,
    /// The URL the vendor called, as it knows it.
    pub url: String,
    /// Lower-case names.
    pub headers: BTreeMap<String, String>,
    pub query: Vec<(String, String)>,
    pub body: &'a [u8],
}

/// What to answer the vendor.
#[derive(Debug, PartialEq, Eq)]
pub enum IntakeReply {
    /// Answer `200 text/plain` with this text.
    Handshake(String),
    /// Stored: answer 200.
    Accepted { events: usize, replayed: bool },
    /// Refused, and logged with this outcome.
    Refused {
        status: u16,
        outcome: &'static str,
        reason: String,
    },
    /// The database is unreachable: answer 503 so the vendor retries later.
    Unavailable(String),
}

/// A secret that may have signed a delivery, and what it vouches for.
struct Key {
    secret: Secret,
    scope: Scope,
}

enum Scope {
    /// An OAuth app's client secret: the app of this environment, or the platform's
    /// (which serves the environments not in `own_apps`, those without an app of their own).
    App {
        environment: Option<String>,
        own_apps: std::sync::Arc<BTreeSet<String>>,
    },
    /// A subscription's secret: that subscription of that account.
    Subscription { id: String, account_id: String },
}

impl Intake<'_> {
    /// Verifies, routes and stores the delivery.
    pub async fn receive(self, services: &Services) -> IntakeReply {
        let _taking_in = services.events.intake.enter();
        match self.run(services).await {
            Ok(reply) | Err(reply) => reply,
        }
    }

    async fn run(self, services: &Services) -> Result<IntakeReply, IntakeReply> {
        let provider =
            services
                .providers
                .get(self.provider)
                .ok_or_else(|| IntakeReply::Refused {
                    status: 404,
                    outcome: "UNKNOWN_ACCOUNT",
                    reason: format!("no provider `{}`", self.provider),
                })?;
        let Some(cfg) = provider.webhooks.as_ref() else {
            return Err(IntakeReply::Refused {
                status: 404,
                outcome: "UNKNOWN_ACCOUNT",
                reason: format!("provider `{}` declares no webhooks", self.provider),
            });
        };
        if let Some(param) = &cfg.handshake
            && let Some((_, token)) = self.query.iter().find(|(k, _)| k == param)
        {
            // Graph's validation request: echo the token, store nothing.
            let token: String = token.chars().take(MAX_HANDSHAKE_CHARS).collect();
            return Ok(IntakeReply::Handshake(token));
        }
        let url_account = self.url_account(services, cfg).await?;
        let now = chrono::Utc::now();
        let delivery = Delivery {
            method: self.method,
            url: &self.url,
            headers: &self.headers,
            body: self.body,
            now,
        };
        let scheme = cfg.signatures.iter().find(|s| s.applies(&delivery));
        let verified = match scheme {
            None => {
                let expected: Vec<String> =
                    cfg.signatures.iter().map(Signature::describe).collect();
                return Err(self
                    .refuse(
                        services,
                        url_account.as_ref(),
                        401,
                        Rejection::BadSignature(format!(
                            "no signature this provider accepts ({})",
                            expected.join(", ")
                        )),
                    )
                    .await);
            }
            Some(Signature::Token(_)) => None,
            Some(scheme) => {
                let keys = self
                    .keys(services, scheme.key_source(), url_account.as_ref())
                    .await?;
                let secrets: Vec<Secret> = keys.iter().map(|k| k.secret.clone()).collect();
                match scheme.verify(&delivery, &secrets) {
                    Ok(i) => keys.into_iter().nth(i).map(|k| k.scope),
                    Err(rejection) => {
                        let named = match &url_account {
                            Some(_) => None,
                            None => self.named_account(services, cfg, now).await,
                        };
                        let account = url_account.as_ref().or(named.as_ref());
                        return Err(self.refuse(services, account, 401, rejection).await);
                    }
                }
            }
        };
        let events =
            self.read(cfg, now, url_account.as_ref())
                .map_err(|reason| IntakeReply::Refused {
                    status: 400,
                    outcome: "MALFORMED",
                    reason,
                });
        let items = match events {
            Ok(e) => e,
            Err(reply) => {
                if let IntakeReply::Refused { reason, .. } = &reply {
                    self.log(
                        services,
                        url_account.as_ref().map(|a| a.id.as_str()),
                        "MALFORMED",
                        reason,
                    )
                    .await;
                }
                return Err(reply);
            }
        };
        let mut events = Vec::new();
        let mut notices = Vec::new();
        for item in items {
            match item {
                Item::Change(e) => events.push(e),
                Item::Lifecycle(n) => notices.push(n),
            }
        }
        for notice in &notices {
            self.lifecycle(services, cfg, notice, url_account.as_ref())
                .await?;
        }
        if events.is_empty() && !notices.is_empty() {
            return Ok(IntakeReply::Accepted {
                events: 0,
                replayed: false,
            });
        }
        let routed = self
            .route(
                services,
                provider,
                cfg,
                events,
                verified,
                url_account.as_ref(),
            )
            .await?;
        if routed.is_empty() {
            self.log(
                services,
                None,
                "UNKNOWN_ACCOUNT",
                "no linked account matches the delivery's events",
            )
            .await;
            // Answered 2xx: an app-level webhook also delivers for accounts that are not
            // (or no longer) linked, and refusing would only make the vendor retry.
            return Ok(IntakeReply::Accepted {
                events: 0,
                replayed: false,
            });
        }
        let mut per_account = Vec::new();
        for (account_id, events) in routed {
            let rows: Vec<InboxEvent> = events
                .into_iter()
                .map(|e| InboxEvent {
                    dedup_key: e.dedup_key.clone(),
                    event: serde_json::to_string(&e).unwrap_or_default(),
                    source: "WEBHOOK".into(),
                })
                .collect();
            per_account.push((account_id, rows));
        }
        let total: usize = per_account.iter().map(|(_, e)| e.len()).sum();
        let fresh = services
            .store
            .accept_webhook_events(self.provider, per_account)
            .await
            .map_err(unavailable)?;
        let fresh: usize = fresh.into_iter().sum();
        if fresh > 0 {
            services.events.inbox.notify_one();
        }
        Ok(IntakeReply::Accepted {
            events: fresh,
            replayed: total > 0 && fresh == 0,
        })
    }

    /// The account named in the URL, checked against the provider.
    async fn url_account(
        &self,
        services: &Services,
        cfg: &WebhookConfig,
    ) -> Result<Option<LinkedAccount>, IntakeReply> {
        let Some(id) = self.account_id else {
            if cfg.account == AccountBy::Url {
                return Err(IntakeReply::Refused {
                    status: 404,
                    outcome: "UNKNOWN_ACCOUNT",
                    reason: format!(
                        "`{}` webhooks are per account: POST /webhooks/{}/{{accountId}}",
                        self.provider, self.provider
                    ),
                });
            }
            return Ok(None);
        };
        let account = services
            .store
            .recent_linked_account(id)
            .await
            .map_err(unavailable)?;
        match account {
            Some(a) if a.provider == self.provider => Ok(Some(a)),
            _ => {
                let reason = format!("no `{}` linked account `{id}`", self.provider);
                self.log(services, None, "UNKNOWN_ACCOUNT", &reason).await;
                Err(IntakeReply::Refused {
                    status: 404,
                    outcome: "UNKNOWN_ACCOUNT",
                    reason,
                })
            }
        }
    }

    /// The secrets that may have signed the delivery.
    async fn keys(
        &self,
        services: &Services,
        source: KeySource,
        url_account: Option<&LinkedAccount>,
    ) -> Result<Vec<Key>, IntakeReply> {
        let mut keys = Vec::new();
        match source {
            KeySource::ClientSecret => {
                let apps = services
                    .store
                    .recent_oauth_apps()
                    .await
                    .map_err(unavailable)?;
                let own: BTreeSet<Option<String>> = apps
                    .iter()
                    .filter(|a| a.provider == self.provider)
                    .map(|a| a.environment_id.clone())
                    .collect();
                let own_apps: std::sync::Arc<BTreeSet<String>> =
                    std::sync::Arc::new(own.iter().flatten().cloned().collect());
                for app in apps.into_iter().filter(|a| a.provider == self.provider) {
                    // A delivery for an account in the URL can only be signed by that
                    // account's app: its environment's own, or the platform's.
                    if let Some(account) = url_account {
                        let uses = if own.contains(&Some(account.environment_id.clone())) {
                            Some(account.environment_id.clone())
                        } else {
                            None
                        };
                        if app.environment_id != uses {
                            continue;
                        }
                    }
                    if let Ok(secret) = services
                        .vault
                        .open_secret(&format!("oauth-app:{}", self.provider), &app.client_secret)
                    {
                        keys.push(Key {
                            secret,
                            scope: Scope::App {
                                environment: app.environment_id,
                                own_apps: own_apps.clone(),
                            },
                        });
                    }
                }
            }
            KeySource::SubscriptionSecret => {
                // Without the account in the URL there is no subscription to ask.
                if let Some(account) = url_account {
                    let subs = services
                        .store
                        .list_webhook_subscriptions(&account.id)
                        .await
                        .map_err(unavailable)?;
                    for s in subs {
                        let Some(sealed) = &s.secret else { continue };
                        if let Ok(secret) = services
                            .vault
                            .open_secret(&subscription_context(&s.id), sealed)
                        {
                            keys.push(Key {
                                secret,
                                scope: Scope::Subscription {
                                    id: s.id.clone(),
                                    account_id: s.account_id.clone(),
                                },
                            });
                        }
                    }
                }
            }
        }
        Ok(keys)
    }

    fn read(
        &self,
        cfg: &WebhookConfig,
        now: chrono::DateTime<chrono::Utc>,
        url_account: Option<&LinkedAccount>,
    ) -> Result<Vec<Item>, String> {
        let body: Value = if self.body.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(self.body).map_err(|e| format!("the body is not JSON: {e}"))?
        };
        let mut query = Map::new();
        for (k, v) in &self.query {
            query.insert(k.clone(), Value::String(v.clone()));
        }
        let input = json!({
            "body": body,
            "headers": self.headers,
            "query": query,
            "accountId": self.account_id,
            // The account's settings, when the URL names the account: vendors whose events
            // name objects by per-workspace ids are mapped through them.
            "settings": url_account.map_or(Value::Null, |a| a.settings.clone()),
        });
        let output = cfg
            .events
            .evaluate(Some(&input), &Vars::default())
            .map_err(|e| format!("the provider's events expression failed: {e}"))?;
        read_items(output, now)
    }

    /// Each event's linked accounts, grouped by account.
    async fn route(
        &self,
        services: &Services,
        provider: &ProviderModel,
        cfg: &WebhookConfig,
        events: Vec<VendorEvent>,
        verified: Option<Scope>,
        url_account: Option<&LinkedAccount>,
    ) -> Result<BTreeMap<String, Vec<VendorEvent>>, IntakeReply> {
        let mut out: BTreeMap<String, Vec<VendorEvent>> = BTreeMap::new();
        let mut accounts: BTreeMap<String, Option<LinkedAccount>> = BTreeMap::new();
        let mut touched = Vec::new();
        let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for event in events {
            if !provider.resources.contains_key(&event.resource) {
                continue;
            }
            let candidates: Vec<String> = match &cfg.account {
                AccountBy::Url => url_account.map(|a| vec![a.id.clone()]).unwrap_or_default(),
                AccountBy::Key { .. } => match &event.account_key {
                    // A delivery's events mostly share one key: look each key up once.
                    Some(key) => match by_key.get(key) {
                        Some(ids) => ids.clone(),
                        None => {
                            let ids = services
                                .store
                                .recent_accounts_for_webhook_key(self.provider, key)
                                .await
                                .map_err(unavailable)?;
                            by_key.insert(key.clone(), ids.clone());
                            ids
                        }
                    },
                    None => Vec::new(),
                },
                AccountBy::Subscription => {
                    let Some(remote) = &event.subscription else {
                        continue;
                    };
                    let subs = self
                        .vouched_subscriptions(
                            services,
                            cfg,
                            remote,
                            event.secret.as_deref(),
                            url_account,
                        )
                        .await?;
                    let mut ids = Vec::new();
                    for s in subs {
                        touched.push(s.id.clone());
                        ids.push(s.account_id);
                    }
                    ids
                }
            };
            for id in candidates {
                if !accounts.contains_key(&id) {
                    let row = services
                        .store
                        .recent_linked_account(&id)
                        .await
                        .map_err(unavailable)?;
                    accounts.insert(id.clone(), row);
                }
                let Some(Some(account)) = accounts.get(&id) else {
                    continue;
                };
                if account.provider != self.provider
                    || matches!(account.status.as_str(), "DISABLED" | "REVOKED")
                {
                    continue;
                }
                let vouched = match &verified {
                    None => true,
                    Some(Scope::App {
                        environment: Some(env),
                        ..
                    }) => &account.environment_id == env,
                    Some(Scope::App {
                        environment: None,
                        own_apps,
                    }) => !own_apps.contains(&account.environment_id),
                    Some(Scope::Subscription {
                        account_id,
                        id: sub,
                    }) => {
                        touched.push(sub.clone());
                        account_id == &account.id
                    }
                };
                if vouched {
                    out.entry(id).or_default().push(event.clone());
                }
            }
        }
        touched.sort();
        touched.dedup();
        if let Err(e) = services.store.touch_webhook_subscriptions(&touched).await {
            tracing::warn!(error = %e, "could not note the subscriptions' last delivery");
        }
        Ok(out)
    }

    /// The subscriptions bearing the vendor id `remote`, each checked against the token the
    /// vendor echoed when the provider's scheme is `token`. A wrong token refuses the whole
    /// delivery: it is forged, or signed with a secret this gateway never gave out.
    async fn vouched_subscriptions(
        &self,
        services: &Services,
        cfg: &WebhookConfig,
        remote: &str,
        echoed: Option<&str>,
        url_account: Option<&LinkedAccount>,
    ) -> Result<Vec<WebhookSubscription>, IntakeReply> {
        let token = cfg.signatures.iter().find_map(|s| match s {
            Signature::Token(t) => Some(t.clone()),
            _ => None,
        });
        let subs = services
            .store
            .find_webhook_subscriptions(remote)
            .await
            .map_err(unavailable)?;
        if let Some(t) = &token {
            for s in &subs {
                let expected = s.secret.as_ref().and_then(|sealed| {
                    services
                        .vault
                        .open_secret(&subscription_context(&s.id), sealed)
                        .ok()
                });
                if !expected.is_some_and(|e| t.matches(&e, echoed)) {
                    return Err(self
                        .refuse(
                            services,
                            url_account,
                            401,
                            Rejection::BadSignature(format!(
                                "the token echoed for subscription `{remote}` is not the one Tessera gave it"
                            )),
                        )
                        .await);
                }
            }
        }
        Ok(subs)
    }

    /// Acts on a notice about a subscription: a vendor asking for reauthorization, or
    /// saying it removed the subscription, gets it renewed (or created again) at once; one
    /// saying it missed deliveries is recorded on the account.
    async fn lifecycle(
        &self,
        services: &Services,
        cfg: &WebhookConfig,
        notice: &LifecycleNotice,
        url_account: Option<&LinkedAccount>,
    ) -> Result<(), IntakeReply> {
        let Some(remote) = &notice.subscription else {
            return Ok(());
        };
        let subs = self
            .vouched_subscriptions(services, cfg, remote, notice.secret.as_deref(), url_account)
            .await?;
        for s in subs {
            tracing::info!(account = %s.account_id, subscription = %s.id, notice = %notice.kind, "webhook subscription lifecycle notice");
            match notice.kind.as_str() {
                "reauthorizationRequired" | "subscriptionRemoved" => {
                    services
                        .store
                        .renew_webhook_subscription_now(&s.id)
                        .await
                        .map_err(unavailable)?;
                    services.events.subscriptions.notify_one();
                }
                "missed" => {
                    // Polled at once: what the vendor could not deliver is found by listing.
                    services
                        .store
                        .reconcile_now(&s.account_id)
                        .await
                        .map_err(unavailable)?;
                    let _ = services
                        .store
                        .insert_account_event(
                            &s.account_id,
                            "WEBHOOK_LIFECYCLE",
                            "the vendor says it could not deliver some notifications; reconciling now",
                        )
                        .await;
                }
                other => {
                    let message = format!("the vendor sent the lifecycle notice `{other}`");
                    let _ = services
                        .store
                        .insert_account_event(&s.account_id, "WEBHOOK_LIFECYCLE", &message)
                        .await;
                }
            }
        }
        Ok(())
    }

    /// The linked account an app-level delivery names in its (unverified) payload, for
    /// the delivery log only: a rotated signing secret then shows on the account it stops
    /// (`SIGNATURE_FAILURES`), though nothing of the delivery is stored or processed.
    async fn named_account(
        &self,
        services: &Services,
        cfg: &WebhookConfig,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<LinkedAccount> {
        if !matches!(cfg.account, AccountBy::Key { .. }) {
            return None;
        }
        let key = self
            .read(cfg, now, None)
            .ok()?
            .into_iter()
            .find_map(|item| match item {
                Item::Change(e) => e.account_key,
                Item::Lifecycle(_) => None,
            })?;
        let ids = services
            .store
            .recent_accounts_for_webhook_key(self.provider, &key)
            .await
            .ok()?;
        // One account only: a key several accounts share names none of them for sure.
        let [id] = ids.as_slice() else {
            return None;
        };
        services
            .store
            .recent_linked_account(id)
            .await
            .ok()
            .flatten()
    }

    async fn refuse(
        &self,
        services: &Services,
        account: Option<&LinkedAccount>,
        status: u16,
        rejection: Rejection,
    ) -> IntakeReply {
        let outcome = match rejection {
            Rejection::BadSignature(_) => "BAD_SIGNATURE",
            Rejection::Replayed(_) => "REPLAYED",
        };
        self.log(
            services,
            account.map(|a| a.id.as_str()),
            outcome,
            rejection.reason(),
        )
        .await;
        IntakeReply::Refused {
            status,
            outcome,
            reason: rejection.reason().to_owned(),
        }
    }

    /// Logs a delivery that stored nothing: the outcome and reason, never the body.
    async fn log(&self, services: &Services, account: Option<&str>, outcome: &str, reason: &str) {
        tracing::info!(
            provider = self.provider,
            account,
            outcome,
            reason,
            "webhook delivery refused"
        );
        if let Err(e) = services
            .store
            .log_webhook_delivery(self.provider, account, outcome, Some(reason))
            .await
        {
            tracing::warn!(error = %e, "could not log a webhook delivery");
        }
    }
}

/// The vault context of a subscription's secret.
pub fn subscription_context(subscription_id: &str) -> String {
    format!("webhook-subscription:{subscription_id}")
}

fn unavailable(e: StoreError) -> IntakeReply {
    tracing::warn!(error = %e, "webhook intake cannot reach the database");
    IntakeReply::Unavailable(e.to_string())
}
