//! Tells long-lived connections (GraphQL over WebSocket) that a credential may have lost its
//! rights, through the event bus so every server process hears it.
//!
//! The event is only a prompt: a connection that hears it checks its credential again against
//! the database (which was changed before the event was sent) and closes when that fails. So an
//! event may be lost or duplicated without harm; connections also re-check periodically and on
//! every operation.

use uuid::Uuid;

use crate::context::{Actor, Ctx};
use crate::events::EventBus;

/// What changed.
#[derive(Clone, Copy, Debug)]
pub enum Revoked {
    /// A session ended or moved (logout, refresh-token reuse, org switch).
    Session { user_id: Uuid, session_id: Uuid },
    /// A user's membership of an org was removed or its role changed.
    Member { user_id: Uuid, org_id: Uuid },
    /// An API key was revoked.
    Key { key_id: Uuid },
    /// Sessions of a user ended, or the account was deactivated (password change or reset,
    /// an admin's action).
    User { user_id: Uuid },
}

fn user_topic(user_id: Uuid) -> String {
    format!("auth:user:{user_id}")
}

fn key_topic(key_id: Uuid) -> String {
    format!("auth:key:{key_id}")
}

/// The topic a connection of this caller listens to.
pub fn topic_of(ctx: &Ctx) -> String {
    match &ctx.actor {
        Actor::User { user_id, .. } => user_topic(*user_id),
        Actor::ApiKey { key_id, .. } => key_topic(*key_id),
    }
}

/// Announces a change of rights; a bus failure is logged (connections re-check on their own).
pub async fn publish(bus: &dyn EventBus, what: Revoked) {
    let (topic, payload) = match what {
        Revoked::Session {
            user_id,
            session_id,
        } => (
            user_topic(user_id),
            serde_json::json!({"session": session_id}),
        ),
        Revoked::Member { user_id, org_id } => {
            (user_topic(user_id), serde_json::json!({"org": org_id}))
        }
        Revoked::Key { key_id } => (key_topic(key_id), serde_json::json!({"key": key_id})),
        Revoked::User { user_id } => (user_topic(user_id), serde_json::json!({"user": user_id})),
    };
    if let Err(err) = bus.publish(&topic, &payload.to_string()).await {
        tracing::warn!(%err, %topic, "could not announce a revoked credential");
    }
}
