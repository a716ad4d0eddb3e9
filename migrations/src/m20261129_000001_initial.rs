//! Environments (tenants), their API keys, and linked accounts (one connected CRM org each).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Environments {
    Table,
    Id,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    EnvironmentId,
    KeyHash,
    KeyPrefix,
    CreatedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum LinkedAccounts {
    Table,
    Id,
    EnvironmentId,
    Provider,
    Status,
    StatusReason,
    Credentials,
    Settings,
    ExpiresAt,
    LastRefreshedAt,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Environments::Table)
                    .col(
                        ColumnDef::new(Environments::Id)
                            .text()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(Environments::Name)
                            .text()
                            .not_null()
                            .unique_key(),
                    )
                    .col(
                        ColumnDef::new(Environments::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ApiKeys::Table)
                    .col(ColumnDef::new(ApiKeys::Id).text().not_null().primary_key())
                    // NULL is the platform admin key, which belongs to no environment.
                    .col(ColumnDef::new(ApiKeys::EnvironmentId).text().null())
                    .col(
                        ColumnDef::new(ApiKeys::KeyHash)
                            .text()
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(ApiKeys::KeyPrefix).text().not_null())
                    .col(
                        ColumnDef::new(ApiKeys::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ApiKeys::RevokedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_api_keys_environment_id")
                            .from(ApiKeys::Table, ApiKeys::EnvironmentId)
                            .to(Environments::Table, Environments::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        // PostgreSQL does not index the referencing side of a foreign key, and deleting an
        // environment cascades through this column.
        manager
            .create_index(
                Index::create()
                    .name("idx_api_keys_environment_id")
                    .table(ApiKeys::Table)
                    .col(ApiKeys::EnvironmentId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(LinkedAccounts::Table)
                    .col(
                        ColumnDef::new(LinkedAccounts::Id)
                            .text()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(LinkedAccounts::EnvironmentId)
                            .text()
                            .not_null(),
                    )
                    .col(ColumnDef::new(LinkedAccounts::Provider).text().not_null())
                    // Free text rather than an enum type or CHECK: SQLite cannot alter either,
                    // and a later status must not need a table rebuild.
                    .col(ColumnDef::new(LinkedAccounts::Status).text().not_null())
                    .col(ColumnDef::new(LinkedAccounts::StatusReason).text().null())
                    // Ciphertext made by the caller; the database never sees a token.
                    .col(
                        ColumnDef::new(LinkedAccounts::Credentials)
                            .blob()
                            .not_null(),
                    )
                    // JSON as text: same type on both backends, and read whole, never queried.
                    .col(ColumnDef::new(LinkedAccounts::Settings).text().not_null())
                    .col(
                        ColumnDef::new(LinkedAccounts::ExpiresAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(LinkedAccounts::LastRefreshedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    // Compare-and-swap counter: refreshes on several replicas race on it.
                    .col(
                        ColumnDef::new(LinkedAccounts::Version)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new(LinkedAccounts::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(LinkedAccounts::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_linked_accounts_environment_id")
                            .from(LinkedAccounts::Table, LinkedAccounts::EnvironmentId)
                            .to(Environments::Table, Environments::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_index(
                Index::create()
                    .name("idx_linked_accounts_environment_id")
                    .table(LinkedAccounts::Table)
                    .col(LinkedAccounts::EnvironmentId)
                    .to_owned(),
            )
            .await?;

        // The refresh scheduler asks for the accounts whose token expires soon.
        manager
            .create_index(
                Index::create()
                    .name("idx_linked_accounts_expires_at")
                    .table(LinkedAccounts::Table)
                    .col(LinkedAccounts::ExpiresAt)
                    .to_owned(),
            )
            .await?;

        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Children first: dropping a referenced table fails on PostgreSQL.
        manager
            .drop_table(Table::drop().table(LinkedAccounts::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(ApiKeys::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Environments::Table).to_owned())
            .await
    }
}
