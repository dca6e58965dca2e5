//! Worker heartbeats: every process that runs background workers keeps one row fresh, so any
//! process can tell how many workers are alive (health), whichever process runs them.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WorkerHeartbeat::Table)
                    .col(string(WorkerHeartbeat::Id).primary_key())
                    .col(integer(WorkerHeartbeat::Workers))
                    .col(timestamp_with_time_zone(WorkerHeartbeat::StartedAt))
                    .col(timestamp_with_time_zone(WorkerHeartbeat::SeenAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_worker_heartbeat_seen_at")
                    .table(WorkerHeartbeat::Table)
                    .col(WorkerHeartbeat::SeenAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WorkerHeartbeat::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum WorkerHeartbeat {
    Table,
    Id,
    Workers,
    StartedAt,
    SeenAt,
}
