use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One event sent (or to be sent) to a webhook, with its latest attempt.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "webhook_delivery")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub webhook_id: Uuid,
    pub event: String,
    /// The JSON body sent, as text.
    #[sea_orm(column_type = "Text")]
    pub payload: String,
    /// HTTP status of the last attempt, if a response came back.
    pub status_code: Option<i32>,
    pub attempt: i32,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    pub delivered_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    /// `pending`, `delivered` or `failed` (no attempt left).
    pub status: String,
    /// How long the last attempt took, in milliseconds.
    pub latency_ms: Option<i32>,
    /// The start of the last answer's body (at most 1 KiB).
    #[sea_orm(column_type = "Text", nullable)]
    pub response_excerpt: Option<String>,
    pub last_attempt_at: Option<DateTimeUtc>,
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
        belongs_to = "super::webhook::Entity",
        from = "Column::WebhookId",
        to = "super::webhook::Column::Id",
        on_delete = "Cascade"
    )]
    Webhook,
    #[sea_orm(has_many = "super::webhook_attempt::Entity")]
    WebhookAttempt,
}

impl Related<super::webhook_attempt::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::WebhookAttempt.def()
    }
}

impl Related<super::organization::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Organization.def()
    }
}

impl Related<super::webhook::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Webhook.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
