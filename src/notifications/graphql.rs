use async_graphql::{Context, InputObject, Object, Result, Subscription};
use futures::StreamExt;
use uuid::Uuid;

use super::model::{
    MarkedRead, Notification, NotificationCounts, NotificationKind, NotificationPreferences,
};
use super::service::PreferencesUpdate;
use crate::findings::Severity;
use crate::graphql::pagination::{PageArgs, PagedConnection};
use crate::graphql::{caller, state};
use crate::targets::Target;

/// Changes to one's notification preferences; absent fields stay as they are.
#[derive(InputObject)]
pub struct UpdateNotificationPreferencesInput {
    /// The kinds of event that notify (an empty list silences every notification).
    pub kinds: Option<Vec<NotificationKind>>,
    /// New findings notify from this severity up.
    pub min_severity: Option<Severity>,
    /// Whether notifications are mailed too (when the server has an SMTP relay).
    pub email: Option<bool>,
}

#[derive(Default)]
pub struct NotificationsQuery;

#[Object]
impl NotificationsQuery {
    /// My notifications in this org: unread first, then newest first (signed in).
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only the unread ones (default false).")] unread_only: Option<bool>,
        first: Option<i32>,
        after: Option<String>,
        page: Option<i32>,
        page_size: Option<i32>,
    ) -> Result<PagedConnection<Notification>> {
        let window = PageArgs {
            first,
            after,
            page,
            page_size,
        }
        .window()?;
        Ok(super::list(
            caller(ctx)?,
            state(ctx),
            unread_only.unwrap_or(false),
            window,
        )
        .await?
        .into_connection())
    }

    /// One of my notifications (signed in).
    async fn notification(&self, ctx: &Context<'_>, id: Uuid) -> Result<Notification> {
        Ok(super::get(caller(ctx)?, state(ctx), id).await?)
    }

    /// How many notifications I have in this org, and how many are unread (signed in).
    async fn notification_counts(&self, ctx: &Context<'_>) -> Result<NotificationCounts> {
        Ok(super::counts(caller(ctx)?, state(ctx)).await?)
    }

    /// What notifies me in this org (signed in).
    async fn notification_preferences(&self, ctx: &Context<'_>) -> Result<NotificationPreferences> {
        Ok(super::preferences(caller(ctx)?, state(ctx)).await?)
    }

    /// The targets of this org I follow, by name (signed in).
    async fn followed_targets(
        &self,
        ctx: &Context<'_>,
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
        Ok(super::followed_targets(caller(ctx)?, state(ctx), window)
            .await?
            .into_connection())
    }
}

#[derive(Default)]
pub struct NotificationsMutation;

#[Object]
impl NotificationsMutation {
    /// Marks one of my notifications read (signed in).
    async fn mark_notification_read(&self, ctx: &Context<'_>, id: Uuid) -> Result<Notification> {
        Ok(super::mark_read(caller(ctx)?, state(ctx), id).await?)
    }

    /// Marks all my unread notifications in this org read (signed in).
    async fn mark_all_notifications_read(&self, ctx: &Context<'_>) -> Result<MarkedRead> {
        Ok(super::mark_all_read(caller(ctx)?, state(ctx)).await?)
    }

    /// Changes what notifies me in this org (signed in).
    async fn update_notification_preferences(
        &self,
        ctx: &Context<'_>,
        input: UpdateNotificationPreferencesInput,
    ) -> Result<NotificationPreferences> {
        let change = PreferencesUpdate {
            kinds: input.kinds,
            min_severity: input.min_severity,
            email: input.email,
        };
        Ok(super::update_preferences(caller(ctx)?, state(ctx), change).await?)
    }

    /// Follows a target: its new findings and failed scans notify me (signed in).
    async fn follow_target(&self, ctx: &Context<'_>, target_id: Uuid) -> Result<Target> {
        Ok(super::follow(caller(ctx)?, state(ctx), target_id).await?)
    }

    /// Stops following a target (signed in); true whether or not I followed it.
    async fn unfollow_target(&self, ctx: &Context<'_>, target_id: Uuid) -> Result<bool> {
        Ok(super::unfollow(caller(ctx)?, state(ctx), target_id).await?)
    }
}

#[derive(Default)]
pub struct NotificationsSubscription;

#[Subscription]
impl NotificationsSubscription {
    /// Each notification I get in this org from now on, from whichever server process made it
    /// (signed in).
    async fn notification_added(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl futures::Stream<Item = Notification>> {
        let slot = crate::live::graphql::take_slot(ctx)?;
        let stream = super::events::follow(state(ctx), caller(ctx)?)?;
        Ok(stream.map(move |n| {
            let _held = &slot;
            n
        }))
    }
}
