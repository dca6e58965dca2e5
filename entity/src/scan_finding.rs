use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A finding as seen in one scan, with how it changed in that scan.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "scan_finding")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub scan_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub finding_id: Uuid,
    pub org_id: Uuid,
    pub occurrences: i32,
    /// `new`, `unchanged` or `reopened`.
    pub change: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::scan::Entity",
        from = "Column::ScanId",
        to = "super::scan::Column::Id",
        on_delete = "Cascade"
    )]
    Scan,
    #[sea_orm(
        belongs_to = "super::finding::Entity",
        from = "Column::FindingId",
        to = "super::finding::Column::Id",
        on_delete = "Cascade"
    )]
    Finding,
    #[sea_orm(
        belongs_to = "super::organization::Entity",
        from = "Column::OrgId",
        to = "super::organization::Column::Id",
        on_delete = "Cascade"
    )]
    Organization,
}

impl Related<super::scan::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Scan.def()
    }
}

impl Related<super::finding::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Finding.def()
    }
}

impl Related<super::organization::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Organization.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
