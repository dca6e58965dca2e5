use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A user's TOTP authenticator (at most one); pending until confirmed with a first code.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "mfa_factor")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    /// The TOTP secret, sealed (AES-256-GCM) with a key derived from the server secret.
    pub secret_sealed: String,
    /// When the first code confirmed the enrolment; MFA is enabled from then on.
    pub confirmed_at: Option<DateTimeUtc>,
    /// The last 30-second time step a code was accepted for: no code of it or before is
    /// accepted again.
    pub last_step: Option<i64>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id",
        on_delete = "Cascade"
    )]
    User,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
