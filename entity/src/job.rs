use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A unit of background work in the durable queue, leased by one worker at a
/// time and retried until `max_attempts`.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "job")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub kind: String,
    pub org_id: Option<Uuid>,
    pub scan_id: Option<Uuid>,
    #[sea_orm(column_type = "JsonBinary")]
    pub payload: Json,
    /// `queued`, `running`, `done` or `failed`.
    pub status: String,
    pub attempts: i32,
    pub max_attempts: i32,
    /// Not to be picked up before this time.
    pub run_at: DateTimeUtc,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
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
    #[sea_orm(
        belongs_to = "super::scan::Entity",
        from = "Column::ScanId",
        to = "super::scan::Column::Id",
        on_delete = "Cascade"
    )]
    Scan,
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

impl ActiveModelBehavior for ActiveModel {}
