//! Webhooks get what their API needs: a description, filters (one target, a minimum
//! severity), a previous secret still signing during a rotation's overlap, and the state of a
//! failing endpoint; deliveries get their state, latency and a bounded excerpt of the answer.
//! One column per `ALTER TABLE`, as SQLite requires.

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
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
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
    Status,
    LatencyMs,
    ResponseExcerpt,
    LastAttemptAt,
}
