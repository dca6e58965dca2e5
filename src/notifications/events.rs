//! Turning domain events into notifications. The rows (and, with a mail relay, the jobs that
//! mail them) are written in the transaction of the event that causes them, as webhook
//! deliveries are: a scan that completed or failed and its notifications commit together. Once
//! committed, the caller publishes them on the event bus ([`publish`]) for live followers
//! (the GraphQL subscription, the SSE stream), in this process or, through Redis, any other.
//!
//! Who is told: the people who follow the scan's target, are still members of its org and
//! active, and whose preferences ask for that kind (and, for new findings, severity).

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use entity::{
    finding, job, membership, notification, notification_preference, scan, scan_finding, target,
    target_follow, user,
};
use futures::stream::BoxStream;
use futures::StreamExt;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::model::{Notification, NotificationKind, NotificationPreferences};
use crate::app::AppState;
use crate::context::Ctx;
use crate::error::AppResult;
use crate::events::EventBus;
use crate::findings::Severity;
use crate::ingest::jobs;

/// At most this many findings are named in one notification; the rest are a link away.
pub const LISTED_FINDINGS: u64 = 10;

/// Topic of one person's notifications (every org of theirs; followers filter by org).
pub fn topic(user_id: Uuid) -> String {
    format!("user:{user_id}:notifications")
}

/// A notification as it travels on the bus: for whom, in which org.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Added {
    pub org_id: Uuid,
    pub user_id: Uuid,
    pub notification: Notification,
}

/// Sends committed notifications to their people's live followers. Events may be lost (the
/// rows hold the truth), so a bus failure is logged, never fatal.
pub async fn publish(bus: &dyn EventBus, added: &[Added]) {
    for item in added {
        let Ok(payload) = serde_json::to_string(item) else {
            continue;
        };
        let topic = topic(item.user_id);
        if let Err(err) = bus.publish(&topic, &payload).await {
            tracing::warn!(%err, %topic, "could not publish a notification");
        }
    }
}

/// Every notification the caller gets from now on in their current org.
///
/// # Errors
/// `SESSION_REQUIRED`.
pub fn follow(state: &AppState, ctx: &Ctx) -> AppResult<BoxStream<'static, Notification>> {
    let user_id = ctx.require_session_with(crate::context::Permission::Read)?;
    let org_id = ctx.org_id;
    Ok(state
        .bus
        .subscribe(&topic(user_id))
        .filter_map(move |payload| {
            let mine = serde_json::from_str::<Added>(&payload)
                .ok()
                .filter(|a| a.org_id == org_id && a.user_id == user_id)
                .map(|a| a.notification);
            futures::future::ready(mine)
        })
        .boxed())
}

/// A person told about a target's events, with their choices.
struct Follower {
    user_id: Uuid,
    prefs: NotificationPreferences,
}

/// The active members of the target's org who follow it.
async fn followers(
    db: &impl ConnectionTrait,
    org_id: Uuid,
    target_id: Uuid,
) -> AppResult<Vec<Follower>> {
    let following: Vec<Uuid> = target_follow::Entity::find()
        .select_only()
        .column(target_follow::Column::UserId)
        .filter(target_follow::Column::TargetId.eq(target_id))
        .filter(target_follow::Column::OrgId.eq(org_id))
        .into_tuple()
        .all(db)
        .await?;
    people(db, org_id, following).await
}

