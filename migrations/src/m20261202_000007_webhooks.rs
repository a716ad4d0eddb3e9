//! Webhooks: the delivery log, the inbox of accepted vendor events (stored before the
//! vendor hears 2xx, processed after), the unified events they become, the keys that route
//! an app-level delivery to its linked accounts, and per-account vendor subscriptions.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    Id,
    Provider,
    AccountId,
    ReceivedAt,
    Outcome,
    Reason,
    EventCount,
}

#[derive(DeriveIden)]
enum WebhookInbox {
    Table,
    Id,
    AccountId,
    DedupKey,
    Event,
    Source,
    ReceivedAt,
    State,
    Attempts,
    Claim,
    ClaimedUntil,
    LastError,
}

#[derive(DeriveIden)]
enum UnifiedEvents {
    Table,
    Seq,
    Id,
    EnvironmentId,
    AccountId,
    Type,
    Resource,
    RemoteId,
    RecordId,
    OccurredAt,
    ReceivedAt,
    Source,
    Record,
}

#[derive(DeriveIden)]
enum WebhookAccountKeys {
    Table,
    Provider,
    Key,
    AccountId,
}

#[derive(DeriveIden)]
enum WebhookSubscriptions {
    Table,
    Id,
    AccountId,
    RemoteId,
    State,
    Secret,
    ExpiresAt,
    RenewAt,
    LastRenewedAt,
    LastDeliveryAt,
    CreatedAt,
    Failures,
    LastError,
    Claim,
    ClaimedUntil,
}

#[derive(DeriveIden)]
enum LinkedAccounts {
    Table,
    Id,
}

