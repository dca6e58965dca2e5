//! Organizations (the tenants), their members and roles.

pub mod graphql;
mod member_update;
mod model;
mod service;

pub use member_update::*;
pub use model::{Email, Member, Organization};
pub use service::*;
