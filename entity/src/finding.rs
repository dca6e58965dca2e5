use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A de-duplicated finding on a target, identified by its fingerprint; tracks
/// its lifecycle across scans and its triage state.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "finding")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub target_id: Uuid,
    pub scanner: String,
    /// Unique per target.
    pub fingerprint: String,
    pub rule_id: String,
    #[sea_orm(column_type = "Text")]
    pub title: String,
    /// `critical`, `high`, `medium`, `low` or `info`.
    pub severity: String,
    /// JSON array of strings as text, e.g. `["CVE-2024-1"]`.
    #[sea_orm(column_type = "Text")]
    pub cve_ids: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub location_path: Option<String>,
    pub location_line: Option<i32>,
    /// Package URL of the affected component.
    #[sea_orm(column_type = "Text", nullable)]
    pub component: Option<String>,
    /// The result's own text; its rule's description follows it when shown.
    #[sea_orm(column_type = "Text")]
    pub description: String,
    /// The rule row holding what every finding of its rule shares (description, remediation,
    /// CWEs). No foreign key: a per-row check on every insert that no query needs.
    pub rule_ref: Option<Uuid>,
    pub occurrences: i32,
    /// `open` or `fixed`.
    pub status: String,
    pub first_seen_at: DateTimeUtc,
    pub last_seen_at: DateTimeUtc,
    pub fixed_at: Option<DateTimeUtc>,
    pub first_scan_id: Option<Uuid>,
    pub last_scan_id: Option<Uuid>,
    /// Defaults to `untriaged` in the database.
    pub triage_state: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub triage_note: Option<String>,
    pub triage_expires_at: Option<DateTimeUtc>,
    pub triaged_by: Option<String>,
    pub triaged_at: Option<DateTimeUtc>,
    /// The member who is to fix it.
    pub assignee_id: Option<Uuid>,
    /// The suppression rule that hides it from counts, SLA and score.
    pub suppressed_by: Option<Uuid>,
    /// When that rule lapses; the finding counts again from then on.
    pub suppressed_until: Option<DateTimeUtc>,
    /// The accepted risk's expiry whose `risk_acceptance.expiring` notice went out.
    pub risk_notice_for: Option<DateTimeUtc>,
    /// When its `sla.breached` notice went out (once per finding).
    pub sla_breach_noticed_at: Option<DateTimeUtc>,
    /// A due date a person set; when absent the org's SLA policy gives one.
    pub due_at: Option<DateTimeUtc>,
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
    #[sea_orm(
        belongs_to = "super::scan::Entity",
        from = "Column::FirstScanId",
        to = "super::scan::Column::Id",
        on_delete = "SetNull"
    )]
    FirstScan,
    #[sea_orm(
        belongs_to = "super::scan::Entity",
        from = "Column::LastScanId",
        to = "super::scan::Column::Id",
        on_delete = "SetNull"
    )]
    LastScan,
    #[sea_orm(
        belongs_to = "super::rule::Entity",
        from = "Column::RuleRef",
        to = "super::rule::Column::Id"
    )]
    Rule,
    #[sea_orm(has_many = "super::scan_finding::Entity")]
    ScanFinding,
    #[sea_orm(has_many = "super::comment::Entity")]
    Comment,
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

impl Related<super::rule::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Rule.def()
    }
}

impl Related<super::scan_finding::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::ScanFinding.def()
    }
}

impl Related<super::comment::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Comment.def()
    }
}

/// Scans this finding was seen in, through `scan_finding`. The first/last
/// scan columns are reached with [`FirstScanLink`] / [`LastScanLink`].
impl Related<super::scan::Entity> for Entity {
    fn to() -> RelationDef {
        super::scan_finding::Relation::Scan.def()
    }

    fn via() -> Option<RelationDef> {
        Some(super::scan_finding::Relation::Finding.def().rev())
    }
}

/// `finding.first_scan_id` → `scan`.
#[derive(Debug)]
pub struct FirstScanLink;

impl Linked for FirstScanLink {
    type FromEntity = Entity;
    type ToEntity = super::scan::Entity;

    fn link(&self) -> Vec<RelationDef> {
        vec![Relation::FirstScan.def()]
    }
}

/// `finding.last_scan_id` → `scan`.
#[derive(Debug)]
pub struct LastScanLink;

impl Linked for LastScanLink {
    type FromEntity = Entity;
    type ToEntity = super::scan::Entity;

    fn link(&self) -> Vec<RelationDef> {
        vec![Relation::LastScan.def()]
    }
}

impl ActiveModelBehavior for ActiveModel {}
