//! Accounts: a user an admin requires to choose a new password (`user.must_change_password`),
//! and single-use password-reset tokens sent by email (`password_reset`, only their SHA-256 is
//! kept). A session cannot carry a reset: the person resetting has no session.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(User::Table)
                    .add_column(boolean(User::MustChangePassword).default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PasswordReset::Table)
                    .col(pk_uuid(PasswordReset::Id))
                    .col(uuid(PasswordReset::UserId))
                    .col(string(PasswordReset::TokenHash))
                    .col(timestamp_with_time_zone(PasswordReset::ExpiresAt))
                    .col(timestamp_with_time_zone_null(PasswordReset::UsedAt))
                    .col(timestamp_with_time_zone(PasswordReset::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_password_reset_user")
                            .from(PasswordReset::Table, PasswordReset::UserId)
                            .to(User::Table, User::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_password_reset_token_hash")
                    .table(PasswordReset::Table)
                    .col(PasswordReset::TokenHash)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_password_reset_user")
                    .table(PasswordReset::Table)
                    .col(PasswordReset::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PasswordReset::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(User::Table)
                    .drop_column(User::MustChangePassword)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum PasswordReset {
    Table,
    Id,
    UserId,
    TokenHash,
    ExpiresAt,
    UsedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum User {
    Table,
    Id,
    MustChangePassword,
}
