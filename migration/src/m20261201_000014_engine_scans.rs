//! Triggered scans: the scans one `startScan` request queued (one per engine) share a
//! `group_id`, so a client follows them together (`scans(groupId:)`); and `scan_schedule`,
//! engine scans started by a cron expression in a time zone. A firing is claimed by moving
//! `next_run_at` with a conditional update, so each runs once across replicas.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Scan::Table)
                    .add_column(uuid_null(Scan::GroupId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_scan_group")
                    .table(Scan::Table)
                    .col(Scan::GroupId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ScanSchedule::Table)
                    .col(pk_uuid(ScanSchedule::Id))
                    .col(uuid(ScanSchedule::OrgId))
                    .col(uuid(ScanSchedule::TargetId))
                    .col(json_binary(ScanSchedule::Engines))
                    .col(json_binary(ScanSchedule::Source))
                    .col(string(ScanSchedule::Cron))
                    .col(string(ScanSchedule::TimeZone))
                    .col(boolean(ScanSchedule::Enabled))
                    .col(timestamp_with_time_zone_null(ScanSchedule::NextRunAt))
                    .col(timestamp_with_time_zone_null(ScanSchedule::LastRunAt))
                    .col(uuid_null(ScanSchedule::LastGroupId))
                    .col(string_null(ScanSchedule::CreatedBy))
                    .col(timestamp_with_time_zone(ScanSchedule::CreatedAt))
                    .col(timestamp_with_time_zone(ScanSchedule::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_scan_schedule_org")
                            .from(ScanSchedule::Table, ScanSchedule::OrgId)
                            .to(Organization::Table, Organization::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_scan_schedule_target")
                            .from(ScanSchedule::Table, ScanSchedule::TargetId)
                            .to(Target::Table, Target::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_scan_schedule_due")
                    .table(ScanSchedule::Table)
                    .col(ScanSchedule::Enabled)
                    .col(ScanSchedule::NextRunAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ScanSchedule::Table).to_owned())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_scan_group")
                    .table(Scan::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Scan::Table)
                    .drop_column(Scan::GroupId)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Scan {
    Table,
    GroupId,
}

#[derive(DeriveIden)]
enum ScanSchedule {
    Table,
    Id,
    OrgId,
    TargetId,
    Engines,
    Source,
    Cron,
    TimeZone,
    Enabled,
    NextRunAt,
    LastRunAt,
    LastGroupId,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
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
