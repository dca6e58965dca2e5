//! TOTP MFA (RFC 6238): one authenticator per user (its secret sealed with a server key, the
//! last time step it accepted, so a code cannot be replayed), single-use recovery codes kept as
//! digests, and an org setting that requires MFA of its admins and owners.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(MfaFactor::Table)
                    .col(pk_uuid(MfaFactor::UserId))
                    .col(text(MfaFactor::SecretSealed))
                    .col(timestamp_with_time_zone_null(MfaFactor::ConfirmedAt))
                    .col(big_integer_null(MfaFactor::LastStep))
                    .col(timestamp_with_time_zone(MfaFactor::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_mfa_factor_user")
                            .from(MfaFactor::Table, MfaFactor::UserId)
                            .to(User::Table, User::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MfaRecoveryCode::Table)
                    .col(pk_uuid(MfaRecoveryCode::Id))
                    .col(uuid(MfaRecoveryCode::UserId))
                    .col(string(MfaRecoveryCode::CodeHash))
                    .col(timestamp_with_time_zone_null(MfaRecoveryCode::UsedAt))
                    .col(timestamp_with_time_zone(MfaRecoveryCode::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_mfa_recovery_code_user")
                            .from(MfaRecoveryCode::Table, MfaRecoveryCode::UserId)
                            .to(User::Table, User::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_mfa_recovery_code_user")
                    .table(MfaRecoveryCode::Table)
                    .col(MfaRecoveryCode::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Organization::Table)
                    .add_column(boolean(Organization::RequireAdminMfa).default(false))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Organization::Table)
                    .drop_column(Organization::RequireAdminMfa)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(MfaRecoveryCode::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(MfaFactor::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum MfaFactor {
    Table,
    UserId,
    SecretSealed,
    ConfirmedAt,
    LastStep,
    CreatedAt,
}

#[derive(DeriveIden)]
enum MfaRecoveryCode {
    Table,
    Id,
    UserId,
    CodeHash,
    UsedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum User {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Organization {
    Table,
    RequireAdminMfa,
}
