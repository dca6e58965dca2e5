//! Invitations: an org admin invites an email address; the person accepts (signed in, or by
//! setting a password with the invitation's token when they have no account yet). No existing
//! table fits: a membership is the accepted state, a session belongs to a user who exists.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Invitation::Table)
                    .col(pk_uuid(Invitation::Id))
                    .col(uuid(Invitation::OrgId))
                    .col(string(Invitation::Email))
                    .col(string(Invitation::Role))
                    .col(string(Invitation::TokenHash))
                    .col(uuid_null(Invitation::InvitedBy))
                    .col(timestamp_with_time_zone(Invitation::ExpiresAt))
                    .col(timestamp_with_time_zone_null(Invitation::AcceptedAt))
                    .col(timestamp_with_time_zone(Invitation::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_invitation_org")
                            .from(Invitation::Table, Invitation::OrgId)
                            .to(Organization::Table, Organization::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_invitation_inviter")
                            .from(Invitation::Table, Invitation::InvitedBy)
                            .to(User::Table, User::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_invitation_token_hash")
                    .table(Invitation::Table)
                    .col(Invitation::TokenHash)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_invitation_email")
                    .table(Invitation::Table)
                    .col(Invitation::Email)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_invitation_org_created")
                    .table(Invitation::Table)
                    .col(Invitation::OrgId)
                    .col(Invitation::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Invitation::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Invitation {
    Table,
    Id,
    OrgId,
    Email,
    Role,
    TokenHash,
    InvitedBy,
    ExpiresAt,
    AcceptedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Organization {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum User {
    Table,
    Id,
}
