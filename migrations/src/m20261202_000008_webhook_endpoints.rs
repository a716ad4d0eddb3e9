//! Outbound webhooks: the customer's endpoints, and one delivery row per (endpoint, event)
//! written in the same transaction as the event, retried until delivered or dead-lettered.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WebhookEndpoints {
    Table,
    Id,
    EnvironmentId,
    Url,
    Types,
    Secret,
    CreatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum EndpointDeliveries {
    Table,
    Id,
    EndpointId,
    EventId,
    Attempt,
    Status,
    NextAttemptAt,
    LastStatus,
    LastError,
    Claim,
    ClaimedUntil,
    CreatedAt,
    DeliveredAt,
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
                    .table(WebhookEndpoints::Table)
                    .col(
                        ColumnDef::new(WebhookEndpoints::Id)
                            .text()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(WebhookEndpoints::EnvironmentId)
                            .text()
                            .not_null(),
                    )
                    .col(ColumnDef::new(WebhookEndpoints::Url).text().not_null())
                    .col(ColumnDef::new(WebhookEndpoints::Types).text().not_null())
                    .col(ColumnDef::new(WebhookEndpoints::Secret).blob().not_null())
                    .col(
                        ColumnDef::new(WebhookEndpoints::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(WebhookEndpoints::DeletedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webhook_endpoints_environment_id")
                            .from(WebhookEndpoints::Table, WebhookEndpoints::EnvironmentId)
                            .to(Environments::Table, Environments::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_endpoints_environment")
                    .table(WebhookEndpoints::Table)
                    .col(WebhookEndpoints::EnvironmentId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EndpointDeliveries::Table)
                    .col(
                        ColumnDef::new(EndpointDeliveries::Id)
                            .text()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(EndpointDeliveries::EndpointId)
                            .text()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(EndpointDeliveries::EventId)
                            .text()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(EndpointDeliveries::Attempt)
                            .integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(EndpointDeliveries::Status).text().not_null())
                    .col(
                        ColumnDef::new(EndpointDeliveries::NextAttemptAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(EndpointDeliveries::LastStatus)
                            .integer()
                            .null(),
                    )
                    .col(ColumnDef::new(EndpointDeliveries::LastError).text().null())
                    .col(ColumnDef::new(EndpointDeliveries::Claim).text().null())
                    .col(
                        ColumnDef::new(EndpointDeliveries::ClaimedUntil)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(EndpointDeliveries::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(EndpointDeliveries::DeliveredAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_endpoint_deliveries_endpoint_id")
                            .from(EndpointDeliveries::Table, EndpointDeliveries::EndpointId)
                            .to(WebhookEndpoints::Table, WebhookEndpoints::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // One delivery per (endpoint, event): a redelivery resets it rather than adding one.
        manager
            .create_index(
                Index::create()
                    .name("idx_endpoint_deliveries_event")
                    .table(EndpointDeliveries::Table)
                    .col(EndpointDeliveries::EndpointId)
                    .col(EndpointDeliveries::EventId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_endpoint_deliveries_due")
                    .table(EndpointDeliveries::Table)
                    .col(EndpointDeliveries::Status)
                    .col(EndpointDeliveries::NextAttemptAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(EndpointDeliveries::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(WebhookEndpoints::Table).to_owned())
            .await
    }
}
