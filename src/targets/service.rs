//! Every rule about targets lives here.

use chrono::Utc;
use entity::{scan, target};
use sea_orm::sea_query::{Expr, ExprTrait, Func, SimpleExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, SqlErr,
};
use uuid::Uuid;

use super::model::{Target, TargetKind};
use crate::app::AppState;
use crate::audit::{self, AuditEntry};
use crate::context::{Ctx, Permission};
use crate::error::{AppError, AppResult};
use crate::graphql::pagination::{OrderDirection, Paged, Window};
use crate::validate;

/// Which targets to list.
#[derive(Clone, Debug, Default)]
pub struct TargetFilter {
    pub kind: Option<TargetKind>,
    /// Case-insensitive substring of the name.
    pub search: Option<String>,
    /// `key` (label present) or `key=value`.
    pub label: Option<String>,
}

/// Sort keys for targets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, async_graphql::Enum)]
pub enum TargetOrderField {
    #[default]
    Name,
    LastScanAt,
    LastScore,
    CreatedAt,
}

/// A case-insensitive "contains" condition that behaves the same on SQLite and PostgreSQL.
pub fn contains_ci(column: impl sea_orm::sea_query::IntoColumnRef, needle: &str) -> SimpleExpr {
    let escaped = needle
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    Expr::expr(Func::lower(Expr::col(column)))
        .like(sea_orm::sea_query::LikeExpr::new(format!("%{escaped}%")).escape('\\'))
}

/// A condition on the JSON `labels` column, written for each backend.
fn label_condition(backend: DbBackend, label: &str) -> SimpleExpr {
    let (key, value) = match label.split_once('=') {
        Some((k, v)) => (k.trim(), Some(v.trim())),
        None => (label.trim(), None),
    };
    match (backend, value) {
        (DbBackend::Postgres, Some(value)) => Expr::cust_with_values(
            "\"target\".\"labels\" @> CAST($1 AS jsonb)",
            [serde_json::json!({ key: value }).to_string()],
        ),
        (DbBackend::Postgres, None) => {
            Expr::cust_with_values("jsonb_exists(\"target\".\"labels\", $1)", [key.to_string()])
        }
        // The key is bound as a value, never spliced into a JSON path: any key a client sends
        // (quotes, backslashes, dots) is compared as the plain text it is.
        (_, Some(value)) => Expr::cust_with_values(
            "EXISTS (SELECT 1 FROM json_each(\"target\".\"labels\") AS l WHERE l.key = ? AND l.value = ?)",
            [key.to_string(), value.to_string()],
        ),
        (_, None) => Expr::cust_with_values(
            "EXISTS (SELECT 1 FROM json_each(\"target\".\"labels\") AS l WHERE l.key = ?)",
            [key.to_string()],
        ),
    }
}

/// The org's targets.
///
/// # Errors
/// Only on database failure.
#[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
pub async fn list(
    ctx: &Ctx,
    state: &AppState,
    filter: &TargetFilter,
    order: (TargetOrderField, OrderDirection),
    window: Window,
) -> AppResult<Paged<Target>> {
    ctx.require(Permission::Read)?;
    let mut query = target::Entity::find().filter(target::Column::OrgId.eq(ctx.org_id));
    if let Some(kind) = filter.kind {
        query = query.filter(target::Column::Kind.eq(kind.as_str()));
    }
    if let Some(search) = filter.search.as_deref().filter(|s| !s.is_empty()) {
        query = query.filter(contains_ci((target::Entity, target::Column::Name), search));
    }
    if let Some(label) = filter.label.as_deref().filter(|s| !s.is_empty()) {
        query = query.filter(label_condition(state.db.get_database_backend(), label));
    }
    let total = query.clone().count(&state.db).await?;
    let column = match order.0 {
        TargetOrderField::Name => target::Column::Name,
        TargetOrderField::LastScanAt => target::Column::LastScanAt,
        TargetOrderField::LastScore => target::Column::LastScore,
        TargetOrderField::CreatedAt => target::Column::CreatedAt,
    };
    let items = query
        .order_by(column, order.1.order())
        .order_by_asc(target::Column::Id)
        .offset(window.offset)
        .limit(window.limit)
        .all(&state.db)
        .await?
        .into_iter()
        .map(Target::from)
        .collect();
    Ok(Paged {
        items,
        total,
        window,
    })
}

