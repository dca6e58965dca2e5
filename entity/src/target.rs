use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Something that gets scanned (an image, a repository, a host...); unique
/// per (org, kind, name).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "target")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub kind: String,
    pub name: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub labels: Json,
    #[sea_orm(column_type = "JsonBinary")]
    pub metadata: Json,
    pub last_scan_at: Option<DateTimeUtc>,
    pub last_score: Option<f64>,
    pub created_at: DateTimeUtc,
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
    #[sea_orm(has_many = "super::scan::Entity")]
    Scan,
    #[sea_orm(has_many = "super::finding::Entity")]
    Finding,
    #[sea_orm(has_many = "super::target_follow::Entity")]
    TargetFollow,
}

impl Related<super::organization::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Organization.def()
    }
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

impl Related<super::target_follow::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::TargetFollow.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
