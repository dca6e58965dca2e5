//! Rules stored once: what every finding of a rule shares (the rule's description, its
//! remediation and CWEs) is one `rule` row per org and distinct content, which findings point
//! at. The row's id is a digest of the org and the content, so a writer knows it without a
//! lookup and writing it twice is a no-op (`ON CONFLICT (id) DO NOTHING`).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{OnConflict, Query};
use sea_orm::{ConnectionTrait, DbErr};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::NormalizedFinding;

/// The rule content of one finding, as stored in `rule`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRow {
    pub id: Uuid,
    pub scanner: String,
    pub rule_id: String,
    pub description: Option<String>,
    pub remediation: Option<String>,
    /// JSON array text, as the column holds it.
    pub cwe_ids: String,
}

impl RuleRow {
    /// The rule row `f` points at in `org`.
    pub fn of(org: Uuid, f: &NormalizedFinding) -> Self {
        Self::new(
            org,
            &f.scanner,
            &f.rule_id,
            f.rule_description.as_deref(),
            f.remediation.as_deref(),
            &f.cwe_ids,
        )
    }

    /// The rule row of this content in `org`.
    pub fn new(
        org: Uuid,
        scanner: &str,
        rule_id: &str,
        description: Option<&str>,
        remediation: Option<&str>,
        cwe_ids: &[String],
    ) -> Self {
        Self {
            id: rule_id_of(org, scanner, rule_id, description, remediation, cwe_ids),
            scanner: scanner.to_string(),
            rule_id: rule_id.to_string(),
            description: description.map(str::to_string),
            remediation: remediation.map(str::to_string),
            cwe_ids: serde_json::to_string(cwe_ids).unwrap_or_else(|_| "[]".into()),
        }
    }
}

