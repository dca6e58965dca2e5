use async_graphql::{Context, Object, Result};
use chrono::Utc;
use uuid::Uuid;

use super::{FleetEntry, Period, TrendPoint};
use crate::graphql::{caller, state};

#[derive(Default)]
pub struct TrendsQuery;

#[Object]
impl TrendsQuery {
    /// A target's scores over a period (`7d`, `30d`, `90d`, `1y`), oldest first.
    #[graphql(complexity = "crate::graphql::costs::TARGET_TREND_COST + child_complexity")]
    async fn target_trend(
        &self,
        ctx: &Context<'_>,
        target_id: Uuid,
        #[graphql(desc = "`7d`, `30d`, `90d` (default) or `1y`.")] period: Option<String>,
    ) -> Result<Vec<TrendPoint>> {
        let period = Period::parse(period.as_deref().unwrap_or("90d"))?;
        Ok(super::target_trend(caller(ctx)?, state(ctx), target_id, period, Utc::now()).await?)
    }

    /// Every target with its current score, change over the period and sparkline.
    #[graphql(complexity = "crate::graphql::costs::FLEET_COMPARISON_COST + child_complexity")]
    async fn fleet_comparison(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "`7d`, `30d` (default), `90d` or `1y`.")] period: Option<String>,
    ) -> Result<Vec<FleetEntry>> {
        let period = Period::parse(period.as_deref().unwrap_or("30d"))?;
        Ok(super::fleet(caller(ctx)?, state(ctx), period, Utc::now()).await?)
    }
}