/// A target row of the caller's org.
pub(crate) async fn find_in_org(
    db: &impl ConnectionTrait,
    ctx: &Ctx,
    id: Uuid,
) -> AppResult<target::Model> {
    target::Entity::find_by_id(id)
        .filter(target::Column::OrgId.eq(ctx.org_id))
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("target"))
}

/// One target of the org.
///
/// # Errors
/// `NOT_FOUND`.
#[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
pub async fn get(ctx: &Ctx, state: &AppState, id: Uuid) -> AppResult<Target> {
    ctx.require(Permission::Read)?;
    Ok(find_in_org(&state.db, ctx, id).await?.into())
}

/// Changes to a target; absent fields stay as they are.
#[derive(Clone, Debug, Default)]
pub struct TargetUpdate {
    pub name: Option<String>,
    pub labels: Option<serde_json::Value>,
    pub metadata: Option<serde_json::Value>,
}

/// Renames or relabels a target (members).
///
/// # Errors
/// `NOT_FOUND`, `FORBIDDEN`, `VALIDATION_FAILED`, `CONFLICT` for a taken name.
#[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
pub async fn update(
    ctx: &Ctx,
    state: &AppState,
    id: Uuid,
    change: TargetUpdate,
) -> AppResult<Target> {
    ctx.require(Permission::Write)?;
    let row = find_in_org(&state.db, ctx, id).await?;
    // What changes, from what to what, for the audit log.
    let mut changed = serde_json::Map::new();
    let mut note = |field: &str, from: serde_json::Value, to: &serde_json::Value| {
        if from != *to {
            changed.insert(field.into(), serde_json::json!({"from": from, "to": to}));
        }
    };
    let mut active: target::ActiveModel = row.clone().into();
    if let Some(name) = &change.name {
        let name = validate::name("name", name, 255)?;
        note("name", row.name.clone().into(), &name.clone().into());
        active.name = Set(name);
    }
    if let Some(labels) = change.labels {
        let valid = labels
            .as_object()
            .is_some_and(|m| m.values().all(|v| v.is_string()) && m.len() <= 64);
        if !valid {
            return Err(AppError::invalid(
                "labels",
                "must be an object of up to 64 string values",
            ));
        }
        note("labels", row.labels.clone(), &labels);
        active.labels = Set(labels);
    }
    if let Some(metadata) = change.metadata {
        if !metadata.is_object() {
            return Err(AppError::invalid("metadata", "must be an object"));
        }
        note("metadata", row.metadata.clone(), &metadata);
        active.metadata = Set(metadata);
    }
    active.updated_at = Set(Utc::now());
    let txn = crate::db::begin_write(&state.db).await?;
    let row = active.update(&txn).await.map_err(|e| match e.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => {
            AppError::conflict("a target of this kind with this name exists")
        }
        _ => e.into(),
    })?;
    audit::record(
        &txn,
        AuditEntry::by(ctx, "target.update", "target", row.id)
            .with_details(serde_json::Value::Object(changed)),
    )
    .await?;
    txn.commit().await?;
    Ok(row.into())
}

