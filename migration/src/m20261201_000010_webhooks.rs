//! Webhooks get what their API needs: a description, filters (one target, a minimum
//! severity), a previous secret still signing during a rotation's overlap, and the state of a
//! failing endpoint; deliveries get their state, latency and a bounded excerpt of the answer.
//! One column per `ALTER TABLE`, as SQLite requires. Every attempt is kept in
//! `webhook_attempt`, the delivery log's detail.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let webhook_columns = [
            text_null(Webhook::Description),
            uuid_null(Webhook::TargetId),
            string_null(Webhook::MinSeverity),
            string_null(Webhook::PreviousSecret),
            timestamp_with_time_zone_null(Webhook::PreviousSecretExpiresAt),
            timestamp_with_time_zone_null(Webhook::FailingSince),
            text_null(Webhook::DisabledReason),
        ];
        for mut column in webhook_columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(Webhook::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        let mut status = string(WebhookDelivery::Status);
        status.default("pending");
        let delivery_columns = [
            status,
            integer_null(WebhookDelivery::LatencyMs),
            text_null(WebhookDelivery::ResponseExcerpt),
            timestamp_with_time_zone_null(WebhookDelivery::LastAttemptAt),
        ];
        for mut column in delivery_columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(WebhookDelivery::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(WebhookAttempt::Table)
                    .col(pk_uuid(WebhookAttempt::Id))
                    .col(uuid(WebhookAttempt::OrgId))
                    .col(uuid(WebhookAttempt::DeliveryId))
                    .col(timestamp_with_time_zone(WebhookAttempt::AttemptedAt))
                    .col(integer_null(WebhookAttempt::StatusCode))
                    .col(integer_null(WebhookAttempt::LatencyMs))
                    .col(text_null(WebhookAttempt::ResponseExcerpt))
                    .col(text_null(WebhookAttempt::Error))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webhook_attempt_org")
                            .from(WebhookAttempt::Table, WebhookAttempt::OrgId)
                            .to(Organization::Table, Organization::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webhook_attempt_delivery")
                            .from(WebhookAttempt::Table, WebhookAttempt::DeliveryId)
                            .to(WebhookDelivery::Table, WebhookDelivery::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_attempt_delivery_at")
                    .table(WebhookAttempt::Table)
                    .col(WebhookAttempt::DeliveryId)
                    .col(WebhookAttempt::AttemptedAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebhookAttempt::Table).to_owned())
            .await?;
        for column in [
            WebhookDelivery::Status,
            WebhookDelivery::LatencyMs,
            WebhookDelivery::ResponseExcerpt,
            WebhookDelivery::LastAttemptAt,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(WebhookDelivery::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [
            Webhook::Description,
            Webhook::TargetId,
            Webhook::MinSeverity,
            Webhook::PreviousSecret,
            Webhook::PreviousSecretExpiresAt,
            Webhook::FailingSince,
            Webhook::DisabledReason,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Webhook::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Webhook {
    Table,
    Description,
    TargetId,
    MinSeverity,
    PreviousSecret,
    PreviousSecretExpiresAt,
    FailingSince,
    DisabledReason,
}

#[derive(DeriveIden)]
enum WebhookDelivery {
    Table,
    Id,
    Status,
    LatencyMs,
    ResponseExcerpt,
    LastAttemptAt,
}

#[derive(DeriveIden)]
enum WebhookAttempt {
    Table,
    Id,
    OrgId,
    DeliveryId,
    AttemptedAt,
    StatusCode,
    LatencyMs,
    ResponseExcerpt,
    Error,
}

#[derive(DeriveIden)]
enum Organization {
    Table,
    Id,
}
