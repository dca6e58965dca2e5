//! The API shapes of notifications and of a person's choices about them.

use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};
use entity::{notification, notification_preference};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::findings::Severity;
use crate::stored_enum;

stored_enum! {
    /// What a notification is about. Finding assignment, SLA breaches and expiring risk
    /// acceptances do not exist yet, so neither do notifications of them.
    NotificationKind, "kinds" {
        /// New findings at or above the person's minimum severity on a target they follow.
        FindingNew => "finding.new",
        /// A scan of a target they follow failed.
        ScanFailed => "scan.failed",
        /// Someone assigned findings to them.
        FindingAssigned => "finding.assigned",
        /// An accepted risk on a target they follow, or a finding assigned to them, lapses soon.
        RiskAcceptanceExpiring => "risk_acceptance.expiring",
        /// A finding on a target they follow, or assigned to them, passed its SLA due date.
        SlaBreached => "sla.breached",
        /// A webhook of an org they administer was disabled (its endpoint kept failing, or
        /// answered 410 Gone).
        WebhookDisabled => "webhook.disabled",
    }
}

/// One notification of the signed-in person, in the org they are signed in to.
#[derive(Clone, Debug, SimpleObject, Serialize, Deserialize)]
pub struct Notification {
    pub id: Uuid,
    pub kind: NotificationKind,
    /// One line.
    pub title: String,
    /// The details, plain text.
    pub body: String,
    /// The worst severity it reports (`FINDING_NEW`).
    pub severity: Option<Severity>,
    /// The target it is about.
    pub target_id: Option<Uuid>,
    /// The scan it is about.
    pub scan_id: Option<Uuid>,
    /// Whether it has been marked read.
    pub read: bool,
    pub read_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<notification::Model> for Notification {
    fn from(m: notification::Model) -> Self {
        Self {
            id: m.id,
            kind: NotificationKind::parse(&m.kind).unwrap_or(NotificationKind::FindingNew),
            title: m.title,
            body: m.body,
            severity: m.severity.as_deref().and_then(|s| Severity::parse(s).ok()),
            target_id: m.target_id,
            scan_id: m.scan_id,
            read: m.read_at.is_some(),
            read_at: m.read_at,
            created_at: m.created_at,
        }
    }
}

/// How many notifications the person has in this org.
#[derive(Clone, Copy, Debug, SimpleObject)]
pub struct NotificationCounts {
    /// Not yet marked read.
    pub unread: u64,
    pub total: u64,
}

/// What marking every notification read changed.
#[derive(Clone, Copy, Debug, SimpleObject)]
pub struct MarkedRead {
    /// Notifications that were unread and are read now.
    pub count: u64,
}

/// A person's notification choices in one org.
#[derive(Clone, Debug, PartialEq, SimpleObject)]
pub struct NotificationPreferences {
    /// The kinds of event that notify (by default all of them).
    pub kinds: Vec<NotificationKind>,
    /// New findings notify from this severity up (`HIGH` by default: critical and high).
    pub min_severity: Severity,
    /// Whether notifications are mailed too, when the server has an SMTP relay (default true).
    pub email: bool,
}

impl Default for NotificationPreferences {
    fn default() -> Self {
        Self {
            kinds: NotificationKind::ALL.to_vec(),
            min_severity: Severity::High,
            email: true,
        }
    }
}

impl NotificationPreferences {
    /// Whether `kind` notifies.
    pub fn wants(&self, kind: NotificationKind) -> bool {
        self.kinds.contains(&kind)
    }

    /// The kinds as stored (a JSON array of their names).
    pub fn stored_kinds(&self) -> String {
        let names: Vec<&str> = self.kinds.iter().map(|k| k.as_str()).collect();
        serde_json::to_string(&names).unwrap_or_else(|_| "[]".into())
    }
}

impl From<notification_preference::Model> for NotificationPreferences {
    fn from(m: notification_preference::Model) -> Self {
        let kinds = serde_json::from_str::<Vec<String>>(&m.kinds)
            .unwrap_or_default()
            .iter()
            .filter_map(|k| NotificationKind::parse(k).ok())
            .collect();
        Self {
            kinds,
            min_severity: Severity::parse(&m.min_severity).unwrap_or(Severity::High),
            email: m.email,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preferences_survive_storage_and_skip_unknown_kinds() {
        let prefs = NotificationPreferences {
            kinds: vec![NotificationKind::ScanFailed],
            min_severity: Severity::Critical,
            email: false,
        };
        let stored = notification_preference::Model {
            user_id: Uuid::nil(),
            org_id: Uuid::nil(),
            kinds: prefs.stored_kinds(),
            min_severity: prefs.min_severity.as_str().into(),
            email: prefs.email,
            updated_at: Utc::now(),
        };
        assert_eq!(stored.kinds, r#"["scan.failed"]"#);
        assert_eq!(NotificationPreferences::from(stored.clone()), prefs);
        let with_unknown = notification_preference::Model {
            kinds: r#"["no.such.kind","finding.new"]"#.into(),
            ..stored
        };
        assert_eq!(
            NotificationPreferences::from(with_unknown).kinds,
            [NotificationKind::FindingNew]
        );
    }

    #[test]
    fn the_defaults_notify_of_everything_from_high_up() {
        let prefs = NotificationPreferences::default();
        assert!(
            prefs.wants(NotificationKind::FindingNew) && prefs.wants(NotificationKind::ScanFailed)
        );
        assert_eq!(prefs.min_severity, Severity::High);
        assert!(prefs.email);
    }
}
