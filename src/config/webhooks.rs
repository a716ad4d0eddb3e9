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
    /// JSONata over `{body, headers, query, accountId}` (header names lower-case; `body` the
    /// parsed JSON) giving the delivery's events: an array of objects with `resource` (a
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
        if self.problems.len() > before {
            return None;
        }
        Some(WebhookConfig {
            account,
            signatures,
            events: events?,
            handshake,
            learn_key,
        })
    }
}
