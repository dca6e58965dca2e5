//! A per-scan sequence number for progress events. Events of one scan come from several
//! processes (the API that queues or cancels it, each worker attempt), whose clocks may
//! disagree, so subscribers order them by this number, which every write of the scan row's
//! progress increments in the same statement.

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
                    .add_column(
                        ColumnDef::new(Alias::new("progress_seq"))
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("scan"))
                    .drop_column(Alias::new("progress_seq"))
                    .to_owned(),
            )
            .await
    }
}