/// Those of `following` who are active members of the org, with their choices there.
async fn people(
    db: &impl ConnectionTrait,
    org_id: Uuid,
    following: Vec<Uuid>,
) -> AppResult<Vec<Follower>> {
    if following.is_empty() {
        return Ok(Vec::new());
    }
    let members: HashSet<Uuid> = membership::Entity::find()
        .select_only()
        .column(membership::Column::UserId)
        .filter(membership::Column::OrgId.eq(org_id))
        .filter(membership::Column::UserId.is_in(following.clone()))
        .into_tuple::<Uuid>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let active: HashSet<Uuid> = user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .filter(user::Column::Id.is_in(following.clone()))
        .filter(user::Column::IsActive.eq(true))
        .into_tuple::<Uuid>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let mut prefs: HashMap<Uuid, NotificationPreferences> = notification_preference::Entity::find()
        .filter(notification_preference::Column::OrgId.eq(org_id))
        .filter(notification_preference::Column::UserId.is_in(following.clone()))
        .all(db)
        .await?
        .into_iter()
        .map(|row| (row.user_id, row.into()))
        .collect();
    let mut out: Vec<Follower> = following
        .into_iter()
        .filter(|id| members.contains(id) && active.contains(id))
        .map(|user_id| Follower {
            user_id,
            prefs: prefs.remove(&user_id).unwrap_or_default(),
        })
        .collect();
    out.sort_by_key(|f| f.user_id);
    Ok(out)
}

/// What one notification says, before it is someone's.
struct Draft {
    kind: NotificationKind,
    title: String,
    body: String,
    severity: Option<Severity>,
}

/// What a notification is about.
struct About {
    org_id: Uuid,
    target_id: Option<Uuid>,
    scan_id: Option<Uuid>,
}

impl From<&scan::Model> for About {
    fn from(scan: &scan::Model) -> Self {
        Self {
            org_id: scan.org_id,
            target_id: Some(scan.target_id),
            scan_id: Some(scan.id),
        }
    }
}

/// Writes `draft` for `follower` and, when mail goes out, the job that mails it.
async fn write(
    db: &impl ConnectionTrait,
    state: &AppState,
    about: impl Into<About>,
    follower: &Follower,
    draft: Draft,
) -> AppResult<Added> {
    let about = about.into();
    let now = Utc::now();
    let row = notification::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(about.org_id),
        user_id: Set(Some(follower.user_id)),
        kind: Set(draft.kind.as_str().into()),
        title: Set(draft.title),
        body: Set(draft.body),
        read_at: Set(None),
        created_at: Set(now),
        target_id: Set(about.target_id),
        scan_id: Set(about.scan_id),
        severity: Set(draft.severity.map(|s| s.as_str().to_string())),
    }
    .insert(db)
    .await?;
    if follower.prefs.email && state.mailer.is_configured() {
        job::ActiveModel {
            id: Set(Uuid::now_v7()),
            kind: Set(jobs::NOTIFICATION_EMAIL.into()),
            org_id: Set(Some(about.org_id)),
            scan_id: Set(None),
            payload: Set(json!({ "notification": row.id })),
            status: Set("queued".into()),
            attempts: Set(0),
            max_attempts: Set(state.config.job_max_attempts.max(1)),
            run_at: Set(now),
            lease_owner: Set(None),
            lease_expires_at: Set(None),
            last_error: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(db)
        .await?;
    }
    Ok(Added {
        org_id: about.org_id,
        user_id: follower.user_id,
        notification: row.into(),
    })
}

async fn scan_and_target(
    db: &impl ConnectionTrait,
    scan_id: Uuid,
) -> AppResult<Option<(scan::Model, String)>> {
    let Some(scan) = scan::Entity::find_by_id(scan_id).one(db).await? else {
        return Ok(None);
    };
    let name = target::Entity::find_by_id(scan.target_id)
        .filter(target::Column::OrgId.eq(scan.org_id))
        .one(db)
        .await?
        .map_or_else(|| scan.target_id.to_string(), |t| t.name);
    Ok(Some((scan, name)))
}

