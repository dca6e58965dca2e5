//! Per-user notifications: made from the same domain events webhooks react to (new findings on
//! a followed target at or above the person's minimum severity, a followed target's scan
//! failing, findings assigned to them), in the event's own transaction ([`events`]); read, counted and marked read by
//! their person only ([`service`]); followed live through the event bus (the
//! `notificationAdded` subscription and the SSE stream, [`sse`]); and mailed through the SMTP
//! relay, when one is configured, by the durable job queue ([`email`]).

pub mod email;
pub mod events;
pub mod graphql;
mod model;
mod service;
pub mod sse;

pub use model::{
    MarkedRead, Notification, NotificationCounts, NotificationKind, NotificationPreferences,
};
pub use service::*;
