use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One process running background workers, kept fresh by that process while it lives.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "worker_heartbeat")]
pub struct Model {
    /// The process's id, chosen at random when its workers start.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// How many workers the process runs.
    pub workers: i32,
    pub started_at: DateTimeUtc,
    /// The latest heartbeat.
    pub seen_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
