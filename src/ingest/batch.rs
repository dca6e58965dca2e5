//! Writing what a scan saw, batch by batch: findings the target does not have yet are inserted
//! (keyed by target and fingerprint), the ids of those it has are looked up, and the scan's
//! sighting of each is recorded, all in one transaction per batch. Existing findings are not
//! written here at all — re-ingesting a report costs reads, not a rewrite of every row — they
//! change only in the final transaction, which also keeps a cancelled scan from touching them.
//!
//! These writes are idempotent — a retry after a crash rewrites the same rows — so they are
//! allowed to be cheap rather than individually durable; the final transaction in
//! [`super::pipeline`] decides the scan's outcome and is durable as usual.
//!
//! Each backend gets its own statement shape, binding what the whole scan shares once. On
//! PostgreSQL the batch travels as one array per column expanded with `UNNEST`: a batch of
//! thousands of findings is one short statement with 18 parameters, instead of a multi-row
//! `VALUES` list with 27 parameters per finding that the server must parse, bind and plan each
//! time. SQLite has no arrays, so there each finding is a `VALUES` row of its own 13 values.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::{finding, scan};
use sea_orm::sqlx::{self, Row as _};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    EntityTrait, QueryFilter, QuerySelect, Statement, Value,
};
use uuid::Uuid;

use super::jobs::{Lease, LeaseError};
use super::rules::{self, KnownRules, RuleRow};
use super::NormalizedFinding;

/// Findings per batch, one transaction each. Larger transactions matter most for the unique
/// (target, fingerprint) index: its keys are hashes, so a batch dirties index pages all over
/// the tree, and each dirtied page is written out once per commit however many of the
/// batch's keys landed on it (on SQLite into the WAL, whole). Ten thousand rows per commit
/// instead of a thousand took the insert from 7.3 s to 4.5 s per 100k rows in the `sqlite3`
/// shell (docs/benchmarks.md).
pub fn batch_size(backend: DbBackend) -> usize {
    match backend {
        DbBackend::Postgres => 5_000,
        _ => 10_000,
    }
}

/// Rows per statement on SQLite. SQLite bounds a statement's parameters (32,766; the findings
/// insert binds 13 per finding, the sightings insert 3 per sighting), but the tighter bound is
/// the time to prepare a statement, which grows faster than its rows: for a sightings insert
/// ~10 ms at 1,000 rows, ~0.1 s at 5,000, ~0.6 s at 10,000 (`EXPLAIN` in the `sqlite3`
/// shell), paid again on every pooled connection that has not cached it yet.
const SQLITE_FINDINGS_PER_STATEMENT: usize = 1_000;
const SQLITE_SIGHTINGS_PER_STATEMENT: usize = 1_000;

/// The SQLite findings insert for `rows` findings: the scan's values once (`s`), each
/// finding's own as a row of `VALUES` (`v`, columns `column1`…`column13`).
fn sqlite_insert_findings(rows: usize) -> String {
    let mut sql = String::from(
        "WITH s(org_id, target_id, seen_at, scan_id, now) AS (VALUES (?, ?, ?, ?, ?)) \
         INSERT INTO finding (id, org_id, target_id, scanner, fingerprint, rule_id, title, \
           severity, cve_ids, location_path, location_line, component, description, rule_ref, \
           occurrences, status, first_seen_at, last_seen_at, first_scan_id, last_scan_id, \
           triage_state, created_at, updated_at) \
         SELECT v.column1, s.org_id, s.target_id, v.column2, v.column3, v.column4, v.column5, \
           v.column6, v.column7, v.column8, v.column9, v.column10, v.column11, v.column12, \
           v.column13, 'open', s.seen_at, s.seen_at, s.scan_id, s.scan_id, \
           'untriaged', s.now, s.now \
         FROM s, (VALUES ",
    );
    push_rows(&mut sql, rows, "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    // `WHERE true` keeps SQLite from reading `ON` as a join constraint.
    sql.push_str(") AS v WHERE true ON CONFLICT (target_id, fingerprint) DO NOTHING");
    sql
}

/// The values for [`sqlite_insert_findings`]: the scan's five, then each finding's 13.
fn sqlite_finding_values(
    scan: &scan::Model,
    now: DateTime<Utc>,
    findings: &[&NormalizedFinding],
    ids: &[Uuid],
    rule_refs: &[Uuid],
) -> Vec<Value> {
    let mut values: Vec<Value> = Vec::with_capacity(5 + findings.len() * 13);
    values.extend([
        scan.org_id.into(),
        scan.target_id.into(),
        scan.scanned_at.into(),
        scan.id.into(),
        now.into(),
    ]);
    for ((f, id), rule_ref) in findings.iter().zip(ids).zip(rule_refs) {
        values.extend([
            (*id).into(),
            f.scanner.clone().into(),
            f.fingerprint.clone().into(),
            f.rule_id.clone().into(),
            f.title.clone().into(),
            f.severity.as_str().into(),
            json_list(&f.cve_ids).into(),
            f.location_path.clone().into(),
            f.location_line.map(clamp).into(),
            f.component.clone().into(),
            f.description.clone().into(),
            Some(*rule_ref).into(),
            clamp(f.occurrences).into(),
        ]);
    }
    values
}

/// The SQLite sightings insert for `rows` sightings of one scan.
fn sqlite_insert_sightings(rows: usize) -> String {
    let mut sql = String::from(
        "WITH s(scan_id, org_id) AS (VALUES (?, ?)) \
         INSERT INTO scan_finding (scan_id, org_id, finding_id, occurrences, change) \
         SELECT s.scan_id, s.org_id, v.column1, v.column2, v.column3 FROM s, (VALUES ",
    );
    push_rows(&mut sql, rows, "(?, ?, ?)");
    sql.push_str(") AS v WHERE true ON CONFLICT (scan_id, finding_id) DO NOTHING");
    sql
}

fn push_rows(sql: &mut String, rows: usize, row: &str) {
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(row);
    }
}

