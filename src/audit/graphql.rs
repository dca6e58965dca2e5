use async_graphql::{Context, Object, Result};

use super::AuditEvent;
use crate::graphql::pagination::{PageArgs, PagedConnection};
use crate::graphql::{caller, state};

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// The org's audit log, newest first (admins).
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only this action, e.g. `session.login`.")] action: Option<String>,
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
        let page = super::list(caller(ctx)?, state(ctx), action.as_deref(), window).await?;
        Ok(page.into_connection())
    }
}
