use std::collections::HashMap;

use async_graphql::{Context, InputObject, MaybeUndefined, Object, Result};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{SlaPolicy, SlaSummary};
use crate::findings::{Finding, Severity};
use crate::graphql::batch::BatchFn;
use crate::graphql::loaders::{load, OrgLoader, OrgScope};
use crate::graphql::{caller, state};
use crate::trends::Period;

/// The caller's org's SLA policy, read once per field of a request however many findings ask.
pub struct SlaPolicyLoader(OrgScope);

impl OrgLoader for SlaPolicyLoader {
    fn new(scope: OrgScope) -> Self {
        Self(scope)
    }
}

impl BatchFn for SlaPolicyLoader {
    type Key = Uuid;
    type Value = SlaPolicy;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, SlaPolicy>, Self::Error> {
        let mut out = HashMap::new();
        if keys.contains(&self.0.org_id) {
            let policy = super::load_policy(&self.0.db, self.0.org_id).await?;
            out.insert(self.0.org_id, policy);
        }
        Ok(out)
    }
}

/// The policy of the caller's org, through [`SlaPolicyLoader`].
///
/// # Errors
/// `UNAUTHENTICATED`; database failure.
pub async fn org_policy(ctx: &Context<'_>) -> Result<SlaPolicy> {
    let org = caller(ctx)?.org_id;
    Ok(load::<SlaPolicyLoader>(ctx, org).await?.unwrap_or_default())
}

/// Changes to the SLA policy: an absent field stays as it is, `null` removes the SLA of that
/// severity, a number (1–3650) sets its days to fix.
#[derive(InputObject)]
pub struct UpdateSlaPolicyInput {
    pub critical_days: MaybeUndefined<i32>,
    pub high_days: MaybeUndefined<i32>,
    pub medium_days: MaybeUndefined<i32>,
    pub low_days: MaybeUndefined<i32>,
    pub info_days: MaybeUndefined<i32>,
}

fn change(value: MaybeUndefined<i32>) -> Option<Option<i32>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(days) => Some(Some(days)),
    }
}

#[derive(Default)]
pub struct SlaQuery;

#[Object]
impl SlaQuery {
    /// The org's SLA policy: days to fix per severity (any member or key may read it).
    async fn sla_policy(&self, ctx: &Context<'_>) -> Result<SlaPolicy> {
        Ok(super::policy(caller(ctx)?, state(ctx)).await?)
    }

    /// Open findings on time, due soon and breached, and SLA compliance over a period: of the
    /// org, or of one target with `targetId`.
    #[graphql(complexity = "crate::graphql::costs::TARGET_TREND_COST + child_complexity")]
    async fn sla_summary(
        &self,
        ctx: &Context<'_>,
        target_id: Option<Uuid>,
        #[graphql(desc = "Of the compliance figures: `7d`, `30d` (default), `90d` or `1y`.")]
        period: Option<String>,
    ) -> Result<SlaSummary> {
        let text = period.unwrap_or_else(|| "30d".into());
        let period = Period::parse(&text)?;
        Ok(super::summary(
            caller(ctx)?,
            state(ctx),
            target_id,
            period,
            text,
            Utc::now(),
        )
        .await?)
    }
}

#[derive(Default)]
pub struct SlaMutation;

#[Object]
impl SlaMutation {
    /// Changes the org's SLA policy (admins); kept in the audit log.
    async fn update_sla_policy(
        &self,
        ctx: &Context<'_>,
        input: UpdateSlaPolicyInput,
    ) -> Result<SlaPolicy> {
        let changes = vec![
            (Severity::Critical, change(input.critical_days)),
            (Severity::High, change(input.high_days)),
            (Severity::Medium, change(input.medium_days)),
            (Severity::Low, change(input.low_days)),
            (Severity::Info, change(input.info_days)),
        ];
        Ok(super::update_policy(caller(ctx)?, state(ctx), changes).await?)
    }

    /// Sets a finding's due date, which wins over the SLA policy's, or with `null` goes back to
    /// the policy's (members); kept in the audit log. Stored to the second.
    async fn set_finding_due_date(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        due_at: Option<DateTime<Utc>>,
    ) -> Result<Finding> {
        Ok(super::set_due_date(caller(ctx)?, state(ctx), id, due_at).await?)
    }
}