/// The id of a rule's content in `org`: a digest, computed without copying anything, since
/// every finding of every batch needs it.
fn rule_id_of(
    org: Uuid,
    scanner: &str,
    rule_id: &str,
    description: Option<&str>,
    remediation: Option<&str>,
    cwe_ids: &[String],
) -> Uuid {
    // Length-prefixed, with absence distinct from an empty text.
    fn part(hash: &mut Sha256, text: Option<&str>) {
        match text {
            Some(text) => {
                hash.update([1]);
                hash.update((text.len() as u64).to_le_bytes());
                hash.update(text.as_bytes());
            }
            None => hash.update([0]),
        }
    }
    let mut hash = Sha256::new();
    hash.update(org.as_bytes());
    for text in [Some(scanner), Some(rule_id), description, remediation] {
        part(&mut hash, text);
    }
    hash.update((cwe_ids.len() as u64).to_le_bytes());
    for cwe in cwe_ids {
        part(&mut hash, Some(cwe));
    }
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The rules a scan has made sure exist, so each is written once per scan, not per batch.
#[derive(Debug, Default)]
pub struct KnownRules {
    committed: HashSet<Uuid>,
    /// Written in the open transaction.
    pending: HashSet<Uuid>,
}

impl KnownRules {
    /// The rule of each finding (in order), and those of them this scan has not written yet,
    /// which the caller writes in its open transaction.
    pub fn resolve(
        &mut self,
        org: Uuid,
        batch: &[&NormalizedFinding],
    ) -> (Vec<Uuid>, Vec<RuleRow>) {
        let mut refs = Vec::with_capacity(batch.len());
        let mut fresh: Vec<RuleRow> = Vec::new();
        for f in batch {
            let id = rule_id_of(
                org,
                &f.scanner,
                &f.rule_id,
                f.rule_description.as_deref(),
                f.remediation.as_deref(),
                &f.cwe_ids,
            );
            refs.push(id);
            // Only a rule this scan has not written yet is copied into a row.
            if !self.committed.contains(&id) && self.pending.insert(id) {
                fresh.push(RuleRow::of(org, f));
            }
        }
        (refs, fresh)
    }

    /// The open transaction committed: its rules exist.
    pub fn committed(&mut self) {
        self.committed.extend(self.pending.drain());
    }

    /// The open transaction did not commit: its rules must be written again.
    pub fn rolled_back(&mut self) {
        self.pending.clear();
    }
}

/// Rows per insert statement: 8 parameters each, far below SQLite's limit.
const ROWS_PER_STATEMENT: usize = 1_000;

/// Writes `rows` unless they exist.
///
/// # Errors
/// Only on database failure.
pub async fn insert(
    db: &impl ConnectionTrait,
    org: Uuid,
    now: DateTime<Utc>,
    rows: &[RuleRow],
) -> Result<(), DbErr> {
    use entity::rule::Column;
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut insert = Query::insert();
        insert
            .into_table(entity::rule::Entity)
            .columns([
                Column::Id,
                Column::OrgId,
                Column::Scanner,
                Column::RuleId,
                Column::Description,
                Column::Remediation,
                Column::CweIds,
                Column::CreatedAt,
            ])
            .on_conflict(OnConflict::column(Column::Id).do_nothing().to_owned());
        for r in chunk {
            insert.values_panic([
                r.id.into(),
                org.into(),
                r.scanner.clone().into(),
                r.rule_id.clone().into(),
                r.description.clone().into(),
                r.remediation.clone().into(),
                r.cwe_ids.clone().into(),
                now.into(),
            ]);
        }
        db.execute(&insert).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::Severity;

    fn finding(rule_description: Option<&str>, remediation: Option<&str>) -> NormalizedFinding {
        NormalizedFinding {
            fingerprint: "f".into(),
            scanner: "bandit".into(),
            rule_id: "B105".into(),
            title: "t".into(),
            severity: Severity::Low,
            cve_ids: vec![],
            cwe_ids: vec!["CWE-259".into()],
            location_path: None,
            location_line: None,
            component: None,
            description: "own text".into(),
            rule_description: rule_description.map(Into::into),
            remediation: remediation.map(Into::into),
            occurrences: 1,
        }
    }

    #[test]
    fn same_content_same_rule_in_one_org_only() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let f = finding(Some("d"), Some("r"));
        assert_eq!(RuleRow::of(a, &f).id, RuleRow::of(a, &f).id);
        assert_ne!(RuleRow::of(a, &f).id, RuleRow::of(b, &f).id);
        // The result's own text is not the rule's.
        let mut other = f.clone();
        other.description = "another result".into();
        assert_eq!(RuleRow::of(a, &f).id, RuleRow::of(a, &other).id);
    }

    #[test]
    fn absence_differs_from_empty_and_fields_do_not_run_together() {
        let org = Uuid::now_v7();
        let ids: HashSet<Uuid> = [
            finding(None, None),
            finding(Some(""), None),
            finding(None, Some("")),
            finding(Some("ab"), Some("c")),
            finding(Some("a"), Some("bc")),
        ]
        .iter()
        .map(|f| RuleRow::of(org, f).id)
        .collect();
        assert_eq!(ids.len(), 5);
    }

    #[test]
    fn a_scan_writes_each_rule_once() {
        let org = Uuid::now_v7();
        let (f, g) = (finding(Some("d"), None), finding(Some("e"), None));
        let mut known = KnownRules::default();
        let (refs, fresh) = known.resolve(org, &[&f, &g, &f]);
        assert_eq!(refs.len(), 3);
        assert_eq!(refs[0], refs[2]);
        assert_eq!(fresh.len(), 2);
        // Not committed: written again by the next transaction.
        known.rolled_back();
        let (_, fresh) = known.resolve(org, &[&f]);
        assert_eq!(fresh.len(), 1);
        known.committed();
        let (_, fresh) = known.resolve(org, &[&f, &g]);
        assert_eq!(fresh.len(), 1, "only g is left to write");
        known.committed();
        let (_, fresh) = known.resolve(org, &[&f, &g]);
        assert!(fresh.is_empty());
    }
}
