//! The `webhooks` section of a provider file: how a delivery is verified, which linked
//! account it belongs to, and how its payload becomes events. Everything vendor-specific
//! about inbound webhooks is here, as data; the engine side (`src/webhooks/`) is generic.

use schemars::JsonSchema;
use serde::Deserialize;

use super::model::PathTemplate;
use super::validate::Checker;
use crate::mapping::Expr;
use crate::signing::{KeySource, RawSignature, Signature};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawWebhooks {
    /// Which linked account a delivery belongs to.
    pub account: RawAccountBy,
    /// Accepted signature schemes, tried in order: the first whose header is present
    /// decides (list the strongest first). A delivery no scheme applies to is refused.
    pub signatures: Vec<RawSignature>,
    /// JSONata over `{body, headers, query, accountId, settings}` (header names lower-case;
    /// `body` the parsed JSON; `settings` the linked account's settings when the delivery URL
    /// names the account) giving the delivery's events: an array of objects with `resource` (a
    /// unified resource of this provider, e.g. `contacts`), `action` (`created`, `updated`
    /// or `deleted`), `remoteId`, and optionally `id` (the vendor's event id, for
    /// deduplication; default a hash of the event), `occurredAt` (epoch milliseconds or
    /// RFC 3339), `accountKey` (with `account.by = key`), `subscription` (with `account.by =
    /// subscription`), `secret` (the echoed token of a `token` scheme) and `record` (the
    /// vendor's record, when the payload carries it; otherwise Tessera reads it). Events of
    /// resources this provider does not serve are skipped.
    pub events: String,
    /// A subscription-validation handshake: a request carrying this query parameter is
    /// answered `200 text/plain` with its decoded value (Graph's `validationToken`).
    #[serde(default)]
    pub handshake: Option<RawHandshake>,
    /// How the account key is learned at connect time, when neither the token response
    /// nor the account's settings carry it.
    #[serde(default)]
    pub learn_account_key: Option<RawLearnKey>,
    /// Per-account subscriptions Tessera creates at the vendor when an account is linked,
    /// renews before they expire and recreates when the vendor lost them.
    #[serde(default)]
    pub subscription: Option<RawSubscription>,
}

/// A vendor subscription's lifecycle. Every call is made on the account's API base URL
/// with its credentials; bodies and query values are JSONata over nothing, with `$url`
/// (where the vendor must deliver: `/webhooks/{provider}/{accountId}` on the public URL),
/// `$secret` (the generated secret), `$user` and `$password` (its two halves, for Basic
/// credentials), `$expiresAt` (RFC 3339) and `$expiresAtMs`, `$channelId` (a numeric id
/// Tessera chooses, for vendors whose client names the channel), `$remoteId` (the
/// vendor's id of the subscription, when renewing or deleting) and `$accountId`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawSubscription {
    /// The longest lifetime the vendor grants, in seconds; without it subscriptions do not
    /// expire. A linked account's `settings.webhookLifetimeSeconds` may ask for less.
    #[serde(default)]
    pub max_lifetime_seconds: Option<u64>,
    /// The secret the vendor proves deliveries with: `token` (Tessera generates a random
    /// token, sent as `$secret`), `basic` (a generated user and password, `$user` and
    /// `$password`) or `response` (the vendor returns it, at `secretPath`).
    pub secret: RawSecretSource,
    /// JSON pointer to the secret in the create answer (with `secret: response`).
    #[serde(default)]
    pub secret_path: Option<String>,
    pub create: RawSubscriptionCall,
    /// Extends the lifetime; without it, the subscription is created again when due.
    #[serde(default)]
    pub renew: Option<RawSubscriptionCall>,
    #[serde(default)]
    pub delete: Option<RawSubscriptionCall>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RawSecretSource {
    Token,
    Basic,
    Response,
}

/// One call of the lifecycle.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawSubscriptionCall {
    pub method: String,
    /// Under the API base URL; `{remoteId}` is the vendor's id of the subscription.
    pub path: String,
    /// Query parameters: JSONata values (see above).
    #[serde(default)]
    pub query: indexmap::IndexMap<String, String>,
    /// The JSON body: JSONata (see above).
    #[serde(default)]
    pub body: Option<String>,
    /// JSON pointer to the vendor's id of the subscription in the answer.
    #[serde(default)]
    pub remote_id_path: Option<String>,
    /// JSON pointer to the expiry the vendor granted (RFC 3339 or epoch milliseconds);
    /// without it, the expiry asked for.
    #[serde(default)]
    pub expires_at_path: Option<String>,
    /// JSONata over `{status, body}`: whether the call succeeded (default: a 2xx status),
    /// for vendors that answer 200 with a per-item error.
    #[serde(default)]
    pub ok: Option<String>,
    /// JSONata over `{status, body}`: whether the vendor no longer has the subscription,
    /// so it must be created again (default: status 404 or 410).
    #[serde(default)]
    pub gone: Option<String>,
}

