//! Organizations (the tenants), their members and roles.

pub mod graphql;
mod model;
mod service;

pub use model::{Email, Member, Organization};
pub use service::*;
