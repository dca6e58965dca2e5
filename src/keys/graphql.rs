use async_graphql::{Context, InputObject, Object, Result};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{ApiKey, CreatedApiKey};
use crate::context::Scope;
use crate::graphql::pagination::{PageArgs, PagedConnection};
use crate::graphql::{caller, state};

/// A key to mint.
#[derive(InputObject)]
pub struct CreateApiKeyInput {
    /// What the key is for (1–100 characters).
    pub label: String,
    /// `READ`, or `WRITE` to also upload and triage; one value or a list (a key holds the
    /// strongest listed). Default `READ`.
    #[graphql(default_with = "vec![Scope::Read]")]
    pub scopes: Vec<Scope>,
    /// When the key stops working; never when absent.
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Default)]
pub struct KeysQuery;

#[Object]
impl KeysQuery {
    /// The org's API keys (admins).
    async fn api_keys(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        page: Option<i32>,
        page_size: Option<i32>,
    ) -> Result<PagedConnection<ApiKey>> {
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

    /// The API key this request was made with.
    async fn current_api_key(&self, ctx: &Context<'_>) -> Result<ApiKey> {
        Ok(super::current(caller(ctx)?, state(ctx)).await?)
    }
}

#[derive(Default)]
pub struct KeysMutation;

#[Object]
impl KeysMutation {
    /// Mints an API key; its plaintext is in this response only (admins, signed in).
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        input: CreateApiKeyInput,
    ) -> Result<CreatedApiKey> {
        crate::auth::graphql::no_store(ctx);
        Ok(super::create(
            caller(ctx)?,
            state(ctx),
            &input.label,
            super::scope_of(&input.scopes)?,
            input.expires_at,
        )
        .await?)
    }

    /// Revokes an API key (admins, signed in).
    async fn revoke_api_key(&self, ctx: &Context<'_>, id: Uuid) -> Result<ApiKey> {
        Ok(super::revoke(caller(ctx)?, state(ctx), id).await?)
    }
}
