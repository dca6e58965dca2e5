//! Every rule about suppression rules: validating them, marking the findings they match, and
//! unmarking those a removed rule matched.

use chrono::{DateTime, Utc};
use entity::{finding, suppression_rule, target};
use globset::{GlobBuilder, GlobMatcher};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use crate::app::AppState;
use crate::audit::{self, AuditEntry};
use crate::context::{Ctx, Permission};
use crate::error::{AppError, AppResult};
use crate::findings::unsuppressed_condition;
use crate::graphql::pagination::{Paged, Window};
use crate::validate::bounded_text;

/// Ids per statement when marking findings one by one (path globs are matched here, not in SQL).
const IDS_PER_STATEMENT: usize = 500;

/// A suppression rule as readers see it.
#[derive(Clone, Debug, async_graphql::SimpleObject)]
pub struct SuppressionRule {
    pub id: Uuid,
    /// Only findings of this target (any target when absent).
    pub target_id: Option<Uuid>,
    /// Only findings of this scanner.
    pub scanner: Option<String>,
    /// Only findings of this rule (check, vulnerability) id.
    pub rule_id: Option<String>,
    /// Only findings whose path matches (`*` stays within a path segment, `**` crosses them).
    pub path_glob: Option<String>,
    pub reason: String,
    /// When the rule lapses and its findings count again; never when absent.
    pub expires_at: Option<DateTime<Utc>>,
    /// Who made it.
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

impl From<suppression_rule::Model> for SuppressionRule {
    fn from(m: suppression_rule::Model) -> Self {
        Self {
            id: m.id,
            target_id: m.target_id,
            scanner: m.scanner,
            rule_id: m.rule_id,
            path_glob: m.path_glob,
            reason: m.reason,
            expires_at: m.expires_at,
            created_by: m.created_by,
            created_at: m.created_at,
        }
    }
}

/// A rule to create.
#[derive(Clone, Debug, Default)]
pub struct NewSuppressionRule {
    pub target_id: Option<Uuid>,
    pub scanner: Option<String>,
    pub rule_id: Option<String>,
    pub path_glob: Option<String>,
    pub reason: String,
    pub expires_at: Option<DateTime<Utc>>,
}

/// `*` matches within one path segment, `**` across segments, as in `.gitignore`-style tools.
fn compile_glob(glob: &str) -> AppResult<GlobMatcher> {
    GlobBuilder::new(glob)
        .literal_separator(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| AppError::invalid("pathGlob", e.to_string()))
}

fn non_blank(field: &'static str, value: Option<String>, max: usize) -> AppResult<Option<String>> {
    match value {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Err(AppError::invalid(field, "must not be blank")),
        Some(v) => bounded_text(field, &v, max).map(Some),
    }
}

/// The org's rules, newest first.
///
/// # Errors
/// Only on database failure.
#[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
pub async fn list(
    ctx: &Ctx,
    state: &AppState,
    window: Window,
) -> AppResult<Paged<SuppressionRule>> {
    ctx.require(Permission::Read)?;
    let query =
        suppression_rule::Entity::find().filter(suppression_rule::Column::OrgId.eq(ctx.org_id));
    let total = query.clone().count(&state.db).await?;
    let items = query
        .order_by_desc(suppression_rule::Column::CreatedAt)
        .order_by_desc(suppression_rule::Column::Id)
        .offset(window.offset)
        .limit(window.limit)
        .all(&state.db)
        .await?
        .into_iter()
        .map(SuppressionRule::from)
        .collect();
    Ok(Paged {
        items,
        total,
        window,
    })
}

/// One rule of the org.
///
/// # Errors
/// `NOT_FOUND`.
pub async fn get(ctx: &Ctx, state: &AppState, id: Uuid) -> AppResult<SuppressionRule> {
    ctx.require(Permission::Read)?;
    Ok(find_in_org(&state.db, ctx, id).await?.into())
}

async fn find_in_org(
    db: &impl ConnectionTrait,
    ctx: &Ctx,
    id: Uuid,
) -> AppResult<suppression_rule::Model> {
    suppression_rule::Entity::find_by_id(id)
        .filter(suppression_rule::Column::OrgId.eq(ctx.org_id))
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("suppression rule"))
}

