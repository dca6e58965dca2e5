//! Targets: what is scanned.

pub mod graphql;
mod model;
mod service;

pub use model::{Target, TargetKind};
pub use service::*;