/// Writes the batches of one scan and counts what it wrote.
pub struct BatchWriter<'a> {
    scan: &'a scan::Model,
    /// Every batch's transaction first checks that the job is still this lease's.
    lease: &'a Lease,
    /// Results written so far.
    pub processed: u64,
    /// Findings this scan created so far.
    pub new: u64,
    /// Every scanner seen in the report (a SARIF file may hold several runs).
    pub scanners: HashSet<String>,
    /// Rules this scan has written.
    rules: KnownRules,
}

/// A scan's sighting of one finding, as `scan_finding` records it.
struct Sighting {
    finding_id: Uuid,
    occurrences: i32,
    change: &'static str,
}

fn count_new(sightings: &[Sighting]) -> u64 {
    sightings.iter().filter(|s| s.change == "new").count() as u64
}

/// A finding of the batch, inserted now or found: enough to record the sighting.
struct Upserted {
    id: Uuid,
    fingerprint: String,
    first_scan_id: Option<Uuid>,
}

impl<'a> BatchWriter<'a> {
    pub fn new(scan: &'a scan::Model, lease: &'a Lease) -> Self {
        Self {
            scan,
            lease,
            processed: 0,
            new: 0,
            scanners: HashSet::new(),
            rules: KnownRules::default(),
        }
    }

    /// Upserts the batch's findings and records this scan's sightings of them.
    ///
    /// # Errors
    /// On database failure or a lost lease; nothing of the batch is then written.
    pub async fn write(
        &mut self,
        db: &DatabaseConnection,
        batch: Vec<NormalizedFinding>,
    ) -> Result<(), LeaseError> {
        for f in &batch {
            if !self.scanners.contains(&f.scanner) {
                self.scanners.insert(f.scanner.clone());
            }
        }
        let occurrences: HashMap<&str, i32> = batch
            .iter()
            .map(|f| (f.fingerprint.as_str(), clamp(f.occurrences)))
            .collect();
        let now = Utc::now();
        let written = match db.get_database_backend() {
            DbBackend::Postgres => self.write_postgres(db, &batch, &occurrences, now).await,
            _ => self.write_sqlite(db, &batch, &occurrences, now).await,
        };
        let new = match written {
            Ok(new) => {
                self.rules.committed();
                new
            }
            Err(err) => {
                self.rules.rolled_back();
                return Err(err);
            }
        };
        self.new += new;
        self.processed += batch.len() as u64;
        Ok(())
    }

    /// The scan's sighting of each finding of the batch, once every one has a row: new when
    /// this scan created the finding (in this attempt or an earlier one), unchanged otherwise
    /// (finalize tells reopened ones apart).
    fn sightings(
        &self,
        batch: &[NormalizedFinding],
        upserted: Vec<Upserted>,
        occurrences: &HashMap<&str, i32>,
    ) -> Result<Vec<Sighting>, DbErr> {
        ensure_complete(batch, &upserted)?;
        Ok(upserted
            .into_iter()
            .map(|u| Sighting {
                finding_id: u.id,
                occurrences: occurrences
                    .get(u.fingerprint.as_str())
                    .copied()
                    .unwrap_or(1),
                change: if u.first_scan_id == Some(self.scan.id) {
                    "new"
                } else {
                    "unchanged"
                },
            })
            .collect())
    }

