//! The kinds of alert, each with its probable cause and first response in the words of the
//! diagnostic checklist the product starts from (where the checklist has them).

/// What an alert is about (CONTRACT.md names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AlertKind {
    TokenRevoked,
    RateLimited,
    EndpointGone,
    SchemaDrift,
    UpstreamDown,
    NetworkFailure,
    RecordCountDrop,
    EmptySync,
    WebhooksSilent,
    WebhookSubscriptionLapsed,
    SignatureFailures,
}

impl AlertKind {
    /// Every kind, the most fundamental first (what `diagnose` names when several are
    /// open): credentials, the vendor, the way to it, its quota, then the data.
    pub const ALL: [AlertKind; 11] = [
        AlertKind::TokenRevoked,
        AlertKind::UpstreamDown,
        AlertKind::NetworkFailure,
        AlertKind::RateLimited,
        AlertKind::EndpointGone,
        AlertKind::SchemaDrift,
        AlertKind::RecordCountDrop,
        AlertKind::EmptySync,
        AlertKind::WebhooksSilent,
        AlertKind::WebhookSubscriptionLapsed,
        AlertKind::SignatureFailures,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AlertKind::TokenRevoked => "TOKEN_REVOKED",
            AlertKind::RateLimited => "RATE_LIMITED",
            AlertKind::EndpointGone => "ENDPOINT_GONE",
            AlertKind::SchemaDrift => "SCHEMA_DRIFT",
            AlertKind::UpstreamDown => "UPSTREAM_DOWN",
            AlertKind::NetworkFailure => "NETWORK_FAILURE",
            AlertKind::RecordCountDrop => "RECORD_COUNT_DROP",
            AlertKind::EmptySync => "EMPTY_SYNC",
            AlertKind::WebhooksSilent => "WEBHOOKS_SILENT",
            AlertKind::WebhookSubscriptionLapsed => "WEBHOOK_SUBSCRIPTION_LAPSED",
            AlertKind::SignatureFailures => "SIGNATURE_FAILURES",
        }
    }

    pub fn parse(name: &str) -> Option<AlertKind> {
        AlertKind::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn probable_cause(self) -> &'static str {
        match self {
            AlertKind::TokenRevoked => "Expired or revoked OAuth token",
            AlertKind::RateLimited => "Shared rate limit exceeded",
            AlertKind::EndpointGone => "Endpoint deprecated or URL changed",
            AlertKind::SchemaDrift => "Silent schema mutation",
            AlertKind::UpstreamDown => "Upstream API outage",
            AlertKind::NetworkFailure => "Infrastructure drift (DNS, TLS, firewall)",
            AlertKind::RecordCountDrop => "Pagination strategy change or cursor expiry",
            AlertKind::EmptySync => {
                "Syncs complete but return no records: credentials revoked or narrowed at the vendor, or data moved out of reach"
            }
            AlertKind::WebhooksSilent => "Subscription expired or endpoint unreachable",
            AlertKind::WebhookSubscriptionLapsed => {
                "Subscription expired: its renewal or re-creation at the vendor failed"
            }
            AlertKind::SignatureFailures => {
                "The vendor signs deliveries with a secret Tessera does not have (a rotated signing secret)"
            }
        }
    }

    pub fn first_response(self) -> &'static str {
        match self {
            AlertKind::TokenRevoked => {
                "Attempt a token refresh. If the refresh fails with invalid_grant, the user must re-authorize the connection."
            }
            AlertKind::RateLimited => {
                "Read the ratelimit-reset header. Apply exponential backoff. Check whether other integrations on the customer's account are consuming the quota."
            }
            AlertKind::EndpointGone => {
                "Check the vendor's API changelog and migration guide. Update the endpoint path in your integration config."
            }
            AlertKind::SchemaDrift => {
                "Compare the current response payload against your expected schema. Look for renamed fields, new wrapper objects, or changed data types."
            }
            AlertKind::UpstreamDown => {
                "Check the vendor's status page. Queue failed requests for retry with exponential backoff. Do not hammer the endpoint."
            }
            AlertKind::NetworkFailure => {
                "Verify DNS resolution for the API endpoint. Confirm TLS 1.2+ support. Check whether the vendor changed IP ranges and your firewall rules are stale."
            }
            AlertKind::RecordCountDrop => {
                "Inspect the pagination response. Check if the vendor switched from offset to cursor-based pagination, or if cursor tokens now expire."
            }
            AlertKind::EmptySync => {
                "Check the connected account's authentication status and the request log for 401 or invalid_grant. If the connection shows active but reads return nothing, re-authorization is still the fix."
            }
            AlertKind::WebhooksSilent => {
                "Verify webhook subscription status via the vendor's API. Confirm your receiving endpoint returns 200 OK within the vendor's timeout window."
            }
            AlertKind::WebhookSubscriptionLapsed => {
                "Verify webhook subscription status via the vendor's API; Tessera keeps retrying the renewal. If it keeps failing, re-authorize the connection (the app may have lost the permission to subscribe)."
            }
            AlertKind::SignatureFailures => {
                "Compare the signing secret configured in Tessera (the OAuth app's client secret, or the subscription's secret) with the vendor's current one and update it; refused deliveries are found again by reconciliation."
            }
        }
    }

    /// Whether this kind alone is a reason to call engineering (the playbook's escalation
    /// rules: a confirmed schema change; an endpoint that moved needs a provider file change).
    pub fn needs_engineering(self) -> bool {
        matches!(self, AlertKind::SchemaDrift | AlertKind::EndpointGone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_the_contract_ones() {
        for k in AlertKind::ALL {
            assert_eq!(AlertKind::parse(k.name()), Some(k));
            assert!(!k.probable_cause().is_empty() && !k.first_response().is_empty());
        }
        assert_eq!(AlertKind::parse("HEALTHY"), None);
    }
}
