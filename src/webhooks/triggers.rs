//! The domain events webhooks are told about, built from the rows their causes wrote and
//! queued in those causes' transactions (see [`super::events`]). Every query here is by the
//! scan's or finding's own id and org, so a body never carries another org's data.

use entity::{finding, scan, scan_finding, target};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::{json, Value};

use super::events::{emit, min_severity, Event};
use super::model::WebhookEventType;
use crate::config::Config;
use crate::error::AppResult;
use crate::findings::Severity;

/// At most this many findings are listed in one `finding.new` delivery; the rest are a link
/// away (`links.findings`: the REST list of the scan's new findings at or above the filter,
/// worst first, paged).
pub const NEW_FINDINGS_CAP: u64 = 100;

fn scan_json(scan: &scan::Model, target: Option<&target::Model>) -> Value {
    json!({
        "id": scan.id,
        "target": {
            "id": scan.target_id,
            "name": target.map(|t| t.name.clone()),
            "kind": target.map(|t| t.kind.clone()),
        },
        "status": scan.status,
        "source": scan.source,
        "scanner_name": scan.scanner_name,
        "scanner_version": scan.scanner_version,
        "format": scan.format,
        "score": scan.score,
        "counts": {
            "critical": scan.count_critical,
            "high": scan.count_high,
            "medium": scan.count_medium,
            "low": scan.count_low,
            "info": scan.count_info,
            "total": scan.findings_total,
        },
        "findings_new": scan.findings_new,
        "findings_fixed": scan.findings_fixed,
        "findings_unchanged": scan.findings_unchanged,
        "error": scan.error,
        "scanned_at": scan.scanned_at,
        "started_at": scan.started_at,
        "finished_at": scan.finished_at,
    })
}

fn finding_json(f: &finding::Model) -> Value {
    json!({
        "id": f.id,
        "target_id": f.target_id,
        "rule_id": f.rule_id,
        "title": f.title,
        "severity": f.severity,
        "cve_ids": serde_json::from_str::<Value>(&f.cve_ids).unwrap_or(Value::Null),
        "location": { "path": f.location_path, "line": f.location_line, "component": f.component },
        "first_seen_at": f.first_seen_at,
    })
}

fn links(scan_id: uuid::Uuid) -> Value {
    json!({
        "scan": format!("/api/v1/scans/{scan_id}"),
        "findings": format!("/api/v1/scans/{scan_id}/findings"),
    })
}

async fn scan_and_target(
    db: &impl ConnectionTrait,
    scan_id: uuid::Uuid,
) -> AppResult<Option<(scan::Model, Option<target::Model>)>> {
    let Some(scan) = scan::Entity::find_by_id(scan_id).one(db).await? else {
        return Ok(None);
    };
    let target = target::Entity::find_by_id(scan.target_id)
        .filter(target::Column::OrgId.eq(scan.org_id))
        .one(db)
        .await?;
    Ok(Some((scan, target)))
}

/// A scan completed: `scan.completed`, and `finding.new` when it found new findings at or
/// above each webhook's minimum severity. Call in the transaction that completes the scan.
///
/// # Errors
/// Only on database failure.
pub async fn scan_completed(
    db: &impl ConnectionTrait,
    config: &Config,
    scan_id: uuid::Uuid,
) -> AppResult<()> {
    let Some((scan, target)) = scan_and_target(db, scan_id).await? else {
        return Ok(());
    };
    let data = json!({"scan": scan_json(&scan, target.as_ref()), "links": links(scan.id)});
    let event = |kind| Event {
        org_id: scan.org_id,
        kind,
        target_id: Some(scan.target_id),
    };
    emit(db, config, event(WebhookEventType::ScanCompleted), |_| {
        Some(data.clone())
    })
    .await?;
    if scan.findings_new == 0 {
        return Ok(());
    }
    let new_of_scan = || {
        finding::Entity::find()
            .inner_join(scan_finding::Entity)
            .filter(scan_finding::Column::ScanId.eq(scan.id))
            .filter(scan_finding::Column::OrgId.eq(scan.org_id))
            .filter(scan_finding::Column::Change.is_in(["new", "reopened"]))
    };
    let counts: Vec<(String, i64)> = new_of_scan()
        .select_only()
        .column(finding::Column::Severity)
        .column_as(finding::Column::Id.count(), "n")
        .group_by(finding::Column::Severity)
        .into_tuple()
        .all(db)
        .await?;
    let count = |s: Severity| {
        counts
            .iter()
            .find(|(k, _)| k == s.as_str())
            .map_or(0, |(_, n)| *n)
    };
    // The worst first, up to the cap: for any minimum severity, the listed ones at or above
    // it are the worst of those.
    let mut worst: Vec<finding::Model> = Vec::new();
    for severity in Severity::ALL {
        let room = NEW_FINDINGS_CAP.saturating_sub(worst.len() as u64);
        if room == 0 {
            break;
        }
        if count(severity) == 0 {
            continue;
        }
        worst.extend(
            new_of_scan()
                .filter(finding::Column::Severity.eq(severity.as_str()))
                .order_by_asc(finding::Column::Id)
                .limit(room)
                .all(db)
                .await?,
        );
    }
    let scan_summary = json!({"id": scan.id, "target": {"id": scan.target_id, "name": target.as_ref().map(|t| t.name.clone()), "kind": target.as_ref().map(|t| t.kind.clone())}});
    emit(db, config, event(WebhookEventType::FindingNew), |hook| {
        let min = min_severity(hook);
        let total: i64 = Severity::ALL
            .into_iter()
            .filter(|s| *s >= min)
            .map(count)
            .sum();
        if total == 0 {
            return None;
        }
        let listed: Vec<Value> = worst
            .iter()
            .filter(|f| Severity::parse(&f.severity).is_ok_and(|s| s >= min))
            .map(finding_json)
            .collect();
        let severities: Vec<&str> = Severity::ALL
            .into_iter()
            .filter(|s| *s >= min)
            .map(|s| s.as_str())
            .collect();
        let mut all = format!("/api/v1/findings?new_in_scan={}", scan.id);
        for s in &severities {
            all.push_str("&severity=");
            all.push_str(s);
        }
        Some(json!({
            "scan": scan_summary,
            "min_severity": min.as_str(),
            "total": total,
            "truncated": (listed.len() as i64) < total,
            "findings": listed,
            "links": {
                "scan": format!("/api/v1/scans/{}", scan.id),
                "findings": all,
            },
        }))
    })
    .await?;
    Ok(())
}

