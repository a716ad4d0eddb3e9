//! Schema migrations of Tessera's database, one file per change, applied in the order of
//! [`Migrator::migrations`]. They use the sea-query builders only, so the same migration runs
//! on SQLite (the embedded default) and on PostgreSQL (production).
//!
//! Rules that keep several replicas and old databases working:
//! - an applied migration is never edited; a change of schema is a new file
//!   `mYYYYMMDD_NNNNNN_what.rs`, appended to the list below;
//! - SQLite cannot add a foreign key or a CHECK to an existing table, so they are declared
//!   when a table is created, and value sets that may grow (statuses) are checked in code.

pub use sea_orm_migration::prelude::*;

mod m20261129_000001_initial;
mod m20261129_000002_idempotency;
mod m20261129_000003_oauth;
mod m20261129_000004_overrides;
mod m20261129_000005_upstream_calls;
mod m20261129_000006_rate_limit_budgets;
mod m20261202_000007_webhooks;
mod m20261202_000008_webhook_endpoints;
mod m20261202_000009_reconcile;
mod m20261202_000010_account_health;
mod m20261202_000011_alerts;
mod m20261210_000012_oauth_binding;
mod m20261216_000013_sync_tokens;
mod m20261217_000014_reauthorize;

/// The migrations of Tessera's schema, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261129_000001_initial::Migration),
            Box::new(m20261129_000002_idempotency::Migration),
            Box::new(m20261129_000003_oauth::Migration),
            Box::new(m20261129_000004_overrides::Migration),
            Box::new(m20261129_000005_upstream_calls::Migration),
            Box::new(m20261129_000006_rate_limit_budgets::Migration),
            Box::new(m20261202_000007_webhooks::Migration),
            Box::new(m20261202_000008_webhook_endpoints::Migration),
            Box::new(m20261202_000009_reconcile::Migration),
            Box::new(m20261202_000010_account_health::Migration),
            Box::new(m20261202_000011_alerts::Migration),
            Box::new(m20261210_000012_oauth_binding::Migration),
            Box::new(m20261216_000013_sync_tokens::Migration),
            Box::new(m20261217_000014_reauthorize::Migration),
        ]
    }
}
