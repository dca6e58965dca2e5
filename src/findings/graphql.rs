use std::collections::HashMap;

use async_graphql::{ComplexObject, Context, InputObject, Object, Result};
use chrono::{DateTime, Utc};
use entity::comment;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use super::{
    BulkChange, BulkSelection, Comment, Finding, FindingFilter, FindingOrderField, FindingStatus,
    Severity, SuppressionFilter, TriageChange, TriageState,
};
use crate::error::AppError;
use crate::graphql::batch::BatchFn;
use crate::graphql::loaders::{load, OrgLoader, OrgScope};
use crate::graphql::pagination::{OrderDirection, PageArgs, PagedConnection};
use crate::graphql::{caller, state};
use crate::scans::graphql::ScanLoader;
use crate::scans::Scan;
use crate::targets::graphql::TargetLoader;
use crate::targets::Target;

/// Comments of each finding, oldest first, in the caller's org.
pub struct CommentsLoader(OrgScope);

impl OrgLoader for CommentsLoader {
    fn new(scope: OrgScope) -> Self {
        Self(scope)
    }
}

impl BatchFn for CommentsLoader {
    type Key = Uuid;
    type Value = Vec<Comment>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Vec<Comment>>, Self::Error> {
        let rows = comment::Entity::find()
            .filter(comment::Column::OrgId.eq(self.0.org_id))
            .filter(comment::Column::FindingId.is_in(keys.iter().copied()))
            .order_by_asc(comment::Column::CreatedAt)
            .order_by_asc(comment::Column::Id)
            .all(&self.0.db)
            .await
            .map_err(AppError::from)?;
        let mut out: HashMap<Uuid, Vec<Comment>> = HashMap::new();
        for row in rows {
            out.entry(row.finding_id).or_default().push(row.into());
        }
        Ok(out)
    }
}

#[ComplexObject]
impl Finding {
    /// Where it was found.
    async fn target(&self, ctx: &Context<'_>) -> Result<Target> {
        load::<TargetLoader>(ctx, self.target_id)
            .await?
            .ok_or_else(|| AppError::not_found("target").into())
    }

    /// The latest scan that saw it.
    async fn latest_scan(&self, ctx: &Context<'_>) -> Result<Option<Scan>> {
        match self.last_scan_id {
            Some(id) => load::<ScanLoader>(ctx, id).await,
            None => Ok(None),
        }
    }

    /// When it is due: the date a person set, else first seen + the org's SLA days for its
    /// severity; absent when neither applies (docs/sla.md).
    async fn due_at(&self, ctx: &Context<'_>) -> Result<Option<DateTime<Utc>>> {
        let policy = crate::sla::graphql::org_policy(ctx).await?;
        Ok(crate::sla::due_at(
            &policy,
            self.severity,
            self.first_seen_at,
            self.explicit_due_at,
        ))
    }

    /// Where it stands against its due date; absent when it is fixed, has no due date, or is
    /// settled (a false positive, a risk accepted until an expiry still ahead, or suppressed).
    async fn sla_state(&self, ctx: &Context<'_>) -> Result<Option<crate::sla::SlaState>> {
        if self.suppression.is_some() {
            return Ok(None);
        }
        let policy = crate::sla::graphql::org_policy(ctx).await?;
        let due = crate::sla::due_at(
            &policy,
            self.severity,
            self.first_seen_at,
            self.explicit_due_at,
        );
        Ok(crate::sla::sla_state(
            &policy,
            self.severity,
            self.status,
            self.triage.state,
            due,
            chrono::Utc::now(),
        ))
    }

    /// Notes on it, oldest first.
    async fn comments(&self, ctx: &Context<'_>) -> Result<Vec<Comment>> {
        Ok(load::<CommentsLoader>(ctx, self.id)
            .await?
            .unwrap_or_default())
    }
}

/// How to sort findings.
#[derive(InputObject)]
pub struct FindingOrder {
    #[graphql(default)]
    pub field: FindingOrderField,
    #[graphql(default)]
    pub direction: OrderDirection,
}

