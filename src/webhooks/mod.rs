//! Outgoing webhooks: an org's admins point them at a URL and pick events (`scan.completed`,
//! `scan.failed`, `finding.new`, `finding.triaged`, and `ping` on request). Deliveries are
//! signed per Standard Webhooks ([`signing`]), guarded against SSRF ([`guard`]), queued in the
//! same transaction as the event that causes them ([`events`]) and sent by the durable job
//! queue with retries ([`deliver`]), each attempt kept in the delivery log.

pub mod deliver;
pub mod events;
pub mod graphql;
pub mod guard;
mod model;
mod service;
pub mod signing;
mod triggers;

pub use model::{
    CreatedWebhook, DeliveryStatus, Webhook, WebhookAttempt, WebhookDelivery, WebhookEventType,
};
pub use service::*;
pub use triggers::*;
