use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A person's notification choices in one org; without a row, the defaults apply.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "notification_preference")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub org_id: Uuid,
    /// JSON array of the event kinds wanted (`finding.new`, `scan.failed`).
    #[sea_orm(column_type = "Text")]
    pub kinds: String,
    /// The least severe finding that notifies (`critical` … `info`).
    pub min_severity: String,
    /// Whether notifications are also mailed (when a relay is configured).
    pub email: bool,
    pub updated_at: DateTimeUtc,
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
    #[sea_orm(
        belongs_to = "super::organization::Entity",
        from = "Column::OrgId",
        to = "super::organization::Column::Id",
        on_delete = "Cascade"
    )]
    Organization,
}

impl ActiveModelBehavior for ActiveModel {}
