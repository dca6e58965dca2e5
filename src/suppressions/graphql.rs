use async_graphql::{Context, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{NewSuppressionRule, SuppressionRule};
use crate::graphql::pagination::{PageArgs, PagedConnection};
use crate::graphql::{caller, state};

/// A suppression rule to create: at least one of target, scanner, rule id and path glob.
#[derive(InputObject)]
pub struct CreateSuppressionRuleInput {
    pub target_id: Option<Uuid>,
    pub scanner: Option<String>,
    pub rule_id: Option<String>,
    /// `*` stays within a path segment, `**` crosses them, e.g. `tests/**/*.py`.
    pub path_glob: Option<String>,
    /// Why these findings are accepted (required).
    pub reason: String,
    /// When the rule lapses and its findings count again.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A created rule and how many stored findings it suppressed.
#[derive(SimpleObject)]
pub struct CreatedSuppressionRule {
    pub rule: SuppressionRule,
    pub suppressed: u64,
}

#[derive(Default)]
pub struct SuppressionsQuery;

#[Object]
impl SuppressionsQuery {
    /// The org's suppression rules, newest first.
    async fn suppression_rules(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        page: Option<i32>,
        page_size: Option<i32>,
    ) -> Result<PagedConnection<SuppressionRule>> {
        let window = PageArgs {
            first,
            after,
            page,
            page_size,
        }
        .window()?;
        Ok(super::list(caller(ctx)?, state(ctx), window)
            .await?
            .into_connection())
    }

    /// One suppression rule.
    async fn suppression_rule(&self, ctx: &Context<'_>, id: Uuid) -> Result<SuppressionRule> {
        Ok(super::get(caller(ctx)?, state(ctx), id).await?)
    }
}

#[derive(Default)]
pub struct SuppressionsMutation;

#[Object]
impl SuppressionsMutation {
    /// Suppresses the findings a rule matches, stored and future (members); audited.
    async fn create_suppression_rule(
        &self,
        ctx: &Context<'_>,
        input: CreateSuppressionRuleInput,
    ) -> Result<CreatedSuppressionRule> {
        let (rule, suppressed) = super::create(
            caller(ctx)?,
            state(ctx),
            NewSuppressionRule {
                target_id: input.target_id,
                scanner: input.scanner,
                rule_id: input.rule_id,
                path_glob: input.path_glob,
                reason: input.reason,
                expires_at: input.expires_at,
            },
        )
        .await?;
        Ok(CreatedSuppressionRule { rule, suppressed })
    }

    /// Removes a rule; its findings count again unless another rule matches them (members).
    /// Answers how many findings came back.
    async fn delete_suppression_rule(&self, ctx: &Context<'_>, id: Uuid) -> Result<u64> {
        Ok(super::delete(caller(ctx)?, state(ctx), id).await?)
    }
}
