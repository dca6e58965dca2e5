use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// An outgoing webhook subscription of an organization.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "webhook")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    #[sea_orm(column_type = "Text")]
    pub url: String,
    /// Signing secret for delivery signatures.
    pub secret: String,
    /// JSON array of event names as text.
    #[sea_orm(column_type = "Text")]
    pub events: String,
    pub active: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    #[sea_orm(column_type = "Text", nullable)]
    pub description: Option<String>,
    /// Only events about this target, when set.
    pub target_id: Option<Uuid>,
    /// Only findings at least this severe (`finding.new`), when set.
    pub min_severity: Option<String>,
    /// The secret before the last rotation; it signs too until `previous_secret_expires_at`.
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<DateTimeUtc>,
    /// When deliveries began failing without a success since.
    pub failing_since: Option<DateTimeUtc>,
    /// Why the endpoint was disabled automatically (410 Gone, failing too long).
    #[sea_orm(column_type = "Text", nullable)]
    pub disabled_reason: Option<String>,
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
    #[sea_orm(has_many = "super::webhook_delivery::Entity")]
    WebhookDelivery,
}

impl Related<super::organization::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Organization.def()
    }
}

impl Related<super::webhook_delivery::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::WebhookDelivery.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
