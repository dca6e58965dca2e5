use async_graphql::{Enum, SimpleObject};
use chrono::{DateTime, Utc};
use entity::invitation;
use uuid::Uuid;

use crate::context::Role;
use crate::orgs::{Member, Organization};

/// Where an invitation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
pub enum InvitationStatus {
    /// Waiting for the person to accept or decline.
    Pending,
    /// The person joined the org.
    Accepted,
    /// Not accepted in time; invite again to renew it.
    Expired,
}

/// An invitation of the caller's org (what its admins see).
#[derive(Clone, Debug, SimpleObject)]
pub struct Invitation {
    pub id: Uuid,
    /// The address invited.
    pub email: String,
    /// The role the person gets on accepting.
    pub role: Role,
    pub status: InvitationStatus,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<invitation::Model> for Invitation {
    fn from(m: invitation::Model) -> Self {
        let status = if m.accepted_at.is_some() {
            InvitationStatus::Accepted
        } else if m.expires_at <= Utc::now() {
            InvitationStatus::Expired
        } else {
            InvitationStatus::Pending
        };
        Self {
            id: m.id,
            email: m.email,
            role: Role::parse(&m.role).unwrap_or(Role::Viewer),
            status,
            expires_at: m.expires_at,
            accepted_at: m.accepted_at,
            created_at: m.created_at,
        }
    }
}

/// The answer to inviting someone: the same shape whether or not the address has an account.
#[derive(SimpleObject)]
pub struct CreatedInvitation {
    pub invitation: Invitation,
    /// The invitation token, shown only in this answer. Hand it to the person invited: with
    /// an account they need not use it (signed in, they find the invitation under
    /// `myInvitations`); without one they set their password with it.
    pub token: String,
    pub message: String,
}

/// An invitation the signed-in user received.
#[derive(Clone, Debug, SimpleObject)]
pub struct ReceivedInvitation {
    pub id: Uuid,
    /// The org that invites.
    pub organization: Organization,
    /// The role offered.
    pub role: Role,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// An accepted invitation: the org joined and the person's membership there.
#[derive(Clone, Debug, SimpleObject)]
pub struct AcceptedInvitation {
    pub organization: Organization,
    pub member: Member,
}
