use std::collections::HashMap;

use async_graphql::{ComplexObject, Context, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::risk::risk_score;
use super::{
    AgeBucket, Buckets, CweCount, FindingCountPoint, FlowPoint, KindCounts, RuleCount,
    ScannerCounts, Scope, SeverityStatusCount, TimeToFix, TrendInterval,
};
use crate::error::AppError;
use crate::findings::SeverityCounts;
use crate::graphql::batch::BatchFn;
use crate::graphql::loaders::{OrgLoader, OrgScope};
use crate::graphql::{caller, state};
use crate::trends::Period;

/// Open findings per severity of each target that count toward its risk (neither a false
/// positive nor an accepted risk before its expiry), in one grouped query, in the caller's org.
pub struct RiskCountsLoader(OrgScope);

impl OrgLoader for RiskCountsLoader {
    fn new(scope: OrgScope) -> Self {
        Self(scope)
    }
}

impl BatchFn for RiskCountsLoader {
    type Key = Uuid;
    type Value = SeverityCounts;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, SeverityCounts>, Self::Error> {
        Ok(crate::findings::open_counts_by_target(
            &self.0.db,
            self.0.org_id,
            keys,
            sea_orm::Condition::not(crate::findings::settled_condition(Utc::now())),
        )
        .await?)
    }
}

/// Dashboard figures of the org's findings, or one target's. Each field is one grouped
/// query, run only when asked for.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct FindingStats {
    /// The target, when the figures are one target's.
    pub target_id: Option<Uuid>,
    /// The period of `newVsFixed` and `timeToFix`: `7d`, `30d`, `90d` or `1y`.
    pub period: String,
    pub interval: TrendInterval,
    /// When the figures were taken.
    pub at: DateTime<Utc>,
    #[graphql(skip)]
    pub scope: Scope,
    #[graphql(skip)]
    pub period_value: Period,
    #[graphql(skip)]
    pub top: u64,
}

#[ComplexObject]
impl FindingStats {
    /// Risk score of the open findings that are neither false positives nor accepted risks:
    /// `25 × log10(1 + 20·critical + 10·high + 4·medium + low)`, without a ceiling
    /// (docs/risk-score.md).
    async fn risk_score(&self, ctx: &Context<'_>) -> Result<f64> {
        caller(ctx)?;
        let counts = super::risk_counts(&state(ctx).db, &self.scope, self.at).await?;
        Ok(risk_score(&counts))
    }

    /// Open findings per severity.
    async fn open(&self, ctx: &Context<'_>) -> Result<SeverityCounts> {
        caller(ctx)?;
        Ok(super::open_counts(&state(ctx).db, &self.scope).await?)
    }

    /// Every finding by severity and status (`OPEN`, `FIXED`), worst severity first.
    async fn by_severity_status(&self, ctx: &Context<'_>) -> Result<Vec<SeverityStatusCount>> {
        caller(ctx)?;
        Ok(super::by_severity_status(&state(ctx).db, &self.scope).await?)
    }

    /// Open findings per target kind.
    async fn by_target_kind(&self, ctx: &Context<'_>) -> Result<Vec<KindCounts>> {
        caller(ctx)?;
        Ok(super::by_target_kind(&state(ctx).db, &self.scope).await?)
    }

    /// Open findings per scanner.
    async fn by_scanner(&self, ctx: &Context<'_>) -> Result<Vec<ScannerCounts>> {
        caller(ctx)?;
        Ok(super::by_scanner(&state(ctx).db, &self.scope).await?)
    }

    /// The rules with the most open findings (at most `top`).
    async fn top_rules(&self, ctx: &Context<'_>) -> Result<Vec<RuleCount>> {
        caller(ctx)?;
        Ok(super::top_rules(&state(ctx).db, &self.scope, self.top).await?)
    }

    /// The CWEs with the most open findings (at most `top`).
    async fn top_cwes(&self, ctx: &Context<'_>) -> Result<Vec<CweCount>> {
        caller(ctx)?;
        Ok(super::top_cwes(&state(ctx).db, &self.scope, self.top).await?)
    }

    /// Open findings by age: 0–7, 8–30, 31–90 and more than 90 whole days since first seen.
    async fn age_buckets(&self, ctx: &Context<'_>) -> Result<Vec<AgeBucket>> {
        caller(ctx)?;
        Ok(super::age_buckets(&state(ctx).db, &self.scope, self.at).await?)
    }

    /// Findings first seen and fixed per day or week of the period, oldest first.
    async fn new_vs_fixed(&self, ctx: &Context<'_>) -> Result<Vec<FlowPoint>> {
        caller(ctx)?;
        let buckets = Buckets::new(self.period_value, self.interval, self.at);
        Ok(super::new_vs_fixed(&state(ctx).db, &self.scope, &buckets).await?)
    }

    /// Mean and median time to fix per severity, of the findings fixed in the period.
    async fn time_to_fix(&self, ctx: &Context<'_>) -> Result<Vec<TimeToFix>> {
        caller(ctx)?;
        let since = self.at - self.period_value.duration();
        Ok(super::time_to_fix(&state(ctx).db, &self.scope, since).await?)
    }
}

#[derive(Default)]
pub struct InsightsQuery;

#[Object]
impl InsightsQuery {
    /// Dashboard figures of the org's findings, or of one target's with `targetId`.
    #[graphql(complexity = "crate::graphql::costs::FINDING_STATS_COST + child_complexity")]
    async fn finding_stats(
        &self,
        ctx: &Context<'_>,
        target_id: Option<Uuid>,
        #[graphql(desc = "Of `newVsFixed` and `timeToFix`: `7d`, `30d` (default), `90d` or `1y`.")]
        period: Option<String>,
        #[graphql(desc = "Buckets of `newVsFixed`: `DAY` (default) or `WEEK`.")] interval: Option<
            TrendInterval,
        >,
        #[graphql(
            desc = "How many rules and CWEs `topRules` and `topCwes` list (1–100, default 10)."
        )]
        top: Option<i32>,
    ) -> Result<FindingStats> {
        let period_text = period.unwrap_or_else(|| "30d".into());
        let period_value = Period::parse(&period_text)?;
        let top = match top.unwrap_or(10) {
            n @ 1..=100 => n as u64,
            _ => return Err(AppError::invalid("top", "must be between 1 and 100").into()),
        };
        let scope = Scope::of(caller(ctx)?, state(ctx), target_id).await?;
        Ok(FindingStats {
            target_id,
            period: period_text,
            interval: interval.unwrap_or_default(),
            at: Utc::now(),
            scope,
            period_value,
            top,
        })
    }

    /// Open findings per severity at the end of each day or week of the period, oldest first:
    /// of the org, or of one target with `targetId`. The count side of `targetTrend`.
    #[graphql(complexity = "crate::graphql::costs::TARGET_TREND_COST + child_complexity")]
    async fn finding_trend(
        &self,
        ctx: &Context<'_>,
        target_id: Option<Uuid>,
        #[graphql(desc = "`7d`, `30d`, `90d` (default) or `1y`.")] period: Option<String>,
        #[graphql(desc = "`DAY` (default) or `WEEK`.")] interval: Option<TrendInterval>,
    ) -> Result<Vec<FindingCountPoint>> {
        let period = Period::parse(period.as_deref().unwrap_or("90d"))?;
        let scope = Scope::of(caller(ctx)?, state(ctx), target_id).await?;
        let now = Utc::now();
        let buckets = Buckets::new(period, interval.unwrap_or_default(), now);
        Ok(super::finding_trend(&state(ctx).db, &scope, &buckets, now).await?)
    }
}
