use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Findings matching every condition set here (target, scanner, rule id, path glob) are
/// suppressed: left out of counts, SLA and score until the rule is removed or lapses.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "suppression_rule")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub target_id: Option<Uuid>,
    pub scanner: Option<String>,
    pub rule_id: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub path_glob: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub reason: String,
    pub expires_at: Option<DateTimeUtc>,
    pub created_by: String,
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
        belongs_to = "super::target::Entity",
        from = "Column::TargetId",
        to = "super::target::Column::Id",
        on_delete = "Cascade"
    )]
    Target,
}

impl ActiveModelBehavior for ActiveModel {}
