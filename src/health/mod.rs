//! Account health: what Tessera itself notices about each linked account, before a
//! customer does.
//!
//! - `probes`: every linked account probed on a schedule (claimed with leases, so N
//!   replicas probe each account once per interval) with a lightweight authenticated call;
//!   failures classified from the error's type (DNS, TCP connect, TLS, timeout, HTTP
//!   status, auth), the latest kept as `LinkedAccount.health`, every result in a history.
//! - `watch`: the watcher, which turns the evidence (request log, listings, deliveries,
//!   probes, statuses) into alerts through one rule file per kind of trouble.
//! - `alerts`: the kinds of alert and their probable cause and first response.

pub mod alerts;
pub mod diagnose;
pub mod probes;
pub mod watch;
