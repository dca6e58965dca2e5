//! Rules stored once: what a scanner says about a rule (its description, remediation and CWEs)
//! moves from every finding into a `rule` row per org and distinct content, which findings
//! point at (`finding.rule_ref`). A SARIF rule's help text was copied into each of its results
//! and made most of a finding row's bytes (docs/benchmarks.md).
//!
//! Existing findings keep their description as it was (the result's text with the rule's
//! already joined to it) and get a rule holding their remediation and CWEs, one per distinct
//! (org, scanner, rule id, remediation, CWEs). Going down joins the rule's description back
//! into each finding's, so readers see the same text either side of this migration.

use ::uuid::Uuid;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, Statement};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Rows per statement when moving data: well under either backend's parameter limit.
const CHUNK: usize = 500;

#[derive(FromQueryResult)]
struct LegacyRule {
    org_id: Uuid,
    scanner: String,
    rule_id: String,
    remediation: Option<String>,
    cwe_ids: String,
}

#[derive(FromQueryResult)]
struct JoinedDescription {
    id: Uuid,
    description: String,
    rule_description: String,
}

/// The same join as the application's (`ingest::finding::shown_description`).
fn joined(own: &str, rule: &str) -> String {
    if rule.trim() == own.trim() {
        own.to_string()
    } else if own.is_empty() {
        rule.to_string()
    } else {
        format!("{own}\n\n{rule}")
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Rule::Table)
                    .col(pk_uuid(Rule::Id))
                    .col(uuid(Rule::OrgId))
                    .col(string(Rule::Scanner))
                    .col(string(Rule::RuleId))
                    .col(text_null(Rule::Description))
                    .col(text_null(Rule::Remediation))
                    .col(text(Rule::CweIds))
                    .col(timestamp_with_time_zone(Rule::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_rule_org")
                            .from(Rule::Table, Rule::OrgId)
                            .to(Organization::Table, Organization::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_rule_org_scanner_rule")
                    .table(Rule::Table)
                    .col(Rule::OrgId)
                    .col(Rule::Scanner)
                    .col(Rule::RuleId)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Finding::Table)
                    .add_column(uuid_null(Finding::RuleRef))
                    .to_owned(),
            )
            .await?;

        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        let legacy = LegacyRule::find_by_statement(Statement::from_string(
            backend,
            "SELECT DISTINCT org_id, scanner, rule_id, remediation, cwe_ids FROM finding",
        ))
        .all(db)
        .await?;
        let now = chrono_now();
        for chunk in legacy.chunks(CHUNK) {
            let mut insert = Query::insert();
            insert.into_table(Rule::Table).columns([
                Rule::Id,
                Rule::OrgId,
                Rule::Scanner,
                Rule::RuleId,
                Rule::Remediation,
                Rule::CweIds,
                Rule::CreatedAt,
            ]);
            for r in chunk {
                insert.values_panic([
                    Uuid::new_v4().into(),
                    r.org_id.into(),
                    r.scanner.clone().into(),
                    r.rule_id.clone().into(),
                    r.remediation.clone().into(),
                    r.cwe_ids.clone().into(),
                    now.into(),
                ]);
            }
            manager.exec_stmt(insert).await?;
        }
        db.execute_unprepared(
            "UPDATE finding SET rule_ref = (SELECT r.id FROM rule r \
             WHERE r.org_id = finding.org_id AND r.scanner = finding.scanner \
               AND r.rule_id = finding.rule_id AND r.cwe_ids = finding.cwe_ids \
               AND (r.remediation = finding.remediation \
                    OR (r.remediation IS NULL AND finding.remediation IS NULL)))",
        )
        .await?;
        for column in [Finding::Remediation, Finding::CweIds] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Finding::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Finding::Table)
                    .add_column(text(Finding::CweIds).default("[]"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Finding::Table)
                    .add_column(text_null(Finding::Remediation))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        db.execute_unprepared(
            "UPDATE finding SET \
               remediation = (SELECT r.remediation FROM rule r WHERE r.id = finding.rule_ref), \
               cwe_ids = COALESCE((SELECT r.cwe_ids FROM rule r WHERE r.id = finding.rule_ref), '[]') \
             WHERE rule_ref IS NOT NULL",
        )
        .await?;
        let joins = JoinedDescription::find_by_statement(Statement::from_string(
            backend,
            "SELECT f.id, f.description, r.description AS rule_description \
             FROM finding f JOIN rule r ON r.id = f.rule_ref WHERE r.description IS NOT NULL",
        ))
        .all(db)
        .await?;
        let placeholder = |i: usize| match backend {
            DbBackend::Postgres => format!("${i}"),
            _ => "?".to_string(),
        };
        for row in joins {
            let text = joined(&row.description, &row.rule_description);
            if text == row.description {
                continue;
            }
            db.execute_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "UPDATE finding SET description = {} WHERE id = {}",
                    placeholder(1),
                    placeholder(2)
                ),
                [text.into(), row.id.into()],
            ))
            .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Finding::Table)
                    .drop_column(Finding::RuleRef)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Rule::Table).to_owned())
            .await
    }
}

fn chrono_now() -> sea_orm_migration::sea_orm::prelude::DateTimeUtc {
    sea_orm_migration::sea_orm::prelude::ChronoUtc::now()
}

/// `RuleId` is the column `rule_id`; the name follows the column.
#[allow(clippy::enum_variant_names)]
#[derive(DeriveIden)]
enum Rule {
    Table,
    Id,
    OrgId,
    Scanner,
    RuleId,
    Description,
    Remediation,
    CweIds,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Finding {
    Table,
    RuleRef,
    Remediation,
    CweIds,
}

#[derive(DeriveIden)]
enum Organization {
    Table,
    Id,
}
