use std::collections::HashMap;

use async_graphql::{ComplexObject, Context, InputObject, Object, Result};
use chrono::{DateTime, Utc};
use entity::scan;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::{Change, Scan, ScanComparison, ScanFilter, ScanOrderField, ScanStatus, ScanSummary};
use crate::error::AppError;
use crate::findings::{Finding, Severity};
use crate::graphql::batch::BatchFn;
use crate::graphql::loaders::{load, OrgLoader, OrgScope};
use crate::graphql::pagination::{OrderDirection, PageArgs, PagedConnection};
use crate::graphql::{caller, state};
use crate::targets::graphql::TargetLoader;
use crate::targets::Target;

/// Scans by id, in the caller's org.
pub struct ScanLoader(OrgScope);

impl OrgLoader for ScanLoader {
    fn new(scope: OrgScope) -> Self {
        Self(scope)
    }
}

impl BatchFn for ScanLoader {
    type Key = Uuid;
    type Value = Scan;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Scan>, Self::Error> {
        let rows = scan::Entity::find()
            .filter(scan::Column::OrgId.eq(self.0.org_id))
            .filter(scan::Column::Id.is_in(keys.iter().copied()))
            .all(&self.0.db)
            .await
            .map_err(AppError::from)?;
        Ok(rows.into_iter().map(|s| (s.id, Scan::from(s))).collect())
    }
}

#[ComplexObject]
impl Scan {
    /// What was scanned.
    async fn target(&self, ctx: &Context<'_>) -> Result<Target> {
        load::<TargetLoader>(ctx, self.target_id)
            .await?
            .ok_or_else(|| AppError::not_found("target").into())
    }

    /// Processing time in milliseconds.
    async fn duration_ms(&self) -> Option<i64> {
        ScanSummary::from(self).duration_ms
    }

    /// The latest progress the worker reported.
    async fn progress(&self) -> Option<crate::live::ScanProgress> {
        self.progress.clone()
    }
}

/// How to sort scans.
#[derive(InputObject)]
pub struct ScanOrder {
    #[graphql(default)]
    pub field: ScanOrderField,
    #[graphql(default)]
    pub direction: OrderDirection,
}

#[derive(Default)]
pub struct ScansQuery;

#[Object]
impl ScansQuery {
    /// The org's scans, newest first by default.
    #[allow(clippy::too_many_arguments)]
    async fn scans(
        &self,
        ctx: &Context<'_>,
        target_id: Option<Uuid>,
        status: Option<Vec<ScanStatus>>,
        #[graphql(desc = "The scans one `startScan` request queued.")] group_id: Option<Uuid>,
        #[graphql(desc = "Scanned at or after.")] since: Option<DateTime<Utc>>,
        #[graphql(desc = "Scanned before.")] until: Option<DateTime<Utc>>,
        order_by: Option<ScanOrder>,
        first: Option<i32>,
        after: Option<String>,
        page: Option<i32>,
        page_size: Option<i32>,
    ) -> Result<PagedConnection<Scan>> {
        let window = PageArgs {
            first,
            after,
            page,
            page_size,
        }
        .window()?;
        let order = order_by.map_or((ScanOrderField::ScannedAt, OrderDirection::Desc), |o| {
            (o.field, o.direction)
        });
        let filter = ScanFilter {
            target_id,
            status: status.unwrap_or_default(),
            group_id,
            since,
            until,
        };
        Ok(
            super::list(caller(ctx)?, state(ctx), &filter, order, window)
                .await?
                .into_connection(),
        )
    }

    /// One scan.
    async fn scan(&self, ctx: &Context<'_>, id: Uuid) -> Result<Scan> {
        Ok(super::get(caller(ctx)?, state(ctx), id).await?)
    }

    /// The findings one scan saw, worst first.
    #[allow(clippy::too_many_arguments)]
    async fn scan_findings(
        &self,
        ctx: &Context<'_>,
        scan_id: Uuid,
        #[graphql(desc = "Any of these severities.")] severity: Option<Vec<Severity>>,
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
        let severity = severity.unwrap_or_default();
        Ok(
            super::findings(caller(ctx)?, state(ctx), scan_id, &severity, window)
                .await?
                .into_connection(),
        )
    }

    /// Counts per severity, score and timings of one scan.
    async fn scan_summary(&self, ctx: &Context<'_>, scan_id: Uuid) -> Result<ScanSummary> {
        Ok(super::summary(caller(ctx)?, state(ctx), scan_id).await?)
    }

    /// What changed between two scans of one target.
    #[graphql(complexity = "crate::graphql::costs::COMPARE_SCANS_COST + child_complexity")]
    async fn compare_scans(
        &self,
        ctx: &Context<'_>,
        scan_a: Uuid,
        scan_b: Uuid,
    ) -> Result<ScanComparison> {
        Ok(super::compare(caller(ctx)?, state(ctx), scan_a, scan_b).await?)
    }
}

impl ScanComparison {
    async fn list(
        &self,
        ctx: &Context<'_>,
        change: Change,
        page: PageArgs,
    ) -> Result<PagedConnection<Finding>> {
        let window = page.window()?;
        Ok(
            super::compare_list(caller(ctx)?, state(ctx), self, change, window)
                .await?
                .into_connection(),
        )
    }
}

/// How two scans of one target differ: three lists, each paged, worst first.
#[Object]
impl ScanComparison {
    async fn scan_a(&self) -> Uuid {
        self.scan_a
    }

    async fn scan_b(&self) -> Uuid {
        self.scan_b
    }

    /// Seen by `scanB`, not by `scanA`.
    #[graphql(name = "new")]
    async fn new_findings(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        page: Option<i32>,
        page_size: Option<i32>,
    ) -> Result<PagedConnection<Finding>> {
        let args = PageArgs {
            first,
            after,
            page,
            page_size,
        };
        self.list(ctx, Change::New, args).await
    }

    /// Seen by `scanA`, not by `scanB`.
    async fn fixed(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        page: Option<i32>,
        page_size: Option<i32>,
    ) -> Result<PagedConnection<Finding>> {
        let args = PageArgs {
            first,
            after,
            page,
            page_size,
        };
        self.list(ctx, Change::Fixed, args).await
    }

    /// Seen by both.
    async fn unchanged(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        page: Option<i32>,
        page_size: Option<i32>,
    ) -> Result<PagedConnection<Finding>> {
        let args = PageArgs {
            first,
            after,
            page,
            page_size,
        };
        self.list(ctx, Change::Unchanged, args).await
    }
}

#[derive(Default)]
pub struct ScansMutation;

#[Object]
impl ScansMutation {
    /// Stops a queued or running scan (members).
    async fn cancel_scan(&self, ctx: &Context<'_>, id: Uuid) -> Result<Scan> {
        Ok(super::cancel(caller(ctx)?, state(ctx), id).await?)
    }

    /// Runs a failed or cancelled scan again from the raw report it was uploaded with
    /// (admins): it is queued afresh, its error and counts cleared. `CONFLICT` for any other
    /// scan, when the raw report is no longer stored, or while its previous run is still
    /// winding up.
    async fn retry_scan(&self, ctx: &Context<'_>, id: Uuid) -> Result<Scan> {
        Ok(super::retry(caller(ctx)?, state(ctx), id).await?)
    }

    /// Deletes a finished scan and its raw report (admins).
    async fn delete_scan(&self, ctx: &Context<'_>, id: Uuid) -> Result<bool> {
        super::delete(caller(ctx)?, state(ctx), id).await?;
        Ok(true)
    }
}
