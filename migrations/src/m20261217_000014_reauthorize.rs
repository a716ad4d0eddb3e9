//! Re-authorization in place: `oauth_states.account_id` names the linked account a started
//! authorization renews (`startOAuth(..., accountId:)`); null for one that links a new
//! account. No foreign key: deleting the account deletes its started flows by hand, and a
//! flow whose account is gone is refused at the callback.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum OauthStates {
    Table,
    AccountId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(OauthStates::Table)
                    .add_column(ColumnDef::new(OauthStates::AccountId).text().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(OauthStates::Table)
                    .drop_column(OauthStates::AccountId)
                    .to_owned(),
            )
            .await
    }
}
