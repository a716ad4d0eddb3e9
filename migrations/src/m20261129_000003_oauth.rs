//! OAuth apps (per environment, with a platform default), pending authorization states, and
//! the events of linked accounts (refreshes, revocations) that operators query.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum OauthApps {
    Table,
    Id,
    EnvironmentId,
    Provider,
    ClientId,
    ClientSecret,
    Scopes,
    CreatedAt,
}

#[derive(DeriveIden)]
enum OauthStates {
    Table,
    State,
    EnvironmentId,
    Provider,
    RedirectUri,
    CodeVerifier,
    Settings,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum AccountEvents {
    Table,
    Id,
    AccountId,
    Kind,
    Message,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(OauthApps::Table)
                    .col(
                        ColumnDef::new(OauthApps::Id)
                            .text()
                            .not_null()
                            .primary_key(),
                    )
                    // Empty for the platform default: a NULL would not take part in the
                    // unique index on either backend.
                    .col(ColumnDef::new(OauthApps::EnvironmentId).text().not_null())
                    .col(ColumnDef::new(OauthApps::Provider).text().not_null())
                    .col(ColumnDef::new(OauthApps::ClientId).text().not_null())
                    .col(ColumnDef::new(OauthApps::ClientSecret).binary().not_null())
                    .col(ColumnDef::new(OauthApps::Scopes).text().not_null())
                    .col(
                        ColumnDef::new(OauthApps::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_oauth_apps_environment_provider")
                    .table(OauthApps::Table)
                    .col(OauthApps::EnvironmentId)
                    .col(OauthApps::Provider)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OauthStates::Table)
                    .col(
                        ColumnDef::new(OauthStates::State)
                            .text()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(OauthStates::EnvironmentId).text().not_null())
                    .col(ColumnDef::new(OauthStates::Provider).text().not_null())
                    .col(ColumnDef::new(OauthStates::RedirectUri).text().not_null())
                    .col(ColumnDef::new(OauthStates::CodeVerifier).binary().null())
                    .col(ColumnDef::new(OauthStates::Settings).text().not_null())
                    .col(
                        ColumnDef::new(OauthStates::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AccountEvents::Table)
                    .col(
                        ColumnDef::new(AccountEvents::Id)
                            .text()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(AccountEvents::AccountId).text().not_null())
                    .col(ColumnDef::new(AccountEvents::Kind).text().not_null())
                    .col(ColumnDef::new(AccountEvents::Message).text().not_null())
                    .col(
                        ColumnDef::new(AccountEvents::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_account_events_account_created")
                    .table(AccountEvents::Table)
                    .col(AccountEvents::AccountId)
                    .col(AccountEvents::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            OauthApps::Table.into_iden(),
            OauthStates::Table.into_iden(),
            AccountEvents::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(t).to_owned())
                .await?;
        }
        Ok(())
    }
}
