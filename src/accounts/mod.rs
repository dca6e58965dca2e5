//! A person's account, across the orgs they belong to: their password (changing it, an
//! admin requiring a new one, resetting it by email), their sessions, and whether the account
//! is active. Memberships and roles stay in `orgs`; signing in stays in `auth::sessions`.

pub mod graphql;
pub mod mail;
pub mod model;
pub mod password;
pub mod sessions;
pub mod status;

pub use model::{PasswordResetRequested, UserSession};
