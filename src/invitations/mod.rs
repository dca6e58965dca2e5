//! Invitations: how a person joins an org. An admin invites an email address and always gets
//! the same answer, whether or not an account has that address anywhere; the person accepts —
//! signed in with that email (`myInvitations`, `acceptInvitation`), or, without an account, by
//! setting a password with the invitation's token (`signUpWithInvitation`). Nobody is added to
//! an org without saying yes, and an admin learns nothing about other orgs' users.

pub mod graphql;
mod model;
mod service;

pub use model::{
    AcceptedInvitation, CreatedInvitation, Invitation, InvitationStatus, ReceivedInvitation,
};
pub use service::*;
