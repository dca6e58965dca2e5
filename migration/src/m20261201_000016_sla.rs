//! Service-level agreements (issue 17): a per-org policy of days to fix per severity
//! (`sla_policy`, one row per org; no row means the defaults), and an explicit due date a person
//! may set on a finding (`finding.due_at`), which wins over the policy's.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SlaPolicy::Table)
                    .col(pk_uuid(SlaPolicy::OrgId))
                    .col(integer_null(SlaPolicy::CriticalDays))
                    .col(integer_null(SlaPolicy::HighDays))
                    .col(integer_null(SlaPolicy::MediumDays))
                    .col(integer_null(SlaPolicy::LowDays))
                    .col(integer_null(SlaPolicy::InfoDays))
                    .col(string_null(SlaPolicy::UpdatedBy))
                    .col(timestamp_with_time_zone(SlaPolicy::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_sla_policy_org")
                            .from(SlaPolicy::Table, SlaPolicy::OrgId)
                            .to(Organization::Table, Organization::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Finding::Table)
                    .add_column(timestamp_with_time_zone_null(Finding::DueAt))
                    .to_owned(),
            )
            .await?;
        // New-vs-fixed and time-to-fix read the org's fixed findings by when they were fixed.
        manager
            .create_index(
                Index::create()
                    .name("ix_finding_org_fixed_at")
                    .table(Finding::Table)
                    .col(Finding::OrgId)
                    .col(Finding::FixedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_finding_org_fixed_at")
                    .table(Finding::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Finding::Table)
                    .drop_column(Finding::DueAt)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(SlaPolicy::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum SlaPolicy {
    Table,
    OrgId,
    CriticalDays,
    HighDays,
    MediumDays,
    LowDays,
    InfoDays,
    UpdatedBy,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Organization {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Finding {
    Table,
    OrgId,
    FixedAt,
    DueAt,
}