/// Creates a rule (members) and marks the stored findings it matches; audited with how many.
///
/// # Errors
/// `FORBIDDEN`; `NOT_FOUND` for a target outside the org; `VALIDATION_FAILED` for a rule with
/// no condition, a blank reason, a past expiry or a malformed glob.
#[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
pub async fn create(
    ctx: &Ctx,
    state: &AppState,
    input: NewSuppressionRule,
) -> AppResult<(SuppressionRule, u64)> {
    ctx.require(Permission::Write)?;
    let now = Utc::now();
    let scanner = non_blank("scanner", input.scanner, 200)?;
    let rule_id = non_blank("ruleId", input.rule_id, 500)?;
    let path_glob = non_blank("pathGlob", input.path_glob, 1000)?;
    if let Some(glob) = &path_glob {
        compile_glob(glob)?;
    }
    if input.target_id.is_none() && scanner.is_none() && rule_id.is_none() && path_glob.is_none() {
        return Err(AppError::invalid(
            "input",
            "give at least one of targetId, scanner, ruleId and pathGlob",
        ));
    }
    if input.reason.trim().is_empty() {
        return Err(AppError::invalid("reason", "must not be blank"));
    }
    let reason = bounded_text("reason", &input.reason, 2000)?;
    if input.expires_at.is_some_and(|at| at <= now) {
        return Err(AppError::invalid("expiresAt", "must be in the future"));
    }
    if let Some(target_id) = input.target_id {
        let found = target::Entity::find_by_id(target_id)
            .filter(target::Column::OrgId.eq(ctx.org_id))
            .count(&state.db)
            .await?;
        if found == 0 {
            return Err(AppError::not_found("target"));
        }
    }
    let txn = crate::db::begin_write(&state.db).await?;
    let row = suppression_rule::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(ctx.org_id),
        target_id: Set(input.target_id),
        scanner: Set(scanner),
        rule_id: Set(rule_id),
        path_glob: Set(path_glob),
        reason: Set(reason),
        expires_at: Set(input.expires_at),
        created_by: Set(ctx.actor_label()),
        created_at: Set(now),
    }
    .insert(&txn)
    .await?;
    let marked = mark(&txn, &row, Condition::all(), now).await?;
    audit::record(
        &txn,
        AuditEntry::by(ctx, "suppression_rule.create", "suppression_rule", row.id).with_details(
            serde_json::json!({
                "target_id": row.target_id,
                "scanner": row.scanner,
                "rule_id": row.rule_id,
                "path_glob": row.path_glob,
                "expires_at": row.expires_at,
                "findings": marked,
            }),
        ),
    )
    .await?;
    txn.commit().await?;
    Ok((row.into(), marked))
}

