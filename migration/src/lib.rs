//! Migrations for Rampart's schema.
//!
//! Every schema change is written with sea-query's schema builder, so the
//! same files run on SQLite and on PostgreSQL; data moved between tables (in
//! 000012) goes through plain SQL that both engines accept. Foreign keys are
//! declared inline in `CREATE TABLE` (SQLite cannot add them afterwards);
//! indexes, unique ones included, are separate named `CREATE INDEX`
//! statements whose names are unique across the whole schema. One step is
//! PostgreSQL-only: dropping foreign keys (in 000005), which SQLite cannot do
//! without rebuilding a table.

pub use sea_orm_migration::prelude::*;

mod m20261123_000001_identity;
mod m20261123_000002_scanning;
mod m20261123_000003_integrations;
mod m20261123_000004_jobs;
mod m20261129_000005_lighter_finding_writes;
mod m20261201_000006_progress_sequence;
mod m20261201_000007_invitations;
mod m20261201_000008_worker_heartbeat;
mod m20261201_000009_mfa;
mod m20261201_000010_webhooks;
mod m20261201_000011_password_resets;
mod m20261201_000012_rules_stored_once;
mod m20261201_000013_notifications;
mod m20261201_000014_engine_scans;
mod m20261201_000016_sla;
mod m20261201_000017_remediation;
mod m20261201_000018_reminders;

/// Runs Rampart's migrations, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_identity::Migration),
            Box::new(m20261123_000002_scanning::Migration),
            Box::new(m20261123_000003_integrations::Migration),
            Box::new(m20261123_000004_jobs::Migration),
            Box::new(m20261129_000005_lighter_finding_writes::Migration),
            Box::new(m20261201_000006_progress_sequence::Migration),
            Box::new(m20261201_000007_invitations::Migration),
            Box::new(m20261201_000008_worker_heartbeat::Migration),
            Box::new(m20261201_000009_mfa::Migration),
            Box::new(m20261201_000010_webhooks::Migration),
            Box::new(m20261201_000011_password_resets::Migration),
            Box::new(m20261201_000012_rules_stored_once::Migration),
            Box::new(m20261201_000013_notifications::Migration),
            Box::new(m20261201_000014_engine_scans::Migration),
            Box::new(m20261201_000016_sla::Migration),
            Box::new(m20261201_000017_remediation::Migration),
            Box::new(m20261201_000018_reminders::Migration),
        ]
    }
}
