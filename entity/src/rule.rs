use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// What a scanner says about one of its rules, stored once per org and distinct content and
/// shared by every finding of that rule: long SARIF help texts are not copied per result.
/// The id is derived from the org and the content, so writers need no lookup to point at it.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "rule")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub scanner: String,
    pub rule_id: String,
    /// The rule's own description, shown after each finding's own text.
    #[sea_orm(column_type = "Text", nullable)]
    pub description: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub remediation: Option<String>,
    /// JSON array of strings as text, e.g. `["CWE-79"]`.
    #[sea_orm(column_type = "Text")]
    pub cwe_ids: String,
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
    #[sea_orm(has_many = "super::finding::Entity")]
    Finding,
}

impl Related<super::organization::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Organization.def()
    }
}

impl Related<super::finding::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Finding.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