/// Removes a rule (members): its findings count again, unless another active rule matches
/// them. Audited with how many findings came back.
///
/// # Errors
/// `NOT_FOUND`, `FORBIDDEN`.
#[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
pub async fn delete(ctx: &Ctx, state: &AppState, id: Uuid) -> AppResult<u64> {
    ctx.require(Permission::Write)?;
    let row = find_in_org(&state.db, ctx, id).await?;
    let now = Utc::now();
    let txn = crate::db::begin_write(&state.db).await?;
    let released: Vec<Uuid> = finding::Entity::find()
        .select_only()
        .column(finding::Column::Id)
        .filter(finding::Column::OrgId.eq(ctx.org_id))
        .filter(finding::Column::SuppressedBy.eq(row.id))
        .into_tuple()
        .all(&txn)
        .await?;
    finding::Entity::update_many()
        .col_expr(
            finding::Column::SuppressedBy,
            Expr::value(Option::<Uuid>::None),
        )
        .col_expr(
            finding::Column::SuppressedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(finding::Column::OrgId.eq(ctx.org_id))
        .filter(finding::Column::SuppressedBy.eq(row.id))
        .exec(&txn)
        .await?;
    suppression_rule::Entity::delete_by_id(row.id)
        .exec(&txn)
        .await?;
    // Another rule may match what this one held.
    let mut still = 0;
    for other in active_rules(&txn, ctx.org_id, None, now).await? {
        for chunk in released.chunks(IDS_PER_STATEMENT) {
            still += mark(
                &txn,
                &other,
                Condition::all().add(finding::Column::Id.is_in(chunk.iter().copied())),
                now,
            )
            .await?;
        }
    }
    let reopened = released.len() as u64 - still;
    audit::record(
        &txn,
        AuditEntry::by(ctx, "suppression_rule.delete", "suppression_rule", row.id)
            .with_details(serde_json::json!({"findings_released": reopened})),
    )
    .await?;
    txn.commit().await?;
    Ok(reopened)
}

/// The org's rules not lapsed at `now`, for one target (or all targets when `None`).
async fn active_rules(
    db: &impl ConnectionTrait,
    org_id: Uuid,
    target_id: Option<Uuid>,
    now: DateTime<Utc>,
) -> AppResult<Vec<suppression_rule::Model>> {
    let mut query = suppression_rule::Entity::find()
        .filter(suppression_rule::Column::OrgId.eq(org_id))
        .filter(
            Condition::any()
                .add(suppression_rule::Column::ExpiresAt.is_null())
                .add(suppression_rule::Column::ExpiresAt.gt(now)),
        );
    if let Some(target_id) = target_id {
        query = query.filter(
            Condition::any()
                .add(suppression_rule::Column::TargetId.is_null())
                .add(suppression_rule::Column::TargetId.eq(target_id)),
        );
    }
    Ok(query
        .order_by_asc(suppression_rule::Column::CreatedAt)
        .all(db)
        .await?)
}

/// Marks the findings new in a scan that the org's active rules match; called by the ingest
/// pipeline in the transaction that finishes the scan, before it counts.
///
/// # Errors
/// Only on database failure.
pub async fn mark_new_findings(
    db: &impl ConnectionTrait,
    org_id: Uuid,
    target_id: Uuid,
    scan_id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<u64> {
    let mut marked = 0;
    for rule in active_rules(db, org_id, Some(target_id), now).await? {
        marked += mark(
            db,
            &rule,
            Condition::all()
                .add(finding::Column::TargetId.eq(target_id))
                .add(finding::Column::FirstScanId.eq(scan_id)),
            now,
        )
        .await?;
    }
    Ok(marked)
}

/// Marks the findings of `rule`'s org that it matches, within `scope`, and that no active rule
/// marks yet. Returns how many it marked.
async fn mark(
    db: &impl ConnectionTrait,
    rule: &suppression_rule::Model,
    scope: Condition,
    now: DateTime<Utc>,
) -> AppResult<u64> {
    let mut matches = Condition::all()
        .add(finding::Column::OrgId.eq(rule.org_id))
        .add(unsuppressed_condition(now))
        .add(scope);
    if let Some(target_id) = rule.target_id {
        matches = matches.add(finding::Column::TargetId.eq(target_id));
    }
    if let Some(scanner) = &rule.scanner {
        matches = matches.add(finding::Column::Scanner.eq(scanner.as_str()));
    }
    if let Some(rule_id) = &rule.rule_id {
        matches = matches.add(finding::Column::RuleId.eq(rule_id.as_str()));
    }
    let update = || {
        finding::Entity::update_many()
            .col_expr(finding::Column::SuppressedBy, Expr::value(Some(rule.id)))
            .col_expr(
                finding::Column::SuppressedUntil,
                Expr::value(rule.expires_at),
            )
    };
    let Some(glob) = &rule.path_glob else {
        return Ok(update().filter(matches).exec(db).await?.rows_affected);
    };
    let glob = compile_glob(glob)?;
    let candidates: Vec<(Uuid, Option<String>)> = finding::Entity::find()
        .select_only()
        .column(finding::Column::Id)
        .column(finding::Column::LocationPath)
        .filter(matches)
        .filter(finding::Column::LocationPath.is_not_null())
        .into_tuple()
        .all(db)
        .await?;
    let ids: Vec<Uuid> = candidates
        .into_iter()
        .filter(|(_, path)| path.as_deref().is_some_and(|p| glob.is_match(p)))
        .map(|(id, _)| id)
        .collect();
    let mut marked = 0;
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        marked += update()
            .filter(finding::Column::Id.is_in(chunk.iter().copied()))
            .exec(db)
            .await?
            .rows_affected;
    }
    Ok(marked)
}

#[cfg(test)]
mod tests {
    use super::compile_glob;

    #[test]
    fn a_star_stays_in_its_segment_and_two_cross_them() {
        let one = compile_glob("tests/*.py").unwrap();
        assert!(one.is_match("tests/test_app.py"));
        assert!(!one.is_match("tests/unit/test_app.py"));
        let two = compile_glob("tests/**/*.py").unwrap();
        assert!(two.is_match("tests/unit/test_app.py"));
        assert!(two.is_match("tests/test_app.py"));
        assert!(!two.is_match("src/app.py"));
        assert!(compile_glob("src/[a-").is_err());
    }
}
