use async_graphql::{Context, Object, Result};
use chrono::Utc;
use uuid::Uuid;

use super::{FleetEntry, Period, TrendPoint};
use crate::graphql::pagination::{PageArgs, PagedConnection};
use crate::graphql::{caller, state};

#[derive(Default)]
pub struct TrendsQuery;

#[Object]
impl TrendsQuery {
    /// A target's scores over a period (`7d`, `30d`, `90d`, `1y`), oldest first.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "crate::graphql::costs::TARGET_TREND_COST + child_complexity")]
    async fn target_trend(
        &self,
        ctx: &Context<'_>,
        target_id: Uuid,
        #[graphql(desc = "`7d`, `30d`, `90d` (default) or `1y`.")] period: Option<String>,
        first: Option<i32>,
        after: Option<String>,
        page: Option<i32>,
        page_size: Option<i32>,
    ) -> Result<PagedConnection<TrendPoint>> {
        let period = Period::parse(period.as_deref().unwrap_or("90d"))?;
        let window = PageArgs {
            first,
            after,
            page,
            page_size,
        }
        .window()?;
        let points = super::target_trend(
            caller(ctx)?,
            state(ctx),
            target_id,
            period,
            Utc::now(),
            window,
        )
        .await?;
        Ok(points.into_connection())
    }

    /// Every target, by name, with its current score, change over the period and sparkline.
    #[graphql(complexity = "crate::graphql::costs::FLEET_COMPARISON_COST + child_complexity")]
    async fn fleet_comparison(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "`7d`, `30d` (default), `90d` or `1y`.")] period: Option<String>,
        first: Option<i32>,
        after: Option<String>,
        page: Option<i32>,
        page_size: Option<i32>,
    ) -> Result<PagedConnection<FleetEntry>> {
        let period = Period::parse(period.as_deref().unwrap_or("30d"))?;
        let window = PageArgs {
            first,
            after,
            page,
            page_size,
        }
        .window()?;
        let entries = super::fleet(caller(ctx)?, state(ctx), period, Utc::now(), window).await?;
        Ok(entries.into_connection())
    }
}
