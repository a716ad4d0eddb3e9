//! Mapping overrides: every version of every override, never updated in place. The current
//! override of a scope is its highest version; a rollback appends a copy of an older one.
//! `seq` orders all changes across scopes, so replicas catch up by reading `seq > last`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum OverrideVersions {
    Table,
    Seq,
    ScopeKey,
    Version,
    Level,
    EnvironmentId,
    AccountId,
    Provider,
    Resource,
    Spec,
    Action,
    RestoredVersion,
    Author,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Environments {
    Table,
    Id,
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
                    .table(OverrideVersions::Table)
                    .col(
                        ColumnDef::new(OverrideVersions::Seq)
                            .integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(OverrideVersions::ScopeKey).text().not_null())
                    .col(
                        ColumnDef::new(OverrideVersions::Version)
                            .integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(OverrideVersions::Level).text().not_null())
                    .col(
                        ColumnDef::new(OverrideVersions::EnvironmentId)
                            .text()
                            .null(),
                    )
                    .col(ColumnDef::new(OverrideVersions::AccountId).text().null())
                    .col(ColumnDef::new(OverrideVersions::Provider).text().not_null())
                    .col(ColumnDef::new(OverrideVersions::Resource).text().not_null())
                    .col(ColumnDef::new(OverrideVersions::Spec).text().not_null())
                    .col(ColumnDef::new(OverrideVersions::Action).text().not_null())
                    .col(
                        ColumnDef::new(OverrideVersions::RestoredVersion)
                            .integer()
                            .null(),
                    )
                    .col(ColumnDef::new(OverrideVersions::Author).text().not_null())
                    .col(
                        ColumnDef::new(OverrideVersions::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_override_versions_environment_id")
                            .from(OverrideVersions::Table, OverrideVersions::EnvironmentId)
                            .to(Environments::Table, Environments::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_override_versions_account_id")
                            .from(OverrideVersions::Table, OverrideVersions::AccountId)
                            .to(LinkedAccounts::Table, LinkedAccounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Two writers of one scope cannot both take the next version.
        manager
            .create_index(
                Index::create()
                    .name("idx_override_versions_scope_version")
                    .table(OverrideVersions::Table)
                    .col(OverrideVersions::ScopeKey)
                    .col(OverrideVersions::Version)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_override_versions_environment_id")
                    .table(OverrideVersions::Table)
                    .col(OverrideVersions::EnvironmentId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(OverrideVersions::Table).to_owned())
            .await
    }
}
