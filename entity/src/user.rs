use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A person who can log in; belongs to organizations through `membership`.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "user")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Stored lowercase.
    #[sea_orm(unique)]
    pub email: String,
    pub password_hash: String,
    pub display_name: Option<String>,
    pub is_active: bool,
    /// Set by an admin: the next sign-in must choose a new password first.
    pub must_change_password: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::membership::Entity")]
    Membership,
    #[sea_orm(has_many = "super::session::Entity")]
    Session,
    /// API keys this user created (`api_key.created_by`).
    #[sea_orm(has_many = "super::api_key::Entity")]
    ApiKey,
    /// Comments this user wrote (`comment.author_id`).
    #[sea_orm(has_many = "super::comment::Entity")]
    Comment,
    #[sea_orm(has_many = "super::notification::Entity")]
    Notification,
    /// Audit events this user performed (`audit_event.actor_user_id`).
    #[sea_orm(has_many = "super::audit_event::Entity")]
    AuditEvent,
}

impl Related<super::membership::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Membership.def()
    }
}

impl Related<super::session::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Session.def()
    }
}

impl Related<super::api_key::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::ApiKey.def()
    }
}

impl Related<super::comment::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Comment.def()
    }
}

impl Related<super::notification::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Notification.def()
    }
}

impl Related<super::audit_event::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::AuditEvent.def()
    }
}

/// Organizations the user is a member of, through `membership`.
impl Related<super::organization::Entity> for Entity {
    fn to() -> RelationDef {
        super::membership::Relation::Organization.def()
    }

    fn via() -> Option<RelationDef> {
        Some(super::membership::Relation::User.def().rev())
    }
}

impl ActiveModelBehavior for ActiveModel {}
