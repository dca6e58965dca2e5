//! Trend rules. A point is a completed scan with a score; periods end now.

use std::collections::HashMap;

use async_graphql::SimpleObject;
use chrono::{DateTime, Duration, Utc};
use entity::{scan, target};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::app::AppState;
use crate::context::{Ctx, Permission};
use crate::error::{AppError, AppResult};
use crate::graphql::pagination::{Paged, Window};

/// A trend window: `7d`, `30d`, `90d` or `1y`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Period {
    Days7,
    Days30,
    Days90,
    Year,
}

impl Period {
    /// # Errors
    /// `VALIDATION_FAILED` on `period` for anything else.
    pub fn parse(value: &str) -> AppResult<Self> {
        match value {
            "7d" => Ok(Self::Days7),
            "30d" => Ok(Self::Days30),
            "90d" => Ok(Self::Days90),
            "1y" => Ok(Self::Year),
            other => Err(AppError::invalid(
                "period",
                format!("unknown period {other:?}; expected 7d, 30d, 90d or 1y"),
            )),
        }
    }

    pub fn duration(self) -> Duration {
        Duration::days(match self {
            Self::Days7 => 7,
            Self::Days30 => 30,
            Self::Days90 => 90,
            Self::Year => 365,
        })
    }
}

/// One scored scan in a trend.
#[derive(Clone, Debug, PartialEq, SimpleObject)]
pub struct TrendPoint {
    pub scan_id: Uuid,
    pub scanned_at: DateTime<Utc>,
    pub score: f64,
}

/// One target in the fleet comparison.
#[derive(Clone, Debug, PartialEq, SimpleObject)]
pub struct FleetEntry {
    pub target_id: Uuid,
    pub name: String,
    /// Score of the latest scored scan (in the period, else ever); absent if never scored.
    pub current_score: Option<f64>,
    /// Raw score change from the first scored scan in the period to the latest (e.g. -5 =
    /// dropped 5 points); 0 with one scan in the period, absent with none.
    pub delta_pct: Option<f64>,
    pub last_scanned_at: Option<DateTime<Utc>>,
    /// Scores in the period, oldest first.
    pub sparkline: Vec<f64>,
}

/// A target's scores over the period, oldest first, a page at a time.
///
/// # Errors
/// `NOT_FOUND` for a target outside the org.
#[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
pub async fn target_trend(
    ctx: &Ctx,
    state: &AppState,
    target_id: Uuid,
    period: Period,
    now: DateTime<Utc>,
    window: Window,
) -> AppResult<Paged<TrendPoint>> {
    ctx.require(Permission::Read)?;
    crate::targets::get(ctx, state, target_id).await?;
    let query = scan::Entity::find()
        .filter(scan::Column::OrgId.eq(ctx.org_id))
        .filter(scan::Column::TargetId.eq(target_id))
        .filter(scan::Column::Status.eq("complete"))
        .filter(scan::Column::Score.is_not_null())
        .filter(scan::Column::ScannedAt.gte(now - period.duration()))
        .filter(scan::Column::ScannedAt.lte(now));
    let total = query.clone().count(&state.db).await?;
    let rows: Vec<(Uuid, DateTime<Utc>, Option<f64>)> = query
        .select_only()
        .columns([
            scan::Column::Id,
            scan::Column::ScannedAt,
            scan::Column::Score,
        ])
        .order_by_asc(scan::Column::ScannedAt)
        .order_by_asc(scan::Column::Id)
        .offset(window.offset)
        .limit(window.limit)
        .into_tuple()
        .all(&state.db)
        .await?;
    let items = rows
        .into_iter()
        .filter_map(|(scan_id, scanned_at, score)| {
            Some(TrendPoint {
                scan_id,
                scanned_at,
                score: score?,
            })
        })
        .collect();
    Ok(Paged {
        items,
        total,
        window,
    })
}

/// The org's targets, by name, with their current score, change over the period and
/// sparkline, a page at a time (the scans read are those of the page's targets).
///
/// # Errors
/// Only on database failure.
#[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
pub async fn fleet(
    ctx: &Ctx,
    state: &AppState,
    period: Period,
    now: DateTime<Utc>,
    window: Window,
) -> AppResult<Paged<FleetEntry>> {
    ctx.require(Permission::Read)?;
    let query = target::Entity::find().filter(target::Column::OrgId.eq(ctx.org_id));
    let total = query.clone().count(&state.db).await?;
    let targets = query
        .order_by_asc(target::Column::Name)
        .order_by_asc(target::Column::Id)
        .offset(window.offset)
        .limit(window.limit)
        .all(&state.db)
        .await?;
    let rows: Vec<(Uuid, DateTime<Utc>, Option<f64>)> = scan::Entity::find()
        .select_only()
        .columns([
            scan::Column::TargetId,
            scan::Column::ScannedAt,
            scan::Column::Score,
        ])
        .filter(scan::Column::OrgId.eq(ctx.org_id))
        .filter(scan::Column::TargetId.is_in(targets.iter().map(|t| t.id)))
        .filter(scan::Column::Status.eq("complete"))
        .filter(scan::Column::ScannedAt.gte(now - period.duration()))
        .filter(scan::Column::ScannedAt.lte(now))
        .order_by_asc(scan::Column::ScannedAt)
        .order_by_asc(scan::Column::Id)
        .into_tuple()
        .all(&state.db)
        .await?;
    let mut in_period: HashMap<Uuid, Vec<(DateTime<Utc>, f64)>> = HashMap::new();
    for (target_id, at, score) in rows {
        if let Some(score) = score {
            in_period.entry(target_id).or_default().push((at, score));
        }
    }
    let items = targets
        .into_iter()
        .map(|t| {
            let points = in_period.remove(&t.id).unwrap_or_default();
            let sparkline: Vec<f64> = points.iter().map(|(_, s)| *s).collect();
            let delta_pct = match (sparkline.first(), sparkline.last()) {
                (Some(first), Some(last)) => Some(((last - first) * 10.0).round() / 10.0),
                _ => None,
            };
            FleetEntry {
                target_id: t.id,
                name: t.name,
                current_score: sparkline.last().copied().or(t.last_score),
                delta_pct,
                last_scanned_at: points.last().map(|(at, _)| *at).or(t.last_scan_at),
                sparkline,
            }
        })
        .collect();
    Ok(Paged {
        items,
        total,
        window,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods() {
        assert_eq!(Period::parse("7d").unwrap().duration(), Duration::days(7));
        assert_eq!(Period::parse("1y").unwrap().duration(), Duration::days(365));
        assert!(Period::parse("2w").is_err());
    }
}
