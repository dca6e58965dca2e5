//! Triggered scans: the scans one `startScan` request queued (one per engine) share a
//! `group_id`, so a client follows them together (`scans(groupId:)`).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("scan"))
                    .add_column(ColumnDef::new(Alias::new("group_id")).uuid().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_scan_group")
                    .table(Alias::new("scan"))
                    .col(Alias::new("group_id"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_scan_group")
                    .table(Alias::new("scan"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("scan"))
                    .drop_column(Alias::new("group_id"))
                    .to_owned(),
            )
            .await
    }
}