/// A triage decision.
#[derive(InputObject)]
pub struct SetFindingStateInput {
    pub state: TriageState,
    /// Why (up to 4000 characters).
    pub note: Option<String>,
    /// Required for `ACCEPTED_RISK`: when the finding returns to `UNTRIAGED`.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Which findings a bulk request changes: `ids`, or every finding `filter` selects.
#[derive(InputObject)]
pub struct BulkFindingsSelection {
    pub ids: Option<Vec<Uuid>>,
    pub filter: Option<FindingFilterInput>,
}

/// The findings query's filter, for bulk requests.
#[derive(InputObject, Default)]
pub struct FindingFilterInput {
    pub target_id: Option<Uuid>,
    pub scan_id: Option<Uuid>,
    pub severity: Option<Vec<Severity>>,
    pub status: Option<FindingStatus>,
    pub triage_state: Option<TriageState>,
    pub rule_id: Option<String>,
    pub cve: Option<String>,
    pub search: Option<String>,
    pub assignee_id: Option<Uuid>,
    pub suppression: Option<SuppressionFilter>,
    pub sla_state: Option<crate::sla::SlaState>,
}

/// What to do to each selected finding: any of a triage decision, an assignment and a comment.
#[derive(InputObject)]
pub struct BulkTriageInput {
    pub findings: BulkFindingsSelection,
    pub state: Option<TriageState>,
    /// Why (up to 4000 characters); with `state`.
    pub note: Option<String>,
    /// Required with `ACCEPTED_RISK`.
    pub expires_at: Option<DateTime<Utc>>,
    /// Assign to this member.
    pub assignee_id: Option<Uuid>,
    /// Remove the assignee (instead of `assigneeId`).
    #[graphql(default)]
    pub unassign: bool,
    /// A comment added to each finding.
    pub comment: Option<String>,
}

/// What a bulk request did.
#[derive(async_graphql::SimpleObject)]
pub struct BulkTriageResult {
    /// Findings changed.
    pub count: u64,
}

impl BulkTriageInput {
    fn into_parts(self) -> Result<(BulkSelection, BulkChange), AppError> {
        let selection = match (self.findings.ids, self.findings.filter) {
            (Some(ids), None) => BulkSelection::Ids(ids),
            (None, Some(f)) => BulkSelection::Filter(Box::new(FindingFilter {
                target_id: f.target_id,
                scan_id: f.scan_id,
                new_in_scan: None,
                severity: f.severity.unwrap_or_default(),
                status: f.status,
                triage_state: f.triage_state,
                rule_id: f.rule_id,
                cve: f.cve,
                search: f.search,
                assignee_id: f.assignee_id,
                assigned_to_me: false,
                suppression: f.suppression.unwrap_or_default(),
                sla_state: f.sla_state,
            })),
            _ => return Err(AppError::invalid("findings", "give either ids or filter")),
        };
        let assignee = match (self.assignee_id, self.unassign) {
            (Some(_), true) => {
                return Err(AppError::invalid(
                    "unassign",
                    "cannot be combined with assigneeId",
                ))
            }
            (Some(id), false) => Some(Some(id)),
            (None, true) => Some(None),
            (None, false) => None,
        };
        let triage = match self.state {
            Some(state) => Some(TriageChange {
                state,
                note: self.note,
                expires_at: self.expires_at,
            }),
            None if self.note.is_some() || self.expires_at.is_some() => {
                return Err(AppError::invalid(
                    "state",
                    "is required with note or expiresAt",
                ))
            }
            None => None,
        };
        Ok((
            selection,
            BulkChange {
                triage,
                assignee,
                comment: self.comment,
            },
        ))
    }
}

#[derive(Default)]
pub struct FindingsQuery;

#[Object]
impl FindingsQuery {
    /// The org's findings across scans, worst first by default.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "crate::graphql::costs::list_cost(search.as_ref()) + child_complexity")]
    async fn findings(
        &self,
        ctx: &Context<'_>,
        target_id: Option<Uuid>,
        #[graphql(desc = "Only findings this scan saw.")] scan_id: Option<Uuid>,
        #[graphql(desc = "Only findings new (or reopened) in this scan.")] new_in_scan: Option<
            Uuid,
        >,
        #[graphql(desc = "Any of these severities.")] severity: Option<Vec<Severity>>,
        status: Option<FindingStatus>,
        triage_state: Option<TriageState>,
        rule_id: Option<String>,
        #[graphql(desc = "A CVE id, e.g. `CVE-2024-3094`.")] cve: Option<String>,
        #[graphql(desc = "Case-insensitive part of title, description, rule or path.")]
        search: Option<String>,
        #[graphql(desc = "Only findings assigned to this member.")] assignee_id: Option<Uuid>,
        #[graphql(desc = "Only findings assigned to me (signed-in users).")] assigned_to_me: Option<
            bool,
        >,
        #[graphql(desc = "Suppressed findings are left out unless asked for.")] suppression: Option<
            SuppressionFilter,
        >,
        #[graphql(desc = "Open findings in this SLA state.")] sla_state: Option<
            crate::sla::SlaState,
        >,
        order_by: Option<FindingOrder>,
        first: Option<i32>,
        after: Option<String>,
        page: Option<i32>,
        page_size: Option<i32>,
    ) -> Result<PagedConnection<Finding>> {
        let window = PageArgs {
            first,
            after,
            page,
            page_size,
        }
        .window()?;
        let order = order_by.map_or((FindingOrderField::Severity, OrderDirection::Desc), |o| {
            (o.field, o.direction)
        });
        let filter = FindingFilter {
            target_id,
            scan_id,
            new_in_scan,
            severity: severity.unwrap_or_default(),
            status,
            triage_state,
            rule_id,
            cve,
            search,
            assignee_id,
            assigned_to_me: assigned_to_me.unwrap_or(false),
            suppression: suppression.unwrap_or_default(),
            sla_state,
        };
        Ok(
            super::list(caller(ctx)?, state(ctx), &filter, order, window)
                .await?
                .into_connection(),
        )
    }

