//! Integrations: outgoing webhooks and their delivery log, in-app
//! notifications and the audit trail.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // webhook
        manager
            .create_table(
                Table::create()
                    .table(Webhook::Table)
                    .col(pk_uuid(Webhook::Id))
                    .col(uuid(Webhook::OrgId))
                    .col(text(Webhook::Url))
                    .col(string(Webhook::Secret))
                    .col(text(Webhook::Events))
                    .col(boolean(Webhook::Active).default(true))
                    .col(timestamp_with_time_zone(Webhook::CreatedAt))
                    .col(timestamp_with_time_zone(Webhook::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webhook_org")
                            .from(Webhook::Table, Webhook::OrgId)
                            .to(Organization::Table, Organization::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_org")
                    .table(Webhook::Table)
                    .col(Webhook::OrgId)
                    .to_owned(),
            )
            .await?;

        // webhook_delivery
        manager
            .create_table(
                Table::create()
                    .table(WebhookDelivery::Table)
                    .col(pk_uuid(WebhookDelivery::Id))
                    .col(uuid(WebhookDelivery::OrgId))
                    .col(uuid(WebhookDelivery::WebhookId))
                    .col(string(WebhookDelivery::Event))
                    .col(text(WebhookDelivery::Payload))
                    .col(integer_null(WebhookDelivery::StatusCode))
                    .col(integer(WebhookDelivery::Attempt).default(0))
                    .col(text_null(WebhookDelivery::Error))
                    .col(timestamp_with_time_zone_null(WebhookDelivery::DeliveredAt))
                    .col(timestamp_with_time_zone(WebhookDelivery::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webhook_delivery_org")
                            .from(WebhookDelivery::Table, WebhookDelivery::OrgId)
                            .to(Organization::Table, Organization::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webhook_delivery_webhook")
                            .from(WebhookDelivery::Table, WebhookDelivery::WebhookId)
                            .to(Webhook::Table, Webhook::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_delivery_webhook_created")
                    .table(WebhookDelivery::Table)
                    .col(WebhookDelivery::WebhookId)
                    .col(WebhookDelivery::CreatedAt)
                    .to_owned(),
            )
            .await?;

        // notification
        manager
            .create_table(
                Table::create()
                    .table(Notification::Table)
                    .col(pk_uuid(Notification::Id))
                    .col(uuid(Notification::OrgId))
                    .col(uuid_null(Notification::UserId))
                    .col(string(Notification::Kind))
                    .col(string(Notification::Title))
                    .col(text(Notification::Body))
                    .col(timestamp_with_time_zone_null(Notification::ReadAt))
                    .col(timestamp_with_time_zone(Notification::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_notification_org")
                            .from(Notification::Table, Notification::OrgId)
                            .to(Organization::Table, Organization::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_notification_user")
                            .from(Notification::Table, Notification::UserId)
                            .to(User::Table, User::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_notification_org_user_created")
                    .table(Notification::Table)
                    .col(Notification::OrgId)
                    .col(Notification::UserId)
                    .col(Notification::CreatedAt)
                    .to_owned(),
            )
            .await?;

        // audit_event
        manager
            .create_table(
                Table::create()
                    .table(AuditEvent::Table)
                    .col(pk_uuid(AuditEvent::Id))
                    .col(uuid(AuditEvent::OrgId))
                    .col(uuid_null(AuditEvent::ActorUserId))
                    .col(uuid_null(AuditEvent::ActorApiKeyId))
                    .col(string(AuditEvent::ActorLabel))
                    .col(string(AuditEvent::Action))
                    .col(string(AuditEvent::ResourceType))
                    .col(string_null(AuditEvent::ResourceId))
                    .col(string_null(AuditEvent::Ip))
                    .col(string_null(AuditEvent::RequestId))
                    .col(text_null(AuditEvent::Details))
                    .col(timestamp_with_time_zone(AuditEvent::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_audit_event_org")
                            .from(AuditEvent::Table, AuditEvent::OrgId)
                            .to(Organization::Table, Organization::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_audit_event_actor_user")
                            .from(AuditEvent::Table, AuditEvent::ActorUserId)
                            .to(User::Table, User::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_audit_event_actor_api_key")
                            .from(AuditEvent::Table, AuditEvent::ActorApiKeyId)
                            .to(ApiKey::Table, ApiKey::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_event_org_created")
                    .table(AuditEvent::Table)
                    .col(AuditEvent::OrgId)
                    .col(AuditEvent::CreatedAt)
                    .to_owned(),
            )
            .await?;

        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Children first; indexes go with their tables.
        manager
            .drop_table(Table::drop().table(AuditEvent::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Notification::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(WebhookDelivery::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Webhook::Table).to_owned())
            .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Organization {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum User {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum ApiKey {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Webhook {
    Table,
    Id,
    OrgId,
    Url,
    Secret,
    Events,
    Active,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WebhookDelivery {
    Table,
    Id,
    OrgId,
    WebhookId,
    Event,
    Payload,
    StatusCode,
    Attempt,
    Error,
    DeliveredAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Notification {
    Table,
    Id,
    OrgId,
    UserId,
    Kind,
    Title,
    Body,
    ReadAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AuditEvent {
    Table,
    Id,
    OrgId,
    ActorUserId,
    ActorApiKeyId,
    ActorLabel,
    Action,
    ResourceType,
    ResourceId,
    Ip,
    RequestId,
    Details,
    CreatedAt,
}
