//! When a finding is due and where it stands: the same rules in Rust (one finding) and as SQL
//! conditions (filters and counts), so a list filtered by state and the state shown agree.

use chrono::{DateTime, Duration, Utc};
use entity::finding;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, Condition};

use super::SlaPolicy;
use crate::findings::{settled_condition, FindingStatus, Severity, TriageState};
use crate::stored_enum;

stored_enum! {
    /// Where an open finding stands against its due date.
    SlaState, "sla_state" {
        /// Due later than the due-soon margin from now.
        OnTime => "on_time",
        /// Due within the margin: the smaller of 7 days and 20% of the severity's SLA.
        DueSoon => "due_soon",
        /// Past its due date and still open.
        Breached => "breached",
    }
}

/// The due-soon margin of a severity: 20% of its SLA window, at most 7 days (7 days when the
/// policy gives the severity none and the due date was set by hand).
pub fn due_soon_margin(policy: &SlaPolicy, severity: Severity) -> Duration {
    let week = Duration::days(7);
    match policy.days(severity) {
        // 20% of d days = d × 17,280 seconds.
        Some(days) => Duration::seconds(i64::from(days) * 17_280).min(week),
        None => week,
    }
}

/// When a finding is due: its explicit due date, else first seen + the policy's days for its
/// severity; none when neither applies.
pub fn due_at(
    policy: &SlaPolicy,
    severity: Severity,
    first_seen: DateTime<Utc>,
    explicit: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    explicit.or_else(|| {
        policy
            .days(severity)
            .map(|d| first_seen + Duration::days(i64::from(d)))
    })
}

/// The SLA state of a finding at `now`; none for a fixed finding, a settled one (false
/// positive, or risk accepted until an expiry still ahead) or one without a due date.
/// `triage` is the state as readers see it (a lapsed acceptance reads as untriaged).
pub fn sla_state(
    policy: &SlaPolicy,
    severity: Severity,
    status: FindingStatus,
    triage: TriageState,
    due: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<SlaState> {
    if status != FindingStatus::Open
        || matches!(
            triage,
            TriageState::FalsePositive | TriageState::AcceptedRisk
        )
    {
        return None;
    }
    let due = due?;
    Some(if due < now {
        SlaState::Breached
    } else if due - now <= due_soon_margin(policy, severity) {
        SlaState::DueSoon
    } else {
        SlaState::OnTime
    })
}

/// A condition that is never true, for an `any` that would otherwise be empty.
fn never() -> Condition {
    Condition::all().add(Expr::val(1).eq(0))
}

/// The findings in `state` at `now`, as a condition on `finding` rows: open, not settled,
/// and due (explicitly, or by the policy) in the state's range. Mirrors [`sla_state`].
pub fn state_condition(policy: &SlaPolicy, state: SlaState, now: DateTime<Utc>) -> Condition {
    let mut explicit = Condition::any().add(never());
    let mut derived = Condition::any().add(never());
    for severity in Severity::ALL {
        let margin = due_soon_margin(policy, severity);
        let is = finding::Column::Severity.eq(severity.as_str());
        let due = finding::Column::DueAt;
        explicit = explicit.add(match state {
            SlaState::Breached => Condition::all().add(is.clone()).add(due.lt(now)),
            SlaState::DueSoon => Condition::all()
                .add(is.clone())
                .add(due.gte(now))
                .add(due.lte(now + margin)),
            SlaState::OnTime => Condition::all().add(is.clone()).add(due.gt(now + margin)),
        });
        if let Some(days) = policy.days(severity) {
            // due = first seen + days, so due < now ⇔ first seen < now - days, and so on.
            let latest_on_time = now - Duration::days(i64::from(days));
            let seen = finding::Column::FirstSeenAt;
            derived = derived.add(match state {
                SlaState::Breached => Condition::all().add(is).add(seen.lt(latest_on_time)),
                SlaState::DueSoon => Condition::all()
                    .add(is)
                    .add(seen.gte(latest_on_time))
                    .add(seen.lte(latest_on_time + margin)),
                SlaState::OnTime => Condition::all()
                    .add(is)
                    .add(seen.gt(latest_on_time + margin)),
            });
        }
    }
    Condition::all()
        .add(finding::Column::Status.eq(FindingStatus::Open.as_str()))
        .add(Condition::not(settled_condition(now)))
        .add(
            Condition::any()
                .add(
                    Condition::all()
                        .add(finding::Column::DueAt.is_not_null())
                        .add(explicit),
                )
                .add(
                    Condition::all()
                        .add(finding::Column::DueAt.is_null())
                        .add(derived),
                ),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(days: f64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap()
            + Duration::seconds((days * 86_400.0) as i64)
    }

    #[test]
    fn margins_are_a_fifth_of_the_window_at_most_a_week() {
        let p = SlaPolicy::default();
        assert_eq!(
            due_soon_margin(&p, Severity::Critical),
            Duration::hours(33) + Duration::minutes(36)
        );
        assert_eq!(due_soon_margin(&p, Severity::High), Duration::days(6));
        assert_eq!(due_soon_margin(&p, Severity::Medium), Duration::days(7));
        assert_eq!(due_soon_margin(&p, Severity::Low), Duration::days(7));
        assert_eq!(due_soon_margin(&p, Severity::Info), Duration::days(7));
    }

    #[test]
    fn states_from_first_seen_and_explicit_due_dates() {
        let p = SlaPolicy::default();
        let now = at(100.0);
        let state = |severity, seen: f64, explicit: Option<f64>, triage| {
            let due = due_at(&p, severity, at(seen), explicit.map(at));
            sla_state(&p, severity, FindingStatus::Open, triage, due, now)
        };
        let u = TriageState::Untriaged;
        // High: 30 days, due soon in the last 6.
        assert_eq!(
            state(Severity::High, 69.0, None, u),
            Some(SlaState::Breached)
        );
        assert_eq!(
            state(Severity::High, 71.0, None, u),
            Some(SlaState::DueSoon)
        );
        assert_eq!(
            state(Severity::High, 76.0, None, u),
            Some(SlaState::DueSoon)
        );
        assert_eq!(state(Severity::High, 77.0, None, u), Some(SlaState::OnTime));
        // Info has no SLA unless a due date is set.
        assert_eq!(state(Severity::Info, 0.0, None, u), None);
        assert_eq!(
            state(Severity::Info, 0.0, Some(99.0), u),
            Some(SlaState::Breached)
        );
        assert_eq!(
            state(Severity::Info, 0.0, Some(106.0), u),
            Some(SlaState::DueSoon)
        );
        // An explicit date wins over the policy.
        assert_eq!(
            state(Severity::High, 0.0, Some(200.0), u),
            Some(SlaState::OnTime)
        );
        // Settled findings are outside the SLA.
        assert_eq!(
            state(Severity::High, 0.0, None, TriageState::AcceptedRisk),
            None
        );
        assert_eq!(
            state(Severity::High, 0.0, None, TriageState::FalsePositive),
            None
        );
        assert_eq!(
            state(Severity::High, 0.0, None, TriageState::WontFix),
            Some(SlaState::Breached)
        );
        let fixed = sla_state(
            &p,
            Severity::High,
            FindingStatus::Fixed,
            u,
            Some(at(0.0)),
            now,
        );
        assert_eq!(fixed, None);
    }
}
