use std::collections::HashMap;

use async_graphql::{ComplexObject, Context, InputObject, Object, Result};
use entity::{scan, target};
use sea_orm::sea_query::{Expr, ExprTrait, Func, Query};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::{Target, TargetFilter, TargetKind, TargetOrderField, TargetUpdate};
use crate::error::AppError;
use crate::findings::SeverityCounts;
use crate::graphql::batch::BatchFn;
use crate::graphql::loaders::{load, OrgLoader, OrgScope};
use crate::graphql::pagination::{OrderDirection, PageArgs, PagedConnection};
use crate::graphql::{caller, state};
use crate::scans::Scan;

/// Targets by id, in the caller's org.
pub struct TargetLoader(OrgScope);

impl OrgLoader for TargetLoader {
    fn new(scope: OrgScope) -> Self {
        Self(scope)
    }
}

impl BatchFn for TargetLoader {
    type Key = Uuid;
    type Value = Target;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Target>, Self::Error> {
        let rows = target::Entity::find()
            .filter(target::Column::OrgId.eq(self.0.org_id))
            .filter(target::Column::Id.is_in(keys.iter().copied()))
            .all(&self.0.db)
            .await
            .map_err(AppError::from)?;
        Ok(rows.into_iter().map(|t| (t.id, Target::from(t))).collect())
    }
}

/// The latest scan of each target, in one query, in the caller's org.
pub struct LatestScanLoader(OrgScope);

impl OrgLoader for LatestScanLoader {
    fn new(scope: OrgScope) -> Self {
        Self(scope)
    }
}

impl BatchFn for LatestScanLoader {
    type Key = Uuid;
    type Value = Scan;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Scan>, Self::Error> {
        let latest = Query::select()
            .column(scan::Column::TargetId)
            .expr(Func::max(Expr::col(scan::Column::ScannedAt)))
            .from(scan::Entity)
            .and_where(Expr::col(scan::Column::OrgId).eq(self.0.org_id))
            .and_where(Expr::col(scan::Column::TargetId).is_in(keys.iter().copied()))
            .group_by_col(scan::Column::TargetId)
            .to_owned();
        let rows = scan::Entity::find()
            .filter(scan::Column::OrgId.eq(self.0.org_id))
            .filter(
                Expr::tuple([
                    Expr::col((scan::Entity, scan::Column::TargetId)),
                    Expr::col((scan::Entity, scan::Column::ScannedAt)),
                ])
                .in_subquery(latest),
            )
            .all(&self.0.db)
            .await
            .map_err(AppError::from)?;
        let mut out = HashMap::new();
        for row in rows {
            // Two scans at the same instant: the later id wins, deterministically.
            let keep = out.get(&row.target_id).is_none_or(|s: &Scan| s.id < row.id);
            if keep {
                out.insert(row.target_id, Scan::from(row));
            }
        }
        Ok(out)
    }
}

/// Open findings per severity of each target, in one grouped query, in the caller's org.
pub struct OpenCountsLoader(OrgScope);

impl OrgLoader for OpenCountsLoader {
    fn new(scope: OrgScope) -> Self {
        Self(scope)
    }
}

impl BatchFn for OpenCountsLoader {
    type Key = Uuid;
    type Value = SeverityCounts;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, SeverityCounts>, Self::Error> {
        Ok(crate::findings::open_counts_by_target(
            &self.0.db,
            self.0.org_id,
            keys,
            crate::findings::unsuppressed_condition(chrono::Utc::now()),
        )
        .await?)
    }
}

#[ComplexObject]
impl Target {
    /// Kafka clusters: the bootstrap servers, from the metadata.
    async fn bootstrap_servers(&self) -> Option<String> {
        self.metadata
            .0
            .get("bootstrap_servers")
            .and_then(|v| v.as_str())
            .map(str::to_string)
    }

    /// The most recent scan of this target, whatever its status.
    async fn latest_scan(&self, ctx: &Context<'_>) -> Result<Option<Scan>> {
        load::<LatestScanLoader>(ctx, self.id).await
    }

