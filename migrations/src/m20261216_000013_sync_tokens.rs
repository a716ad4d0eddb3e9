//! Reconciliation through a vendor's change feed: `reconcile_state.sync_token` is the
//! token the vendor handed out at the end of the last pass over (account, resource), which
//! lists what changed since. Like the watermark it is a position in the vendor's data, not
//! a credential. `sync_request` is a digest of the request the token was taken with:
//! vendors refuse a token sent with other parameters, so a token whose request changed
//! since (a provider file or an override edited) is not sent again. Both null until the
//! first full listing, and again after the vendor refused the token as expired.
//!
//! One column per statement: SQLite alters one column at a time.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ReconcileState {
    Table,
    SyncToken,
    SyncRequest,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [ReconcileState::SyncToken, ReconcileState::SyncRequest] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ReconcileState::Table)
                        .add_column(ColumnDef::new(column).text().null())
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [ReconcileState::SyncRequest, ReconcileState::SyncToken] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ReconcileState::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
