//! The request log: one row per upstream call attempt, kept for a bounded time.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum UpstreamCalls {
    Table,
    Id,
    AccountId,
    Provider,
    Method,
    Path,
    Status,
    LatencyMs,
    RateLimit,
    RateRemaining,
    RateReset,
    ErrorClass,
    Retry,
    CreatedAt,
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
                    .table(UpstreamCalls::Table)
                    .col(
                        ColumnDef::new(UpstreamCalls::Id)
                            .integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(UpstreamCalls::AccountId).text().not_null())
                    .col(ColumnDef::new(UpstreamCalls::Provider).text().not_null())
                    .col(ColumnDef::new(UpstreamCalls::Method).text().not_null())
                    .col(ColumnDef::new(UpstreamCalls::Path).text().not_null())
                    .col(ColumnDef::new(UpstreamCalls::Status).integer().null())
                    .col(
                        ColumnDef::new(UpstreamCalls::LatencyMs)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(UpstreamCalls::RateLimit)
                            .big_integer()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(UpstreamCalls::RateRemaining)
                            .big_integer()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(UpstreamCalls::RateReset)
                            .big_integer()
                            .null(),
                    )
                    .col(ColumnDef::new(UpstreamCalls::ErrorClass).text().null())
                    .col(ColumnDef::new(UpstreamCalls::Retry).integer().not_null())
                    .col(
                        ColumnDef::new(UpstreamCalls::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_upstream_calls_account_id")
                            .from(UpstreamCalls::Table, UpstreamCalls::AccountId)
                            .to(LinkedAccounts::Table, LinkedAccounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Newest first per account; the retention sweep goes by time.
        manager
            .create_index(
                Index::create()
                    .name("idx_upstream_calls_account_id")
                    .table(UpstreamCalls::Table)
                    .col(UpstreamCalls::AccountId)
                    .col(UpstreamCalls::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_upstream_calls_created_at")
                    .table(UpstreamCalls::Table)
                    .col(UpstreamCalls::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(UpstreamCalls::Table).to_owned())
            .await
    }
}