/// A scan failed: `scan.failed`. Call in the transaction that fails the scan.
///
/// # Errors
/// Only on database failure.
pub async fn scan_failed(
    db: &impl ConnectionTrait,
    config: &Config,
    scan_id: uuid::Uuid,
) -> AppResult<()> {
    let Some((scan, target)) = scan_and_target(db, scan_id).await? else {
        return Ok(());
    };
    let data = json!({"scan": scan_json(&scan, target.as_ref()), "links": links(scan.id)});
    let event = Event {
        org_id: scan.org_id,
        kind: WebhookEventType::ScanFailed,
        target_id: Some(scan.target_id),
    };
    emit(db, config, event, |_| Some(data.clone())).await?;
    Ok(())
}

/// Someone triaged a finding: `finding.triaged`, for webhooks whose minimum severity it meets.
/// Call in the transaction that records the decision.
///
/// # Errors
/// Only on database failure.
pub async fn finding_triaged(
    db: &impl ConnectionTrait,
    config: &Config,
    row: &finding::Model,
    previous_state: &str,
) -> AppResult<()> {
    let severity = Severity::parse(&row.severity).unwrap_or(Severity::Info);
    let data = json!({
        "finding": finding_json(row),
        "triage": {
            "previous_state": previous_state,
            "state": row.triage_state,
            "note": row.triage_note,
            "expires_at": row.triage_expires_at,
            "by": row.triaged_by,
            "at": row.triaged_at,
        },
        "links": { "finding": format!("/api/v1/findings/{}", row.id) },
    });
    let event = Event {
        org_id: row.org_id,
        kind: WebhookEventType::FindingTriaged,
        target_id: Some(row.target_id),
    };
    emit(db, config, event, |hook| {
        (severity >= min_severity(hook)).then(|| data.clone())
    })
    .await?;
    Ok(())
}

/// An accepted risk lapses soon: `risk_acceptance.expiring`, for webhooks whose minimum
/// severity the finding meets. Call in the transaction that records the announcement.
///
/// # Errors
/// Only on database failure.
pub async fn risk_acceptance_expiring(
    db: &impl ConnectionTrait,
    config: &Config,
    row: &finding::Model,
    now: chrono::DateTime<chrono::Utc>,
) -> AppResult<()> {
    let severity = Severity::parse(&row.severity).unwrap_or(Severity::Info);
    let days_left = row
        .triage_expires_at
        .map(|at| (at - now).num_seconds().max(0) as f64 / 86_400.0);
    let data = json!({
        "finding": finding_json(row),
        "acceptance": {
            "expires_at": row.triage_expires_at,
            "days_left": days_left.map(|d| (d * 10.0).round() / 10.0),
            "note": row.triage_note,
            "by": row.triaged_by,
            "at": row.triaged_at,
        },
        "links": { "finding": format!("/api/v1/findings/{}", row.id) },
    });
    let event = Event {
        org_id: row.org_id,
        kind: WebhookEventType::RiskAcceptanceExpiring,
        target_id: Some(row.target_id),
    };
    emit(db, config, event, |hook| {
        (severity >= min_severity(hook)).then(|| data.clone())
    })
    .await?;
    Ok(())
}

/// An open finding passed its SLA due date: `sla.breached`, once per finding, for webhooks
/// whose minimum severity it meets. Call in the transaction that records the announcement.
///
/// # Errors
/// Only on database failure.
pub async fn sla_breached(
    db: &impl ConnectionTrait,
    config: &Config,
    row: &finding::Model,
    due_at: Option<chrono::DateTime<chrono::Utc>>,
) -> AppResult<()> {
    let severity = Severity::parse(&row.severity).unwrap_or(Severity::Info);
    let data = json!({
        "finding": finding_json(row),
        "sla": { "due_at": due_at, "explicit_due_date": row.due_at.is_some() },
        "links": { "finding": format!("/api/v1/findings/{}", row.id) },
    });
    let event = Event {
        org_id: row.org_id,
        kind: WebhookEventType::SlaBreached,
        target_id: Some(row.target_id),
    };
    emit(db, config, event, |hook| {
        (severity >= min_severity(hook)).then(|| data.clone())
    })
    .await?;
    Ok(())
}
