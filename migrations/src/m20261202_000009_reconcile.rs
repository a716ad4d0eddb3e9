//! Reconciliation: per (linked account, resource), how far the polling for changes has
//! read (the vendor's own modification times), and the claim of the replica polling it.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ReconcileState {
    Table,
    AccountId,
    Resource,
    Watermark,
    NextRunAt,
    Claim,
    ClaimedUntil,
}

#[derive(DeriveIden)]
enum LinkedAccounts {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ReconcileState::Table)
                    .col(ColumnDef::new(ReconcileState::AccountId).text().not_null())
                    .col(ColumnDef::new(ReconcileState::Resource).text().not_null())
                    .col(
                        ColumnDef::new(ReconcileState::Watermark)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ReconcileState::NextRunAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(ReconcileState::Claim).text().null())
                    .col(
                        ColumnDef::new(ReconcileState::ClaimedUntil)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(ReconcileState::AccountId)
                            .col(ReconcileState::Resource),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_reconcile_state_account_id")
                            .from(ReconcileState::Table, ReconcileState::AccountId)
                            .to(LinkedAccounts::Table, LinkedAccounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_reconcile_state_next_run_at")
                    .table(ReconcileState::Table)
                    .col(ReconcileState::NextRunAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ReconcileState::Table).to_owned())
            .await
    }
}
