//! sea-orm entities for Rampart's domain tables.
//!
//! One module per table, matching the `migration` crate. Entities carry no
//! business logic: enum-like columns are plain `String`s that the app parses,
//! "json text" columns are `String`s holding JSON (filtered with `LIKE`), and
//! JSON documents are [`sea_orm::entity::prelude::Json`] (`serde_json::Value`).

pub mod api_key;
pub mod audit_event;
pub mod comment;
pub mod finding;
pub mod invitation;
pub mod job;
pub mod membership;
pub mod mfa_factor;
pub mod mfa_recovery_code;
pub mod notification;
pub mod notification_preference;
pub mod organization;
pub mod password_reset;
pub mod rule;
pub mod scan;
pub mod scan_finding;
pub mod scan_schedule;
pub mod session;
pub mod sla_policy;
pub mod suppression_rule;
pub mod target;
pub mod target_follow;
pub mod user;
pub mod webhook;
pub mod webhook_attempt;
pub mod webhook_delivery;
pub mod worker_heartbeat;

/// The `Entity` types under their table names, e.g. `Organization`, `ApiKey`.
pub mod prelude {
    pub use super::api_key::Entity as ApiKey;
    pub use super::audit_event::Entity as AuditEvent;
    pub use super::comment::Entity as Comment;
    pub use super::finding::Entity as Finding;
    pub use super::invitation::Entity as Invitation;
    pub use super::job::Entity as Job;
    pub use super::membership::Entity as Membership;
    pub use super::mfa_factor::Entity as MfaFactor;
    pub use super::mfa_recovery_code::Entity as MfaRecoveryCode;
    pub use super::notification::Entity as Notification;
    pub use super::notification_preference::Entity as NotificationPreference;
    pub use super::organization::Entity as Organization;
    pub use super::password_reset::Entity as PasswordReset;
    pub use super::rule::Entity as Rule;
    pub use super::scan::Entity as Scan;
    pub use super::scan_finding::Entity as ScanFinding;
    pub use super::scan_schedule::Entity as ScanSchedule;
    pub use super::session::Entity as Session;
    pub use super::sla_policy::Entity as SlaPolicy;
    pub use super::suppression_rule::Entity as SuppressionRule;
    pub use super::target::Entity as Target;
    pub use super::target_follow::Entity as TargetFollow;
    pub use super::user::Entity as User;
    pub use super::webhook::Entity as Webhook;
    pub use super::webhook_attempt::Entity as WebhookAttempt;
    pub use super::webhook_delivery::Entity as WebhookDelivery;
    pub use super::worker_heartbeat::Entity as WorkerHeartbeat;
}
