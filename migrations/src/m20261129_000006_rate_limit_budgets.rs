//! Rate-limit windows known to be used up, per linked account, so every replica fails fast
//! on an account another replica saw throttled.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RateLimitBudgets {
    Table,
    AccountId,
    Window,
    Limit,
    ResetAt,
    UpdatedAt,
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
                    .table(RateLimitBudgets::Table)
                    .col(
                        ColumnDef::new(RateLimitBudgets::AccountId)
                            .text()
                            .not_null(),
                    )
                    .col(ColumnDef::new(RateLimitBudgets::Window).text().not_null())
                    .col(ColumnDef::new(RateLimitBudgets::Limit).big_integer().null())
                    .col(
                        ColumnDef::new(RateLimitBudgets::ResetAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(RateLimitBudgets::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(RateLimitBudgets::AccountId)
                            .col(RateLimitBudgets::Window),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_rate_limit_budgets_account_id")
                            .from(RateLimitBudgets::Table, RateLimitBudgets::AccountId)
                            .to(LinkedAccounts::Table, LinkedAccounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_rate_limit_budgets_updated_at")
                    .table(RateLimitBudgets::Table)
                    .col(RateLimitBudgets::UpdatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RateLimitBudgets::Table).to_owned())
            .await
    }
}