    /// Risk of the open findings that are neither false positives nor accepted risks:
    /// `25 × log10(1 + 20·critical + 10·high + 4·medium + low)`, 0 with none and without a
    /// ceiling, so 10 and 10,000 high findings differ (docs/risk-score.md). `lastScore` keeps
    /// its meaning: the latest scan's 0–100 health score.
    async fn risk_score(&self, ctx: &Context<'_>) -> Result<f64> {
        let counts = load::<crate::insights::graphql::RiskCountsLoader>(ctx, self.id)
            .await?
            .unwrap_or_default();
        Ok(crate::insights::risk::risk_score(&counts))
    }

    /// Open findings per severity.
    async fn open_findings(&self, ctx: &Context<'_>) -> Result<SeverityCounts> {
        Ok(load::<OpenCountsLoader>(ctx, self.id)
            .await?
            .unwrap_or_default())
    }
}

/// How to sort targets.
#[derive(InputObject, Default)]
pub struct TargetOrder {
    #[graphql(default)]
    pub field: TargetOrderField,
    #[graphql(default_with = "OrderDirection::Asc")]
    pub direction: OrderDirection,
}

/// Changes to a target; absent fields stay as they are.
#[derive(InputObject)]
pub struct UpdateTargetInput {
    pub name: Option<String>,
    /// Replaces all labels: an object of string values.
    pub labels: Option<async_graphql::Json<serde_json::Value>>,
    /// Replaces the metadata object.
    pub metadata: Option<async_graphql::Json<serde_json::Value>>,
}

#[derive(Default)]
pub struct TargetsQuery;

#[Object]
impl TargetsQuery {
    /// The org's targets.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "crate::graphql::costs::list_cost(search.as_ref()) + child_complexity")]
    async fn targets(
        &self,
        ctx: &Context<'_>,
        kind: Option<TargetKind>,
        #[graphql(desc = "Case-insensitive part of the name.")] search: Option<String>,
        #[graphql(desc = "`key` or `key=value`.")] label: Option<String>,
        order_by: Option<TargetOrder>,
        first: Option<i32>,
        after: Option<String>,
        page: Option<i32>,
        page_size: Option<i32>,
    ) -> Result<PagedConnection<Target>> {
        let window = PageArgs {
            first,
            after,
            page,
            page_size,
        }
        .window()?;
        let order = order_by.unwrap_or(TargetOrder {
            field: TargetOrderField::Name,
            direction: OrderDirection::Asc,
        });
        let filter = TargetFilter {
            kind,
            search,
            label,
        };
        Ok(super::list(
            caller(ctx)?,
            state(ctx),
            &filter,
            (order.field, order.direction),
            window,
        )
        .await?
        .into_connection())
    }

    /// One target; with `kind`, only a target of that kind (others answer `NOT_FOUND`).
    async fn target(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        kind: Option<TargetKind>,
    ) -> Result<Target> {
        let target = super::get(caller(ctx)?, state(ctx), id).await?;
        if kind.is_some_and(|k| k != target.kind) {
            return Err(AppError::not_found("target").into());
        }
        Ok(target)
    }
}

#[derive(Default)]
pub struct TargetsMutation;

#[Object]
impl TargetsMutation {
    /// Renames, relabels or re-describes a target (members).
    async fn update_target(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        #[graphql(desc = "Only a target of this kind (others answer `NOT_FOUND`).")] kind: Option<
            TargetKind,
        >,
        input: UpdateTargetInput,
    ) -> Result<Target> {
        if let Some(kind) = kind {
            if super::get(caller(ctx)?, state(ctx), id).await?.kind != kind {
                return Err(AppError::not_found("target").into());
            }
        }
        let change = TargetUpdate {
            name: input.name,
            labels: input.labels.map(|j| j.0),
            metadata: input.metadata.map(|j| j.0),
        };
        Ok(super::update(caller(ctx)?, state(ctx), id, change).await?)
    }

    /// Deletes a target with its scans, findings and raw reports (admins).
    async fn delete_target(&self, ctx: &Context<'_>, id: Uuid) -> Result<bool> {
        super::delete(caller(ctx)?, state(ctx), id).await?;
        Ok(true)
    }
}
