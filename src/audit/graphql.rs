use async_graphql::{Context, Object, Result};
use chrono::{DateTime, Utc};

use super::{AuditEvent, AuditFilter};
use crate::graphql::pagination::{PageArgs, PagedConnection};
use crate::graphql::{caller, state};

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// The org's audit log, newest first (admins).
    #[allow(clippy::too_many_arguments)]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only this action, e.g. `session.login`.")] action: Option<String>,
        #[graphql(
            desc = "Only this actor: the id of a user or an API key, or the label shown as `actor` (an email, `api-key:<label>`, `system`)."
        )]
        actor: Option<String>,
        #[graphql(desc = "Only this resource type, e.g. `scan`, `finding`, `api_key`.")]
        resource_type: Option<String>,
        #[graphql(desc = "Only events at or after this instant.")] since: Option<DateTime<Utc>>,
        #[graphql(desc = "Only events before this instant.")] until: Option<DateTime<Utc>>,
        first: Option<i32>,
        after: Option<String>,
        page: Option<i32>,
        page_size: Option<i32>,
    ) -> Result<PagedConnection<AuditEvent>> {
        let window = PageArgs {
            first,
            after,
            page,
            page_size,
        }
        .window()?;
        let filter = AuditFilter {
            action,
            actor,
            resource_type,
            since,
            until,
        };
        let page = super::list(caller(ctx)?, state(ctx), &filter, window).await?;
        Ok(page.into_connection())
    }
}
