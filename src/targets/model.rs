use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};
use entity::target;
use uuid::Uuid;

use crate::stored_enum;

stored_enum! {
    /// What kind of thing is scanned.
    TargetKind, "kind" {
        KafkaCluster => "kafka_cluster",
        ContainerImage => "container_image",
        Repository => "repository",
        Host => "host",
        Application => "application",
        CloudAccount => "cloud_account",
        Website => "website",
        Other => "other",
    }
}

/// What is scanned: unique per org by kind and name.
#[derive(Clone, Debug, SimpleObject)]
#[graphql(complex)]
pub struct Target {
    pub id: Uuid,
    pub kind: TargetKind,
    pub name: String,
    /// Free-form `key: value` labels, for grouping and filtering.
    pub labels: async_graphql::Json<serde_json::Value>,
    /// Kind-specific facts, e.g. `bootstrap_servers` of a Kafka cluster.
    pub metadata: async_graphql::Json<serde_json::Value>,
    pub last_scan_at: Option<DateTime<Utc>>,
    pub last_score: Option<f64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<target::Model> for Target {
    fn from(m: target::Model) -> Self {
        Self {
            id: m.id,
            kind: TargetKind::parse(&m.kind).unwrap_or(TargetKind::Other),
            name: m.name,
            labels: async_graphql::Json(m.labels),
            metadata: async_graphql::Json(m.metadata),
            last_scan_at: m.last_scan_at,
            last_score: m.last_score,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}