    /// SQLite: lookups of the batch's findings, inserts of those not found, inserts of the
    /// sightings, all in one transaction. Values the whole scan shares (org, target, times,
    /// scan, initial state) are bound once per statement; each finding binds only its own 14.
    /// Returns how many findings were new.
    async fn write_sqlite(
        &mut self,
        db: &DatabaseConnection,
        batch: &[NormalizedFinding],
        occurrences: &HashMap<&str, i32>,
        now: DateTime<Utc>,
    ) -> Result<u64, LeaseError> {
        let scan = self.scan;
        let txn = crate::db::begin_write(db).await?;
        self.lease.fence(&txn).await?;
        let mut upserted = Vec::with_capacity(batch.len());
        for chunk in batch.chunks(SQLITE_FINDINGS_PER_STATEMENT) {
            // Looked up first: on a re-scan most findings exist, and a probe of the unique
            // index is much cheaper than an insert attempt that builds the row and conflicts.
            let found = find_by_fingerprint(&txn, scan.target_id, chunk.iter()).await?;
            let known: HashSet<&str> = found.iter().map(|u| u.fingerprint.as_str()).collect();
            let absent: Vec<&NormalizedFinding> = chunk
                .iter()
                .filter(|f| !known.contains(f.fingerprint.as_str()))
                .collect();
            drop(known);
            upserted.extend(found);
            if absent.is_empty() {
                continue;
            }
            let ids: Vec<Uuid> = absent.iter().map(|_| Uuid::now_v7()).collect();
            let (rule_refs, fresh) = self.rules.resolve(scan.org_id, &absent);
            rules::insert(&txn, scan.org_id, now, &fresh).await?;
            let values = sqlite_finding_values(scan, now, &absent, &ids, &rule_refs);
            let sql = sqlite_insert_findings(absent.len());
            let inserted = txn
                .execute_raw(Statement::from_sql_and_values(
                    DbBackend::Sqlite,
                    sql,
                    values,
                ))
                .await?
                .rows_affected();
            if inserted == absent.len() as u64 {
                // This transaction holds the write lock, so nothing else inserted meanwhile:
                // every absent finding now has the id given to it above.
                upserted.extend(absent.iter().zip(ids).map(|(f, id)| Upserted {
                    id,
                    fingerprint: f.fingerprint.clone(),
                    first_scan_id: Some(scan.id),
                }));
            } else {
                // Fewer rows than findings (a fingerprint twice in the batch, which the parsers
                // do not produce): take what was written; `sightings` refuses a short batch.
                let found =
                    find_by_fingerprint(&txn, scan.target_id, absent.iter().copied()).await?;
                upserted.extend(found);
            }
        }
        let sightings = self.sightings(batch, upserted, occurrences)?;
        let new = count_new(&sightings);
        for chunk in sightings.chunks(SQLITE_SIGHTINGS_PER_STATEMENT) {
            let mut values: Vec<Value> = Vec::with_capacity(2 + chunk.len() * 3);
            values.extend([scan.id.into(), scan.org_id.into()]);
            for s in chunk {
                values.extend([s.finding_id.into(), s.occurrences.into(), s.change.into()]);
            }
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Sqlite,
                sqlite_insert_sightings(chunk.len()),
                values,
            ))
            .await?;
        }
        txn.commit().await?;
        Ok(new)
    }

    /// PostgreSQL: the batch as one array per column, expanded by `UNNEST`. Returns how many
    /// findings were new.
    async fn write_postgres(
        &mut self,
        db: &DatabaseConnection,
        batch: &[NormalizedFinding],
        occurrences: &HashMap<&str, i32>,
        now: DateTime<Utc>,
    ) -> Result<u64, LeaseError> {
        let scan = self.scan;
        let pool = db.get_postgres_connection_pool();
        let column = |f: fn(&NormalizedFinding) -> String| batch.iter().map(f).collect::<Vec<_>>();
        let optional =
            |f: fn(&NormalizedFinding) -> Option<String>| batch.iter().map(f).collect::<Vec<_>>();
        let ids: Vec<Uuid> = batch.iter().map(|_| Uuid::now_v7()).collect();
        let all: Vec<&NormalizedFinding> = batch.iter().collect();
        let (rule_refs, fresh_rules) = self.rules.resolve(scan.org_id, &all);

        let mut txn = pool.begin().await.map_err(sqlx_err)?;
        self.lease.fence_postgres(&mut txn).await?;
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *txn)
            .await
            .map_err(sqlx_err)?;
        if !fresh_rules.is_empty() {
            let rules_column =
                |f: fn(&RuleRow) -> Option<String>| fresh_rules.iter().map(f).collect::<Vec<_>>();
            sqlx::query(INSERT_RULES)
                .bind(scan.org_id)
                .bind(now)
                .bind(fresh_rules.iter().map(|r| r.id).collect::<Vec<_>>())
                .bind(rules_column(|r| Some(r.scanner.clone())))
                .bind(rules_column(|r| Some(r.rule_id.clone())))
                .bind(rules_column(|r| r.description.clone()))
                .bind(rules_column(|r| r.remediation.clone()))
                .bind(rules_column(|r| Some(r.cwe_ids.clone())))
                .execute(&mut *txn)
                .await
                .map_err(sqlx_err)?;
        }
        let returned = sqlx::query(UPSERT_FINDINGS)
            .bind(scan.org_id)
            .bind(scan.target_id)
            .bind(scan.scanned_at)
            .bind(scan.id)
            .bind(now)
            .bind(ids)
            .bind(column(|f| f.scanner.clone()))
            .bind(column(|f| f.fingerprint.clone()))
            .bind(column(|f| f.rule_id.clone()))
            .bind(column(|f| f.title.clone()))
            .bind(column(|f| f.severity.as_str().to_string()))
            .bind(column(|f| json_list(&f.cve_ids)))
            .bind(optional(|f| f.location_path.clone()))
            .bind(
                batch
                    .iter()
                    .map(|f| f.location_line.map(clamp))
                    .collect::<Vec<_>>(),
            )
            .bind(optional(|f| f.component.clone()))
            .bind(column(|f| f.description.clone()))
            .bind(rule_refs)
            .bind(
                batch
                    .iter()
                    .map(|f| clamp(f.occurrences))
                    .collect::<Vec<_>>(),
            )
            .fetch_all(&mut *txn)
            .await
            .map_err(sqlx_err)?;
        let mut upserted = Vec::with_capacity(batch.len());
        for row in &returned {
            upserted.push(upserted_of(row)?);
        }
        // A finding another scan of this target inserted after our statement's snapshot was
        // neither inserted nor seen by it (the insert waited for that scan to commit); a new
        // statement sees it.
        let missing = missing_fingerprints(batch, &upserted);
        if !missing.is_empty() {
            let found = sqlx::query(FIND_FINDINGS)
                .bind(scan.target_id)
                .bind(missing)
                .fetch_all(&mut *txn)
                .await
                .map_err(sqlx_err)?;
            for row in &found {
                upserted.push(upserted_of(row)?);
            }
        }
        let sightings = self.sightings(batch, upserted, occurrences)?;
        let new = count_new(&sightings);
        sqlx::query(INSERT_SIGHTINGS)
            .bind(scan.id)
            .bind(scan.org_id)
            .bind(sightings.iter().map(|s| s.finding_id).collect::<Vec<_>>())
            .bind(sightings.iter().map(|s| s.occurrences).collect::<Vec<_>>())
            .bind(sightings.iter().map(|s| s.change).collect::<Vec<_>>())
            .execute(&mut *txn)
            .await
            .map_err(sqlx_err)?;
        txn.commit().await.map_err(sqlx_err)?;
        Ok(new)
    }
}