fn plural(n: i64, one: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// The text of a `finding.new` notification for someone whose minimum is `min`, or `None` when
/// nothing new reaches it. `counts` are the scan's new findings per severity, `worst` the
/// worst of them (at most [`LISTED_FINDINGS`], worst first).
fn new_findings_draft(
    target_name: &str,
    scan_id: Uuid,
    counts: &[(Severity, i64)],
    worst: &[finding::Model],
    min: Severity,
) -> Option<Draft> {
    let reaching: Vec<(Severity, i64)> = Severity::ALL
        .into_iter()
        .filter(|s| *s >= min)
        .filter_map(|s| {
            counts
                .iter()
                .find(|(c, n)| *c == s && *n > 0)
                .map(|(_, n)| (s, *n))
        })
        .collect();
    let total: i64 = reaching.iter().map(|(_, n)| n).sum();
    let (worst_severity, _) = *reaching.first()?;
    let breakdown: Vec<String> = reaching
        .iter()
        .map(|(s, n)| format!("{n} {}", s.as_str()))
        .collect();
    let title = format!(
        "{} on {target_name} ({})",
        plural(total, "new finding"),
        breakdown.join(", ")
    );
    let mut body = format!(
        "A scan of {target_name} found {} at or above {}:\n",
        plural(total, "new finding"),
        min.as_str()
    );
    let listed: Vec<&finding::Model> = worst
        .iter()
        .filter(|f| Severity::parse(&f.severity).is_ok_and(|s| s >= min))
        .collect();
    for f in &listed {
        body.push_str(&format!("- [{}] {}", f.severity, f.title));
        if let Some(path) = &f.location_path {
            body.push_str(&format!(" ({path}"));
            if let Some(line) = f.location_line {
                body.push_str(&format!(":{line}"));
            }
            body.push(')');
        }
        body.push('\n');
    }
    let more = total - listed.len() as i64;
    if more > 0 {
        body.push_str(&format!("… and {more} more.\n"));
    }
    body.push_str(&format!(
        "\nScan: /api/v1/scans/{scan_id}\nNew findings: /api/v1/findings?new_in_scan={scan_id}\n"
    ));
    Some(Draft {
        kind: NotificationKind::FindingNew,
        title,
        body,
        severity: Some(worst_severity),
    })
}

/// A scan completed: `finding.new` for each follower of its target whom a new finding
/// reaches. Call in the transaction that completes the scan; publish what it returns after
/// the commit.
///
/// # Errors
/// Only on database failure.
pub async fn scan_completed(
    db: &impl ConnectionTrait,
    state: &AppState,
    scan_id: Uuid,
) -> AppResult<Vec<Added>> {
    let Some((scan, target_name)) = scan_and_target(db, scan_id).await? else {
        return Ok(Vec::new());
    };
    if scan.findings_new == 0 {
        return Ok(Vec::new());
    }
    let followers = followers(db, scan.org_id, scan.target_id).await?;
    let wanting: Vec<&Follower> = followers
        .iter()
        .filter(|f| f.prefs.wants(NotificationKind::FindingNew))
        .collect();
    if wanting.is_empty() {
        return Ok(Vec::new());
    }
    let new_of_scan = || {
        finding::Entity::find()
            .inner_join(scan_finding::Entity)
            .filter(scan_finding::Column::ScanId.eq(scan.id))
            .filter(scan_finding::Column::OrgId.eq(scan.org_id))
            .filter(scan_finding::Column::Change.is_in(["new", "reopened"]))
    };
    let stored: Vec<(String, i64)> = new_of_scan()
        .select_only()
        .column(finding::Column::Severity)
        .column_as(finding::Column::Id.count(), "n")
        .group_by(finding::Column::Severity)
        .into_tuple()
        .all(db)
        .await?;
    let counts: Vec<(Severity, i64)> = stored
        .iter()
        .filter_map(|(s, n)| Severity::parse(s).ok().map(|s| (s, *n)))
        .collect();
    let lowest = wanting
        .iter()
        .map(|f| f.prefs.min_severity)
        .min()
        .unwrap_or(Severity::High);
    let mut worst: Vec<finding::Model> = Vec::new();
    for severity in Severity::ALL.into_iter().filter(|s| *s >= lowest) {
        let room = LISTED_FINDINGS.saturating_sub(worst.len() as u64);
        if room == 0 {
            break;
        }
        if !counts.iter().any(|(s, n)| *s == severity && *n > 0) {
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
    let mut added = Vec::new();
    for follower in wanting {
        let draft = new_findings_draft(
            &target_name,
            scan.id,
            &counts,
            &worst,
            follower.prefs.min_severity,
        );
        if let Some(draft) = draft {
            added.push(write(db, state, &scan, follower, draft).await?);
        }
    }
    Ok(added)
}

/// Findings were assigned to someone: `finding.assigned` for them, unless they assigned them
/// to themselves, are no longer an active member, or do not want it. `findings` are the
/// assigned ones (all of the org); the notification names up to [`LISTED_FINDINGS`]. Call in
/// the transaction that assigns; publish what it returns after the commit.
///
/// # Errors
/// Only on database failure.
pub async fn findings_assigned(
    db: &impl ConnectionTrait,
    state: &AppState,
    ctx: &Ctx,
    assignee: Uuid,
    findings: &[finding::Model],
) -> AppResult<Option<Added>> {
    findings_assigned_count(db, state, ctx, assignee, findings, findings.len()).await
}

/// [`findings_assigned`] for `total` findings of which `findings` are the ones named.
///
/// # Errors
/// Only on database failure.
pub async fn findings_assigned_count(
    db: &impl ConnectionTrait,
    state: &AppState,
    ctx: &Ctx,
    assignee: Uuid,
    findings: &[finding::Model],
    total: usize,
) -> AppResult<Option<Added>> {
    if ctx.user_id() == Some(assignee) || findings.is_empty() {
        return Ok(None);
    }
    let Some(person) = people(db, ctx.org_id, vec![assignee]).await?.pop() else {
        return Ok(None);
    };
    if !person.prefs.wants(NotificationKind::FindingAssigned) {
        return Ok(None);
    }
    let by = ctx.actor_label();
    let worst = findings
        .iter()
        .filter_map(|f| Severity::parse(&f.severity).ok())
        .max();
    let (title, target_id) = match findings {
        [one] if total == 1 => (
            format!("{by} assigned you a finding: {}", one.title),
            Some(one.target_id),
        ),
        _ => (
            format!("{by} assigned you {}", plural(total as i64, "finding")),
            None,
        ),
    };
    let mut body = format!("{by} assigned you:\n");
    for f in findings.iter().take(LISTED_FINDINGS as usize) {
        body.push_str(&format!(
            "- [{}] {} (/api/v1/findings/{})\n",
            f.severity, f.title, f.id
        ));
    }
    let more = total.saturating_sub(findings.len().min(LISTED_FINDINGS as usize));
    if more > 0 {
        body.push_str(&format!("… and {more} more.\n"));
    }
    body.push_str("\nYour findings: /api/v1/findings?assigned_to_me=true\n");
    let about = About {
        org_id: ctx.org_id,
        target_id,
        scan_id: None,
    };
    let draft = Draft {
        kind: NotificationKind::FindingAssigned,
        title,
        body,
        severity: worst,
    };
    Ok(Some(write(db, state, about, &person, draft).await?))
}

/// An accepted risk lapses soon: `risk_acceptance.expiring` for the followers of its target
/// and its assignee, who want it. Call in the transaction that records the announcement.
///
/// # Errors
/// Only on database failure.
pub async fn risk_expiring(
    db: &impl ConnectionTrait,
    state: &AppState,
    row: &finding::Model,
    now: chrono::DateTime<Utc>,
) -> AppResult<Vec<Added>> {
    let Some(expires_at) = row.triage_expires_at else {
        return Ok(Vec::new());
    };
    let people = watchers(db, row).await?;
    let target_name = target::Entity::find_by_id(row.target_id)
        .one(db)
        .await?
        .map_or_else(|| row.target_id.to_string(), |t| t.name);
    let days = (expires_at - now).num_hours().max(0) / 24;
    let when = match days {
        0 => "within a day".to_string(),
        1 => "in 1 day".to_string(),
        n => format!("in {n} days"),
    };
    let mut added = Vec::new();
    for person in people {
        if !person.prefs.wants(NotificationKind::RiskAcceptanceExpiring) {
            continue;
        }
        let draft = Draft {
            kind: NotificationKind::RiskAcceptanceExpiring,
            title: format!(
                "Accepted risk on {target_name} lapses {when}: {}",
                row.title
            ),
            body: format!(
                "The accepted risk on [{}] {} ({target_name}) lapses at {}; after that the \
                 finding counts as untriaged again.\n\nFinding: /api/v1/findings/{}\n",
                row.severity,
                row.title,
                expires_at.to_rfc3339(),
                row.id
            ),
            severity: Severity::parse(&row.severity).ok(),
        };
        let about = About {
            org_id: row.org_id,
            target_id: Some(row.target_id),
            scan_id: None,
        };
        added.push(write(db, state, about, &person, draft).await?);
    }
    Ok(added)
}

/// The followers of a finding's target and its assignee, once each.
async fn watchers(db: &impl ConnectionTrait, row: &finding::Model) -> AppResult<Vec<Follower>> {
    let mut people = followers(db, row.org_id, row.target_id).await?;
    if let Some(assignee) = row.assignee_id {
        if !people.iter().any(|p| p.user_id == assignee) {
            people.extend(self::people(db, row.org_id, vec![assignee]).await?);
        }
    }
    Ok(people)
}

/// An open finding passed its SLA due date: `sla.breached` for the followers of its target and
/// its assignee, who want it. Call in the transaction that records the announcement.
///
/// # Errors
/// Only on database failure.
pub async fn sla_breached(
    db: &impl ConnectionTrait,
    state: &AppState,
    row: &finding::Model,
    due_at: Option<chrono::DateTime<Utc>>,
) -> AppResult<Vec<Added>> {
    let target_name = target::Entity::find_by_id(row.target_id)
        .one(db)
        .await?
        .map_or_else(|| row.target_id.to_string(), |t| t.name);
    let mut added = Vec::new();
    for person in watchers(db, row).await? {
        if !person.prefs.wants(NotificationKind::SlaBreached) {
            continue;
        }
        let draft = Draft {
            kind: NotificationKind::SlaBreached,
            title: format!(
                "SLA breached on {target_name}: [{}] {}",
                row.severity, row.title
            ),
            body: format!(
                "[{}] {} on {target_name} was due {} and is still open.\n\nFinding: \
                 /api/v1/findings/{}\n",
                row.severity,
                row.title,
                due_at.map_or_else(
                    || "by now".to_string(),
                    |d| format!("at {}", d.to_rfc3339())
                ),
                row.id
            ),
            severity: Severity::parse(&row.severity).ok(),
        };
        let about = About {
            org_id: row.org_id,
            target_id: Some(row.target_id),
            scan_id: None,
        };
        added.push(write(db, state, about, &person, draft).await?);
    }
    Ok(added)
}

/// A webhook was disabled: `webhook.disabled` for the org's owners and admins who want it.
/// Call in the transaction that disables it.
///
/// # Errors
/// Only on database failure.
pub async fn webhook_disabled(
    db: &impl ConnectionTrait,
    state: &AppState,
    hook: &entity::webhook::Model,
    reason: &str,
) -> AppResult<Vec<Added>> {
    let admins: Vec<Uuid> = membership::Entity::find()
        .select_only()
        .column(membership::Column::UserId)
        .filter(membership::Column::OrgId.eq(hook.org_id))
        .filter(membership::Column::Role.is_in(["owner", "admin"]))
        .into_tuple()
        .all(db)
        .await?;
    let mut added = Vec::new();
    for person in people(db, hook.org_id, admins).await? {
        if !person.prefs.wants(NotificationKind::WebhookDisabled) {
            continue;
        }
        let draft = Draft {
            kind: NotificationKind::WebhookDisabled,
            title: format!("Webhook to {} was disabled", hook.url),
            body: format!(
                "The webhook to {} was disabled: {reason}. Enable it again once the endpoint \
                 answers.\n\nWebhook: /api/v1/webhooks/{}\n",
                hook.url, hook.id
            ),
            severity: None,
        };
        let about = About {
            org_id: hook.org_id,
            target_id: None,
            scan_id: None,
        };
        added.push(write(db, state, about, &person, draft).await?);
    }
    Ok(added)
}

/// A scan failed: `scan.failed` for each follower of its target who wants it. Call in the
/// transaction that fails the scan; publish what it returns after the commit.
///
/// # Errors
/// Only on database failure.
pub async fn scan_failed(
    db: &impl ConnectionTrait,
    state: &AppState,
    scan_id: Uuid,
) -> AppResult<Vec<Added>> {
    let Some((scan, target_name)) = scan_and_target(db, scan_id).await? else {
        return Ok(Vec::new());
    };
    let mut added = Vec::new();
    for follower in followers(db, scan.org_id, scan.target_id).await? {
        if !follower.prefs.wants(NotificationKind::ScanFailed) {
            continue;
        }
        let reason = scan.error.as_deref().unwrap_or("no reason was recorded");
        let draft = Draft {
            kind: NotificationKind::ScanFailed,
            title: format!("A scan of {target_name} failed"),
            body: format!(
                "The scan of {target_name} by {} failed: {reason}\n\nScan: /api/v1/scans/{}\n",
                if scan.scanner_name.is_empty() {
                    "an unnamed scanner"
                } else {
                    scan.scanner_name.as_str()
                },
                scan.id
            ),
            severity: None,
        };
        added.push(write(db, state, &scan, &follower, draft).await?);
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(severity: &str, title: &str) -> finding::Model {
        finding::Model {
            id: Uuid::now_v7(),
            org_id: Uuid::nil(),
            target_id: Uuid::nil(),
            fingerprint: title.into(),
            scanner: "s".into(),
            rule_id: "r".into(),
            title: title.into(),
            severity: severity.into(),
            cve_ids: "[]".into(),
            location_path: Some("src/a.rs".into()),
            location_line: Some(3),
            component: None,
            description: String::new(),
            rule_ref: None,
            occurrences: 1,
            status: "open".into(),
            first_seen_at: Utc::now(),
            last_seen_at: Utc::now(),
            fixed_at: None,
            first_scan_id: None,
            last_scan_id: None,
            triage_state: "untriaged".into(),
            triage_note: None,
            triage_expires_at: None,
            triaged_by: None,
            triaged_at: None,
            assignee_id: None,
            suppressed_by: None,
            suppressed_until: None,
            risk_notice_for: None,
            sla_breach_noticed_at: None,
            due_at: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn new_findings_reach_each_person_from_their_minimum_up() {
        let scan = Uuid::now_v7();
        let counts = [
            (Severity::Critical, 1),
            (Severity::High, 2),
            (Severity::Low, 5),
        ];
        let worst = [
            finding("critical", "RCE"),
            finding("high", "XSS"),
            finding("high", "SSRF"),
            finding("low", "Banner"),
        ];
        let draft = new_findings_draft("shop", scan, &counts, &worst, Severity::High).unwrap();
        assert_eq!(draft.title, "3 new findings on shop (1 critical, 2 high)");
        assert_eq!(draft.severity, Some(Severity::Critical));
        assert!(draft.body.contains("- [critical] RCE (src/a.rs:3)"));
        assert!(!draft.body.contains("Banner"));
        let critical =
            new_findings_draft("shop", scan, &counts, &worst, Severity::Critical).unwrap();
        assert_eq!(critical.title, "1 new finding on shop (1 critical)");
        assert!(
            new_findings_draft("shop", scan, &[(Severity::Low, 5)], &worst, Severity::High)
                .is_none()
        );
        let all = new_findings_draft("shop", scan, &counts, &worst[..1], Severity::Info).unwrap();
        assert!(all.body.contains("… and 7 more."), "{}", all.body);
    }
}