    /// One finding.
    async fn finding(&self, ctx: &Context<'_>, id: Uuid) -> Result<Finding> {
        Ok(super::get(caller(ctx)?, state(ctx), id).await?)
    }

    /// Comments on one finding, oldest first.
    async fn finding_comments(
        &self,
        ctx: &Context<'_>,
        finding_id: Uuid,
        first: Option<i32>,
        after: Option<String>,
        page: Option<i32>,
        page_size: Option<i32>,
    ) -> Result<PagedConnection<Comment>> {
        let window = PageArgs {
            first,
            after,
            page,
            page_size,
        }
        .window()?;
        Ok(
            super::comments(caller(ctx)?, state(ctx), finding_id, window)
                .await?
                .into_connection(),
        )
    }
}

#[derive(Default)]
pub struct FindingsMutation;

#[Object]
impl FindingsMutation {
    /// Records a triage decision (members); kept in the audit log.
    async fn set_finding_state(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        input: SetFindingStateInput,
    ) -> Result<Finding> {
        let change = TriageChange {
            state: input.state,
            note: input.note,
            expires_at: input.expires_at,
        };
        Ok(super::set_state(caller(ctx)?, state(ctx), id, change).await?)
    }

    /// Assigns a finding to a member of the org, or unassigns it with `assigneeId: null`
    /// (members); kept in the audit log.
    async fn assign_finding(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        assignee_id: Option<Uuid>,
    ) -> Result<Finding> {
        Ok(super::assign(caller(ctx)?, state(ctx), id, assignee_id).await?)
    }

    /// Triage, assign and/or comment on up to 10,000 findings at once, chosen by ids or by a
    /// filter: all or nothing, one audit event with the count (members).
    async fn bulk_triage_findings(
        &self,
        ctx: &Context<'_>,
        input: BulkTriageInput,
    ) -> Result<BulkTriageResult> {
        let (selection, change) = input.into_parts()?;
        let count = super::bulk_triage(caller(ctx)?, state(ctx), selection, change).await?;
        Ok(BulkTriageResult { count })
    }

    /// Adds a comment to a finding (members).
    async fn add_comment(
        &self,
        ctx: &Context<'_>,
        finding_id: Uuid,
        body: String,
    ) -> Result<Comment> {
        Ok(super::add_comment(caller(ctx)?, state(ctx), finding_id, &body).await?)
    }

    /// Deletes a comment (its author, or admins). With `findingId`, the comment must be on that
    /// finding.
    async fn delete_comment(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        finding_id: Option<Uuid>,
    ) -> Result<bool> {
        super::delete_comment(caller(ctx)?, state(ctx), id, finding_id).await?;
        Ok(true)
    }
}
