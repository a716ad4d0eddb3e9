//! sea-orm entities, one per table, written by hand to match `migrations/`. They stay private
//! to the store: callers get the plain types of the aggregate modules instead.

pub(crate) mod account_event;
pub(crate) mod account_health;
pub(crate) mod alert;
pub(crate) mod api_key;
pub(crate) mod endpoint_delivery;
pub(crate) mod environment;
pub(crate) mod idempotency_key;
pub(crate) mod job_lease;
pub(crate) mod linked_account;
pub(crate) mod listing_observation;
pub(crate) mod oauth_app;
pub(crate) mod oauth_state;
pub(crate) mod override_version;
pub(crate) mod probe_result;
pub(crate) mod rate_limit_budget;
pub(crate) mod reconcile_state;
pub(crate) mod unified_event;
pub(crate) mod upstream_call;
pub(crate) mod watch_state;
pub(crate) mod webhook_account_key;
pub(crate) mod webhook_delivery;
pub(crate) mod webhook_endpoint;
pub(crate) mod webhook_inbox;
pub(crate) mod webhook_subscription;
