use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};
use entity::{comment, finding, rule};
use uuid::Uuid;

use crate::stored_enum;

pub use crate::ingest::Severity;

stored_enum! {
    /// Whether the problem is still there.
    FindingStatus, "status" {
        /// Seen in the latest scan of its scanner.
        Open => "open",
        /// Absent from a later scan of the same scanner.
        Fixed => "fixed",
    }
}

stored_enum! {
    /// What a person decided about a finding.
    TriageState, "state" {
        Untriaged => "untriaged",
        Confirmed => "confirmed",
        FalsePositive => "false_positive",
        /// Accepted until an expiry, after which the finding is untriaged again.
        AcceptedRisk => "accepted_risk",
        WontFix => "wont_fix",
    }
}

/// Where in the target the problem is.
#[derive(Clone, Debug, SimpleObject)]
pub struct Location {
    /// File or resource path.
    pub path: Option<String>,
    pub line: Option<i32>,
    /// Affected component (package URL) for dependency findings.
    pub component: Option<String>,
}

/// The current triage decision.
#[derive(Clone, Debug, SimpleObject)]
pub struct Triage {
    pub state: TriageState,
    pub note: Option<String>,
    /// For `ACCEPTED_RISK`: when the acceptance lapses.
    pub expires_at: Option<DateTime<Utc>>,
    /// Who decided.
    pub by: Option<String>,
    pub at: Option<DateTime<Utc>>,
}

/// One distinct problem on one target, tracked across scans by its fingerprint.
#[derive(Clone, Debug, SimpleObject)]
#[graphql(complex)]
pub struct Finding {
    pub id: Uuid,
    pub target_id: Uuid,
    /// The scanner that reports it.
    pub scanner: String,
    /// Stable identity across scans (see docs/fingerprints.md).
    pub fingerprint: String,
    pub rule_id: String,
    pub title: String,
    pub severity: Severity,
    pub cve_ids: Vec<String>,
    pub cwe_ids: Vec<String>,
    pub location: Location,
    pub description: String,
    pub remediation: Option<String>,
    /// How many times the latest scan reported it.
    pub occurrences: i32,
    pub status: FindingStatus,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub fixed_at: Option<DateTime<Utc>>,
    pub triage: Triage,
    /// The member who is to fix it.
    pub assignee_id: Option<Uuid>,
    /// The active suppression hiding it from counts, SLA and score, if any.
    pub suppression: Option<Suppression>,
    #[graphql(skip)]
    pub last_scan_id: Option<Uuid>,
    /// The due date a person set, if any (`dueAt` resolves it against the SLA policy).
    #[graphql(skip)]
    pub explicit_due_at: Option<DateTime<Utc>>,
}

/// Why a finding is suppressed, and until when.
#[derive(Clone, Debug, SimpleObject)]
pub struct Suppression {
    /// The suppression rule that matched.
    pub rule_id: Uuid,
    /// When the rule lapses; never when absent.
    pub until: Option<DateTime<Utc>>,
}

fn json_list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

impl Finding {
    /// The domain view of a row and its rule. An accepted risk past its expiry reads as
    /// untriaged, so the lapse takes effect on time without a sweeper.
    pub fn from_model(m: finding::Model, rule: Option<rule::Model>, now: DateTime<Utc>) -> Self {
        let mut state = TriageState::parse(&m.triage_state).unwrap_or(TriageState::Untriaged);
        let lapsed =
            state == TriageState::AcceptedRisk && m.triage_expires_at.is_some_and(|e| e <= now);
        if lapsed {
            state = TriageState::Untriaged;
        }
        Self {
            id: m.id,
            target_id: m.target_id,
            scanner: m.scanner,
            fingerprint: m.fingerprint,
            rule_id: m.rule_id,
            title: m.title,
            severity: Severity::parse(&m.severity).unwrap_or(Severity::Info),
            cve_ids: json_list(&m.cve_ids),
            cwe_ids: rule
                .as_ref()
                .map(|r| json_list(&r.cwe_ids))
                .unwrap_or_default(),
            location: Location {
                path: m.location_path,
                line: m.location_line,
                component: m.component,
            },
            description: crate::ingest::finding::shown_description(
                &m.description,
                rule.as_ref().and_then(|r| r.description.as_deref()),
            ),
            remediation: rule.and_then(|r| r.remediation),
            occurrences: m.occurrences,
            status: FindingStatus::parse(&m.status).unwrap_or(FindingStatus::Open),
            first_seen_at: m.first_seen_at,
            last_seen_at: m.last_seen_at,
            fixed_at: m.fixed_at,
            triage: Triage {
                state,
                note: if lapsed { None } else { m.triage_note },
                expires_at: if lapsed { None } else { m.triage_expires_at },
                by: if lapsed { None } else { m.triaged_by },
                at: if lapsed { None } else { m.triaged_at },
            },
            assignee_id: m.assignee_id,
            suppression: m
                .suppressed_by
                .filter(|_| m.suppressed_until.is_none_or(|until| until > now))
                .map(|rule_id| Suppression {
                    rule_id,
                    until: m.suppressed_until,
                }),
            last_scan_id: m.last_scan_id,
            explicit_due_at: m.due_at,
        }
    }
}

/// A note on a finding.
#[derive(Clone, Debug, SimpleObject)]
pub struct Comment {
    pub id: Uuid,
    pub finding_id: Uuid,
    pub body: String,
    /// Who wrote it.
    pub author: String,
    #[graphql(skip)]
    pub author_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

impl From<comment::Model> for Comment {
    fn from(m: comment::Model) -> Self {
        Self {
            id: m.id,
            finding_id: m.finding_id,
            body: m.body,
            author: m.author_label,
            author_id: m.author_id,
            created_at: m.created_at,
        }
    }
}

/// Findings per severity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, SimpleObject)]
pub struct SeverityCounts {
    pub critical: i64,
    pub high: i64,
    pub medium: i64,
    pub low: i64,
    pub info: i64,
    pub total: i64,
}

impl SeverityCounts {
    pub fn add(&mut self, severity: Severity, n: i64) {
        match severity {
            Severity::Critical => self.critical += n,
            Severity::High => self.high += n,
            Severity::Medium => self.medium += n,
            Severity::Low => self.low += n,
            Severity::Info => self.info += n,
        }
        self.total += n;
    }
}
