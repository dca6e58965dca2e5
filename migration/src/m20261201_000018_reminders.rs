//! Reminders sent once: `finding.risk_notice_for` is the expiry of the accepted risk whose
//! `risk_acceptance.expiring` notice went out, so each acceptance is announced once however
//! many reminder runs see it (a new acceptance, with a new expiry, is announced again);
//! `finding.sla_breach_noticed_at` is when its `sla.breached` notice went out (once per
//! finding).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Finding::Table)
                    .add_column(timestamp_with_time_zone_null(Finding::RiskNoticeFor))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Finding::Table)
                    .add_column(timestamp_with_time_zone_null(Finding::SlaBreachNoticedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Finding::Table)
                    .drop_column(Finding::SlaBreachNoticedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Finding::Table)
                    .drop_column(Finding::RiskNoticeFor)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Finding {
    Table,
    RiskNoticeFor,
    SlaBreachNoticedAt,
}