/// How a delivery finds its linked account.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    tag = "by",
    rename_all = "snake_case",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum RawAccountBy {
    /// The account id is in the URL: `/webhooks/{provider}/{accountId}`.
    Url,
    /// Each event's `accountKey` equals this setting of the account (e.g. a
    /// portal id): app-level webhooks, one URL for every account.
    Key { setting: String },
    /// Each event's `subscription` is the vendor id of a subscription Tessera created for
    /// the account (a `subscriptionId` or `channel_id`).
    Subscription,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawHandshake {
    pub query_param: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawLearnKey {
    /// A GET path on the provider's base URL, e.g. `/account-info/v3/details`.
    pub path: String,
    /// JSONata over the response body giving the key, e.g. `$string(portalId)`.
    pub value: String,
}

/// How a delivery finds its linked account (checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountBy {
    Url,
    Key { setting: String },
    Subscription,
}

/// A checked lifecycle call.
#[derive(Debug)]
pub struct SubscriptionCall {
    pub method: reqwest::Method,
    pub path: PathTemplate,
    pub query: Vec<(String, Expr)>,
    pub body: Option<Expr>,
    pub remote_id_pointer: Option<String>,
    pub expires_at_pointer: Option<String>,
    pub ok: Option<Expr>,
    pub gone: Option<Expr>,
}

/// The checked subscription lifecycle.
#[derive(Debug)]
pub struct SubscriptionConfig {
    pub max_lifetime: Option<std::time::Duration>,
    pub secret: RawSecretSource,
    pub secret_pointer: Option<String>,
    pub create: SubscriptionCall,
    pub renew: Option<SubscriptionCall>,
    pub delete: Option<SubscriptionCall>,
}

#[derive(Debug)]
pub struct LearnKey {
    pub path: PathTemplate,
    pub value: Expr,
}

/// The checked `webhooks` section.
#[derive(Debug)]
pub struct WebhookConfig {
    pub account: AccountBy,
    pub signatures: Vec<Signature>,
    pub events: Expr,
    pub handshake: Option<String>,
    pub learn_key: Option<LearnKey>,
    pub subscription: Option<SubscriptionConfig>,
}

impl WebhookConfig {
    /// Whether any scheme needs the OAuth app's client secret.
    pub fn needs_client_secret(&self) -> bool {
        self.signatures
            .iter()
            .any(|s| s.key_source() == KeySource::ClientSecret)
    }
}

impl Checker<'_> {
    pub(super) fn webhooks(&mut self, raw: RawWebhooks) -> Option<WebhookConfig> {
        let before = self.problems.len();
        let account = match raw.account {
            RawAccountBy::Url => AccountBy::Url,
            RawAccountBy::Subscription => AccountBy::Subscription,
            RawAccountBy::Key { setting } => {
                if setting.trim().is_empty() {
                    self.problem(
                        "/webhooks/account/setting",
                        "name the setting that holds the account key",
                    );
                }
                AccountBy::Key { setting }
            }
        };
        if raw.signatures.is_empty() {
            self.problem(
                "/webhooks/signatures",
                "declare at least one signature scheme: an unverified webhook lets anyone inject events",
            );
        }
        let mut signatures = Vec::new();
        for (i, s) in raw.signatures.into_iter().enumerate() {
            match Signature::check(s) {
                Ok(s) => signatures.push(s),
                Err(found) => {
                    for (at, message) in found {
                        self.problem(format!("/webhooks/signatures/{i}{at}"), message);
                    }
                }
            }
        }
        if signatures.iter().any(|s| matches!(s, Signature::Token(_)))
            && account != AccountBy::Subscription
        {
            self.problem(
                "/webhooks/account",
                "a `token` signature is the subscription's: use `\"by\": \"subscription\"`",
            );
        }
        let events = self.expr("/webhooks/events", &raw.events);
        let handshake = raw.handshake.and_then(|h| {
            if h.query_param.trim().is_empty() {
                self.problem("/webhooks/handshake/queryParam", "must not be empty");
                None
            } else {
                Some(h.query_param)
            }
        });
        let learn_key = match raw.learn_account_key {
            Some(l) => {
                let path = self.path("/webhooks/learnAccountKey/path", &l.path, &[]);
                let value = self.expr("/webhooks/learnAccountKey/value", &l.value);
                if !matches!(account, AccountBy::Key { .. }) {
                    self.problem(
                        "/webhooks/learnAccountKey",
                        "only accounts found by key (`\"by\": \"key\"`) need a learned key",
                    );
                }
                match (path, value) {
                    (Some(path), Some(value)) => Some(LearnKey { path, value }),
                    _ => None,
                }
            }
            None => None,
        };
        let subscription = raw
            .subscription
            .and_then(|s| self.subscription("/webhooks/subscription", s));
        if self.problems.len() > before {
            return None;
        }
        Some(WebhookConfig {
            account,
            signatures,
            events: events?,
            handshake,
            learn_key,
            subscription,
        })
    }

    fn subscription(&mut self, at: &str, raw: RawSubscription) -> Option<SubscriptionConfig> {
        if raw.max_lifetime_seconds == Some(0) {
            self.problem(format!("{at}/maxLifetimeSeconds"), "must be at least 1");
        }
        let secret_pointer = match (raw.secret, raw.secret_path) {
            (RawSecretSource::Response, None) => {
                self.problem(
                    format!("{at}/secretPath"),
                    "`secret: response` needs the pointer to the secret in the create answer",
                );
                None
            }
            (RawSecretSource::Response, Some(p)) => {
                self.pointer(&format!("{at}/secretPath"), Some(p))
            }
            (_, Some(_)) => {
                self.problem(
                    format!("{at}/secretPath"),
                    "only `secret: response` reads the secret from the answer",
                );
                None
            }
            (_, None) => None,
        };
        let create = self.subscription_call(&format!("{at}/create"), raw.create, false);
        let renew = raw
            .renew
            .and_then(|c| self.subscription_call(&format!("{at}/renew"), c, true));
        let delete = raw
            .delete
            .and_then(|c| self.subscription_call(&format!("{at}/delete"), c, true));
        Some(SubscriptionConfig {
            max_lifetime: raw.max_lifetime_seconds.map(std::time::Duration::from_secs),
            secret: raw.secret,
            secret_pointer,
            create: create?,
            renew,
            delete,
        })
    }

    fn subscription_call(
        &mut self,
        at: &str,
        raw: RawSubscriptionCall,
        has_remote_id: bool,
    ) -> Option<SubscriptionCall> {
        let before = self.problems.len();
        let method = self.method(&format!("{at}/method"), &raw.method);
        let allowed: &[&str] = if has_remote_id { &["remoteId"] } else { &[] };
        let path = match PathTemplate::parse(&raw.path) {
            Ok(t) => {
                if let Some(v) = t.vars().find(|v| !allowed.contains(v)) {
                    self.problem(
                        format!("{at}/path"),
                        format!(
                            "unknown placeholder `{{{v}}}` (allowed here: {})",
                            if allowed.is_empty() {
                                "none"
                            } else {
                                "remoteId"
                            }
                        ),
                    );
                }
                Some(t)
            }
            Err(m) => {
                self.problem(format!("{at}/path"), m);
                None
            }
        };
        let mut query = Vec::new();
        for (name, expr) in raw.query {
            if let Some(e) = self.expr(
                &format!("{at}/query/{}", crate::problem::pointer_segment(&name)),
                &expr,
            ) {
                query.push((name, e));
            }
        }
        let body = raw.body.and_then(|b| self.expr(&format!("{at}/body"), &b));
        let remote_id_pointer = self.pointer(&format!("{at}/remoteIdPath"), raw.remote_id_path);
        let expires_at_pointer = self.pointer(&format!("{at}/expiresAtPath"), raw.expires_at_path);
        let ok = raw.ok.and_then(|e| self.expr(&format!("{at}/ok"), &e));
        let gone = raw.gone.and_then(|e| self.expr(&format!("{at}/gone"), &e));
        if self.problems.len() > before {
            return None;
        }
        Some(SubscriptionCall {
            method: method?,
            path: path?,
            query,
            body,
            remote_id_pointer,
            expires_at_pointer,
            ok,
            gone,
        })
    }
}
