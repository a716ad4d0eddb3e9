//! Health probes: each linked account's latest health and when it is probed next (claimed
//! by one replica at a time), and the history of probe results.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AccountHealth {
    Table,
    AccountId,
    State,
    LastProbeAt,
    LastOkAt,
    FailureClass,
    FailureMessage,
    FailureStatus,
    ConsecutiveFailures,
    NextProbeAt,
    Claim,
    ClaimedUntil,
}

#[derive(DeriveIden)]
enum ProbeResults {
    Table,
    Id,
    AccountId,
    At,
    Ok,
    Class,
    HttpStatus,
    LatencyMs,
}

#[derive(DeriveIden)]
enum LinkedAccounts {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let tz = |c: AccountHealth| {
            ColumnDef::new(c)
                .timestamp_with_time_zone()
                .null()
                .to_owned()
        };
        manager
            .create_table(
                Table::create()
                    .table(AccountHealth::Table)
                    .col(
                        ColumnDef::new(AccountHealth::AccountId)
                            .text()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(AccountHealth::State).text().not_null())
                    .col(tz(AccountHealth::LastProbeAt))
                    .col(tz(AccountHealth::LastOkAt))
                    .col(ColumnDef::new(AccountHealth::FailureClass).text().null())
                    .col(ColumnDef::new(AccountHealth::FailureMessage).text().null())
                    .col(
                        ColumnDef::new(AccountHealth::FailureStatus)
                            .integer()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(AccountHealth::ConsecutiveFailures)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AccountHealth::NextProbeAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(AccountHealth::Claim).text().null())
                    .col(tz(AccountHealth::ClaimedUntil))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_account_health_account_id")
                            .from(AccountHealth::Table, AccountHealth::AccountId)
                            .to(LinkedAccounts::Table, LinkedAccounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_account_health_next_probe_at")
                    .table(AccountHealth::Table)
                    .col(AccountHealth::NextProbeAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ProbeResults::Table)
                    .col(
                        ColumnDef::new(ProbeResults::Id)
                            .integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(ProbeResults::AccountId).text().not_null())
                    .col(
                        ColumnDef::new(ProbeResults::At)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(ProbeResults::Ok).boolean().not_null())
                    .col(ColumnDef::new(ProbeResults::Class).text().null())
                    .col(ColumnDef::new(ProbeResults::HttpStatus).integer().null())
                    .col(ColumnDef::new(ProbeResults::LatencyMs).integer().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_probe_results_account_id")
                            .from(ProbeResults::Table, ProbeResults::AccountId)
                            .to(LinkedAccounts::Table, LinkedAccounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_probe_results_account_at")
                    .table(ProbeResults::Table)
                    .col(ProbeResults::AccountId)
                    .col(ProbeResults::At)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ProbeResults::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(AccountHealth::Table).to_owned())
            .await
    }
}
