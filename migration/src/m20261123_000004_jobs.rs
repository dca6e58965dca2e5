//! Jobs: the durable work queue.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Job::Table)
                    .col(pk_uuid(Job::Id))
                    .col(string(Job::Kind))
                    .col(uuid_null(Job::OrgId))
                    .col(uuid_null(Job::ScanId))
                    .col(json_binary(Job::Payload))
                    .col(string(Job::Status))
                    .col(integer(Job::Attempts).default(0))
                    .col(integer(Job::MaxAttempts).default(5))
                    .col(timestamp_with_time_zone(Job::RunAt))
                    .col(string_null(Job::LeaseOwner))
                    .col(timestamp_with_time_zone_null(Job::LeaseExpiresAt))
                    .col(text_null(Job::LastError))
                    .col(timestamp_with_time_zone(Job::CreatedAt))
                    .col(timestamp_with_time_zone(Job::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_job_org")
                            .from(Job::Table, Job::OrgId)
                            .to(Organization::Table, Organization::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_job_scan")
                            .from(Job::Table, Job::ScanId)
                            .to(Scan::Table, Scan::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_job_status_run_at")
                    .table(Job::Table)
                    .col(Job::Status)
                    .col(Job::RunAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_job_scan")
                    .table(Job::Table)
                    .col(Job::ScanId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Job::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Organization {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Scan {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Job {
    Table,
    Id,
    Kind,
    OrgId,
    ScanId,
    Payload,
    Status,
    Attempts,
    MaxAttempts,
    RunAt,
    LeaseOwner,
    LeaseExpiresAt,
    LastError,
    CreatedAt,
    UpdatedAt,
}