/// Deletes a target with its scans, findings and raw reports (admins).
///
/// # Errors
/// `NOT_FOUND`, `FORBIDDEN`.
#[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
pub async fn delete(ctx: &Ctx, state: &AppState, id: Uuid) -> AppResult<()> {
    ctx.require(Permission::Admin)?;
    let row = find_in_org(&state.db, ctx, id).await?;
    let raw_keys: Vec<String> = scan::Entity::find()
        .filter(scan::Column::TargetId.eq(row.id))
        .all(&state.db)
        .await?
        .into_iter()
        .filter_map(|s| s.raw_key)
        .collect();
    let txn = crate::db::begin_write(&state.db).await?;
    target::Entity::delete_by_id(row.id).exec(&txn).await?;
    audit::record(
        &txn,
        AuditEntry::by(ctx, "target.delete", "target", row.id)
            .with_details(serde_json::json!({"name": row.name, "kind": row.kind})),
    )
    .await?;
    txn.commit().await?;
    // Rows first, then objects: an object left behind is garbage, a row pointing nowhere is a bug.
    for key in raw_keys {
        if let Err(err) = state.store.delete(&key).await {
            tracing::warn!(%key, %err, "raw report left behind after deleting its target");
        }
    }
    Ok(())
}

/// Recomputes `last_scan_at` and `last_score` from the target's latest completed scan.
///
/// # Errors
/// Only on database failure.
pub async fn refresh_latest(db: &impl ConnectionTrait, target_id: Uuid) -> AppResult<()> {
    let latest = scan::Entity::find()
        .filter(scan::Column::TargetId.eq(target_id))
        .filter(scan::Column::Status.eq("complete"))
        .order_by_desc(scan::Column::ScannedAt)
        .one(db)
        .await?;
    target::Entity::update_many()
        .col_expr(
            target::Column::LastScanAt,
            Expr::value(latest.as_ref().map(|s| s.scanned_at)),
        )
        .col_expr(
            target::Column::LastScore,
            Expr::value(latest.and_then(|s| s.score)),
        )
        .filter(target::Column::Id.eq(target_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Stores the facts a report carried about its target (native `target.metadata`), inside the
/// transaction that completes the report's scan, after [`refresh_latest`]. The latest scan
/// wins: a report whose scan is no longer the target's latest complete one (an older upload
/// that finished late) changes nothing. Each key the report gives replaces the stored one;
/// other keys (set by an edit, or by another scanner) stay. A change is audited as
/// `target.metadata_update`, by whoever uploaded the report.
///
/// # Errors
/// Only on database failure.
pub async fn store_report_metadata(
    db: &impl ConnectionTrait,
    scan: &scan::Model,
    metadata: &serde_json::Map<String, serde_json::Value>,
) -> AppResult<()> {
    if metadata.is_empty() {
        return Ok(());
    }
    let Some(row) = target::Entity::find_by_id(scan.target_id).one(db).await? else {
        return Ok(());
    };
    if row.last_scan_at != Some(scan.scanned_at) {
        return Ok(());
    }
    let mut stored = row.metadata.as_object().cloned().unwrap_or_default();
    let mut changed = serde_json::Map::new();
    for (key, value) in metadata {
        if stored.get(key) != Some(value) {
            changed.insert(
                key.clone(),
                serde_json::json!({"from": stored.get(key), "to": value}),
            );
            stored.insert(key.clone(), value.clone());
        }
    }
    if changed.is_empty() {
        return Ok(());
    }
    target::Entity::update_many()
        .col_expr(
            target::Column::Metadata,
            Expr::value(serde_json::Value::Object(stored)),
        )
        .col_expr(target::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(target::Column::Id.eq(row.id))
        .exec(db)
        .await?;
    let entry = AuditEntry {
        org_id: row.org_id,
        actor_user_id: None,
        actor_api_key_id: None,
        actor_label: scan.created_by.clone().unwrap_or_else(|| "system".into()),
        action: "target.metadata_update",
        resource_type: "target",
        resource_id: Some(row.id.to_string()),
        details: Some(serde_json::json!({"scan_id": scan.id, "metadata": changed})),
        ip: None,
        request_id: None,
    };
    audit::record(db, entry).await
}
