//! Remediation workflow: findings get an assignee (a member of the org) and a suppression mark
//! (the suppression rule that matched, and when that rule lapses); `suppression_rule` holds the
//! rules. No index on the new finding columns: each would cost every finding insert, and the
//! reads filtering on them go through the org's or target's findings anyway.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            uuid_null(Finding::AssigneeId),
            uuid_null(Finding::SuppressedBy),
            timestamp_with_time_zone_null(Finding::SuppressedUntil),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Finding::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(SuppressionRule::Table)
                    .col(pk_uuid(SuppressionRule::Id))
                    .col(uuid(SuppressionRule::OrgId))
                    .col(uuid_null(SuppressionRule::TargetId))
                    .col(string_null(SuppressionRule::Scanner))
                    .col(string_null(SuppressionRule::RuleId))
                    .col(text_null(SuppressionRule::PathGlob))
                    .col(text(SuppressionRule::Reason))
                    .col(timestamp_with_time_zone_null(SuppressionRule::ExpiresAt))
                    .col(string(SuppressionRule::CreatedBy))
                    .col(timestamp_with_time_zone(SuppressionRule::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_suppression_rule_org")
                            .from(SuppressionRule::Table, SuppressionRule::OrgId)
                            .to(Organization::Table, Organization::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_suppression_rule_target")
                            .from(SuppressionRule::Table, SuppressionRule::TargetId)
                            .to(Target::Table, Target::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_suppression_rule_org_created")
                    .table(SuppressionRule::Table)
                    .col(SuppressionRule::OrgId)
                    .col(SuppressionRule::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_suppression_rule_target")
                    .table(SuppressionRule::Table)
                    .col(SuppressionRule::TargetId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SuppressionRule::Table).to_owned())
            .await?;
        for column in [
            Finding::AssigneeId,
            Finding::SuppressedBy,
            Finding::SuppressedUntil,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Finding::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Finding {
    Table,
    AssigneeId,
    SuppressedBy,
    SuppressedUntil,
}

#[derive(DeriveIden)]
enum SuppressionRule {
    Table,
    Id,
    OrgId,
    TargetId,
    Scanner,
    RuleId,
    PathGlob,
    Reason,
    ExpiresAt,
    CreatedBy,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Organization {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Target {
    Table,
    Id,
}
