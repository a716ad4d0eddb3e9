//! Alerts: what the watcher concluded about each linked account (opened and resolved by the
//! evidence, one open alert per account and kind), the listing observations it reads (how
//! many records each listing returned), the state it keeps between ticks, and the leases
//! that let one replica at a time run a cluster-wide job.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Alerts {
    Table,
    Id,
    EnvironmentId,
    AccountId,
    Provider,
    Kind,
    State,
    OpenedAt,
    ResolvedAt,
    ProbableCause,
    FirstResponse,
    Evidence,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ListingObservations {
    Table,
    Id,
    AccountId,
    Resource,
    Outcome,
    Records,
    Complete,
    Counted,
    Shape,
    CreatedAt,
}

#[derive(DeriveIden)]
enum WatchState {
    Table,
    Key,
    State,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum JobLeases {
    Table,
    Name,
    Holder,
    Until,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alerts::Table)
                    .col(ColumnDef::new(Alerts::Id).text().not_null().primary_key())
                    .col(ColumnDef::new(Alerts::EnvironmentId).text().not_null())
                    .col(ColumnDef::new(Alerts::AccountId).text().not_null())
                    .col(ColumnDef::new(Alerts::Provider).text().not_null())
                    .col(ColumnDef::new(Alerts::Kind).text().not_null())
                    .col(ColumnDef::new(Alerts::State).text().not_null())
                    .col(
                        ColumnDef::new(Alerts::OpenedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Alerts::ResolvedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(ColumnDef::new(Alerts::ProbableCause).text().not_null())
                    .col(ColumnDef::new(Alerts::FirstResponse).text().not_null())
                    .col(ColumnDef::new(Alerts::Evidence).text().not_null())
                    .col(
                        ColumnDef::new(Alerts::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_alerts_account_kind_state")
                    .table(Alerts::Table)
                    .col(Alerts::AccountId)
                    .col(Alerts::Kind)
                    .col(Alerts::State)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_alerts_environment_opened")
                    .table(Alerts::Table)
                    .col(Alerts::EnvironmentId)
                    .col(Alerts::OpenedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ListingObservations::Table)
                    .col(
                        ColumnDef::new(ListingObservations::Id)
                            .integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(ListingObservations::AccountId)
                            .text()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ListingObservations::Resource)
                            .text()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ListingObservations::Outcome)
                            .text()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ListingObservations::Records)
                            .integer()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(ListingObservations::Complete)
                            .boolean()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ListingObservations::Counted)
                            .boolean()
                            .not_null(),
                    )
                    .col(ColumnDef::new(ListingObservations::Shape).text().null())
                    .col(
                        ColumnDef::new(ListingObservations::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_listing_observations_created_at")
                    .table(ListingObservations::Table)
                    .col(ListingObservations::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WatchState::Table)
                    .col(
                        ColumnDef::new(WatchState::Key)
                            .text()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(WatchState::State).text().not_null())
                    .col(
                        ColumnDef::new(WatchState::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(JobLeases::Table)
                    .col(
                        ColumnDef::new(JobLeases::Name)
                            .text()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(JobLeases::Holder).text().not_null())
                    .col(
                        ColumnDef::new(JobLeases::Until)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            Alerts::Table.into_iden(),
            ListingObservations::Table.into_iden(),
            WatchState::Table.into_iden(),
            JobLeases::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(t).to_owned())
                .await?;
        }
        Ok(())
    }
}
