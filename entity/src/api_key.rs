use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// An organization's API key; only the hash of its secret is stored.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "api_key")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    /// The user who created the key; NULL once that user is deleted.
    pub created_by: Option<Uuid>,
    pub label: String,
    /// Public prefix shown to users to recognise the key.
    pub prefix: String,
    #[sea_orm(unique)]
    pub secret_hash: String,
    /// `read` or `write`.
    pub scopes: String,
    pub expires_at: Option<DateTimeUtc>,
    pub last_used_at: Option<DateTimeUtc>,
    pub revoked_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::organization::Entity",
        from = "Column::OrgId",
        to = "super::organization::Column::Id",
        on_delete = "Cascade"
    )]
    Organization,
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::CreatedBy",
        to = "super::user::Column::Id",
        on_delete = "SetNull"
    )]
    User,
    #[sea_orm(has_many = "super::audit_event::Entity")]
    AuditEvent,
}

impl Related<super::organization::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Organization.def()
    }
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl Related<super::audit_event::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::AuditEvent.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
