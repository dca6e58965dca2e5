use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// An invitation of an email address into an org, accepted by the person it names.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "invitation")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    /// Lowercased email address of the person invited.
    pub email: String,
    /// `owner`, `admin`, `member` or `viewer`: the role on acceptance.
    pub role: String,
    /// SHA-256 hex of the invitation token (the token itself is shown once).
    pub token_hash: String,
    /// The admin who invited; null once that user is deleted.
    pub invited_by: Option<Uuid>,
    pub expires_at: DateTimeUtc,
    pub accepted_at: Option<DateTimeUtc>,
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
        from = "Column::InvitedBy",
        to = "super::user::Column::Id",
        on_delete = "SetNull"
    )]
    Inviter,
}

impl Related<super::organization::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Organization.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
