//! OAuth apps and browsers: what the platform's default app may be used for, and which
//! browser a started authorization belongs to.
//!
//! - `oauth_apps.allowed_hosts` (JSON array of `host` or `host:port`) names the token and
//!   authorization hosts, beyond the provider file's own, that the platform default may be
//!   sent to; `allow_client_credentials` lets environments use it for the
//!   client-credentials grant. Both are the admin's, and mean nothing on an environment's
//!   own app. Existing platform apps get neither: they are used only with the provider
//!   file's own endpoints, and never for client credentials, until the admin says so.
//! - `oauth_states.authorize_url` is the vendor's consent URL, revealed only by
//!   `GET /oauth/start` to the browser that opens it first; `browser_hash` is the SHA-256
//!   of the secret that browser received as a cookie and must present at the callback.
//!
//! One column per statement: SQLite alters one column at a time.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum OauthApps {
    Table,
    AllowedHosts,
    AllowClientCredentials,
}

#[derive(DeriveIden)]
enum OauthStates {
    Table,
    AuthorizeUrl,
    BrowserHash,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(OauthApps::Table)
                    .add_column(
                        ColumnDef::new(OauthApps::AllowedHosts)
                            .text()
                            .not_null()
                            .default("[]"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(OauthApps::Table)
                    .add_column(
                        ColumnDef::new(OauthApps::AllowClientCredentials)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(OauthStates::Table)
                    .add_column(ColumnDef::new(OauthStates::AuthorizeUrl).text().null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(OauthStates::Table)
                    .add_column(ColumnDef::new(OauthStates::BrowserHash).text().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, column) in [
            (
                OauthStates::Table.into_iden(),
                OauthStates::BrowserHash.into_iden(),
            ),
            (
                OauthStates::Table.into_iden(),
                OauthStates::AuthorizeUrl.into_iden(),
            ),
            (
                OauthApps::Table.into_iden(),
                OauthApps::AllowClientCredentials.into_iden(),
            ),
            (
                OauthApps::Table.into_iden(),
                OauthApps::AllowedHosts.into_iden(),
            ),
        ] {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
