use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// An org's service-level agreement: days to fix a finding per severity. `None` means no
/// SLA for that severity. An org without a row has the defaults (the app knows them).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "sla_policy")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub org_id: Uuid,
    pub critical_days: Option<i32>,
    pub high_days: Option<i32>,
    pub medium_days: Option<i32>,
    pub low_days: Option<i32>,
    pub info_days: Option<i32>,
    /// Who changed it last.
    pub updated_by: Option<String>,
    pub updated_at: DateTimeUtc,
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
}

impl Related<super::organization::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Organization.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