/// The PostgreSQL insert: per-scan values as scalars ($1–$5), per-finding values as arrays.
/// Returns the findings it inserted and, from the same snapshot, those that existed before.
const UPSERT_FINDINGS: &str = "\
WITH input AS ( \
  SELECT * FROM UNNEST($6::uuid[], $7::text[], $8::text[], $9::text[], $10::text[], \
    $11::text[], $12::text[], $13::text[], $14::int4[], $15::text[], $16::text[], $17::uuid[], \
    $18::int4[]) \
  AS u(id, scanner, fingerprint, rule_id, title, severity, cve_ids, location_path, \
    location_line, component, description, rule_ref, occurrences)), \
inserted AS ( \
  INSERT INTO finding (id, org_id, target_id, scanner, fingerprint, rule_id, title, severity, \
    cve_ids, location_path, location_line, component, description, rule_ref, \
    occurrences, status, first_seen_at, last_seen_at, first_scan_id, last_scan_id, \
    triage_state, created_at, updated_at) \
  SELECT u.id, $1, $2, u.scanner, u.fingerprint, u.rule_id, u.title, u.severity, u.cve_ids, \
    u.location_path, u.location_line, u.component, u.description, u.rule_ref, \
    u.occurrences, 'open', $3, $3, $4, $4, 'untriaged', $5, $5 \
  FROM input u \
  ON CONFLICT (target_id, fingerprint) DO NOTHING \
  RETURNING id, fingerprint, first_scan_id) \
SELECT id, fingerprint, first_scan_id FROM inserted \
UNION ALL \
SELECT f.id, f.fingerprint, f.first_scan_id FROM finding f JOIN input u \
  ON f.target_id = $2 AND f.fingerprint = u.fingerprint";

