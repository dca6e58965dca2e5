use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Engine scans of one target started by a cron expression in a time zone.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "scan_schedule")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub target_id: Uuid,
    /// Engine names (a JSON array).
    #[sea_orm(column_type = "JsonBinary")]
    pub engines: Json,
    /// The source, as an engine job's payload names it (a server directory or a git repository).
    #[sea_orm(column_type = "JsonBinary")]
    pub source: Json,
    /// Five fields (minute hour day-of-month month day-of-week), or six with seconds first.
    pub cron: String,
    /// An IANA time zone (`Europe/Paris`), in which `cron` is read.
    pub time_zone: String,
    pub enabled: bool,
    /// The next firing; moved forward by whoever claims a firing. Absent while disabled.
    pub next_run_at: Option<DateTimeUtc>,
    pub last_run_at: Option<DateTimeUtc>,
    /// The scans of the latest firing.
    pub last_group_id: Option<Uuid>,
    pub created_by: Option<String>,
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
        belongs_to = "super::target::Entity",
        from = "Column::TargetId",
        to = "super::target::Column::Id",
        on_delete = "Cascade"
    )]
    Target,
}

impl ActiveModelBehavior for ActiveModel {}
