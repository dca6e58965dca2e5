use async_graphql::{Context, Object, Result};
use chrono::Utc;
use uuid::Uuid;

use super::{ComplianceCoverage, ComplianceFramework, ComplianceTrendPoint, Interval};
use crate::graphql::{caller, state};
use crate::trends::Period;

#[derive(Default)]
pub struct ComplianceQuery;

#[Object]
impl ComplianceQuery {
    /// The compliance frameworks Rampart ships, with the public source of each mapping.
    async fn compliance_frameworks(&self, ctx: &Context<'_>) -> Result<Vec<ComplianceFramework>> {
        Ok(super::list(caller(ctx)?)?)
    }

    /// How a target (or, without `targetId`, the whole org) meets a framework now: each
    /// control passed, failed or not tested, with its open and fixed findings, and a score.
    #[graphql(complexity = "crate::graphql::costs::COMPLIANCE_COST + child_complexity")]
    async fn compliance(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A framework id from `complianceFrameworks` (`owasp-top10-2021`).")]
        framework: String,
        #[graphql(desc = "A target; absent for the whole org.")] target_id: Option<Uuid>,
    ) -> Result<ComplianceCoverage> {
        Ok(super::coverage(caller(ctx)?, state(ctx), &framework, target_id, Utc::now()).await?)
    }

    /// A framework's score and control counts at the end of each day or week of a period,
    /// oldest first, the last point being now.
    #[graphql(complexity = "crate::graphql::costs::COMPLIANCE_TREND_COST + child_complexity")]
    async fn compliance_trend(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A framework id from `complianceFrameworks`.")] framework: String,
        #[graphql(desc = "A target; absent for the whole org.")] target_id: Option<Uuid>,
        #[graphql(desc = "`7d`, `30d` (default), `90d` or `1y`.")] period: Option<String>,
        #[graphql(desc = "`day` (default) or `week`.")] interval: Option<String>,
    ) -> Result<Vec<ComplianceTrendPoint>> {
        let period = Period::parse(period.as_deref().unwrap_or("30d"))?;
        let interval = Interval::parse(interval.as_deref().unwrap_or("day"))?;
        Ok(super::trend(
            caller(ctx)?,
            state(ctx),
            &framework,
            target_id,
            period,
            interval,
            Utc::now(),
        )
        .await?)
    }
}