/// The PostgreSQL rules insert: the org and time as scalars, each rule's values as arrays.
const INSERT_RULES: &str = "\
INSERT INTO rule (id, org_id, scanner, rule_id, description, remediation, cwe_ids, created_at) \
SELECT u.id, $1, u.scanner, u.rule_id, u.description, u.remediation, u.cwe_ids, $2 \
FROM UNNEST($3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[]) \
  AS u(id, scanner, rule_id, description, remediation, cwe_ids) \
ON CONFLICT (id) DO NOTHING";

/// Findings of a target by fingerprint.
const FIND_FINDINGS: &str = "\
SELECT id, fingerprint, first_scan_id FROM finding \
WHERE target_id = $1 AND fingerprint = ANY($2::text[])";

/// The PostgreSQL sightings insert, same shape.
const INSERT_SIGHTINGS: &str = "\
INSERT INTO scan_finding (scan_id, org_id, finding_id, occurrences, change) \
SELECT $1, $2, u.finding_id, u.occurrences, u.change \
FROM UNNEST($3::uuid[], $4::int4[], $5::text[]) AS u(finding_id, occurrences, change) \
ON CONFLICT (scan_id, finding_id) DO NOTHING";

fn upserted_of(row: &sqlx::postgres::PgRow) -> Result<Upserted, DbErr> {
    Ok(Upserted {
        id: row.try_get("id").map_err(sqlx_err)?,
        fingerprint: row.try_get("fingerprint").map_err(sqlx_err)?,
        first_scan_id: row.try_get("first_scan_id").map_err(sqlx_err)?,
    })
}

/// The target's findings with these fingerprints (at most [`SQLITE_FINDINGS_PER_STATEMENT`]).
async fn find_by_fingerprint<'f>(
    txn: &DatabaseTransaction,
    target_id: Uuid,
    findings: impl Iterator<Item = &'f NormalizedFinding>,
) -> Result<Vec<Upserted>, DbErr> {
    let found: Vec<(Uuid, String, Option<Uuid>)> = finding::Entity::find()
        .select_only()
        .columns([
            finding::Column::Id,
            finding::Column::Fingerprint,
            finding::Column::FirstScanId,
        ])
        .filter(finding::Column::TargetId.eq(target_id))
        .filter(finding::Column::Fingerprint.is_in(findings.map(|f| f.fingerprint.as_str())))
        .into_tuple()
        .all(txn)
        .await?;
    Ok(found
        .into_iter()
        .map(|(id, fingerprint, first_scan_id)| Upserted {
            id,
            fingerprint,
            first_scan_id,
        })
        .collect())
}

/// Fingerprints of the batch not among `found`.
fn missing_fingerprints(batch: &[NormalizedFinding], found: &[Upserted]) -> Vec<String> {
    if found.len() >= batch.len() {
        return Vec::new();
    }
    let found: HashSet<&str> = found.iter().map(|u| u.fingerprint.as_str()).collect();
    batch
        .iter()
        .filter(|f| !found.contains(f.fingerprint.as_str()))
        .map(|f| f.fingerprint.clone())
        .collect()
}

/// Every finding of the batch has a row by now; otherwise the batch fails (and is retried)
/// rather than record a scan that silently missed findings.
fn ensure_complete(batch: &[NormalizedFinding], found: &[Upserted]) -> Result<(), DbErr> {
    if found.len() == batch.len() {
        Ok(())
    } else {
        Err(DbErr::Custom(format!(
            "bulk write: {} of {} findings neither inserted nor found",
            batch.len().saturating_sub(found.len()),
            batch.len()
        )))
    }
}

fn json_list(ids: &[String]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".into())
}

fn clamp(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn sqlx_err(err: sqlx::Error) -> DbErr {
    DbErr::Custom(format!("bulk write: {err}"))
}
