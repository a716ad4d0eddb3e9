//! The alert rules. Each file judges one kind of trouble (or a family of kinds that share
//! their evidence) from what the watcher knows about an account, and says whether the
//! trouble is there (with its evidence), gone, or unknown (nothing seen either way, so an
//! open alert stays open and none is opened).

mod credentials;
mod drift;
mod endpoint;
mod outage;
mod quota;
mod sync;
mod webhooks;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::state::AccountWatch;
use crate::health::alerts::AlertKind;
use crate::store::{AccountHealth, LapsedSubscription, LinkedAccount};

/// What a rule concluded about one kind for one account.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The trouble is there; the evidence says what was seen.
    Active(Value),
    /// The evidence is good again.
    Clear,
    /// Nothing either way.
    Unknown,
}

/// Everything a rule may look at for one account.
pub struct Subject<'a> {
    pub now: DateTime<Utc>,
    pub account: &'a LinkedAccount,
    pub watch: &'a AccountWatch,
    /// The latest probe, when it failed.
    pub failing_probe: Option<&'a AccountHealth>,
    pub lapsed: Vec<&'a LapsedSubscription>,
    /// Whether the account's provider receives webhooks.
    pub has_webhooks: bool,
    /// The account's provider file with its overrides in force (what its mapping reads).
    pub provider: Option<std::sync::Arc<crate::config::ProviderModel>>,
}

/// Every rule's verdicts for one account.
pub fn judge(s: &Subject<'_>) -> Vec<(AlertKind, Verdict)> {
    let mut out = vec![
        (AlertKind::TokenRevoked, credentials::token_revoked(s)),
        (AlertKind::RateLimited, quota::rate_limited(s)),
        (AlertKind::EndpointGone, endpoint::endpoint_gone(s)),
        (AlertKind::SchemaDrift, drift::schema_drift(s)),
        (AlertKind::UpstreamDown, outage::upstream_down(s)),
        (AlertKind::NetworkFailure, outage::network_failure(s)),
        (AlertKind::EmptySync, sync::empty_sync(s)),
        (AlertKind::RecordCountDrop, sync::record_count_drop(s)),
    ];
    if s.has_webhooks {
        out.push((AlertKind::WebhooksSilent, webhooks::silent(s)));
        out.push((
            AlertKind::WebhookSubscriptionLapsed,
            webhooks::subscription_lapsed(s),
        ));
        out.push((
            AlertKind::SignatureFailures,
            webhooks::signature_failures(s),
        ));
    }
    out
}
