//! Identity: organizations, users, memberships, sessions and API keys.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // organization
        manager
            .create_table(
                Table::create()
                    .table(Organization::Table)
                    .col(pk_uuid(Organization::Id))
                    .col(string(Organization::Slug))
                    .col(string(Organization::Name))
                    .col(timestamp_with_time_zone(Organization::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_organization_slug")
                    .table(Organization::Table)
                    .col(Organization::Slug)
                    .unique()
                    .to_owned(),
            )
            .await?;

        // user
        manager
            .create_table(
                Table::create()
                    .table(User::Table)
                    .col(pk_uuid(User::Id))
                    .col(string(User::Email))
                    .col(string(User::PasswordHash))
                    .col(string_null(User::DisplayName))
                    .col(boolean(User::IsActive).default(true))
                    .col(timestamp_with_time_zone(User::CreatedAt))
                    .col(timestamp_with_time_zone(User::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_user_email")
                    .table(User::Table)
                    .col(User::Email)
                    .unique()
                    .to_owned(),
            )
            .await?;

        // membership
        manager
            .create_table(
                Table::create()
                    .table(Membership::Table)
                    .col(pk_uuid(Membership::Id))
                    .col(uuid(Membership::OrgId))
                    .col(uuid(Membership::UserId))
                    .col(string(Membership::Role))
                    .col(timestamp_with_time_zone(Membership::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_membership_org")
                            .from(Membership::Table, Membership::OrgId)
                            .to(Organization::Table, Organization::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_membership_user")
                            .from(Membership::Table, Membership::UserId)
                            .to(User::Table, User::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_membership_org_user")
                    .table(Membership::Table)
                    .col(Membership::OrgId)
                    .col(Membership::UserId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_membership_user")
                    .table(Membership::Table)
                    .col(Membership::UserId)
                    .to_owned(),
            )
            .await?;

        // session
        manager
            .create_table(
                Table::create()
                    .table(Session::Table)
                    .col(pk_uuid(Session::Id))
                    .col(uuid(Session::UserId))
                    .col(uuid(Session::OrgId))
                    .col(string(Session::RefreshHash))
                    .col(integer(Session::Generation).default(0))
                    .col(timestamp_with_time_zone(Session::ExpiresAt))
                    .col(timestamp_with_time_zone_null(Session::RevokedAt))
                    .col(timestamp_with_time_zone(Session::CreatedAt))
                    .col(timestamp_with_time_zone_null(Session::LastUsedAt))
                    .col(string_null(Session::Ip))
                    .col(text_null(Session::UserAgent))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_session_user")
                            .from(Session::Table, Session::UserId)
                            .to(User::Table, User::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_session_org")
                            .from(Session::Table, Session::OrgId)
                            .to(Organization::Table, Organization::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_session_user")
                    .table(Session::Table)
                    .col(Session::UserId)
                    .to_owned(),
            )
            .await?;

        // api_key
        manager
            .create_table(
                Table::create()
                    .table(ApiKey::Table)
                    .col(pk_uuid(ApiKey::Id))
                    .col(uuid(ApiKey::OrgId))
                    .col(uuid_null(ApiKey::CreatedBy))
                    .col(string(ApiKey::Label))
                    .col(string(ApiKey::Prefix))
                    .col(string(ApiKey::SecretHash))
                    .col(string(ApiKey::Scopes))
                    .col(timestamp_with_time_zone_null(ApiKey::ExpiresAt))
                    .col(timestamp_with_time_zone_null(ApiKey::LastUsedAt))
                    .col(timestamp_with_time_zone_null(ApiKey::RevokedAt))
                    .col(timestamp_with_time_zone(ApiKey::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_api_key_org")
                            .from(ApiKey::Table, ApiKey::OrgId)
                            .to(Organization::Table, Organization::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_api_key_created_by")
                            .from(ApiKey::Table, ApiKey::CreatedBy)
                            .to(User::Table, User::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_api_key_secret_hash")
                    .table(ApiKey::Table)
                    .col(ApiKey::SecretHash)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_api_key_org")
                    .table(ApiKey::Table)
                    .col(ApiKey::OrgId)
                    .to_owned(),
            )
            .await?;

        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Children first; indexes go with their tables.
        manager
            .drop_table(Table::drop().table(ApiKey::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Session::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Membership::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(User::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Organization::Table).to_owned())
            .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Organization {
    Table,
    Id,
    Slug,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum User {
    Table,
    Id,
    Email,
    PasswordHash,
    DisplayName,
    IsActive,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Membership {
    Table,
    Id,
    OrgId,
    UserId,
    Role,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Session {
    Table,
    Id,
    UserId,
    OrgId,
    RefreshHash,
    Generation,
    ExpiresAt,
    RevokedAt,
    CreatedAt,
    LastUsedAt,
    Ip,
    UserAgent,
}

#[derive(DeriveIden)]
enum ApiKey {
    Table,
    Id,
    OrgId,
    CreatedBy,
    Label,
    Prefix,
    SecretHash,
    Scopes,
    ExpiresAt,
    LastUsedAt,
    RevokedAt,
    CreatedAt,
}
