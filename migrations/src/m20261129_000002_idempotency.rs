//! Idempotency keys of writes: the first result of a keyed mutation, kept 24 hours so a
//! retried request returns it instead of writing to the vendor twice.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    EnvironmentId,
    Key,
    Operation,
    RequestHash,
    State,
    Response,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Environments {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .col(
                        ColumnDef::new(IdempotencyKeys::EnvironmentId)
                            .text()
                            .not_null(),
                    )
                    .col(ColumnDef::new(IdempotencyKeys::Key).text().not_null())
                    .col(ColumnDef::new(IdempotencyKeys::Operation).text().not_null())
                    .col(
                        ColumnDef::new(IdempotencyKeys::RequestHash)
                            .text()
                            .not_null(),
                    )
                    .col(ColumnDef::new(IdempotencyKeys::State).text().not_null())
                    .col(ColumnDef::new(IdempotencyKeys::Response).text().null())
                    .col(
                        ColumnDef::new(IdempotencyKeys::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(IdempotencyKeys::EnvironmentId)
                            .col(IdempotencyKeys::Key),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_idempotency_keys_environment_id")
                            .from(IdempotencyKeys::Table, IdempotencyKeys::EnvironmentId)
                            .to(Environments::Table, Environments::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Expired keys are swept by age.
        manager
            .create_index(
                Index::create()
                    .name("idx_idempotency_keys_created_at")
                    .table(IdempotencyKeys::Table)
                    .col(IdempotencyKeys::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(IdempotencyKeys::Table).to_owned())
            .await
    }
}