fn account_fk(
    table: impl IntoIden,
    column: impl IntoIden,
    name: &str,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(table, column)
        .to(LinkedAccounts::Table, LinkedAccounts::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

fn tz(column: impl IntoIden) -> ColumnDef {
    ColumnDef::new(column)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

fn tz_null(column: impl IntoIden) -> ColumnDef {
    ColumnDef::new(column)
        .timestamp_with_time_zone()
        .null()
        .to_owned()
}

fn text(column: impl IntoIden) -> ColumnDef {
    ColumnDef::new(column).text().not_null().to_owned()
}

fn text_null(column: impl IntoIden) -> ColumnDef {
    ColumnDef::new(column).text().null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Rejected deliveries may name no account (a bad signature on an app-level URL), so
        // the log has no foreign key; the retention sweep and account deletion clear it.
        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    .col(text(WebhookDeliveries::Id).primary_key())
                    .col(text(WebhookDeliveries::Provider))
                    .col(text_null(WebhookDeliveries::AccountId))
                    .col(tz(WebhookDeliveries::ReceivedAt))
                    .col(text(WebhookDeliveries::Outcome))
                    .col(text_null(WebhookDeliveries::Reason))
                    .col(
                        ColumnDef::new(WebhookDeliveries::EventCount)
                            .integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_deliveries_account")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::AccountId)
                    .col(WebhookDeliveries::ReceivedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_deliveries_received_at")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::ReceivedAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(WebhookInbox::Table)
                    .col(text(WebhookInbox::Id).primary_key())
                    .col(text(WebhookInbox::AccountId))
                    .col(text(WebhookInbox::DedupKey))
                    .col(text(WebhookInbox::Event))
                    .col(text(WebhookInbox::Source))
                    .col(tz(WebhookInbox::ReceivedAt))
                    .col(text(WebhookInbox::State))
                    .col(ColumnDef::new(WebhookInbox::Attempts).integer().not_null())
                    .col(text_null(WebhookInbox::Claim))
                    .col(tz_null(WebhookInbox::ClaimedUntil))
                    .col(text_null(WebhookInbox::LastError))
                    .foreign_key(&mut account_fk(
                        WebhookInbox::Table,
                        WebhookInbox::AccountId,
                        "fk_webhook_inbox_account_id",
                    ))
                    .to_owned(),
            )
            .await?;
        // The vendor's event id (or a content hash) once per account: a redelivery is a
        // conflict, not a second event.
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_inbox_dedup")
                    .table(WebhookInbox::Table)
                    .col(WebhookInbox::AccountId)
                    .col(WebhookInbox::DedupKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_inbox_state")
                    .table(WebhookInbox::Table)
                    .col(WebhookInbox::State)
                    .col(WebhookInbox::ClaimedUntil)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(UnifiedEvents::Table)
                    .col(
                        ColumnDef::new(UnifiedEvents::Seq)
                            .integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(text(UnifiedEvents::Id))
                    .col(text(UnifiedEvents::EnvironmentId))
                    .col(text(UnifiedEvents::AccountId))
                    .col(text(UnifiedEvents::Type))
                    .col(text(UnifiedEvents::Resource))
                    .col(text(UnifiedEvents::RemoteId))
                    .col(text(UnifiedEvents::RecordId))
                    .col(tz(UnifiedEvents::OccurredAt))
                    .col(tz(UnifiedEvents::ReceivedAt))
                    .col(text(UnifiedEvents::Source))
                    .col(text_null(UnifiedEvents::Record))
                    .foreign_key(&mut account_fk(
                        UnifiedEvents::Table,
                        UnifiedEvents::AccountId,
                        "fk_unified_events_account_id",
                    ))
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            ("idx_unified_events_id", vec![UnifiedEvents::Id]),
            (
                "idx_unified_events_environment",
                vec![UnifiedEvents::EnvironmentId, UnifiedEvents::Seq],
            ),
            (
                "idx_unified_events_account",
                vec![UnifiedEvents::AccountId, UnifiedEvents::Seq],
            ),
            (
                "idx_unified_events_received_at",
                vec![UnifiedEvents::ReceivedAt],
            ),
            // Reconciliation asks whether a webhook already brought a record's change.
            (
                "idx_unified_events_record",
                vec![UnifiedEvents::AccountId, UnifiedEvents::RemoteId],
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(UnifiedEvents::Table);
            for c in cols {
                index.col(c);
            }
            if name == "idx_unified_events_id" {
                index.unique();
            }
            manager.create_index(index.to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(WebhookAccountKeys::Table)
                    .col(text(WebhookAccountKeys::Provider))
                    .col(text(WebhookAccountKeys::Key))
                    .col(text(WebhookAccountKeys::AccountId))
                    .primary_key(
                        Index::create()
                            .col(WebhookAccountKeys::Provider)
                            .col(WebhookAccountKeys::Key)
                            .col(WebhookAccountKeys::AccountId),
                    )
                    .foreign_key(&mut account_fk(
                        WebhookAccountKeys::Table,
                        WebhookAccountKeys::AccountId,
                        "fk_webhook_account_keys_account_id",
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(WebhookSubscriptions::Table)
                    .col(text(WebhookSubscriptions::Id).primary_key())
                    .col(text(WebhookSubscriptions::AccountId))
                    .col(text_null(WebhookSubscriptions::RemoteId))
                    .col(text(WebhookSubscriptions::State))
                    .col(ColumnDef::new(WebhookSubscriptions::Secret).blob().null())
                    .col(tz_null(WebhookSubscriptions::ExpiresAt))
                    .col(tz_null(WebhookSubscriptions::RenewAt))
                    .col(tz_null(WebhookSubscriptions::LastRenewedAt))
                    .col(tz_null(WebhookSubscriptions::LastDeliveryAt))
                    .col(tz(WebhookSubscriptions::CreatedAt))
                    .col(
                        ColumnDef::new(WebhookSubscriptions::Failures)
                            .integer()
                            .not_null(),
                    )
                    .col(text_null(WebhookSubscriptions::LastError))
                    .col(text_null(WebhookSubscriptions::Claim))
                    .col(tz_null(WebhookSubscriptions::ClaimedUntil))
                    .foreign_key(&mut account_fk(
                        WebhookSubscriptions::Table,
                        WebhookSubscriptions::AccountId,
                        "fk_webhook_subscriptions_account_id",
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_subscriptions_remote_id")
                    .table(WebhookSubscriptions::Table)
                    .col(WebhookSubscriptions::RemoteId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_subscriptions_renew_at")
                    .table(WebhookSubscriptions::Table)
                    .col(WebhookSubscriptions::RenewAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_subscriptions_account")
                    .table(WebhookSubscriptions::Table)
                    .col(WebhookSubscriptions::AccountId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            WebhookSubscriptions::Table.into_iden(),
            WebhookAccountKeys::Table.into_iden(),
            UnifiedEvents::Table.into_iden(),
            WebhookInbox::Table.into_iden(),
            WebhookDeliveries::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
