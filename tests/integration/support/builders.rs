//! Rows written straight into the database, for tests that need a known history.

use chrono::{DateTime, Utc};
use entity::{finding, organization, scan, scan_finding, target};
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

/// The id of the org with this slug (`default` is the bootstrap org).
pub async fn org_id(db: &DatabaseConnection, slug: &str) -> Uuid {
    organization::Entity::find()
        .filter(organization::Column::Slug.eq(slug))
        .one(db)
        .await
        .unwrap()
        .expect("org exists")
        .id
}

pub async fn target(
    db: &DatabaseConnection,
    org: Uuid,
    kind: &str,
    name: &str,
    labels: serde_json::Value,
) -> target::Model {
    let now = Utc::now();
    target::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(org),
        kind: Set(kind.into()),
        name: Set(name.into()),
        labels: Set(labels),
        metadata: Set(serde_json::json!({})),
        last_scan_at: Set(None),
        last_score: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
    .unwrap()
}

/// A scan with a status, time and score; keeps the target's latest state in step.
pub async fn scan(
    db: &DatabaseConnection,
    t: &target::Model,
    status: &str,
    scanned_at: DateTime<Utc>,
    score: Option<f64>,
) -> scan::Model {
    let row = scan::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(t.org_id),
        target_id: Set(t.id),
        status: Set(status.into()),
        source: Set("upload".into()),
        scanner_name: Set("semgrep".into()),
        format: Set(Some("sarif".into())),
        score: Set(score),
        scanned_at: Set(scanned_at),
        created_at: Set(scanned_at),
        started_at: Set(Some(scanned_at)),
        finished_at: Set(Some(scanned_at + chrono::Duration::seconds(2))),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    rampart::targets::refresh_latest(db, t.id).await.unwrap();
    row
}

/// A finding on `t`, seen by each of `seen_by`.
pub async fn finding(
    db: &DatabaseConnection,
    t: &target::Model,
    fingerprint: &str,
    severity: &str,
    title: &str,
    seen_by: &[&scan::Model],
) -> finding::Model {
    let now = Utc::now();
    let rule = rampart::ingest::rules::RuleRow::new(
        t.org_id,
        "semgrep",
        &format!("rule.{fingerprint}"),
        None,
        None,
        &["CWE-79".to_string()],
    );
    rampart::ingest::rules::insert(db, t.org_id, now, std::slice::from_ref(&rule))
        .await
        .unwrap();
    let row = finding::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(t.org_id),
        target_id: Set(t.id),
        scanner: Set("semgrep".into()),
        fingerprint: Set(fingerprint.into()),
        rule_id: Set(format!("rule.{fingerprint}")),
        title: Set(title.into()),
        severity: Set(severity.into()),
        cve_ids: Set(if severity == "critical" {
            format!("[\"CVE-2024-{}\"]", fingerprint.len())
        } else {
            "[]".into()
        }),
        rule_ref: Set(Some(rule.id)),
        location_path: Set(Some(format!("src/{fingerprint}.rs"))),
        location_line: Set(Some(10)),
        description: Set(format!("{title} in detail")),
        occurrences: Set(1),
        status: Set("open".into()),
        first_seen_at: Set(now),
        last_seen_at: Set(now),
        last_scan_id: Set(seen_by.last().map(|s| s.id)),
        first_scan_id: Set(seen_by.first().map(|s| s.id)),
        triage_state: Set("untriaged".into()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    for s in seen_by {
        scan_finding::ActiveModel {
            scan_id: Set(s.id),
            finding_id: Set(row.id),
            org_id: Set(t.org_id),
            occurrences: Set(1),
            change: Set("new".into()),
        }
        .insert(db)
        .await
        .unwrap();
    }
    row
}

/// A finding with a chosen history: first seen at `first_seen`, fixed at `fixed` (open when
/// `None`), of `scanner`'s `rule` naming `cwes`.
#[allow(clippy::too_many_arguments)]
pub async fn finding_seen(
    db: &DatabaseConnection,
    t: &target::Model,
    fingerprint: &str,
    severity: &str,
    scanner: &str,
    rule: &str,
    cwes: &[&str],
    first_seen: DateTime<Utc>,
    fixed: Option<DateTime<Utc>>,
) -> finding::Model {
    let cwes: Vec<String> = cwes.iter().map(|c| c.to_string()).collect();
    let rule_row = rampart::ingest::rules::RuleRow::new(t.org_id, scanner, rule, None, None, &cwes);
    rampart::ingest::rules::insert(db, t.org_id, first_seen, std::slice::from_ref(&rule_row))
        .await
        .unwrap();
    finding::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(t.org_id),
        target_id: Set(t.id),
        scanner: Set(scanner.into()),
        fingerprint: Set(fingerprint.into()),
        rule_id: Set(rule.into()),
        title: Set(format!("{rule} at {fingerprint}")),
        severity: Set(severity.into()),
        cve_ids: Set("[]".into()),
        rule_ref: Set(Some(rule_row.id)),
        description: Set(String::new()),
        occurrences: Set(1),
        status: Set(if fixed.is_some() { "fixed" } else { "open" }.into()),
        first_seen_at: Set(first_seen),
        last_seen_at: Set(fixed.unwrap_or(first_seen)),
        fixed_at: Set(fixed),
        triage_state: Set("untriaged".into()),
        created_at: Set(first_seen),
        updated_at: Set(first_seen),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap()
}
