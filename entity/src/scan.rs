use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One scan of a target: an uploaded report or an engine run, with its
/// severity counts and diff against the target's previous findings.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "scan")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub target_id: Uuid,
    /// `queued`, `running`, `complete`, `failed` or `cancelled`.
    pub status: String,
    /// `upload` or `engine`.
    pub source: String,
    pub scanner_name: String,
    pub scanner_version: Option<String>,
    pub format: Option<String>,
    pub policy_tier: Option<String>,
    pub score: Option<f64>,
    pub count_critical: i32,
    pub count_high: i32,
    pub count_medium: i32,
    pub count_low: i32,
    pub count_info: i32,
    pub findings_total: i32,
    pub findings_new: i32,
    pub findings_fixed: i32,
    pub findings_unchanged: i32,
    /// Object-store key of the raw report.
    pub raw_key: Option<String>,
    pub raw_sha256: Option<String>,
    pub raw_size: Option<i64>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub progress: Option<Json>,
    /// Incremented by every write of `progress`: the order of the scan's events.
    pub progress_seq: i64,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    /// Unique per org when set.
    pub idempotency_key: Option<String>,
    /// Label of the actor that created the scan.
    pub created_by: Option<String>,
    pub scanned_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    /// The scans one triggered-scan request queued (one per engine) share this id.
    pub group_id: Option<Uuid>,
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
    #[sea_orm(has_many = "super::scan_finding::Entity")]
    ScanFinding,
    #[sea_orm(has_many = "super::job::Entity")]
    Job,
    /// Findings first seen in this scan (`finding.first_scan_id`).
    #[sea_orm(has_many = "super::finding::Entity", via_rel = "Relation::FirstScan")]
    FirstSeenFinding,
    /// Findings last seen in this scan (`finding.last_scan_id`).
    #[sea_orm(has_many = "super::finding::Entity", via_rel = "Relation::LastScan")]
    LastSeenFinding,
}

impl Related<super::organization::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Organization.def()
    }
}

impl Related<super::target::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Target.def()
    }
}

impl Related<super::scan_finding::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::ScanFinding.def()
    }
}

impl Related<super::job::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Job.def()
    }
}

/// Findings seen in this scan, through `scan_finding`.
impl Related<super::finding::Entity> for Entity {
    fn to() -> RelationDef {
        super::scan_finding::Relation::Finding.def()
    }

    fn via() -> Option<RelationDef> {
        Some(super::scan_finding::Relation::Scan.def().rev())
    }
}

impl ActiveModelBehavior for ActiveModel {}
