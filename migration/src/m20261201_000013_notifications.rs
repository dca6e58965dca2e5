//! Per-user notifications get what their API needs: the target, scan and worst severity they
//! are about (`notification.target_id`, `.scan_id`, `.severity`), and an index for a person's
//! unread ones. `target_follow` says who follows which target (a follower is notified of its
//! new findings and failed scans); `notification_preference` holds each person's choices per
//! org (event kinds, minimum severity, email). One column per `ALTER TABLE`, as SQLite requires.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            uuid_null(Notification::TargetId),
            uuid_null(Notification::ScanId),
            string_null(Notification::Severity),
        ];
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(Notification::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_notification_user_org_read")
                    .table(Notification::Table)
                    .col(Notification::UserId)
                    .col(Notification::OrgId)
                    .col(Notification::ReadAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(TargetFollow::Table)
                    .col(uuid(TargetFollow::UserId))
                    .col(uuid(TargetFollow::TargetId))
                    .col(uuid(TargetFollow::OrgId))
                    .col(timestamp_with_time_zone(TargetFollow::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(TargetFollow::UserId)
                            .col(TargetFollow::TargetId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_target_follow_user")
                            .from(TargetFollow::Table, TargetFollow::UserId)
                            .to(User::Table, User::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_target_follow_target")
                            .from(TargetFollow::Table, TargetFollow::TargetId)
                            .to(Target::Table, Target::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_target_follow_org")
                            .from(TargetFollow::Table, TargetFollow::OrgId)
                            .to(Organization::Table, Organization::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_target_follow_target")
                    .table(TargetFollow::Table)
                    .col(TargetFollow::TargetId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(NotificationPreference::Table)
                    .col(uuid(NotificationPreference::UserId))
                    .col(uuid(NotificationPreference::OrgId))
                    .col(text(NotificationPreference::Kinds))
                    .col(string(NotificationPreference::MinSeverity))
                    .col(boolean(NotificationPreference::Email).default(true))
                    .col(timestamp_with_time_zone(NotificationPreference::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(NotificationPreference::UserId)
                            .col(NotificationPreference::OrgId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_notification_preference_user")
                            .from(
                                NotificationPreference::Table,
                                NotificationPreference::UserId,
                            )
                            .to(User::Table, User::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_notification_preference_org")
                            .from(NotificationPreference::Table, NotificationPreference::OrgId)
                            .to(Organization::Table, Organization::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(NotificationPreference::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(TargetFollow::Table).to_owned())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_notification_user_org_read")
                    .table(Notification::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            Notification::Severity,
            Notification::ScanId,
            Notification::TargetId,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Notification::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Notification {
    Table,
    UserId,
    OrgId,
    ReadAt,
    TargetId,
    ScanId,
    Severity,
}

#[derive(DeriveIden)]
enum TargetFollow {
    Table,
    UserId,
    TargetId,
    OrgId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum NotificationPreference {
    Table,
    UserId,
    OrgId,
    Kinds,
    MinSeverity,
    Email,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum User {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Target {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Organization {
    Table,
    Id,
}
