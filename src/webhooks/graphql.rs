use async_graphql::{Context, InputObject, MaybeUndefined, Object, Result};
use uuid::Uuid;

use super::model::{CreatedWebhook, Webhook, WebhookDelivery, WebhookEventType};
use super::service::{NewWebhook, WebhookUpdate};
use crate::findings::Severity;
use crate::graphql::pagination::{PageArgs, PagedConnection};
use crate::graphql::{caller, state};

/// A new webhook.
#[derive(InputObject)]
pub struct CreateWebhookInput {
    /// Where deliveries are POSTed: http or https, a public address on port 80 or 443 unless
    /// the operator allows more.
    pub url: String,
    pub description: Option<String>,
    /// The events to send (at least one; `PING` is sent on request only).
    pub events: Vec<WebhookEventType>,
    /// Only events about this target.
    pub target_id: Option<Uuid>,
    /// Only findings at least this severe (`FINDING_NEW`, `FINDING_TRIAGED`).
    pub min_severity: Option<Severity>,
    /// Whether deliveries go out (default true).
    #[graphql(default = true)]
    pub enabled: bool,
}

/// Changes to a webhook; absent fields stay as they are, `null` clears a filter.
#[derive(InputObject)]
pub struct UpdateWebhookInput {
    pub url: Option<String>,
    pub description: MaybeUndefined<String>,
    pub events: Option<Vec<WebhookEventType>>,
    pub target_id: MaybeUndefined<Uuid>,
    pub min_severity: MaybeUndefined<Severity>,
    /// Enabling a webhook again forgets its failures.
    pub enabled: Option<bool>,
}

fn changed<T>(value: MaybeUndefined<T>) -> Option<Option<T>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(v)),
    }
}

#[derive(Default)]
pub struct WebhooksQuery;

#[Object]
impl WebhooksQuery {
    /// The org's webhooks, newest first (admins, signed in).
    async fn webhooks(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        page: Option<i32>,
        page_size: Option<i32>,
    ) -> Result<PagedConnection<Webhook>> {
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

    /// One webhook of the org (admins, signed in).
    async fn webhook(&self, ctx: &Context<'_>, id: Uuid) -> Result<Webhook> {
        Ok(super::get(caller(ctx)?, state(ctx), id).await?)
    }

    /// A webhook's delivery log, newest first (admins, signed in).
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        webhook_id: Uuid,
        first: Option<i32>,
        after: Option<String>,
        page: Option<i32>,
        page_size: Option<i32>,
    ) -> Result<PagedConnection<WebhookDelivery>> {
        let window = PageArgs {
            first,
            after,
            page,
            page_size,
        }
        .window()?;
        Ok(
            super::deliveries(caller(ctx)?, state(ctx), webhook_id, window)
                .await?
                .into_connection(),
        )
    }

    /// One delivery of the org (admins, signed in).
    async fn webhook_delivery(&self, ctx: &Context<'_>, id: Uuid) -> Result<WebhookDelivery> {
        Ok(super::delivery(caller(ctx)?, state(ctx), id).await?)
    }
}

#[derive(Default)]
pub struct WebhooksMutation;

#[Object]
impl WebhooksMutation {
    /// Creates a webhook (admins, signed in). The answer carries its secret, shown only here.
    async fn create_webhook(
        &self,
        ctx: &Context<'_>,
        input: CreateWebhookInput,
    ) -> Result<CreatedWebhook> {
        crate::auth::graphql::no_store(ctx);
        let new = NewWebhook {
            url: input.url,
            description: input.description,
            events: input.events,
            target_id: input.target_id,
            min_severity: input.min_severity,
            enabled: input.enabled,
        };
        Ok(super::create(caller(ctx)?, state(ctx), new).await?)
    }

    /// Changes a webhook (admins, signed in).
    async fn update_webhook(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        input: UpdateWebhookInput,
    ) -> Result<Webhook> {
        let change = WebhookUpdate {
            url: input.url,
            description: changed(input.description),
            events: input.events,
            target_id: changed(input.target_id),
            min_severity: changed(input.min_severity),
            enabled: input.enabled,
        };
        Ok(super::update(caller(ctx)?, state(ctx), id, change).await?)
    }

    /// Deletes a webhook and its delivery log (admins, signed in).
    async fn delete_webhook(&self, ctx: &Context<'_>, id: Uuid) -> Result<bool> {
        super::delete(caller(ctx)?, state(ctx), id).await?;
        Ok(true)
    }

    /// Gives a webhook a new secret, shown only in this answer (admins, signed in). The old
    /// one keeps signing beside it for the configured overlap (24 hours by default).
    async fn rotate_webhook_secret(&self, ctx: &Context<'_>, id: Uuid) -> Result<CreatedWebhook> {
        crate::auth::graphql::no_store(ctx);
        Ok(super::rotate_secret(caller(ctx)?, state(ctx), id).await?)
    }

    /// Sends the webhook a `ping` event now (admins, signed in).
    async fn ping_webhook(&self, ctx: &Context<'_>, id: Uuid) -> Result<WebhookDelivery> {
        Ok(super::ping(caller(ctx)?, state(ctx), id).await?)
    }

    /// Sends one finished delivery again, same body and `webhook-id` (admins, signed in).
    async fn redeliver_webhook_delivery(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
    ) -> Result<WebhookDelivery> {
        Ok(super::redeliver(caller(ctx)?, state(ctx), id).await?)
    }
}
