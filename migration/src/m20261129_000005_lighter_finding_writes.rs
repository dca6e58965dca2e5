//! Less work per finding written: an ingest writes a `finding` row and a `scan_finding` row
//! for every result, and each index and each foreign key on them is one more B-tree probe or
//! insert per row (docs/benchmarks.md).
//!
//! - The two per-target indexes of `finding` become one, (target, status, severity, scanner):
//!   it serves the per-target counts as (target, status, severity) did, and the "open findings
//!   of these scanners" step of an ingest from its index entries as (target, scanner, status)
//!   did.
//! - `finding.org_id` and `scan_finding.org_id` copy the org of the target or scan they belong
//!   to, so that reads can filter by org without a join; deleting an org still removes them
//!   through the target's and the scan's cascades. `finding.first_scan_id` and `last_scan_id`
//!   are history; deleting a scan clears them in the same transaction (`scans::service`). On
//!   PostgreSQL each foreign key is a trigger run per inserted row that locks the referenced
//!   row, so these four go there. SQLite checks a foreign key with an in-process B-tree probe,
//!   and removing one there means rebuilding the table, so SQLite keeps them; the application
//!   relies on them on neither backend.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// (table, constraint, column, referenced table, on delete).
const SOFT_REFERENCES: [(&str, &str, &str, &str, ForeignKeyAction); 4] = [
    (
        "finding",
        "fk_finding_org",
        "org_id",
        "organization",
        ForeignKeyAction::Cascade,
    ),
    (
        "finding",
        "fk_finding_first_scan",
        "first_scan_id",
        "scan",
        ForeignKeyAction::SetNull,
    ),
    (
        "finding",
        "fk_finding_last_scan",
        "last_scan_id",
        "scan",
        ForeignKeyAction::SetNull,
    ),
    (
        "scan_finding",
        "fk_scan_finding_org",
        "org_id",
        "organization",
        ForeignKeyAction::Cascade,
    ),
];

/// (name, columns) of the per-target indexes before and after.
const TARGET_INDEXES_BEFORE: [(&str, &[&str]); 2] = [
    (
        "idx_finding_target_status_severity",
        &["target_id", "status", "severity"],
    ),
    (
        "idx_finding_target_scanner_status",
        &["target_id", "scanner", "status"],
    ),
];
const TARGET_INDEX_AFTER: (&str, &[&str]) = (
    "idx_finding_target_status_severity_scanner",
    &["target_id", "status", "severity", "scanner"],
);

fn finding_index(name: &str, columns: &[&str]) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name).table(Alias::new("finding"));
    for column in columns {
        index.col(Alias::new(*column));
    }
    index.to_owned()
}

fn drop_finding_index(name: &str) -> IndexDropStatement {
    Index::drop()
        .name(name)
        .table(Alias::new("finding"))
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let (name, columns) = TARGET_INDEX_AFTER;
        manager.create_index(finding_index(name, columns)).await?;
        for (name, _) in TARGET_INDEXES_BEFORE {
            manager.drop_index(drop_finding_index(name)).await?;
        }
        if manager.get_database_backend() == DbBackend::Postgres {
            for (table, name, _, _, _) in SOFT_REFERENCES {
                manager
                    .drop_foreign_key(
                        ForeignKey::drop()
                            .name(name)
                            .table(Alias::new(table))
                            .to_owned(),
                    )
                    .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            for (table, name, column, referenced, on_delete) in SOFT_REFERENCES {
                manager
                    .create_foreign_key(
                        ForeignKey::create()
                            .name(name)
                            .from(Alias::new(table), Alias::new(column))
                            .to(Alias::new(referenced), Alias::new("id"))
                            .on_delete(on_delete)
                            .to_owned(),
                    )
                    .await?;
            }
        }
        for (name, columns) in TARGET_INDEXES_BEFORE {
            manager.create_index(finding_index(name, columns)).await?;
        }
        manager
            .drop_index(drop_finding_index(TARGET_INDEX_AFTER.0))
            .await?;
        Ok(())
    }
}
